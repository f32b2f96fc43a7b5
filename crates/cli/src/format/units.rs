//! Human-readable sizes and durations, following docker/go-units.

use std::time::Duration;

const DECIMAL_ABBRS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_ABBRS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn size_and_unit(mut size: f64, base: f64, abbrs: &[&'static str]) -> (f64, &'static str) {
    let mut i = 0;
    let limit = abbrs.len() - 1;
    while size >= base && i < limit {
        size /= base;
        i += 1;
    }
    (size, abbrs[i])
}

/// Go's `fmt.Sprintf("%.*g", precision, v)`.
pub(crate) fn format_g(v: f64, precision: usize) -> String {
    let precision = precision.max(1);
    if v == 0.0 {
        return "0".to_string();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".to_string()
        } else if v > 0.0 {
            "+Inf".to_string()
        } else {
            "-Inf".to_string()
        };
    }
    // Round to `precision` significant digits, then decide the layout from the exponent.
    let sci = format!("{:.*e}", precision - 1, v);
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m.to_string(), e.parse::<i32>().unwrap_or(0)),
        None => (sci.clone(), 0),
    };
    if exp < -4 || exp >= precision as i32 {
        let m = trim_zeros(&mantissa);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{m}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (precision as i32 - 1 - exp).max(0) as usize;
        trim_zeros(&format!("{v:.decimals$}"))
    }
}

fn trim_zeros(s: &str) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s.to_string()
    }
}

/// go-units `HumanSizeWithPrecision`: decimal (1000-based) units.
pub(crate) fn human_size_with_precision(size: f64, precision: usize) -> String {
    let (s, unit) = size_and_unit(size, 1000.0, &DECIMAL_ABBRS);
    format!("{}{unit}", format_g(s, precision))
}

/// go-units `HumanSize` (precision 4).
pub(crate) fn human_size(size: f64) -> String {
    human_size_with_precision(size, 4)
}

/// go-units `BytesSize`: binary (1024-based) units, `%.4g`.
pub(crate) fn bytes_size(size: f64) -> String {
    let (s, unit) = size_and_unit(size, 1024.0, &BINARY_ABBRS);
    format!("{}{unit}", format_g(s, 4))
}

/// go-units `HumanDuration`.
pub(crate) fn human_duration(d: Duration) -> String {
    let secs_f = d.as_secs_f64();
    let seconds = secs_f as i64;
    if seconds < 1 {
        return "Less than a second".to_string();
    } else if seconds == 1 {
        return "1 second".to_string();
    } else if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs_f / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".to_string();
    } else if minutes < 60 {
        return format!("{minutes} minutes");
    }
    let hours = (secs_f / 3600.0 + 0.5) as i64;
    if hours == 1 {
        "About an hour".to_string()
    } else if hours < 48 {
        format!("{hours} hours")
    } else if hours < 24 * 7 * 2 {
        format!("{} days", hours / 24)
    } else if hours < 24 * 30 * 2 {
        format!("{} weeks", hours / 24 / 7)
    } else if hours < 24 * 365 * 2 {
        format!("{} months", hours / 24 / 30)
    } else {
        format!("{} years", (secs_f / 3600.0) as i64 / 24 / 365)
    }
}

/// Human duration between a unix timestamp and now, e.g. `2 weeks ago`.
pub(crate) fn since_unix(created: i64) -> String {
    let now = chrono::Utc::now().timestamp_millis();
    let diff_ms = now.saturating_sub(created.saturating_mul(1000)).max(0);
    format!(
        "{} ago",
        human_duration(Duration::from_millis(diff_ms as u64))
    )
}

/// Go's `time.Time.String()` for a unix timestamp in the local zone,
/// e.g. `2024-09-26 21:31:42 +0000 UTC`.
pub(crate) fn go_time_string(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let offset = t.format("%z").to_string();
            let zone = if offset == "+0000" {
                "UTC".to_string()
            } else {
                offset.clone()
            };
            format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
        }
        None => String::new(),
    }
}

