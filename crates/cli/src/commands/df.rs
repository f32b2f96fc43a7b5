//! `system df [-v] [--format]`: docker's disk usage formatter (`formatter/disk_usage.go`).
//!
//! The summary has one row per type (Images, Containers, Local Volumes, Build Cache) with
//! TOTAL, ACTIVE, SIZE and RECLAIMABLE (with its percentage when the total is not zero);
//! `-v` lists the images (first tag only), containers (without the virtual size), volumes
//! and build cache records instead.

use api_types::models::{ContainerSummary, ImageSummary};
use clap::Args;
use serde::Deserialize;

use super::images::{familiar_name, image_header, image_row, is_dangling, split_reference};
use super::ps::{container_row, ps_header};
use crate::client::{CliError, Client};
use crate::format::{Format, Value, units};

const SUMMARY_TABLE: &str =
    "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}";
const IMAGE_TABLE: &str = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}";
const CONTAINER_TABLE: &str = "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.LocalVolumes}}\t{{.Size}}\t{{.RunningFor}}\t{{.Status}}\t{{.Names}}";
const VOLUME_TABLE: &str = "table {{.Name}}\t{{.Links}}\t{{.Size}}";
const BUILD_CACHE_TABLE: &str = "table {{.ID}}\t{{.CacheType}}\t{{.Size}}\t{{.CreatedSince}}\t{{.LastUsedSince}}\t{{.UsageCount}}\t{{.Shared}}";

#[derive(Debug, Args)]
pub(crate) struct DfArgs {
    /// Format output using a custom template:
    /// 'table':            Print output in table format with column headers (default)
    /// 'table TEMPLATE':   Print output in table format using the given Go template
    /// 'json':             Print in JSON format
    /// 'TEMPLATE':         Print output using the given Go template.
    #[arg(long, value_name = "string")]
    pub(crate) format: Option<String>,
    /// Show detailed information on space usage
    #[arg(short = 'v', long)]
    pub(crate) verbose: bool,
}

/// `GET /system/df` in the 1.47 shape.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub(crate) struct DiskUsage {
    pub(crate) layers_size: i64,
    pub(crate) images: Option<Vec<ImageSummary>>,
    pub(crate) containers: Option<Vec<ContainerSummary>>,
    pub(crate) volumes: Option<Vec<serde_json::Value>>,
    pub(crate) build_cache: Option<Vec<serde_json::Value>>,
}

fn num(v: &serde_json::Value, path: &[&str]) -> i64 {
    let mut cur = v;
    for p in path {
        cur = &cur[*p];
    }
    cur.as_i64().unwrap_or(0)
}

fn flag(v: &serde_json::Value, key: &str) -> bool {
    v[key].as_bool().unwrap_or(false)
}

/// `N (P%)` when there is a total, else just the size.
fn reclaimable(reclaimable: i64, total: i64) -> String {
    if total > 0 {
        format!(
            "{} ({}%)",
            units::human_size(reclaimable as f64),
            reclaimable * 100 / total
        )
    } else {
        units::human_size(reclaimable as f64)
    }
}

fn is_active(c: &ContainerSummary) -> bool {
    let s = c.state.map(|s| s.to_string()).unwrap_or_default();
    s.contains("running") || s.contains("paused") || s.contains("restarting")
}

fn summary_row(kind: &str, total: usize, active: usize, size: String, recl: String) -> Value {
    Value::str_obj([
        ("Active", active.to_string()),
        ("Reclaimable", recl),
        ("Size", size),
        ("TotalCount", total.to_string()),
        ("Type", kind.to_string()),
    ])
}

