//! `docker images` filters: Go `path.Match`, timestamps, labels.

use std::time::Duration;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};

use crate::service::{ImageRecord, ImageService, ListFilter};
use crate::store::Image;
use crate::{ImagesError, Reference, Result};

/// Go's `path.Match` (`*`, `?`, `[…]`, `\` escapes; `*` and `?` do not match `/`).
/// A malformed pattern never matches.
pub(crate) fn path_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n).unwrap_or(false)
}

fn match_from(p: &[char], n: &[char]) -> Option<bool> {
    if p.is_empty() {
        return Some(n.is_empty());
    }
    match p[0] {
        '*' => {
            // try every split not crossing '/'
            let mut i = 0;
            loop {
                if match_from(&p[1..], &n[i..])? {
                    return Some(true);
                }
                if i >= n.len() || n[i] == '/' {
                    return Some(false);
                }
                i += 1;
            }
        }
        '?' => {
            if n.is_empty() || n[0] == '/' {
                // still validate the rest of the pattern
                return Some(false);
            }
            match_from(&p[1..], &n[1..])
        }
        '[' => {
            let (matched, used) = match_class(&p[1..], n.first().copied())?;
            if n.is_empty() || !matched {
                return Some(false);
            }
            match_from(&p[1 + used..], &n[1..])
        }
        '\\' => {
            let c = *p.get(1)?;
            if n.first() != Some(&c) {
                return Some(false);
            }
            match_from(&p[2..], &n[1..])
        }
        c => {
            if n.first() != Some(&c) {
                return Some(false);
            }
            match_from(&p[1..], &n[1..])
        }
    }
}

/// Parses a class after `[`; returns (whether `c` matches, pattern chars consumed incl. `]`).
fn match_class(p: &[char], c: Option<char>) -> Option<(bool, usize)> {
    let mut i = 0;
    let negate = p.first() == Some(&'^');
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            i += 1;
            break;
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1) != Some(&']') {
            i += 1;
            hi = if p.get(i) == Some(&'\\') {
                i += 1;
                *p.get(i)?
            } else {
                *p.get(i)?
            };
            i += 1;
        }
        if let Some(c) = c
            && lo <= c
            && c <= hi
        {
            matched = true;
        }
    }
    Some((matched != negate && c.is_some_and(|c| c != '/'), i))
}

/// Go's `time.ParseDuration` (`300ms`, `1.5h`, `2h45m`).
pub(crate) fn parse_go_duration(s: &str) -> Option<Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if neg || rest.is_empty() {
        return if rest == "0" {
            Some(Duration::ZERO)
        } else {
            None
        };
    }
    if rest == "0" {
        return Some(Duration::ZERO);
    }
    let mut total = 0f64;
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let num: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult = match &rest[..unit_end] {
            "ns" => 1e-9,
            "us" | "µs" | "μs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return None,
        };
        total += num * mult;
        rest = &rest[unit_end..];
    }
    Some(Duration::from_secs_f64(total))
}

/// moby's `timetypes.GetTimestamp`: a duration before now, unix seconds, or an RFC 3339-ish date.
pub fn parse_timestamp(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    let bad = || ImagesError::InvalidFilter(format!("invalid filter 'until={s}'"));
    if let Some(d) = parse_go_duration(s) {
        let d = chrono::Duration::from_std(d).map_err(|_| bad())?;
        return Ok(now - d);
    }
    if let Ok(secs) = s.parse::<f64>() {
        let whole = secs.trunc() as i64;
        let nanos = ((secs - secs.trunc()) * 1e9) as u32;
        return DateTime::from_timestamp(whole, nanos).ok_or_else(bad);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return d.and_hms_opt(0, 0, 0).map(|t| t.and_utc()).ok_or_else(bad);
    }
    Err(bad())
}

/// `label=k` or `label=k=v` against the config's labels.
pub(crate) fn label_matches(img: &Image, filter: &str) -> bool {
    let labels = img.config.config.as_ref().and_then(|c| c.labels.as_ref());
    let (k, v) = match filter.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (filter, None),
    };
    match (labels.and_then(|l| l.get(k)), v) {
        (None, _) => false,
        (Some(_), None) => true,
        (Some(have), Some(want)) => have == want,
    }
}

