//! One conversation with one repository of one registry: where it lives (scheme, API host),
//! authentication (ping `/v2/`, answer the challenge once, re-answer a 401 once), bounded reads
//! and bounded retries with back-off.
//!
//! Credentials go only to the registry host and the token realm it names: redirects (blob
//! downloads to a CDN) are followed by reqwest, which drops `Authorization` when the host,
//! port or scheme changes.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use reqwest::{Response, StatusCode};
use storage::Digest;
use tokio::sync::Mutex;

use super::auth::{Challenge, TokenResponse, basic_header, parse_challenges};
use super::{Client, Credentials};
use crate::{RegistryError, Result};

/// Attempts of one request (or one blob download) before a transient failure is returned.
pub(crate) const ATTEMPTS: u32 = 4;
/// Token answers and registry error bodies are read up to this size.
const MAX_SMALL: u64 = 1 << 20;
/// Manifests, configs, tokens and error bodies must arrive within this time.
const SMALL_BODY_TIME: Duration = Duration::from_secs(60);

/// Docker Hub's API host for the `docker.io` domain.
pub(crate) fn api_host(domain: &str) -> &str {
    if domain == "docker.io" || domain == "index.docker.io" {
        "registry-1.docker.io"
    } else {
        domain
    }
}

/// Whether `domain` (`host[:port]`) is a loopback address or `localhost`: plain HTTP allowed.
pub(crate) fn is_loopback(domain: &str) -> bool {
    let host = if let Some(rest) = domain.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        domain.split(':').next().unwrap_or("")
    };
    if host == "localhost" {
        return true;
    }
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

/// The base URLs to try, in order: HTTPS, then (insecure registries only) plain HTTP.
pub(crate) fn bases(domain: &str, insecure: bool) -> Vec<String> {
    let host = api_host(domain);
    let mut out = vec![format!("https://{host}")];
    if insecure {
        out.push(format!("http://{host}"));
    }
    out
}

/// The back-off before attempt `n` (1-based retries): 0.5 s, 1 s, 2 s…, at most 8 s.
pub(crate) fn backoff(n: u32) -> Duration {
    Duration::from_millis(500u64.saturating_mul(1 << n.min(4).saturating_sub(1)))
        .min(Duration::from_secs(8))
}

fn transport(url: &str, e: &reqwest::Error) -> RegistryError {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    RegistryError::Transport(format!("Get \"{url}\": {msg}"))
}

/// The registry's error body as Docker prints it: `code in words: message` of the first error.
pub(crate) fn error_detail(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Errs {
        #[serde(default)]
        errors: Vec<Err>,
    }
    #[derive(serde::Deserialize)]
    struct Err {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
    }
    match serde_json::from_slice::<Errs>(body) {
        Ok(e) if !e.errors.is_empty() => e
            .errors
            .iter()
            .map(|e| {
                let code = e.code.to_ascii_lowercase().replace('_', " ");
                if e.message.is_empty() {
                    code
                } else {
                    format!("{code}: {}", e.message)
                }
            })
            .collect::<Vec<_>>()
            .join(", "),
        _ => String::from_utf8_lossy(&body[..body.len().min(200)])
            .trim()
            .to_string(),
    }
}

/// Reads a whole body of at most `max` bytes.
pub(crate) async fn read_limited(resp: Response, max: u64, what: &str) -> Result<Vec<u8>> {
    let url = resp.url().to_string();
    if resp.content_length().is_some_and(|n| n > max) {
        return Err(RegistryError::Protocol(format!(
            "{what} is larger than {max} bytes"
        )));
    }
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    let read = async {
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| transport(&url, &e))?;
            if out.len() as u64 + chunk.len() as u64 > max {
                return Err(RegistryError::Protocol(format!(
                    "{what} is larger than {max} bytes"
                )));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(())
    };
    // A small body that trickles in (a byte now and then keeps the read timeout happy) is
    // bounded as a whole.
    tokio::time::timeout(SMALL_BODY_TIME, read)
        .await
        .map_err(|_| {
            RegistryError::Transport(format!(
                "Get \"{url}\": {what} not received within {}s",
                SMALL_BODY_TIME.as_secs()
            ))
        })??;
    Ok(out)
}

/// A repository on a registry, authenticated for pulling.
pub(crate) struct Session {
    http: reqwest::Client,
    base: String,
    repository: String,
    creds: Option<Credentials>,
    auth: Mutex<Option<String>>,
    /// The token scope's actions: `pull`, or `pull,push` for a push session.
    actions: &'static str,
    /// Other repositories a token must also allow pulling from (a push's mount sources).
    pull_from: Vec<String>,
}

