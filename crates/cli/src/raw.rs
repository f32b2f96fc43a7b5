//! A plain `GET` for the few endpoints whose 1.47 answer bollard's newer models cannot hold
//! (`/system/df`: bollard expects the 1.52 `*Usage` shape). One request on its own connection
//! (`Connection: close`), chunked or sized bodies, errors worded like bollard's.

use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::{CliError, Client};

/// `GET /v<negotiated>/<path_and_query>` and decodes the JSON answer.
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &Client,
    path_and_query: &str,
) -> Result<T, CliError> {
    let version = client.docker.client_version();
    let target = format!("/v{version}{path_and_query}");
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth\r\nConnection: close\r\n\r\n"
    );
    let host = client.host.as_str();
    let raw = if let Some(path) = host
        .strip_prefix("unix://")
        .or_else(|| host.starts_with('/').then_some(host))
    {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        exchange(s, &request).await?
    } else {
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        exchange(s, &request).await?
    };
    let (status, body) = parse_response(&raw)
        .ok_or_else(|| CliError::Message(format!("malformed response to GET {target}")))?;
    if status >= 400 {
        let message = serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                v.get("message")
                    .and_then(|m| m.as_str())
                    .map(str::to_string)
            })
            .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
        return Err(CliError::Daemon(message));
    }
    Ok(serde_json::from_slice(&body)?)
}

async fn exchange<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    request: &str,
) -> Result<Vec<u8>, CliError> {
    s.write_all(request.as_bytes()).await?;
    s.flush().await?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await?;
    Ok(raw)
}

/// Status code and (de-chunked) body of an HTTP/1.1 response.
fn parse_response(raw: &[u8]) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines.next()?.split_whitespace().nth(1)?.parse().ok()?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if !chunked {
        return Some((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&rest[..eol]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Some((status, out));
        }
        out.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sized_and_chunked_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r), Some((200, b"{}".to_vec())));
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Some((404, b"{\"a\":1}".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }
}
