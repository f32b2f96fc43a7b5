//! The container operations of the engine, as the daemon calls them.

use std::sync::Arc;

use api_types::models::ContainerCreateBody;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{
    AttachRequest, ByteStream, ContainerPruneResponse, Engine, EngineError, Filters, LogsRequest,
    Result, TopResponse, WaitCondition, WaitFuture,
};

impl Engine {
    /// `POST /containers/create`: the new container's ID.
    pub async fn container_create(
        &self,
        name: Option<&str>,
        body: ContainerCreateBody,
    ) -> Result<String> {
        let body = self.with_daemon_defaults(body);
        self.containers.create(name, body).await
    }

    /// `POST /containers/{id}/start`: false when it was already running (304).
    pub async fn container_start(&self, id: &str) -> Result<bool> {
        self.containers.start(id).await
    }

    /// `POST /containers/{id}/stop`: false when it was not running (304).
    pub async fn container_stop(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<bool> {
        self.containers.stop(id, timeout, signal).await
    }

    /// `POST /containers/{id}/restart`.
    pub async fn container_restart(
        &self,
        id: &str,
        timeout: Option<i64>,
        signal: Option<&str>,
    ) -> Result<()> {
        self.containers.stop(id, timeout, signal).await?;
        self.containers.start(id).await?;
        self.containers.event_ref(id, "restart", &[]);
        Ok(())
    }

    /// `POST /containers/{id}/kill`.
    pub async fn container_kill(&self, id: &str, signal: Option<&str>) -> Result<()> {
        self.containers.kill(id, signal).await
    }

    /// `DELETE /containers/{id}`.
    pub async fn container_remove(&self, id: &str, force: bool) -> Result<()> {
        self.containers.remove(id, force).await
    }

    /// `DELETE /containers/{id}?v=1`: also removes the container's anonymous volumes.
    pub async fn container_remove_with_volumes(
        &self,
        id: &str,
        force: bool,
        volumes: bool,
    ) -> Result<()> {
        self.containers.remove_with(id, force, volumes).await
    }

    /// `POST /containers/{id}/wait`: resolves the container now; the future answers later.
    pub fn container_wait(&self, id: &str, condition: WaitCondition) -> Result<WaitFuture> {
        self.containers.wait(id, condition)
    }

    /// `POST /containers/{id}/pause`: freezes the container's cgroup.
    pub async fn container_pause(&self, id: &str) -> Result<()> {
        self.containers.pause(id).await
    }

    /// `POST /containers/{id}/unpause`: thaws the container's cgroup.
    pub async fn container_unpause(&self, id: &str) -> Result<()> {
        self.containers.unpause(id).await
    }

    /// `GET /containers/{id}/top?ps_args=`: the host's `ps` rows of the container's processes.
    pub async fn container_top(&self, id: &str, ps_args: &str) -> Result<TopResponse> {
        self.containers.top(id, ps_args).await
    }

    /// `POST /containers/prune?filters=`: removes the containers that are not running.
    pub async fn containers_prune(&self, filters: &Filters) -> Result<ContainerPruneResponse> {
        self.containers.prune(filters).await
    }

    /// `POST /containers/{id}/rename`.
    pub fn container_rename(&self, id: &str, name: &str) -> Result<()> {
        self.containers.rename(id, name)
    }

    /// `POST /containers/{id}/resize`.
    pub async fn container_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        self.containers.resize(id, rows, cols).await
    }

