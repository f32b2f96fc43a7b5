//! `docker login`'s check: the registry's `/v2/` with the given credentials, through the
//! challenge it answers with (basic, or a bearer token from its realm for the account alone).
//!
//! Knows nothing of where credentials are stored (the CLI keeps them).

use reqwest::Method;

use super::session::Session;
use super::{Client, Credentials};
use crate::{RegistryError, Result};

impl Client {
    /// Succeeds when `domain` accepts `creds`; a refusal is [`RegistryError::LoginFailed`]
    /// in moby's words.
    pub async fn login(&self, domain: &str, creds: Credentials) -> Result<()> {
        let session = match Session::open(self, domain, "", Some(creds)).await {
            Err(RegistryError::Denied { detail, .. } | RegistryError::PushDenied(detail)) => {
                return Err(RegistryError::LoginFailed(detail));
            }
            other => other?,
        };
        let url = session.root_url();
        match session.send(Method::GET, &url, &mut |r| r, true).await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(RegistryError::LoginFailed(format!(
                "login attempt to {url} failed with status: {}",
                r.status()
            ))),
            Err(RegistryError::Denied { .. } | RegistryError::PushDenied(_)) => {
                Err(RegistryError::LoginFailed(format!(
                    "login attempt to {url} failed with status: 401 Unauthorized"
                )))
            }
            Err(e) => Err(e),
        }
    }
}