pub(crate) fn list(svc: &ImageService, f: &ListFilter) -> Result<Vec<ImageRecord>> {
    let now = Utc::now();
    let until = f
        .until
        .as_deref()
        .map(|u| parse_timestamp(u, now))
        .transpose()?;
    let st = svc.read();
    let created_of = |name: &str| -> Result<Option<DateTime<Utc>>> {
        let id = st.resolve(name)?;
        Ok(st.images.get(&id).and_then(|i| i.created))
    };
    let before = f.before.as_deref().map(created_of).transpose()?;
    let since = f.since.as_deref().map(created_of).transpose()?;
    let parents: std::collections::HashSet<_> = st
        .images
        .values()
        .filter_map(|i| i.meta.parent.clone())
        .collect();
    let mut out: Vec<ImageRecord> = Vec::new();
    for img in st.images.values() {
        let mut rec = st.record(img);
        let dangling = rec.repo_tags.is_empty() && rec.repo_digests.is_empty();
        if let Some(want) = f.dangling
            && want != rec.repo_tags.is_empty()
        {
            continue;
        }
        if !f.all && dangling && parents.contains(&img.id) {
            continue;
        }
        if !f.labels.iter().all(|l| label_matches(img, l)) {
            continue;
        }
        if !f.references.is_empty() {
            // As moby does, the answer keeps only the references that matched, so
            // `images bb` lists the `bb` tags of an image and not its other names.
            let matches = |r: &Reference| {
                f.references.iter().any(|p| {
                    path_match(p, &r.familiar_string()) || path_match(p, &r.familiar_name())
                })
            };
            rec.repo_tags.retain(matches);
            rec.repo_digests.retain(matches);
            if rec.repo_tags.is_empty() && rec.repo_digests.is_empty() {
                continue;
            }
        }
        if let Some(b) = before {
            match (img.created, b) {
                (Some(c), Some(b)) if c < b => {}
                _ => continue,
            }
        }
        if let Some(s) = since {
            match (img.created, s) {
                (Some(c), Some(s)) if c > s => {}
                _ => continue,
            }
        }
        if let Some(u) = until {
            match img.created {
                Some(c) if c < u => {}
                _ => continue,
            }
        }
        out.push(rec);
    }
    out.sort_by(|a, b| b.created.cmp(&a.created).then_with(|| a.id.cmp(&b.id)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_path_match() {
        assert!(path_match("bb*", "bb"));
        assert!(path_match("bb*", "bbox:latest"));
        assert!(path_match("busybox", "busybox"));
        assert!(!path_match("busybox", "busybox:latest"));
        assert!(path_match("busy?ox:*", "busybox:1.35"));
        assert!(!path_match("*", "myrepo/bb"));
        assert!(path_match("*/*", "myrepo/bb"));
        assert!(path_match("myrepo/*", "myrepo/bb"));
        assert!(path_match("[a-c]b", "bb"));
        assert!(!path_match("[^a-c]b", "bb"));
        assert!(path_match("[^a-c]b", "xb"));
        assert!(path_match("a\\*b", "a*b"));
        assert!(!path_match("[", "a"));
        assert!(path_match("*:latest", "nginx:latest"));
    }

    #[test]
    fn durations_and_timestamps() {
        assert_eq!(parse_go_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_go_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("1.5h"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_go_duration("300ms"), Some(Duration::from_millis(300)));
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("10x"), None);
        let now = Utc::now();
        assert_eq!(
            parse_timestamp("24h", now).unwrap(),
            now - chrono::Duration::hours(24)
        );
        assert_eq!(
            parse_timestamp("1700000000", now).unwrap().timestamp(),
            1_700_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14T22:13:20Z", now)
                .unwrap()
                .timestamp(),
            1_700_000_000
        );
        assert_eq!(
            parse_timestamp("2023-11-14", now).unwrap().timestamp(),
            1_699_920_000
        );
        assert!(parse_timestamp("yesterday", now).is_err());
    }
}
