//! `moldau serve`: the Kafka-protocol broker on the data directory
//! (kafka-server-start.sh), logging to stderr, stopping on Ctrl-C/SIGTERM.

use std::io::IsTerminal;
use std::path::Path;

use moldau::broker::{BrokerConfig, Server};
use tracing_subscriber::EnvFilter;

use crate::cli::ServeArgs;
use crate::error::{self, CliError};

pub fn run(dir: &Path, args: ServeArgs) -> Result<(), CliError> {
    let filter = std::env::var("MOLDAU_LOG")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".into());
    let filter = EnvFilter::try_new(&filter)
        .map_err(|e| CliError::Message(format!("log filter {filter:?}: {e}")))?;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter)
        .init();
    let mut config = BrokerConfig {
        listen: args.listen,
        default_partitions: args.default_partitions,
        ..BrokerConfig::default()
    };
    if let Some(adv) = &args.advertised {
        let (host, port) = adv.rsplit_once(':').ok_or_else(|| {
            CliError::Message(format!("--advertised {adv:?}: expected HOST:PORT"))
        })?;
        config.advertised_host = Some(host.to_owned());
        config.advertised_port = Some(
            port.parse()
                .map_err(|e| CliError::Message(format!("--advertised {adv:?}: port: {e}")))?,
        );
    }
    let runtime = tokio::runtime::Runtime::new()
        .map_err(|e| CliError::Message(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async {
        let log = error::open_or_create(dir)?;
        let server = Server::bind(log, config).await?;
        tracing::info!(
            "listening on {} (data directory {})",
            server.local_addr(),
            dir.display()
        );
        server.serve(crate::signals::stop_signal()).await?;
        tracing::info!("stopped");
        Ok(())
    })
}
