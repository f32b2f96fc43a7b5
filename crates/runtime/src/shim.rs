//! The shim process: `berthd shim <state-dir>/shim.json`.
//!
//! Single-threaded (no async runtime), small. It detaches from its parent (double fork +
//! setsid, so it is not berthd's child), creates and starts the container with libcontainer
//! (stdio: pipes, or a pty whose master arrives over libcontainer's console socket), reports
//! "started <pid>" or the start error to the process that spawned it, then loops with poll(2):
//! copies output to the json-file log and to attached clients, stdin from clients to the
//! container, serves the control socket (attach, wait, kill, resize), reaps the init process,
//! writes `exit.json` atomically, answers every waiter, and exits.

use std::path::Path;

/// Runs the shim; returns the process exit code for `main`.
pub fn main(config_path: &Path) -> i32 {
    let _ = config_path;
    unimplemented!()
}
