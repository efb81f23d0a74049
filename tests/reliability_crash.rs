//! Reliability suite 1, process crash: a child process produces (single
//! records and batches, two writers, five partitions, segment rolls every few
//! dozen records) and commits group offsets until it is killed with SIGKILL
//! at a random moment; the reopened log must hold every acknowledged record
//! and commit, each partition a gap-free, in-order prefix of what was sent.
//!
//! A process crash keeps the page cache, so under every flush policy every
//! acknowledged record must survive (the policies differ only under power
//! loss: `reliability_power_loss.rs`). `MOLDAU_CRASH_TRIALS=N` runs N trials
//! (default 200); `MOLDAU_CRASH_SEED=S` replays from seed S (printed on
//! failure).

mod common;

use std::os::unix::process::ExitStatusExt;

use common::workload::{self, Acks, Rng, POLICIES};

#[test]
fn crash_child() {
    workload::child(|| {});
}

#[test]
fn acknowledged_work_survives_sigkill_at_random_moments() {
    let base = workload::base_seed();
    let trials = workload::trials(200);
    let started = std::time::Instant::now();
    let (mut acked_total, mut commits_total) = (0, 0);
    for trial in 0..trials {
        let seed = base + trial;
        let what = format!("trial {trial} (MOLDAU_CRASH_SEED={seed} MOLDAU_CRASH_TRIALS=1)");
        let policy_index = seed % POLICIES.len() as u64;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        // Mostly early kills (open, topic creation, first rolls), some late.
        let kill_after = match rng.below(4) {
            0 => rng.below(4),
            _ => rng.below(120),
        };
        let child = workload::spawn(dir.path(), seed, policy_index);
        let mut acks = Acks::default();
        let mut seen = 0;
        let status = workload::run_until_killed(child, &mut acks, |_| {
            seen += 1;
            seen > kill_after
        });
        assert_eq!(
            status.signal(),
            Some(9),
            "{what}: the child died on its own"
        );
        acked_total += acks.records.values().map(|n| n + 1).sum::<u64>();
        commits_total += acks.committed.len();
        workload::check(
            dir.path(),
            seed,
            POLICIES[policy_index as usize],
            &acks,
            true,
            &what,
        );
    }
    eprintln!(
        "{trials} crash trials, {acked_total} acknowledged records and \
         {commits_total} committed offsets checked, in {:?}",
        started.elapsed()
    );
    assert!(
        acked_total > trials,
        "the children acknowledged too little to test anything"
    );
}
