//! A streaming `POST` for what bollard can't send: a request whose body is produced while it
//! is sent (chunked transfer encoding, e.g. a build context tarred on the fly) and whose answer
//! is a JSON message stream read message by message as it arrives (`POST /build`; bollard's
//! `build_image` takes one `t` and drops `errorDetail.code`).
//!
//! Owns: the HTTP/1.1 framing of one such exchange (one request per connection). Must not
//! know: what the body or the messages mean.

use serde_json::Value;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::{CliError, Client};

type Reader = Box<dyn AsyncRead + Send + Unpin>;
type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A finished upload: its size, and the connection's write half, which must stay open until
/// the answer has been read (dropping it half-closes the socket, and the daemon's HTTP server
/// then drops the request).
pub(crate) struct Uploaded {
    /// Body bytes sent (before chunk framing).
    pub(crate) bytes: u64,
    _writer: Writer,
}

/// The daemon's answer to a streaming request, read incrementally.
pub(crate) struct Response {
    /// HTTP status code.
    pub(crate) status: u16,
    reader: Reader,
    chunked: bool,
    /// Where the chunked decoding stands.
    state: Chunk,
    /// Raw bytes read from the socket and not yet de-framed.
    raw: Vec<u8>,
    /// De-chunked body bytes not yet decoded.
    body: Vec<u8>,
    eof: bool,
}

/// The chunked-encoding decoder's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a size line.
    Size,
    /// Inside a chunk's data, with this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// The last chunk was read.
    Done,
}

/// `POST /v<negotiated>/<path_and_query>` with `headers` (`Name: value` lines) and a chunked
/// body taken from `chunks` until the sender is dropped. Returns once the response headers
/// arrived: the upload task (bytes sent) and the response.
pub(crate) async fn post_chunked(
    client: &Client,
    path_and_query: &str,
    headers: &[String],
    chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> Result<(JoinHandle<std::io::Result<Uploaded>>, Response), CliError> {
    let mut all = vec!["Transfer-Encoding: chunked".to_string()];
    all.extend(headers.iter().cloned());
    let (_, head) = crate::raw::request_head(client, "POST", path_and_query, &all);
    let (reader, mut writer) = connect(client).await?;
    writer.write_all(head.as_bytes()).await?;
    let upload = tokio::spawn(async move {
        let bytes = send_chunks(&mut writer, chunks).await?;
        Ok(Uploaded {
            bytes,
            _writer: writer,
        })
    });
    let response = Response::read_head(reader).await?;
    Ok((upload, response))
}

async fn send_chunks(
    w: &mut (dyn AsyncWrite + Send + Unpin),
    mut chunks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
) -> std::io::Result<u64> {
    let mut sent = 0u64;
    while let Some(chunk) = chunks.recv().await {
        let chunk = chunk?;
        if chunk.is_empty() {
            continue;
        }
        w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .await?;
        w.write_all(&chunk).await?;
        w.write_all(b"\r\n").await?;
        sent += chunk.len() as u64;
    }
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await?;
    Ok(sent)
}

async fn connect(client: &Client) -> Result<(Reader, Writer), CliError> {
    let host = client.host.as_str();
    if let Some(path) = host
        .strip_prefix("unix://")
        .or_else(|| host.starts_with('/').then_some(host))
    {
        let s = tokio::net::UnixStream::connect(path)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        let (r, w) = s.into_split();
        Ok((Box::new(r), Box::new(w)))
    } else {
        let addr = host
            .strip_prefix("tcp://")
            .or_else(|| host.strip_prefix("http://"))
            .unwrap_or(host);
        let s = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|_| CliError::Connect(host.to_string()))?;
        let (r, w) = s.into_split();
        Ok((Box::new(r), Box::new(w)))
    }
}