/// The four summary rows.
fn summary_rows(du: &DiskUsage) -> Vec<Value> {
    let images = du.images.as_deref().unwrap_or_default();
    let used: i64 = images
        .iter()
        .filter(|i| i.containers != 0 && i.size != -1 && i.shared_size != -1)
        .map(|i| i.size - i.shared_size)
        .sum();
    let total = du.layers_size;
    let image_row = summary_row(
        "Images",
        images.len(),
        images.iter().filter(|i| i.containers > 0).count(),
        units::human_size(total as f64),
        reclaimable(total - used, total),
    );

    let ctrs = du.containers.as_deref().unwrap_or_default();
    let rw = |c: &ContainerSummary| c.size_rw.unwrap_or(0);
    let ctr_total: i64 = ctrs.iter().map(rw).sum();
    let ctr_recl: i64 = ctrs.iter().filter(|c| !is_active(c)).map(rw).sum();
    let ctr_row = summary_row(
        "Containers",
        ctrs.len(),
        ctrs.iter().filter(|c| is_active(c)).count(),
        units::human_size(ctr_total as f64),
        reclaimable(ctr_recl, ctr_total),
    );

    let vols = du.volumes.as_deref().unwrap_or_default();
    let sized = || vols.iter().filter(|v| num(v, &["UsageData", "Size"]) != -1);
    let vol_total: i64 = sized().map(|v| num(v, &["UsageData", "Size"])).sum();
    let vol_recl: i64 = sized()
        .filter(|v| num(v, &["UsageData", "RefCount"]) == 0)
        .map(|v| num(v, &["UsageData", "Size"]))
        .sum();
    let vol_row = summary_row(
        "Local Volumes",
        vols.len(),
        vols.iter()
            .filter(|v| num(v, &["UsageData", "RefCount"]) > 0)
            .count(),
        units::human_size(vol_total as f64),
        reclaimable(vol_recl, vol_total),
    );

    let cache = du.build_cache.as_deref().unwrap_or_default();
    let unshared: i64 = cache
        .iter()
        .filter(|b| !flag(b, "Shared"))
        .map(|b| num(b, &["Size"]))
        .sum();
    let in_use: i64 = cache
        .iter()
        .filter(|b| flag(b, "InUse") && !flag(b, "Shared"))
        .map(|b| num(b, &["Size"]))
        .sum();
    let cache_row = summary_row(
        "Build Cache",
        cache.len(),
        cache.iter().filter(|b| flag(b, "InUse")).count(),
        units::human_size(unshared as f64),
        units::human_size((unshared - in_use) as f64),
    );
    vec![image_row, ctr_row, vol_row, cache_row]
}

fn summary_header() -> Value {
    Value::str_obj([
        ("Active", "ACTIVE".into()),
        ("Reclaimable", "RECLAIMABLE".into()),
        ("Size", "SIZE".into()),
        ("TotalCount", "TOTAL".into()),
        ("Type", "TYPE".into()),
    ])
}

fn table(format: &str, header: &Value, rows: &[Value]) -> Result<String, CliError> {
    Ok(Format::new(format, format)?.render_rows(header, rows)?)
}

fn verbose(du: &DiskUsage) -> Result<String, CliError> {
    let mut out = String::from("Images space usage:\n\n");
    let rows: Vec<Value> = du
        .images
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|i| {
            let (mut repo, mut tag) = ("<none>".to_string(), "<none>".to_string());
            if let Some(first) = i.repo_tags.first()
                && !is_dangling(i)
                && let (name, Some(t), _) = split_reference(first)
            {
                repo = familiar_name(&name);
                tag = t;
            }
            image_row(i, &repo, &tag, "", true)
        })
        .collect();
    out.push_str(&table(IMAGE_TABLE, &image_header(), &rows)?);

    out.push_str("\nContainers space usage:\n\n");
    let rows: Vec<Value> = du
        .containers
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|c| {
            let mut c = c.clone();
            c.size_root_fs = Some(0);
            container_row(&c, true)
        })
        .collect();
    out.push_str(&table(CONTAINER_TABLE, &ps_header(), &rows)?);

    out.push_str("\nLocal Volumes space usage:\n\n");
    let rows: Vec<Value> = du
        .volumes
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|v| {
            let size = num(v, &["UsageData", "Size"]);
            Value::str_obj([
                ("Links", num(v, &["UsageData", "RefCount"]).to_string()),
                ("Name", v["Name"].as_str().unwrap_or_default().to_string()),
                (
                    "Size",
                    if size == -1 {
                        "N/A".to_string()
                    } else {
                        units::human_size(size as f64)
                    },
                ),
            ])
        })
        .collect();
    let vol_header = Value::str_obj([
        ("Links", "LINKS".into()),
        ("Name", "VOLUME NAME".into()),
        ("Size", "SIZE".into()),
    ]);
    out.push_str(&table(VOLUME_TABLE, &vol_header, &rows)?);

    let cache = du.build_cache.as_deref().unwrap_or_default();
    let unshared: i64 = cache
        .iter()
        .filter(|b| !flag(b, "Shared"))
        .map(|b| num(b, &["Size"]))
        .sum();
    out.push_str(&format!(
        "\nBuild cache usage: {}\n\n",
        units::human_size(unshared as f64)
    ));
    let rows: Vec<Value> = cache
        .iter()
        .map(|b| {
            Value::str_obj([
                (
                    "CacheType",
                    b["Type"].as_str().unwrap_or_default().to_string(),
                ),
                (
                    "ID",
                    b["ID"]
                        .as_str()
                        .unwrap_or_default()
                        .chars()
                        .take(12)
                        .collect(),
                ),
                ("Shared", flag(b, "Shared").to_string()),
                ("Size", units::human_size(num(b, &["Size"]) as f64)),
                ("UsageCount", num(b, &["UsageCount"]).to_string()),
                ("CreatedSince", String::new()),
                ("LastUsedSince", String::new()),
            ])
        })
        .collect();
    let cache_header = Value::str_obj([
        ("CacheType", "CACHE TYPE".into()),
        ("CreatedSince", "CREATED".into()),
        ("ID", "CACHE ID".into()),
        ("LastUsedSince", "LAST USED".into()),
        ("Shared", "SHARED".into()),
        ("Size", "SIZE".into()),
        ("UsageCount", "USAGE".into()),
    ]);
    out.push_str(&table(BUILD_CACHE_TABLE, &cache_header, &rows)?);
    Ok(out)
}

