//! `events` / `system events`: docker's event printer.
//!
//! `--since`/`--until` are converted on the client (docker's `GetTimestamp`): durations count
//! back from now, dates without a zone are local time, and everything is sent as
//! `<seconds>.<nanoseconds>`. Without `--format` each event prints as
//! `<RFC3339 with 9 fraction digits> <type> <action> <actor id> (k=v, … sorted)`; with one, the
//! template sees docker's `events.Message` (including the legacy `status`/`id`/`from`).

use std::collections::BTreeMap;
use std::io::Write;

use api_types::models::EventMessage;
use bollard::query_parameters::EventsOptions;
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Args;
use futures_util::StreamExt;
use serde::Serialize;

use super::container::parse_go_duration;
use super::parse_filters;
use crate::client::{CliError, Client};
use crate::format::{Template, Value};

#[derive(Debug, Args)]
pub(crate) struct EventsArgs {
    /// Filter output based on conditions provided
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Format output using a custom template:
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show all events created since timestamp
    #[arg(long, value_name = "string")]
    pub(crate) since: Option<String>,
    /// Stream events until this timestamp
    #[arg(long, value_name = "string")]
    pub(crate) until: Option<String>,
}

/// docker's `GetTimestamp`: the `<seconds>.<nanoseconds>` the API expects.
pub(crate) fn get_timestamp(value: &str, now: DateTime<Utc>) -> Result<String, String> {
    let nanos = |t: DateTime<Utc>| format!("{}.{:09}", t.timestamp(), t.timestamp_subsec_nanos());
    if let Some(secs) = parse_go_duration(value) {
        let d = chrono::Duration::nanoseconds((secs * 1e9) as i64);
        return Ok(nanos(now - d));
    }
    // Already a unix timestamp (`1700000000` or `1700000000.5`): sent as it is.
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    if !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
    {
        return Ok(value.to_string());
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Ok(nanos(t.with_timezone(&Utc)));
    }
    let local = |n: NaiveDateTime| {
        Local
            .from_local_datetime(&n)
            .earliest()
            .map(|t| nanos(t.with_timezone(&Utc)))
    };
    for f in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%dT%H",
    ] {
        if let Ok(n) = NaiveDateTime::parse_from_str(value, f)
            && let Some(s) = local(n)
        {
            return Ok(s);
        }
    }
    if let Some(s) = NaiveDate::parse_from_str(value, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .and_then(local)
    {
        return Ok(s);
    }
    Err(format!(
        "failed to parse value as time or duration: \"{value}\""
    ))
}

/// docker's `jsonmessage.RFC3339NanoFixed` in the local zone.
fn rfc3339_nano_fixed(nanos: i64) -> String {
    let t = Local.timestamp_nanos(nanos);
    let zone = t.format("%:z").to_string();
    let zone = if zone == "+00:00" {
        "Z".to_string()
    } else {
        zone
    };
    format!("{}{zone}", t.format("%Y-%m-%dT%H:%M:%S%.9f"))
}

/// The default line of one event.
pub(crate) fn pretty_line(ev: &EventMessage) -> String {
    let mut out = String::new();
    match (ev.time_nano.unwrap_or(0), ev.time.unwrap_or(0)) {
        (n, _) if n != 0 => {
            out.push_str(&rfc3339_nano_fixed(n));
            out.push(' ');
        }
        (_, s) if s != 0 => {
            out.push_str(&rfc3339_nano_fixed(s.saturating_mul(1_000_000_000)));
            out.push(' ');
        }
        _ => {}
    }
    let typ = ev.typ.map(|t| t.to_string()).unwrap_or_default();
    let actor = ev.actor.clone().unwrap_or_default();
    out.push_str(&format!(
        "{typ} {} {}",
        ev.action.as_deref().unwrap_or_default(),
        actor.id.as_deref().unwrap_or_default()
    ));
    let attrs: BTreeMap<String, String> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    if !attrs.is_empty() {
        let list: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(" ({})", list.join(", ")));
    }
    out
}

/// docker's `events.Message` as Go marshals it (map keys sorted, legacy fields first).
#[derive(Debug, Serialize)]
struct WireMessage {
    #[serde(skip_serializing_if = "String::is_empty")]
    status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    id: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    from: String,
    #[serde(rename = "Type")]
    typ: String,
    #[serde(rename = "Action")]
    action: String,
    #[serde(rename = "Actor")]
    actor: WireActor,
    scope: String,
    time: i64,
    #[serde(rename = "timeNano")]
    time_nano: i64,
}

#[derive(Debug, Serialize)]
struct WireActor {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Attributes")]
    attributes: BTreeMap<String, String>,
}

