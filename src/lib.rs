//! xol: a gdb-compatible debugger backend for x86-64 Linux whose core borrows the design of the
//! kernel's uprobes.
//!
//! The layers, from the kernel up (a layer uses only those below it; `scripts/check-layering.sh`
//! checks the rules by folder):
//!
//! ```text
//! front/      gdb (xol's own gdb server over rsp, `--rsp xol`), gdbstub (the gdb remote
//!               stub on the gdbstub crate, `--rsp gdbstub`), gdb_common (what both share),
//!               count (`xol count`), repl (`xol debug`), verify (`xol verify-steps`)
//!               uses: debugger, types, rsp (and symbols, debuginfo for reading files;
//!               xol-arch's register and target-description tables)
//! debugger    the session API every front-end drives: clients, launch/attach, resume/wait
//!               (stops and subscribed notices), memory, registers, breakpoints, probes,
//!               one location grammar, typed errors and reports
//! inferior    processes, threads, the all-stop event machine (events/), address-space
//!               insertions and masking (aspace), hardware slots, displaced stepping
//!               (displaced/: slots, syscall injection, resume paths), probes, notices
//! probe       the RCU probe table (arc-swap snapshots, refcounted probes)
//! maps        address <-> (file, offset): the maps parser and the speculative cache
//! symbols     ELF symbol tables, segments, instruction-boundary checks (pure over bytes)
//! debuginfo   DWARF of one file (gimli, addr2line): gdb's break FILE:LINE and break FUNC
//!               places, inlined copies, source locations; separate, split, compressed debug
//!               information (pure: files and bytes in)
//! solib       the r_debug / link_map walk (pure over a memory reader)
//! rsp         the gdb remote protocol, pure: framing, typed requests, replies (uses nothing
//!               else of xol)
//! agent       gdb's agent-expression bytecode, pure: validated once, evaluated on the trap
//!               path over a register/memory context (conditions, commands, tracepoint actions)
//! sys         the ONLY code that calls the kernel: ptrace, wait, /proc/PID/mem, spawn,
//!               signalfd and descriptors, PROCMAP_QUERY
//! types       Pid, Tid, VirtAddr, FileId, FileSite, ClientId, Owner
//! ```
//!
//! Beside the crate, `xol-arch` (`arch/`) is pure x86-64 knowledge: registers, the target
//! description, displaced-step planning and emulation, instruction boundaries.

pub mod agent;
pub mod debugger;
pub mod debuginfo;
pub mod front;
pub mod inferior;
pub mod maps;
pub mod probe;
pub mod rsp;
pub mod solib;
pub mod symbols;
pub mod sys;
pub mod types;
