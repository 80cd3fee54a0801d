//! Shared test rig for xol's integration tests.
//!
//! Include it from an integration test with `mod support;` and use
//! `support::*` (everything below is re-exported at this level):
//!
//! * [`fixtures`]: compiles the C / assembly programs in `fixtures/` on demand
//!   (`fixture`, `fixture_with`, `symbol_addr`, ...).
//! * [`proc`]: process handling with timeouts and kill-on-drop
//!   (`ChildGuard`, `LineReader`, `run_with_timeout`, `xol_bin`, ...).
//! * [`gdb`]: drives a real `gdb -batch` against xol or GNU gdbserver
//!   (`gdb_batch`, `gdb_script_compare`, `normalise_gdb_output`, ...).
//! * [`probes`]: `monitor probes` lines parsed (`parse_probes`, `probe_at`).
//! * [`rsp`]: a raw gdb remote-serial-protocol client (`RspClient`, hex
//!   helpers, packet framing/decoding).
//!
//! Every process spawned through this module runs in its own process group
//! and is killed (group and all descendants) when its guard is dropped, and
//! every blocking operation has a timeout.
#![allow(dead_code, unused_imports)]

pub mod fixtures;
pub mod gdb;
pub mod probes;
pub mod proc;
pub mod rsp;

pub use fixtures::*;
pub use gdb::*;
pub use probes::*;
pub use proc::*;
pub use rsp::*;
