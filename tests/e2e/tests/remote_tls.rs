//! berthd on TCP: mutual TLS (`--tlsverify`) driven by the real docker CLI with its own
//! `--tlsverify --tlscacert --tlscert --tlskey` flags (version, run, hijacked exec/run under a
//! pty, stdin half-close), handshakes refused for clients without a certificate or with one
//! from another CA (curl never sees an HTTP status), server-only TLS (`--tls`), plain loopback
//! TCP, and the refusal of a non-loopback listener without TLS unless `--tls=false` is given.
//! Certificates are made with openssl in a temp dir; ports are free loopback ports.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use test_support::daemon::{TestDaemon, docker_cli, fails, ok, start_fails};
use test_support::pki::Pki;
use test_support::registry::{free_port, tool_available};
use test_support::require_root;

/// A PKI file's path as a string (for command lines).
fn file(pki: &Pki, name: &str) -> String {
    pki.file(name).to_string_lossy().into_owned()
}

/// A directory laid out as Docker's default cert path: ca.pem, cert.pem, key.pem.
fn server_dir(pki: &Pki) -> PathBuf {
    let d = pki.file("server-dir");
    pki.copy_into(
        &d,
        &[
            ("ca.pem", "ca.pem"),
            ("server-cert.pem", "cert.pem"),
            ("server-key.pem", "key.pem"),
        ],
    );
    d
}

/// The docker CLI's flags for mutual TLS with `client` (`client` or `intruder`).
fn client_flags(pki: &Pki, client: &str, port: u16) -> Vec<String> {
    vec![
        "-H".into(),
        format!("tcp://127.0.0.1:{port}"),
        "--tlsverify".into(),
        "--tlscacert".into(),
        file(pki, "ca.pem"),
        "--tlscert".into(),
        file(pki, &format!("{client}-cert.pem")),
        "--tlskey".into(),
        file(pki, &format!("{client}-key.pem")),
    ]
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn combined(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `docker FLAGS ARGS` against `d`'s TCP listener (the flags' `-H` wins over DOCKER_HOST).
fn docker(d: &TestDaemon, flags: &[String], args: &[&str]) -> Output {
    d.docker_cmd().args(flags).args(args).output().unwrap()
}

/// `docker FLAGS ARGS` with `input` on stdin (closed after it: the client half-closes).
fn docker_stdin(d: &TestDaemon, flags: &[String], args: &[&str], input: &[u8]) -> Output {
    use std::io::Write;
    let mut child = d
        .docker_cmd()
        .args(flags)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    child.wait_with_output().unwrap()
}

/// Runs `docker FLAGS LINE` under a pty (`script`).
fn docker_pty(d: &TestDaemon, flags: &[String], line: &str) -> Output {
    let cmd = format!("{} {} {line}", docker_cli().display(), flags.join(" "));
    Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .envs(d.client_env())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// `curl ARGS https://127.0.0.1:PORT/_ping`: its exit code and the HTTP status it saw
/// (`000` when there was none).
fn curl_ping(scheme: &str, port: u16, args: &[&str]) -> (Option<i32>, String) {
    let o = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "10",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ])
        .args(args)
        .arg(format!("{scheme}://127.0.0.1:{port}/_ping"))
        .output()
        .unwrap();
    (o.status.code(), stdout(&o))
}

