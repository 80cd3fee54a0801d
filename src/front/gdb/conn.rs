//! The byte stream to gdb for xol's own server: a descriptor pair (stdio, a socket, a serial
//! line), decoded by [`crate::rsp::Decoder`], acknowledged by [`crate::rsp::Link`].
//!
//! Reads happen only when the descriptor is readable (the tracer waits on it together with
//! tracee events and termination signals, [`crate::debugger::Debugger::wait`]); what arrives is
//! decoded into an inbox of inputs, so a packet gdb sends while the program runs is kept for
//! after the stop and a Ctrl-C is found among them. Writes never block xol: the descriptor is
//! non-blocking and a write that finds no room waits with the termination signals, for at most
//! the stall bound (`XOL_STALL_TIMEOUT_MS`, 30 s), after which gdb counts as gone.

use crate::debugger::io;
use crate::rsp::framing::{Input, Link};
use crate::rsp::Decoder;
use std::collections::VecDeque;
use std::io::{Error, ErrorKind, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Consecutive NAKs answered with a resend before further NAKs are ignored.
const MAX_RESENDS: u32 = 32;

/// How long a write waits for gdb to read by default.
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// A connection to gdb.
#[derive(Debug)]
pub struct Conn {
    rfd: OwnedFd,
    wfd: Option<OwnedFd>,
    decoder: Decoder,
    link: Link,
    inbox: VecDeque<Input>,
    saved_flags: Option<i32>,
    stall: std::time::Duration,
    /// Log every packet to stderr, as gdbserver's `--remote-debug`.
    pub remote_debug: bool,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(f) = self.saved_flags {
            io::set_flags(self.wfd.as_ref().unwrap_or(&self.rfd).as_fd(), f);
        }
    }
}

impl Conn {
    /// A connection reading `rfd` and writing `wfd` (`rfd` itself when `None`: sockets).
    pub fn new(rfd: OwnedFd, wfd: Option<OwnedFd>) -> Conn {
        let mut c = Conn {
            rfd,
            wfd,
            decoder: Decoder::new(),
            link: Link::new(),
            inbox: VecDeque::new(),
            saved_flags: None,
            stall: std::env::var("XOL_STALL_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(std::time::Duration::from_millis)
                .unwrap_or(STALL_TIMEOUT),
            remote_debug: false,
        };
        match io::set_nonblocking(c.wfd.as_ref().unwrap_or(&c.rfd).as_fd()) {
            Ok(f) => c.saved_flags = f,
            Err(e) => log::warn!("cannot make the connection non-blocking: {e}"),
        }
        c
    }

    /// The descriptor to wait on for gdb's input.
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.rfd.as_fd()
    }

    /// Turn no-ack mode on (after the `OK` to `QStartNoAckMode` went out).
    pub fn set_no_ack(&mut self) {
        self.link.set_no_ack();
    }

    /// No-ack mode is on.
    pub fn no_ack(&self) -> bool {
        self.link.no_ack()
    }

    /// Read what gdb sent (the descriptor is readable, or the read finds nothing) and decode
    /// it into the inbox, acknowledging packets and resending on NAKs. An error means gdb is
    /// gone.
    pub fn pump(&mut self) -> Result<()> {
        let mut buf = [0u8; 4096];
        let n = unsafe { libc::read(self.rfd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n < 0 {
            let e = Error::last_os_error();
            if matches!(e.kind(), ErrorKind::Interrupted | ErrorKind::WouldBlock) {
                return Ok(());
            }
            return Err(e);
        }
        if n == 0 {
            return Err(Error::new(ErrorKind::UnexpectedEof, "gdb closed the connection"));
        }
        let events: Vec<_> = self.decoder.feed(&buf[..n as usize]).collect();
        for ev in events {
            let r = self.link.receive(ev);
            if let Some(a) = r.ack {
                self.write_all(&[a])?;
            }
            match r.input {
                Input::Nothing => {}
                Input::Resend(wire) => {
                    if self.link.resends() <= MAX_RESENDS {
                        self.write_all(&wire)?;
                    } else if self.link.resends() == MAX_RESENDS + 1 {
                        log::warn!("gdb NAKed our reply {MAX_RESENDS} times: ignoring its NAKs");
                    }
                }
                i => self.inbox.push_back(i),
            }
        }
        Ok(())
    }

    /// The next input, waiting for it (with the termination signals: `Interrupted` then).
    pub fn next_input(&mut self) -> Result<Input> {
        loop {
            if let Some(i) = self.inbox.pop_front() {
                return Ok(i);
            }
            if let Some(sig) = io::terminate_requested() {
                return Err(Error::new(ErrorKind::Interrupted, format!("terminated by signal {sig}")));
            }
            let r = io::poll(Some(self.rfd.as_fd()), -1)?;
            if r.extra {
                self.pump()?;
            }
        }
    }

    /// Take the Ctrl-Cs out of the inbox (while the program runs); other input stays queued.
    pub fn take_interrupts(&mut self) -> usize {
        let before = self.inbox.len();
        self.inbox.retain(|i| *i != Input::Interrupt);
        before - self.inbox.len()
    }

    /// Send one packet.
    pub fn send(&mut self, payload: &[u8]) -> Result<()> {
        if self.remote_debug {
            eprintln!("[remote] putpkt: \"{}\"", String::from_utf8_lossy(payload));
        }
        let wire = self.link.send(payload);
        self.write_all(&wire)
    }

    /// Write bytes, waiting (bounded) while gdb does not read.
    pub fn write_all(&mut self, bytes: &[u8]) -> Result<()> {
        let fd = self.wfd.as_ref().unwrap_or(&self.rfd).as_raw_fd();
        let mut off = 0;
        let mut since = std::time::Instant::now();
        while off < bytes.len() {
            let n = unsafe { libc::write(fd, bytes[off..].as_ptr() as *const libc::c_void, bytes.len() - off) };
            if n >= 0 {
                off += n as usize;
                since = std::time::Instant::now();
                continue;
            }
            let e = Error::last_os_error();
            match e.kind() {
                ErrorKind::Interrupted => continue,
                ErrorKind::WouldBlock => {
                    let left = self.stall.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        return Err(Error::new(
                            ErrorKind::TimedOut,
                            format!("gdb read nothing for {:?}: dropping the connection", self.stall),
                        ));
                    }
                    let w = self.wfd.as_ref().unwrap_or(&self.rfd);
                    let r = io::poll_out(w.as_fd(), left.as_millis().clamp(1, i32::MAX as u128) as i32)?;
                    if let Some(sig) = r.terminate.then(io::terminate_requested).flatten() {
                        return Err(Error::new(ErrorKind::Interrupted, format!("terminated by signal {sig}")));
                    }
                }
                _ => return Err(e),
            }
        }
        Ok(())
    }
}
