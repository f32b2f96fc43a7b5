//! `ps` / `container ls`: docker's container formatter.

use api_types::models::{ContainerSummary, PortSummary};
use bollard::query_parameters::ListContainersOptions;

use super::container::PsArgs;
use super::images::{familiar_name, split_reference};
use super::parse_filters;
use crate::client::{CliError, Client};
use crate::format::{self, Format, Value, units};

const DEFAULT_PS_TABLE: &str =
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}";

fn ps_format(source: &str, quiet: bool, size: bool) -> String {
    match source {
        _ if quiet => "{{.ID}}".to_string(),
        "" | "table" if size => format!("{DEFAULT_PS_TABLE}\t{{{{.Size}}}}"),
        "" | "table" => DEFAULT_PS_TABLE.to_string(),
        "json" => "{{json .}}".to_string(),
        f => f.to_string(),
    }
}

pub(crate) fn ps_header() -> Value {
    Value::str_obj([
        ("Command", "COMMAND".into()),
        ("CreatedAt", "CREATED AT".into()),
        ("ID", "CONTAINER ID".into()),
        ("Image", "IMAGE".into()),
        ("Labels", "LABELS".into()),
        ("LocalVolumes", "LOCAL VOLUMES".into()),
        ("Mounts", "MOUNTS".into()),
        ("Names", "NAMES".into()),
        ("Networks", "NETWORKS".into()),
        ("Ports", "PORTS".into()),
        ("RunningFor", "CREATED".into()),
        ("Size", "SIZE".into()),
        ("State", "STATE".into()),
        ("Status", "STATUS".into()),
    ])
}

/// Go's `strconv.Quote`.
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The COMMAND column: cut to 20 characters (`…`) unless `--no-trunc`, then quoted.
pub(crate) fn display_command(command: &str, trunc: bool) -> String {
    if trunc {
        go_quote(&format::ellipsis(command, 20))
    } else {
        go_quote(command)
    }
}

/// The IMAGE column, as docker's `ContainerContext.Image`.
fn display_image(image: &str, image_id: &str, trunc: bool) -> String {
    if image.is_empty() {
        return "<no image>".into();
    }
    if !trunc {
        return image.to_string();
    }
    let tid = format::truncate_id(image_id);
    if !tid.is_empty() && tid == format::truncate_id(image) {
        return tid;
    }
    // Drop a digest; keep the tag.
    let (name, tag, _) = split_reference(image);
    let name = familiar_name(&name);
    match tag {
        Some(t) => format!("{name}:{t}"),
        None => name,
    }
}

fn display_names(names: &[String], trunc: bool) -> String {
    let names: Vec<&str> = names
        .iter()
        .map(|n| n.strip_prefix('/').unwrap_or(n))
        .collect();
    if trunc && let Some(n) = names.iter().find(|n| !n.contains('/')) {
        return n.to_string();
    }
    names.join(",")
}

fn join_host_port(ip: &str, port: u16) -> String {
    if ip.contains(':') {
        format!("[{ip}]:{port}")
    } else {
        format!("{ip}:{port}")
    }
}

/// docker's `DisplayablePorts`: ranges grouped, host mappings last.
pub(crate) fn display_ports(ports: &[PortSummary]) -> String {
    let mut ports = ports.to_vec();
    let typ = |p: &PortSummary| p.typ.map(|t| t.to_string()).unwrap_or_default();
    ports.sort_by(|a, b| {
        a.private_port
            .cmp(&b.private_port)
            .then_with(|| {
                a.ip.clone()
                    .unwrap_or_default()
                    .cmp(&b.ip.clone().unwrap_or_default())
            })
            .then_with(|| a.public_port.unwrap_or(0).cmp(&b.public_port.unwrap_or(0)))
            .then_with(|| typ(a).cmp(&typ(b)))
    });
    let form = |key: &str, first: u16, last: u16| -> String {
        let (ip, t) = match key.rsplit_once('/') {
            Some((ip, t)) => (ip, t),
            None => ("", key),
        };
        let mut g = first.to_string();
        if first != last {
            g = format!("{g}-{last}");
        }
        if !ip.is_empty() {
            g = format!("{ip}:{g}->{g}");
        }
        format!("{g}/{t}")
    };
    let mut groups: Vec<(String, u16, u16)> = Vec::new();
    let mut result = Vec::new();
    let mut host_mappings = Vec::new();
    for p in &ports {
        let current = p.private_port;
        let t = typ(p);
        let ip = p.ip.clone().unwrap_or_default();
        let mut key = t.clone();
        if !ip.is_empty() {
            let public = p.public_port.unwrap_or(0);
            if public != current {
                host_mappings.push(format!(
                    "{}->{}/{}",
                    join_host_port(&ip, public),
                    current,
                    t
                ));
                continue;
            }
            key = format!("{ip}/{t}");
        }
        match groups.iter_mut().find(|(k, _, _)| *k == key) {
            None => groups.push((key, current, current)),
            Some(g) if current == g.2.wrapping_add(1) => g.2 = current,
            Some(g) => {
                result.push(form(&g.0, g.1, g.2));
                g.1 = current;
                g.2 = current;
            }
        }
    }
    for (k, a, b) in &groups {
        result.push(form(k, *a, *b));
    }
    result.extend(host_mappings);
    result.join(", ")
}

