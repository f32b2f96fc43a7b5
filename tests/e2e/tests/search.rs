//! `docker search` / `berth search` through berthd: against berth's own registry server
//! (`berthd registry serve`, whose `/v1/search` is a berth extension) holding a few
//! repositories, and against Debian's `docker-registry`, which has no search API (404).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use test_support::daemon::{TestDaemon, fails, ok};
use test_support::registry::Registry;
use test_support::require_root;

#[test]
fn search_berths_registry() {
    require_root!();
    let reg = Registry::berth();
    let d = TestDaemon::start();
    d.load_busybox();
    let addr = reg.addr();
    for repo in ["test/busybox", "test/tools", "other/box"] {
        let name = format!("{addr}/{repo}:v1");
        ok(&d.docker(&["tag", "busybox:latest", &name]));
        ok(&d.docker(&["push", &name]));
    }

    // The table, as docker prints it: repository names as the registry gives them.
    let term = format!("{addr}/test");
    let out = ok(&d.docker(&["search", &term]));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("NAME"), "{out}");
    for col in ["DESCRIPTION", "STARS", "OFFICIAL"] {
        assert!(lines[0].contains(col), "{out}");
    }
    let names: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(names, ["test/busybox", "test/tools"], "{out}");
    assert!(lines[1].trim_end().ends_with('0'), "stars 0: {out}");
    // berth prints the same table.
    assert_eq!(ok(&d.berth(&["search", &term])), out);

    // A term matching inside names; --format.
    let term = format!("{addr}/box");
    let want = "other/box\ntest/busybox\n";
    assert_eq!(
        ok(&d.docker(&["search", "--format", "{{.Name}}", &term])),
        want
    );
    assert_eq!(
        ok(&d.berth(&["search", "--format", "{{.Name}}", &term])),
        want
    );
    let json = ok(&d.docker(&["search", "--format", "json", &term]));
    assert_eq!(ok(&d.berth(&["search", "--format", "json", &term])), json);
    assert!(json.contains("\"Name\":\"other/box\""), "{json}");

    // --limit, and Docker's error out of range.
    let term = format!("{addr}/");
    for cli in ["docker", "berth"] {
        let run = |args: &[&str]| {
            if cli == "docker" {
                d.docker(args)
            } else {
                d.berth(args)
            }
        };
        let out = ok(&run(&[
            "search",
            "--limit",
            "2",
            "--format",
            "{{.Name}}",
            &term,
        ]));
        assert_eq!(out.lines().count(), 2, "{cli}: {out}");
        let err = fails(&run(&["search", "--limit", "101", &term]));
        assert!(
            err.contains("limit 101 is outside the range of [1, 100]"),
            "{cli}: {err}"
        );

        // Filters: nothing here is official, starred or automated.
        for f in ["is-official=true", "stars=1", "is-automated=true"] {
            let out = ok(&run(&[
                "search",
                "--filter",
                f,
                "--format",
                "{{.Name}}",
                &term,
            ]));
            assert_eq!(out, "", "{cli} --filter {f}");
        }
        let out = ok(&run(&[
            "search",
            "--filter",
            "is-official=false",
            "--filter",
            "stars=0",
            "--format",
            "{{.Name}}",
            &term,
        ]));
        assert_eq!(out.lines().count(), 3, "{cli}: {out}");
        let err = fails(&run(&["search", "--filter", "colour=red", &term]));
        assert!(err.contains("invalid filter 'colour'"), "{cli}: {err}");
        let err = fails(&run(&["search", "--filter", "stars=many", &term]));
        assert!(err.contains("invalid filter 'stars=many'"), "{cli}: {err}");
    }

    // No match: the header alone.
    let out = ok(&d.docker(&["search", &format!("{addr}/nginx")]));
    assert_eq!(out.lines().count(), 1, "{out}");
    d.rm_all();
}

#[test]
fn registry_without_search_api() {
    require_root!();
    let Some(reg) = Registry::debian() else {
        return;
    };
    let d = TestDaemon::start();
    let term = format!("{}/busybox", reg.addr());
    let err = fails(&d.docker(&["search", &term]));
    assert!(
        err.contains("Error response from daemon: Unexpected status code 404"),
        "{err}"
    );
    let err = fails(&d.berth(&["search", &term]));
    assert!(err.contains("Unexpected status code 404"), "{err}");
    d.rm_all();
}
