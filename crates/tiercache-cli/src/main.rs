//! `tiercache`: the ops command line of a tiercache namespace: `cache-status`, `warm-cache`,
//! `inspect` and `cache-cleanup`. It reaches Redis only through the `tiercache` core, with the
//! configuration the services use (invariant `one-redis-layer` in docs/ARCHITECTURE.md). See
//! `tiercache --help`, and docs/OPERATIONS.md for example output and the exit codes.
#![deny(missing_docs)]

mod cli;
mod commands;
mod connect;
mod error;
mod exit;
mod format;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use crate::cli::{Cli, Command};
use crate::exit::Exit;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap exits 2 on bad input, which a monitor reads as "critical": ours is 64.
            let _ = e.print();
            return if e.use_stderr() {
                Exit::Usage
            } else {
                Exit::Ok
            }
            .into();
        }
    };
    init_logging(cli.global.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("tiercache: cannot start the async runtime: {e}");
            return Exit::Warning.into();
        }
    };
    let global = cli.global.clone();
    let result = runtime.block_on(async move {
        match &cli.command {
            Command::WarmCache(args) => commands::warm::run(&cli.global, args).await,
            Command::CacheStatus(args) => commands::status::run(&cli.global, args).await,
            Command::CacheCleanup(args) => commands::cleanup::run(&cli.global, args).await,
            Command::Inspect(args) => commands::inspect::run(&cli.global, args).await,
        }
    });
    // The node's background tasks end with the runtime; nothing must keep the process alive.
    runtime.shutdown_background();
    match result {
        Ok(exit) => exit.into(),
        Err(e) => {
            eprintln!("tiercache: {e}");
            let exit = e.exit();
            if exit == Exit::Unknown && !global.quiet {
                eprintln!(
                    "(exit 3: is Redis running there? --redis-url or REDIS_URL names another)"
                );
            }
            exit.into()
        }
    }
}

/// Errors only by default (the cache's own warnings, such as "dropped L1" after a cleanup, are
/// for service logs); -v info, -vv debug; `RUST_LOG` overrides.
fn init_logging(verbose: u8) {
    let level = match verbose {
        0 | 1 => "error",
        2 => "info",
        _ => "debug",
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level)),
        )
        .init();
}
