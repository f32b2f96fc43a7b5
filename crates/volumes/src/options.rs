//! The local driver's options (`type`, `device`, `o`, `size`), checked as moby checks them.

use std::collections::BTreeMap;

use crate::{Result, VolumesError};

/// The option keys the local driver knows.
const VALID: [&str; 4] = ["type", "o", "device", "size"];

/// Option → the options it needs beside it (moby's `mandatoryOpts`).
const MANDATORY: [(&str, &[&str]); 3] = [
    ("device", &["type"]),
    ("type", &["device"]),
    ("o", &["device", "type"]),
];

/// Refuses unknown options, a `size` (berth has no quota support, as moby without xfs
/// project quotas) and incomplete mount options, with moby's texts.
pub(crate) fn validate(opts: &BTreeMap<String, String>) -> Result<()> {
    for key in opts.keys() {
        if !VALID.contains(&key.as_str()) {
            return Err(VolumesError::InvalidOption(format!(
                "invalid option: {key:?}"
            )));
        }
    }
    if let Some(size) = opts.get("size") {
        let bytes = ram_in_bytes(size)
            .ok_or_else(|| VolumesError::InvalidOption(format!("invalid size: '{size}'")))?;
        if bytes > 0 {
            return Err(VolumesError::InvalidOption(
                "quota size requested but no quota support".into(),
            ));
        }
    }
    for (opt, required) in MANDATORY {
        if opts.contains_key(opt)
            && let Some(missing) = required.iter().find(|r| !opts.contains_key(**r))
        {
            return Err(VolumesError::InvalidOption(format!(
                "missing required option: {missing:?}"
            )));
        }
    }
    Ok(())
}

/// Whether these options make the volume a mount (moby: a non-empty `type` or `device`).
pub(crate) fn needs_mount(opts: &BTreeMap<String, String>) -> bool {
    ["type", "device"]
        .iter()
        .any(|k| opts.get(*k).is_some_and(|v| !v.is_empty()))
}

/// Go's `units.RAMInBytes`: `64m`, `1.5g`, `100` (bytes); binary multiples; `b` suffix allowed.
pub(crate) fn ram_in_bytes(s: &str) -> Option<i64> {
    let t = s.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num.parse().ok()?;
    let unit = unit.to_ascii_lowercase();
    let unit = unit.strip_suffix('b').unwrap_or(&unit);
    let mult: f64 = match unit {
        "" => 1.0,
        "k" => 1024.0,
        "m" => 1024.0 * 1024.0,
        "g" => 1024.0 * 1024.0 * 1024.0,
        "t" => 1024f64.powi(4),
        "p" => 1024f64.powi(5),
        _ => return None,
    };
    let v = n * mult;
    (v.is_finite() && v < i64::MAX as f64).then_some(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn valid_option_sets() {
        assert!(validate(&opts(&[])).is_ok());
        assert!(validate(&opts(&[("type", "tmpfs"), ("device", "tmpfs")])).is_ok());
        assert!(
            validate(&opts(&[
                ("type", "tmpfs"),
                ("device", "tmpfs"),
                ("o", "size=1m")
            ]))
            .is_ok()
        );
        assert!(validate(&opts(&[("size", "0")])).is_ok());
    }

    #[test]
    fn bad_options_get_mobys_texts() {
        let e = |p: &[(&str, &str)]| validate(&opts(p)).unwrap_err().to_string();
        assert_eq!(e(&[("foo", "bar")]), "invalid option: \"foo\"");
        assert_eq!(
            e(&[("type", "tmpfs")]),
            "missing required option: \"device\""
        );
        assert_eq!(
            e(&[("device", "tmpfs")]),
            "missing required option: \"type\""
        );
        assert_eq!(
            e(&[("o", "size=1m")]),
            "missing required option: \"device\""
        );
        assert_eq!(
            e(&[("size", "10m")]),
            "quota size requested but no quota support"
        );
        assert_eq!(e(&[("size", "lots")]), "invalid size: 'lots'");
    }

    #[test]
    fn mounts_only_with_type_or_device() {
        assert!(!needs_mount(&opts(&[])));
        assert!(!needs_mount(&opts(&[("size", "0")])));
        assert!(needs_mount(&opts(&[
            ("type", "tmpfs"),
            ("device", "tmpfs")
        ])));
        assert!(needs_mount(&opts(&[("device", "/x")])));
    }

    #[test]
    fn sizes_parse_like_go_units() {
        assert_eq!(ram_in_bytes("100"), Some(100));
        assert_eq!(ram_in_bytes("64m"), Some(64 << 20));
        assert_eq!(ram_in_bytes("1.5g"), Some(3 << 29));
        assert_eq!(ram_in_bytes("2KB"), Some(2048));
        assert_eq!(ram_in_bytes("x"), None);
        assert_eq!(ram_in_bytes("1q"), None);
    }
}
