//! `moldau consume`: start positions (--from-beginning, --offset,
//! --from-time), --json, following until Ctrl-C with the group's offsets
//! committed.
#![cfg(feature = "cli")]

mod cli_common;

use std::process::Stdio;
use std::time::Duration;

use cli_common::{lag_rows, lines, signal, wait_exit, wait_line, Moldau};

fn with_records(n: usize) -> Moldau {
    let m = Moldau::new();
    m.run(&["topics", "create", "t"]).ok();
    let input: String = (0..n).map(|i| format!("k{i}|v{i}\n")).collect();
    m.run_with_input(&["produce", "t", "--key-separator", "|"], input.as_bytes())
        .ok();
    m
}

#[test]
fn start_positions() {
    let m = with_records(5);
    let all = m
        .run(&["consume", "t", "--from-beginning", "--exit-at-end"])
        .ok();
    assert_eq!(all, "v0\nv1\nv2\nv3\nv4\n");
    let from3 = m
        .run(&[
            "consume",
            "t",
            "--partition",
            "0",
            "--offset",
            "3",
            "--exit-at-end",
            "--format",
            "%o %k %v\\n",
        ])
        .ok();
    assert_eq!(from3, "3 k3 v3\n4 k4 v4\n");
    // The default is the end, as Kafka's console consumer.
    assert_eq!(m.run(&["consume", "t", "--exit-at-end"]).ok(), "");
    // By time: epoch ms and RFC 3339.
    assert_eq!(
        m.run(&["consume", "t", "--from-time", "0", "--max-messages", "2"])
            .ok(),
        "v0\nv1\n"
    );
    let future = m
        .run(&[
            "consume",
            "t",
            "--from-time",
            "2999-01-01T00:00:00+01:00",
            "--exit-at-end",
        ])
        .ok();
    assert_eq!(future, "");
    let e = m.run(&["consume", "t", "--from-time", "yesterday"]).error();
    assert!(e.contains("RFC 3339"), "{e}");
    let e = m
        .run(&["consume", "t", "--partition", "0", "--offset", "9"])
        .error();
    assert!(e.contains("out of range"), "{e}");
    let e = m.run(&["consume", "t", "--format", "%q"]).error();
    assert!(e.contains("%q"), "{e}");
}

#[test]
fn json_lines() {
    let m = with_records(2);
    let out = m
        .run(&[
            "consume",
            "t",
            "--from-beginning",
            "--max-messages",
            "2",
            "--json",
        ])
        .ok();
    let values: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert_eq!(values.len(), 2);
    assert_eq!(values[1]["topic"], "t");
    assert_eq!(values[1]["partition"], 0);
    assert_eq!(values[1]["offset"], 1);
    assert_eq!(values[1]["key"], "k1");
    assert_eq!(values[1]["value"], "v1");
    assert!(values[1]["timestamp"].as_i64().unwrap() > 0);
}

#[test]
fn follows_until_interrupted_and_commits() {
    let m = with_records(3);
    let mut child = m
        .command(&["consume", "t", "--group", "tail", "--from-beginning"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn consume");
    let out = lines(child.stdout.take().unwrap());
    for want in ["v0", "v1", "v2"] {
        let got = wait_line(&out, Duration::from_secs(30), |_| true);
        assert_eq!(got.as_deref(), Some(want));
    }
    // Still following: nothing more, and no exit, until interrupted.
    assert!(child.try_wait().unwrap().is_none(), "consume should follow");
    signal(&child, "INT");
    let status = wait_exit(child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    let rows = lag_rows(&m.run(&["groups", "describe", "tail"]).ok());
    assert_eq!(rows, vec![(0, Some(3), 3, 0)]);
}
