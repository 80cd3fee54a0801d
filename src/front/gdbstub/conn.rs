//! The byte stream to gdb: stdin/stdout or a TCP socket, buffered, with a way for the tracer to
//! wait on "gdb sent something" together with tracee events and termination signals.
//!
//! After a restart of the protocol engine on a live connection (extended-remote, when a process
//! ends) the new engine must know what gdb negotiated: the connection replays gdb's own
//! `qSupported` (and `QStartNoAckMode`) to it and swallows the engine's replies.

use crate::debugger::io as signals;
pub use crate::front::gdb_common::Disabled;
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
    /// The last packet sent to gdb, resent when gdb NAKs it.
    last_sent: Option<Vec<u8>>,
    /// The last packet handed to the engine (to word the error reply if it fails on it).
    last_in: Vec<u8>,
    /// The body of gdb's last `vRun`, shared with the target: gdbstub 0.7 drops empty
    /// arguments (`run 1 '' 3`), so the target re-reads them from here.
    pub last_vrun: std::rc::Rc<std::cell::RefCell<Option<Vec<u8>>>>,
    /// gdb asked for the extended protocol (`!`): like gdbserver, the session then outlives the
    /// process even without `--multi`.
    pub extended: std::rc::Rc<std::cell::Cell<bool>>,
    /// The signals of gdb's last `QPassSignals` (gdb numbers), not yet applied. gdbstub 0.7
    /// does not know the packet: xol answers it here and advertises it in `qSupported`, so
    /// signals gdb's `handle` says to pass without stopping (SIGCHLD, SIGALRM, ...) are
    /// delivered at once instead of a round trip to gdb each.
    pub pass_signals: Option<Vec<u8>>,
    /// What the target says about the process (shared with [`super::XolTarget`]).
    pub state: SharedState,
    /// The thread of gdb's last `Hc` naming one thread (`None`: all threads, gdbserver's
    /// default), for the legacy `c`/`C`/`s`/`S` packets.
    cont_thread: Option<String>,
    /// An `R` (restart) went to the engine, which may not have run it yet when gdb's next
    /// request (`qC`, sent at once: `R` has no reply) is read: answer nothing from the
    /// possibly stale process state until then.
    restart_in_flight: bool,
    /// Bytes gdb sent after an `R`, filtered only once the engine has run the `R`.
    after_restart: Vec<u8>,
    /// NAKs from gdb since its last good packet (each resends our last reply).
    naks: u32,
    /// The write descriptor's flags before it was made non-blocking, restored on drop.
    saved_flags: Option<i32>,
    /// How long a write may wait for gdb to read before the connection is dropped.
    stall: std::time::Duration,
    /// Packets to pretend not to support (`--disable-packet=`).
    pub disabled: Disabled,
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(f) = self.saved_flags {
            let fd = self.wfd.as_ref().unwrap_or(&self.rfd);
            signals::set_flags(fd.as_fd(), f);
        }
    }
}

/// Resends of our last reply for consecutive NAKs, before further NAKs are ignored: gdb
/// NAKs a corrupted reply once or twice; a client that NAKs without end only wants output.
const MAX_RESENDS: u32 = 32;

/// How long a write waits for gdb to read by default (`XOL_STALL_TIMEOUT_MS` overrides it):
/// a client that stops reading is dropped then, as a vanished one.
const STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// What the target tells the connection, so that it can answer or correct what gdbstub 0.7
/// gets wrong about the current thread: gdbstub keeps the thread of the previous process after
/// a kill, run or attach (`g` then fails with `E03`), reports the first thread instead of the
/// last-stopped one to `?` after a reconnect, and lets a bare `c` resume its default thread 1.
#[derive(Debug, Default)]
pub struct TargetState {
    /// The process gdb debugs.
    pub pid: Option<i32>,
    /// The thread of the last stop (the main thread after run/attach) and its gdb signal.
    pub stopped: Option<(i32, u8)>,
    /// The process or the engine changed: select `stopped` in the engine (`Hg`/`Hc`, replies
    /// swallowed) before gdb's next request.
    pub resync: bool,
    /// An `m` request was handed to the engine and its first chunk is not read yet.
    pub m_first: bool,
    /// Log every packet to stderr (`--remote-debug`, `monitor set remote-debug 1`).
    pub remote_debug: bool,
}