impl Session {
    /// Finds the registry (HTTPS, or plain HTTP for insecure ones) with `GET /v2/` and
    /// answers its challenge.
    pub(crate) async fn open(
        client: &Client,
        domain: &str,
        repository: &str,
        creds: Option<Credentials>,
    ) -> Result<Self> {
        Self::open_for(client, domain, repository, creds, "pull").await
    }

    /// [`Session::open`] with the token scope's actions (`pull,push` to push).
    pub(crate) async fn open_for(
        client: &Client,
        domain: &str,
        repository: &str,
        creds: Option<Credentials>,
        actions: &'static str,
    ) -> Result<Self> {
        Self::open_scoped(client, domain, repository, creds, actions, Vec::new()).await
    }

    /// [`Session::open_for`] whose tokens also cover `pull` on the repositories `pull_from`
    /// (a push mounting blobs from them).
    pub(crate) async fn open_scoped(
        client: &Client,
        domain: &str,
        repository: &str,
        creds: Option<Credentials>,
        actions: &'static str,
        pull_from: Vec<String>,
    ) -> Result<Self> {
        let insecure = client.is_insecure(domain);
        let http = client.transport(domain, insecure)?;
        let candidates = bases(domain, insecure)
            .into_iter()
            .map(|b| (b, http.clone()))
            .collect();
        Self::open_at(
            candidates,
            domain,
            repository,
            creds,
            (actions, pull_from),
            true,
        )
        .await
    }

