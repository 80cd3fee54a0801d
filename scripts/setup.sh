#!/usr/bin/env bash
# Install what xol's tests and demo need on a fresh Debian/Ubuntu machine: gdb, gdbserver (the
# reference the tests compare against), gcc and binutils (fixtures are compiled at test time),
# lldb (a second client of xol's gdb server).
# Idempotent; needs root (or sudo) only when something is missing.
set -euo pipefail
need=()
command -v gdb >/dev/null 2>&1 || need+=(gdb)
command -v gdbserver >/dev/null 2>&1 || need+=(gdbserver)
command -v gcc >/dev/null 2>&1 || need+=(gcc libc6-dev)
command -v nm >/dev/null 2>&1 || need+=(binutils)
# lldb: the second real client of xol's gdb server (tests/lldb.rs).
command -v lldb >/dev/null 2>&1 || need+=(lldb)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" = 0 ] || SUDO="sudo"
  echo "setup: installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
if command -v rustup >/dev/null 2>&1; then
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true
fi
