//! Dockerfile-like `--change` lines for `docker import` (and later `commit`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::{ContainerConfig, ImagesError, Result};

/// Splits a line into words, honouring single and double quotes and backslash escapes.
pub(crate) fn split_words(s: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\\' => {
                in_word = true;
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(n @ ('"' | '\\' | '$' | '`')) => cur.push(n),
                            Some(n) => {
                                cur.push('\\');
                                cur.push(n);
                            }
                            None => break,
                        },
                        Some(n) => cur.push(n),
                        None => {
                            return Err(ImagesError::InvalidChange(format!(
                                "unexpected end of statement while looking for matching double-quote: {s}"
                            )));
                        }
                    }
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(n) => cur.push(n),
                        None => {
                            return Err(ImagesError::InvalidChange(format!(
                                "unexpected end of statement while looking for matching single-quote: {s}"
                            )));
                        }
                    }
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// `["a","b"]` → Some(vec), anything else → None.
fn json_array(rest: &str) -> Option<Vec<String>> {
    if !rest.starts_with('[') {
        return None;
    }
    serde_json::from_str::<Vec<String>>(rest).ok()
}

/// Key/value pairs of `ENV`/`LABEL`: `k=v k2="v 2"` or the legacy `k v w`.
fn key_values(instr: &str, rest: &str) -> Result<Vec<(String, String)>> {
    let words = split_words(rest)?;
    let Some(first) = words.first() else {
        return Err(ImagesError::InvalidChange(format!(
            "{instr} requires at least one argument"
        )));
    };
    if !first.contains('=') {
        // legacy form: first word is the key, the rest of the line the value
        let raw = rest.trim_start();
        let key_end = raw.find(char::is_whitespace).unwrap_or(raw.len());
        let value = raw[key_end..].trim();
        if value.is_empty() {
            return Err(ImagesError::InvalidChange(format!(
                "{instr} must have two arguments"
            )));
        }
        let value = split_words(value)?.join(" ");
        return Ok(vec![(first.clone(), value)]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(ImagesError::InvalidChange(format!(
                "{instr} names can not be blank or must be of the form key=value: {w}"
            ))),
        })
        .collect()
}

fn cmd_form(cfg: &ContainerConfig, rest: &str) -> Vec<String> {
    if let Some(v) = json_array(rest) {
        return v;
    }
    let mut shell = cfg
        .shell
        .clone()
        .unwrap_or_else(|| vec!["/bin/sh".to_string(), "-c".to_string()]);
    shell.push(rest.to_string());
    shell
}

fn parse_ports(words: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        let (ports, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_lowercase()),
            None => (w.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(ImagesError::InvalidChange(format!(
                "invalid proto: {proto}"
            )));
        }
        let bad = || ImagesError::InvalidChange(format!("invalid containerPort: {ports}"));
        let (lo, hi) = match ports.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let p = ports.parse::<u16>().map_err(|_| bad())?;
                (p, p)
            }
        };
        if hi < lo {
            return Err(bad());
        }
        for p in lo..=hi {
            out.push(format!("{p}/{proto}"));
        }
    }
    Ok(out)
}

