//! Image references, normalised as Docker does: `busybox` → `docker.io/library/busybox:latest`,
//! `host:port/repo:tag`, `name@sha256:…`. Bad input gives "invalid reference format".

use std::fmt;

use crate::{Digest, Result};

/// A normalised reference: registry domain, repository path, and a tag and/or digest.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses and normalises (adds `docker.io` and `library/`; does not add a tag).
    pub fn parse_normalized(s: &str) -> Result<Self> {
        let _ = s;
        unimplemented!()
    }

    /// Adds the `latest` tag when the reference has neither tag nor digest.
    pub fn with_default_tag(self) -> Self {
        unimplemented!()
    }

    /// Replaces the tag (and drops any digest).
    pub fn with_tag(self, tag: &str) -> Result<Self> {
        let _ = tag;
        unimplemented!()
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
        unimplemented!()
    }
    /// Familiar name with tag and/or digest: `busybox:latest`, `busybox@sha256:…`.
    pub fn familiar_string(&self) -> String {
        unimplemented!()
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
