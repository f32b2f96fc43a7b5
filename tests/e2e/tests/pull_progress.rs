//! `berth pull` / `berth push` on a terminal (util-linux `script` owns the pty): per-layer
//! lines drawn by indicatif, ending in docker's final per-layer states (`<id>: Pull complete`,
//! `<id>: Pushed`) with the bar of the last byte count, then the `Digest:`/`Status:` lines.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output, Stdio};

use test_support::daemon::{TestDaemon, bin_path, ok};
use test_support::registry::Registry;
use test_support::require_root;

/// Runs `line` under a 200-column pty with the daemon's client environment.
fn under_pty(d: &TestDaemon, line: &str) -> Output {
    let mut c = Command::new("script");
    c.args([
        "-qec",
        &format!("stty cols {COLS} rows 50; {line}"),
        "/dev/null",
    ])
    .stdin(Stdio::null());
    for (k, v) in d.client_env() {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// The pty's width.
const COLS: usize = 200;

/// What a `COLS`-wide terminal shows after `raw`: a small emulator of what indicatif and the
/// CLI send (printable text with autowrap, `\r`, `\n`, CSI `A`/`B`/`C`/`D` moves and `K`
/// erases; other sequences ignored). Lines trimmed, empty ones dropped.
fn screen_lines(raw: &[u8]) -> Vec<String> {
    let chars: Vec<char> = String::from_utf8_lossy(raw).chars().collect();
    let mut grid: Vec<Vec<char>> = vec![Vec::new()];
    let (mut row, mut col, mut wrap) = (0usize, 0usize, false);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        if c == '\x1b' && chars.get(i) == Some(&'[') {
            let mut params = String::new();
            i += 1;
            while i < chars.len() && !chars[i].is_ascii_alphabetic() {
                params.push(chars[i]);
                i += 1;
            }
            let Some(&fin) = chars.get(i) else { break };
            i += 1;
            let n: usize = params.parse().unwrap_or(1);
            wrap = false;
            match fin {
                'A' => row = row.saturating_sub(n),
                'B' => row += n,
                'C' => col = (col + n).min(COLS - 1),
                'D' => col = col.saturating_sub(n),
                'K' => {
                    if grid.len() <= row {
                        grid.resize(row + 1, Vec::new());
                    }
                    let line = &mut grid[row];
                    match params.as_str() {
                        "2" => line.clear(),
                        "1" => line.iter_mut().take(col + 1).for_each(|x| *x = ' '),
                        _ => line.truncate(col),
                    }
                }
                _ => {}
            }
            continue;
        }
        match c {
            '\r' => {
                col = 0;
                wrap = false;
            }
            '\n' => {
                row += 1;
                wrap = false;
            }
            c if c.is_control() => {}
            c => {
                if wrap {
                    row += 1;
                    col = 0;
                    wrap = false;
                }
                if grid.len() <= row {
                    grid.resize(row + 1, Vec::new());
                }
                let line = &mut grid[row];
                if line.len() <= col {
                    line.resize(col + 1, ' ');
                }
                line[col] = c;
                if col + 1 == COLS {
                    wrap = true;
                } else {
                    col += 1;
                }
            }
        }
    }
    grid.iter()
        .map(|l| l.iter().collect::<String>().trim_end().to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

#[test]
fn the_screen_emulator_follows_redraws() {
    let raw = format!(
        "a: one{}\r\x1b[2Ka: two\r\nb: x\x1b[1A\r\x1b[2Ka: three\x1b[1B\r\nend\r\n",
        " ".repeat(COLS - 6)
    );
    assert_eq!(screen_lines(raw.as_bytes()), ["a: three", "b: x", "end"]);
}

/// Whether `line` is `<12 hex>: <status>`.
fn layer_line(line: &str, status: &str) -> bool {
    line.split_once(": ").is_some_and(|(id, rest)| {
        id.len() == 12 && id.chars().all(|c| c.is_ascii_hexdigit()) && rest.starts_with(status)
    })
}

#[test]
fn pull_and_push_draw_layer_lines_on_a_terminal() {
    require_root!();
    let reg = Registry::berth();
    let d = TestDaemon::start();
    d.load_busybox();
    let name = format!("{}/t/bb:v1", reg.addr());
    ok(&d.docker(&["tag", "busybox:latest", &name]));

    let berth = bin_path("berth").display().to_string();
    let out = under_pty(&d, &format!("{berth} push {name}"));
    let lines = screen_lines(&out.stdout);
    eprintln!("berth push on a pty:\n{}", lines.join("\n"));
    assert!(out.status.success(), "{lines:?}");
    assert!(
        lines.iter().any(|l| layer_line(l, "Pushed")),
        "a layer line ends Pushed: {lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("v1: digest: sha256:")),
        "{lines:?}"
    );

    // No layer left locally, so the pull downloads (and draws a bar for) every layer.
    ok(&d.docker(&["rmi", &name, "busybox:latest"]));
    let out = under_pty(&d, &format!("{berth} pull {name}"));
    let lines = screen_lines(&out.stdout);
    eprintln!("berth pull on a pty:\n{}", lines.join("\n"));
    assert!(out.status.success(), "{lines:?}");
    let complete: Vec<&String> = lines
        .iter()
        .filter(|l| layer_line(l, "Pull complete"))
        .collect();
    assert!(!complete.is_empty(), "{lines:?}");
    let raw = String::from_utf8_lossy(&out.stdout);
    assert!(
        raw.contains(": Downloading [") || raw.contains(": Extracting ["),
        "a bar was drawn: {raw:?}"
    );
    let tail: Vec<&str> = lines.iter().rev().take(3).map(String::as_str).collect();
    assert_eq!(tail[0], name, "{lines:?}");
    assert_eq!(
        tail[1],
        format!("Status: Downloaded newer image for {name}"),
        "{lines:?}"
    );
    assert!(tail[2].starts_with("Digest: sha256:"), "{lines:?}");
    // Each layer has one line: its id appears once among the final lines.
    for l in &complete {
        let id = &l[..12];
        assert_eq!(
            lines.iter().filter(|x| x.starts_with(id)).count(),
            1,
            "{lines:?}"
        );
    }
    assert_eq!(ok(&d.docker(&["run", "--rm", &name, "echo", "hi"])), "hi\n");
    d.rm_all();
}
