//! Untrusted strings from request paths: repository names, tags and digests validated against
//! the distribution spec's grammar before anything maps them to a directory, and the parsing of
//! `/v2/...` paths into routes (repository names contain slashes, so routing is by suffix).

use std::sync::LazyLock;

use regex::Regex;
use storage::Digest;

/// The longest repository name accepted (docker's registry limit).
const MAX_NAME: usize = 255;

static NAME_RE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, checked by the tests
    Regex::new(
        r"^[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*$",
    )
    .unwrap()
});

static TAG_RE: LazyLock<Regex> = LazyLock::new(|| {
    #[allow(clippy::unwrap_used)] // a constant pattern, checked by the tests
    Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").unwrap()
});

/// A repository name that matched the spec's grammar: lowercase components separated by `/`,
/// none empty, none `.` or `..`, none starting with `_` (so `_tags` etc. cannot collide).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name(String);

impl Name {
    pub(crate) fn parse(s: &str) -> Option<Self> {
        (s.len() <= MAX_NAME && NAME_RE.is_match(s)).then(|| Self(s.to_string()))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

/// Whether `s` is a valid tag (it never contains `/` and never starts with `.`).
pub(crate) fn is_tag(s: &str) -> bool {
    TAG_RE.is_match(s)
}

/// What a manifest path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Reference {
    Tag(String),
    Digest(Digest),
}

impl Reference {
    /// A reference is a digest if it has an algorithm prefix, else it must be a valid tag.
    pub(crate) fn parse(s: &str) -> Option<Self> {
        if s.contains(':') {
            Digest::parse(s).ok().map(Self::Digest)
        } else {
            is_tag(s).then(|| Self::Tag(s.to_string()))
        }
    }
}

/// A request path under `/v2/`, with the (not yet validated) repository name and last segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Route<'a> {
    Base,
    Catalog,
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
    Referrers(&'a str, &'a str),
}

impl<'a> Route<'a> {
    pub(crate) fn parse(path: &'a str) -> Option<Self> {
        if path == "/v2" || path == "/v2/" {
            return Some(Self::Base);
        }
        let rest = path.strip_prefix("/v2/")?;
        if rest == "_catalog" {
            return Some(Self::Catalog);
        }
        if let Some(name) = rest.strip_suffix("/tags/list") {
            return Some(Self::Tags(name));
        }
        if let Some(name) = rest
            .strip_suffix("/blobs/uploads/")
            .or_else(|| rest.strip_suffix("/blobs/uploads"))
        {
            return Some(Self::UploadStart(name));
        }
        let (head, last) = rest.rsplit_once('/')?;
        let (name, kind) = head.rsplit_once('/')?;
        match kind {
            "manifests" => Some(Self::Manifest(name, last)),
            "blobs" => Some(Self::Blob(name, last)),
            "referrers" => Some(Self::Referrers(name, last)),
            "uploads" => name.strip_suffix("/blobs").map(|n| Self::Upload(n, last)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_spec_grammar() {
        for ok in [
            "a",
            "library/busybox",
            "a.b/c_d/e__f/g--h",
            "0/1/2",
            "test/busybox",
        ] {
            assert!(Name::parse(ok).is_some(), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "..", "a/../b", "a/./b", ".a", "a.", "_a", "a/_tags",
            "a___b", "a b", "a%2fb", "a\\b", "a/b:c",
        ] {
            assert!(Name::parse(bad).is_none(), "{bad}");
        }
        assert!(Name::parse(&"a".repeat(256)).is_none());
        assert!(Name::parse(&"a".repeat(255)).is_some());
    }

    #[test]
    fn tags_and_references() {
        assert!(is_tag("latest") && is_tag("_x") && is_tag("v1.2-rc_3"));
        for bad in ["", ".", "..", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(!is_tag(bad), "{bad}");
        }
        let d = format!("sha256:{}", "a".repeat(64));
        assert!(matches!(Reference::parse(&d), Some(Reference::Digest(_))));
        assert_eq!(
            Reference::parse("latest"),
            Some(Reference::Tag("latest".into()))
        );
        assert_eq!(Reference::parse("sha512:abc"), None);
        assert_eq!(Reference::parse(".."), None);
    }

    #[test]
    fn routes_by_suffix() {
        use Route::*;
        assert_eq!(Route::parse("/v2/"), Some(Base));
        assert_eq!(Route::parse("/v2"), Some(Base));
        assert_eq!(Route::parse("/v2/_catalog"), Some(Catalog));
        assert_eq!(Route::parse("/v2/a/b/tags/list"), Some(Tags("a/b")));
        assert_eq!(
            Route::parse("/v2/a/b/manifests/latest"),
            Some(Manifest("a/b", "latest"))
        );
        assert_eq!(
            Route::parse("/v2/a/blobs/sha256:x"),
            Some(Blob("a", "sha256:x"))
        );
        assert_eq!(
            Route::parse("/v2/x/blobs/blobs/uploads/u1"),
            Some(Upload("x/blobs", "u1"))
        );
        assert_eq!(Route::parse("/v2/a/blobs/uploads/"), Some(UploadStart("a")));
        assert_eq!(
            Route::parse("/v2/a/referrers/sha256:x"),
            Some(Referrers("a", "sha256:x"))
        );
        assert_eq!(Route::parse("/v2/a/other/x"), None);
        assert_eq!(Route::parse("/v1/a/manifests/x"), None);
        assert_eq!(Route::parse("/v2/manifests/x"), None);
    }
}
