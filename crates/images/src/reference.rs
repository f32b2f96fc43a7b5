//! Image references, normalised as Docker does: `busybox` → `docker.io/library/busybox:latest`,
//! `host:port/repo:tag`, `name@sha256:…`. Bad input gives "invalid reference format".

use std::fmt;

use crate::{Digest, ImagesError, Result};

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// A normalised reference: registry domain, repository path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

fn invalid(s: &str) -> ImagesError {
    ImagesError::InvalidReference(s.to_string())
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]*)[a-z0-9]+)*`
fn valid_path_component(c: &str) -> bool {
    let b = c.as_bytes();
    let alnum = |x: u8| x.is_ascii_lowercase() || x.is_ascii_digit();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = sep == "." || sep == "_" || sep == "__" || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `host[:port]`: dot-separated `[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]`, or `[ipv6]`.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty()
            || !ip
                .bytes()
                .all(|x| x.is_ascii_hexdigit() || x == b':' || x == b'.')
        {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => ("", Some(p)),
            None if after.is_empty() => ("", None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (d, None),
        }
    };
    if let Some(p) = port
        && (p.is_empty() || !p.bytes().all(|x| x.is_ascii_digit()))
    {
        return false;
    }
    if d.starts_with('[') {
        return true;
    }
    !host.is_empty()
        && host.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

/// `[\w][\w.-]{0,127}`
pub(crate) fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    let word = |x: u8| x.is_ascii_alphanumeric() || x == b'_';
    !b.is_empty()
        && b.len() <= 128
        && word(b[0])
        && b.iter().all(|x| word(*x) || *x == b'.' || *x == b'-')
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Reference {
    /// Parses and normalises (adds `docker.io` and `library/`; does not add a tag).
    pub fn parse_normalized(s: &str) -> Result<Self> {
        if is_hex64(s) {
            return Err(invalid(s));
        }
        // Split off the digest.
        let (name_tag, digest) = match s.split_once('@') {
            Some((n, d)) => {
                let d = Digest::parse(d).map_err(|_| invalid(s))?;
                (n, Some(d))
            }
            None => (s, None),
        };
        // Split off the domain (distribution's splitDockerDomain).
        let (mut domain, mut remainder) = match name_tag.find('/') {
            Some(i) => {
                let first = &name_tag[..i];
                if !first.contains(['.', ':'])
                    && first != "localhost"
                    && first.to_lowercase() == first
                {
                    (DEFAULT_DOMAIN.to_string(), name_tag.to_string())
                } else {
                    (first.to_string(), name_tag[i + 1..].to_string())
                }
            }
            None => (DEFAULT_DOMAIN.to_string(), name_tag.to_string()),
        };
        if domain == LEGACY_DEFAULT_DOMAIN {
            domain = DEFAULT_DOMAIN.to_string();
        }
        if domain == DEFAULT_DOMAIN && !remainder.contains('/') {
            remainder = format!("{OFFICIAL_REPO_PREFIX}{remainder}");
        }
        // Split off the tag: a ':' in the last path component.
        let (path, tag) = match remainder.rfind(':') {
            Some(i) if !remainder[i..].contains('/') => (
                remainder[..i].to_string(),
                Some(remainder[i + 1..].to_string()),
            ),
            _ => (remainder, None),
        };
        if path.to_lowercase() != path {
            return Err(invalid(s));
        }
        if !valid_domain(&domain) || !path.split('/').all(valid_path_component) {
            return Err(invalid(s));
        }
        if let Some(t) = &tag
            && !valid_tag(t)
        {
            return Err(invalid(s));
        }
        if domain.len() + 1 + path.len() > NAME_TOTAL_LENGTH_MAX {
            return Err(invalid(s));
        }
        Ok(Self {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// Adds the `latest` tag when the reference has neither tag nor digest.
    pub fn with_default_tag(mut self) -> Self {
        if self.tag.is_none() && self.digest.is_none() {
            self.tag = Some("latest".to_string());
        }
        self
    }

    /// Replaces the tag (and drops any digest).
    pub fn with_tag(mut self, tag: &str) -> Result<Self> {
        if !valid_tag(tag) {
            return Err(invalid(tag));
        }
        self.tag = Some(tag.to_string());
        self.digest = None;
        Ok(self)
    }

    /// The same repository with neither tag nor digest.
    pub fn without_tag(&self) -> Self {
        Self {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    /// Registry domain, e.g. `docker.io` or `localhost:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }
    /// Repository path, e.g. `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }
    /// The tag, if any.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }
    /// The digest, if any.
    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }
    /// Full repository name: `docker.io/library/busybox`.
    pub fn name(&self) -> String {
        format!("{}/{}", self.domain, self.path)
    }
    /// Short repository name as docker prints it: `busybox`, `myrepo/bb`, `localhost:5000/x`.
    pub fn familiar_name(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            if let Some(rest) = self.path.strip_prefix(OFFICIAL_REPO_PREFIX)
                && !rest.contains('/')
            {
                return rest.to_string();
            }
            return self.path.clone();
        }
        self.name()
    }
    /// Familiar name with tag and/or digest: `busybox:latest`, `busybox@sha256:…`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_name();
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
        s
    }
}