    /// Opens the first of `candidates` (base URL, client) that answers `GET /v2/`, for
    /// `scope` (token actions, extra repositories to pull from). Only the last candidate is
    /// retried, and only with `retry_last`.
    pub(crate) async fn open_at(
        candidates: Vec<(String, reqwest::Client)>,
        domain: &str,
        repository: &str,
        creds: Option<Credentials>,
        scope: (&'static str, Vec<String>),
        retry_last: bool,
    ) -> Result<Self> {
        let (actions, pull_from) = scope;
        let mut last_err = None;
        let n = candidates.len();
        for (i, (base, http)) in candidates.into_iter().enumerate() {
            let url = format!("{base}/v2/");
            // With a fallback left (HTTPS before plain HTTP), one try is enough.
            let attempts = if i + 1 < n || !retry_last {
                1
            } else {
                ATTEMPTS
            };
            let resp = match Self::send_retrying(&http, &url, None, None, attempts).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::debug!(%url, error = %e, "registry ping failed");
                    last_err = Some(e);
                    continue;
                }
            };
            let session = Self {
                http: http.clone(),
                base,
                repository: repository.to_string(),
                creds,
                auth: Mutex::new(None),
                actions,
                pull_from: pull_from.clone(),
            };
            if resp.status() == StatusCode::UNAUTHORIZED {
                session.answer(&resp).await?;
            }
            return Ok(session);
        }
        Err(last_err
            .unwrap_or_else(|| RegistryError::Transport(format!("no endpoint for {domain}"))))
    }

    /// `GET url` with retries for connection failures, timeouts, 429 and 5xx.
    async fn send_retrying(
        http: &reqwest::Client,
        url: &str,
        accept: Option<&str>,
        auth: Option<&str>,
        attempts: u32,
    ) -> Result<Response> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = http.get(url);
            if let Some(a) = accept {
                req = req.header(ACCEPT, a);
            }
            if let Some(a) = auth {
                req = req.header(AUTHORIZATION, a);
            }
            let err = match req.send().await {
                Ok(r)
                    if r.status().is_server_error()
                        || r.status() == StatusCode::TOO_MANY_REQUESTS =>
                {
                    RegistryError::Transport(format!(
                        "Get \"{url}\": the registry answered {}",
                        r.status()
                    ))
                }
                Ok(r) => return Ok(r),
                // A TLS or protocol failure is not going to fix itself: no retry.
                Err(e) if e.is_builder() || e.is_redirect() => return Err(transport(url, &e)),
                Err(e) if e.is_connect() && is_tls_error(&e) => return Err(transport(url, &e)),
                Err(e) => transport(url, &e),
            };
            if attempt >= attempts {
                return Err(err);
            }
            tracing::debug!(%url, error = %err, attempt, "retrying");
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// Answers a 401's challenge: a bearer token from the realm, or basic credentials.
    async fn answer(&self, resp: &Response) -> Result<()> {
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(parse_challenges)
            .collect();
        if let Some(c) = challenges.iter().find(|c| c.scheme == "bearer") {
            let token = self.token(c).await?;
            *self.auth.lock().await = Some(format!("Bearer {token}"));
            return Ok(());
        }
        if challenges.iter().any(|c| c.scheme == "basic")
            && let Some(cr) = &self.creds
        {
            *self.auth.lock().await = Some(basic_header(&cr.username, &cr.password));
            return Ok(());
        }
        if self.is_push() {
            // moby's text when a basic challenge finds no credentials.
            return Err(self.denied("no basic auth credentials".into()));
        }
        Err(self.denied("authentication required".into()))
    }

    async fn token(&self, c: &Challenge) -> Result<String> {
        let realm = c
            .params
            .get("realm")
            .ok_or_else(|| RegistryError::Protocol("bearer challenge without realm".into()))?;
        let mut url = reqwest::Url::parse(realm)
            .map_err(|e| RegistryError::Protocol(format!("bad token realm {realm:?}: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = c.params.get("service") {
                q.append_pair("service", s);
            }
            // A login session names no repository: a token for the account alone.
            if !self.repository.is_empty() {
                q.append_pair(
                    "scope",
                    &format!("repository:{}:{}", self.repository, self.actions),
                );
                for from in &self.pull_from {
                    q.append_pair("scope", &format!("repository:{from}:pull"));
                }
            }
        }
        let basic = self
            .creds
            .as_ref()
            .map(|cr| basic_header(&cr.username, &cr.password));
        let resp =
            Self::send_retrying(&self.http, url.as_str(), None, basic.as_deref(), ATTEMPTS).await?;
        let status = resp.status();
        let body = read_limited(resp, MAX_SMALL, "token response").await?;
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            return Err(self.denied(format!("unauthorized: {}", error_detail(&body))));
        }
        if !status.is_success() {
            return Err(RegistryError::Protocol(format!(
                "token request to {realm} answered {status}: {}",
                error_detail(&body)
            )));
        }
        let t: TokenResponse = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("bad token response: {e}")))?;
        t.into_token()
            .ok_or_else(|| RegistryError::Protocol("token response without a token".into()))
    }

    fn is_push(&self) -> bool {
        self.actions.contains("push")
    }

    fn denied(&self, detail: String) -> RegistryError {
        if self.is_push() {
            return RegistryError::PushDenied(detail);
        }
        RegistryError::Denied {
            repository: self.repository.clone(),
            detail,
        }
    }

    /// `GET /v2/<repo>/<kind>/<reference>`, authenticated; a 401 is answered once more
    /// (a token may expire mid-pull), then it is an error. Non-2xx answers are returned.
    pub(crate) async fn get(
        &self,
        kind: &str,
        reference: &str,
        accept: Option<&str>,
        attempts: u32,
    ) -> Result<Response> {
        let url = format!("{}/v2/{}/{kind}/{reference}", self.base, self.repository);
        let mut answered = false;
        loop {
            let auth = self.auth.lock().await.clone();
            let resp =
                Self::send_retrying(&self.http, &url, accept, auth.as_deref(), attempts).await?;
            if resp.status() != StatusCode::UNAUTHORIZED {
                return Ok(resp);
            }
            if answered {
                let body = read_limited(resp, MAX_SMALL, "error body")
                    .await
                    .unwrap_or_default();
                return Err(self.denied(error_detail(&body)));
            }
            self.answer(&resp).await?;
            answered = true;
        }
    }

    /// `<base>/v2/`, the registry's API root.
    pub(crate) fn root_url(&self) -> String {
        format!("{}/v2/", self.base)
    }

    /// `<base>/v2/<repository>/<tail>`.
    pub(crate) fn repo_url(&self, tail: &str) -> String {
        format!("{}/v2/{}/{tail}", self.base, self.repository)
    }

    /// Resolves a `Location` header (absolute, or relative to the registry) into a URL.
    pub(crate) fn resolve(&self, location: &str) -> Result<reqwest::Url> {
        let base = reqwest::Url::parse(&self.base)
            .map_err(|e| RegistryError::Protocol(format!("bad registry URL: {e}")))?;
        base.join(location)
            .map_err(|e| RegistryError::Protocol(format!("bad upload location {location:?}: {e}")))
    }

    /// Sends `method url` authenticated, `build` adding headers and body. With `replay` (no
    /// streamed body), a 401 is answered once and the request sent again, and connection
    /// failures, 429 and 5xx are retried; without it the request goes out once. Non-2xx
    /// answers other than a final 401 are returned.
    pub(crate) async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        build: &mut (dyn FnMut(reqwest::RequestBuilder) -> reqwest::RequestBuilder + Send),
        replay: bool,
    ) -> Result<Response> {
        let mut answered = false;
        let mut attempt = 0;
        // Credentials go to the registry only, never to another host an upload's Location
        // names.
        let same_origin = match (reqwest::Url::parse(url), reqwest::Url::parse(&self.base)) {
            (Ok(a), Ok(b)) => a.origin() == b.origin(),
            _ => false,
        };
        loop {
            attempt += 1;
            let mut req = self.http.request(method.clone(), url);
            if same_origin && let Some(a) = self.auth.lock().await.clone() {
                req = req.header(AUTHORIZATION, a);
            }
            let err = match build(req).send().await {
                Ok(r) if r.status() == StatusCode::UNAUTHORIZED => {
                    if answered || !replay {
                        let body = read_limited(r, MAX_SMALL, "error body")
                            .await
                            .unwrap_or_default();
                        // A HEAD's 401 has no body: the words registries put in one.
                        let detail = match error_detail(&body) {
                            d if d.is_empty() => "unauthorized: authentication required".into(),
                            d => d,
                        };
                        return Err(self.denied(detail));
                    }
                    self.answer(&r).await?;
                    answered = true;
                    continue;
                }
                Ok(r)
                    if replay
                        && (r.status().is_server_error()
                            || r.status() == StatusCode::TOO_MANY_REQUESTS) =>
                {
                    RegistryError::Transport(format!(
                        "{method} \"{url}\": the registry answered {}",
                        r.status()
                    ))
                }
                Ok(r) => return Ok(r),
                Err(e) => match transport(url, &e) {
                    RegistryError::Transport(msg) => {
                        RegistryError::Transport(msg.replacen("Get ", &format!("{method} "), 1))
                    }
                    other => other,
                },
            };
            if !replay || attempt >= ATTEMPTS {
                return Err(err);
            }
            tokio::time::sleep(backoff(attempt)).await;
        }
    }

    /// The manifest for a tag or digest: (bytes, content type). At most `max` bytes.
    pub(crate) async fn manifest(
        &self,
        reference: &str,
        display: &str,
        max: u64,
    ) -> Result<(Vec<u8>, String)> {
        let resp = self
            .get(
                "manifests",
                reference,
                Some(super::manifest::ACCEPT),
                ATTEMPTS,
            )
            .await?;
        let status = resp.status();
        let ct = resp
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        if status == StatusCode::NOT_FOUND {
            let body = read_limited(resp, MAX_SMALL, "error body")
                .await
                .unwrap_or_default();
            let detail = error_detail(&body);
            return Err(RegistryError::ManifestUnknown {
                reference: display.to_string(),
                detail: if detail.is_empty() {
                    "manifest unknown".into()
                } else {
                    detail
                },
            });
        }
        if !status.is_success() {
            let body = read_limited(resp, MAX_SMALL, "error body")
                .await
                .unwrap_or_default();
            return Err(RegistryError::Protocol(format!(
                "fetching manifest for {display}: the registry answered {status}: {}",
                error_detail(&body)
            )));
        }
        let body = read_limited(resp, max, "manifest").await?;
        Ok((body, ct))
    }

    /// Starts a blob download; the caller streams and verifies the body. `attempts` bounds
    /// the retries of the request itself (a caller retrying whole downloads passes 1).
    pub(crate) async fn blob(&self, digest: &Digest, attempts: u32) -> Result<Response> {
        let resp = self
            .get("blobs", &digest.to_string(), None, attempts)
            .await?;
        let status = resp.status();
        if !status.is_success() {
            let body = read_limited(resp, MAX_SMALL, "error body")
                .await
                .unwrap_or_default();
            return Err(RegistryError::Protocol(format!(
                "fetching blob {digest}: the registry answered {status}: {}",
                error_detail(&body)
            )));
        }
        Ok(resp)
    }
}

