//! Detach keys on the daemon side: the key sequence (default ctrl-p ctrl-q, or `detachKeys=`)
//! that ends an attach session without touching the container, found in the client's stdin.
//!
//! Knows only bytes; the attach proxies feed it what the client types.

use crate::{EngineError, Result};

/// Docker's default: ctrl-p, ctrl-q.
pub(crate) const DEFAULT_KEYS: &[u8] = &[0x10, 0x11];

/// Parses moby's detach-keys syntax: comma-separated keys, each a single character or
/// `ctrl-<c>` with `<c>` in `a-z @ [ \ ] ^ _`.
pub(crate) fn parse(spec: &str) -> Result<Vec<u8>> {
    let bad = || EngineError::InvalidRequest(format!("Invalid detach keys ({spec}) provided"));
    let mut out = Vec::new();
    for key in spec.split(',') {
        let key = key.trim();
        if let Some(c) = key.strip_prefix("ctrl-") {
            let c = c.as_bytes();
            if c.len() != 1 {
                return Err(bad());
            }
            let code = match c[0] {
                b'a'..=b'z' => c[0] - b'a' + 1,
                b'@' => 0,
                b'[' => 27,
                b'\\' => 28,
                b']' => 29,
                b'^' => 30,
                b'_' => 31,
                _ => return Err(bad()),
            };
            out.push(code);
        } else if key.len() == 1 {
            out.push(key.as_bytes()[0]);
        } else {
            return Err(bad());
        }
    }
    if out.is_empty() {
        return Err(bad());
    }
    Ok(out)
}

/// Watches a stdin stream for the detach sequence. A partial match is held back until it is
/// either completed (detach: never forwarded) or broken (forwarded as typed).
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    pub(crate) fn new(keys: Vec<u8>) -> Self {
        Self { keys, matched: 0 }
    }

    /// Feeds `input`; returns the bytes to forward and whether the sequence was completed (the
    /// bytes after it are dropped, as the session ends).
    pub(crate) fn feed(&mut self, input: &[u8]) -> (Vec<u8>, bool) {
        let mut out = Vec::with_capacity(input.len());
        for &b in input {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return (out, true);
                }
                continue;
            }
            // Broken: release the held prefix, then look at `b` afresh.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return (out, true);
                }
            } else {
                out.push(b);
            }
        }
        (out, false)
    }

    /// What is held back at the end of the stream (an unfinished prefix), to forward.
    pub(crate) fn held(&self) -> &[u8] {
        &self.keys[..self.matched]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_moby_syntax() {
        assert_eq!(parse("ctrl-p,ctrl-q").unwrap(), DEFAULT_KEYS);
        assert_eq!(parse("ctrl-a,x").unwrap(), vec![1, b'x']);
        assert_eq!(parse("ctrl-@,ctrl-[,ctrl-_").unwrap(), vec![0, 27, 31]);
        for bad in ["", "ctrl-", "ctrl-1", "ab", "ctrl-p,"] {
            assert!(parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn finds_the_sequence_across_reads() {
        let mut s = Scanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"ab\x10"), (b"ab".to_vec(), false));
        assert_eq!(s.held(), b"\x10");
        assert_eq!(s.feed(b"\x11rest"), (Vec::new(), true));
    }

    #[test]
    fn broken_prefix_is_forwarded() {
        let mut s = Scanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"\x10x"), (b"\x10x".to_vec(), false));
        assert_eq!(s.feed(b"\x10\x10\x11"), (b"\x10".to_vec(), true));
        let mut one = Scanner::new(vec![b'q']);
        assert_eq!(one.feed(b"abq"), (b"ab".to_vec(), true));
    }
}
