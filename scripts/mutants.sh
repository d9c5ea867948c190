#!/usr/bin/env bash
# Mutation testing of the engine (crates/breakerbox) with cargo-mutants. Not part of CI: a full
# run rebuilds the engine and its tests once per mutant (about a thousand).
#
#   scripts/mutants.sh                      # every mutant of the engine
#   scripts/mutants.sh --list | wc -l       # how many there are
#   scripts/mutants.sh -f crates/breakerbox/src/backoff.rs     # one file
#   scripts/mutants.sh --shard 1/4          # a quarter (k/n, k from 0)
#   scripts/mutants.sh --iterate            # only what was missed or not yet tested last time
#
# Extra arguments go to cargo-mutants. Results land in $MUTANTS_OUTPUT/mutants.out (default
# target/mutants; caught.txt, missed.txt, timeout.txt, unviable.txt, outcomes.json). The machine is shared: it runs at the
# lowest priority, one mutant at a time (MUTANTS_JOBS=2 for two), with nextest and the cheap `mutants` build profile
# (root Cargo.toml). The property tests run PROPTEST_CASES cases each (100 unless set): enough
# to catch a broken rule, much faster than CI's thousands.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo-mutants >/dev/null 2>&1; then
    cargo install --locked cargo-mutants
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
    cargo install --locked cargo-nextest
fi

export PROPTEST_CASES="${PROPTEST_CASES:-100}"
# .config/nextest.toml: stop at the first failing test, end a test stuck past 30 s.
export NEXTEST_PROFILE=mutants
output="${MUTANTS_OUTPUT:-target/mutants}"
mkdir -p "$output"
export CARGO_TERM_COLOR=never

exec nice -n 19 cargo mutants \
    --package breakerbox \
    --test-tool nextest \
    --profile mutants \
    --jobs "${MUTANTS_JOBS:-1}" \
    --timeout 60 \
    --build-timeout 600 \
    --output "$output" \
    "$@"
