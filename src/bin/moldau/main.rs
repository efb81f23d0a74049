//! `moldau`: the command-line tool. Kafka's shell scripts (`kafka-topics.sh`,
//! `kafka-console-producer.sh`, `kafka-console-consumer.sh`,
//! `kafka-consumer-groups.sh`, `kafka-dump-log.sh`) as one binary working
//! directly on a data directory, plus `serve` (the Kafka-protocol broker) and
//! `bench`.
//!
//! One file per command; `cli` holds the argument definitions, `error` the
//! one-line messages and exit codes.

mod bench;
mod cli;
mod consume;
mod dump;
mod error;
mod format;
mod groups;
mod produce;
mod serve;
mod signals;
mod time;
mod topics;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use cli::{Cli, Command};
use error::CliError;

fn main() -> ExitCode {
    // Usage errors exit with clap's code 2; --help and --version with 0.
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            // Nothing is left to tell if stderr is gone too.
            let _ = writeln!(std::io::stderr(), "error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<(), CliError> {
    let data_dir = cli.data_dir;
    match cli.command {
        Command::Topics(cmd) => topics::run(&data_dir, cmd),
        Command::Produce(args) => produce::run(&data_dir, args),
        Command::Consume(args) => consume::run(&data_dir, args),
        Command::Groups(cmd) => groups::run(&data_dir, cmd),
        Command::Dump(args) => dump::run(args),
        Command::Serve(args) => serve::run(&data_dir, args),
        Command::Bench(args) => bench::run(args),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let mut out = std::io::stdout();
            clap_complete::generate(shell, &mut cmd, "moldau", &mut out);
            Ok(())
        }
    }
}
