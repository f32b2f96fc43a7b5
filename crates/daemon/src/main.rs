//! `berthd`: parse the configuration, open the engine, serve until SIGTERM/SIGINT.

use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::Parser;
use daemon::config::{Cli, Config};
use daemon::server;
use engine::{Engine, EngineConfig};
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // `berthd shim <config>`: the per-container shim, before any runtime or logging is set up.
    let mut args = std::env::args_os();
    if args.nth(1).is_some_and(|a| a == "shim") {
        let Some(path) = args.next() else {
            eprintln!("berthd shim: missing config path");
            return ExitCode::FAILURE;
        };
        let code = engine::run_shim(std::path::Path::new(&path));
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    // `berthd registry serve …`: the built-in registry server, a separate program mode.
    if std::env::args_os().nth(1).is_some_and(|a| a == "registry") {
        return registry_serve();
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("berthd: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(start(cli));
    // Do not wait for blocking tasks still reading a client's upload: the engine keeps data
    // consistent on its own (nothing is tagged before it is verified).
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Our errors carry their causes in their text; print the top level only.
            eprintln!("berthd: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `berthd registry …` with logs on stderr (`RUST_LOG` or info).
fn registry_serve() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let args: Vec<_> = std::env::args_os().skip(2).collect();
    ExitCode::from(registry::server::main(&args))
}

async fn start(cli: Cli) -> anyhow::Result<()> {
    let network = daemon::config::network_config(&cli);
    let config = Config::resolve(cli)?;

    let filter = EnvFilter::try_new(config.log_level.as_filter()).context("invalid log level")?;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();

    // A refused or misconfigured listener stops the start before the engine opens.
    server::preflight(&config)?;
    let engine = Engine::open(EngineConfig {
        data_root: config.data_root.clone(),
        exec_root: config.exec_root.clone(),
        debug: config.debug,
        network,
    })?;
    engine.set_insecure_registries(config.insecure_registries.clone());
    engine.set_registry_settings(engine::RegistrySettings {
        mirrors: config.registry_mirrors.clone(),
        certs_dir: Some(config.certs_dir.clone()),
    });
    let engine = Arc::new(engine);
    server::write_pidfile(&config.pidfile)?;

    let result = run(&config, Arc::clone(&engine)).await;
    engine.network_shutdown();
    if let Err(e) = std::fs::remove_file(&config.pidfile) {
        tracing::warn!(pidfile = %config.pidfile.display(), error = %e, "cannot remove pid file");
    }
    result
}

async fn run(config: &Config, engine: Arc<Engine>) -> anyhow::Result<()> {
    let sockets = server::bind_all(config)?;
    tracing::info!(
        version = engine::ENGINE_VERSION,
        data_root = %config.data_root.display(),
        "berthd started"
    );
    server::serve(sockets, daemon::app(engine), server::shutdown_signal()).await;
    tracing::info!("berthd stopped");
    Ok(())
}
