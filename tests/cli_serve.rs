//! `moldau serve` runs the broker and stops cleanly on SIGTERM; while it (or
//! an application) holds the data directory, data commands say so.
#![cfg(feature = "cli")]

mod cli_common;

use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use cli_common::{lines, signal, wait_exit, wait_line, Moldau};
use moldau::{Log, LogConfig};

#[test]
fn serve_holds_the_dir_and_stops_on_sigterm() {
    let m = Moldau::new();
    m.run(&["topics", "create", "t"]).ok();
    let mut child = m
        .command(&["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn serve");
    let err = lines(child.stderr.take().unwrap());
    let line = wait_line(&err, Duration::from_secs(30), |l| {
        l.contains("listening on")
    })
    .expect("serve logs its address");
    let addr = line
        .split("listening on ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .expect("address");
    TcpStream::connect(addr).expect("the broker accepts connections");

    let e = m.run_with_input(&["produce", "t"], b"x\n").error();
    assert!(
        e.contains("in use by another process") && e.contains("Kafka client"),
        "{e}"
    );

    signal(&child, "TERM");
    let status = wait_exit(child, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    assert!(
        wait_line(&err, Duration::from_secs(5), |l| l.contains("stopped")).is_some(),
        "serve logs its stop"
    );
    // The lock is released.
    assert_eq!(m.run(&["topics", "list"]).ok(), "t\n");
}

#[test]
fn data_commands_say_when_an_application_holds_the_dir() {
    let m = Moldau::new();
    m.run(&["topics", "create", "t"]).ok();
    let log = Log::open(m.data_dir(), LogConfig::default()).unwrap();
    for cmd in [
        &["topics", "list"][..],
        &["topics", "create", "u"],
        &["consume", "t", "--exit-at-end"],
        &["groups", "list"],
    ] {
        let e = m.run(cmd).error();
        assert!(e.contains("is in use by another process"), "{cmd:?}: {e}");
    }
    log.close().unwrap();
    m.run(&["groups", "list"]).ok();
}

#[test]
fn bench_and_completions() {
    let m = Moldau::new();
    let out = m
        .run(&[
            "bench",
            "--records",
            "20000",
            "--record-size",
            "64",
            "--partitions",
            "2",
        ])
        .ok();
    for what in ["produce:", "consume:"] {
        let line = out.lines().find(|l| l.starts_with(what)).expect(what);
        assert!(line.contains("records/s") && line.contains("MB/s"), "{out}");
    }
    for shell in ["bash", "zsh", "fish"] {
        let script = m.run(&["completions", shell]).ok();
        assert!(
            script.contains("moldau") && script.contains("reset-offsets"),
            "{shell}"
        );
    }
}