/// Applies one change line to `cfg`.
pub(crate) fn apply_change(cfg: &mut ContainerConfig, line: &str) -> Result<()> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(());
    }
    let (instr, rest) = match line.find(char::is_whitespace) {
        Some(i) => (&line[..i], line[i..].trim()),
        None => (line, ""),
    };
    let upper = instr.to_uppercase();
    let need_arg = || {
        if rest.is_empty() {
            Err(ImagesError::InvalidChange(format!(
                "{upper} requires at least one argument"
            )))
        } else {
            Ok(())
        }
    };
    match upper.as_str() {
        "CMD" => {
            need_arg()?;
            cfg.cmd = Some(cmd_form(cfg, rest));
        }
        "ENTRYPOINT" => {
            need_arg()?;
            cfg.entrypoint = Some(cmd_form(cfg, rest));
        }
        "SHELL" => {
            cfg.shell = Some(json_array(rest).ok_or_else(|| {
                ImagesError::InvalidChange("SHELL requires the arguments to be in JSON form".into())
            })?);
        }
        "ENV" => {
            need_arg()?;
            let env = cfg.env.get_or_insert_with(Vec::new);
            for (k, v) in key_values("ENV", rest)? {
                let entry = format!("{k}={v}");
                match env
                    .iter_mut()
                    .find(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()))
                {
                    Some(e) => *e = entry,
                    None => env.push(entry),
                }
            }
        }
        "LABEL" => {
            need_arg()?;
            let labels = cfg.labels.get_or_insert_with(BTreeMap::new);
            for (k, v) in key_values("LABEL", rest)? {
                labels.insert(k, v);
            }
        }
        "EXPOSE" => {
            need_arg()?;
            let ports = parse_ports(&split_words(rest)?)?;
            let map = cfg.exposed_ports.get_or_insert_with(Map::new);
            for p in ports {
                map.insert(p, Value::Object(Map::new()));
            }
        }
        "USER" => {
            need_arg()?;
            cfg.user = Some(rest.to_string());
        }
        "WORKDIR" => {
            need_arg()?;
            let w = split_words(rest)?.join(" ");
            let new = if w.starts_with('/') {
                w
            } else {
                let base = cfg.working_dir.clone().unwrap_or_else(|| "/".into());
                format!("{}/{w}", base.trim_end_matches('/'))
            };
            cfg.working_dir = Some(new);
        }
        "VOLUME" => {
            need_arg()?;
            let vols = match json_array(rest) {
                Some(v) => v,
                None => split_words(rest)?,
            };
            let map = cfg.volumes.get_or_insert_with(Map::new);
            for v in vols {
                if v.trim().is_empty() {
                    return Err(ImagesError::InvalidChange(
                        "VOLUME specified can not be an empty string".into(),
                    ));
                }
                map.insert(v, Value::Object(Map::new()));
            }
        }
        "STOPSIGNAL" => {
            need_arg()?;
            cfg.stop_signal = Some(rest.to_string());
        }
        "ONBUILD" => {
            need_arg()?;
            let trigger = rest.split_whitespace().next().unwrap_or("").to_uppercase();
            if matches!(trigger.as_str(), "ONBUILD" | "FROM" | "MAINTAINER") {
                return Err(ImagesError::InvalidChange(format!(
                    "{trigger} isn't allowed as an ONBUILD trigger"
                )));
            }
            cfg.on_build
                .get_or_insert_with(Vec::new)
                .push(rest.to_string());
        }
        "HEALTHCHECK" => {
            need_arg()?;
            // Flags first (`--interval=30s --retries=3 CMD …`), as the Dockerfile instruction.
            let mut hc = Map::new();
            let mut rest = rest.trim_start();
            while let Some(flag) = rest.strip_prefix("--") {
                let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
                let (name, value) = flag[..end].split_once('=').ok_or_else(|| {
                    ImagesError::InvalidChange(format!(
                        "missing a value on flag: --{}",
                        &flag[..end]
                    ))
                })?;
                let key = match name {
                    "interval" => "Interval",
                    "timeout" => "Timeout",
                    "start-period" => "StartPeriod",
                    "start-interval" => "StartInterval",
                    "retries" => "Retries",
                    other => {
                        return Err(ImagesError::InvalidChange(format!("Unknown flag: {other}")));
                    }
                };
                let n = if key == "Retries" {
                    value.parse::<i64>().ok().filter(|n| *n >= 0)
                } else {
                    go_duration_nanos(value)
                }
                .ok_or_else(|| {
                    ImagesError::InvalidChange(format!("invalid value {value:?} for --{name}"))
                })?;
                hc.insert(key.into(), Value::from(n));
                rest = flag[end..].trim_start();
            }
            let words = split_words(rest)?;
            let test = match words.first().map(|w| w.to_uppercase()).as_deref() {
                Some("NONE") => vec!["NONE".to_string()],
                Some("CMD") => {
                    let after = rest[3..].trim();
                    match json_array(after) {
                        Some(v) => std::iter::once("CMD".to_string()).chain(v).collect(),
                        None => vec!["CMD-SHELL".to_string(), after.to_string()],
                    }
                }
                _ => {
                    return Err(ImagesError::InvalidChange(
                        "Unknown type in HEALTHCHECK (try CMD)".into(),
                    ));
                }
            };
            hc.insert("Test".into(), Value::from(test));
            cfg.healthcheck = Some(Value::Object(hc));
        }
        _ => {
            return Err(ImagesError::InvalidChange(format!(
                "{upper} is not a valid change command"
            )));
        }
    }
    Ok(())
}