fn is_tls_error(e: &reqwest::Error) -> bool {
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        let t = s.to_string();
        if t.contains("InvalidContentType")
            || t.contains("certificate")
            || t.contains("tls")
            || t.contains("TLS")
        {
            return true;
        }
        src = s.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_to_url() {
        assert_eq!(api_host("docker.io"), "registry-1.docker.io");
        assert_eq!(api_host("ghcr.io"), "ghcr.io");
        assert_eq!(
            bases("docker.io", false),
            vec!["https://registry-1.docker.io"]
        );
        assert_eq!(
            bases("127.0.0.1:5000", true),
            vec!["https://127.0.0.1:5000", "http://127.0.0.1:5000"]
        );
    }

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("localhost:5000"));
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("127.8.9.1"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("10.0.0.1:5000"));
        assert!(!is_loopback("registry-1.docker.io"));
        assert!(!is_loopback("localhost.example.com"));
    }

    #[test]
    fn registry_error_bodies() {
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{"Tag":"x"}}]}"#),
            "manifest unknown: manifest unknown"
        );
        assert_eq!(
            error_detail(br#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#),
            "denied: requested access to the resource is denied"
        );
        assert_eq!(error_detail(b"404 page not found\n"), "404 page not found");
    }

    #[test]
    fn backoff_is_bounded() {
        assert_eq!(backoff(1), Duration::from_millis(500));
        assert_eq!(backoff(2), Duration::from_secs(1));
        assert!(backoff(30) <= Duration::from_secs(8));
    }
}
