//! `docker save`: a docker-archive with an OCI image layout beside it (docker 25+ format).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufReader, Write};

use serde::Serialize;
use serde_json::{Map, Value, json};

use crate::import::BUF;
use crate::service::{ImageService, SavePlan};
use crate::store::MAX_CONFIG;
use crate::{Digest, ImagesError, Reference, Result};

pub(crate) const MT_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub(crate) const MT_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub(crate) const MT_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub(crate) const MT_LAYER: &str = "application/vnd.oci.image.layer.v1.tar";

pub(crate) fn save_plan(svc: &ImageService, names: &[String]) -> Result<SavePlan> {
    let st = svc.read();
    let mut images: Vec<(crate::ImageRecord, Vec<Reference>)> = Vec::new();
    for name in names {
        let id = st.resolve(name)?;
        let Some(img) = st.images.get(&id) else {
            return Err(ImagesError::NotFound(name.clone()));
        };
        let named: Option<Reference> = if st.is_id_name(name, &id) {
            None
        } else {
            Reference::parse_normalized(name)
                .ok()
                .map(|r| r.with_default_tag())
        };
        match images.iter_mut().find(|(r, _)| r.id == id) {
            Some((_, refs)) => {
                if let Some(r) = named
                    && !refs.contains(&r)
                {
                    refs.push(r);
                }
            }
            None => images.push((st.record(img), named.into_iter().collect())),
        }
    }
    Ok(SavePlan { images })
}

#[derive(Serialize)]
struct ManifestEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

fn blob_path(d: &Digest) -> String {
    format!("blobs/sha256/{}", d.hex())
}

fn header(kind: tar::EntryType, size: u64, mode: u32, mtime: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(mtime);
    h
}

fn werr(e: std::io::Error) -> ImagesError {
    ImagesError::Write(e)
}

fn add_bytes<W: Write>(b: &mut tar::Builder<W>, path: &str, data: &[u8]) -> Result<()> {
    let mut h = header(tar::EntryType::Regular, data.len() as u64, 0o644, 0);
    b.append_data(&mut h, path, data).map_err(werr)
}

pub(crate) fn save(svc: &ImageService, plan: &SavePlan, out: impl Write) -> Result<()> {
    let mut b = tar::Builder::new(out);
    b.mode(tar::HeaderMode::Deterministic);
    for dir in ["blobs/", "blobs/sha256/"] {
        let mut h = header(tar::EntryType::Directory, 0, 0o755, 0);
        b.append_data(&mut h, dir, std::io::empty()).map_err(werr)?;
    }
    let mut written: HashSet<Digest> = HashSet::new();
    let mut manifest_json: Vec<ManifestEntry> = Vec::new();
    let mut index_manifests: Vec<Value> = Vec::new();
    let mut repositories: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (rec, refs) in &plan.images {
        // config
        let config = svc.content.read_blob(&rec.id, MAX_CONFIG)?;
        if written.insert(rec.id.clone()) {
            add_bytes(&mut b, &blob_path(&rec.id), &config)?;
        }
        // layers
        let mut layer_descs = Vec::new();
        for d in &rec.config.rootfs.diff_ids {
            let size = svc.content.blob_size(d)?;
            if written.insert(d.clone()) {
                let f = svc.content.open_blob(d)?;
                let mut h = header(tar::EntryType::Regular, size, 0o644, 0);
                b.append_data(&mut h, blob_path(d), BufReader::with_capacity(BUF, f))
                    .map_err(werr)?;
            }
            layer_descs.push(json!({"mediaType": MT_LAYER, "digest": d.to_string(), "size": size}));
        }
        // OCI manifest
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MT_MANIFEST,
            "config": {"mediaType": MT_CONFIG, "digest": rec.id.to_string(), "size": config.len()},
            "layers": layer_descs,
        });
        let mbytes = serde_json::to_vec(&manifest).map_err(|e| ImagesError::InvalidConfig {
            id: rec.id.to_string(),
            reason: e.to_string(),
        })?;
        let mdigest = Digest::of(&mbytes);
        if written.insert(mdigest.clone()) {
            add_bytes(&mut b, &blob_path(&mdigest), &mbytes)?;
        }
        let desc = |ann: Option<&Reference>| {
            let mut m = Map::new();
            m.insert("mediaType".into(), MT_MANIFEST.into());
            m.insert("digest".into(), mdigest.to_string().into());
            m.insert("size".into(), mbytes.len().into());
            if let Some(r) = ann {
                let mut a = Map::new();
                a.insert("io.containerd.image.name".into(), r.to_string().into());
                if let Some(t) = r.tag() {
                    a.insert("org.opencontainers.image.ref.name".into(), t.into());
                }
                m.insert("annotations".into(), Value::Object(a));
            }
            Value::Object(m)
        };
        if refs.is_empty() {
            index_manifests.push(desc(None));
        } else {
            index_manifests.extend(refs.iter().map(|r| desc(Some(r))));
        }
        manifest_json.push(ManifestEntry {
            config: blob_path(&rec.id),
            repo_tags: refs
                .iter()
                .filter(|r| r.tag().is_some())
                .map(|r| r.familiar_string())
                .collect(),
            layers: rec.config.rootfs.diff_ids.iter().map(blob_path).collect(),
        });
        if let Some(top) = rec.config.rootfs.diff_ids.last() {
            for r in refs {
                if let Some(t) = r.tag() {
                    repositories
                        .entry(r.familiar_name())
                        .or_default()
                        .insert(t.to_string(), top.hex().to_string());
                }
            }
        }
    }
    let index = json!({"schemaVersion": 2, "mediaType": MT_INDEX, "manifests": index_manifests});
    add_bytes(&mut b, "index.json", &json_bytes(&index))?;
    add_bytes(&mut b, "manifest.json", &json_bytes(&manifest_json))?;
    add_bytes(&mut b, "oci-layout", br#"{"imageLayoutVersion":"1.0.0"}"#)?;
    if !repositories.is_empty() {
        add_bytes(&mut b, "repositories", &json_bytes(&repositories))?;
    }
    let mut out = b.into_inner().map_err(werr)?;
    out.flush().map_err(werr)?;
    Ok(())
}

fn json_bytes<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}