/// RFC 3339 in the local zone, like Go's `time.Unix(x, 0).Format(time.RFC3339)`.
pub(crate) fn rfc3339_local(unix: i64) -> String {
    use chrono::TimeZone;
    match chrono::Local.timestamp_opt(unix, 0).single() {
        Some(t) => {
            let s = t.format("%Y-%m-%dT%H:%M:%S%:z").to_string();
            match s.strip_suffix("+00:00") {
                Some(base) => format!("{base}Z"),
                None => s,
            }
        }
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_size_matches_go_units() {
        // Examples from go-units size_test.go.
        assert_eq!(human_size(1000.0), "1kB");
        assert_eq!(human_size(1024.0), "1.024kB");
        assert_eq!(human_size(1_000_000.0), "1MB");
        assert_eq!(human_size(1_048_576.0), "1.049MB");
        assert_eq!(human_size(2.0 * 1_000_000.0), "2MB");
        assert_eq!(human_size(3.42 * 1e9), "3.42GB");
        assert_eq!(human_size(5.372 * 1e12), "5.372TB");
        assert_eq!(human_size(2.22 * 1e15), "2.22PB");
        assert_eq!(human_size(1e21), "1ZB");
        assert_eq!(human_size(1e27), "1000YB");
        assert_eq!(human_size(0.0), "0B");
    }

    #[test]
    fn image_sizes_precision_3() {
        assert_eq!(human_size_with_precision(4_270_000.0, 3), "4.27MB");
        assert_eq!(human_size_with_precision(74_812_345.0, 3), "74.8MB");
        assert_eq!(human_size_with_precision(1200.0, 3), "1.2kB");
        assert_eq!(human_size_with_precision(512.0, 3), "512B");
        assert_eq!(human_size_with_precision(4_261_550.0, 3), "4.26MB");
        // Go prints %.3g of 999.9 as 1e+03.
        assert_eq!(human_size_with_precision(999_900.0, 3), "1e+03kB");
    }

    #[test]
    fn bytes_size_binary() {
        assert_eq!(bytes_size(1024.0), "1KiB");
        assert_eq!(bytes_size(1024.0 * 1024.0), "1MiB");
        assert_eq!(bytes_size(25_200_000_000.0), "23.47GiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn human_duration_matches_go_units() {
        let s = Duration::from_secs;
        assert_eq!(
            human_duration(Duration::from_millis(450)),
            "Less than a second"
        );
        assert_eq!(human_duration(s(1)), "1 second");
        assert_eq!(human_duration(s(15)), "15 seconds");
        assert_eq!(human_duration(s(59)), "59 seconds");
        assert_eq!(human_duration(s(60)), "About a minute");
        assert_eq!(human_duration(s(3 * 60)), "3 minutes");
        assert_eq!(human_duration(s(35 * 60)), "35 minutes");
        assert_eq!(human_duration(s(35 * 60 + 40)), "35 minutes");
        assert_eq!(human_duration(s(3600)), "About an hour");
        assert_eq!(human_duration(s(3600 + 45 * 60)), "2 hours");
        assert_eq!(human_duration(s(3 * 3600)), "3 hours");
        assert_eq!(human_duration(s(3 * 3600 + 59 * 60)), "4 hours");
        assert_eq!(human_duration(s(24 * 3600)), "24 hours");
        assert_eq!(human_duration(s(24 * 3600 * 2)), "2 days");
        assert_eq!(human_duration(s(24 * 3600 * 7)), "7 days");
        assert_eq!(human_duration(s(24 * 3600 * 13 + 23 * 3600)), "13 days");
        assert_eq!(human_duration(s(24 * 3600 * 14)), "2 weeks");
        assert_eq!(human_duration(s(24 * 3600 * 30)), "4 weeks");
        assert_eq!(human_duration(s(24 * 3600 * 30 * 2)), "2 months");
        assert_eq!(human_duration(s(24 * 3600 * 365)), "12 months");
        assert_eq!(human_duration(s(24 * 3600 * 365 * 2)), "2 years");
        assert_eq!(
            human_duration(s(24 * 3600 * 365 * 3 + 2 * 24 * 3600)),
            "3 years"
        );
    }
}
