//! `berth-shim`: the small resident monitor a container's shim becomes (see the crate docs).
//! berthd's shim execs `berth-shim monitor <handoff JSON>`; nothing else should run it.

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() == 3 && args[1] == "monitor" {
        match serde_json::from_str::<shim::container::Handoff>(&args[2]) {
            Ok(h) => return ExitCode::from(u8::try_from(shim::container::run(h)).unwrap_or(1)),
            Err(e) => eprintln!("berth-shim: bad handoff: {e}"),
        }
    } else if args.len() == 2 && args[1] == "version" {
        println!("{}", shim::container::VERSION_LINE);
        return ExitCode::SUCCESS;
    } else {
        eprintln!(
            "berth-shim: started by berthd's shim (berth-shim monitor <handoff>), not by hand"
        );
    }
    ExitCode::from(2)
}
