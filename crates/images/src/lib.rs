//! The image model: references, image configs, the tag index, and the archive formats.
//!
//! [`ImageService`] owns `<data-root>/images` (image records and the repository/tag index) and
//! drives the storage crate for blobs (`<data-root>/content`) and unpacked layers
//! (`<data-root>/snapshots`). It loads `docker save` archives and OCI image layouts, saves
//! docker-archive (with an OCI layout beside it), imports root filesystem tars, tags, untags,
//! deletes and prunes. It knows nothing of containers, processes, networks, HTTP or the CLI:
//! whether a container uses an image is asked through a callback the engine passes in.

mod build_commit;
mod changes;
mod commit;
pub mod config;
mod delete;
mod error;
mod filters;
mod from_content;
mod import;
mod load;
mod made;
pub mod reference;
mod save;
mod service;
mod store;

pub use build_commit::BuildCommit;
pub use commit::CommitOptions;
pub use config::{ContainerConfig, HistoryEntry, ImageConfig, RootFs};
pub use error::{ImagesError, Result};
pub use filters::parse_timestamp;
pub use from_content::Created;
pub use reference::Reference;
pub use service::{
    DeleteItem, HistoryItem, ImageRecord, ImageService, ImportOptions, ListFilter, LoadEvent,
    PruneFilter, PruneReport, SavePlan,
};
pub use storage::Digest;
