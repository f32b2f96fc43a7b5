//! berthd: the HTTP edge of berth. It serves the Docker Engine API (v1.47) on unix sockets and
//! TCP (optionally mutual TLS) with axum, checks API versions, maps engine error kinds to
//! statuses, and streams progress and archives. It knows nothing of how images or containers work: that is the engine's job.

pub mod config;
pub mod connections;
mod drain;
mod error;
pub mod metrics;
pub mod reload;
mod routes;
pub mod sd_notify;
pub mod server;
mod stream;
pub mod tls;
mod version;

pub use error::{DaemonError, Result, status_of};
pub use routes::app;
