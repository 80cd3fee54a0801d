#!/usr/bin/env bash
# The layering rules of docs/architecture.md, checked by grep so they stay true:
# - only src/sys calls ptrace, waitpid, process_vm_* or opens /proc/PID/mem;
# - only src/inferior (and src/step, src/maps) use src/sys;
# - arch/ is pure: no libc, nix or std::process;
# - front-ends (src/gdb) never see ptrace or the inferior internals, only the Debugger facade;
# - every Rust module opens with a //! doc comment.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "layering: $*"; fail=1; }

hits=$(grep -rnE 'libc::(ptrace|waitpid|process_vm_readv|process_vm_writev)|nix::sys::(ptrace|wait)|/proc/\{?[a-z_]*\}?/mem' src --include=*.rs | grep -v '^src/sys/')
[ -n "$hits" ] && bad "kernel debugging interfaces outside src/sys:
$hits"

hits=$(grep -rnE 'crate::sys\b|xol::sys\b' src --include=*.rs | grep -vE '^src/(sys|inferior|step|maps)/' | grep -vE '^src/gdb/(mod|conn)\.rs:.*signals')
[ -n "$hits" ] && bad "src/sys used outside inferior/step/maps (front-ends may only use its signal plumbing):
$hits"

hits=$(grep -rnE '\b(libc|nix)::|std::process|std::fs' arch/src --include=*.rs | grep -vE ':[0-9]+:\s*//')
[ -n "$hits" ] && bad "arch/ must stay pure:
$hits"

hits=$(grep -rnE 'crate::inferior::(Inferior|events|breakpoints)|crate::sys::(ptrace|wait|mem|spawn)' src/gdb --include=*.rs)
[ -n "$hits" ] && bad "the gdb front-end must use the Debugger facade:
$hits"

for f in $(find src arch/src -name '*.rs'); do
  head -1 "$f" | grep -q '^//!' || bad "$f does not open with a //! module doc"
done
[ $fail = 0 ] && echo "layering: ok"
exit $fail
