//! The volume operations of the engine, as the daemon calls them: create, inspect, list (with
//! moby's filters), remove (404, 409 while any container uses the volume, `force`), prune
//! (anonymous only unless `all`), the Volumes section of `system df`, and the `volume` events.
//!
//! "In use" is decided from container records (`Containers::volume_users`), as moby decides it
//! from its references: any container, running or not, that names the volume. The store
//! (`volumes::VolumeStore`) knows nothing of containers. API-version quirks (prune's `all`
//! below 1.42) belong to the daemon.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use api_types::models::VolumeCreateRequest;
use serde_json::{Value, json};
use volumes::{ANONYMOUS_LABEL, LOCAL_DRIVER, Volume, VolumeStore};

use crate::containers::Containers;
use crate::events::EventType;
use crate::{Engine, EngineError, Filters, Result};

/// Filters `GET /volumes` accepts (moby's `acceptedListFilters`).
const LIST_FILTERS: [&str; 4] = ["dangling", "name", "driver", "label"];
/// Filters `POST /volumes/prune` accepts (moby's `acceptedPruneFilters`).
const PRUNE_FILTERS: [&str; 3] = ["label", "label!", "all"];

impl Engine {
    /// `POST /volumes/create` → the volume (201). An empty name creates an anonymous volume
    /// with a generated name, as moby does; an existing name returns the existing volume.
    pub async fn volume_create(&self, req: VolumeCreateRequest) -> Result<Value> {
        let opts: BTreeMap<String, String> =
            req.driver_opts.unwrap_or_default().into_iter().collect();
        let labels: BTreeMap<String, String> = req.labels.unwrap_or_default().into_iter().collect();
        let name = req.name.filter(|n| !n.is_empty());
        let anonymous = name.is_none();
        let driver = req.driver.unwrap_or_default();
        let v = self
            .containers
            .create_volume(name.as_deref(), &driver, opts, labels, anonymous)?;
        Ok(volume_json(&v, None))
    }

    /// `GET /volumes/{name}` → the volume; `get NAME: no such volume` (404) when missing.
    pub async fn volume_inspect(&self, name: &str) -> Result<Value> {
        let v = self
            .volumes()
            .get(name)
            .map_err(|e| EngineError::volume("get", name, e))?;
        Ok(volume_json(&v, None))
    }

    /// `GET /volumes?filters=` → `{"Volumes":[…],"Warnings":null}`.
    pub async fn volume_list(&self, filters: &Filters) -> Result<Value> {
        filters.validate(&LIST_FILTERS)?;
        let dangling = filters.bool_value("dangling")?;
        let names = filters.get("name");
        let name_res = names
            .iter()
            .map(|n| regex::Regex::new(n).ok())
            .collect::<Vec<_>>();
        let drivers = filters.get("driver");
        let mut out = Vec::new();
        for v in self.volumes().list() {
            let name_ok = names.is_empty()
                || names.iter().zip(&name_res).any(|(n, re)| {
                    n == &v.name || re.as_ref().is_some_and(|re| re.is_match(&v.name))
                });
            let ok = name_ok
                && (drivers.is_empty() || drivers.contains(&v.driver))
                && labels_pass(filters, &v.labels)
                && dangling.is_none_or(|d| d == self.containers.volume_users(&v.name).is_empty());
            if ok {
                out.push(volume_json(&v, None));
            }
        }
        Ok(json!({"Volumes": out, "Warnings": null}))
    }

    /// `DELETE /volumes/{name}[?force=1]`. `force` ignores a missing volume (moby's
    /// purge-on-error) but still refuses one in use.
    pub async fn volume_remove(&self, name: &str, force: bool) -> Result<()> {
        let v = match self.volumes().get(name) {
            Ok(v) => v,
            Err(volumes::VolumesError::NotFound(_)) if force => return Ok(()),
            Err(e) => return Err(EngineError::volume("get", name, e)),
        };
        self.containers.remove_volume(&v).await
    }

    /// `POST /volumes/prune?filters=` → `{"VolumesDeleted":[…],"SpaceReclaimed":N}`. Without
    /// `all=true` only anonymous volumes go (the daemon adds `all` for API < 1.42). Volumes
    /// with driver options (tmpfs, binds, NFS) are never pruned, as in moby: they hold no
    /// local space.
    pub async fn volume_prune(&self, filters: &Filters) -> Result<Value> {
        filters.validate(&PRUNE_FILTERS)?;
        let all = prune_all(filters)?;
        let mut deleted = Vec::new();
        let mut reclaimed = 0u64;
        for v in self.volumes().list() {
            let ok = v.driver == LOCAL_DRIVER
                && v.options.is_empty()
                && (all || v.labels.contains_key(ANONYMOUS_LABEL))
                && labels_pass(filters, &v.labels)
                && self.containers.volume_users(&v.name).is_empty();
            if !ok {
                continue;
            }
            let size = self
                .volume_blocking({
                    let name = v.name.clone();
                    move |s| s.size(&name).unwrap_or(0)
                })
                .await?;
            match self.containers.remove_volume(&v).await {
                Ok(()) => {
                    reclaimed += size;
                    deleted.push(v.name.clone());
                }
                Err(e) => tracing::warn!(volume = %v.name, error = %e, "Could not prune volume"),
            }
        }
        let attrs = HashMap::from([("reclaimed".to_string(), reclaimed.to_string())]);
        self.events
            .emit(EventType::VOLUME, "prune", String::new(), attrs);
        Ok(json!({"VolumesDeleted": deleted, "SpaceReclaimed": reclaimed}))
    }

