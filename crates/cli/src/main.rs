//! `berth`: a docker-compatible command-line client for berthd.

mod client;
mod commands;
mod format;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::client::CliError;
use crate::commands::Cli;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const BUILD: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "dev",
};

fn main() {
    let code = run();
    std::process::exit(code);
}

fn run() -> i32 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => return usage_error(&e),
    };
    if cli.version {
        println!("berth version {VERSION}, build {BUILD}");
        return 0;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let e = anyhow::Error::from(e).context("cannot start the async runtime");
            eprintln!("{e:#}");
            return 1;
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => 0,
        Err(CliError::Silent) => 1,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

/// Reports a command-line parsing error the way docker (cobra) does, and returns the exit code.
fn usage_error(e: &clap::Error) -> i32 {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            print!("{e}");
            return 0;
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            eprint!("{e}");
            return 0;
        }
        _ => {}
    }
    let usage = match e.get(ContextKind::Usage) {
        Some(ContextValue::StyledStr(s)) => s.to_string(),
        _ => String::new(),
    };
    let usage_line = usage.trim().trim_start_matches("Usage:").trim().to_string();
    let command: Vec<&str> = usage_line
        .split_whitespace()
        .take_while(|w| !w.starts_with('[') && !w.starts_with('<') && !w.starts_with('-'))
        .collect();
    let command = command.join(" ");
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let (message, code) = match e.kind() {
        ErrorKind::UnknownArgument => {
            let flag = invalid.split_whitespace().next().unwrap_or_default().to_string();
            if flag.starts_with("--") || !flag.starts_with('-') {
                (format!("unknown flag: {flag}"), 125)
            } else {
                let c = flag.trim_start_matches('-').chars().next().unwrap_or('?');
                (format!("unknown shorthand flag: '{c}' in {flag}"), 125)
            }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues => {
            (format!("berth: '{command}' requires {}", missing_what(&invalid)), 1)
        }
        ErrorKind::InvalidSubcommand => {
            let sub = invalid.clone();
            (
                format!("berth: unknown command: {command} {sub}\n\nRun '{command} --help' for more information"),
                1,
            )
        }
        _ => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            (first.trim_start_matches("error: ").to_string(), 125)
        }
    };
    if e.kind() == ErrorKind::InvalidSubcommand {
        eprintln!("{message}");
        return code;
    }
    eprintln!("{message}\n\nUsage:  {usage_line}\n\nRun '{command} --help' for more information");
    code
}

fn missing_what(invalid: &str) -> String {
    if invalid.is_empty() {
        "more arguments".to_string()
    } else {
        format!("argument(s): {invalid}")
    }
}
