//! Plain HTTP for what bollard can't do: a `GET` of the few endpoints whose 1.47 answer its newer
//! models cannot hold (`/system/df`: bollard expects the 1.52 `*Usage` shape), and a `wait` whose
//! response headers are seen before its body (bollard shows only the body; the daemon sends the
//! headers once the wait is registered, which is when `run` may start the container). One
//! request per connection (`Connection: close`), chunked or sized bodies, errors worded like
//! bollard's.

use serde::de::DeserializeOwned;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::client::{CliError, Client};

/// `GET /v<negotiated>/<path_and_query>` and decodes the JSON answer.
pub(crate) async fn get_json<T: DeserializeOwned>(
    client: &Client,
    path_and_query: &str,
) -> Result<T, CliError> {
    get_json_with(client, path_and_query, &[]).await
}

/// Percent-encodes a query value as Go's `url.QueryEscape` does.
pub(crate) fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The request target `/v<negotiated><path_and_query>` and the head of a one-request
/// connection to it: request line, berth's fixed headers, `headers` (`Name: value` lines) and
/// the blank line that ends the head.
pub(crate) fn request_head(
    client: &Client,
    method: &str,
    path_and_query: &str,
    headers: &[String],
) -> (String, String) {
    let version = client.docker.client_version();
    let target = format!("/v{version}{path_and_query}");
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: api.moby.localhost\r\nUser-Agent: berth\r\nConnection: close\r\n"
    );
    for h in headers {
        head.push_str(h);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    (target, head)
}

/// [`get_json`] with extra `headers` (`Name: value` lines), e.g. `X-Registry-Auth`.
pub(crate) async fn get_json_with<T: DeserializeOwned>(
    client: &Client,
    path_and_query: &str,
    headers: &[String],
) -> Result<T, CliError> {
    let (target, request) = request_head(client, "GET", path_and_query, headers);
    let raw = send(client, &request).await?;
    let (status, body) = parse_response(&raw)
        .ok_or_else(|| CliError::Message(format!("malformed response to GET {target}")))?;
    if status >= 400 {
        return Err(CliError::Daemon(error_message(&body)));
    }
    Ok(serde_json::from_slice(&body)?)
}

/// `POST /v<negotiated>/<path_and_query>` with `headers` (`Name: value` lines) and a JSON
/// `body` (or none); the (status, de-chunked body) once the daemon has finished answering.
pub(crate) async fn post_raw(
    client: &Client,
    path_and_query: &str,
    headers: &[String],
    body: Option<&str>,
) -> Result<(u16, Vec<u8>), CliError> {
    let body = body.unwrap_or("");
    let mut all = vec![
        "Content-Type: application/json".to_string(),
        format!("Content-Length: {}", body.len()),
    ];
    all.extend(headers.iter().cloned());
    let (target, mut request) = request_head(client, "POST", path_and_query, &all);
    request.push_str(body);
    let raw = send(client, &request).await?;
    let (status, body) = parse_response(&raw)
        .ok_or_else(|| CliError::Message(format!("malformed response to POST {target}")))?;
    if status >= 400 {
        return Err(CliError::Daemon(error_message(&body)));
    }
    Ok((status, body))
}

/// Sends one raw request to the daemon (unix socket or TCP) and reads the whole answer.
async fn send(client: &Client, request: &str) -> Result<Vec<u8>, CliError> {
    let host = client.host.as_str();
    if let Some(path) = host
        .strip_prefix("unix://")
        .or_else(|| host.starts_with('/').then_some(host))
    {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        exchange(s, request).await
    } else {
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        exchange(s, request).await
    }
}

/// What [`wait_registered`] gives: the pending body, or the daemon's refusal (status, message).
pub(crate) type Registered =
    Result<tokio::task::JoinHandle<Result<Vec<u8>, CliError>>, (u16, String)>;

/// `POST /containers/{id}/wait?condition=…` on a unix socket, returned once the response
/// headers have arrived; the task yields the body. A refusal is returned at once; `Err` is a
/// transport failure (not a unix socket, no connection).
pub(crate) async fn wait_registered(
    client: &Client,
    id: &str,
    condition: &str,
) -> Result<Registered, CliError> {
    let host = client.host.as_str();
    let path = host
        .strip_prefix("unix://")
        .or_else(|| host.starts_with('/').then_some(host))
        .ok_or_else(|| CliError::Message(format!("not a unix socket: {host}")))?;
    let mut s = tokio::net::UnixStream::connect(path)
        .await
        .map_err(|_| CliError::Connect(host.to_string()))?;
    let (_, request) = request_head(
        client,
        "POST",
        &format!("/containers/{id}/wait?condition={condition}"),
        &["Content-Length: 0".to_string()],
    );
    s.write_all(request.as_bytes()).await?;
    s.flush().await?;
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(CliError::Message(format!(
                "the daemon closed the wait for {id} early"
            )));
        }
        raw.extend_from_slice(&buf[..n]);
    }
    let status = parse_status(&raw).unwrap_or(500);
    if status >= 400 {
        s.read_to_end(&mut raw).await?;
        let (_, body) = parse_response(&raw).unwrap_or((status, Vec::new()));
        return Ok(Err((status, error_message(&body))));
    }
    Ok(Ok(tokio::spawn(async move {
        s.read_to_end(&mut raw).await?;
        let (_, body) = parse_response(&raw)
            .ok_or_else(|| CliError::Message("malformed answer to wait".into()))?;
        Ok(body)
    })))
}

fn parse_status(raw: &[u8]) -> Option<u16> {
    let line_end = raw.windows(2).position(|w| w == b"\r\n")?;
    std::str::from_utf8(&raw[..line_end])
        .ok()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `message` of a JSON error body, or the body as text.
fn error_message(body: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v.get("message")
                .and_then(|m| m.as_str())
                .map(str::to_string)
        })
        .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_string())
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
    fn query_values_escape_as_go() {
        assert_eq!(query_escape("a b&c=d/é~-_."), "a+b%26c%3Dd%2F%C3%A9~-_.");
    }

    #[test]
    fn sized_and_chunked_bodies() {
        let r = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}";
        assert_eq!(parse_response(r), Some((200, b"{}".to_vec())));
        let r = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"a\r\n4\r\n\":1}\r\n0\r\n\r\n";
        assert_eq!(parse_response(r), Some((404, b"{\"a\":1}".to_vec())));
        assert_eq!(parse_response(b"garbage"), None);
    }

    #[test]
    fn status_lines_and_error_bodies() {
        assert_eq!(parse_status(b"HTTP/1.1 200 OK\r\nA: b\r\n\r\n"), Some(200));
        assert_eq!(parse_status(b"HTTP/1.1 404 Not Found\r\n"), Some(404));
        assert_eq!(parse_status(b"HTTP/1.1"), None);
        assert_eq!(
            error_message(b"{\"message\":\"No such container: x\"}"),
            "No such container: x"
        );
        assert_eq!(error_message(b"plain text\n"), "plain text");
    }
}
