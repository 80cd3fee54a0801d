#!/usr/bin/env bash
# The layering rules of docs/architecture.md, checked by grep so they stay true:
# - only src/sys calls ptrace, waitpid, process_vm_* or opens /proc/PID/mem;
# - only src/inferior (and src/maps) use src/sys;
# - arch/ is pure: no libc, nix or std::process;
# - src/rsp (the remote protocol layer) is pure too, and uses nothing of xol but crate::types;
# - src/agent (the agent-expression evaluator) is pure the same way, and uses nothing of xol but
#   crate::types;
# - front-ends (src/front/**) use only the session API (src/debugger.rs), the identity types,
#   the pure file readers (src/symbols) and xol-arch: never inferior, sys, step, probe, maps;
# - the core never names a front-end;
# - every Rust module opens with a //! doc comment.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
bad() { echo "layering: $*"; fail=1; }

hits=$(grep -rnE 'libc::(ptrace|waitpid|process_vm_readv|process_vm_writev)|nix::sys::(ptrace|wait)|/proc/\{?[a-z_]*\}?/mem' src --include=*.rs | grep -v '^src/sys/')
[ -n "$hits" ] && bad "kernel debugging interfaces outside src/sys:
$hits"

hits=$(grep -rnE 'crate::sys\b|xol::sys\b' src --include=*.rs | grep -vE '^src/(sys|inferior|maps)/' | grep -vE '^src/debugger/mod\.rs:.*crate::sys::signals::\*')
[ -n "$hits" ] && bad "src/sys used outside inferior/maps (the session API re-exports its descriptor plumbing as debugger::io):
$hits"

hits=$(grep -rnE '\b(libc|nix)::|std::process|std::fs' arch/src --include=*.rs | grep -vE ':[0-9]+:\s*//')
[ -n "$hits" ] && bad "arch/ must stay pure:
$hits"

hits=$(grep -rnE '\b(libc|nix)::|std::process|std::fs|std::net|std::os|ptrace' src/rsp --include=*.rs | grep -vE ':[0-9]+:\s*//')
[ -n "$hits" ] && bad "src/rsp must stay pure (no kernel, file or process access):
$hits"

hits=$(grep -rnE '(crate|xol)::[a-z_]+' src/rsp --include=*.rs | grep -vE ':[0-9]+:\s*//' | grep -vE '(crate|xol)::(rsp|types)\b')
[ -n "$hits" ] && bad "src/rsp uses nothing of xol but crate::types:
$hits"

hits=$(grep -rnE '\b(libc|nix)::|std::process|std::fs|std::net|std::os|ptrace' src/agent --include=*.rs | grep -vE ':[0-9]+:\s*//')
[ -n "$hits" ] && bad "src/agent must stay pure (no kernel, file or process access):
$hits"

hits=$(grep -rnE '(crate|xol)::[a-z_]+' src/agent --include=*.rs | grep -vE ':[0-9]+:\s*//' | grep -vE '(crate|xol)::(agent|types)\b')
[ -n "$hits" ] && bad "src/agent uses nothing of xol but crate::types:
$hits"

hits=$(grep -rnE '(crate|xol)::(inferior|sys|step|probe|maps|solib)\b' src/front --include=*.rs)
[ -n "$hits" ] && bad "front-ends must use only the session API (debugger), types, symbols and xol-arch:
$hits"

hits=$(grep -rnE '(crate|xol)::front\b' src --include=*.rs | grep -vE '^src/(front/|main\.rs|bin/)')
[ -n "$hits" ] && bad "the core must not name a front-end:
$hits"

for f in $(find src arch/src -name '*.rs'); do
  head -1 "$f" | grep -q '^//!' || bad "$f does not open with a //! module doc"
done
[ $fail = 0 ] && echo "layering: ok"
exit $fail
