//! `system prune` and `container prune`, in docker's order and words.
//!
//! `system prune` validates, asks (unless `-f`), then prunes containers, networks, volumes
//! (only with `--volumes`), images (dangling, or every unused one with `-a`) and the build
//! cache, printing each non-empty section followed by a blank line and finally
//! `Total reclaimed space: …`. Answering anything but `y` cancels quietly (exit 0).

use std::collections::HashMap;

use bollard::query_parameters::{
    PruneBuildOptions, PruneContainersOptions, PruneImagesOptions, PruneNetworksOptions,
    PruneVolumesOptions,
};
use clap::Args;

use super::images::confirm;
use super::parse_filters;
use crate::client::{CliError, Client};
use crate::format::units;

#[derive(Debug, Args)]
pub(crate) struct SystemPruneArgs {
    /// Remove all unused images not just dangling ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "label=<key>=<value>")
    #[arg(long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    /// Prune anonymous volumes
    #[arg(long)]
    pub(crate) volumes: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ContainerPruneArgs {
    /// Provide filter values (e.g. "until=<timestamp>")
    #[arg(long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

type FilterMap = HashMap<String, Vec<String>>;

/// docker's confirmation text for `system prune`.
pub(crate) fn system_prune_warning(args: &SystemPruneArgs) -> String {
    let mut items = vec![
        "all stopped containers",
        "all networks not used by at least one container",
    ];
    if args.volumes {
        items.push("all anonymous volumes not used by at least one container");
    }
    items.push(if args.all {
        "all images without at least one container associated to them"
    } else {
        "all dangling images"
    });
    items.push(if args.all {
        "all build cache"
    } else {
        "unused build cache"
    });
    let mut text = String::from("WARNING! This will remove:\n");
    for i in items {
        text.push_str(&format!("  - {i}\n"));
    }
    let mut filters = args.filter.clone();
    filters.sort();
    if !filters.is_empty() {
        text.push_str("\n  Items to be pruned will be filtered with:\n");
        for f in filters {
            text.push_str(&format!("  - {f}\n"));
        }
    }
    text.push_str("\nAre you sure you want to continue?");
    text
}

/// Validates and asks before connecting, as docker does. False: cancelled.
pub(crate) fn system_prune_confirmed(args: &SystemPruneArgs) -> Result<bool, CliError> {
    let filters = parse_filters(&args.filter)?;
    if args.volumes && filters.contains_key("until") {
        return Err(CliError::Message(
            "ERROR: The \"until\" filter is not supported with \"--volumes\"".into(),
        ));
    }
    if args.force {
        return Ok(true);
    }
    confirm(&system_prune_warning(args))
}

/// `container prune`'s question. False: cancelled.
pub(crate) fn container_prune_confirmed(args: &ContainerPruneArgs) -> Result<bool, CliError> {
    parse_filters(&args.filter)?;
    if args.force {
        return Ok(true);
    }
    confirm("WARNING! This will remove all stopped containers.\nAre you sure you want to continue?")
}

fn section(title: &str, items: &[String]) -> String {
    let mut out = format!("{title}:\n");
    for i in items {
        out.push_str(i);
        out.push('\n');
    }
    out
}

fn reclaimed(n: Option<i64>) -> u64 {
    u64::try_from(n.unwrap_or(0)).unwrap_or(0)
}

async fn prune_containers(client: &Client, filters: &FilterMap) -> Result<(u64, String), CliError> {
    let r = client
        .docker
        .prune_containers(Some(PruneContainersOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.containers_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    Ok((
        reclaimed(r.space_reclaimed),
        section("Deleted Containers", &deleted),
    ))
}

async fn prune_networks(client: &Client, filters: &FilterMap) -> Result<(u64, String), CliError> {
    let r = client
        .docker
        .prune_networks(Some(PruneNetworksOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.networks_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    Ok((0, section("Deleted Networks", &deleted)))
}

/// Anonymous volumes only, even with `-a` (docker's system prune never sends `all`).
async fn prune_volumes(client: &Client, filters: &FilterMap) -> Result<(u64, String), CliError> {
    let r = client
        .docker
        .prune_volumes(Some(PruneVolumesOptions {
            filters: Some(filters.clone()),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.volumes_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    Ok((
        reclaimed(r.space_reclaimed),
        section("Deleted Volumes", &deleted),
    ))
}

async fn prune_images(
    client: &Client,
    filters: &FilterMap,
    all: bool,
) -> Result<(u64, String), CliError> {
    let mut filters = filters.clone();
    filters.insert("dangling".into(), vec![(!all).to_string()]);
    let r = client
        .docker
        .prune_images(Some(PruneImagesOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.images_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    let mut out = String::from("Deleted Images:\n");
    for d in deleted {
        match (d.untagged, d.deleted) {
            (Some(u), _) if !u.is_empty() => out.push_str(&format!("untagged: {u}\n")),
            (_, Some(del)) => out.push_str(&format!("deleted: {del}\n")),
            _ => {}
        }
    }
    Ok((reclaimed(r.space_reclaimed), out))
}

async fn prune_build_cache(
    client: &Client,
    filters: &FilterMap,
    all: bool,
) -> Result<(u64, String), CliError> {
    let r = client
        .docker
        .prune_build(Some(PruneBuildOptions {
            all: all.then_some(true),
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.caches_deleted.unwrap_or_default();
    if deleted.is_empty() {
        return Ok((0, String::new()));
    }
    Ok((
        reclaimed(r.space_reclaimed),
        section("Deleted build cache objects", &deleted),
    ))
}

/// `berth system prune` (after confirmation).
pub(crate) async fn system_prune(client: &Client, args: &SystemPruneArgs) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let mut total = 0u64;
    let mut report = |(space, text): (u64, String)| {
        total += space;
        if !text.is_empty() {
            println!("{text}");
        }
    };
    report(prune_containers(client, &filters).await?);
    report(prune_networks(client, &filters).await?);
    if args.volumes {
        report(prune_volumes(client, &filters).await?);
    }
    report(prune_images(client, &filters, args.all).await?);
    report(prune_build_cache(client, &filters, args.all).await?);
    println!("Total reclaimed space: {}", units::human_size(total as f64));
    Ok(())
}

/// `berth container prune` (after confirmation).
pub(crate) async fn container_prune(
    client: &Client,
    args: &ContainerPruneArgs,
) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let (space, text) = prune_containers(client, &filters).await?;
    if !text.is_empty() {
        println!("{text}");
    }
    println!("Total reclaimed space: {}", units::human_size(space as f64));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warning_like_docker() {
        let args = SystemPruneArgs {
            all: false,
            filter: vec![],
            force: false,
            volumes: false,
        };
        assert_eq!(
            system_prune_warning(&args),
            "WARNING! This will remove:\n  - all stopped containers\n  - all networks not used by at least one container\n  - all dangling images\n  - unused build cache\n\nAre you sure you want to continue?"
        );
        let args = SystemPruneArgs {
            all: true,
            filter: vec!["label=a=b".into(), "label!=c".into()],
            force: false,
            volumes: true,
        };
        let w = system_prune_warning(&args);
        assert!(w.contains("  - all anonymous volumes not used by at least one container\n"));
        assert!(w.contains("  - all images without at least one container associated to them\n  - all build cache\n"));
        assert!(w.ends_with("\n  Items to be pruned will be filtered with:\n  - label!=c\n  - label=a=b\n\nAre you sure you want to continue?"), "{w}");
    }

    #[test]
    fn until_with_volumes_is_refused() {
        let args = SystemPruneArgs {
            all: false,
            filter: vec!["until=1h".into()],
            force: true,
            volumes: true,
        };
        let e = system_prune_confirmed(&args).unwrap_err();
        assert_eq!(
            e.to_string(),
            "ERROR: The \"until\" filter is not supported with \"--volumes\""
        );
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn sections() {
        assert_eq!(
            section("Deleted Containers", &["a".into(), "b".into()]),
            "Deleted Containers:\na\nb\n"
        );
    }
}
