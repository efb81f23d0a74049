//! The round trip: `topics create`, `produce` from stdin, `consume
//! --from-beginning --max-messages` as a group, and `groups describe`
//! showing the lag go to zero.
#![cfg(feature = "cli")]

mod cli_common;

use std::collections::BTreeSet;

use cli_common::{lag_rows, Moldau};

#[test]
fn produce_consume_and_lag_goes_to_zero() {
    let m = Moldau::new();
    m.run(&["topics", "create", "payments", "--partitions", "3"])
        .ok();
    let input: String = (0..20).map(|i| format!("user{i}:amount{i}\n")).collect();
    let out = m
        .run_with_input(
            &[
                "produce",
                "payments",
                "--key-separator",
                ":",
                "--header",
                "source=test",
            ],
            input.as_bytes(),
        )
        .ok();
    assert!(out.starts_with("Produced 20 records"), "{out}");

    // Half the records, as group "billing".
    let first = m
        .run(&[
            "consume",
            "payments",
            "--group",
            "billing",
            "--from-beginning",
            "--max-messages",
            "8",
            "--format",
            "%k=%v\\n",
        ])
        .ok();
    assert_eq!(first.lines().count(), 8, "{first}");
    let rows = lag_rows(&m.run(&["groups", "describe", "billing"]).ok());
    assert_eq!(rows.iter().map(|r| r.3).sum::<u64>(), 12, "{rows:?}");

    // The rest: the group resumes from its committed offsets.
    let rest = m
        .run(&[
            "consume",
            "payments",
            "--group",
            "billing",
            "--max-messages",
            "12",
            "--format",
            "%k=%v\\n",
        ])
        .ok();
    let seen: BTreeSet<&str> = first.lines().chain(rest.lines()).collect();
    let expected: BTreeSet<String> = (0..20).map(|i| format!("user{i}=amount{i}")).collect();
    assert_eq!(
        seen,
        expected.iter().map(String::as_str).collect::<BTreeSet<_>>(),
        "each record exactly once"
    );
    let describe = m.run(&["groups", "describe", "billing"]).ok();
    let rows = lag_rows(&describe);
    assert_eq!(rows.len(), 3, "{describe}");
    for (_, committed, end, lag) in rows {
        assert_eq!((committed, lag), (Some(end), 0), "{describe}");
    }
    assert!(describe.contains("Group billing is Empty"), "{describe}");
    assert_eq!(m.run(&["groups", "list"]).ok(), "billing\n");
}

#[test]
fn produce_with_partition_file_and_headers() {
    let m = Moldau::new();
    m.run(&["topics", "create", "t", "--partitions", "2"]).ok();
    let file = m.tmp.path().join("input.txt");
    std::fs::write(&file, "a\r\nb\n\nc").unwrap();
    let out = m
        .run(&[
            "produce",
            "t",
            "--partition",
            "1",
            "--file",
            file.to_str().unwrap(),
            "--header",
            "h=v",
        ])
        .ok();
    assert_eq!(
        out.trim(),
        "Produced 4 records (11 bytes) to t; records per partition: 1: 4"
    );
    let got = m
        .run(&[
            "consume",
            "t",
            "--partition",
            "1",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%p:%o:[%v]:%h\\n",
        ])
        .ok();
    assert_eq!(got, "1:0:[a]:h=v\n1:1:[b]:h=v\n1:2:[]:h=v\n1:3:[c]:h=v\n");

    // Errors: a line without the separator, an unknown partition or topic.
    let e = m
        .run_with_input(
            &["produce", "t", "--key-separator", ":", "--partition", "0"],
            b"k:v\nno separator\n",
        )
        .error();
    assert!(e.contains("line 2") && e.contains("separator"), "{e}");
    assert!(e.contains("the 1 records before it were produced"), "{e}");
    let got = m
        .run(&[
            "consume",
            "t",
            "--partition",
            "0",
            "--from-beginning",
            "--exit-at-end",
            "--format",
            "%k=%v\\n",
        ])
        .ok();
    assert_eq!(got, "k=v\n");
    let e = m
        .run_with_input(&["produce", "t", "--partition", "5"], b"x\n")
        .error();
    assert!(e.contains("unknown partition 5"), "{e}");
    let e = m.run_with_input(&["produce", "nope"], b"x\n").error();
    assert!(e.contains("unknown topic nope"), "{e}");
}
