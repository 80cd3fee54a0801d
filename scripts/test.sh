#!/usr/bin/env bash
# Set up a fresh machine and run all of xol's tests (unit, packet-level and real-gdb end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
# setup.sh installed GNU gdbserver: a test whose reference part would skip without it fails.
export XOL_TEST_REQUIRE_GDBSERVER=1
cargo build --workspace --all-targets
# Tests spawn gdb, gdbserver and inferiors; two at a time fits a 2-core machine.
# --no-fail-fast: a failing test binary does not hide the results of the others; cargo still
# exits non-zero (and so does this script, set -e) if any test failed.
cargo test --workspace --no-fail-fast -- --test-threads="${XOL_TEST_THREADS:-2}"
