//! `docker import`: one layer from a root filesystem tar.

use std::io::{BufReader, Read};

use chrono::{SecondsFormat, Utc};
use storage::{ContentStore, Ingest};

use crate::service::{ImageService, ImportOptions};
use crate::{ContainerConfig, Digest, HistoryEntry, ImageConfig, ImagesError, Result, RootFs};

pub(crate) const BUF: usize = 1 << 20;

/// Streams `r` into the content store; returns the digest of what was written.
pub(crate) fn ingest_stream(content: &ContentStore, mut r: impl Read) -> Result<Digest> {
    let Ingest::Writer(mut w) = content.ingest(None)? else {
        return Err(ImagesError::InvalidArchive(
            "unexpected existing ingest".into(),
        ));
    };
    copy_large(&mut r, &mut w)?;
    Ok(w.commit(None, None)?)
}

/// Copies with a 1 MiB buffer; read errors are archive errors, write errors I/O errors.
pub(crate) fn copy_large(r: &mut dyn Read, w: &mut dyn std::io::Write) -> Result<u64> {
    let mut buf = vec![0u8; BUF];
    let mut n = 0u64;
    loop {
        let k = match r.read(&mut buf) {
            Ok(0) => return Ok(n),
            Ok(k) => k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(ImagesError::InvalidArchive(e.to_string())),
        };
        w.write_all(&buf[..k]).map_err(|e| ImagesError::Io {
            op: "write",
            path: "content ingest".into(),
            source: e,
        })?;
        n += k as u64;
    }
}

/// The host platform as Docker names it.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "arm" => "arm",
        "powerpc64" => "ppc64le",
        "s390x" => "s390x",
        "riscv64" => "riscv64",
        other => other,
    }
}

pub(crate) fn import(
    svc: &ImageService,
    tar: impl Read + Send,
    opts: &ImportOptions,
) -> Result<Digest> {
    // Validate everything cheap first.
    let mut cc = ContainerConfig::default();
    for c in &opts.changes {
        for line in c.lines() {
            crate::changes::apply_change(&mut cc, line)?;
        }
    }
    let (os, arch, variant) = match &opts.platform {
        Some(p) if !p.is_empty() => {
            let parts: Vec<&str> = p.split('/').collect();
            match parts.as_slice() {
                [os] => (os.to_string(), host_arch().to_string(), None),
                [os, arch] => (os.to_string(), arch.to_string(), None),
                [os, arch, v] => (os.to_string(), arch.to_string(), Some(v.to_string())),
                _ => {
                    return Err(ImagesError::InvalidArchive(format!(
                        "invalid platform {p:?}"
                    )));
                }
            }
        }
        _ => ("linux".to_string(), host_arch().to_string(), None),
    };
    let (_, r) = storage::layer::decompress(BufReader::with_capacity(BUF, tar))?;
    let diff_id = ingest_stream(&svc.content, r)?;
    let _gc = svc.gc_shared();
    if !svc.content.exists(&diff_id) {
        return Err(ImagesError::InvalidArchive(format!(
            "layer {diff_id} was removed while importing; try again"
        )));
    }
    let sizes = svc.unpack_layers(std::slice::from_ref(&diff_id))?;
    let created = Utc::now().to_rfc3339_opts(SecondsFormat::Nanos, true);
    let message = opts.message.clone().filter(|m| !m.is_empty());
    let config = ImageConfig {
        architecture: arch,
        os,
        variant,
        created: Some(created.clone()),
        comment: Some(
            message
                .clone()
                .unwrap_or_else(|| "Imported from -".to_string()),
        ),
        config: Some(cc),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: vec![diff_id],
        },
        history: vec![HistoryEntry {
            created: Some(created),
            created_by: None,
            comment: Some(message.unwrap_or_else(|| "Imported from -".to_string())),
            ..Default::default()
        }],
        ..Default::default()
    };
    let bytes = serde_json::to_vec(&config).map_err(|e| ImagesError::InvalidConfig {
        id: "import".into(),
        reason: e.to_string(),
    })?;
    let id = svc.content.write_blob(&bytes, None)?;
    let _ops = svc.lock_ops();
    let mut st = svc.write();
    svc.register(&mut st, &id, &config, &sizes)?;
    if let Some(r) = &opts.reference {
        let r = r.clone().with_default_tag();
        svc.set_tags(&mut st, &id, &[r])?;
    }
    Ok(id)
}