/// The row object docker's container formatter exposes to templates.
pub(crate) fn container_row(c: &ContainerSummary, trunc: bool) -> Value {
    let id = c.id.clone().unwrap_or_default();
    let id = if trunc { format::truncate_id(&id) } else { id };
    let created = c.created.unwrap_or(0);
    let mut labels: Vec<(String, String)> =
        c.labels.clone().unwrap_or_default().into_iter().collect();
    labels.sort();
    let labels_text = labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",");
    let mounts = c.mounts.clone().unwrap_or_default();
    let mount_names = mounts
        .iter()
        .map(|m| {
            let name = m
                .name
                .clone()
                .filter(|n| !n.is_empty())
                .or_else(|| m.source.clone())
                .unwrap_or_default();
            if trunc {
                format::ellipsis(&name, 15)
            } else {
                name
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let local_volumes = mounts
        .iter()
        .filter(|m| m.driver.as_deref() == Some("local"))
        .count();
    let mut networks: Vec<String> = c
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.as_ref())
        .map(|n| n.keys().cloned().collect())
        .unwrap_or_default();
    networks.sort();
    let size_rw = c.size_rw.unwrap_or(0);
    let size_root = c.size_root_fs.unwrap_or(0);
    let mut size = units::human_size_with_precision(size_rw as f64, 3);
    if size_root > 0 {
        size = format!(
            "{size} (virtual {})",
            units::human_size_with_precision(size_root as f64, 3)
        );
    }
    let mut row = match Value::str_obj([
        (
            "Command",
            display_command(c.command.as_deref().unwrap_or(""), trunc),
        ),
        ("CreatedAt", units::go_time_string(created)),
        ("ID", id),
        (
            "Image",
            display_image(
                c.image.as_deref().unwrap_or(""),
                c.image_id.as_deref().unwrap_or(""),
                trunc,
            ),
        ),
        ("Labels", labels_text),
        ("LocalVolumes", local_volumes.to_string()),
        ("Mounts", mount_names),
        (
            "Names",
            display_names(&c.names.clone().unwrap_or_default(), trunc),
        ),
        ("Networks", networks.join(",")),
        ("Ports", display_ports(&c.ports.clone().unwrap_or_default())),
        ("RunningFor", units::since_unix(created)),
        ("Size", size),
        ("State", c.state.map(|s| s.to_string()).unwrap_or_default()),
        ("Status", c.status.clone().unwrap_or_default()),
    ]) {
        Value::Obj(pairs) => pairs,
        _ => Vec::new(),
    };
    row.push((
        "Label()".to_string(),
        Value::Obj(
            labels
                .into_iter()
                .map(|(k, v)| (k, Value::Str(v)))
                .collect(),
        ),
    ));
    Value::Obj(row)
}

/// Renders the container list (no daemon needed; used by tests).
pub(crate) fn render_ps(list: &[ContainerSummary], args: &PsArgs) -> Result<String, CliError> {
    let fmt = ps_format(args.format.as_deref().unwrap_or(""), args.quiet, args.size);
    let fmt = Format::new(&fmt, DEFAULT_PS_TABLE)?;
    let rows: Vec<Value> = list
        .iter()
        .map(|c| container_row(c, !args.no_trunc))
        .collect();
    Ok(fmt.render_rows(&ps_header(), &rows)?)
}

/// `berth ps`.
pub(crate) async fn ps(client: &Client, args: &PsArgs) -> Result<(), CliError> {
    let filters = parse_filters(&args.filter)?;
    let mut last = args.last;
    if args.latest && last == -1 {
        last = 1;
    }
    let size = args.size || args.format.as_deref().is_some_and(|f| f.contains(".Size"));
    let opts = ListContainersOptions {
        all: args.all || last > 0,
        limit: (last > 0).then_some(last as i32),
        size,
        filters: (!filters.is_empty()).then_some(filters),
    };
    let list = client
        .docker
        .list_containers(Some(opts))
        .await
        .map_err(|e| client.error(e))?;
    print!("{}", render_ps(&list, args)?);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use api_types::models::{ContainerSummaryStateEnum, PortSummaryTypeEnum};
    use std::collections::HashMap;

    fn args() -> PsArgs {
        PsArgs {
            all: false,
            filter: vec![],
            format: None,
            last: -1,
            latest: false,
            no_trunc: false,
            quiet: false,
            size: false,
        }
    }

    fn summary() -> ContainerSummary {
        ContainerSummary {
            id: Some("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef".into()),
            names: Some(vec!["/s1".into()]),
            image: Some("busybox".into()),
            image_id: Some("sha256:fedcba9876543210".into()),
            command: Some("sh -c 'sleep 100'".into()),
            created: Some(chrono::Utc::now().timestamp() - 120),
            ports: Some(vec![]),
            labels: Some(HashMap::from([
                ("com.example.a".to_string(), "1".to_string()),
                ("b".to_string(), "2".to_string()),
            ])),
            state: Some(ContainerSummaryStateEnum::RUNNING),
            status: Some("Up 2 minutes".into()),
            ..Default::default()
        }
    }

    #[test]
    fn command_truncation() {
        assert_eq!(
            display_command("sh -c 'sleep 100'", true),
            "\"sh -c 'sleep 100'\""
        );
        assert_eq!(
            display_command("/bin/sh -c 'while true; do echo hi; done'", true),
            "\"/bin/sh -c 'while t…\""
        );
        assert_eq!(display_command("echo \"hi\"", true), "\"echo \\\"hi\\\"\"");
        assert_eq!(display_command("", true), "\"\"");
    }

    #[test]
    fn ps_table() {
        let out = render_ps(&[summary()], &args()).unwrap();
        assert_eq!(
            out,
            "CONTAINER ID   IMAGE     COMMAND               CREATED         STATUS         PORTS     NAMES\n\
             0123456789ab   busybox   \"sh -c 'sleep 100'\"   2 minutes ago   Up 2 minutes             s1\n"
        );
        let mut a = args();
        a.quiet = true;
        assert_eq!(render_ps(&[summary()], &a).unwrap(), "0123456789ab\n");
    }

    #[test]
    fn ps_templates() {
        let mut a = args();
        a.format = Some(
            "{{.Names}} {{.State}} {{.Label \"com.example.a\"}} {{.Label \"nope\"}}|{{.Labels}}"
                .into(),
        );
        assert_eq!(
            render_ps(&[summary()], &a).unwrap(),
            "s1 running 1 |b=2,com.example.a=1\n"
        );
        a.format = Some("table {{.ID}}\\t{{.Label \"com.example.a\"}}".into());
        assert_eq!(
            render_ps(&[summary()], &a).unwrap(),
            "CONTAINER ID   a\n0123456789ab   1\n"
        );
        a.format = Some("json".into());
        let out = render_ps(&[summary()], &a).unwrap();
        let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
        assert_eq!(v["Names"], "s1");
        assert_eq!(v["Size"], "0B");
        assert_eq!(v["Command"], "\"sh -c 'sleep 100'\"");
        assert!(v.get("Label()").is_none());
        assert_eq!(v.as_object().unwrap().len(), 14);
    }

    #[test]
    fn ports_display() {
        let p = |ip: Option<&str>, private: u16, public: Option<u16>| PortSummary {
            ip: ip.map(str::to_string),
            private_port: private,
            public_port: public,
            typ: Some(PortSummaryTypeEnum::TCP),
        };
        let ports = vec![
            p(Some("0.0.0.0"), 80, Some(8080)),
            p(Some("::"), 80, Some(8080)),
            p(None, 7000, None),
            p(None, 7001, None),
            p(None, 9000, None),
            p(Some("0.0.0.0"), 5000, Some(5000)),
        ];
        assert_eq!(
            display_ports(&ports),
            "7000-7001/tcp, 0.0.0.0:5000->5000/tcp, 9000/tcp, 0.0.0.0:8080->80/tcp, [::]:8080->80/tcp"
        );
    }

    #[test]
    fn image_column() {
        assert_eq!(display_image("busybox", "sha256:abc", true), "busybox");
        assert_eq!(
            display_image(
                "docker.io/library/busybox:1.36@sha256:aa",
                "sha256:abc",
                true
            ),
            "busybox:1.36"
        );
        assert_eq!(
            display_image("sha256:fedcba9876543210", "sha256:fedcba9876543210", true),
            "fedcba987654"
        );
        assert_eq!(display_image("", "", true), "<no image>");
    }
}
