#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) and fails on any crash.
#
#   fuzz/run.sh          # CI: about a minute per target
#   fuzz/run.sh 3600     # an hour per target
#
# cargo-fuzz drives libFuzzer with AddressSanitizer; both need unstable
# compiler flags, which RUSTC_BOOTSTRAP=1 allows on the stable toolchain.
# The committed seeds (fuzz/corpus/<target>) are read, never written: new
# inputs go to a scratch corpus, and a crash leaves its input in
# fuzz/artifacts/<target>/ to be turned into a regression test.
set -euo pipefail
cd "$(dirname "$0")"
seconds="${1:-60}"
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
cargo fuzz build -O
scratch="$(mktemp -d)"
# Partition directories the targets write; in memory where possible.
files="$(mktemp -d -p "$([ -d /dev/shm ] && echo /dev/shm || echo "${TMPDIR:-/tmp}")")"
export MOLDAU_FUZZ_SCRATCH="$files"
trap 'rm -rf "$scratch" "$files"' EXIT
for target in $(cargo fuzz list); do
    mkdir -p "$scratch/$target"
    echo "fuzzing $target for ${seconds}s"
    if ! cargo fuzz run -O "$target" "$scratch/$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        >"$scratch/$target.log" 2>&1; then
        tail -n 60 "$scratch/$target.log"
        echo "fuzz target $target failed: the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
    grep -E '^stat::(number_of_executed_units|new_units_added)' "$scratch/$target.log"
done
