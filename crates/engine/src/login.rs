//! `docker login` (`POST /auth`): the server address as the CLI sends it becomes a registry
//! domain, and the registry client checks the credentials against it. Nothing is stored:
//! the CLI keeps credentials in its config.json and sends them with each pull and push.
//!
//! Knows nothing of HTTP.

use registry::client::Credentials;

use crate::{Engine, Result};

/// The registry domain of a `serveraddress` (`https://index.docker.io/v1/` → `docker.io`,
/// `http://127.0.0.1:5000/` → `127.0.0.1:5000`); empty means Docker Hub.
fn login_domain(server: &str) -> String {
    let s = server.trim();
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let host = s.split('/').next().unwrap_or("");
    match host {
        "" | "index.docker.io" | "registry-1.docker.io" | "docker.io" => "docker.io".into(),
        h => h.to_string(),
    }
}

impl Engine {
    /// `POST /auth`: succeeds when the registry accepts `creds`.
    pub async fn registry_login(&self, server: &str, creds: Credentials) -> Result<()> {
        let client = self.registries.client()?;
        client.login(&login_domain(server), creds).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses() {
        assert_eq!(login_domain("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(login_domain(""), "docker.io");
        assert_eq!(login_domain("127.0.0.1:5000"), "127.0.0.1:5000");
        assert_eq!(login_domain("http://localhost:5999/"), "localhost:5999");
        assert_eq!(login_domain("ghcr.io"), "ghcr.io");
    }
}
