//! Image distribution: the registry client berthd pulls (and later pushes) with, and the
//! built-in OCI distribution server (`berthd registry serve`).
//!
//! This crate speaks the distribution protocol and stores blobs through `storage`; it knows
//! nothing of containers, of the Engine API's routes or of the CLI.

pub mod client;
mod error;
pub mod server;

pub use error::{RegistryError, Result};
