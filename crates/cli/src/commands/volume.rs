//! `berth volume create|ls|inspect|rm|prune`, with docker's flags, tables and words.
//!
//! `ls` sorts names naturally (docker's `sortorder.NaturalLess`) and renders the volume
//! formatter's fields (`Name`, `Driver`, `Scope`, `Mountpoint`, `Labels`, `Links`, `Size`, and
//! `N/A` for the cluster-only ones); `inspect` prints the daemon's JSON as it came, indented;
//! `rm` prints each removed name and collects the errors; `prune` asks docker's question
//! unless `-f` and sends `all=true` with `-a`.

use std::collections::HashMap;

use api_types::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters::{ListVolumesOptions, PruneVolumesOptions, RemoveVolumeOptions};
use clap::{Args, Subcommand};

use super::images::confirm;
use super::{FORMAT_HELP, parse_filters};
use crate::client::{CliError, Client};
use crate::format::{Format, Value, units};

const DEFAULT_VOLUME_TABLE: &str = "table {{.Driver}}\t{{.Name}}";
const QUIET_FORMAT: &str = "{{.Name}}";
const JSON_FORMAT: &str = "{{json .}}";
const PRUNE_ANONYMOUS_WARNING: &str = "WARNING! This will remove anonymous local volumes not used by at least one container.\nAre you sure you want to continue?";
const PRUNE_ALL_WARNING: &str = "WARNING! This will remove all local volumes not used by at least one container.\nAre you sure you want to continue?";

#[derive(Debug, Subcommand)]
pub(crate) enum VolumeCommand {
    /// Create a volume
    Create(CreateArgs),
    /// Display detailed information on one or more volumes
    Inspect(InspectArgs),
    /// List volumes
    #[command(alias = "list")]
    Ls(LsArgs),
    /// Remove all unused local volumes
    Prune(PruneArgs),
    /// Remove one or more volumes
    #[command(alias = "remove")]
    Rm(RmArgs),
}

