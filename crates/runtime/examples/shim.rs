//! A stand-in for `berthd shim <config>` so the runtime's tests can start real shims.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if args.len() == 3 && args[1] == "shim" {
        let code = runtime::shim::main(Path::new(&args[2]));
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    eprintln!("usage: shim shim <state-dir>/shim.json");
    ExitCode::from(2)
}
