//! Running the built `moldau` binary against a temporary data directory.
#![allow(
    dead_code,
    reason = "each CLI test file uses a different subset of these helpers"
)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_moldau");

/// A data directory and the commands run on it.
pub struct Moldau {
    pub tmp: tempfile::TempDir,
}

/// What a finished command printed, and how it exited.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(out: Output) -> Run {
        Run {
            // A signal death has no code; -1 never matches an expectation.
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "command failed: {self:?}");
        self.stdout
    }

    /// Asserts exit code 1 with a one-line `error: ...` on stderr (no panic,
    /// no backtrace), and returns that line.
    pub fn error(self) -> String {
        assert_eq!(self.code, 1, "expected exit code 1: {self:?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "expected one line on stderr: {self:?}");
        assert!(lines[0].starts_with("error: "), "{self:?}");
        assert!(!self.stderr.contains("panicked"), "{self:?}");
        lines[0].to_owned()
    }
}

impl Moldau {
    pub fn new() -> Moldau {
        Moldau {
            tmp: tempfile::tempdir().expect("temp dir"),
        }
    }

    /// The data directory (which the first writing command creates).
    pub fn data_dir(&self) -> PathBuf {
        self.tmp.path().join("data")
    }

    /// A command on this data directory (through MOLDAU_DATA_DIR, as a user
    /// would set it once).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(BIN);
        cmd.args(args)
            .env("MOLDAU_DATA_DIR", self.data_dir())
            .env_remove("RUST_BACKTRACE");
        cmd
    }

    /// Runs `args` with empty stdin.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_input(args, b"")
    }

    /// Runs `args` with `input` on stdin.
    pub fn run_with_input(&self, args: &[&str], input: &[u8]) -> Run {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moldau");
        let mut stdin = child.stdin.take().expect("piped stdin");
        let input = input.to_vec();
        // Written from a thread so a command that does not read its stdin
        // cannot block the test on a full pipe.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
        let out = child.wait_with_output().expect("wait for moldau");
        writer.join().expect("stdin writer");
        Run::from(out)
    }

    /// The path of a segment file of `topic-partition`.
    pub fn segment_file(&self, topic: &str, partition: u32, base: u64, ext: &str) -> PathBuf {
        self.data_dir()
            .join(format!("{topic}-{partition}"))
            .join(format!("{base:020}.{ext}"))
    }
}

/// Lines from a child's pipe, delivered through a channel so tests can wait
/// with a deadline.
pub fn lines(pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(l) = line else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    rx
}

/// Waits up to `timeout` for a line satisfying `pred`, returning it.
pub fn wait_line(
    rx: &mpsc::Receiver<String>,
    timeout: Duration,
    pred: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match rx.recv_timeout(left) {
            Ok(l) if pred(&l) => return Some(l),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
}

/// Sends `signal` (`"TERM"`, `"INT"`) to `child` with kill(1).
pub fn signal(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{signal} failed");
}

/// Waits up to `timeout` for `child` to exit (on a thread blocked in
/// `wait`, so no polling); kills it and fails otherwise.
pub fn wait_exit(mut child: Child, timeout: Duration) -> std::process::ExitStatus {
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(status) => status.expect("wait for moldau"),
        Err(_) => {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
            panic!("moldau did not exit within {timeout:?}");
        }
    }
}

/// Flips one byte of `path` at `position`.
pub fn flip_byte(path: &Path, position: u64) {
    use std::os::unix::fs::FileExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open for corruption");
    let mut b = [0u8; 1];
    f.read_exact_at(&mut b, position).expect("read byte");
    b[0] ^= 0xff;
    f.write_all_at(&b, position).expect("write byte");
}

/// The (partition, committed, end, lag) rows of `groups describe` output.
pub fn lag_rows(describe: &str) -> Vec<(u32, Option<u64>, u64, u64)> {
    describe
        .lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[2].parse().expect("partition"),
                f[3].parse().ok(),
                f[4].parse().expect("end offset"),
                f[5].parse().expect("lag"),
            )
        })
        .collect()
}
