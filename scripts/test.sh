#!/usr/bin/env bash
# Set up a fresh machine and run all of xol's tests (unit, packet-level and real-gdb end-to-end).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --workspace --all-targets
# Tests spawn gdb, gdbserver and inferiors; two at a time fits a 2-core machine.
cargo test --workspace -- --test-threads="${XOL_TEST_THREADS:-2}"
