//! `version` and `info`.

use std::fmt::Write as _;

use bollard::API_DEFAULT_VERSION;

use super::FormatArgs;
use crate::client::{CliError, Client};
use crate::format::{self, Value, units};

/// Go's names for the platform we run on.
pub(crate) fn go_os_arch() -> (&'static str, &'static str) {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    (std::env::consts::OS, arch)
}

fn client_value(api_version: &str) -> Value {
    let (os, arch) = go_os_arch();
    Value::Obj(vec![
        ("Platform".into(), Value::str_obj([("Name", String::new())])),
        ("Version".into(), Value::Str(crate::VERSION.to_string())),
        ("ApiVersion".into(), Value::Str(api_version.to_string())),
        (
            "DefaultAPIVersion".into(),
            Value::Str(API_DEFAULT_VERSION.to_string()),
        ),
        ("GitCommit".into(), Value::Str(crate::BUILD.to_string())),
        ("GoVersion".into(), Value::Str(String::new())),
        ("Os".into(), Value::Str(os.to_string())),
        ("Arch".into(), Value::Str(arch.to_string())),
        ("BuildTime".into(), Value::Str(String::new())),
        ("Context".into(), Value::Str("default".to_string())),
    ])
}

fn s(v: &Value, key: &str) -> String {
    match v.field(key) {
        Value::Missing | Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn client_text(api_version: &str) -> String {
    let (os, arch) = go_os_arch();
    let default = API_DEFAULT_VERSION.to_string();
    let mut out = String::from("Client:\n");
    let _ = writeln!(out, " Version:\t{}", crate::VERSION);
    let downgraded = if api_version != default {
        format!(" (downgraded from {default})")
    } else {
        String::new()
    };
    let _ = writeln!(out, " API version:\t{api_version}{downgraded}");
    let _ = writeln!(out, " Git commit:\t{}", crate::BUILD);
    let _ = writeln!(out, " OS/Arch:\t{os}/{arch}");
    let _ = write!(out, " Context:\tdefault");
    out
}

fn server_text(server: &Value) -> String {
    let mut out = String::from("\n\nServer:");
    let platform = s(&server.field("Platform"), "Name");
    if !platform.is_empty() {
        let _ = write!(out, " {platform}");
    }
    let components = match server.field("Components") {
        Value::Arr(a) if !a.is_empty() => a,
        _ => {
            // Build an Engine component from the top-level fields, as docker does.
            let mut details = Vec::new();
            for k in [
                "ApiVersion",
                "MinAPIVersion",
                "GitCommit",
                "GoVersion",
                "Os",
                "Arch",
                "BuildTime",
                "Experimental",
                "KernelVersion",
            ] {
                details.push((k.to_string(), Value::Str(s(server, k))));
            }
            vec![Value::Obj(vec![
                ("Name".into(), Value::Str("Engine".into())),
                ("Version".into(), Value::Str(s(server, "Version"))),
                ("Details".into(), Value::Obj(details)),
            ])]
        }
    };
    for c in &components {
        let name = s(c, "Name");
        let details = c.field("Details");
        let d = |k: &str| s(&details, k);
        let _ = write!(out, "\n {name}:");
        if name == "Engine" {
            let _ = write!(out, "\n  Version:\t{}", s(c, "Version"));
            let _ = write!(
                out,
                "\n  API version:\t{} (minimum version {})",
                d("ApiVersion"),
                d("MinAPIVersion")
            );
            let _ = write!(out, "\n  Go version:\t{}", d("GoVersion"));
            let _ = write!(out, "\n  Git commit:\t{}", d("GitCommit"));
            let _ = write!(out, "\n  Built:\t{}", d("BuildTime"));
            let _ = write!(out, "\n  OS/Arch:\t{}/{}", d("Os"), d("Arch"));
            let _ = write!(out, "\n  Experimental:\t{}", d("Experimental"));
        } else {
            let _ = write!(out, "\n  Version:\t{}", s(c, "Version"));
            if let Value::Obj(pairs) = &details {
                let mut keys: Vec<&String> = pairs.iter().map(|(k, _)| k).collect();
                keys.sort();
                for k in keys {
                    let _ = write!(out, "\n  {k}:\t{}", d(k));
                }
            }
        }
    }
    out
}

/// `berth version`.
pub(crate) async fn version(host: &str, args: &FormatArgs) -> Result<(), CliError> {
    let connected = Client::connect(host).await;
    let (api_version, server, error) = match connected {
        Ok(client) => {
            let api = client.docker.client_version().to_string();
            match client.docker.version().await {
                Ok(v) => (api, Some(Value::from_serialize(&v)?), None),
                Err(e) => (api, None, Some(client.error(e))),
            }
        }
        Err(e) => (API_DEFAULT_VERSION.to_string(), None, Some(e)),
    };
    match args.format.as_deref() {
        Some(f) if !f.is_empty() => {
            let f = if f == "json" { "{{json .}}" } else { f };
            let data = Value::Obj(vec![
                ("Client".into(), client_value(&api_version)),
                ("Server".into(), server.clone().unwrap_or(Value::Null)),
            ]);
            print!("{}", format::render_once(f, &data)?);
        }
        _ => {
            let mut text = client_text(&api_version);
            if let Some(server) = &server {
                text.push_str(&server_text(server));
            }
            text.push('\n');
            print!("{}", format::tabwrite_with(&text, 20, 1));
        }
    }
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Go's `fmt.Sprint` of a JSON-ish value for info lines (numbers, bools, strings).
fn scalar(v: &Value) -> String {
    match v {
        Value::Missing | Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::Arr(a) => a.iter().map(|x| x.to_string()).collect(),
        _ => Vec::new(),
    }
}

fn num(v: &Value) -> i64 {
    match v {
        Value::Num(n) => n.as_i64().unwrap_or(0),
        _ => 0,
    }
}

fn bool_text(v: &Value) -> &'static str {
    if matches!(v, Value::Bool(true)) {
        "true"
    } else {
        "false"
    }
}

/// The server part of `docker info` (prettyPrintServerInfo).
pub(crate) fn info_server_text(info: &Value, client_debug: bool) -> String {
    let f = |k: &str| info.field(k);
    let mut o = String::new();
    let line = |o: &mut String, label: &str, v: String| {
        let _ = writeln!(o, "{label} {v}");
    };
    let non_empty = |o: &mut String, label: &str, v: String| {
        if !v.is_empty() {
            let _ = writeln!(o, "{label} {v}");
        }
    };
    line(&mut o, " Containers:", num(&f("Containers")).to_string());
    line(
        &mut o,
        "  Running:",
        num(&f("ContainersRunning")).to_string(),
    );
    line(&mut o, "  Paused:", num(&f("ContainersPaused")).to_string());
    line(
        &mut o,
        "  Stopped:",
        num(&f("ContainersStopped")).to_string(),
    );
    line(&mut o, " Images:", num(&f("Images")).to_string());
    non_empty(&mut o, " Server Version:", scalar(&f("ServerVersion")));
    non_empty(&mut o, " Storage Driver:", scalar(&f("Driver")));
    if let Value::Arr(pairs) = f("DriverStatus") {
        for p in pairs {
            let kv = strings(&p);
            if kv.len() >= 2 {
                let _ = writeln!(o, "  {}: {}", kv[0], kv[1]);
            }
        }
    }
    non_empty(&mut o, " Logging Driver:", scalar(&f("LoggingDriver")));
    non_empty(&mut o, " Cgroup Driver:", scalar(&f("CgroupDriver")));
    non_empty(&mut o, " Cgroup Version:", scalar(&f("CgroupVersion")));
    let plugins = f("Plugins");
    let _ = writeln!(o, " Plugins:");
    line(
        &mut o,
        "  Volume:",
        strings(&plugins.field("Volume")).join(" "),
    );
    line(
        &mut o,
        "  Network:",
        strings(&plugins.field("Network")).join(" "),
    );
    let authz = strings(&plugins.field("Authorization"));
    if !authz.is_empty() {
        line(&mut o, "  Authorization:", authz.join(" "));
    }
    line(&mut o, "  Log:", strings(&plugins.field("Log")).join(" "));
    line(
        &mut o,
        " Swarm:",
        scalar(&f("Swarm").field("LocalNodeState")),
    );
    if let Value::Obj(runtimes) = f("Runtimes")
        && !runtimes.is_empty()
    {
        let mut names: Vec<&str> = runtimes.iter().map(|(k, _)| k.as_str()).collect();
        names.sort();
        line(&mut o, " Runtimes:", names.join(" "));
        line(&mut o, " Default Runtime:", scalar(&f("DefaultRuntime")));
    }
    if scalar(&f("OSType")) == "linux" {
        line(&mut o, " Init Binary:", scalar(&f("InitBinary")));
        for (name, key) in [
            ("containerd", "ContainerdCommit"),
            ("runc", "RuncCommit"),
            ("init", "InitCommit"),
        ] {
            let _ = writeln!(o, " {name} version: {}", scalar(&f(key).field("ID")));
        }
        let opts = strings(&f("SecurityOptions"));
        if !opts.is_empty() {
            let _ = writeln!(o, " Security Options:");
            for so in opts {
                // `name=seccomp,profile=builtin`
                let mut name = String::new();
                let mut profile = None;
                for kv in so.split(',') {
                    match kv.split_once('=') {
                        Some(("name", v)) => name = v.to_string(),
                        Some(("profile", v)) => profile = Some(v.to_string()),
                        Some(_) => {}
                        None => name = kv.to_string(),
                    }
                }
                let _ = writeln!(o, "  {name}");
                if let Some(p) = profile {
                    let _ = writeln!(o, "   Profile: {p}");
                }
            }
        }
    }
    non_empty(&mut o, " Kernel Version:", scalar(&f("KernelVersion")));
    non_empty(&mut o, " Operating System:", scalar(&f("OperatingSystem")));
    non_empty(&mut o, " OSType:", scalar(&f("OSType")));
    non_empty(&mut o, " Architecture:", scalar(&f("Architecture")));
    line(&mut o, " CPUs:", num(&f("NCPU")).to_string());
    line(
        &mut o,
        " Total Memory:",
        units::bytes_size(num(&f("MemTotal")) as f64),
    );
    non_empty(&mut o, " Name:", scalar(&f("Name")));
    non_empty(&mut o, " ID:", scalar(&f("ID")));
    line(&mut o, " Docker Root Dir:", scalar(&f("DockerRootDir")));
    line(&mut o, " Debug Mode:", bool_text(&f("Debug")).to_string());
    if matches!(f("Debug"), Value::Bool(true)) || client_debug {
        line(&mut o, "  File Descriptors:", num(&f("NFd")).to_string());
        line(&mut o, "  Goroutines:", num(&f("NGoroutines")).to_string());
        line(&mut o, "  System Time:", scalar(&f("SystemTime")));
        line(
            &mut o,
            "  EventsListeners:",
            num(&f("NEventsListener")).to_string(),
        );
    }
    non_empty(&mut o, " HTTP Proxy:", scalar(&f("HttpProxy")));
    non_empty(&mut o, " HTTPS Proxy:", scalar(&f("HttpsProxy")));
    non_empty(&mut o, " No Proxy:", scalar(&f("NoProxy")));
    let labels = strings(&f("Labels"));
    if !labels.is_empty() {
        let _ = writeln!(o, " Labels:");
        for l in labels {
            let _ = writeln!(o, "  {l}");
        }
    }
    line(
        &mut o,
        " Experimental:",
        bool_text(&f("ExperimentalBuild")).to_string(),
    );
    let reg = f("RegistryConfig");
    let cidrs = strings(&reg.field("InsecureRegistryCIDRs"));
    let index = match reg.field("IndexConfigs") {
        Value::Obj(o) => o,
        _ => Vec::new(),
    };
    if !cidrs.is_empty() || !index.is_empty() {
        let _ = writeln!(o, " Insecure Registries:");
        let mut index = index;
        index.sort_by(|a, b| a.0.cmp(&b.0));
        for (_, cfg) in &index {
            if !matches!(cfg.field("Secure"), Value::Bool(true)) {
                let _ = writeln!(o, "  {}", scalar(&cfg.field("Name")));
            }
        }
        for c in cidrs {
            let _ = writeln!(o, "  {c}");
        }
    }
    let mirrors = strings(&reg.field("Mirrors"));
    if !mirrors.is_empty() {
        let _ = writeln!(o, " Registry Mirrors:");
        for m in mirrors {
            let _ = writeln!(o, "  {m}");
        }
    }
    line(
        &mut o,
        " Live Restore Enabled:",
        bool_text(&f("LiveRestoreEnabled")).to_string(),
    );
    o.push('\n');
    o
}

/// `berth info`.
pub(crate) async fn info(client: &Client, args: &FormatArgs, debug: bool) -> Result<(), CliError> {
    let info = client.docker.info().await.map_err(|e| client.error(e))?;
    let info = Value::from_serialize(&info)?;
    match args.format.as_deref() {
        Some(f) if !f.is_empty() => {
            let f = if f == "json" { "{{json .}}" } else { f };
            // docker's info struct embeds the server info and adds ClientInfo.
            let mut data = match info {
                Value::Obj(o) => o,
                _ => Vec::new(),
            };
            data.push((
                "ClientInfo".into(),
                Value::Obj(vec![
                    ("Debug".into(), Value::Bool(debug)),
                    ("Version".into(), Value::Str(crate::VERSION.to_string())),
                    ("Context".into(), Value::Str("default".into())),
                    ("Plugins".into(), Value::Arr(Vec::new())),
                    ("Warnings".into(), Value::Null),
                ]),
            ));
            print!("{}", format::render_once(f, &Value::Obj(data))?);
        }
        _ => {
            let client_part = format!(
                "Client:\n Version:\t{}\n Context:\tdefault\n Debug Mode:\t{debug}\n",
                crate::VERSION
            );
            print!("{}", format::tabwrite_with(&client_part, 0, 1));
            println!();
            println!("Server:");
            print!("{}", info_server_text(&info, debug));
            for w in strings(&info.field("Warnings")) {
                eprintln!("{w}");
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_layout() {
        let server: Value = serde_json::from_str(
            r#"{"Platform":{"Name":""},"Components":[{"Name":"Engine","Version":"0.1.0",
            "Details":{"ApiVersion":"1.47","MinAPIVersion":"1.24","GitCommit":"abc",
            "GoVersion":"rust","Os":"linux","Arch":"amd64","BuildTime":"now",
            "Experimental":"false"}}],"Version":"0.1.0","ApiVersion":"1.47"}"#,
        )
        .unwrap();
        let mut text = client_text("1.47");
        text.push_str(&server_text(&server));
        text.push('\n');
        let out = format::tabwrite_with(&text, 20, 1);
        assert!(
            out.starts_with("Client:\n Version:           0.1.0\n"),
            "{out}"
        );
        assert!(
            out.contains(" API version:       1.47 (downgraded from 1.53)\n"),
            "{out}"
        );
        assert!(
            out.contains("\n\nServer:\n Engine:\n  Version:          0.1.0\n"),
            "{out}"
        );
        assert!(
            out.contains("  API version:      1.47 (minimum version 1.24)\n"),
            "{out}"
        );
    }

    #[test]
    fn info_layout() {
        let info: Value = serde_json::from_str(
            r#"{"Containers":3,"ContainersRunning":1,"ContainersPaused":0,"ContainersStopped":2,
            "Images":1,"ServerVersion":"0.1.0","Driver":"overlay2",
            "DriverStatus":[["Backing Filesystem","extfs"]],"LoggingDriver":"json-file",
            "CgroupDriver":"cgroupfs","CgroupVersion":"2","OSType":"linux",
            "Swarm":{"LocalNodeState":"inactive"},"NCPU":2,"MemTotal":25200000000,
            "SecurityOptions":["name=seccomp,profile=builtin","name=cgroupns"],
            "Name":"host","ID":"x","DockerRootDir":"/var/lib/berth","Debug":false}"#,
        )
        .unwrap();
        let out = info_server_text(&info, false);
        assert!(out.starts_with(" Containers: 3\n  Running: 1\n  Paused: 0\n  Stopped: 2\n"));
        assert!(out.contains(" Storage Driver: overlay2\n  Backing Filesystem: extfs\n"));
        assert!(out.contains(" Total Memory: 23.47GiB\n"));
        assert!(out.contains(" Security Options:\n  seccomp\n   Profile: builtin\n  cgroupns\n"));
        assert!(out.contains(" Swarm: inactive\n"));
        assert!(out.ends_with(" Live Restore Enabled: false\n\n"));
    }
}