/// A [`TargetState`] shared by the connection and the target.
pub type SharedState = std::rc::Rc<std::cell::RefCell<TargetState>>;

/// Packets longer than this are refused (gdbstub's buffer is 4 KiB; gdb honours PacketSize).
const MAX_PACKET: usize = 64 * 1024;

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
            last_sent: None,
            last_in: Vec::new(),
            last_vrun: Default::default(),
            extended: Default::default(),
            pass_signals: None,
            state: Default::default(),
            cont_thread: None,
            restart_in_flight: false,
            after_restart: Vec::new(),
            naks: 0,
            saved_flags: None,
            stall: std::env::var("XOL_STALL_TIMEOUT_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .map(std::time::Duration::from_millis)
                .unwrap_or(STALL_TIMEOUT),
            disabled: Disabled::default(),
        }
        .nonblocking()
    }

    /// Writes to gdb never block xol: they wait in [`signals::poll_out`] with the signals.
    fn nonblocking(mut self) -> Conn {
        let fd = self.wfd.as_ref().unwrap_or(&self.rfd);
        match signals::set_nonblocking(fd.as_fd()) {
            Ok(f) => self.saved_flags = f,
            Err(e) => log::warn!("cannot make the connection non-blocking: {e}"),
        }
        self
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
        // The new engine starts with thread 1 selected.
        self.state.borrow_mut().resync = true;
    }

    fn fill(&mut self) -> io::Result<()> {
        while !self.has_buffered() {
            // The engine has run everything up to and including an `R`: what gdb sent after it
            // can now be judged against the restarted process.
            if self.restart_in_flight {
                self.restart_in_flight = false;
                for b in std::mem::take(&mut self.after_restart) {
                    self.filter(b)?;
                }
                continue;
            }
            if self.exit_requested.load(Ordering::Relaxed) {
                return Err(io::Error::new(io::ErrorKind::ConnectionAborted, "monitor exit"));
            }
            if let Some(sig) = signals::terminate_requested() {
                return Err(io::Error::new(io::ErrorKind::Interrupted, format!("terminated by signal {sig}")));
            }
            let r = signals::poll(Some(self.rfd.as_fd()), -1)?;
            if r.extra {
                self.pump()?;
            }
        }
        Ok(())
    }

    /// Read what gdb has sent (the descriptor must be readable) and keep the well-formed part.
    /// Returns an error only when the connection is gone.
    pub fn pump(&mut self) -> io::Result<()> {
        let mut buf = [0u8; 4096];
        let n = unsafe { libc::read(self.rfd.as_raw_fd(), buf.as_mut_ptr() as *mut libc::c_void, buf.len()) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted || e.kind() == io::ErrorKind::WouldBlock {
                return Ok(());
            }
            return Err(e);
        }
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "gdb closed the connection"));
        }
        if self.rpos >= self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        }
        for &b in &buf[..n as usize] {
            if self.restart_in_flight {
                self.after_restart.push(b);
            } else {
                self.filter(b)?;
            }
        }
        Ok(())
    }

    /// The framing guard in front of the protocol engine (which treats any framing error as
    /// fatal): only complete packets with a valid checksum, acks and Ctrl-C get through. A bad
    /// checksum is NAKed (`-`) so gdb retransmits; a NAK from gdb resends our last reply; noise
    /// between packets and truncated packets are dropped. gdb's negotiation is remembered for
    /// engine restarts.
    fn filter(&mut self, b: u8) -> io::Result<()> {
        match self.in_state {
            0 => {
                match b {
                    b'$' => {
                        self.cur_in.clear();
                        self.cur_in.push(b);
                        self.in_state = 1;
                    }
                    b'+' | 0x03 => self.rbuf.push(b),
                    b'-' => {
                        self.naks += 1;
                        if self.naks > MAX_RESENDS {
                            if self.naks == MAX_RESENDS + 1 {
                                log::warn!("gdb NAKed our reply {MAX_RESENDS} times: ignoring its NAKs until it sends a packet");
                            }
                        } else if let Some(last) = self.last_sent.clone() {
                            self.write_raw(&last)?;
                        }
                    }
                    _ => log::debug!("dropping stray byte {b:#04x} from gdb"),
                }
            }
            1 => match b {
                b'#' => {
                    self.cur_in.push(b);
                    self.in_state = 2;
                }
                b'$' => {
                    log::debug!("dropping a truncated packet from gdb");
                    self.cur_in.clear();
                    self.cur_in.push(b);
                }
                _ if self.cur_in.len() > MAX_PACKET => {
                    log::debug!("dropping an oversized packet from gdb");
                    self.cur_in.clear();
                    self.in_state = 0;
                    self.write_raw(b"$E01#a6")?;
                }
                _ => self.cur_in.push(b),
            },
            2 => {
                self.cur_in.push(b);
                self.in_state = 3;
            }
            _ => {
                self.cur_in.push(b);
                self.in_state = 0;
                let n = self.cur_in.len();
                let body = &self.cur_in[1..n - 3];
                let sum = body.iter().fold(0u8, |a, c| a.wrapping_add(*c));
                let given =
                    std::str::from_utf8(&self.cur_in[n - 2..]).ok().and_then(|h| u8::from_str_radix(h, 16).ok());
                if given != Some(sum) {
                    if self.no_ack {
                        // No acks to ask for a retransmission: take the body, fix the checksum.
                        let fixed = format!("{sum:02x}");
                        self.cur_in.truncate(n - 2);
                        self.cur_in.extend_from_slice(fixed.as_bytes());
                    } else {
                        log::debug!("bad checksum from gdb: NAK");
                        self.cur_in.clear();
                        return self.write_raw(b"-");
                    }
                }
                self.naks = 0;
                if self.cur_in.starts_with(b"$qSupported") {
                    self.qsupported = Some(self.cur_in.clone());
                } else if self.cur_in.starts_with(b"$QStartNoAckMode#") {
                    self.no_ack = true;
                }
                let pkt = std::mem::take(&mut self.cur_in);
                if self.state.borrow().remote_debug {
                    eprintln!("[remote] getpkt: \"{}\"", String::from_utf8_lossy(&pkt[1..pkt.len() - 3]));
                }
                if let Some(list) = pkt.strip_prefix(b"$QPassSignals:").map(|r| &r[..r.len() - 3]) {
                    self.pass_signals = Some(parse_pass_signals(list));
                    if !self.no_ack {
                        self.write_raw(b"+")?;
                    }
                    return self.write_raw(&frame("OK"));
                }
                if let Some(err) = precheck(&pkt[1..pkt.len() - 3]) {
                    log::debug!("refusing a request gdbstub would mishandle: {}", String::from_utf8_lossy(&pkt));
                    let reply = frame(err);
                    if !self.no_ack {
                        self.write_raw(b"+")?;
                    }
                    return self.write_raw(&reply);
                }
                let body = String::from_utf8_lossy(&pkt[1..pkt.len() - 3]).into_owned();
                let mut pkt = pkt;
                match self.intercept(&body) {
                    Intercept::Reply(reply) => {
                        log::debug!("answering {body:?} in front of gdbstub: {reply:?}");
                        if !self.no_ack {
                            self.write_raw(b"+")?;
                        }
                        return self.write_raw(&frame(&reply));
                    }
                    Intercept::Rewrite(new) => {
                        log::debug!("handing {body:?} to gdbstub as {new:?}");
                        pkt = frame(&new);
                    }
                    Intercept::Pass => {}
                }
                if !body.starts_with("qSupported") && !body.starts_with("QStartNoAckMode") {
                    self.resync_engine();
                }
                if body.starts_with('m') {
                    self.state.borrow_mut().m_first = true;
                }
                if pkt.starts_with(b"$!#") {
                    self.extended.set(true);
                }
                if pkt.starts_with(b"$vRun;") {
                    *self.last_vrun.borrow_mut() = Some(pkt[1..pkt.len() - 3].to_vec());
                }
                self.last_in = pkt.clone();
                self.rbuf.extend_from_slice(&pkt);
            }
        }
        Ok(())
    }

    /// Hand the engine a request of xol's own before gdb's next one; its reply is swallowed.
    fn inject_request(&mut self, body: &str) {
        self.rbuf.extend_from_slice(&frame(body));
        self.swallow += 1;
    }

    /// After a change of process or engine: select the current thread in the engine, as
    /// gdbserver does after run, attach and stops.
    fn resync_engine(&mut self) {
        let tid = {
            let mut st = self.state.borrow_mut();
            if !std::mem::take(&mut st.resync) {
                return;
            }
            match (st.pid, st.stopped) {
                (Some(_), Some((tid, _))) => tid,
                _ => return,
            }
        };
        self.inject_request(&format!("Hg{tid:x}"));
        self.inject_request(&format!("Hc{tid:x}"));
    }

    /// gdb negotiated the multiprocess extension (thread ids are `pPID.TID`).
    fn multiprocess(&self) -> bool {
        self.qsupported.as_ref().is_some_and(|q| q.windows(13).any(|w| w == b"multiprocess+"))
    }

    /// Requests answered or corrected here because gdbstub 0.7 gets them wrong (see
    /// [`TargetState`]): answers as GNU gdbserver gives them.
    fn intercept(&mut self, body: &str) -> Intercept {
        let (pid, stopped) = {
            let st = self.state.borrow();
            (st.pid, st.stopped)
        };
        let bytes = body.as_bytes();
        let d = self.disabled;
        if (d.vcont && body.starts_with("vCont"))
            || (d.qc && body == "qC")
            || (d.qfthreadinfo && (body == "qfThreadInfo" || body == "qsThreadInfo"))
        {
            return Intercept::Reply(String::new());
        }
        match bytes.first() {
            // The last stop, of the thread that stopped (gdbstub names the first thread).
            Some(b'?') if body == "?" => {
                let (Some(pid), Some((tid, sig))) = (pid, stopped) else { return Intercept::Pass };
                let id = if self.multiprocess() { format!("p{pid:x}.{tid:x}") } else { format!("{tid:x}") };
                self.state.borrow_mut().resync = false;
                self.inject_request(&format!("Hg{tid:x}"));
                self.inject_request(&format!("Hc{tid:x}"));
                Intercept::Reply(format!("T{sig:02x}thread:{id};"))
            }
            // `R XX` (restart, extended mode): gdb sends `R0`, gdbstub parses only two digits.
            // The argument is unused (the protocol manual says so); no reply, as gdbserver.
            Some(b'R') => {
                // gdbstub answers its `R` with an empty packet, which gdb does not expect.
                self.swallow += 1;
                self.restart_in_flight = true;
                Intercept::Rewrite("R00".into())
            }
            // No process: gdbserver's answer (gdbstub names xol itself and a stale thread).
            Some(b'q') if body == "qC" && pid.is_none() => Intercept::Reply("E01".into()),
            Some(b'H') if bytes.get(1) == Some(&b'c') => {
                let id = &body[2..];
                let all = matches!(id, "0" | "-1")
                    || id
                        .strip_prefix('p')
                        .and_then(|r| r.split_once('.'))
                        .is_some_and(|(_, t)| matches!(t, "0" | "-1"));
                self.cont_thread = (!all).then(|| id.to_string());
                Intercept::Pass
            }
            // Legacy resumes: gdbserver resumes every thread unless `Hc` named one, and steps
            // or signals the current thread.
            Some(c @ (b'c' | b'C' | b's' | b'S')) if pid.is_some() => {
                let sig = if matches!(c, b'C' | b'S') {
                    match body.get(1..3).filter(|h| u8::from_str_radix(h, 16).is_ok()) {
                        Some(h) => h.to_string(),
                        None => return Intercept::Reply("E01".into()),
                    }
                } else {
                    String::new()
                };
                let act = format!("{}{sig}", *c as char);
                let cur = stopped.map(|(t, _)| t).unwrap_or(0);
                Intercept::Rewrite(match (&self.cont_thread, c) {
                    (Some(id), _) => format!("vCont;{act}:{id}"),
                    (None, b'c') => "vCont;c".into(),
                    (None, _) => format!("vCont;{act}:{cur:x};c"),
                })
            }
            Some(b'v') => {
                if let Some(p) = body.strip_prefix("vKill;") {
                    let ours = i64::from_str_radix(p, 16).ok().zip(pid).is_some_and(|(p, q)| p == q as i64);
                    return if ours { Intercept::Pass } else { Intercept::Reply("E01".into()) };
                }
                if let Some(acts) = body.strip_prefix("vCont;") {
                    // An action for another process resumes nothing and would never stop.
                    for a in acts.split(';') {
                        let Some((_, id)) = a.split_once(':') else { continue };
                        let Some(p) = id.strip_prefix('p') else { continue };
                        let p = p.split('.').next().unwrap_or("");
                        let ok = matches!(p, "-1" | "0")
                            || i64::from_str_radix(p, 16).ok().zip(pid).is_some_and(|(p, q)| p == q as i64);
                        if !ok {
                            return Intercept::Reply("E01".into());
                        }
                    }
                }
                Intercept::Pass
            }
            _ => Intercept::Pass,
        }
    }

    /// Write bytes straight to gdb, outside the engine's buffering.
    pub fn write_raw(&mut self, bytes: &[u8]) -> io::Result<()> {
        let saved = std::mem::take(&mut self.wbuf);
        self.wbuf.extend_from_slice(bytes);
        let r = self.flush();
        self.wbuf = saved;
        r
    }

    /// The error reply for the last packet, in the form its kind uses (`F-1,errno` for vFile).
    pub fn error_reply(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if !self.no_ack {
            out.push(b'+');
        }
        let body = if self.last_in.starts_with(b"$vFile:") { "F-1,16" } else { "E01" };
        out.extend_from_slice(&frame(body));
        out
    }

    /// True once gdb and xol agreed on no-ack mode.
    pub fn no_ack(&self) -> bool {
        self.no_ack
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
        advertise_pass_signals(&mut self.wbuf);
        if self.disabled.t || self.disabled.tthread {
            self.wbuf = rewrite_stop_replies(&self.wbuf, self.disabled);
        }
        if self.state.borrow().remote_debug {
            log_packets(&self.wbuf);
        }
        if let Some(i) = self.wbuf.iter().rposition(|b| *b == b'$') {
            let tail = &self.wbuf[i..];
            if tail.len() >= 4 && tail[tail.len() - 3] == b'#' {
                self.last_sent = Some(tail.to_vec());
            }
        }
        let mut off = 0;
        let mut since = std::time::Instant::now();
        while off < self.wbuf.len() {
            let n = unsafe {
                libc::write(self.wraw(), self.wbuf[off..].as_ptr() as *const libc::c_void, self.wbuf.len() - off)
            };
            if n >= 0 {
                off += n as usize;
                since = std::time::Instant::now();
                continue;
            }
            let e = io::Error::last_os_error();
            match e.kind() {
                io::ErrorKind::Interrupted => continue,
                io::ErrorKind::WouldBlock => {
                    // gdb is not reading: wait for room, a termination signal, or the bound.
                    let left = self.stall.saturating_sub(since.elapsed());
                    if left.is_zero() {
                        self.wbuf.clear();
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            format!("gdb read nothing for {:?}: dropping the connection", self.stall),
                        ));
                    }
                    let fd = self.wfd.as_ref().unwrap_or(&self.rfd);
                    let r = signals::poll_out(fd.as_fd(), left.as_millis().clamp(1, i32::MAX as u128) as i32)?;
                    if let Some(sig) = r.terminate.then(signals::terminate_requested).flatten() {
                        self.wbuf.clear();
                        return Err(io::Error::new(io::ErrorKind::Interrupted, format!("terminated by signal {sig}")));
                    }
                }
                _ => {
                    self.wbuf.clear();
                    return Err(e);
                }
            }
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

