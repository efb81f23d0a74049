//! The command line's grammar (clap derive): every command, its flags, and
//! its help with an example.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Args, Parser, Subcommand};
use clap_complete::Shell;

/// moldau: a Kafka-compatible commit log on a local data directory.
///
/// The data commands (topics, produce, consume, groups) open the data
/// directory directly; while another process holds it (a running `moldau
/// serve`, or an application), use a Kafka client against its broker.
#[derive(Debug, Parser)]
#[command(name = "moldau", version, propagate_version = true)]
#[command(after_help = "Examples:
  moldau topics create orders --partitions 3 --config retention.ms=86400000
  printf 'alice:1\\nbob:2\\n' | moldau produce orders --key-separator :
  moldau consume orders --from-beginning --max-messages 2
  moldau serve --listen 0.0.0.0:9092")]
pub struct Cli {
    /// The data directory.
    #[arg(
        long,
        global = true,
        env = "MOLDAU_DATA_DIR",
        default_value = "./moldau-data"
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create, list, describe, alter and delete topics (kafka-topics.sh).
    #[command(subcommand)]
    #[command(after_help = "Examples:
  moldau topics create orders --partitions 3
  moldau topics describe orders")]
    Topics(TopicsCommand),
    /// Write records from stdin or a file, one per line (kafka-console-producer.sh).
    Produce(ProduceArgs),
    /// Print records as they arrive (kafka-console-consumer.sh, kcat -C).
    Consume(ConsumeArgs),
    /// List and describe consumer groups, reset their offsets (kafka-consumer-groups.sh).
    #[command(subcommand)]
    #[command(after_help = "Examples:
  moldau groups describe billing
  moldau groups reset-offsets billing --topic orders --to-earliest --execute")]
    Groups(GroupsCommand),
    /// Print the batches of a segment file, or the entries of an index (kafka-dump-log.sh).
    Dump(DumpArgs),
    /// Run the Kafka-protocol broker on the data directory (kafka-server-start.sh).
    Serve(ServeArgs),
    /// Measure produce and consume throughput on a temporary directory.
    Bench(BenchArgs),
    /// Print a shell completion script.
    #[command(after_help = "Example:\n  moldau completions bash > /etc/bash_completion.d/moldau")]
    Completions {
        /// The shell.
        shell: Shell,
    },
}

/// `moldau topics ...`
#[derive(Debug, Subcommand)]
pub enum TopicsCommand {
    /// Create a topic.
    #[command(
        after_help = "Example:\n  moldau topics create orders --partitions 3 --config retention.ms=604800000 --config cleanup.policy=compact"
    )]
    Create {
        /// The topic's name: 1 to 249 characters of [a-zA-Z0-9._-].
        name: String,
        /// Number of partitions.
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// A topic config under its Kafka name (retention.ms, retention.bytes,
        /// segment.bytes, cleanup.policy, max.message.bytes, ...); repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List the topics.
    #[command(after_help = "Example:\n  moldau topics list")]
    List,
    /// Describe one topic, or all: partitions, offsets, segments, size, config.
    #[command(after_help = "Example:\n  moldau topics describe orders")]
    Describe {
        /// The topic (all topics if omitted).
        name: Option<String>,
        /// List every config setting, not only those differing from the defaults.
        #[arg(long)]
        all_configs: bool,
    },
    /// Delete a topic and its data.
    #[command(after_help = "Example:\n  moldau topics delete orders")]
    Delete {
        /// The topic.
        name: String,
    },
    /// Add partitions to a topic, or change its config.
    #[command(
        after_help = "Examples:\n  moldau topics alter orders --partitions 6\n  moldau topics alter orders --config retention.ms=3600000"
    )]
    #[command(group(ArgGroup::new("change").required(true).multiple(true).args(["partitions", "configs"])))]
    Alter {
        /// The topic.
        name: String,
        /// The new, larger, partition count.
        #[arg(long)]
        partitions: Option<u32>,
        /// A topic config to set, under its Kafka name; repeatable.
        #[arg(long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
}

/// `moldau produce ...`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  echo hello | moldau produce greetings
  printf 'alice:42\\nbob:7\\n' | moldau produce payments --key-separator : --header source=cli
  moldau produce events --file events.txt")]
pub struct ProduceArgs {
    /// The topic.
    pub topic: String,
    /// Split each line at the first SEP into key and value.
    #[arg(long, value_name = "SEP")]
    pub key_separator: Option<String>,
    /// Write every record to this partition (default: by key, as Kafka's
    /// Java client; keyless records spread over the partitions).
    #[arg(long)]
    pub partition: Option<u32>,
    /// A header added to every record; repeatable.
    #[arg(long = "header", value_name = "KEY=VALUE")]
    pub headers: Vec<String>,
    /// Read the lines from this file instead of stdin (with a progress bar
    /// on a terminal).
    #[arg(long, value_name = "FILE")]
    pub file: Option<PathBuf>,
}

