//! `moldau topics`: create, list, describe, delete, alter (kafka-topics.sh).

use std::io::Write;
use std::path::Path;

use moldau::{Log, TopicConfig, TopicDescription};

use crate::cli::TopicsCommand;
use crate::error::{self, CliError};

pub fn run(dir: &Path, cmd: TopicsCommand) -> Result<(), CliError> {
    match cmd {
        TopicsCommand::Create {
            name,
            partitions,
            configs,
        } => {
            // Checked before the data directory is opened (or created).
            let mut config = moldau::LogConfig::default().topic_defaults;
            apply_configs(&mut config, &configs)?;
            moldau::TopicName::new(&name)?;
            let log = error::open_or_create(dir)?;
            log.create_topic(&name, partitions, Some(config))?;
            error::close(log)?;
            error::say(&format!("Created topic {name}."))?;
        }
        TopicsCommand::List => {
            let log = error::open_existing(dir)?;
            let mut out = std::io::stdout().lock();
            for name in log.list_topics() {
                writeln!(out, "{name}").map_err(error::output)?;
            }
            error::close(log)?;
        }
        TopicsCommand::Describe { name, all_configs } => {
            let log = error::open_existing(dir)?;
            let names = match name {
                Some(n) => vec![n],
                None => log.list_topics().iter().map(|n| n.to_string()).collect(),
            };
            let mut text = String::new();
            for name in names {
                describe(&mut text, &log.describe_topic(&name)?, all_configs);
            }
            error::close(log)?;
            std::io::stdout()
                .write_all(text.as_bytes())
                .map_err(error::output)?;
        }
        TopicsCommand::Delete { name } => {
            let log = error::open_existing(dir)?;
            log.delete_topic(&name)?;
            error::close(log)?;
            error::say(&format!("Deleted topic {name}."))?;
        }
        TopicsCommand::Alter {
            name,
            partitions,
            configs,
        } => {
            let log = error::open_existing(dir)?;
            alter(&log, &name, partitions, &configs)?;
            error::close(log)?;
        }
    }
    Ok(())
}

/// Sets each `KEY=VALUE` on `config` through the library's Kafka mapping
/// (which names the key and the accepted form on error), then validates.
fn apply_configs(config: &mut TopicConfig, configs: &[String]) -> Result<(), CliError> {
    for kv in configs {
        let (key, value) = error::key_value("--config", kv)?;
        config.set_kafka(key.trim(), value)?;
    }
    config.validate()?;
    Ok(())
}

fn alter(
    log: &Log,
    name: &str,
    partitions: Option<u32>,
    configs: &[String],
) -> Result<(), CliError> {
    let current = log.describe_topic(name)?;
    // Check the config before growing anything, so a bad key changes nothing.
    let mut config = current.config.clone();
    apply_configs(&mut config, configs)?;
    if let Some(n) = partitions {
        let had = current.partitions.len();
        log.add_partitions(name, n)?;
        error::say(&format!("Topic {name}: partitions {had} -> {n}."))?;
    }
    if !configs.is_empty() {
        log.alter_topic_config(name, config)?;
        error::say(&format!(
            "Topic {name}: config updated ({}).",
            configs.join(", ")
        ))?;
    }
    Ok(())
}

/// Kafka-style description: a topic line, then one line per partition.
fn describe(out: &mut String, t: &TopicDescription, all_configs: bool) {
    use std::fmt::Write as _;
    let defaults = TopicConfig::default().kafka_entries();
    let configs: Vec<String> = t
        .config
        .kafka_entries()
        .into_iter()
        .filter(|e| all_configs || !defaults.contains(e))
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    let size: u64 = t.partitions.iter().map(|p| p.size_bytes).sum();
    // Writing to a String cannot fail.
    let _ = writeln!(
        out,
        "Topic: {}\tPartitionCount: {}\tSize: {}\tConfigs: {}",
        t.name,
        t.partitions.len(),
        size,
        configs.join(",")
    );
    for p in &t.partitions {
        let _ = writeln!(
            out,
            "\tTopic: {}\tPartition: {}\tStartOffset: {}\tEndOffset: {}\tSegments: {}\tSize: {}",
            t.name, p.partition, p.start_offset, p.end_offset, p.segments, p.size_bytes
        );
    }
}
