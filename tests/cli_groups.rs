//! `moldau groups reset-offsets`: a dry run by default, --execute commits;
//! earliest, latest, offset (clamped), time.
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::{lag_rows, Moldau};

fn committed(m: &Moldau) -> Vec<Option<u64>> {
    lag_rows(&m.run(&["groups", "describe", "g"]).ok())
        .into_iter()
        .map(|r| r.1)
        .collect()
}

#[test]
fn reset_offsets() {
    let m = Moldau::new();
    m.run(&["topics", "create", "t", "--partitions", "2"]).ok();
    let input: String = (0..10).map(|i| format!("{i}\n")).collect();
    m.run_with_input(&["produce", "t", "--partition", "0"], input.as_bytes())
        .ok();
    m.run_with_input(&["produce", "t", "--partition", "1"], b"a\nb\n")
        .ok();
    m.run(&[
        "consume",
        "t",
        "--group",
        "g",
        "--from-beginning",
        "--max-messages",
        "12",
    ])
    .ok();
    assert_eq!(committed(&m), [Some(10), Some(2)]);

    // Dry run: printed, not committed.
    let out = m
        .run(&[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--to-earliest",
        ])
        .ok();
    assert!(out.contains("Dry run"), "{out}");
    assert_eq!(committed(&m), [Some(10), Some(2)]);

    m.run(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-earliest",
        "--execute",
    ])
    .ok();
    assert_eq!(committed(&m), [Some(0), Some(0)]);
    // One partition; an offset past the end is clamped to it.
    let out = m
        .run(&[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "t",
            "--partition",
            "0",
            "--to-offset",
            "99",
            "--execute",
        ])
        .ok();
    assert!(out.contains("Offsets committed"), "{out}");
    assert_eq!(committed(&m), [Some(10), Some(0)]);
    m.run(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-latest",
        "--execute",
    ])
    .ok();
    assert_eq!(committed(&m), [Some(10), Some(2)]);
    // By time: the epoch is before everything, a future time is the end.
    m.run(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-time",
        "0",
        "--execute",
    ])
    .ok();
    assert_eq!(committed(&m), [Some(0), Some(0)]);
    m.run(&[
        "groups",
        "reset-offsets",
        "g",
        "--topic",
        "t",
        "--to-time",
        "2999-01-01T00:00:00Z",
        "--execute",
    ])
    .ok();
    assert_eq!(committed(&m), [Some(10), Some(2)]);

    // A target is required (usage error); a group or topic must exist.
    assert_eq!(
        m.run(&["groups", "reset-offsets", "g", "--topic", "t"])
            .code,
        2
    );
    let e = m
        .run(&[
            "groups",
            "reset-offsets",
            "g",
            "--topic",
            "nope",
            "--to-latest",
        ])
        .error();
    assert!(e.contains("unknown topic nope"), "{e}");
    let e = m.run(&["groups", "describe", "nobody"]).error();
    assert!(e.contains("does not exist"), "{e}");
}
