//! Precompiled seccomp programs: each distinct profile is compiled to BPF once per berthd (with
//! libcontainer's own compiler, so the program is the one it would have built) and handed to the
//! container in the spec annotation the patched libcontainer loads it from. Compiling Docker's
//! profile costs about 20 ms of CPU in every container's init otherwise.
//!
//! Knows nothing of containers; a spec in, the same spec with the annotation out.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, LazyLock, Mutex};

use libcontainer::seccomp::{PRECOMPILED_ANNOTATION, compile_bpf, is_notify};

use crate::oci_spec::runtime::Spec;

/// Programs by hash of the profile's JSON (a handful of profiles in a daemon's life).
static PROGRAMS: LazyLock<Mutex<HashMap<u64, Arc<String>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Adds the compiled program of `spec`'s seccomp profile as an annotation. Without a profile,
/// with a notify profile, or when compiling fails (the init then compiles it as upstream does),
/// the spec is left as it is.
pub fn precompile(spec: &mut Spec) {
    let Some(profile) = spec.linux().as_ref().and_then(|l| l.seccomp().clone()) else {
        return;
    };
    if is_notify(&profile) {
        return;
    }
    let Ok(json) = serde_json::to_string(&profile) else {
        return;
    };
    let mut h = DefaultHasher::new();
    json.hash(&mut h);
    let key = h.finish();
    let cached = PROGRAMS
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    let hex = match cached {
        Some(hex) => hex,
        None => match compile_bpf(&profile) {
            Ok(bpf) => {
                let hex = Arc::new(hex::encode(bpf));
                PROGRAMS
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, Arc::clone(&hex));
                hex
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot precompile the seccomp profile");
                return;
            }
        },
    };
    let mut annotations = spec.annotations().clone().unwrap_or_default();
    annotations.insert(PRECOMPILED_ANNOTATION.to_string(), hex.to_string());
    spec.set_annotations(Some(annotations));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_profile_compiles_once_and_lands_in_the_annotation() {
        let c = crate::ContainerSpec {
            id: "x".into(),
            rootfs: "/tmp/rootfs".into(),
            args: vec!["true".into()],
            ..Default::default()
        };
        let mut a = crate::spec::build(&c).unwrap();
        let mut b = a.clone();
        precompile(&mut a);
        precompile(&mut b);
        let hex = a.annotations().as_ref().unwrap()[PRECOMPILED_ANNOTATION].clone();
        assert!(
            hex.len() > 1000 && hex.len().is_multiple_of(16),
            "{}",
            hex.len()
        );
        assert_eq!(
            b.annotations().as_ref().unwrap()[PRECOMPILED_ANNOTATION],
            hex
        );
        // A privileged spec has no profile and gets no program.
        let mut p = crate::spec::build(&crate::ContainerSpec {
            privileged: true,
            ..c
        })
        .unwrap();
        precompile(&mut p);
        assert!(
            p.annotations()
                .as_ref()
                .is_none_or(|a| !a.contains_key(PRECOMPILED_ANNOTATION))
        );
    }
}