    /// The Volumes section of `system df`: local volumes without driver options, each with
    /// `UsageData{Size, RefCount}` (the containers that use it).
    pub(crate) async fn volumes_df(&self) -> Result<Vec<Value>> {
        let vols: Vec<Volume> = self
            .volumes()
            .list()
            .into_iter()
            .filter(|v| v.driver == LOCAL_DRIVER && v.options.is_empty())
            .collect();
        let mut out = Vec::with_capacity(vols.len());
        for v in vols {
            let refs = self.containers.volume_users(&v.name).len();
            let size = self
                .volume_blocking({
                    let name = v.name.clone();
                    move |s| s.size(&name)
                })
                .await?;
            let size = size.map_or(-1, |s| i64::try_from(s).unwrap_or(i64::MAX));
            out.push(volume_json(
                &v,
                Some((size, i64::try_from(refs).unwrap_or(i64::MAX))),
            ));
        }
        Ok(out)
    }

    fn volumes(&self) -> &VolumeStore {
        &self.containers.volumes
    }

    /// Runs blocking volume work (walking or deleting data) on the blocking pool.
    async fn volume_blocking<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&VolumeStore) -> T + Send + 'static,
    {
        let store = Arc::clone(&self.containers.volumes);
        tokio::task::spawn_blocking(move || f(&store))
            .await
            .map_err(|_| EngineError::TaskFailed { what: "volume" })
    }
}

impl Containers {
    /// Creates (or finds) a volume and emits moby's `volume create` event (moby emits it for
    /// an existing volume too). For container creation (anonymous and named volumes) as well
    /// as `POST /volumes/create`.
    pub(crate) fn create_volume(
        &self,
        name: Option<&str>,
        driver: &str,
        opts: BTreeMap<String, String>,
        labels: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<Volume> {
        let shown = name.unwrap_or_default();
        let v = self
            .volumes
            .create(name, driver, opts, labels, anonymous)
            .map_err(|e| EngineError::volume("create", shown, e))?;
        self.emit_volume_event(&v, "create");
        Ok(v)
    }

    /// Removes a volume unless a container uses it (409 `remove NAME: volume is in use -
    /// [ids]`), and emits `volume destroy`. For `volume rm`, prune, and `rm -v`.
    pub(crate) async fn remove_volume(&self, v: &Volume) -> Result<()> {
        let users = self.volume_users(&v.name);
        if !users.is_empty() {
            return Err(EngineError::VolumeInUse {
                name: v.name.clone(),
                ids: users,
            });
        }
        let store = Arc::clone(&self.volumes);
        let name = v.name.clone();
        tokio::task::spawn_blocking(move || store.remove(&name))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "volume remove",
            })?
            .map_err(|e| EngineError::volume("remove", &v.name, e))?;
        self.emit_volume_event(v, "destroy");
        Ok(())
    }

    /// Emits a `volume` event with the `driver` attribute, as moby does.
    fn emit_volume_event(&self, v: &Volume, action: &str) {
        let attrs = HashMap::from([("driver".to_string(), v.driver.clone())]);
        self.events
            .emit(EventType::VOLUME, action.to_string(), v.name.clone(), attrs);
    }
}

/// The Volume JSON as moby answers it: `CreatedAt` RFC3339 in seconds, `Labels` and `Options`
/// `null` when empty, `Scope: "local"`, `UsageData` only for `system df`.
pub(crate) fn volume_json(v: &Volume, usage: Option<(i64, i64)>) -> Value {
    let map_or_null = |m: &BTreeMap<String, String>| {
        if m.is_empty() { Value::Null } else { json!(m) }
    };
    let mut out = json!({
        "CreatedAt": v.created_at.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "Driver": v.driver,
        "Labels": map_or_null(&v.labels),
        "Mountpoint": v.mountpoint.to_string_lossy(),
        "Name": v.name,
        "Options": map_or_null(&v.options),
        "Scope": "local",
    });
    if let (Some((size, refs)), Some(o)) = (usage, out.as_object_mut()) {
        o.insert("UsageData".into(), json!({"Size": size, "RefCount": refs}));
    }
    out
}

