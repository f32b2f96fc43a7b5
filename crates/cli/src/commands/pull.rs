//! `berth pull` / `berth image pull`: `POST /images/create?fromImage=`, shown as docker shows
//! the JSON progress stream (per-layer lines, updated in place on a terminal).

use std::io::IsTerminal;

use bollard::query_parameters::CreateImageOptions;
use clap::Args;
use futures_util::StreamExt;

use super::images::{normalize_name, split_reference};
use super::layer_bars::LayerDisplay;
use crate::client::{CliError, Client};

#[derive(Debug, Args)]
pub(crate) struct PullArgs {
    /// Download all tagged images in the repository
    #[arg(short = 'a', long = "all-tags")]
    pub(crate) all_tags: bool,
    /// Set platform if server is multi-platform capable
    #[arg(long, value_name = "string")]
    pub(crate) platform: Option<String>,
    /// Suppress verbose output
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
    #[arg(value_name = "NAME[:TAG|@DIGEST]")]
    pub(crate) name: String,
}

/// `berth pull`.
pub(crate) async fn pull(client: &Client, args: &PullArgs) -> Result<(), CliError> {
    let (name, tag, digest) = split_reference(&args.name);
    if args.all_tags && (tag.is_some() || digest.is_some()) {
        // docker's words.
        return Err(CliError::Message(
            "tag can't be used with --all-tags/-a".into(),
        ));
    }
    if tag.is_none() && digest.is_none() && !args.quiet && !args.all_tags {
        println!("Using default tag: latest");
    }
    let opts = CreateImageOptions {
        from_image: Some(normalize_name(&name)),
        // No tag at all asks the daemon for every tag (`-a`).
        tag: (!args.all_tags).then(|| {
            digest
                .clone()
                .or(tag.clone())
                .unwrap_or_else(|| "latest".to_string())
        }),
        platform: args.platform.clone().unwrap_or_default(),
        ..Default::default()
    };
    // Per-layer bars on a terminal, docker's plain lines elsewhere.
    let mut display = LayerDisplay::new(std::io::stdout().is_terminal());
    let normalized = normalize_name(&name);
    let credentials = super::login::stored_credentials(super::login::domain_of(&normalized)).map(
        |(username, password, serveraddress)| bollard::auth::DockerCredentials {
            username: Some(username),
            password: Some(password),
            serveraddress: Some(serveraddress),
            ..Default::default()
        },
    );
    let mut stream = client.docker.create_image(Some(opts), None, credentials);
    while let Some(item) = stream.next().await {
        let msg = item.map_err(|e| client.error(e))?;
        if let Some(e) = msg.error_detail.as_ref().and_then(|d| d.message.clone()) {
            return Err(CliError::Message(e));
        }
        if !args.quiet {
            display.show(&msg.into())?;
        }
    }
    drop(display);
    let full = match (tag, digest) {
        (_, Some(d)) => format!("{name}@{d}"),
        (Some(t), None) => format!("{name}:{t}"),
        (None, None) if args.all_tags => name,
        (None, None) => format!("{name}:latest"),
    };
    println!("{}", display_name(&full));
    Ok(())
}

/// The fully qualified name docker prints last (`docker.io/library/busybox:latest`).
fn display_name(familiar: &str) -> String {
    normalize_name(familiar)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_line_is_fully_qualified() {
        assert_eq!(
            display_name("busybox:latest"),
            "docker.io/library/busybox:latest"
        );
        assert_eq!(
            display_name("127.0.0.1:5000/test/bb:latest"),
            "127.0.0.1:5000/test/bb:latest"
        );
    }
}
