//! Pure x86-64 knowledge for xol, with no system calls and no process
//! handling.
//!
//! * [`regs`]: the amd64-linux register file as gdb numbers it (the same
//!   layout GNU gdbserver uses with AVX), conversion between the kernel's
//!   ptrace structures and gdb's register view, and the `g` packet layout.
//! * [`tdesc`]: the matching target description XML served to gdb through
//!   `qXfer:features:read`.
//!
//! Instruction analysis for out-of-line stepping will live here too.

#![warn(missing_docs)]

pub mod regs;
pub mod tdesc;
