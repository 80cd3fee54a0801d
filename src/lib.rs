//! xol: a gdb-compatible debugger backend for x86-64 Linux whose core borrows the design of the
//! kernel's uprobes.
//!
//! Layers, from the kernel up: [`sys`] (the only code that calls ptrace), [`inferior`]
//! (processes, threads, the all-stop event machine, breakpoint insertions), [`debugger`] (the
//! facade every front-end uses), and the front-ends: [`gdb`] (the remote stub on gdbstub) and
//! [`verify`] (`xol verify-steps`, differential checks of displaced stepping).

pub mod count;
pub mod debugger;
pub mod gdb;
pub mod inferior;
pub mod maps;
pub mod probe;
pub mod solib;
pub mod step;
pub mod symbols;
pub mod sys;
pub mod types;
pub mod verify;
