//! The front-ends: each drives the core through the session API ([`crate::debugger`]) and the
//! identity types ([`crate::types`]) only, never `inferior` or `sys` (checked by
//! `scripts/check-layering.sh`).
//!
//! - [`gdb`]: xol's own gdb remote-protocol server over [`crate::rsp`] (`--rsp xol`, the
//!   default);
//! - [`gdbstub`]: the gdb remote stub built on the `gdbstub` crate (`--rsp gdbstub`), both
//!   for `xol serve` and `xol-gdbserver`;
//! - [`gdb_common`]: what the two share (options, launch configuration, breakpoint policy,
//!   signal numbers, monitor commands, host I/O);
//! - [`count`]: `xol count`, counting probes without gdb;
//! - [`repl`]: `xol debug`, the standalone debugger (gdb's commands and output);
//! - [`verify`]: `xol verify-steps`, differential checks of displaced stepping.
//!
//! Next: the tracing language.

pub mod count;
pub mod gdb;
pub mod gdb_common;
pub mod gdbstub;
pub mod repl;
pub mod verify;
