//! Test helpers shared by the workspace's tests: root gating, fixture images, and a real
//! `berthd` on a temporary socket and data root.
//!
//! This crate is a dev-dependency only; nothing in a shipped binary may use it.

pub mod big_image;
pub mod daemon;
pub mod fixtures;
pub mod invariants;
pub mod pki;
pub mod pty;
pub mod registry;

/// Skips the calling test unless `BERTH_TEST_ROOT=1`; fails it if that is set without root.
///
/// Tests that need root (mounts, mknod, chown, a real daemon) start with this, so a plain
/// `cargo test` as a user passes while CI (root, `BERTH_TEST_ROOT=1`) runs everything.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::root_tests_enabled() {
            eprintln!("skipped: set BERTH_TEST_ROOT=1 and run as root");
            return;
        }
    };
}

/// Whether root tests should run; panics if they were asked for without root.
pub fn root_tests_enabled() -> bool {
    let asked = std::env::var("BERTH_TEST_ROOT").is_ok_and(|v| v == "1");
    if asked && !nix::unistd::geteuid().is_root() {
        panic!("BERTH_TEST_ROOT=1 but the tests are not running as root");
    }
    asked
}

/// The workspace root (where the top Cargo.toml is).
pub fn workspace_root() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.ancestors().nth(2).unwrap_or(here).to_path_buf()
}
