//! What a failed image operation (load, commit, build step) made and nobody uses, removed
//! again: blobs it stored and snapshots it unpacked that no image refers to. moby releases a
//! failed operation's layers the same way; here it is what makes a load or commit that ran
//! out of space give the space back.
//!
//! Knows the image index (who uses what) and the stores; nothing of containers or HTTP.

use crate::Digest;
use crate::service::ImageService;

/// What an operation wrote that was not there before it.
#[derive(Debug, Default)]
pub(crate) struct Made {
    /// Blobs (layer tars by diff ID, configs by image ID).
    pub blobs: Vec<Digest>,
    /// Snapshots, by chain ID.
    pub chains: Vec<Digest>,
}

impl Made {
    /// A single blob, if any.
    pub(crate) fn blob(blob: Option<Digest>) -> Self {
        Self {
            blobs: blob.into_iter().collect(),
            chains: Vec::new(),
        }
    }
}

/// Deletes what `made` lists that no image uses. Under the exclusive gc lock, as `rmi`, so the
/// caller must not hold the shared one: no other operation is then between storing a blob and
/// registering its image, and a load that found one of these blobs already stored checks again
/// under its shared lock and asks to be retried (a missing snapshot it simply unpacks again).
pub(crate) fn forget_unused(svc: &ImageService, made: &Made) {
    if made.blobs.is_empty() && made.chains.is_empty() {
        return;
    }
    let _gc = svc.gc_exclusive();
    let _ops = svc.lock_ops();
    let st = svc.read();
    let mut removed = (0, 0);
    for c in made.chains.iter().rev() {
        if st.chain_users(c, None) == 0 && svc.snaps.get(c).is_some() && svc.snaps.remove(c).is_ok()
        {
            removed.0 += 1;
        }
    }
    for d in &made.blobs {
        if !st.images.contains_key(d) && !st.diff_used(d, None) && svc.content.delete(d).is_ok() {
            removed.1 += 1;
        }
    }
    tracing::info!(
        snapshots = removed.0,
        blobs = removed.1,
        "removed what a failed image operation left"
    );
}
