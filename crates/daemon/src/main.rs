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
    // `--validate`: check the flags and the file, bind and open nothing (dockerd's words).
    if cli.validate {
        return match Config::resolve(cli) {
            Ok(_) => {
                eprintln!("configuration OK");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("berthd: {e}");
                ExitCode::FAILURE
            }
        };
    }
    // One fd per connection, layer download and container monitor socket: the soft limit a
    // shell hands down (often 1024) is too low. Containers get their own, pinned limit.
    if let Err(e) = engine::raise_fd_limit() {
        eprintln!("berthd: cannot raise the open files limit: {e}");
    }
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
    let config = Config::resolve(cli.clone())?;
    let network = daemon::config::network_config(&config);

    let filter = EnvFilter::try_new(config.log_level.as_filter()).context("invalid log level")?;
    // The filter is reloadable: SIGHUP may change debug / log-level.
    let (filter, filter_handle) = tracing_subscriber::reload::Layer::new(filter);
    {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::util::SubscriberInitExt;
        tracing_subscriber::registry()
            .with(filter)
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init();
    }
    let reloader = Arc::new(daemon::reload::Reloader::new(
        cli,
        config.clone(),
        Box::new(move |level| {
            let f = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
            filter_handle.reload(f).map_err(|e| e.to_string())
        }),
    ));

    // A refused or misconfigured listener stops the start before the engine opens.
    server::preflight(&config)?;
    daemon::metrics::preflight(config.metrics_addr.as_deref())?;
    let engine = Engine::open(EngineConfig {
        data_root: config.data_root.clone(),
        exec_root: config.exec_root.clone(),
        debug: config.debug,
        network,
    })?;
    daemon::reload::apply(&engine, &config);
    let engine = Arc::new(engine);
    daemon::reload::on_sighup(reloader, Arc::clone(&engine))?;
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
    let app = daemon::app(Arc::clone(&engine));
    let (app, metrics) = daemon::metrics::start(config.metrics_addr.as_deref(), app, engine)?;
    daemon::sd_notify::notify("READY=1");
    let shutdown = async {
        server::shutdown_signal().await;
        daemon::sd_notify::notify("STOPPING=1");
    };
    server::serve(sockets, app, shutdown).await;
    if let Some(task) = metrics {
        task.abort();
    }
    tracing::info!("berthd stopped");
    Ok(())
}
