//! `tiercache-demo`: see `tiercache-demo --help`.

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let settings = tiercache_demo::Settings::parse();
    let telemetry = match tiercache_demo::Telemetry::install(&settings) {
        Ok(telemetry) => telemetry,
        Err(e) => {
            eprintln!("tiercache-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    let ran = tiercache_demo::run(settings, shutdown_signal()).await;
    // The last spans are sent after the nodes stopped, so the shutdown's own are among them.
    let _ = tokio::task::spawn_blocking(move || telemetry.shutdown()).await;
    match ran {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tiercache-demo: {e}");
            ExitCode::FAILURE
        }
    }
}

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(signal) => signal,
                Err(e) => {
                    eprintln!("tiercache-demo: cannot listen for SIGTERM ({e}); Ctrl-C only");
                    let _ = interrupt.await;
                    return;
                }
            };
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = interrupt.await;
    }
}
