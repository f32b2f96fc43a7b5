//! The persistent network record (`<data-root>/networks/<id>.json`) and its JSON view (moby's
//! `Network` object for `network ls` and `network inspect`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;

use chrono::{DateTime, Utc};
use network::ipam::Subnet;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{EngineError, Result, io_err};

/// moby's driver names.
pub(crate) const BRIDGE: &str = "bridge";
pub(crate) const HOST: &str = "host";
pub(crate) const NULL: &str = "null";

/// Bridge driver options berth understands (moby's `com.docker.network.*` keys).
pub(crate) const OPT_BRIDGE_NAME: &str = "com.docker.network.bridge.name";
pub(crate) const OPT_ICC: &str = "com.docker.network.bridge.enable_icc";
pub(crate) const OPT_MASQUERADE: &str = "com.docker.network.bridge.enable_ip_masquerade";
pub(crate) const OPT_HOST_BINDING: &str = "com.docker.network.bridge.host_binding_ipv4";
pub(crate) const OPT_MTU: &str = "com.docker.network.driver.mtu";
pub(crate) const OPT_DEFAULT_BRIDGE: &str = "com.docker.network.bridge.default_bridge";

/// One `IPAM.Config` entry as inspect shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct IpamEntry {
    pub subnet: String,
    #[serde(default)]
    pub gateway: String,
    #[serde(default)]
    pub ip_range: String,
    #[serde(default)]
    pub aux: BTreeMap<String, String>,
}

/// Everything berth keeps about one network.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NetworkRecord {
    pub id: String,
    pub name: String,
    /// `bridge`, `host` or `null`.
    pub driver: String,
    pub created: DateTime<Utc>,
    #[serde(default)]
    pub internal: bool,
    #[serde(default)]
    pub attachable: bool,
    #[serde(default)]
    pub enable_ipv6: bool,
    #[serde(default)]
    pub ipam_options: BTreeMap<String, String>,
    /// What the user asked for (`--subnet` …), echoed as is; empty when berth chose.
    #[serde(default)]
    pub ipam_requested: Vec<IpamEntry>,
    /// The subnet and gateway in use (chosen or requested); None for host and null.
    #[serde(default)]
    pub subnet: Option<String>,
    #[serde(default)]
    pub gateway: Option<String>,
    #[serde(default)]
    pub ip_range: Option<String>,
    /// Driver options as given (compose compares them with its file: never add to them).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The bridge interface (bridge driver only).
    #[serde(default)]
    pub bridge: String,
    /// One of the three networks every daemon has (`bridge`, `host`, `none`).
    #[serde(default)]
    pub predefined: bool,
}

/// A new random network ID (64 hex characters).
pub(crate) fn new_id() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

impl NetworkRecord {
    /// A network with a new ID and nothing configured yet.
    pub(crate) fn new(name: &str, driver: &str, predefined: bool) -> NetworkRecord {
        NetworkRecord {
            id: new_id(),
            name: name.to_string(),
            driver: driver.to_string(),
            created: Utc::now(),
            internal: false,
            attachable: false,
            enable_ipv6: false,
            ipam_options: BTreeMap::new(),
            ipam_requested: Vec::new(),
            subnet: None,
            gateway: None,
            ip_range: None,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
            bridge: String::new(),
            predefined,
        }
    }

    pub(crate) fn save(&self, dir: &Path) -> Result<()> {
        let path = dir.join(format!("{}.json", self.id));
        let json = serde_json::to_vec_pretty(self).map_err(|e| EngineError::Io {
            op: "encode",
            path: path.clone(),
            source: std::io::Error::other(e),
        })?;
        // Unchanged (the default bridge's record, rewritten at every start): nothing to write,
        // so berthd starts on a full data root, as dockerd does.
        if std::fs::read(&path).is_ok_and(|old| old == json) {
            return Ok(());
        }
        linux::fs::write_atomic(&path, &json, 0o600, true)?;
        Ok(())
    }

    pub(crate) fn load(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| io_err("read", path, e))?;
        serde_json::from_slice(&data).map_err(|e| EngineError::Io {
            op: "decode",
            path: path.to_path_buf(),
            source: std::io::Error::other(e),
        })
    }

    pub(crate) fn subnet(&self) -> Option<Subnet> {
        self.subnet.as_deref().and_then(|s| s.parse().ok())
    }

    pub(crate) fn gateway(&self) -> Option<Ipv4Addr> {
        self.gateway.as_deref().and_then(|s| s.parse().ok())
    }

    pub(crate) fn ip_range(&self) -> Option<Subnet> {
        self.ip_range.as_deref().and_then(|s| s.parse().ok())
    }

    /// A bool driver option (`true` unless set to something false).
    pub(crate) fn bool_option(&self, key: &str, default: bool) -> bool {
        self.options
            .get(key)
            .map_or(default, |v| matches!(v.as_str(), "true" | "1" | "yes"))
    }

    /// moby's user-configured-subnet rule for `--ip`.
    pub(crate) fn has_user_subnet(&self) -> bool {
        self.ipam_requested.iter().any(|c| !c.subnet.is_empty())
    }

    /// `network ls` / `network inspect`'s object; `containers` is the `Containers` map (empty in
    /// lists, as moby).
    pub(crate) fn view(&self, containers: Value) -> Value {
        let config: Vec<Value> = if self.driver == BRIDGE {
            let shown: Vec<IpamEntry> = if self.ipam_requested.is_empty() {
                vec![IpamEntry {
                    subnet: self.subnet.clone().unwrap_or_default(),
                    gateway: self.gateway.clone().unwrap_or_default(),
                    ..Default::default()
                }]
            } else {
                self.ipam_requested.clone()
            };
            shown
                .iter()
                .map(|c| {
                    let mut v = json!({"Subnet": c.subnet});
                    // moby shows the gateway it chose even when only a subnet was asked for.
                    let gw = if c.gateway.is_empty() {
                        self.gateway.clone().unwrap_or_default()
                    } else {
                        c.gateway.clone()
                    };
                    if !gw.is_empty() {
                        v["Gateway"] = json!(gw);
                    }
                    if !c.ip_range.is_empty() {
                        v["IPRange"] = json!(c.ip_range);
                    }
                    if !c.aux.is_empty() {
                        v["AuxiliaryAddresses"] = json!(c.aux);
                    }
                    v
                })
                .collect()
        } else {
            Vec::new()
        };
        json!({
            "Name": self.name,
            "Id": self.id,
            "Created": crate::rfc3339_nano(&self.created),
            "Scope": "local",
            "Driver": self.driver,
            "EnableIPv4": true,
            "EnableIPv6": self.enable_ipv6,
            "IPAM": {
                "Driver": "default",
                "Options": if self.ipam_options.is_empty() { Value::Null } else { json!(self.ipam_options) },
                "Config": config,
            },
            "Internal": self.internal,
            "Attachable": self.attachable,
            "Ingress": false,
            "ConfigFrom": {"Network": ""},
            "ConfigOnly": false,
            "Containers": containers,
            "Options": self.options,
            "Labels": self.labels,
        })
    }
}