#[test]
fn mutual_tls_with_the_docker_cli() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(&work.path().join("pki")) else {
        return;
    };
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    // No path flags: the CA, certificate and key come from $DOCKER_CERT_PATH (Docker's default).
    let server_dir = server_dir(&pki);
    let d = TestDaemon::start_with_env(
        &["-H", &tcp, "--tlsverify"],
        &[("DOCKER_CERT_PATH", server_dir.to_str().unwrap())],
    );
    d.load_busybox();
    let good = client_flags(&pki, "client", port);

    let v = ok(&docker(
        &d,
        &good,
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert_eq!(v.trim(), "1.47");
    let out = ok(&docker(
        &d,
        &good,
        &["run", "--rm", "busybox", "echo", "over-tls"],
    ));
    assert_eq!(out, "over-tls\n");
    // Attach with stdin: the client half-closes its TLS stream, the output still comes back.
    let o = docker_stdin(
        &d,
        &good,
        &["run", "-i", "--rm", "busybox", "sh", "-c", "cat; echo done"],
        b"line one\nline two\n",
    );
    assert!(o.status.success(), "{}", combined(&o));
    assert_eq!(stdout(&o), "line one\nline two\ndone\n");

    ok(&docker(
        &d,
        &good,
        &["run", "-d", "--name", "c1", "busybox", "sleep", "300"],
    ));
    let o = docker(&d, &good, &["exec", "c1", "sh", "-c", "echo in-c1; exit 4"]);
    assert_eq!(o.status.code(), Some(4), "{}", combined(&o));
    assert_eq!(stdout(&o), "in-c1\n");
    // Hijacked sessions with a tty, under a pty.
    let o = docker_pty(
        &d,
        &good,
        "exec -it c1 sh -c 'tty; [ -t 0 ] && echo stdin-is-tty; exit 3'",
    );
    let text = stdout(&o);
    assert!(text.contains("/dev/pts/"), "{text:?}");
    assert!(text.contains("stdin-is-tty"), "{text:?}");
    assert_eq!(o.status.code(), Some(3), "{text:?}");
    let o = docker_pty(&d, &good, "run -it --rm busybox sh -c 'tty; exit 5'");
    let text = stdout(&o);
    assert!(text.contains("/dev/"), "{text:?}");
    assert_eq!(o.status.code(), Some(5), "{text:?}");

    if tool_available("curl") {
        // No client certificate: the handshake fails, no HTTP status at all.
        let (code, status) = curl_ping("https", port, &["--cacert", &file(&pki, "ca.pem")]);
        assert_ne!(code, Some(0));
        assert_eq!(status, "000");
        // A certificate from another CA: refused in the handshake too.
        let (code, status) = curl_ping(
            "https",
            port,
            &[
                "--cacert",
                &file(&pki, "ca.pem"),
                "--cert",
                &file(&pki, "intruder-cert.pem"),
                "--key",
                &file(&pki, "intruder-key.pem"),
            ],
        );
        assert_ne!(code, Some(0));
        assert_eq!(status, "000");
        // Plain HTTP on the TLS port: no HTTP answer either.
        let (code, status) = curl_ping("http", port, &[]);
        assert_ne!(code, Some(0));
        assert_eq!(status, "000");
        // The right certificate: 200.
        let (code, status) = curl_ping(
            "https",
            port,
            &[
                "--cacert",
                &file(&pki, "ca.pem"),
                "--cert",
                &file(&pki, "client-cert.pem"),
                "--key",
                &file(&pki, "client-key.pem"),
            ],
        );
        assert_eq!((code, status.as_str()), (Some(0), "200"));
    }
    // The docker CLI with a certificate from another CA fails too.
    let err = fails(&docker(
        &d,
        &client_flags(&pki, "intruder", port),
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert!(err.contains("tls") || err.contains("certificate"), "{err}");
    let log = d.log();
    assert!(log.contains("TLS handshake refused"), "{log}");
    assert!(log.contains("client certificates required"), "{log}");
    d.rm_all();
}

#[test]
fn server_tls_only_with_docker_tls() {
    require_root!();
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(&work.path().join("pki")) else {
        return;
    };
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let (cert, key) = (file(&pki, "server-cert.pem"), file(&pki, "server-key.pem"));
    let d = TestDaemon::start_with(&["-H", &tcp, "--tls", "--tlscert", &cert, "--tlskey", &key]);
    // `docker --tls`: TLS, no server verification, no client certificate (the CLI still
    // wants a readable CA file, and does not verify against it).
    let flags = vec![
        "-H".to_string(),
        tcp.clone(),
        "--tls".to_string(),
        "--tlscacert".to_string(),
        file(&pki, "other-ca.pem"),
    ];
    let v = ok(&docker(
        &d,
        &flags,
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert_eq!(v.trim(), "1.47");
    // Verifying the server but presenting no certificate works too.
    let flags = vec![
        "-H".to_string(),
        tcp.clone(),
        "--tlsverify".to_string(),
        "--tlscacert".to_string(),
        file(&pki, "ca.pem"),
    ];
    let out = ok(&docker(&d, &flags, &["info", "--format", "{{.OSType}}"]));
    assert_eq!(out.trim(), "linux");
    // Plain HTTP is not served on a TLS port.
    let plain = vec!["-H".to_string(), tcp];
    fails(&docker(&d, &plain, &["version"]));
    d.rm_all();
}

#[test]
fn plain_tcp_on_loopback_is_allowed() {
    require_root!();
    let port = free_port();
    let tcp = format!("tcp://127.0.0.1:{port}");
    let d = TestDaemon::start_with(&["-H", &tcp]);
    let flags = vec!["-H".to_string(), tcp];
    let v = ok(&docker(
        &d,
        &flags,
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert_eq!(v.trim(), "1.47");
    // berth's own CLI speaks plain tcp:// too.
    let o = d
        .berth_cmd()
        .args(["-H", &flags[1], "ps", "-a"])
        .output()
        .unwrap();
    assert!(ok(&o).starts_with("CONTAINER ID"), "{}", combined(&o));
    let log = d.log();
    assert!(
        log.contains("Binding to IP address without --tlsverify is insecure"),
        "{log}"
    );
    assert!(
        log.contains("loopback listener without client verification allowed"),
        "{log}"
    );
}

/// The first non-loopback IPv4 address of this machine (`ip -4 -o addr`).
fn non_loopback_ipv4() -> Option<String> {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    stdout(&out).lines().find_map(|l| {
        let mut f = l.split_whitespace();
        f.find(|w| *w == "inet")?;
        let cidr = f.next()?;
        let ip = cidr.split('/').next()?;
        (!ip.starts_with("127.")).then(|| ip.to_string())
    })
}

#[test]
fn non_loopback_tcp_without_tls_needs_an_explicit_opt_in() {
    require_root!();
    let Some(ip) = non_loopback_ipv4() else {
        eprintln!("skipped: no non-loopback IPv4 address");
        return;
    };
    let port = free_port();
    let tcp = format!("tcp://{ip}:{port}");
    let err = start_fails(&["-H", &tcp]);
    assert!(
        err.contains(&format!(
            "refusing to listen on {tcp}: Binding to IP address without --tlsverify is insecure"
        )),
        "{err}"
    );
    assert!(err.contains("'--tls=false'"), "{err}");
    // Missing certificate files are named.
    let err = start_fails(&[
        "-H",
        &tcp,
        "--tlsverify",
        "--tlscacert",
        "/nonexistent/ca.pem",
    ]);
    assert!(
        err.contains("invalid TLS configuration: could not read"),
        "{err}"
    );

    // The explicit opt-in: plain HTTP, with Docker's warnings in the log.
    let d = TestDaemon::start_with(&["-H", &tcp, "--tls=false"]);
    let flags = vec!["-H".to_string(), tcp.clone()];
    let v = ok(&docker(
        &d,
        &flags,
        &["version", "--format", "{{.Server.APIVersion}}"],
    ));
    assert_eq!(v.trim(), "1.47");
    let log = d.log();
    assert!(
        log.contains("Binding to IP address without --tlsverify is insecure"),
        "{log}"
    );
    assert!(log.contains("as explicitly asked"), "{log}");
}
