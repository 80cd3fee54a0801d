//! The front-ends: each drives the core through the session API ([`crate::debugger`]) and the
//! identity types ([`crate::types`]) only, never `inferior` or `sys` (checked by
//! `scripts/check-layering.sh`).
//!
//! - [`gdbstub`]: the gdb remote stub built on the `gdbstub` crate (`xol serve`,
//!   `xol-gdbserver`);
//! - [`count`]: `xol count`, counting probes without gdb;
//! - [`repl`]: `xol debug`, the standalone debugger (gdb's commands and output);
//! - [`verify`]: `xol verify-steps`, differential checks of displaced stepping.
//!
//! Next: xol's own remote-protocol server and the tracing language.

pub mod count;
pub mod gdbstub;
pub mod repl;
pub mod verify;
