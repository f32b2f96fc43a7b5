//! Registry mirrors and per-registry certificates through berthd, driven by the docker CLI:
//! `--registry-mirror` pulls of Docker Hub images served by a loopback mirror (no internet),
//! and `--certs-dir` CA roots and client certificates against `berthd registry serve` with
//! mutual TLS. Registries are `berthd registry serve` processes on loopback ports, filled by
//! skopeo, killed by their pid when the test ends.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use test_support::daemon::{TestDaemon, fails, ok, start_fails};
use test_support::fixtures;
use test_support::pki::Pki;
use test_support::registry::{Registry, free_port, skopeo_available, skopeo_copy};
use test_support::require_root;

fn combined(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn docker_pull_through_registry_mirrors() {
    require_root!();
    if !skopeo_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    // nginx when the shared images are here (the issue's scenario), else busybox.
    let (archive, name) = match fixtures::shared_image("nginx") {
        Some(gz) => {
            let tar = work.path().join("nginx.tar");
            let out = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "gunzip -c '{}' > '{}'",
                    gz.display(),
                    tar.display()
                ))
                .status()
                .unwrap();
            assert!(out.success());
            (tar, "nginx")
        }
        None => (fixtures::busybox_archive(work.path()), "busybox"),
    };
    let mirror = Registry::berth();
    mirror.push_archive(&archive, &format!("library/{name}:latest"));
    // The first mirror is down (a closed port), the second has the image.
    let down = format!("http://127.0.0.1:{}", free_port());
    let up = format!("http://{}/", mirror.addr());
    // Docker Hub behind a proxy on a closed port: out of reach at once, on any network.
    let d = TestDaemon::start_with_env(
        &["--registry-mirror", &down, "--registry-mirror", &up],
        &[
            ("HTTPS_PROXY", "http://127.0.0.1:9"),
            ("NO_PROXY", "127.0.0.1,localhost"),
        ],
    );

    let info = ok(&d.docker(&["info"]));
    assert!(
        info.contains(&format!(" Registry Mirrors:\n  {down}/\n  {up}\n")),
        "{info}"
    );
    let raw = ok(&d.docker(&["info", "--format", "{{json .RegistryConfig}}"]));
    let cfg: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(cfg["Mirrors"], serde_json::json!([format!("{down}/"), up]));
    assert_eq!(cfg["IndexConfigs"]["docker.io"]["Mirrors"], cfg["Mirrors"]);
    let info = ok(&d.berth(&["info"]));
    assert!(
        info.contains(&format!(" Registry Mirrors:\n  {down}/\n  {up}\n")),
        "{info}"
    );

    let t = Instant::now();
    let out = ok(&d.docker(&["pull", name]));
    assert!(
        out.contains(&format!("Status: Downloaded newer image for {name}:latest")),
        "{out}"
    );
    assert!(out.contains("Digest: sha256:"), "{out}");
    assert!(t.elapsed() < Duration::from_secs(60), "{:?}", t.elapsed());
    let images = ok(&d.docker(&["images", "--format", "{{.Repository}}:{{.Tag}}"]));
    assert!(
        images.lines().any(|l| l == format!("{name}:latest")),
        "{images}"
    );
    if name == "nginx" {
        let v = d.docker(&["run", "--rm", "nginx", "nginx", "-v"]);
        assert!(v.status.success(), "{}", combined(&v));
        assert!(
            combined(&v).contains("nginx version: nginx/"),
            "{}",
            combined(&v)
        );
    } else {
        let v = ok(&d.docker(&["run", "--rm", "busybox", "echo", "mirrored"]));
        assert_eq!(v.trim(), "mirrored");
    }

    // An image no mirror has, with Docker Hub out of reach: an error naming it, quickly.
    let t = Instant::now();
    let err = fails(&d.docker(&["pull", "berth-no-such-image:1"]));
    assert!(err.contains("berth-no-such-image"), "{err}");
    assert!(err.contains("not found"), "{err}");
    assert!(t.elapsed() < Duration::from_secs(30), "{:?}", t.elapsed());
    d.rm_all();
}

