//! `docker search`: a registry's v1 search API, `GET <index>/v1/search?q=<term>&n=<limit>`,
//! as moby's registry service asks it.
//!
//! Docker Hub's index is `https://index.docker.io/v1/` (never plain HTTP, never pinged; no
//! mirror is asked, as in moby). Another registry (its certs.d client when it has one) is
//! first pinged at `https://<host>/v1/_ping` (any HTTP answer will do);
//! an insecure or loopback registry is then tried over plain HTTP when HTTPS fails. The search
//! request carries `X-Docker-Token: true` and, when credentials were given, basic auth (moby's
//! v1 auth transport); reqwest drops `Authorization` on a redirect to another host.
//!
//! Knows nothing of filters (the engine applies them) or of the Engine API.

use reqwest::StatusCode;
use reqwest::header::AUTHORIZATION;

use super::auth::basic_header;
use super::session::{api_host, read_limited};
use super::{Client, Credentials};
use crate::{RegistryError, Result};

/// The index server of Docker Hub.
const HUB_INDEX: &str = "https://index.docker.io/v1/";
/// A search answer is read up to this size.
const MAX_RESULTS_BODY: u64 = 8 << 20;

/// One repository found (the registry's `results` entry).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct SearchResult {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub star_count: i64,
    #[serde(default)]
    pub is_official: bool,
    #[serde(default)]
    pub is_automated: bool,
}

/// The registry's answer.
#[derive(Debug, serde::Deserialize)]
struct SearchResults {
    #[serde(default)]
    results: Vec<SearchResult>,
}

/// One search: the index (`docker.io` or `host[:port]`), the remote term and the page size.
#[derive(Debug, Clone)]
pub struct SearchRequest {
    /// `docker.io` for Docker Hub, else the registry's `host[:port]`.
    pub index: String,
    /// What to look for (the term without its registry host).
    pub term: String,
    /// Results wanted, 1–100 (the caller checks the range).
    pub limit: u32,
    pub credentials: Option<Credentials>,
}

/// Whether `index` names Docker Hub.
fn is_hub(index: &str) -> bool {
    matches!(
        index,
        "docker.io" | "index.docker.io" | "registry-1.docker.io"
    )
}

/// An error's text with its causes, as Go prints a `*url.Error`: `Get "<url>": <cause>`.
fn get_error(url: &str, e: &reqwest::Error) -> String {
    let mut msg = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        msg.push_str(": ");
        msg.push_str(&s.to_string());
        src = s.source();
    }
    // reqwest already names the URL in its own text; keep Go's shape without repeating it.
    let msg = msg.replace(&format!(" for url ({url})"), "");
    format!("Get \"{url}\": {msg}")
}

impl Client {
    /// The v1 endpoint (`https://host/v1/` or `http://host/v1/`) and the HTTP client to use.
    async fn search_endpoint(&self, index: &str) -> Result<(String, reqwest::Client)> {
        if is_hub(index) {
            return Ok((HUB_INDEX.to_string(), self.http.clone()));
        }
        let host = api_host(index);
        let insecure = self.is_insecure(index);
        // certs.d applies as for pulls.
        let http = self.transport(index, insecure)?;
        let https = format!("https://{host}/v1/");
        let ping = |base: String, http: reqwest::Client| async move {
            let url = format!("{base}_ping");
            http.get(&url)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| get_error(&url, &e))
        };
        let Err(https_err) = ping(https.clone(), http.clone()).await else {
            return Ok((https, http));
        };
        if !insecure {
            // moby's words: no fallback to HTTP for a secure registry.
            return Err(RegistryError::InvalidArgument(format!(
                "invalid registry endpoint {https}: {https_err}. If this private registry \
                 supports only HTTP or HTTPS with an unknown CA certificate, please add \
                 `--insecure-registry {host}` to the daemon's arguments. In the case of HTTPS, \
                 if you have access to the registry's CA certificate, no need for the flag; \
                 simply place the CA certificate at /etc/docker/certs.d/{host}/ca.crt"
            )));
        }
        let plain = format!("http://{host}/v1/");
        match ping(plain.clone(), http.clone()).await {
            Ok(()) => Ok((plain, http)),
            Err(http_err) => Err(RegistryError::InvalidArgument(format!(
                "invalid registry endpoint \"{plain}\". HTTPS attempt: {https_err}. \
                 HTTP attempt: {http_err}"
            ))),
        }
    }

    /// Searches `req.index` for `req.term`: the registry's results, unfiltered, in its order.
    /// A registry without the search API answers 404: moby's `Unexpected status code 404`.
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<SearchResult>> {
        let (base, http) = self.search_endpoint(&req.index).await?;
        let mut url = reqwest::Url::parse(&format!("{base}search"))
            .map_err(|e| RegistryError::InvalidArgument(format!("error building request: {e}")))?;
        url.query_pairs_mut()
            .append_pair("q", &req.term)
            .append_pair("n", &req.limit.to_string());
        let mut get = http.get(url.clone()).header("X-Docker-Token", "true");
        if let Some(c) = &req.credentials {
            get = get.header(AUTHORIZATION, basic_header(&c.username, &c.password));
        }
        let resp = get
            .send()
            .await
            .map_err(|e| RegistryError::Transport(get_error(url.as_str(), &e)))?;
        if resp.status() != StatusCode::OK {
            return Err(RegistryError::Protocol(format!(
                "Unexpected status code {}",
                resp.status().as_u16()
            )));
        }
        let body = read_limited(resp, MAX_RESULTS_BODY, "search results").await?;
        let parsed: SearchResults = serde_json::from_slice(&body)
            .map_err(|e| RegistryError::Protocol(format!("error decoding search results: {e}")))?;
        Ok(parsed.results)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names() {
        assert!(is_hub("docker.io"));
        assert!(is_hub("index.docker.io"));
        assert!(!is_hub("localhost:5000"));
    }

    #[test]
    fn results_decode_with_missing_fields() {
        let r: SearchResults = serde_json::from_str(
            r#"{"num_results":2,"query":"bb","results":[
                {"name":"a/bb","description":"d","star_count":3,"is_official":true,"is_automated":true},
                {"name":"bb"}]}"#,
        )
        .unwrap();
        assert_eq!(r.results.len(), 2);
        assert_eq!(r.results[0].star_count, 3);
        assert!(r.results[0].is_official);
        assert_eq!(r.results[1].name, "bb");
        assert_eq!(r.results[1].description, "");
    }
}
