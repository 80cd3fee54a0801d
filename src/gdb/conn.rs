//! The byte stream to gdb: stdin/stdout or a TCP socket, buffered, with a way for the tracer to
//! wait on "gdb sent something" together with tracee events and termination signals.
//!
//! After a restart of the protocol engine on a live connection (extended-remote, when a process
//! ends) the new engine must know what gdb negotiated: the connection replays gdb's own
//! `qSupported` (and `QStartNoAckMode`) to it and swallows the engine's replies.

use crate::sys::signals;
use gdbstub::conn::{Connection, ConnectionExt};
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// A connection to gdb.
#[derive(Debug)]
pub struct Conn {
    rfd: OwnedFd,
    wfd: Option<OwnedFd>,
    rbuf: Vec<u8>,
    rpos: usize,
    wbuf: Vec<u8>,
    /// Set by `monitor exit`: the next read ends the session.
    pub exit_requested: Arc<AtomicBool>,
    /// gdb asked for no-ack mode.
    no_ack: bool,
    /// gdb's `qSupported` packet, raw, for replay.
    qsupported: Option<Vec<u8>>,
    /// The packet being received from gdb (between `$` and the checksum).
    cur_in: Vec<u8>,
    in_state: u8,
    /// Bytes fed to the engine before gdb's (replayed negotiation).
    inject: std::collections::VecDeque<u8>,
    /// Replies of the engine still to be swallowed.
    swallow: usize,
    out_state: u8,
}

impl Conn {
    /// A connection reading `rfd` and writing `wfd` (or `rfd` if `None`, for sockets).
    pub fn new(rfd: OwnedFd, wfd: Option<OwnedFd>) -> Conn {
        Conn {
            rfd,
            wfd,
            rbuf: Vec::new(),
            rpos: 0,
            wbuf: Vec::new(),
            exit_requested: Arc::new(AtomicBool::new(false)),
            no_ack: false,
            qsupported: None,
            cur_in: Vec::new(),
            in_state: 0,
            inject: std::collections::VecDeque::new(),
            swallow: 0,
            out_state: 0,
        }
    }

    fn wraw(&self) -> RawFd {
        self.wfd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(self.rfd.as_raw_fd())
    }

    /// The descriptor to poll for input.
    pub fn read_fd(&self) -> BorrowedFd<'_> {
        self.rfd.as_fd()
    }

    /// True if bytes are already buffered.
    pub fn has_buffered(&self) -> bool {
        !self.inject.is_empty() || self.rpos < self.rbuf.len()
    }

    /// Before a new protocol engine starts on this connection: replay gdb's negotiation to it.
    pub fn prepare_restart(&mut self) {
        self.inject.clear();
        self.swallow = 0;
        if let Some(q) = &self.qsupported {
            self.inject.extend(q.iter().copied());
            self.swallow += 1;
        }
        if self.no_ack {
            self.inject.extend(b"$QStartNoAckMode#b0".iter().copied());
            self.swallow += 1;
        }
    }

    fn fill(&mut self) -> io::Result<()> {
        if self.has_buffered() {
            return Ok(());
        }
        loop {
            if self.exit_requested.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "monitor exit"));
            }
            if let Some(sig) = signals::terminate_requested() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, format!("terminated by signal {sig}")));
            }
            let r = signals::poll(Some(self.rfd.as_fd()), -1)?;
            if !r.extra {
                continue;
            }
            let mut buf = [0u8; 4096];
            let n = unsafe { libc::read(self.rfd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gdb closed the connection"));
            }
            self.rbuf.clear();
            self.rbuf.extend_from_slice(&buf[..n as usize]);
            self.rpos = 0;
            self.note_input();
            return Ok(());
        }
    }

    /// Watch gdb's packets for the negotiation a restarted engine must see again.
    fn note_input(&mut self) {
        for i in self.rpos..self.rbuf.len() {
            let b = self.rbuf[i];
            match self.in_state {
                0 if b == b'$' => {
                    self.cur_in.clear();
                    self.cur_in.push(b);
                    self.in_state = 1;
                }
                1 => {
                    self.cur_in.push(b);
                    if b == b'#' {
                        self.in_state = 2;
                    }
                }
                2 => {
                    self.cur_in.push(b);
                    self.in_state = 3;
                }
                3 => {
                    self.cur_in.push(b);
                    self.in_state = 0;
                    if self.cur_in.starts_with(b"$qSupported") {
                        self.qsupported = Some(self.cur_in.clone());
                    } else if self.cur_in.starts_with(b"$QStartNoAckMode#") {
                        self.no_ack = true;
                    }
                }
                _ => {}
            }
            if self.cur_in.len() > 4096 {
                self.cur_in.clear();
                self.in_state = 0;
            }
        }
    }

    /// Read one byte, blocking.
    pub fn read_byte(&mut self) -> io::Result<u8> {
        if let Some(b) = self.inject.pop_front() {
            return Ok(b);
        }
        self.fill()?;
        let b = self.rbuf[self.rpos];
        self.rpos += 1;
        Ok(b)
    }
}

impl Connection for Conn {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        if self.swallow > 0 {
            // A reply to replayed negotiation: gdb has seen one already.
            match self.out_state {
                0 if byte == b'$' => self.out_state = 1,
                1 if byte == b'#' => self.out_state = 2,
                2 => self.out_state = 3,
                3 => {
                    self.out_state = 0;
                    self.swallow -= 1;
                }
                _ => {}
            }
            return Ok(());
        }
        self.wbuf.push(byte);
        Ok(())
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        for b in buf {
            self.write(*b)?;
        }
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        let mut off = 0;
        while off < self.wbuf.len() {
            let n = unsafe {
                libc::write(self.wraw(), self.wbuf[off..].as_ptr() as *const libc::c_void, self.wbuf.len() - off)
            };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                self.wbuf.clear();
                return Err(e);
            }
            off += n as usize;
        }
        self.wbuf.clear();
        Ok(())
    }
}

impl ConnectionExt for Conn {
    fn read(&mut self) -> io::Result<u8> {
        self.read_byte()
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        if let Some(b) = self.inject.front() {
            Ok(Some(*b))
        } else if self.has_buffered() {
            Ok(Some(self.rbuf[self.rpos]))
        } else {
            Ok(None)
        }
    }
}

/// A shareable handle on a [`Conn`], so the protocol engine can be restarted on a live connection.
#[derive(Debug, Clone)]
pub struct SharedConn(pub std::rc::Rc<std::cell::RefCell<Conn>>);

impl SharedConn {
    /// Wrap a connection.
    pub fn new(c: Conn) -> SharedConn {
        SharedConn(std::rc::Rc::new(std::cell::RefCell::new(c)))
    }
}

impl Connection for SharedConn {
    type Error = io::Error;

    fn write(&mut self, byte: u8) -> io::Result<()> {
        self.0.borrow_mut().write(byte)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.0.borrow_mut().write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.borrow_mut().flush()
    }
}

impl ConnectionExt for SharedConn {
    fn read(&mut self) -> io::Result<u8> {
        self.0.borrow_mut().read_byte()
    }

    fn peek(&mut self) -> io::Result<Option<u8>> {
        ConnectionExt::peek(&mut *self.0.borrow_mut())
    }
}
