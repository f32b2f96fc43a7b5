//! `berth`: a docker-compatible command-line client for berthd.

mod client;
mod commands;
mod format;
mod raw;
mod raw_stream;
mod registry_exec;

use clap::Parser;
use clap::error::{ContextKind, ContextValue, ErrorKind};

use crate::commands::Cli;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const BUILD: &str = match option_env!("BERTH_GIT_COMMIT") {
    Some(c) => c,
    None => "dev",
};

fn main() -> std::process::ExitCode {
    let code = run();
    std::process::ExitCode::from(u8::try_from(code).unwrap_or(1))
}

fn run() -> i32 {
    let mut args = std::env::args_os().skip(1);
    if args.next().is_some_and(|a| a == "registry") {
        return registry_exec::exec(args.collect());
    }
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
    let result = runtime.block_on(commands::run(cli));
    // Don't wait for a blocked stdin reader (attach/run -i) when the container is gone.
    runtime.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(e) => {
            let text = e.to_string();
            if !text.is_empty() {
                eprintln!("{text}");
            }
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
    let clap_usage = docker_usage(usage.trim().trim_start_matches("Usage:").trim());
    let path: Vec<&str> = clap_usage
        .split_whitespace()
        .take_while(|w| {
            w.chars()
                .all(|c| c.is_ascii_lowercase() || c == '-' || c.is_ascii_digit())
        })
        .collect();
    let command = path.join(" ");
    // The full usage of the (sub)command, as docker prints it.
    let usage_line = {
        use clap::CommandFactory;
        let mut cur = Cli::command();
        for name in path.iter().skip(1) {
            match cur.find_subcommand(name) {
                Some(c) => {
                    let c = c.clone();
                    cur = c;
                }
                None => break,
            }
        }
        let mut cur = cur.bin_name(command.clone());
        let full = cur.render_usage().to_string();
        docker_usage(full.trim().trim_start_matches("Usage:").trim())
    };
    let invalid = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        Some(ContextValue::Strings(v)) => v.join(", "),
        _ => String::new(),
    };
    let (message, code) = match e.kind() {
        ErrorKind::UnknownArgument => {
            let flag = invalid
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            if flag.starts_with("--") || !flag.starts_with('-') {
                (format!("unknown flag: {flag}"), 125)
            } else {
                let c = flag.trim_start_matches('-').chars().next().unwrap_or('?');
                (format!("unknown shorthand flag: '{c}' in {flag}"), 125)
            }
        }
        ErrorKind::MissingRequiredArgument | ErrorKind::WrongNumberOfValues => (
            format!("berth: '{command}' requires {}", required_args(&usage_line)),
            1,
        ),
        ErrorKind::InvalidSubcommand => {
            let sub = match e.get(ContextKind::InvalidSubcommand) {
                Some(ContextValue::String(s)) => s.clone(),
                _ => invalid.clone(),
            };
            (
                format!(
                    "berth: unknown command: {command} {sub}\n\nRun '{command} --help' for more information"
                ),
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
    let verb = if code == 1 && message.contains("at least") {
        "See"
    } else {
        "Run"
    };
    eprintln!(
        "{message}\n\nUsage:  {usage_line}\n\n{verb} '{command} --help' for more information"
    );
    code
}

/// clap's usage line in docker's style: `<X>...` → `X [X...]`, `<X>` → `X`.
fn docker_usage(usage: &str) -> String {
    usage
        .split_whitespace()
        .map(|w| {
            if let Some(inner) = w.strip_prefix('<').and_then(|r| r.strip_suffix(">...")) {
                format!("{inner} [{inner}...]")
            } else if let Some(inner) = w.strip_prefix('<').and_then(|r| r.strip_suffix('>')) {
                inner.to_string()
            } else {
                w.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// docker's arity wording: `2 arguments`, `at least 1 argument`.
fn required_args(usage_line: &str) -> String {
    let words: Vec<&str> = usage_line.split_whitespace().collect();
    let variadic = words
        .iter()
        .any(|w| w.ends_with("...]") && !w.starts_with("[ARG"))
        || usage_line.contains("[COMMAND] [ARG...]");
    let required = words
        .iter()
        .filter(|w| !w.starts_with('[') && w.chars().any(|c| c.is_ascii_uppercase()))
        .count();
    let noun = if required == 1 {
        "argument"
    } else {
        "arguments"
    };
    if variadic {
        format!("at least {required} {noun}")
    } else {
        format!("{required} {noun}")
    }
}
