//! An image from blobs already in the content store (a registry pull leaves the layer tars
//! there by diff ID): unpack the layers, store the config, record the image, tag it and
//! remember the repository digest it was pulled by. The same ending as `load`, without an
//! archive; where the blobs came from is not this module's business.

use crate::service::ImageService;
use crate::{Digest, ImageConfig, ImagesError, Reference, Result};

/// What [`ImageService::create_from_content`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Created {
    /// The image ID (digest of the config).
    pub id: Digest,
    /// The image existed already and `tag` already pointed at it (Docker's "up to date").
    pub up_to_date: bool,
}

pub(crate) fn create(
    svc: &ImageService,
    config_bytes: &[u8],
    tag: Option<&Reference>,
    repo_digest: Option<&Reference>,
) -> Result<Created> {
    let id = Digest::of(config_bytes);
    let config: ImageConfig =
        serde_json::from_slice(config_bytes).map_err(|e| ImagesError::InvalidConfig {
            id: id.to_string(),
            reason: e.to_string(),
        })?;
    let tag = tag.map(|t| t.clone().with_default_tag());
    let (existed, tagged) = {
        let st = svc.read();
        let tagged = tag
            .as_ref()
            .and_then(|t| st.refs.get(&t.to_string()))
            .is_some_and(|i| *i == id);
        (st.images.contains_key(&id), tagged)
    };
    let _gc = svc.gc_shared();
    for d in &config.rootfs.diff_ids {
        if !svc.content.exists(d) {
            return Err(ImagesError::InvalidArchive(format!(
                "layer {d} is not in the content store; try again"
            )));
        }
    }
    let sizes = svc.unpack_layers(&config.rootfs.diff_ids)?;
    svc.content.write_blob(config_bytes, Some(&id))?;
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    svc.register(&mut st, &id, &config, &sizes)?;
    if let Some(rd) = repo_digest
        && let Some(img) = st.images.get(&id)
    {
        let s = rd.to_string();
        if !img.meta.repo_digests.contains(&s) {
            let mut meta = img.meta.clone();
            meta.repo_digests.push(s);
            svc.disk.write_meta(&id, &meta)?;
            if let Some(img) = st.images.get_mut(&id) {
                img.meta = meta;
            }
        }
    }
    if let Some(t) = &tag {
        svc.set_tags(&mut st, &id, std::slice::from_ref(t))?;
    }
    Ok(Created {
        id,
        up_to_date: existed && (tag.is_none() || tagged),
    })
}