impl Response {
    async fn read_head(mut reader: Reader) -> Result<Self, CliError> {
        let mut raw = Vec::new();
        let mut buf = [0u8; 8192];
        let end = loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            let n = reader.read(&mut buf).await?;
            if n == 0 {
                return Err(CliError::Message(
                    "the daemon closed the connection before answering".into(),
                ));
            }
            raw.extend_from_slice(&buf[..n]);
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| CliError::Message("malformed response from the daemon".into()))?;
        let chunked = lines.any(|l| {
            l.split_once(':').is_some_and(|(k, v)| {
                k.trim().eq_ignore_ascii_case("transfer-encoding")
                    && v.trim().eq_ignore_ascii_case("chunked")
            })
        });
        let rest = raw.split_off(end + 4);
        let mut r = Self {
            status,
            reader,
            chunked,
            state: Chunk::Size,
            raw: Vec::new(),
            body: Vec::new(),
            eof: false,
        };
        r.push_raw(&rest)?;
        Ok(r)
    }

    /// Adds raw socket bytes, moving whatever is complete into `body`.
    fn push_raw(&mut self, bytes: &[u8]) -> Result<(), CliError> {
        if !self.chunked {
            self.body.extend_from_slice(bytes);
            return Ok(());
        }
        self.raw.extend_from_slice(bytes);
        loop {
            match self.state {
                Chunk::Done => {
                    self.raw.clear();
                    return Ok(());
                }
                Chunk::Data(left) => {
                    let take = left.min(self.raw.len());
                    self.body.extend_from_slice(&self.raw[..take]);
                    self.raw.drain(..take);
                    if take < left {
                        self.state = Chunk::Data(left - take);
                        return Ok(());
                    }
                    self.state = Chunk::DataEnd;
                }
                Chunk::DataEnd => {
                    if self.raw.len() < 2 {
                        return Ok(());
                    }
                    self.raw.drain(..2);
                    self.state = Chunk::Size;
                }
                Chunk::Size => {
                    let Some(eol) = self.raw.windows(2).position(|w| w == b"\r\n") else {
                        return Ok(());
                    };
                    let text = String::from_utf8_lossy(&self.raw[..eol]).into_owned();
                    let size =
                        usize::from_str_radix(text.split(';').next().unwrap_or("").trim(), 16)
                            .map_err(|_| {
                                CliError::Message("malformed chunk from the daemon".into())
                            })?;
                    self.raw.drain(..eol + 2);
                    self.state = if size == 0 {
                        Chunk::Done
                    } else {
                        Chunk::Data(size)
                    };
                }
            }
        }
    }

    /// Reads more from the socket; false at the end of the body.
    async fn fill(&mut self) -> Result<bool, CliError> {
        if self.eof || self.state == Chunk::Done {
            return Ok(false);
        }
        let mut buf = [0u8; 16384];
        let n = self.reader.read(&mut buf).await?;
        if n == 0 {
            self.eof = true;
            return Ok(false);
        }
        self.push_raw(&buf[..n])?;
        Ok(true)
    }

    /// The next JSON message of the body, `None` at its end.
    pub(crate) async fn next_message(&mut self) -> Result<Option<Value>, CliError> {
        loop {
            let start = self
                .body
                .iter()
                .position(|b| !b.is_ascii_whitespace())
                .unwrap_or(self.body.len());
            self.body.drain(..start);
            if !self.body.is_empty() {
                let mut it = serde_json::Deserializer::from_slice(&self.body).into_iter::<Value>();
                match it.next() {
                    Some(Ok(v)) => {
                        let used = it.byte_offset();
                        self.body.drain(..used);
                        return Ok(Some(v));
                    }
                    Some(Err(e)) if !e.is_eof() => return Err(e.into()),
                    _ => {}
                }
            }
            if !self.fill().await? {
                if self.body.iter().all(u8::is_ascii_whitespace) {
                    return Ok(None);
                }
                return Err(CliError::Message(
                    "unexpected EOF in the daemon's JSON stream".into(),
                ));
            }
        }
    }

    /// The rest of the body (for an error answer).
    pub(crate) async fn read_all(&mut self) -> Result<Vec<u8>, CliError> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(chunked: bool) -> Response {
        Response {
            status: 200,
            reader: Box::new(tokio::io::empty()),
            chunked,
            state: Chunk::Size,
            raw: Vec::new(),
            body: Vec::new(),
            eof: false,
        }
    }

    #[tokio::test]
    async fn chunks_split_anywhere_give_whole_messages() {
        let wire = b"b\r\n{\"stream\":1\r\n9\r\n}{\"aux\":2\r\n3\r\n}\n\n\r\n0\r\n\r\n";
        for split in 1..wire.len() {
            let mut r = response(true);
            r.push_raw(&wire[..split]).unwrap();
            r.push_raw(&wire[split..]).unwrap();
            assert_eq!(r.state, Chunk::Done, "split at {split}");
            assert_eq!(
                r.next_message().await.unwrap(),
                Some(serde_json::json!({"stream": 1}))
            );
            assert_eq!(
                r.next_message().await.unwrap(),
                Some(serde_json::json!({"aux": 2}))
            );
            assert_eq!(r.next_message().await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn sized_bodies_and_truncation() {
        let mut r = response(false);
        r.push_raw(b"{\"a\":1}\n{\"b\"").unwrap();
        assert_eq!(
            r.next_message().await.unwrap(),
            Some(serde_json::json!({"a": 1}))
        );
        assert!(r.next_message().await.is_err(), "a cut message is an error");
    }
}
