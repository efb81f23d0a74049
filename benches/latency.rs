//! End-to-end latency of one event, in one run: the time from `send`
//! returning in one thread to a consumer blocked in another thread holding
//! the record, for moldau (`Producer::send` to a 1-partition topic,
//! `Consumer::poll` with a timeout) beside a `crossbeam-channel` (the
//! in-memory ceiling: `Sender::send`, a blocked `Receiver::recv`).
//!
//! Each engine carries the same 100-byte `Bytes` value. Events go one at a
//! time: the producer waits until the consumer has the previous one, then
//! pauses (`GAP`) so the consumer is asleep again, then sends. A receipt
//! that lands before the sender has read the clock after its `send` (the
//! consumer can wake while `send` is still returning) counts as 0. The
//! program also reports the time from just before `send` was called.
//!
//! `cargo bench --bench latency` (default 100,000 events per engine, after
//! 1,000 unrecorded ones; `MOLDAU_LATENCY_EVENTS=N`); writes
//! `docs/bench-latency.svg`. `-- --test` (what `.ci/run` passes) runs 2,000
//! events and writes no chart.

use bytes::Bytes;
use shared_latency::{channel_run, latencies, moldau_run, percentile, GAP, PERCENTILES, WARMUP};

#[path = "shared/chart.rs"]
mod chart;

#[path = "shared/latency.rs"]
mod shared_latency;

const VALUE_BYTES: usize = 100;

fn us(ns: u64) -> f64 {
    ns as f64 / 1000.0
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --all-targets`)
    // or with `--test`, a short smoke run.
    let args: Vec<String> = std::env::args().collect();
    let smoke = args.iter().any(|a| a == "--test") || !args.iter().any(|a| a == "--bench");
    let events: usize = match smoke {
        true => 1000,
        false => std::env::var("MOLDAU_LATENCY_EVENTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000),
    };
    let n = WARMUP + events;
    let value = Bytes::from(vec![0xa5u8; VALUE_BYTES]);
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");

    println!(
        "latency: {events} events of {VALUE_BYTES} B, one at a time, \
         consumer blocked at each send ({} µs pause)",
        GAP.as_micros()
    );
    // The channel first, then moldau, then the channel again: the best of
    // the two channel runs is the baseline, so a noisy moment cannot flatter
    // the ratio.
    let runs = [
        ("crossbeam-channel", channel_run(n, &value)),
        ("moldau", moldau_run(n, &value, dir.path())),
        ("crossbeam-channel (2nd)", channel_run(n, &value)),
    ];

    println!(
        "\n{:<26} {:<12} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}",
        "engine", "from", "p50 µs", "p90", "p99", "p99.9", "p99.99", "max"
    );
    let mut table = Vec::new();
    for (name, (sent, received)) in &runs {
        for (from, stamps) in [("send return", &sent.returned), ("send call", &sent.called)] {
            let l = latencies(stamps, received);
            let ps: Vec<u64> = PERCENTILES.iter().map(|&p| percentile(&l, p)).collect();
            print!("{name:<26} {from:<12}");
            for p in &ps {
                print!(" {:>9.1}", us(*p));
            }
            println!();
            table.push((*name, from, ps));
        }
    }

    let row = |name: &str, from: &str| {
        table
            .iter()
            .find(|(n, f, _)| *n == name && *f == from)
            .map(|(_, _, ps)| ps.clone())
            .expect("row")
    };
    // The chart and the first ratios: from `send` returning (the issue's
    // definition); the second: from the call (which includes `send` itself).
    let mut chart_rows = Vec::new();
    for from in ["send return", "send call"] {
        let m = row("moldau", from);
        let (c1, c2) = (
            row("crossbeam-channel", from),
            row("crossbeam-channel (2nd)", from),
        );
        let best: Vec<u64> = c1.iter().zip(&c2).map(|(a, b)| *a.min(b)).collect();
        println!(
            "\nratios from {from}, moldau / crossbeam-channel (best of its two runs, per percentile):"
        );
        let targets = [Some(2.0), None, Some(3.0), None, None];
        for (i, target) in targets.iter().enumerate() {
            let label = format!("p{}", PERCENTILES[i]);
            let r = m[i] as f64 / best[i].max(1) as f64;
            match target {
                Some(t) => println!(
                    "  {label:<7} {r:>7.3}  (target <= {t:.1}: {})",
                    if r <= *t { "met" } else { "MISSED" }
                ),
                None => println!("  {label:<7} {r:>7.3}"),
            }
        }
        chart_rows.push((format!("moldau, from {from}"), m));
        chart_rows.push((format!("crossbeam-channel, from {from}"), best));
    }

    if !smoke {
        // A log axis has no 0: a receipt before `send` returned is drawn
        // at 0.1 µs.
        let series = chart_rows
            .iter()
            .map(|(name, ps)| chart::Series {
                name: name.clone(),
                points: PERCENTILES
                    .iter()
                    .zip(ps.iter())
                    .take(5)
                    .map(|(p, ns)| (100.0 / (100.0 - p), us(*ns).max(0.1)))
                    .collect(),
            })
            .collect::<Vec<_>>();
        let path = chart::docs_path("bench-latency.svg");
        chart::line_chart(
            &path,
            &chart::Chart {
                title: "send to a blocked consumer holding the event (100 B values)",
                x_label: "percentile: 2 = p50, 10 = p90, 100 = p99, 1k = p99.9, 10k = p99.99",
                y_label: "latency (µs)",
                x_log: true,
                y_log: true,
            },
            &series,
        )
        .expect("write chart");
        println!("\nchart: {}", path.display());
    }
}
