#!/usr/bin/env bash
# xol's main job on a bundled example: real gdb debugs the `loop` fixture through xol, exactly as
# it would through gdbserver: breakpoints, backtrace, registers, memory, stepping, exit code.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/setup.sh
cargo build --release --bins
# Where cargo put the binaries (CARGO_TARGET_DIR moves them).
xol="${CARGO_TARGET_DIR:-target}/release/xol"
out=target/demo
mkdir -p "$out"
gcc -g -O0 -o "$out/loop" fixtures/loop.c
echo "== gdb -> xol serve --stdio -> fixtures/loop.c (args: 3 7)"
gdb -nx -batch \
  -ex 'set pagination off' -ex 'set confirm off' \
  -ex "target remote | $xol serve --stdio -- $out/loop 3 7" \
  -ex 'break probe_site' \
  -ex 'continue' -ex 'bt' -ex 'info registers rip rsp fs_base' \
  -ex 'p g_counter' -ex 'x/2i $pc' \
  -ex 'next' -ex 'continue' -ex 'finish' \
  -ex 'delete' -ex 'continue' \
  "$out/loop"
gcc -g -O0 -pthread -o "$out/countthreads" fixtures/countthreads.c
echo
echo "== displaced stepping: a counting probe on counted(), called 20000 times by each of 4 threads"
gdb -nx -batch \
  -ex 'set pagination off' -ex 'set confirm off' \
  -ex "target remote | $xol serve --stdio -- $out/countthreads 20000 4" \
  -ex 'monitor count counted' \
  -ex 'break after_threads' -ex 'continue' \
  -ex 'monitor probes' -ex 'monitor stats' \
  -ex 'continue' \
  "$out/countthreads"