#[derive(Debug, Args)]
pub(crate) struct CreateArgs {
    /// Specify volume driver name
    #[arg(short = 'd', long, value_name = "string", default_value = "local")]
    pub(crate) driver: String,
    /// Set metadata for a volume
    #[arg(long, value_name = "list")]
    pub(crate) label: Vec<String>,
    /// Set driver specific options
    #[arg(short = 'o', long = "opt", value_name = "map")]
    pub(crate) opt: Vec<String>,
    /// Specify volume name
    #[arg(long, value_name = "string", hide = true)]
    pub(crate) name: Option<String>,
    #[arg(value_name = "VOLUME")]
    pub(crate) volume: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Format output using a custom template
    #[arg(short = 'f', long, value_name = "string")]
    pub(crate) format: Option<String>,
    #[arg(value_name = "VOLUME", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LsArgs {
    /// Provide filter values (e.g. 'dangling=true')
    #[arg(short = 'f', long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    #[arg(long, value_name = "string", help = FORMAT_HELP)]
    pub(crate) format: Option<String>,
    /// Only display volume names
    #[arg(short = 'q', long)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Args)]
pub(crate) struct RmArgs {
    /// Force the removal of one or more volumes
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
    #[arg(value_name = "VOLUME", required = true)]
    pub(crate) names: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PruneArgs {
    /// Remove all unused volumes, not just anonymous ones
    #[arg(short = 'a', long)]
    pub(crate) all: bool,
    /// Provide filter values (e.g. "label=<label>")
    #[arg(long = "filter", value_name = "filter")]
    pub(crate) filter: Vec<String>,
    /// Do not prompt for confirmation
    #[arg(short = 'f', long)]
    pub(crate) force: bool,
}

/// `volume prune`'s checks and question, before connecting (as docker does). False: cancelled.
pub(crate) fn prune_confirmed(args: &PruneArgs) -> Result<bool, CliError> {
    let filters = parse_filters(&args.filter)?;
    if args.all && filters.contains_key("all") {
        return Err(CliError::Message(
            "conflicting options: cannot specify both --all and --filter all=1".into(),
        ));
    }
    if args.force {
        return Ok(true);
    }
    confirm(if args.all {
        PRUNE_ALL_WARNING
    } else {
        PRUNE_ANONYMOUS_WARNING
    })
}

/// Runs one `volume` subcommand.
pub(crate) async fn run(client: &Client, cmd: VolumeCommand) -> Result<(), CliError> {
    match cmd {
        VolumeCommand::Create(a) => create(client, a).await,
        VolumeCommand::Inspect(a) => inspect(client, &a).await,
        VolumeCommand::Ls(a) => list(client, &a).await,
        VolumeCommand::Rm(a) => remove(client, &a).await,
        VolumeCommand::Prune(a) => prune(client, &a).await,
    }
}

/// The create request from the flags (docker's `MapOpts` and label conversion).
fn create_request(args: CreateArgs) -> Result<VolumeCreateRequest, CliError> {
    let name = match (args.volume, args.name) {
        (Some(_), Some(n)) if !n.is_empty() => {
            return Err(CliError::Message(
                "conflicting options: cannot specify a volume-name through both --name and as a positional arg".into(),
            ));
        }
        (Some(v), _) => v,
        (None, n) => n.unwrap_or_default(),
    };
    let mut labels = HashMap::new();
    for l in &args.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.trim().is_empty() {
            return Err(CliError::Usage(format!(
                "invalid argument \"{l}\" for \"--label\" flag: invalid label '{l}': empty name"
            )));
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let opts: HashMap<String, String> = args
        .opt
        .iter()
        .map(|o| {
            let (k, v) = o.split_once('=').unwrap_or((o.as_str(), ""));
            (k.to_string(), v.to_string())
        })
        .collect();
    Ok(VolumeCreateRequest {
        name: Some(name),
        driver: Some(args.driver),
        driver_opts: Some(opts),
        labels: Some(labels),
        cluster_volume_spec: None,
    })
}

async fn create(client: &Client, args: CreateArgs) -> Result<(), CliError> {
    let req = create_request(args)?;
    let v = client
        .docker
        .create_volume(req)
        .await
        .map_err(|e| client.error(e))?;
    println!("{}", v.name);
    Ok(())
}

async fn inspect(client: &Client, args: &InspectArgs) -> Result<(), CliError> {
    let paths = args
        .names
        .iter()
        .map(|n| format!("/volumes/{}", path_escape(n)))
        .collect();
    super::inspect_paths(client, paths, args.format.as_deref()).await
}

async fn list(client: &Client, args: &LsArgs) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let opts = ListVolumesOptions {
        filters: (!filters.is_empty()).then_some(filters),
    };
    let resp = client
        .docker
        .list_volumes(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    print!(
        "{}",
        render_volumes(resp.volumes.unwrap_or_default(), args)?
    );
    Ok(())
}

/// The `volume ls` output for these volumes (no daemon needed; used by tests).
pub(crate) fn render_volumes(mut vols: Vec<Volume>, args: &LsArgs) -> Result<String, CliError> {
    vols.sort_by(|a, b| natural_cmp(&a.name, &b.name));
    let source = args.format.as_deref().unwrap_or("");
    let fmt = match source {
        "" | "table" if args.quiet => QUIET_FORMAT,
        "" | "table" => DEFAULT_VOLUME_TABLE,
        "json" => JSON_FORMAT,
        f => f,
    };
    let fmt = Format::new(fmt, DEFAULT_VOLUME_TABLE)?;
    let rows: Vec<Value> = vols.iter().map(volume_row).collect();
    Ok(fmt.render_rows(&volume_header(), &rows)?)
}

fn volume_header() -> Value {
    Value::str_obj([
        ("Availability", "AVAILABILITY".into()),
        ("Driver", "DRIVER".into()),
        ("Group", "GROUP".into()),
        ("Labels", "LABELS".into()),
        ("Links", "LINKS".into()),
        ("Mountpoint", "MOUNTPOINT".into()),
        ("Name", "VOLUME NAME".into()),
        ("Scope", "SCOPE".into()),
        ("Size", "SIZE".into()),
        ("Status", "STATUS".into()),
    ])
}

/// One volume as docker's volume formatter shows it (fields in `--format json` order).
fn volume_row(v: &Volume) -> Value {
    let mut labels: Vec<(&String, &String)> = v.labels.iter().collect();
    labels.sort();
    let labels_text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let (links, size) = match &v.usage_data {
        Some(u) => (
            u.ref_count.to_string(),
            if u.size < 0 {
                "N/A".to_string()
            } else {
                units::human_size(u.size as f64)
            },
        ),
        None => ("N/A".to_string(), "N/A".to_string()),
    };
    let mut row = match Value::str_obj([
        ("Availability", "N/A".to_string()),
        ("Driver", v.driver.clone()),
        ("Group", "N/A".to_string()),
        ("Labels", labels_text),
        ("Links", links),
        ("Mountpoint", v.mountpoint.clone()),
        ("Name", v.name.clone()),
        ("Scope", v.scope.map(|s| s.to_string()).unwrap_or_default()),
        ("Size", size),
        ("Status", "N/A".to_string()),
    ]) {
        Value::Obj(pairs) => pairs,
        _ => Vec::new(),
    };
    row.push((
        "Label()".to_string(),
        Value::Obj(
            labels
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        ),
    ));
    Value::Obj(row)
}

async fn remove(client: &Client, args: &RmArgs) -> Result<(), CliError> {
    let mut errs = Vec::new();
    for name in &args.names {
        let opts = RemoveVolumeOptions { force: args.force };
        match client.docker.remove_volume(name, Some(opts)).await {
            Ok(()) => println!("{name}"),
            Err(e) => errs.push(client.error(e).to_string()),
        }
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(CliError::Message(errs.join("\n")))
    }
}

async fn prune(client: &Client, args: &PruneArgs) -> Result<(), CliError> {
    let mut filters = parse_filters(&args.filter)?;
    if args.all {
        filters.insert("all".into(), vec!["true".into()]);
    }
    let r = client
        .docker
        .prune_volumes(Some(PruneVolumesOptions {
            filters: (!filters.is_empty()).then_some(filters),
        }))
        .await
        .map_err(|e| client.error(e))?;
    let deleted = r.volumes_deleted.unwrap_or_default();
    let mut reclaimed = 0u64;
    if !deleted.is_empty() {
        let mut out = String::from("Deleted Volumes:\n");
        for d in &deleted {
            out.push_str(d);
            out.push('\n');
        }
        println!("{out}");
        reclaimed = u64::try_from(r.space_reclaimed.unwrap_or(0)).unwrap_or(0);
    }
    println!(
        "Total reclaimed space: {}",
        units::human_size(reclaimed as f64)
    );
    Ok(())
}

/// Percent-escapes what may not appear raw in a path segment.
pub(crate) fn path_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `sortorder.NaturalLess`: digit runs compare as numbers, everything else bytewise.
pub(crate) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < a.len() && j < b.len() {
        if a[i].is_ascii_digit() && b[j].is_ascii_digit() {
            let si = i;
            while i < a.len() && a[i].is_ascii_digit() {
                i += 1;
            }
            let sj = j;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            let na = std::str::from_utf8(&a[si..i])
                .unwrap_or("")
                .trim_start_matches('0');
            let nb = std::str::from_utf8(&b[sj..j])
                .unwrap_or("")
                .trim_start_matches('0');
            let ord = na
                .len()
                .cmp(&nb.len())
                .then_with(|| na.cmp(nb))
                .then_with(|| (i - si).cmp(&(j - sj)));
            if ord != Ordering::Equal {
                return ord;
            }
        } else {
            if a[i] != b[j] {
                return a[i].cmp(&b[j]);
            }
            i += 1;
            j += 1;
        }
    }
    (a.len() - i).cmp(&(b.len() - j))
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::VolumeUsageData;

    fn vol(name: &str, labels: &[(&str, &str)]) -> Volume {
        Volume {
            name: name.into(),
            driver: "local".into(),
            mountpoint: format!("/var/lib/berth/volumes/{name}/_data"),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            scope: Some(api_types::models::VolumeScopeEnum::LOCAL),
            ..Default::default()
        }
    }

    fn ls(format: Option<&str>, quiet: bool) -> LsArgs {
        LsArgs {
            filter: Vec::new(),
            format: format.map(String::from),
            quiet,
        }
    }

    #[test]
    fn default_table_sorted_naturally() {
        let vols = vec![vol("v10", &[]), vol("v2", &[]), vol("abc", &[])];
        let out = render_volumes(vols, &ls(None, false)).unwrap();
        assert_eq!(
            out,
            "DRIVER    VOLUME NAME\nlocal     abc\nlocal     v2\nlocal     v10\n"
        );
        let out = render_volumes(vec![vol("b1", &[]), vol("a1", &[])], &ls(None, true)).unwrap();
        assert_eq!(out, "a1\nb1\n");
    }

    #[test]
    fn formats_like_docker() {
        let mut v = vol("lab1", &[("y", "2"), ("x", "1")]);
        let out = render_volumes(
            vec![v.clone()],
            &ls(
                Some("{{.Name}}|{{.Labels}}|{{.Links}}|{{.Size}}|{{.Scope}}|{{.Label \"x\"}}"),
                false,
            ),
        )
        .unwrap();
        assert_eq!(out, "lab1|x=1,y=2|N/A|N/A|local|1\n");
        let out = render_volumes(vec![v.clone()], &ls(Some("json"), false)).unwrap();
        assert_eq!(
            out,
            "{\"Availability\":\"N/A\",\"Driver\":\"local\",\"Group\":\"N/A\",\"Labels\":\"x=1,y=2\",\"Links\":\"N/A\",\"Mountpoint\":\"/var/lib/berth/volumes/lab1/_data\",\"Name\":\"lab1\",\"Scope\":\"local\",\"Size\":\"N/A\",\"Status\":\"N/A\"}\n"
        );
        v.usage_data = Some(VolumeUsageData {
            size: 2048,
            ref_count: 3,
        });
        let out = render_volumes(
            vec![v],
            &ls(Some("table {{.Name}}\t{{.Links}}\t{{.Size}}"), true),
        )
        .unwrap();
        assert_eq!(
            out,
            "VOLUME NAME   LINKS     SIZE\nlab1          3         2.048kB\n"
        );
    }

    #[test]
    fn create_flags_become_the_request() {
        let args = CreateArgs {
            driver: "local".into(),
            label: vec!["a=b".into(), "flag".into()],
            opt: vec!["type=tmpfs".into(), "o=size=1m,uid=0".into()],
            name: None,
            volume: Some("v1".into()),
        };
        let req = create_request(args).unwrap();
        assert_eq!(req.name.as_deref(), Some("v1"));
        let labels = req.labels.unwrap();
        assert_eq!(labels["a"], "b");
        assert_eq!(labels["flag"], "");
        assert_eq!(req.driver_opts.unwrap()["o"], "size=1m,uid=0");
        let args = CreateArgs {
            driver: "local".into(),
            label: Vec::new(),
            opt: Vec::new(),
            name: Some("x".into()),
            volume: Some("y".into()),
        };
        assert!(create_request(args).is_err());
    }

    #[test]
    fn natural_order() {
        use std::cmp::Ordering::*;
        assert_eq!(natural_cmp("v2", "v10"), Less);
        assert_eq!(natural_cmp("a", "b"), Less);
        assert_eq!(natural_cmp("v1", "v1"), Equal);
        assert_eq!(natural_cmp("v1", "v1a"), Less);
        assert_eq!(natural_cmp("x01", "x1"), Greater);
    }

    #[test]
    fn escapes_path_segments() {
        assert_eq!(path_escape("my_vol-1.x"), "my_vol-1.x");
        assert_eq!(path_escape("a/b c"), "a%2Fb%20c");
    }
}
