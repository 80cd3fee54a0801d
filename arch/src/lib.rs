//! Pure x86-64 knowledge for xol, with no system calls and no process
//! handling.
//!
//! * [`regs`]: the amd64-linux register file as gdb numbers it (the same
//!   layout GNU gdbserver uses with AVX), conversion between the kernel's
//!   ptrace structures and gdb's register view, and the `g` packet layout.
//! * [`tdesc`]: the matching target description XML served to gdb through
//!   `qXfer:features:read`.
//! * [`displaced`]: displaced stepping over breakpoints: deciding whether
//!   the instruction under an `int3` is emulated, copied into a slot
//!   (boosted or single-stepped) or refused, building the slot contents
//!   (with RIP-relative operands rewritten through a scratch register),
//!   fixing registers up afterwards, and emulating branches and simple
//!   instructions exactly.
//! * [`boundary`]: whether an address starts an instruction of a function
//!   (probes must replace an instruction's first byte).
//! * [`pad`]: jump pads (trapless probes): planning the window a site's
//!   `jmp rel32` replaces, refusing what is unsafe, and generating the pad
//!   (action, relocated instructions, jump back) with iced-x86's assembler.

#![warn(missing_docs)]

pub mod boundary;
pub mod displaced;
pub mod pad;
pub mod regs;
pub mod tdesc;
