//! Runs moldau as a Kafka broker on a data directory:
//!
//! ```text
//! cargo run --release --features broker --example broker -- \
//!     --data-dir DIR --listen HOST:PORT [--advertised HOST:PORT] [--partitions N]
//! ```
//!
//! Prints `listening on ADDR` once it accepts connections; stops cleanly
//! (finishing in-flight requests and closing the log) on Ctrl-C or SIGTERM.
//! Set `MOLDAU_LOG=debug` for per-request log lines on stderr.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use moldau::broker::{BrokerConfig, Server};
use moldau::{Log, LogConfig};

const USAGE: &str =
    "usage: broker --data-dir DIR [--listen HOST:PORT] [--advertised HOST:PORT] [--partitions N]";

struct Args {
    data_dir: PathBuf,
    config: BrokerConfig,
}

fn parse() -> Result<Args, String> {
    let mut data_dir = None;
    let mut config = BrokerConfig::default();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--data-dir" => data_dir = Some(PathBuf::from(value()?)),
            "--listen" => {
                let v = value()?;
                config.listen = v
                    .parse::<SocketAddr>()
                    .map_err(|e| format!("--listen {v}: {e}"))?;
            }
            "--advertised" => {
                let v = value()?;
                let (host, port) = v
                    .rsplit_once(':')
                    .ok_or(format!("--advertised {v}: expected HOST:PORT"))?;
                config.advertised_host = Some(host.to_owned());
                config.advertised_port =
                    Some(port.parse().map_err(|e| format!("--advertised {v}: {e}"))?);
            }
            "--partitions" => {
                let v = value()?;
                config.default_partitions =
                    v.parse().map_err(|e| format!("--partitions {v}: {e}"))?;
            }
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument {other}\n{USAGE}")),
        }
    }
    let data_dir = data_dir.ok_or(format!("--data-dir is required\n{USAGE}"))?;
    Ok(Args { data_dir, config })
}

/// Completes on Ctrl-C or SIGTERM.
async fn stop_signal() {
    let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot watch SIGTERM ({e}); stopping on Ctrl-C only");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}

async fn run(args: Args) -> Result<(), moldau::Error> {
    let log = Log::open(&args.data_dir, LogConfig::default())?;
    let server = Server::bind(log, args.config).await?;
    println!("listening on {}", server.local_addr());
    server.serve(stop_signal()).await?;
    println!("stopped");
    Ok(())
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let level = std::env::var("MOLDAU_LOG").unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(level)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
