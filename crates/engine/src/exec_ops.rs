//! The exec operations of the engine, as the daemon calls them.

use api_types::models::ExecConfig;
use serde_json::Value;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::{Engine, ExecStartRequest, Result};

impl Engine {
    /// `POST /containers/{id}/exec`: the new exec's ID.
    pub fn exec_create(&self, container: &str, config: ExecConfig) -> Result<String> {
        self.containers.exec_create(container, config)
    }

    /// Validates an exec before a hijack; returns whether it has a tty.
    pub fn exec_check(&self, id: &str) -> Result<bool> {
        self.containers.exec_check(id)
    }

    /// `POST /exec/{id}/start` with `Detach`.
    pub async fn exec_start_detached(&self, id: &str, req: ExecStartRequest) -> Result<()> {
        self.containers.exec_start_detached(id, req).await
    }

    /// `POST /exec/{id}/start`, attached: runs the session on the hijacked connection until the
    /// process ends (errors after the hijack are written into the stream too).
    pub async fn exec_start_attached<S>(
        &self,
        id: &str,
        req: ExecStartRequest,
        client: S,
    ) -> Result<()>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        self.containers.exec_start_attached(id, req, client).await
    }

    /// `GET /exec/{id}/json`.
    pub fn exec_inspect(&self, id: &str) -> Result<Value> {
        self.containers.exec_inspect(id)
    }

    /// `POST /exec/{id}/resize`.
    pub async fn exec_resize(&self, id: &str, rows: u16, cols: u16) -> Result<()> {
        self.containers.exec_resize(id, rows, cols).await
    }
}
