//! `berth push` / `berth image push`: `POST /images/{name}/push?tag=`, shown as docker shows
//! the JSON progress stream. bollard's push messages drop the layer `id`, so the request goes
//! through `raw::post_raw` and the lines are shown once the daemon has answered.

use std::io::IsTerminal;

use clap::Args;

use super::archive::JsonMessage;
use super::images::{normalize_name, split_reference};
use super::layer_bars::LayerDisplay;
use crate::client::{CliError, Client};

#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// Push all tags of an image to the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "NAME[:TAG]")]
    pub(crate) name: String,
}

/// One line of the push stream, the fields shown.
#[derive(Debug, Default, serde::Deserialize)]
struct Line {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default, rename = "progressDetail")]
    progress_detail: Option<Detail>,
    #[serde(default, rename = "errorDetail")]
    error_detail: Option<ErrorDetail>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct Detail {
    #[serde(default)]
    current: Option<i64>,
    #[serde(default)]
    total: Option<i64>,
}

#[derive(Debug, Default, serde::Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: String,
}

/// The stream's lines as display messages, and the in-band error that ended it.
fn messages(body: &[u8]) -> Result<(Vec<JsonMessage>, Option<String>), CliError> {
    let mut out = Vec::new();
    for raw in body.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        let l: Line = serde_json::from_slice(raw)?;
        if let Some(e) = l.error_detail {
            return Ok((out, Some(e.message)));
        }
        // The aux result has no status: nothing to show.
        if l.status.is_none() {
            continue;
        }
        let (current, total, has_progress) = match l.progress_detail {
            Some(d) if d.current.is_some() || d.total.is_some() => (d.current, d.total, true),
            _ => (None, None, false),
        };
        out.push(JsonMessage {
            id: l.id,
            status: l.status,
            current,
            total,
            has_progress,
            ..Default::default()
        });
    }
    Ok((out, None))
}

/// `berth push`.
pub(crate) async fn push(client: &Client, args: &PushArgs) -> Result<(), CliError> {
    let (name, tag, digest) = split_reference(&args.name);
    if digest.is_some() {
        return Err(CliError::Message(format!(
            "invalid reference format: cannot push a digest reference: {}",
            args.name
        )));
    }
    if args.all_tags && tag.is_some() {
        return Err(CliError::Message(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    let tag = if args.all_tags {
        String::new()
    } else {
        tag.unwrap_or_else(|| {
            if !args.quiet {
                println!("Using default tag: latest");
            }
            "latest".to_string()
        })
    };
    let path = format!("/images/{name}/push?tag={tag}");
    let domain = super::login::domain_of(&normalize_name(&name)).to_string();
    let headers: Vec<String> = super::login::registry_auth_header(&domain)
        .map(|a| format!("X-Registry-Auth: {a}"))
        .into_iter()
        .collect();
    let (_, body) = crate::raw::post_raw(client, &path, &headers, None).await?;
    let (msgs, error) = messages(&body)?;
    if !args.quiet {
        let mut display = LayerDisplay::new(std::io::stdout().is_terminal());
        for m in &msgs {
            display.show(m)?;
        }
    }
    if let Some(e) = error {
        return Err(CliError::Message(e));
    }
    if args.quiet {
        println!("{}", args.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_lines() {
        let body = br#"{"status":"The push refers to repository [127.0.0.1:5000/t]"}
{"status":"Preparing","id":"abc"}
{"status":"Pushing","progressDetail":{"current":1,"total":2},"progress":"[=>  ]","id":"abc"}
{"progressDetail":{},"aux":{"Tag":"latest","Digest":"sha256:x","Size":1}}
"#;
        let (m, e) = messages(body).unwrap();
        assert!(e.is_none());
        assert_eq!(m.len(), 3);
        assert_eq!(m[1].id.as_deref(), Some("abc"));
        assert!(m[2].has_progress && !m[1].has_progress);
        let err = br#"{"status":"x"}
{"errorDetail":{"message":"no basic auth credentials"},"error":"no basic auth credentials"}
"#;
        let (m, e) = messages(err).unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(e.as_deref(), Some("no basic auth credentials"));
    }
}