/// The template value of one event. bollard's model drops the legacy fields; they are rebuilt
/// as the daemon sends them (container and image events).
pub(crate) fn event_value(ev: &EventMessage) -> Result<Value, CliError> {
    let typ = ev.typ.map(|t| t.to_string()).unwrap_or_default();
    let actor = ev.actor.clone().unwrap_or_default();
    let attributes: BTreeMap<String, String> =
        actor.attributes.unwrap_or_default().into_iter().collect();
    let id = actor.id.unwrap_or_default();
    let action = ev.action.clone().unwrap_or_default();
    let legacy = typ == "container" || typ == "image";
    let msg = WireMessage {
        status: if legacy {
            action.clone()
        } else {
            String::new()
        },
        id: if legacy { id.clone() } else { String::new() },
        from: if typ == "container" {
            attributes.get("image").cloned().unwrap_or_default()
        } else {
            String::new()
        },
        typ,
        action,
        actor: WireActor { id, attributes },
        scope: ev.scope.map(|s| s.to_string()).unwrap_or_default(),
        time: ev.time.unwrap_or(0),
        time_nano: ev.time_nano.unwrap_or(0),
    };
    Ok(Value::from_serialize(&msg)?)
}

fn template_of(format: Option<&str>) -> Result<Option<Template>, CliError> {
    let f = match format {
        None | Some("") => return Ok(None),
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    let t = Template::parse(f)
        .map_err(|e| CliError::Message(format!("template parsing error: {e}")))?;
    Ok(Some(t))
}

/// `berth events`.
pub(crate) async fn events(client: &Client, args: &EventsArgs) -> Result<(), CliError> {
    let template = template_of(args.format.as_deref())?;
    let now = Utc::now();
    let time = |v: &Option<String>| -> Result<Option<String>, CliError> {
        v.as_deref()
            .filter(|s| !s.is_empty())
            .map(|s| get_timestamp(s, now).map_err(CliError::Message))
            .transpose()
    };
    let filters = parse_filters(&args.filter)?;
    let opts = EventsOptions {
        since: time(&args.since)?,
        until: time(&args.until)?,
        filters: (!filters.is_empty()).then_some(filters),
    };
    let mut stream = client.docker.events(Some(opts));
    while let Some(item) = stream.next().await {
        let ev = item.map_err(|e| client.error(e))?;
        let line = match &template {
            None => pretty_line(&ev),
            Some(t) => t.render(&event_value(&ev)?)?,
        };
        let mut out = std::io::stdout().lock();
        writeln!(out, "{line}")?;
        out.flush()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use api_types::models::{EventActor, EventMessageScopeEnum, EventMessageTypeEnum};

    use super::*;

    fn ev() -> EventMessage {
        EventMessage {
            typ: Some(EventMessageTypeEnum::CONTAINER),
            action: Some("start".into()),
            actor: Some(EventActor {
                id: Some("abc".into()),
                attributes: Some(HashMap::from([
                    ("name".to_string(), "x".to_string()),
                    ("image".to_string(), "busybox".to_string()),
                ])),
            }),
            scope: Some(EventMessageScopeEnum::LOCAL),
            time: Some(1_795_000_000),
            time_nano: Some(1_795_000_000_870_318_289),
        }
    }

    #[test]
    fn default_line_sorts_attributes() {
        let line = pretty_line(&ev());
        assert!(
            line.ends_with(" container start abc (image=busybox, name=x)"),
            "{line}"
        );
        // Nine fraction digits, always.
        let stamp = line.split(' ').next().unwrap();
        let frac = stamp.split('.').nth(1).unwrap();
        assert_eq!(frac.chars().take_while(char::is_ascii_digit).count(), 9);
        assert!(frac.starts_with("870318289"));
    }

    #[test]
    fn json_has_legacy_fields_in_go_order() {
        let v = event_value(&ev()).unwrap();
        assert_eq!(
            v.to_go_json(),
            r#"{"status":"start","id":"abc","from":"busybox","Type":"container","Action":"start","Actor":{"ID":"abc","Attributes":{"image":"busybox","name":"x"}},"scope":"local","time":1795000000,"timeNano":1795000000870318289}"#
        );
        let t = template_of(Some("{{.Status}} {{.ID}} {{.Actor.Attributes.name}}"))
            .unwrap()
            .unwrap();
        assert_eq!(t.render(&v).unwrap(), "start abc x");
    }

    #[test]
    fn timestamps_like_docker() {
        let now = Utc.timestamp_opt(1_000_000, 0).unwrap();
        assert_eq!(get_timestamp("10m", now).unwrap(), "999400.000000000");
        assert_eq!(get_timestamp("1h30m", now).unwrap(), "994600.000000000");
        assert_eq!(get_timestamp("1700000000", now).unwrap(), "1700000000");
        assert_eq!(get_timestamp("1700000000.5", now).unwrap(), "1700000000.5");
        assert_eq!(
            get_timestamp("2024-01-02T03:04:05.5Z", now).unwrap(),
            "1704164645.500000000"
        );
        assert!(get_timestamp("yesterday", now).is_err());
    }
}
