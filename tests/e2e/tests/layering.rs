//! The dependency table of docs/architecture.md, checked by a machine: every workspace member's
//! Cargo.toml may name only the internal crates its row allows, and a few external crates are
//! kept at the edge. A new crate must be added to the table here and in the doc.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;

/// crate → the internal crates it may use in `[dependencies]`.
const ALLOWED: &[(&str, &[&str])] = &[
    ("api-types", &[]),
    ("builder", &[]),
    ("cli", &["api-types", "builder"]),
    ("daemon", &["engine", "api-types", "registry"]),
    (
        "engine",
        &[
            "builder",
            "images",
            "storage",
            "runtime",
            "volumes",
            "network",
            "registry",
            "linux",
            "api-types",
        ],
    ),
    ("images", &["storage"]),
    ("storage", &["linux"]),
    ("runtime", &["shim", "linux"]),
    ("shim", &["linux"]),
    ("volumes", &["linux"]),
    ("network", &["linux"]),
    ("registry", &["storage"]),
    ("linux", &[]),
    ("test-support", &[]),
    ("e2e", &[]),
];

/// External crates that only some members may use: HTTP serving stays in the daemon, the
/// client library in the CLI, argument parsing in the two binaries.
const EDGE_ONLY: &[(&str, &[&str])] = &[
    ("axum", &["daemon", "registry"]),
    ("hyper", &["daemon"]),
    ("hyper-util", &["daemon"]),
    ("bollard", &["cli"]),
    ("clap", &["cli", "daemon"]),
    ("gtmpl", &["cli"]),
];

fn members() -> BTreeMap<String, toml::Table> {
    let root = test_support::workspace_root();
    let mut out = BTreeMap::new();
    let mut dirs: Vec<_> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.push(root.join("tests/e2e"));
    for dir in dirs {
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let table: toml::Table = text.parse().unwrap();
        let name = table["package"]["name"].as_str().unwrap().to_string();
        out.insert(name, table);
    }
    out
}

fn deps<'a>(t: &'a toml::Table, section: &str) -> Vec<&'a str> {
    t.get(section)
        .and_then(|d| d.as_table())
        .map(|d| d.keys().map(String::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn internal_dependencies_follow_the_table() {
    let members = members();
    let internal: Vec<&str> = members.keys().map(String::as_str).collect();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let mut problems = Vec::new();
    for (name, table) in &members {
        let Some(ok) = allowed.get(name.as_str()) else {
            problems.push(format!("{name} is not in the dependency table"));
            continue;
        };
        for dep in deps(table, "dependencies") {
            if internal.contains(&dep) && !ok.contains(&dep) {
                problems.push(format!("{name} must not depend on {dep}"));
            }
        }
        for dep in deps(table, "dev-dependencies") {
            if internal.contains(&dep) && dep != "test-support" && !ok.contains(&dep) {
                problems.push(format!("{name} must not dev-depend on {dep}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "layering violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn edge_crates_stay_at_the_edge() {
    let mut problems = Vec::new();
    for (name, table) in &members() {
        for dep in deps(table, "dependencies") {
            if let Some((_, who)) = EDGE_ONLY.iter().find(|(c, _)| *c == dep)
                && !who.contains(&name.as_str())
            {
                problems.push(format!("{name} must not use {dep} (only {who:?})"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "edge violations:\n{}",
        problems.join("\n")
    );
}

#[test]
fn only_the_linux_crate_may_use_unsafe() {
    for (name, table) in &members() {
        let lints = table.get("lints");
        if name == "linux" {
            assert!(
                lints.and_then(|l| l.get("rust")).is_some(),
                "linux keeps its own lint table"
            );
            continue;
        }
        let workspace = lints
            .and_then(|l| l.get("workspace"))
            .and_then(|w| w.as_bool());
        assert_eq!(
            workspace,
            Some(true),
            "{name} must use the workspace lints (unsafe forbidden)"
        );
    }
    let root = test_support::workspace_root();
    let ws: toml::Table = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(
        ws["workspace"]["lints"]["rust"]["unsafe_code"].as_str(),
        Some("forbid")
    );
}

#[test]
fn the_table_catches_a_bad_dependency() {
    // The checker itself must be able to fail: a storage crate that uses images is refused.
    let table: toml::Table = "[package]\nname='storage'\n[dependencies]\nimages={path='x'}"
        .parse()
        .unwrap();
    let allowed: BTreeMap<&str, &[&str]> = ALLOWED.iter().copied().collect();
    let bad: Vec<_> = deps(&table, "dependencies")
        .into_iter()
        .filter(|d| !allowed["storage"].contains(d))
        .collect();
    assert_eq!(bad, vec!["images"]);
}
