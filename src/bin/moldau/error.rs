//! The command line's errors: one line each on stderr, exit code 1; and
//! opening the data directory with a clear message when another process
//! holds it.

use std::fmt;
use std::io;
use std::path::Path;

use moldau::{Log, LogConfig};

/// Why a command failed.
#[derive(Debug)]
pub enum CliError {
    /// An error from the library.
    Moldau(moldau::Error),
    /// A message for the user.
    Message(String),
    /// stdout was closed (`moldau consume ... | head`): not an error.
    BrokenPipe,
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Moldau(e) => write!(f, "{e}"),
            CliError::Message(m) => f.write_str(m),
            CliError::BrokenPipe => f.write_str("broken pipe"),
        }
    }
}

impl From<moldau::Error> for CliError {
    fn from(e: moldau::Error) -> Self {
        match e {
            moldau::Error::Locked { dir } => CliError::Message(format!(
                "the data directory {} is in use by another process (a running `moldau serve` \
                 or an application); stop it first, or use a Kafka client against its broker \
                 (for example `kcat -b localhost:9092 -L`)",
                dir.display()
            )),
            e => CliError::Moldau(e),
        }
    }
}

impl From<String> for CliError {
    fn from(m: String) -> Self {
        CliError::Message(m)
    }
}

/// Output errors: a closed pipe ends the command quietly.
pub fn output(e: io::Error) -> CliError {
    match e.kind() {
        io::ErrorKind::BrokenPipe => CliError::BrokenPipe,
        _ => CliError::Message(format!("cannot write output: {e}")),
    }
}

/// Prints `line` and a newline to stdout (a closed pipe is not a panic).
pub fn say(line: &str) -> Result<(), CliError> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}").map_err(output)
}

/// Opens the data directory, creating it if needed (for commands that write).
pub fn open_or_create(dir: &Path) -> Result<Log, CliError> {
    Ok(Log::open(dir, LogConfig::default())?)
}

/// Opens an existing data directory (for commands that only read, which
/// should not leave an empty directory behind a typo).
pub fn open_existing(dir: &Path) -> Result<Log, CliError> {
    if !dir.is_dir() {
        return Err(CliError::Message(format!(
            "no data directory at {} (set --data-dir or MOLDAU_DATA_DIR, or create a topic \
             with `moldau topics create`)",
            dir.display()
        )));
    }
    open_or_create(dir)
}

/// Closes the log, reporting a failure to flush.
pub fn close(log: Log) -> Result<(), CliError> {
    Ok(log.close()?)
}

/// Splits `KEY=VALUE`, naming `what` in the error.
pub fn key_value<'a>(what: &str, s: &'a str) -> Result<(&'a str, &'a str), CliError> {
    s.split_once('=')
        .ok_or_else(|| CliError::Message(format!("{what} {s:?}: expected KEY=VALUE")))
}
