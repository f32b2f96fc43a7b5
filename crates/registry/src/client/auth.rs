//! `WWW-Authenticate` challenges (RFC 7235 as registries send them) and the token exchange of
//! the distribution token spec: `Bearer realm=…,service=…,scope=…` → `GET realm?service&scope`
//! (with basic credentials when given) → `{"token"|"access_token"}`.
//!
//! Knows nothing of manifests or blobs; the session decides when to authenticate.

use std::collections::BTreeMap;

/// One challenge from a `WWW-Authenticate` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// `bearer` or `basic` (lowercased).
    pub(crate) scheme: String,
    /// Parameters, keys lowercased (`realm`, `service`, `scope`, `error`).
    pub(crate) params: BTreeMap<String, String>,
}

/// Parses one header value into its challenges (`Bearer a="b",c=d, Basic realm="x"`).
pub(crate) fn parse_challenges(header: &str) -> Vec<Challenge> {
    let mut out: Vec<Challenge> = Vec::new();
    let b = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < b.len() && (b[*i] == b' ' || b[*i] == b'\t' || b[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < b.len() && !matches!(b[*i], b' ' | b'\t' | b',' | b'=') {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= b.len() {
            break;
        }
        let word = token(&mut i);
        if word.is_empty() {
            i += 1;
            continue;
        }
        // `word=` starts a parameter of the current challenge; a bare word a new challenge.
        let mut j = i;
        while j < b.len() && (b[j] == b' ' || b[j] == b'\t') {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            i = j + 1;
            while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
                i += 1;
            }
            let value = if i < b.len() && b[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < b.len() && b[i] != b'"' {
                    if b[i] == b'\\' && i + 1 < b.len() {
                        i += 1;
                    }
                    // Copy one (possibly multi-byte) character.
                    let ch_len = header[i..].chars().next().map_or(1, char::len_utf8);
                    v.push_str(&header[i..i + ch_len]);
                    i += ch_len;
                }
                i += 1;
                v
            } else {
                token(&mut i)
            };
            if let Some(c) = out.last_mut() {
                c.params.insert(word.to_ascii_lowercase(), value);
            }
        } else {
            out.push(Challenge {
                scheme: word.to_ascii_lowercase(),
                params: BTreeMap::new(),
            });
        }
    }
    out
}

/// The token endpoint's answer.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct TokenResponse {
    #[serde(default)]
    pub(crate) token: Option<String>,
    #[serde(default)]
    pub(crate) access_token: Option<String>,
}

impl TokenResponse {
    pub(crate) fn into_token(self) -> Option<String> {
        self.token
            .filter(|t| !t.is_empty())
            .or(self.access_token.filter(|t| !t.is_empty()))
    }
}

/// `Basic base64(user:password)`.
pub(crate) fn basic_header(user: &str, password: &str) -> String {
    use base64::Engine as _;
    let raw = format!("{user}:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_hub_bearer() {
        let c = parse_challenges(
            r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull""#,
        );
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].params["realm"], "https://auth.docker.io/token");
        assert_eq!(c[0].params["service"], "registry.docker.io");
        assert_eq!(c[0].params["scope"], "repository:library/busybox:pull");
    }

    #[test]
    fn basic_and_several_challenges() {
        let c = parse_challenges(r#"Basic realm="Registry Realm""#);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[0].params["realm"], "Registry Realm");
        let c = parse_challenges(
            r#"Basic realm="a, b", Bearer realm="https://x/t",error="insufficient_scope", scope=s"#,
        );
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].params["realm"], "a, b");
        assert_eq!(c[1].scheme, "bearer");
        assert_eq!(c[1].params["error"], "insufficient_scope");
        assert_eq!(c[1].params["scope"], "s");
    }

    #[test]
    fn escapes_and_garbage() {
        let c = parse_challenges(r#"Bearer realm="a\"b""#);
        assert_eq!(c[0].params["realm"], "a\"b");
        assert!(parse_challenges("").is_empty());
        // Unterminated quote: takes the rest, no panic.
        let c = parse_challenges(r#"Bearer realm="https://x"#);
        assert_eq!(c[0].params["realm"], "https://x");
        let c = parse_challenges("=,=, ,");
        assert!(c.is_empty());
    }

    #[test]
    fn token_fields() {
        let t: TokenResponse = serde_json::from_str(r#"{"token":"a","access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("a"));
        let t: TokenResponse = serde_json::from_str(r#"{"access_token":"b"}"#).unwrap();
        assert_eq!(t.into_token().as_deref(), Some("b"));
        assert_eq!(basic_header("u", "p"), "Basic dTpw");
    }
}