/// `moldau consume ...`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  moldau consume orders --from-beginning --max-messages 10
  moldau consume orders --group billing --format '%k=%v (partition %p, offset %o)\\n'
  moldau consume orders --partition 0 --offset 42 --json --exit-at-end
  moldau consume orders --from-time 2026-01-01T00:00:00Z

Format fields (kcat-style): %v or %s value, %k key, %o offset, %p partition,
%t topic, %T timestamp (epoch ms), %h headers (k=v,...), %S value length,
%K key length, %% a percent sign; \\n, \\t and \\\\ escapes.")]
#[command(group(ArgGroup::new("start").args(["from_beginning", "offset", "from_time"])))]
pub struct ConsumeArgs {
    /// The topic.
    pub topic: String,
    /// Start at the earliest offset (with --group: where the group has no
    /// committed offset).
    #[arg(long)]
    pub from_beginning: bool,
    /// Start at this offset (needs --partition).
    #[arg(long, requires = "partition", conflicts_with = "group")]
    pub offset: Option<u64>,
    /// Start at the first record at or after this time: epoch milliseconds or
    /// RFC 3339 (2026-01-01T12:00:00Z).
    #[arg(long, value_name = "TIME", conflicts_with = "group")]
    pub from_time: Option<String>,
    /// Read only this partition.
    #[arg(long)]
    pub partition: Option<u32>,
    /// Consume as a member of this group, committing offsets as records are printed.
    #[arg(long)]
    pub group: Option<String>,
    /// Exit after printing this many records.
    #[arg(long, value_name = "N")]
    pub max_messages: Option<u64>,
    /// Exit once the end of every partition is reached, instead of following.
    #[arg(long)]
    pub exit_at_end: bool,
    /// Output format of each record (default: the value and a newline).
    #[arg(long, conflicts_with = "json")]
    pub format: Option<String>,
    /// Print one JSON object per record and line.
    #[arg(long)]
    pub json: bool,
}

/// `moldau groups ...`
#[derive(Debug, Subcommand)]
pub enum GroupsCommand {
    /// List the consumer groups.
    #[command(after_help = "Example:\n  moldau groups list")]
    List,
    /// A group's committed offsets, end offsets and lag per partition, and its members.
    #[command(after_help = "Example:\n  moldau groups describe billing")]
    Describe {
        /// The group.
        group: String,
    },
    /// Move a group's committed offsets (a dry run unless --execute).
    #[command(after_help = "Examples:
  moldau groups reset-offsets billing --topic orders --to-earliest
  moldau groups reset-offsets billing --topic orders --to-time 2026-01-01T00:00:00Z --execute")]
    #[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "to_time"])))]
    ResetOffsets {
        /// The group; it must have no active members.
        group: String,
        /// The topic whose offsets to reset.
        #[arg(long)]
        topic: String,
        /// Only this partition (default: all of the topic's partitions).
        #[arg(long)]
        partition: Option<u32>,
        /// To the log start offset.
        #[arg(long)]
        to_earliest: bool,
        /// To the log end offset.
        #[arg(long)]
        to_latest: bool,
        /// To this offset (clamped into each partition's range, as Kafka does).
        #[arg(long, value_name = "N")]
        to_offset: Option<u64>,
        /// To the first record at or after this time: epoch ms or RFC 3339.
        #[arg(long, value_name = "TIME")]
        to_time: Option<String>,
        /// Commit the new offsets (without it, only print them).
        #[arg(long)]
        execute: bool,
    },
}

/// `moldau dump ...`
#[derive(Debug, Args)]
#[command(after_help = "Examples:
  moldau dump moldau-data/orders-0/00000000000000000000.log --print-records
  moldau dump moldau-data/orders-0/00000000000000000000.index")]
pub struct DumpArgs {
    /// A segment's .log, .index or .timeindex file.
    pub path: PathBuf,
    /// Print each record of each batch (offset, timestamp, key, value, headers).
    #[arg(long)]
    pub print_records: bool,
}

/// `moldau serve ...`
#[derive(Debug, Args)]
#[command(after_help = "Example:
  moldau serve --listen 0.0.0.0:9092 --advertised kafka.example.com:9092

Logs go to stderr; MOLDAU_LOG (or RUST_LOG) sets the level (default info).
Stops cleanly on Ctrl-C or SIGTERM.")]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9092")]
    pub listen: SocketAddr,
    /// HOST:PORT clients are told to connect to (default: the listen address).
    #[arg(long, value_name = "HOST:PORT")]
    pub advertised: Option<String>,
    /// Partitions of topics created automatically or without a count.
    #[arg(long, default_value_t = 1)]
    pub default_partitions: u32,
}

/// `moldau bench ...`
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  moldau bench --records 2000000 --record-size 100")]
pub struct BenchArgs {
    /// Records to produce and then consume.
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Value size of each record, in bytes.
    #[arg(long, default_value_t = 100)]
    pub record_size: usize,
    /// Partitions of the benchmark topic.
    #[arg(long, default_value_t = 1)]
    pub partitions: u32,
}
