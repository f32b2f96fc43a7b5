//! `berth registry …`: runs the built-in registry server by exec'ing the `berthd` installed
//! beside this binary with the same arguments (the CLI does not link the server).

use std::ffi::OsString;
use std::os::unix::process::CommandExt;

/// Replaces this process with `berthd registry <args>`; returns an exit code only on failure.
pub(crate) fn exec(args: Vec<OsString>) -> i32 {
    let berthd = match std::env::current_exe() {
        Ok(exe) => exe.with_file_name("berthd"),
        Err(e) => {
            eprintln!("berth registry: cannot locate berthd: {e}");
            return 1;
        }
    };
    let err = std::process::Command::new(&berthd)
        .arg("registry")
        .args(args)
        .exec();
    eprintln!("berth registry: cannot run {}: {err}", berthd.display());
    127
}
