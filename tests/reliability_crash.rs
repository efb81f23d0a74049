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

use common::workload::{self, Rng, POLICIES};

#[test]
fn crash_child() {
    workload::child(|| {}, true);
}

#[test]
fn acknowledged_work_survives_sigkill_at_random_moments() {
    let base = workload::base_seed();
    let trials = workload::trials(200);
    let started = std::time::Instant::now();
    let (mut acked_total, mut commits_total) = (0, 0);
    let (mut deleted_total, mut compacted_total) = (0, 0);
    for trial in 0..trials {
        let seed = base + trial;
        let what = format!("trial {trial} (MOLDAU_CRASH_SEED={seed} MOLDAU_CRASH_TRIALS=1)");
        let policy_index = seed % POLICIES.len() as u64;
        let dir = tempfile::tempdir().unwrap();
        let mut rng = Rng(seed);
        let acks = workload::crash_trial(dir.path(), seed, policy_index, &mut rng, &what);
        acked_total += acks.records.values().map(|n| n + 1).sum::<u64>();
        commits_total += acks.committed.len();
        deleted_total += acks.segments_deleted;
        compacted_total += acks.partitions_compacted;
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
         {commits_total} committed offsets checked; the children's maintenance \
         deleted {deleted_total} segments and compacted {compacted_total} partitions; in {:?}",
        started.elapsed()
    );
    assert!(
        acked_total > trials,
        "the children acknowledged too little to test anything"
    );
}
