//! Volume names: moby's validation of given names, and generated ones.

use crate::{Result, VolumesError};

/// The characters moby allows, as its message names them.
const RESTRICTED_NAME_CHARS: &str = "[a-zA-Z0-9][a-zA-Z0-9_.-]";

/// Checks a name as moby's local driver does (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`). Such a name can
/// never be `.`/`..` or contain `/`, so `<root>/<name>` stays inside the root.
pub(crate) fn validate(name: &str) -> Result<()> {
    if name.chars().count() == 1 {
        return Err(VolumesError::InvalidName(
            "volume name is too short, names should be at least two alphanumeric characters".into(),
        ));
    }
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if !ok {
        return Err(VolumesError::InvalidName(format!(
            "{name:?} includes invalid characters for a local volume name, only \"{RESTRICTED_NAME_CHARS}\" are allowed. If you intended to pass a host directory, use absolute path"
        )));
    }
    Ok(())
}

/// A new random name: 64 lowercase hex characters, like Docker's.
pub(crate) fn generate() -> String {
    let bytes: [u8; 32] = rand::random();
    hex::encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_moby() {
        for good in ["v1", "my_vol", "a.b-c", "0x", &generate()] {
            assert!(validate(good).is_ok(), "{good}");
        }
        let short = validate("a").unwrap_err().to_string();
        assert!(short.starts_with("volume name is too short"), "{short}");
        for bad in ["", "..", "-x", "a/b", "a b", ".hidden", "_x", "é1"] {
            let e = validate(bad).unwrap_err().to_string();
            assert!(e.contains("includes invalid characters"), "{bad}: {e}");
        }
        assert_eq!(
            validate("a/b").unwrap_err().to_string(),
            "\"a/b\" includes invalid characters for a local volume name, only \"[a-zA-Z0-9][a-zA-Z0-9_.-]\" are allowed. If you intended to pass a host directory, use absolute path"
        );
    }

    #[test]
    fn generated_names_are_64_hex() {
        let a = generate();
        assert_eq!(a.len(), 64);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_ne!(a, generate());
    }
}
