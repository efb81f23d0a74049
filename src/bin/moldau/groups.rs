//! `moldau groups`: list, describe (lag per partition, members), and
//! reset-offsets (kafka-consumer-groups.sh).

use std::io::Write;
use std::path::Path;

use moldau::{Log, Offset, OffsetAndMetadata, TopicName, TopicPartition};

use crate::cli::GroupsCommand;
use crate::error::{self, CliError};

pub fn run(dir: &Path, cmd: GroupsCommand) -> Result<(), CliError> {
    let log = error::open_existing(dir)?;
    let result = match cmd {
        GroupsCommand::List => {
            let mut text = String::new();
            for g in log.list_groups() {
                text.push_str(&g);
                text.push('\n');
            }
            Ok(text)
        }
        GroupsCommand::Describe { group } => describe(&log, &group),
        GroupsCommand::ResetOffsets {
            group,
            topic,
            partition,
            to_earliest,
            to_latest,
            to_offset,
            to_time,
            execute,
        } => {
            let target = match (to_earliest, to_latest, to_offset, to_time) {
                (true, ..) => Target::Earliest,
                (_, true, ..) => Target::Latest,
                (_, _, Some(n), _) => Target::Offset(Offset(n)),
                (_, _, _, Some(t)) => Target::Time(crate::time::parse("--to-time", &t)?),
                // clap requires one of the four.
                _ => return Err(CliError::Message("no reset target given".into())),
            };
            reset(&log, &group, &topic, partition, target, execute)
        }
    };
    error::close(log)?;
    std::io::stdout()
        .write_all(result?.as_bytes())
        .map_err(error::output)
}

/// Kafka's table: one line per partition, then the members.
fn describe(log: &Log, group: &str) -> Result<String, CliError> {
    let d = log.describe_group(group)?;
    if d.offsets.is_empty() && d.members.is_empty() {
        return Err(CliError::Message(format!(
            "consumer group {group} does not exist (no members, no committed offsets)"
        )));
    }
    let owner = |tp: &TopicPartition| {
        d.members
            .iter()
            .find(|m| m.assignment.contains(tp))
            .map_or("-", |m| m.member_id.as_str())
    };
    let mut rows = vec![[
        "GROUP".to_owned(),
        "TOPIC".into(),
        "PARTITION".into(),
        "CURRENT-OFFSET".into(),
        "LOG-END-OFFSET".into(),
        "LAG".into(),
        "CONSUMER-ID".into(),
    ]];
    for l in &d.offsets {
        rows.push([
            group.to_owned(),
            l.partition.topic.to_string(),
            l.partition.partition.to_string(),
            l.committed
                .as_ref()
                .map_or("-".into(), |c| c.offset.to_string()),
            l.end_offset.to_string(),
            l.lag.to_string(),
            owner(&l.partition).to_owned(),
        ]);
    }
    let mut text = table(&rows);
    let state = if d.members.is_empty() {
        "Empty"
    } else {
        "Stable"
    };
    text.push_str(&format!(
        "\nGroup {group} is {state}: {} member(s), generation {}\n",
        d.members.len(),
        d.generation
    ));
    for m in &d.members {
        let parts: Vec<String> = m.assignment.iter().map(|tp| tp.to_string()).collect();
        text.push_str(&format!("  {}: {}\n", m.member_id, parts.join(", ")));
    }
    Ok(text)
}

/// Where `reset-offsets` moves each partition.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(Offset),
    Time(moldau::Timestamp),
}

fn reset(
    log: &Log,
    group: &str,
    topic: &str,
    partition: Option<u32>,
    target: Target,
    execute: bool,
) -> Result<String, CliError> {
    let d = log.describe_group(group)?;
    if !d.members.is_empty() {
        return Err(CliError::Message(format!(
            "offsets of group {group} can only be reset while it is inactive, but it has {} \
             active member(s); stop its consumers first",
            d.members.len()
        )));
    }
    let t = log.describe_topic(topic)?;
    let name = TopicName::new(topic)?;
    let parts: Vec<_> = match partition {
        Some(p) => {
            let found = t.partitions.iter().find(|d| d.partition.0 == p);
            vec![*found.ok_or(moldau::Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: p,
                partitions: t.partitions.len() as u32,
            })?]
        }
        None => t.partitions.clone(),
    };
    let mut offsets = Vec::with_capacity(parts.len());
    for p in &parts {
        let tp = TopicPartition::new(name.clone(), p.partition);
        let offset = match target {
            Target::Earliest => p.start_offset,
            Target::Latest => p.end_offset,
            // Kafka clamps an out-of-range target into the partition's range.
            Target::Offset(o) => Offset(o.0.clamp(p.start_offset.0, p.end_offset.0)),
            Target::Time(ts) => log.offset_for_timestamp(&tp, ts)?.unwrap_or(p.end_offset),
        };
        offsets.push((tp, OffsetAndMetadata::new(offset)));
    }
    let mut rows = vec![[
        "GROUP".to_owned(),
        "TOPIC".into(),
        "PARTITION".into(),
        "NEW-OFFSET".into(),
    ]];
    for (tp, o) in &offsets {
        rows.push([
            group.to_owned(),
            tp.topic.to_string(),
            tp.partition.to_string(),
            o.offset.to_string(),
        ]);
    }
    let mut text = table(&rows);
    if execute {
        log.commit_group_offsets(group, &offsets)?;
        text.push_str("\nOffsets committed.\n");
    } else {
        text.push_str("\nDry run: nothing committed. Add --execute to commit these offsets.\n");
    }
    Ok(text)
}

/// Left-aligned columns separated by two spaces.
fn table<const N: usize>(rows: &[[String; N]]) -> String {
    let mut widths = [0usize; N];
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}
