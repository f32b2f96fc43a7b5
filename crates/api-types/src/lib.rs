//! Docker Engine API wire types and version constants, shared by the daemon and the CLI.
//!
//! The models are bollard-stubs' (generated from moby's swagger), re-exported so that neither
//! side hand-writes hundreds of structs. This crate must stay light and cross-platform: no
//! tokio servers, no Linux code, no knowledge of how the engine works.

pub use bollard_stubs::models;

/// The API version berthd advertises (see ../shared/docs/engine-api.md §1.6).
pub const API_VERSION: &str = "1.47";

/// The oldest API version berthd accepts in a `/vX.Y/` path prefix.
pub const MIN_API_VERSION: &str = "1.24";

/// An API version `major.minor`, ordered numerically (`1.9` < `1.10`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major part (always 1 so far).
    pub major: u32,
    /// Minor part.
    pub minor: u32,
}

impl ApiVersion {
    /// Parses `1.47`; None when the text is not two dot-separated numbers.
    pub fn parse(s: &str) -> Option<Self> {
        let (a, b) = s.split_once('.')?;
        Some(Self {
            major: a.parse().ok()?,
            minor: b.parse().ok()?,
        })
    }

    /// The version berthd advertises.
    pub fn current() -> Self {
        Self {
            major: 1,
            minor: 47,
        }
    }

    /// The oldest version berthd accepts.
    pub fn minimum() -> Self {
        Self {
            major: 1,
            minor: 24,
        }
    }
}

impl std::fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_and_order_numerically() {
        assert_eq!(ApiVersion::parse(API_VERSION), Some(ApiVersion::current()));
        assert_eq!(
            ApiVersion::parse(MIN_API_VERSION),
            Some(ApiVersion::minimum())
        );
        assert!(ApiVersion::parse("1.9").unwrap() < ApiVersion::parse("1.10").unwrap());
        assert_eq!(ApiVersion::parse("1"), None);
        assert_eq!(ApiVersion::parse("x.1"), None);
    }
}