/// moby's `label` / `label!` filters: every `label` value matches (`key` or `key=value`), and
/// not every `label!` value does.
pub(crate) fn labels_pass(filters: &Filters, labels: &BTreeMap<String, String>) -> bool {
    let matches = |f: &String| match f.split_once('=') {
        Some((k, v)) => labels.get(k).is_some_and(|x| x == v),
        None => labels.contains_key(f.as_str()),
    };
    let neg = filters.get("label!");
    filters.get("label").iter().all(matches) && (neg.is_empty() || !neg.iter().all(matches))
}

/// The prune `all` filter: one value, parsed as Go's `strconv.ParseBool` (moby's texts).
fn prune_all(filters: &Filters) -> Result<bool> {
    let values = filters.get("all");
    match values.as_slice() {
        [] => Ok(false),
        [one] => match one.as_str() {
            "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
            "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
            other => Err(EngineError::InvalidRequest(format!(
                "invalid filter 'all': strconv.ParseBool: parsing {other:?}: invalid syntax"
            ))),
        },
        many => Err(EngineError::InvalidRequest(format!(
            "invalid filter 'all=[{}]': only one value is expected",
            many.join(" ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn vol(labels: &[(&str, &str)], opts: &[(&str, &str)]) -> Volume {
        let m = |p: &[(&str, &str)]| {
            p.iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        Volume {
            name: "v1".into(),
            driver: "local".into(),
            mountpoint: "/var/lib/berth/volumes/v1/_data".into(),
            created_at: chrono::Utc
                .with_ymd_and_hms(2026, 11, 23, 6, 12, 41)
                .unwrap(),
            labels: m(labels),
            options: m(opts),
            anonymous: false,
        }
    }

    #[test]
    fn volume_json_is_mobys_shape() {
        let j = volume_json(&vol(&[("a", "b")], &[]), None);
        assert_eq!(
            j.to_string(),
            r#"{"CreatedAt":"2026-11-23T06:12:41Z","Driver":"local","Labels":{"a":"b"},"Mountpoint":"/var/lib/berth/volumes/v1/_data","Name":"v1","Options":null,"Scope":"local"}"#
        );
        let j = volume_json(&vol(&[], &[("type", "tmpfs")]), Some((5, 1)));
        assert_eq!(j["Labels"], Value::Null);
        assert_eq!(j["Options"]["type"], "tmpfs");
        assert_eq!(j["UsageData"], json!({"Size": 5, "RefCount": 1}));
    }

    #[test]
    fn label_filters_like_moby() {
        let labels: BTreeMap<String, String> = [
            ("a".to_string(), "b".to_string()),
            ("c".to_string(), String::new()),
        ]
        .into();
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(labels_pass(&f("{}"), &labels));
        assert!(labels_pass(&f(r#"{"label":["a=b","c"]}"#), &labels));
        assert!(!labels_pass(&f(r#"{"label":["a=x"]}"#), &labels));
        assert!(!labels_pass(&f(r#"{"label":["zz"]}"#), &labels));
        assert!(!labels_pass(&f(r#"{"label!":["a"]}"#), &labels));
        assert!(labels_pass(&f(r#"{"label!":["a=x"]}"#), &labels));
        // label! excludes only when every value matches.
        assert!(labels_pass(&f(r#"{"label!":["a","zz"]}"#), &labels));
    }

    #[test]
    fn errors_keep_mobys_words_and_statuses() {
        use crate::ErrorKind;
        use volumes::VolumesError as V;
        let e = EngineError::volume("get", "nonexist", V::NotFound("nonexist".into()));
        assert_eq!(e.to_string(), "get nonexist: no such volume");
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = EngineError::volume(
            "create",
            "v3",
            V::InvalidOption("invalid option: \"x\"".into()),
        );
        assert_eq!(e.to_string(), "create v3: invalid option: \"x\"");
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        let e = EngineError::volume("create", "v5", V::UnknownDriver("foo".into()));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = EngineError::VolumeInUse {
            name: "usedvol".into(),
            ids: vec!["a1".into(), "b2".into()],
        };
        assert_eq!(e.to_string(), "remove usedvol: volume is in use - [a1, b2]");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(
            EngineError::from(V::ActiveMounts).kind(),
            ErrorKind::Conflict
        );
        assert!(matches!(
            EngineError::from(V::NotFound("x".into())),
            EngineError::NoSuchVolume(_)
        ));
    }

    #[test]
    fn prune_all_values() {
        let f = |s: &str| Filters::parse(s).unwrap();
        assert!(!prune_all(&f("{}")).unwrap());
        assert!(prune_all(&f(r#"{"all":{"true":true}}"#)).unwrap());
        assert!(prune_all(&f(r#"{"all":["1"]}"#)).unwrap());
        assert!(!prune_all(&f(r#"{"all":["false"]}"#)).unwrap());
        let e = prune_all(&f(r#"{"all":["maybe"]}"#)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "invalid filter 'all': strconv.ParseBool: parsing \"maybe\": invalid syntax"
        );
        assert_eq!(e.kind(), crate::ErrorKind::InvalidArgument);
        assert!(prune_all(&f(r#"{"all":["true","false"]}"#)).is_err());
    }
}
