//! The network operations of the engine, as the daemon calls them: create, inspect, list (with
//! moby's filters), remove (403 for the predefined networks and for networks with running
//! containers), prune, connect and disconnect, and the `network` events.
//!
//! Networks are `crate::networks`; which containers use one is decided from container records
//! (`Containers::network_users`), as moby decides it from its endpoints.

use api_types::models::{NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest};
use chrono::Utc;
use serde_json::{Value, json};

use crate::networks::NetworkRecord;
use crate::volumes_ops::labels_pass;
use crate::{Engine, EngineError, Filters, Result};

/// Filters `GET /networks` accepts (moby's `acceptedFilters`).
const LIST_FILTERS: &[&str] = &["dangling", "driver", "id", "label", "name", "scope", "type"];
/// Filters `POST /networks/prune` accepts.
const PRUNE_FILTERS: &[&str] = &["until", "label", "label!"];

impl Engine {
    /// `POST /networks/create` → `{"Id": …, "Warning": ""}` (201).
    pub async fn network_create(&self, req: NetworkCreateRequest) -> Result<Value> {
        let rec = self.containers.networks.create(&req)?;
        let (c, id) = (std::sync::Arc::clone(&self.containers), rec.id.clone());
        c.network_event(&rec, "create", "");
        // The bridge exists from create on, as with Docker.
        if let Err(e) = c.networks.ensure_ready(&id).await {
            let _ = c.networks.remove(&id).await;
            return Err(e);
        }
        Ok(json!({"Id": rec.id, "Warning": ""}))
    }

    /// `GET /networks/{id}` → the network with its running containers.
    pub async fn network_inspect(&self, reference: &str) -> Result<Value> {
        let rec = self.containers.networks.get(reference)?;
        Ok(rec.view(self.containers.network_members(&rec.id)))
    }

    /// `GET /networks?filters=` → every network that passes the filters.
    pub async fn network_list(&self, filters: &Filters) -> Result<Value> {
        filters.validate(LIST_FILTERS)?;
        let dangling = filters.bool_value("dangling")?;
        let types = filters.get("type");
        for t in &types {
            if t != "custom" && t != "builtin" {
                return Err(EngineError::InvalidRequest(format!(
                    "invalid filter: 'type'='{t}'"
                )));
            }
        }
        let mut out = Vec::new();
        for rec in self.containers.networks.list() {
            let names = filters.get("name");
            let ids = filters.get("id");
            let drivers = filters.get("driver");
            let scopes = filters.get("scope");
            let ok = (names.is_empty() || names.iter().any(|n| rec.name.contains(n.as_str())))
                && (ids.is_empty() || ids.iter().any(|i| rec.id.starts_with(i.as_str())))
                && (drivers.is_empty() || drivers.contains(&rec.driver))
                && (scopes.is_empty() || scopes.iter().any(|s| s == "local"))
                && (types.is_empty() || types.iter().any(|t| (t == "builtin") == rec.predefined))
                && labels_pass(filters, &rec.labels)
                && dangling.is_none_or(|d| {
                    d == (!rec.predefined && self.containers.network_users(&rec.id).is_empty())
                });
            if ok {
                out.push(rec.view(json!({})));
            }
        }
        Ok(Value::Array(out))
    }

    /// `DELETE /networks/{id}`.
    pub async fn network_remove(&self, reference: &str) -> Result<()> {
        let rec = self.containers.networks.get(reference)?;
        self.remove_network(&rec).await
    }

    async fn remove_network(&self, rec: &NetworkRecord) -> Result<()> {
        if !rec.predefined && !self.containers.network_users(&rec.id).is_empty() {
            return Err(EngineError::Forbidden(format!(
                "error while removing network: network {} id {} has active endpoints",
                rec.name, rec.id
            )));
        }
        self.containers.networks.remove(&rec.id).await?;
        self.containers.network_event(rec, "destroy", "");
        Ok(())
    }

    /// `POST /networks/prune` → `{"NetworksDeleted": [names]}`: user networks no running
    /// container uses.
    pub async fn network_prune(&self, filters: &Filters) -> Result<Value> {
        filters.validate(PRUNE_FILTERS)?;
        let until = match filters.single("until")? {
            Some(u) => Some(images::parse_timestamp(&u, Utc::now())?),
            None => None,
        };
        let mut deleted = Vec::new();
        for rec in self.containers.networks.list() {
            if rec.predefined
                || until.is_some_and(|u| rec.created >= u)
                || !labels_pass(filters, &rec.labels)
                || !self.containers.network_users(&rec.id).is_empty()
            {
                continue;
            }
            match self.remove_network(&rec).await {
                Ok(()) => deleted.push(rec.name.clone()),
                Err(e) => tracing::warn!(network = rec.name, error = %e, "prune"),
            }
        }
        self.containers.events.emit(
            crate::events::EventType::NETWORK,
            "prune",
            String::new(),
            std::collections::HashMap::new(),
        );
        // moby's nil slice: null when nothing was deleted.
        let deleted = if deleted.is_empty() {
            Value::Null
        } else {
            json!(deleted)
        };
        Ok(json!({"NetworksDeleted": deleted}))
    }

    /// `POST /networks/{id}/connect`.
    pub async fn network_connect(&self, network: &str, req: NetworkConnectRequest) -> Result<()> {
        self.containers
            .network_connect(network, &req.container, req.endpoint_config)
            .await
    }

    /// `POST /networks/{id}/disconnect`.
    pub async fn network_disconnect(
        &self,
        network: &str,
        req: NetworkDisconnectRequest,
    ) -> Result<()> {
        self.containers
            .network_disconnect(network, &req.container, req.force.unwrap_or(false))
            .await
    }

    /// Called once when berthd stops: removes berth's nftables table when no container runs.
    pub fn network_shutdown(&self) {
        let running = self.containers.any_running();
        self.containers.networks.shutdown(running);
    }
}