    /// `GET /containers/json`.
    pub async fn containers_list(
        &self,
        all: bool,
        limit: Option<i64>,
        size: bool,
        filters: &Filters,
    ) -> Result<Vec<Value>> {
        let c = Arc::clone(&self.containers);
        let filters = filters.clone();
        tokio::task::spawn_blocking(move || c.list(all, limit, size, &filters))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "container list",
            })?
    }

    /// `GET /containers/{id}/json`.
    pub async fn container_inspect(&self, id: &str, size: bool) -> Result<Value> {
        let c = Arc::clone(&self.containers);
        let id = id.to_string();
        tokio::task::spawn_blocking(move || c.inspect(&id, size))
            .await
            .map_err(|_| EngineError::TaskFailed {
                what: "container inspect",
            })?
    }

    /// `GET /containers/{id}/logs`: whether the container has a tty, and the frames.
    pub fn container_logs(&self, id: &str, req: LogsRequest) -> Result<(bool, ByteStream)> {
        self.containers.logs(id, req)
    }

    /// Validates an attach before the hijack; returns whether the container has a tty.
    pub fn container_attach_check(&self, id: &str) -> Result<bool> {
        self.containers.attach_check(id)
    }

    /// Runs an attach session on the hijacked connection.
    pub async fn container_attach<S>(&self, id: &str, req: AttachRequest, client: S) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.containers.attach(id, req, client).await
    }

    /// `GET /containers/{id}/changes`: the changes of the container's writable layer, or
    /// `None` when there are none (moby answers `null` then).
    pub async fn container_changes(
        &self,
        id: &str,
    ) -> Result<Option<Vec<api_types::models::FilesystemChange>>> {
        use api_types::models::{ChangeType, FilesystemChange};
        let list = self.containers.changes(id).await?;
        Ok((!list.is_empty()).then(|| {
            list.into_iter()
                .map(|c| FilesystemChange {
                    path: c.path,
                    kind: match c.kind.code() {
                        0 => ChangeType::_0,
                        1 => ChangeType::_1,
                        _ => ChangeType::_2,
                    },
                })
                .collect()
        }))
    }

    /// `POST /commit`: the new image's ID (`sha256:…`).
    pub async fn commit(&self, req: crate::CommitRequest) -> Result<String> {
        let tagged = |r: &str| self.image_event(r, "tag", Some(r));
        Ok(self.containers.commit(req, &tagged).await?.id)
    }
}

/// `docker cp` and `docker export` (see `containers/archive.rs`).
impl Engine {
    /// `HEAD /containers/{id}/archive?path=`: the stat of a path inside the container.
    pub async fn container_stat_path(&self, id: &str, path: &str) -> Result<crate::PathStat> {
        self.containers.stat_path(id, path).await
    }

    /// `GET /containers/{id}/archive?path=`: the stat, and the tar of the path, streamed.
    pub async fn container_archive(
        &self,
        id: &str,
        path: &str,
    ) -> Result<(crate::PathStat, ByteStream)> {
        self.containers.archive(id, path).await
    }

    /// `PUT /containers/{id}/archive?path=`: extracts the tar read from `body` into a
    /// directory of the container.
    pub async fn container_extract<R>(
        &self,
        id: &str,
        req: crate::ExtractRequest,
        body: R,
    ) -> Result<()>
    where
        R: AsyncRead + Send + Unpin + 'static,
    {
        self.containers.extract(id, req, body).await
    }

    /// `GET /containers/{id}/export`: the container's whole filesystem as a tar, streamed.
    pub async fn container_export(&self, id: &str) -> Result<ByteStream> {
        self.containers.export(id).await
    }
}

/// `docker stats` and `docker update` (see `containers/stats.rs`, `containers/update.rs`).
impl Engine {
    /// `GET /containers/{id}/stats?stream=&one-shot=`: resolves the container now (404 before
    /// any body); stats objects arrive on the channel.
    pub fn container_stats(
        &self,
        id: &str,
        stream: bool,
        one_shot: bool,
    ) -> Result<crate::StatsStream> {
        self.containers.stats(id, stream, one_shot)
    }

    /// `POST /containers/{id}/update`: the warnings (`None` = Docker's `null`).
    pub async fn container_update(
        &self,
        id: &str,
        body: api_types::models::ContainerUpdateBody,
    ) -> Result<Option<Vec<String>>> {
        self.containers.update(id, body).await
    }
}
