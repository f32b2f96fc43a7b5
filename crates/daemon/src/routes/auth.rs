//! `POST /auth` (`docker login`): the registry checks the credentials; 200
//! `{"Status":"Login Succeeded","IdentityToken":""}`, or moby's 401 text.

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use engine::RegistryCredentials;

use super::AppState;
use super::containers::JsonBody;
use crate::error::Result;

/// The request body (moby's `registry.AuthConfig`, the fields used).
#[derive(Debug, serde::Deserialize)]
struct AuthConfig {
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    serveraddress: String,
}

pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/auth", post(auth))
}

async fn auth(
    State(engine): State<AppState>,
    JsonBody(cfg): JsonBody<AuthConfig>,
) -> Result<Response> {
    let creds = RegistryCredentials {
        username: cfg.username,
        password: cfg.password,
    };
    engine.registry_login(&cfg.serveraddress, creds).await?;
    Ok(Json(serde_json::json!({"Status": "Login Succeeded", "IdentityToken": ""})).into_response())
}
