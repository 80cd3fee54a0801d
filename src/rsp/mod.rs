//! xol's own gdb remote serial protocol layer, pure: bytes in, typed values out, and back.
//!
//! - [`framing`]: the incremental packet decoder (a state enum fed any split of the stream),
//!   the packet and `%` notification encoders, and [`framing::Link`] (ack / no-ack mode and the
//!   last packet kept for a resend);
//! - [`request`]: one parser per packet kind, into [`request::Request`];
//! - [`reply`]: encoders for replies, stop replies ([`reply::StopReply`]) and `%Stop`
//!   notifications;
//! - [`thread_id`]: `pPID.TID` thread ids; [`hex`]: the numeric and byte-string fields.
//!
//! Invariants: nothing here does I/O or knows the rest of xol (no libc, nix, std::fs,
//! std::process, nothing of xol but `crate::types`; `scripts/check-layering.sh` checks it), and
//! nothing panics on input: a malformed packet is an error value, an oversized one is an error
//! event, never an allocation beyond [`framing::MAX_PAYLOAD`].

pub mod framing;
pub mod hex;
pub mod reply;
pub mod request;
pub mod thread_id;

pub use framing::{Decoder, Event, Link};
pub use reply::StopReply;
pub use request::{parse, ParseError, Request};
pub use thread_id::{Id, ThreadId};

#[cfg(test)]
mod robustness;

#[cfg(test)]
mod transcript;
