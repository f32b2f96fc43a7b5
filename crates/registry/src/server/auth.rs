//! Optional htpasswd basic authentication (bcrypt entries only, as docker's registry).
//! Credentials that verified once are remembered by their sha256, so bcrypt (deliberately
//! slow) runs once per credential, not once per request.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Mutex;

use base64::Engine as _;
use http::HeaderMap;
use storage::Digest;

use crate::{RegistryError, Result};

/// The users allowed in, from an htpasswd file.
#[derive(Debug)]
pub(crate) struct Htpasswd {
    users: HashMap<String, String>,
    verified: Mutex<HashSet<Digest>>,
}

impl Htpasswd {
    /// Reads `user:bcrypt-hash` lines (blank lines and `#` comments skipped).
    pub(crate) fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| RegistryError::Other(format!("reading {}: {e}", path.display())))?;
        Self::parse(&text)
    }

    pub(crate) fn parse(text: &str) -> Result<Self> {
        let mut users = HashMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (user, hash) = line.split_once(':').ok_or_else(|| {
                RegistryError::Other(format!("htpasswd line {}: expected user:hash", n + 1))
            })?;
            if !hash.starts_with("$2") {
                return Err(RegistryError::Other(format!(
                    "htpasswd line {}: only bcrypt entries are supported (htpasswd -B)",
                    n + 1
                )));
            }
            users.insert(user.to_string(), hash.to_string());
        }
        Ok(Self {
            users,
            verified: Mutex::default(),
        })
    }

    /// Whether the request's `Authorization: Basic` credentials are valid. Blocking (bcrypt).
    pub(crate) fn check(&self, headers: &HeaderMap) -> bool {
        let Some(creds) = headers
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Basic "))
            .and_then(|b| {
                base64::engine::general_purpose::STANDARD
                    .decode(b.trim())
                    .ok()
            })
        else {
            return false;
        };
        let key = Digest::of(&creds);
        let lock = || {
            self.verified
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        };
        if lock().contains(&key) {
            return true;
        }
        let Some((user, pass)) = std::str::from_utf8(&creds)
            .ok()
            .and_then(|c| c.split_once(':'))
        else {
            return false;
        };
        let ok = self
            .users
            .get(user)
            .is_some_and(|hash| bcrypt::verify(pass, hash).unwrap_or(false));
        if ok {
            lock().insert(key);
        }
        ok
    }
}
