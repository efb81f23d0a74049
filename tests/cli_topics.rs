//! `moldau topics`: create, list, describe, alter, delete, and the errors a
//! user can make (bad name, unknown config key, bad value, usage).
#![cfg(feature = "cli")]

mod cli_common;

use cli_common::Moldau;

#[test]
fn create_list_describe_alter_delete() {
    let m = Moldau::new();
    let out = m
        .run(&[
            "topics",
            "create",
            "orders",
            "--partitions",
            "2",
            "--config",
            "retention.ms=60000",
            "--config",
            "cleanup.policy=compact,delete",
        ])
        .ok();
    assert_eq!(out, "Created topic orders.\n");
    m.run(&["topics", "create", "audit"]).ok();
    assert_eq!(m.run(&["topics", "list"]).ok(), "audit\norders\n");

    let d = m.run(&["topics", "describe", "orders"]).ok();
    let lines: Vec<&str> = d.lines().collect();
    assert_eq!(lines.len(), 3, "{d}");
    assert!(
        lines[0].starts_with("Topic: orders\tPartitionCount: 2"),
        "{d}"
    );
    // Overrides only, under Kafka's names.
    assert!(
        lines[0].ends_with("Configs: cleanup.policy=compact,delete,retention.ms=60000"),
        "{d}"
    );
    assert!(
        lines[1].contains("Partition: 0\tStartOffset: 0\tEndOffset: 0\tSegments: 1\tSize: 0"),
        "{d}"
    );
    let all = m
        .run(&["topics", "describe", "orders", "--all-configs"])
        .ok();
    for key in moldau::KAFKA_TOPIC_CONFIG_KEYS {
        assert!(all.contains(&format!("{key}=")), "{key} missing: {all}");
    }
    // Without a name: every topic.
    let every = m.run(&["topics", "describe"]).ok();
    assert!(
        every.contains("Topic: audit") && every.contains("Topic: orders"),
        "{every}"
    );

    let out = m
        .run(&[
            "topics",
            "alter",
            "orders",
            "--partitions",
            "3",
            "--config",
            "retention.bytes=1048576",
        ])
        .ok();
    assert!(out.contains("partitions 2 -> 3"), "{out}");
    let d = m.run(&["topics", "describe", "orders"]).ok();
    assert!(
        d.contains("PartitionCount: 3") && d.contains("retention.bytes=1048576"),
        "{d}"
    );
    assert!(
        d.contains("retention.ms=60000"),
        "alter keeps other settings: {d}"
    );

    assert_eq!(
        m.run(&["topics", "delete", "audit"]).ok(),
        "Deleted topic audit.\n"
    );
    assert_eq!(m.run(&["topics", "list"]).ok(), "orders\n");
}

#[test]
fn bad_topic_name_is_a_one_line_error() {
    let m = Moldau::new();
    let e = m.run(&["topics", "create", "no spaces"]).error();
    assert!(e.contains("invalid topic name \"no spaces\""), "{e}");
    let e = m.run(&["topics", "create", "__consumer_offsets"]).error();
    assert!(e.contains("internal"), "{e}");
    let e = m.run(&["topics", "describe", "missing"]).error();
    assert!(e.contains("unknown topic missing"), "{e}");
}

#[test]
fn unknown_config_key_or_bad_value_names_the_key_and_form() {
    let m = Moldau::new();
    let e = m
        .run(&["topics", "create", "t", "--config", "retention.mss=1"])
        .error();
    assert!(
        e.contains("\"retention.mss\"") && e.contains("retention.ms,"),
        "{e}"
    );
    let e = m
        .run(&["topics", "create", "t", "--config", "retention.ms=soon"])
        .error();
    assert!(
        e.contains("retention.ms") && e.contains("-1 for no limit"),
        "{e}"
    );
    let e = m
        .run(&["topics", "create", "t", "--config", "retention.ms"])
        .error();
    assert!(e.contains("KEY=VALUE"), "{e}");
    // Checked before the data directory is even created.
    assert!(!m.data_dir().exists());

    // A bad key in an alter changes nothing, partitions included.
    m.run(&["topics", "create", "t"]).ok();
    let e = m
        .run(&[
            "topics",
            "alter",
            "t",
            "--partitions",
            "4",
            "--config",
            "nope=1",
        ])
        .error();
    assert!(e.contains("\"nope\""), "{e}");
    let d = m.run(&["topics", "describe", "t"]).ok();
    assert!(d.contains("PartitionCount: 1"), "{d}");
}

#[test]
fn usage_errors_exit_2_and_help_has_examples() {
    let m = Moldau::new();
    let r = m.run(&["topics", "create"]);
    assert_eq!(r.code, 2, "{r:?}");
    let r = m.run(&["topics", "alter", "t"]);
    assert_eq!(r.code, 2, "alter needs --partitions or --config: {r:?}");
    let r = m.run(&["frobnicate"]);
    assert_eq!(r.code, 2, "{r:?}");
    for cmd in [
        &["--help"][..],
        &["topics", "--help"],
        &["topics", "create", "--help"],
        &["topics", "list", "--help"],
        &["topics", "describe", "--help"],
        &["topics", "delete", "--help"],
        &["topics", "alter", "--help"],
        &["groups", "--help"],
        &["groups", "list", "--help"],
        &["completions", "--help"],
        &["produce", "--help"],
        &["consume", "--help"],
        &["groups", "describe", "--help"],
        &["groups", "reset-offsets", "--help"],
        &["dump", "--help"],
        &["serve", "--help"],
        &["bench", "--help"],
    ] {
        let help = m.run(cmd).ok();
        assert!(help.contains("Example"), "{cmd:?}: {help}");
    }
}

#[test]
fn read_commands_do_not_create_a_missing_data_dir() {
    let m = Moldau::new();
    let e = m.run(&["topics", "list"]).error();
    assert!(e.contains("no data directory"), "{e}");
    assert!(!m.data_dir().exists());
}