/// What [`Conn::intercept`] does with a request.
enum Intercept {
    /// Hand it to the engine unchanged.
    Pass,
    /// Answer it here with this reply body.
    Reply(String),
    /// Hand the engine this request instead.
    Rewrite(String),
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

/// Print each packet of `out` as gdbserver's `--remote-debug` does.
fn log_packets(out: &[u8]) {
    let mut rest = out;
    while let Some(start) = rest.iter().position(|b| *b == b'$') {
        let Some(end) = rest[start..].iter().position(|b| *b == b'#').map(|e| start + e) else { break };
        eprintln!("[remote] putpkt: \"{}\"", String::from_utf8_lossy(&rest[start + 1..end]));
        rest = &rest[(end + 3).min(rest.len())..];
    }
}

/// Rewrite the stop replies in `out` for `--disable-packet=T` (`S` replies: the signal only)
/// or `Tthread` (no `thread:` field); other packets pass unchanged.
fn rewrite_stop_replies(out: &[u8], d: Disabled) -> Vec<u8> {
    let mut res = Vec::with_capacity(out.len());
    let mut i = 0;
    while i < out.len() {
        let end = (out[i] == b'$').then(|| out[i..].iter().position(|b| *b == b'#').map(|e| i + e)).flatten();
        let Some(end) = end.filter(|e| e + 3 <= out.len()) else {
            res.push(out[i]);
            i += 1;
            continue;
        };
        let body = &out[i + 1..end];
        let is_stop = body.len() >= 3 && body[0] == b'T' && body[1..3].iter().all(u8::is_ascii_hexdigit);
        if !is_stop {
            res.extend_from_slice(&out[i..end + 3]);
        } else if d.t {
            res.extend(frame(&format!("S{}", String::from_utf8_lossy(&body[1..3]))));
        } else {
            let text = String::from_utf8_lossy(&body[3..]);
            let kept: Vec<&str> = text.split(';').filter(|f| !f.starts_with("thread:")).collect();
            res.extend(frame(&format!("{}{}", String::from_utf8_lossy(&body[..3]), kept.join(";"))));
        }
        i = end + 3;
    }
    res
}

/// Frame a reply body as a packet.
pub fn frame(body: &str) -> Vec<u8> {
    let sum = body.bytes().fold(0u8, |a, c| a.wrapping_add(c));
    format!("${body}#{sum:02x}").into_bytes()
}

/// A hex number as gdbserver reads it: any number of leading zeros, `None` if it is not hex
/// or does not fit 64 bits.
fn hex_num(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let digits = &s[s.iter().position(|c| *c != b'0').unwrap_or(s.len())..];
    if digits.len() > 16 {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    u64::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()
}

/// Requests gdbstub 0.7 would answer wrongly, refused here with an error reply: `m` longer than
/// any packet (it would stream past its buffer), `M` whose data does not match its length, and
/// `p`/`P` of a register that does not exist (an empty reply would tell gdb `p` is unsupported).
/// Read watchpoints (`Z3`) get the empty reply, as from gdbserver on x86: the debug registers
/// cannot watch reads alone, and gdb emulates `rwatch` with an access watchpoint plus its own
/// value check only when the stub says it has no `Z3`.
/// The signal numbers of a `QPassSignals` body (`sig;sig;...`, hex, gdb numbering).
fn parse_pass_signals(list: &[u8]) -> Vec<u8> {
    String::from_utf8_lossy(list).split(';').filter_map(|h| u8::from_str_radix(h.trim(), 16).ok()).collect()
}

/// Add `QPassSignals+` to the engine's `qSupported` reply (recognised by its `PacketSize=`
/// opening), with the checksum recomputed.
fn advertise_pass_signals(wbuf: &mut Vec<u8>) {
    let Some(start) = wbuf.windows(12).position(|w| w == b"$PacketSize=") else { return };
    let Some(hash) = wbuf[start..].iter().position(|b| *b == b'#').map(|h| start + h) else { return };
    if hash + 3 > wbuf.len() || wbuf[start..hash].windows(12).any(|w| w == b"QPassSignals") {
        return;
    }
    let mut body = wbuf[start + 1..hash].to_vec();
    body.extend_from_slice(b";QPassSignals+");
    let mut pkt = frame(std::str::from_utf8(&body).unwrap_or(""));
    if pkt.len() < 4 {
        return;
    }
    let tail = wbuf.split_off(hash + 3);
    wbuf.truncate(start);
    wbuf.append(&mut pkt);
    wbuf.extend_from_slice(&tail);
}

pub fn precheck(body: &[u8]) -> Option<&'static str> {
    const MAX_M: u64 = 0x10000;
    if body.starts_with(b"Z3,") || body.starts_with(b"z3,") {
        return Some("");
    }
    match body.first()? {
        b'm' => {
            let (_, len) = body[1..].split_at(body[1..].iter().position(|c| *c == b',')?);
            match hex_num(&len[1..]) {
                Some(n) if n <= MAX_M => None,
                _ => Some("E01"),
            }
        }
        b'M' => {
            let colon = body.iter().position(|c| *c == b':')?;
            let comma = body[..colon].iter().position(|c| *c == b',')?;
            let data = (body.len() - colon - 1) as u64;
            match hex_num(&body[comma + 1..colon]) {
                Some(len) if data.is_multiple_of(2) && data / 2 == len => None,
                _ => Some("E01"),
            }
        }
        b'p' | b'P' => {
            let end = body.iter().position(|c| *c == b'=').unwrap_or(body.len());
            match hex_num(&body[1..end]) {
                Some(r) if r >= xol_arch::regs::NUM_REGS as u64 => Some("E01"),
                _ => None,
            }
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qsupported_reply_advertises_pass_signals() {
        let mut w = frame("PacketSize=1000;vContSupported+").to_vec();
        w.splice(0..0, b"+".iter().copied());
        advertise_pass_signals(&mut w);
        assert_eq!(w, [b"+".to_vec(), frame("PacketSize=1000;vContSupported+;QPassSignals+")].concat());
        let before = w.clone();
        advertise_pass_signals(&mut w);
        assert_eq!(w, before, "only once");
        assert_eq!(parse_pass_signals(b"e;14;17"), vec![0x0e, 0x14, 0x17]);
    }

    #[test]
    fn disabled_stop_reply_forms_are_rewritten() {
        let t = Disabled { t: true, ..Disabled::default() };
        let tt = Disabled { tthread: true, ..Disabled::default() };
        let out = [b"+".to_vec(), frame("T05thread:p10.11;"), frame("OK")].concat();
        assert_eq!(rewrite_stop_replies(&out, t), [b"+".to_vec(), frame("S05"), frame("OK")].concat());
        assert_eq!(rewrite_stop_replies(&out, tt), [b"+".to_vec(), frame("T05"), frame("OK")].concat());
        let w = frame("W00");
        assert_eq!(rewrite_stop_replies(&w, t), w);
        let mut all = Disabled::default();
        assert!(all.add("threads") && !all.add("bogus"));
        assert!(all.vcont && all.qc && all.qfthreadinfo && all.tthread && !all.t);
    }

    #[test]
    fn prechecks_requests_gdbstub_mishandles() {
        assert_eq!(precheck(b"m401156,ffffffffff"), Some("E01"));
        assert_eq!(precheck(b"m401156,100"), None);
        assert_eq!(precheck(b"M40403c,4:01"), Some("E01"));
        assert_eq!(precheck(b"M40403c,1:01"), None);
        assert_eq!(precheck(b"M404040,8000000000000001:cc"), Some("E01"));
        assert_eq!(precheck(b"M404040,0000000000000000001:cc"), None);
        assert_eq!(precheck(b"m404040,000000000000000000010001"), Some("E01"));
        assert_eq!(precheck(b"m404040,00000000000000000000010"), None);
        assert_eq!(precheck(b"m404040,1zz"), Some("E01"));
        assert_eq!(precheck(b"p1000"), Some("E01"));
        assert_eq!(precheck(b"P4b=00"), None);
        assert_eq!(precheck(b"qSupported"), None);
        assert_eq!(precheck(b"Z3,404040,4"), Some(""));
        assert_eq!(precheck(b"Z2,404040,4"), None);
        assert_eq!(frame("OK"), b"$OK#9a".to_vec());
    }
}

/// The arguments of a `vRun` body (`vRun;FILE;ARG;...`, hex), empty ones included.
pub fn vrun_args(body: &[u8]) -> Option<Vec<Vec<u8>>> {
    let rest = body.strip_prefix(b"vRun;")?;
    let mut parts = rest.split(|c| *c == b';');
    parts.next()?;
    parts.map(decode_hex).collect()
}

fn decode_hex(h: &[u8]) -> Option<Vec<u8>> {
    if !h.len().is_multiple_of(2) {
        return None;
    }
    h.chunks(2).map(|c| u8::from_str_radix(std::str::from_utf8(c).ok()?, 16).ok()).collect()
}

#[cfg(test)]
mod vrun_tests {
    use super::*;

    #[test]
    fn keeps_empty_arguments() {
        assert_eq!(vrun_args(b"vRun;2f62;31;;33").unwrap(), vec![b"1".to_vec(), vec![], b"3".to_vec()]);
        assert_eq!(vrun_args(b"vRun;2f62").unwrap(), Vec::<Vec<u8>>::new());
        assert!(vrun_args(b"vRun;2f62;zz").is_none());
    }
}