/// A Go duration (`300ms`, `1m30s`, `1.5h`) in nanoseconds; `None` when malformed.
fn go_duration_nanos(s: &str) -> Option<i64> {
    if s == "0" {
        return Some(0);
    }
    let mut total = 0f64;
    let mut rest = s;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .filter(|i| *i > 0)?;
        let n: f64 = rest[..num_end].parse().ok()?;
        let unit_end = rest[num_end..]
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .map_or(rest.len(), |i| num_end + i);
        let scale = match &rest[num_end..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += n * scale;
        rest = &rest[unit_end..];
    }
    Some(total as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthcheck_flags() {
        let c = apply(&["HEALTHCHECK --interval=300ms --timeout=1m30s --retries=2 CMD true"]);
        let hc = c.healthcheck.unwrap();
        assert_eq!(hc["Interval"], 300_000_000);
        assert_eq!(hc["Timeout"], 90_000_000_000_i64);
        assert_eq!(hc["Retries"], 2);
        assert_eq!(hc["Test"], serde_json::json!(["CMD-SHELL", "true"]));
        let mut c = ContainerConfig::default();
        assert!(apply_change(&mut c, "HEALTHCHECK --interval=soon CMD true").is_err());
        assert!(apply_change(&mut c, "HEALTHCHECK --bogus=1 CMD true").is_err());
        assert_eq!(go_duration_nanos("1.5h"), Some(5_400_000_000_000));
        assert_eq!(go_duration_nanos("10"), None);
    }

    fn apply(lines: &[&str]) -> ContainerConfig {
        let mut c = ContainerConfig::default();
        for l in lines {
            apply_change(&mut c, l).unwrap();
        }
        c
    }

    #[test]
    fn cmd_and_entrypoint_forms() {
        let c = apply(&[r#"CMD ["sh"]"#, "ENTRYPOINT echo hi"]);
        assert_eq!(c.cmd, Some(vec!["sh".to_string()]));
        assert_eq!(
            c.entrypoint,
            Some(vec!["/bin/sh".into(), "-c".into(), "echo hi".into()])
        );
        let c = apply(&[r#"SHELL ["/bin/bash","-c"]"#, "cmd ls -l"]);
        assert_eq!(
            c.cmd,
            Some(vec!["/bin/bash".into(), "-c".into(), "ls -l".into()])
        );
    }

    #[test]
    fn env_label_expose_volume() {
        let c = apply(&[
            "ENV A=1",
            r#"ENV B="two words" C=3"#,
            "ENV D legacy value",
            "ENV A=override",
            "LABEL x=y \"z\"=w",
            "EXPOSE 80 90/udp 1000-1001",
            "VOLUME /a /b",
            r#"VOLUME ["/c"]"#,
            "USER nobody",
            "WORKDIR /srv",
            "WORKDIR app",
            "STOPSIGNAL SIGQUIT",
            "ONBUILD RUN echo x",
            "HEALTHCHECK CMD curl -f localhost",
        ]);
        assert_eq!(
            c.env.unwrap(),
            vec!["A=override", "B=two words", "C=3", "D=legacy value"]
        );
        let labels = c.labels.unwrap();
        assert_eq!(labels.get("x").map(String::as_str), Some("y"));
        assert_eq!(labels.get("z").map(String::as_str), Some("w"));
        let ports: Vec<_> = c.exposed_ports.unwrap().keys().cloned().collect();
        assert_eq!(ports, vec!["1000/tcp", "1001/tcp", "80/tcp", "90/udp"]);
        let vols: Vec<_> = c.volumes.unwrap().keys().cloned().collect();
        assert_eq!(vols, vec!["/a", "/b", "/c"]);
        assert_eq!(c.user.as_deref(), Some("nobody"));
        assert_eq!(c.working_dir.as_deref(), Some("/srv/app"));
        assert_eq!(c.stop_signal.as_deref(), Some("SIGQUIT"));
        assert_eq!(c.on_build, Some(vec!["RUN echo x".to_string()]));
        assert!(c.healthcheck.is_some());
    }

    #[test]
    fn rejects_unknown_and_bad() {
        let mut c = ContainerConfig::default();
        let e = apply_change(&mut c, "FOO bar").unwrap_err();
        assert_eq!(e.to_string(), "FOO is not a valid change command");
        assert!(apply_change(&mut c, "RUN echo").is_err());
        assert!(apply_change(&mut c, "EXPOSE abc").is_err());
        assert!(apply_change(&mut c, "EXPOSE 80/xyz").is_err());
        assert!(apply_change(&mut c, "ENV").is_err());
        assert!(apply_change(&mut c, "ENV A").is_err());
        assert!(apply_change(&mut c, "ENV =x").is_err());
        assert!(apply_change(&mut c, "ENV A=\"unterminated").is_err());
        assert!(apply_change(&mut c, "SHELL sh").is_err());
    }
}