#[test]
fn an_invalid_mirror_stops_the_daemon_with_mobys_message() {
    let err = start_fails(&["--registry-mirror", "mirror.example.com"]);
    assert!(
        err.contains(r#"invalid mirror: unsupported scheme "" in "mirror.example.com""#),
        "{err}"
    );
}

#[test]
fn certs_dir_roots_and_client_certificates() {
    require_root!();
    if !skopeo_available() {
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let Some(pki) = Pki::make(&work.path().join("pki")) else {
        return;
    };
    // A registry speaking only TLS and requiring a client certificate its CA signed.
    let reg = Registry::berth_with()
        .tls(&pki.file("server-cert.pem"), &pki.file("server-key.pem"))
        .tls_client_ca(&pki.file("ca.pem"))
        .start();
    let host = reg.addr();
    let skopeo_dir = work.path().join("skopeo-certs");
    let pair = [
        ("ca.pem", "ca.crt"),
        ("client-cert.pem", "client.cert"),
        ("client-key.pem", "client.key"),
    ];
    pki.copy_into(&skopeo_dir, &pair);
    let archive = fixtures::busybox_archive(work.path());
    for repo in ["mtls/busybox", "library/busybox"] {
        skopeo_copy(
            &archive,
            &format!("{host}/{repo}:latest"),
            &["--dest-cert-dir", skopeo_dir.to_str().unwrap()],
        );
    }

    let certs_d = work.path().join("certs.d");
    let host_dir = certs_d.join(&host);
    pki.copy_into(&host_dir, &[("ca.pem", "ca.crt")]);
    // The same registry is also an https:// Docker Hub mirror, verified with certs.d too.
    let mirror = format!("https://{host}");
    let d = TestDaemon::start_with(&[
        "--certs-dir",
        certs_d.to_str().unwrap(),
        "--registry-mirror",
        &mirror,
    ]);
    let image = format!("{host}/mtls/busybox:latest");

    // The CA alone: the server refuses a client without a certificate, and a loopback
    // registry with a certs.d directory gets no plain-HTTP fallback.
    let out = d.docker(&["pull", &image]);
    assert!(!out.status.success(), "{}", combined(&out));
    assert!(
        combined(&out).contains("CertificateRequired"),
        "{}",
        combined(&out)
    );

    // With the client pair (read on the next pull, no restart): pull, run, push.
    pki.copy_into(&host_dir, &pair[1..]);
    let out = ok(&d.docker(&["pull", &image]));
    assert!(out.contains("Status: Downloaded newer image"), "{out}");
    let out = ok(&d.docker(&["pull", "busybox"]));
    assert!(
        out.contains("Status: Downloaded newer image for busybox:latest"),
        "{out}"
    );
    let echoed = ok(&d.docker(&["run", "--rm", &image, "echo", "over mTLS"]));
    assert_eq!(echoed.trim(), "over mTLS");
    let pushed = format!("{host}/mtls/again:v1");
    ok(&d.docker(&["tag", &image, &pushed]));
    let out = ok(&d.docker(&["push", &pushed]));
    assert!(out.contains("v1: digest: sha256:"), "{out}");

    // The server's certificate is verified against the CA in certs.d: another CA fails.
    pki.copy_into(&host_dir, &[("other-ca.pem", "ca.crt")]);
    ok(&d.docker(&["rmi", &image, &pushed]));
    let err = fails(&d.docker(&["pull", &image]));
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );

    // A client certificate without its key: Docker's message naming the files.
    pki.copy_into(&host_dir, &[("ca.pem", "ca.crt")]);
    std::fs::remove_file(host_dir.join("client.key")).unwrap();
    let err = fails(&d.docker(&["pull", &image]));
    assert!(
        err.contains(
            "missing key client.key for client certificate client.cert. CA certificates must use the extension .crt"
        ),
        "{err}"
    );
    d.rm_all();
}