/// Renders `system df` (no daemon needed; used by tests).
pub(crate) fn render_df(du: &DiskUsage, args: &DfArgs) -> Result<String, CliError> {
    if args.verbose && args.format.as_deref().is_none_or(str::is_empty) {
        return verbose(du);
    }
    let format = match args.format.as_deref() {
        None | Some("") | Some("table") => SUMMARY_TABLE,
        Some("json") => "{{json .}}",
        Some(f) => f,
    };
    table(format, &summary_header(), &summary_rows(du))
}

/// `berth system df`.
pub(crate) async fn df(client: &Client, args: &DfArgs) -> Result<(), CliError> {
    let du: DiskUsage = crate::raw::get_json(client, "/system/df").await?;
    print!("{}", render_df(&du, args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn du() -> DiskUsage {
        serde_json::from_value(serde_json::json!({
            "LayersSize": 4_261_550,
            "Images": [{
                "Id": "sha256:705e4e94ccc8b5e0f0c7a385c00e3a6841b0e50bff0770444945e8a14ea8c562",
                "ParentId": "", "RepoTags": ["busybox:latest"], "RepoDigests": [],
                "Created": 1_700_000_000, "Size": 4_261_550, "SharedSize": 0,
                "Labels": {}, "Containers": 1
            }],
            "Containers": [
                {"Id": "a".repeat(64), "Names": ["/x"], "Image": "busybox", "Command": "sh",
                 "Created": 1_700_000_000, "State": "exited", "Status": "Exited (0)",
                 "SizeRw": 1_048_578, "SizeRootFs": 5_310_128},
                {"Id": "b".repeat(64), "Names": ["/y"], "Image": "busybox", "Command": "sh",
                 "Created": 1_700_000_000, "State": "running", "Status": "Up",
                 "SizeRw": 2, "SizeRootFs": 4_261_552}
            ],
            "Volumes": [],
            "BuildCache": []
        }))
        .unwrap()
    }

    #[test]
    fn summary_like_docker() {
        let args = DfArgs {
            format: None,
            verbose: false,
        };
        let out = render_df(&du(), &args).unwrap();
        assert_eq!(
            out,
            "TYPE            TOTAL     ACTIVE    SIZE      RECLAIMABLE\n\
             Images          1         1         4.262MB   0B (0%)\n\
             Containers      2         1         1.049MB   1.049MB (99%)\n\
             Local Volumes   0         0         0B        0B\n\
             Build Cache     0         0         0B        0B\n"
        );
        let args = DfArgs {
            format: Some("{{.Type}}={{.Size}}".into()),
            verbose: false,
        };
        let out = render_df(&du(), &args).unwrap();
        assert!(
            out.starts_with("Images=4.262MB\nContainers=1.049MB\n"),
            "{out}"
        );
    }

    #[test]
    fn verbose_sections() {
        let args = DfArgs {
            format: None,
            verbose: true,
        };
        let out = render_df(&du(), &args).unwrap();
        assert!(
            out.starts_with("Images space usage:\n\nREPOSITORY   TAG       IMAGE ID"),
            "{out}"
        );
        assert!(out.contains("busybox      latest    705e4e94ccc8"), "{out}");
        assert!(
            out.contains("\nContainers space usage:\n\nCONTAINER ID"),
            "{out}"
        );
        // No virtual size in the verbose container list.
        assert!(out.contains("1.05MB"), "{out}");
        assert!(!out.contains("virtual"), "{out}");
        assert!(out.contains("\nLocal Volumes space usage:\n\nVOLUME NAME   LINKS     SIZE\n"));
        assert!(out.contains("\nBuild cache usage: 0B\n\nCACHE ID"), "{out}");
    }
}