impl fmt::Display for Reference {
    /// Full form: `docker.io/library/busybox:latest`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.name())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "705e4e94ccc8b5e0f0c7a385c00e3a6841b0e50bff0770444945e8a14ea8c562";

    fn full(s: &str) -> String {
        Reference::parse_normalized(s).unwrap().to_string()
    }

    #[test]
    fn normalises_docker_hub_names() {
        assert_eq!(full("busybox"), "docker.io/library/busybox");
        assert_eq!(full("library/busybox"), "docker.io/library/busybox");
        assert_eq!(full("docker.io/busybox"), "docker.io/library/busybox");
        assert_eq!(
            full("index.docker.io/busybox:1"),
            "docker.io/library/busybox:1"
        );
        assert_eq!(full("myrepo/bb:v1"), "docker.io/myrepo/bb:v1");
        assert_eq!(full("busybox:latest"), "docker.io/library/busybox:latest");
        let r = Reference::parse_normalized("busybox").unwrap();
        assert_eq!(r.domain(), "docker.io");
        assert_eq!(r.path(), "library/busybox");
        assert_eq!(r.tag(), None);
        assert_eq!(r.familiar_name(), "busybox");
        assert_eq!(
            r.clone().with_default_tag().familiar_string(),
            "busybox:latest"
        );
        assert_eq!(
            r.with_tag("v2").unwrap().to_string(),
            "docker.io/library/busybox:v2"
        );
    }

    #[test]
    fn domains_and_ports() {
        let r = Reference::parse_normalized("localhost:5000/x:tag").unwrap();
        assert_eq!(r.domain(), "localhost:5000");
        assert_eq!(r.path(), "x");
        assert_eq!(r.tag(), Some("tag"));
        assert_eq!(r.familiar_string(), "localhost:5000/x:tag");
        assert_eq!(full("localhost/x"), "localhost/x");
        assert_eq!(full("localhost:5000/x"), "localhost:5000/x");
        assert_eq!(full("[::1]:5000/x:y"), "[::1]:5000/x:y");
        let r = Reference::parse_normalized(&format!("host.com/a/b@sha256:{HEX}")).unwrap();
        assert_eq!(r.domain(), "host.com");
        assert_eq!(r.path(), "a/b");
        assert_eq!(r.digest().unwrap().hex(), HEX);
        assert_eq!(r.familiar_name(), "host.com/a/b");
        let r = Reference::parse_normalized(&format!("name:tag@sha256:{HEX}")).unwrap();
        assert_eq!(r.tag(), Some("tag"));
        assert!(r.digest().is_some());
        assert_eq!(
            r.to_string(),
            format!("docker.io/library/name:tag@sha256:{HEX}")
        );
        assert_eq!(r.familiar_string(), format!("name:tag@sha256:{HEX}"));
        // nested library path is not shortened
        let r = Reference::parse_normalized("docker.io/library/a/b").unwrap();
        assert_eq!(r.familiar_name(), "library/a/b");
    }

    #[test]
    fn separators() {
        for ok in ["a.b", "a_b", "a__b", "a-b", "a---b", "x/a.b-c_d/e"] {
            assert!(Reference::parse_normalized(ok).is_ok(), "{ok}");
        }
        for bad in ["a..b", "a___b", "-a", "a-", "a._b", "_a", "a/.b"] {
            assert!(Reference::parse_normalized(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn rejects_bad_references() {
        let long = "a".repeat(300);
        let longtag = format!("a:{}", "t".repeat(129));
        for bad in [
            "UPPER",
            "Upper:tag",
            "a:b:c",
            ":tag",
            "",
            "name:",
            "busybox/",
            "/busybox",
            "a//b",
            "name@sha256:abc",
            "name@",
            HEX,
            long.as_str(),
            longtag.as_str(),
            "a:-tag",
            "a b",
            "localhost:port/x",
        ] {
            let err = Reference::parse_normalized(bad).unwrap_err();
            assert!(
                err.to_string().starts_with("invalid reference format"),
                "{bad}: {err}"
            );
        }
        assert!(
            Reference::parse_normalized("x")
                .unwrap()
                .with_tag("bad tag")
                .is_err()
        );
        // an uppercase first component is taken as a domain, as Docker does
        assert_eq!(full("Foo.com/bar"), "Foo.com/bar");
    }
}
