//! A raw gdb remote serial protocol (RSP) client for protocol-level tests.
//!
//! [`RspClient`] spawns a server speaking RSP on its stdin/stdout (by default
//! `xol serve --stdio -- PROG ARGS`; any argv with [`RspClient::spawn`], e.g.
//! `gdbserver - PROG`), frames packets, handles acks, verifies checksums and
//! decodes run-length encoding and `}` escapes. Reads happen on a background
//! thread so every receive has a timeout. The server's stderr (where a stdio
//! server sends the inferior's output) is collected and available through
//! [`RspClient::server_stderr`]; the program's own `MARK:` lines (its marks
//! file, see [`super::gdb::MARKS_ENV`]) through [`RspClient::program_marks`].
//!
//! Also: packet helpers ([`checksum`], [`frame`], [`decode_body`],
//! [`escape_binary`]), hex helpers and a stop-reply parser.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::fmt;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use super::gdb::{gdbserver_path, marks_in_channel, new_marks_path, MARKS_ENV};
use super::proc::{xol_bin, ChildGuard, Collector};

/// Default timeout for one receive.
pub const RSP_TIMEOUT: Duration = Duration::from_secs(20);

/// Errors from [`RspClient`].
#[derive(Debug)]
pub enum RspError {
    /// Nothing (complete) arrived within the timeout.
    Timeout,
    /// The server closed its stdout.
    Eof,
    /// A packet's checksum did not match (a `-` was sent back).
    BadChecksum { expected: u8, got: u8, body: Vec<u8> },
    /// The server NAKed (`-`) our packet too many times.
    Nack,
    /// Unexpected bytes / malformed packet.
    Protocol(String),
    /// Writing to the server failed.
    Io(std::io::Error),
}

impl fmt::Display for RspError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RspError::Timeout => write!(f, "timed out waiting for the server"),
            RspError::Eof => write!(f, "server closed the connection"),
            RspError::BadChecksum { expected, got, body } => write!(
                f,
                "bad checksum: computed {expected:02x}, packet says {got:02x}, body {:?}",
                String::from_utf8_lossy(body)
            ),
            RspError::Nack => write!(f, "server kept NAKing our packet"),
            RspError::Protocol(s) => write!(f, "protocol error: {s}"),
            RspError::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for RspError {}

impl From<std::io::Error> for RspError {
    fn from(e: std::io::Error) -> Self {
        RspError::Io(e)
    }
}

/// Modulo-256 sum of `body`.
pub fn checksum(body: &[u8]) -> u8 {
    body.iter().fold(0u8, |a, &b| a.wrapping_add(b))
}

/// `$body#cs` (body sent as is: escape binary data with [`escape_binary`]).
pub fn frame(body: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(body.len() + 4);
    v.push(b'$');
    v.extend_from_slice(body);
    v.extend_from_slice(format!("#{:02x}", checksum(body)).as_bytes());
    v
}

/// Escapes `#`, `$`, `}` and `*` as `}` + (byte ^ 0x20), for binary packets
/// (`X`, `vFile:pwrite`, ...).
pub fn escape_binary(data: &[u8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(data.len());
    for &b in data {
        if matches!(b, b'#' | b'$' | b'}' | b'*') {
            v.push(b'}');
            v.push(b ^ 0x20);
        } else {
            v.push(b);
        }
    }
    v
}

/// Decodes a received packet body (between `$` and `#`): expands run-length
/// encoding (`X*n` = X repeated 1 + (n - 29) times in total) and then undoes
/// `}` escapes.
pub fn decode_body(raw: &[u8]) -> Result<Vec<u8>, String> {
    let mut rle = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let b = raw[i];
        if b == b'*' {
            let Some(&n) = raw.get(i + 1) else {
                return Err("run-length `*` at end of packet".into());
            };
            let Some(&prev) = rle.last() else {
                return Err("run-length `*` at start of packet".into());
            };
            if !(b' '..=b'~').contains(&n) {
                return Err(format!("bad run-length count byte {n:#04x}"));
            }
            for _ in 0..(n - 29) {
                rle.push(prev);
            }
            i += 2;
        } else {
            rle.push(b);
            i += 1;
        }
    }
    let mut out = Vec::with_capacity(rle.len());
    let mut it = rle.into_iter();
    while let Some(b) = it.next() {
        if b == b'}' {
            match it.next() {
                Some(e) => out.push(e ^ 0x20),
                None => return Err("escape `}` at end of packet".into()),
            }
        } else {
            out.push(b);
        }
    }
    Ok(out)
}

/// Lowercase hex encoding.
pub fn hex_encode(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// Hex-encodes a string (as gdb does for `qRcmd`, `vRun` arguments, ...).
pub fn hex_str(s: &str) -> String {
    hex_encode(s.as_bytes())
}

/// Decodes hex (either case); panics on malformed input.
pub fn hex_decode(s: &str) -> Vec<u8> {
    try_hex_decode(s).unwrap_or_else(|e| panic!("{e}"))
}

/// Decodes hex (either case).
pub fn try_hex_decode(s: &str) -> Result<Vec<u8>, String> {
    if !s.len().is_multiple_of(2) {
        return Err(format!("odd-length hex {s:?}"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).map_err(|_| format!("bad hex {s:?}")))
        .collect()
}

/// Parses a big-endian hex number as used in packet fields (`m4005d0,4`);
/// panics on malformed input.
pub fn parse_hex_u64(s: &str) -> u64 {
    u64::from_str_radix(s, 16).unwrap_or_else(|_| panic!("bad hex number {s:?}"))
}

/// Target-order (little-endian) hex of `v` as in `g`/`p` packets
/// (`0x401136` -> `3611400000000000`).
pub fn u64_to_le_hex(v: u64) -> String {
    hex_encode(&v.to_le_bytes())
}

/// Parses target-order (little-endian) hex of up to 8 bytes, as in `p`
/// replies. Panics on malformed input (including `xx` "unavailable").
pub fn le_hex_to_u64(s: &str) -> u64 {
    let b = hex_decode(s);
    assert!(b.len() <= 8, "more than 8 bytes: {s:?}");
    let mut a = [0u8; 8];
    a[..b.len()].copy_from_slice(&b);
    u64::from_le_bytes(a)
}

/// gdb register number of `rax` in the amd64 layout (`g` packet order:
/// rax rbx rcx rdx rsi rdi rbp rsp r8..r15 rip eflags cs ss ds es fs gs ...).
pub const AMD64_RAX: usize = 0;
/// gdb register number of `rdi` (first integer argument).
pub const AMD64_RDI: usize = 5;
/// gdb register number of `rbp`.
pub const AMD64_RBP: usize = 6;
/// gdb register number of `rsp`.
pub const AMD64_RSP: usize = 7;
/// gdb register number of `rip`.
pub const AMD64_RIP: usize = 16;

/// Value of 64-bit register `regno` (0..=16: rax..r15, rip) from an amd64
/// `g` reply, where each of those occupies 8 bytes at offset `regno * 8`.
pub fn g_reg64(g_reply: &str, regno: usize) -> u64 {
    assert!(regno <= AMD64_RIP, "only rax..r15 and rip are 8-byte slots at regno*8");
    let s = g_reply
        .get(regno * 16..regno * 16 + 16)
        .unwrap_or_else(|| panic!("g reply too short for register {regno}: {g_reply:?}"));
    le_hex_to_u64(s)
}

/// A parsed stop reply (`S05`, `T05thread:p1.1;06:...;`, `W00`, `X09`, ...).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StopReply {
    /// `S`, `T`, `W`, `X`, `N`, `O` ...
    pub kind: char,
    /// Signal (`S`/`T`/`X`) or exit status (`W`); 0 if absent.
    pub code: u8,
    /// `n:r` pairs of a `T` reply, or `("process", pid)` for `W`/`X` with
    /// `;process:pid`.
    pub pairs: Vec<(String, String)>,
}

impl StopReply {
    /// Parses a stop reply; `None` if it is not one.
    pub fn parse(s: &str) -> Option<StopReply> {
        let kind = s.chars().next()?;
        match kind {
            'S' | 'T' | 'W' | 'X' => {
                // S/T carry exactly two hex digits; W/X carry a hex number of
                // any length (gdbserver sends e.g. `W0;process:1a2b`).
                let end = if matches!(kind, 'S' | 'T') { 3 } else { s.find(';').unwrap_or(s.len()) };
                let code_str = s.get(1..end)?;
                if code_str.is_empty() {
                    return None;
                }
                let code = u8::from_str_radix(code_str, 16).ok()?;
                let rest = &s[end..];
                let pairs = rest
                    .split(';')
                    .filter(|p| !p.is_empty())
                    .map(|p| match p.split_once(':') {
                        Some((k, v)) => (k.to_string(), v.to_string()),
                        None => (p.to_string(), String::new()),
                    })
                    .collect();
                Some(StopReply { kind, code, pairs })
            }
            'N' => Some(StopReply { kind, code: 0, pairs: Vec::new() }),
            _ => None,
        }
    }

    /// Value of key `k` (e.g. `"thread"`, `"06"`, `"swbreak"`).
    pub fn get(&self, k: &str) -> Option<&str> {
        self.pairs.iter().find(|(kk, _)| kk == k).map(|(_, v)| v.as_str())
    }
}

/// A client speaking the gdb remote protocol to a server on its stdio.
pub struct RspClient {
    guard: ChildGuard,
    stdin: Option<ChildStdin>,
    rx: Receiver<Vec<u8>>,
    buf: VecDeque<u8>,
    eof: bool,
    no_ack: bool,
    timeout: Duration,
    stderr: Collector,
    notifications: VecDeque<Vec<u8>>,
    argv: Vec<OsString>,
    marks: std::path::PathBuf,
}

impl RspClient {
    /// Spawns `xol serve --stdio -- PROG ARGS`.
    pub fn xol(prog: &Path, args: &[&str]) -> RspClient {
        let mut argv: Vec<OsString> = vec![xol_bin().into(), "serve".into(), "--stdio".into(), "--".into()];
        argv.push(prog.into());
        argv.extend(args.iter().map(OsString::from));
        Self::spawn(&argv)
    }

    /// Spawns GNU `gdbserver - PROG ARGS`; panics if it is not installed.
    pub fn gdbserver(prog: &Path, args: &[&str]) -> RspClient {
        let gs = gdbserver_path().expect("gdbserver is not installed (check gdbserver_available())");
        let mut argv: Vec<OsString> = vec![gs.into(), "-".into()];
        argv.push(prog.into());
        argv.extend(args.iter().map(OsString::from));
        Self::spawn(&argv)
    }

    /// Spawns an arbitrary server `argv` that speaks RSP on stdin/stdout.
    pub fn spawn(argv: &[OsString]) -> RspClient {
        assert!(!argv.is_empty(), "empty argv");
        let marks = new_marks_path();
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..]).env(MARKS_ENV, &marks).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stdin = guard.stdin.take();
        let mut stdout = guard.stdout.take().unwrap();
        let stderr = Collector::new(guard.stderr.take().unwrap());
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("rsp-reader".into())
            .spawn(move || {
                let mut chunk = [0u8; 16384];
                loop {
                    match stdout.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if tx.send(chunk[..n].to_vec()).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .expect("spawn rsp reader thread");
        RspClient {
            guard,
            stdin,
            rx,
            buf: VecDeque::new(),
            eof: false,
            no_ack: false,
            timeout: RSP_TIMEOUT,
            stderr,
            notifications: VecDeque::new(),
            argv: argv.to_vec(),
            marks,
        }
    }

    /// Sets the timeout for each receive (default [`RSP_TIMEOUT`]).
    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.guard.pid()
    }

    /// Access to the server's process guard (wait for exit, kill, ...).
    pub fn guard(&mut self) -> &mut ChildGuard {
        &mut self.guard
    }

    /// True while the server process has not exited.
    pub fn is_alive(&mut self) -> bool {
        self.guard.is_running()
    }

    /// Waits up to `timeout` for the server to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.guard.wait_timeout(timeout)
    }

    /// The `MARK:` values the program (and its descendants) wrote to its own
    /// channel so far, in the order written.
    pub fn program_marks(&self) -> Vec<String> {
        std::fs::read(&self.marks).map(|b| marks_in_channel(&String::from_utf8_lossy(&b))).unwrap_or_default()
    }

    /// Everything the server wrote to stderr so far.
    pub fn server_stderr(&self) -> String {
        self.stderr.text()
    }

    /// True once `QStartNoAckMode` was accepted.
    pub fn is_no_ack(&self) -> bool {
        self.no_ack
    }

    /// Closes the server's stdin (EOF on the connection).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    fn describe(&self) -> String {
        format!("server {:?}\n--- server stderr ---\n{}", self.argv, self.stderr.text())
    }

    /// Writes raw bytes to the server (no framing, no ack handling): for
    /// hostile input tests.
    pub fn send_raw(&mut self, bytes: &[u8]) -> Result<(), RspError> {
        let w = self.stdin.as_mut().ok_or_else(|| RspError::Protocol("stdin closed".into()))?;
        w.write_all(bytes)?;
        w.flush()?;
        Ok(())
    }

    /// Sends Ctrl-C (a raw 0x03 byte).
    pub fn interrupt(&mut self) {
        self.send_raw(&[0x03]).expect("writing 0x03 to the server");
    }

    fn fill(&mut self, deadline: Instant) -> Result<(), RspError> {
        if self.eof {
            return Err(RspError::Eof);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(RspError::Timeout);
        }
        match self.rx.recv_timeout(deadline - now) {
            Ok(chunk) => {
                self.buf.extend(chunk);
                Ok(())
            }
            Err(RecvTimeoutError::Timeout) => Err(RspError::Timeout),
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                Err(RspError::Eof)
            }
        }
    }

    fn next_byte(&mut self, deadline: Instant) -> Result<u8, RspError> {
        loop {
            if let Some(b) = self.buf.pop_front() {
                return Ok(b);
            }
            self.fill(deadline)?;
        }
    }

    /// Reads one raw byte (e.g. to check for an ack after [`Self::send_raw`]).
    pub fn read_byte(&mut self) -> Result<u8, RspError> {
        let d = Instant::now() + self.timeout;
        self.next_byte(d)
    }

    /// Sends `$payload#cs`; unless in no-ack mode, waits for the `+` ack
    /// (retransmitting on `-`, up to 3 times).
    pub fn send(&mut self, payload: &str) -> Result<(), RspError> {
        self.send_bytes(payload.as_bytes())
    }

    /// Like [`Self::send`] for a binary body (already escaped).
    pub fn send_bytes(&mut self, body: &[u8]) -> Result<(), RspError> {
        let pkt = frame(body);
        for _ in 0..4 {
            self.send_raw(&pkt)?;
            if self.no_ack {
                return Ok(());
            }
            let deadline = Instant::now() + self.timeout;
            match self.next_byte(deadline)? {
                b'+' => return Ok(()),
                b'-' => continue,
                other => {
                    self.buf.push_front(other);
                    return Err(RspError::Protocol(format!("expected ack `+`, got {:?}", other as char)));
                }
            }
        }
        Err(RspError::Nack)
    }

    /// Receives one `$...#cs` packet and returns its decoded body (run-length
    /// expanded, unescaped). Stray `+` acks are skipped; `%...#cs`
    /// notifications are queued (see [`Self::take_notification`]). Acks the
    /// packet with `+` (or `-` on a bad checksum) unless in no-ack mode.
    pub fn recv_bytes(&mut self) -> Result<Vec<u8>, RspError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let start = self.next_byte(deadline)?;
            match start {
                b'+' => continue,
                b'-' => return Err(RspError::Nack),
                b'$' | b'%' => {}
                other => {
                    return Err(RspError::Protocol(format!(
                        "unexpected byte {other:#04x} ({:?}) outside a packet",
                        other as char
                    )))
                }
            }
            let mut raw = Vec::new();
            loop {
                let b = self.next_byte(deadline)?;
                if b == b'#' {
                    break;
                }
                raw.push(b);
            }
            let c1 = self.next_byte(deadline)?;
            let c2 = self.next_byte(deadline)?;
            let cs_str = [c1, c2];
            let got =
                std::str::from_utf8(&cs_str).ok().and_then(|s| u8::from_str_radix(s, 16).ok()).ok_or_else(|| {
                    RspError::Protocol(format!("bad checksum digits {:?}", String::from_utf8_lossy(&cs_str)))
                })?;
            let expected = checksum(&raw);
            if start == b'%' {
                // Notifications are never acked.
                if got != expected {
                    return Err(RspError::BadChecksum { expected, got, body: raw });
                }
                let body = decode_body(&raw).map_err(RspError::Protocol)?;
                self.notifications.push_back(body);
                continue;
            }
            if got != expected {
                if !self.no_ack {
                    self.send_raw(b"-")?;
                }
                return Err(RspError::BadChecksum { expected, got, body: raw });
            }
            if !self.no_ack {
                // The server may already be gone after its last reply (`OK` to `D`, `W` on
                // exit), as with gdbserver; gdb ignores a failed ack there too.
                let _ = self.send_raw(b"+");
            }
            return decode_body(&raw).map_err(RspError::Protocol);
        }
    }

    /// Like [`Self::recv_bytes`], as a string (lossy UTF-8: use
    /// `recv_bytes` for binary replies such as `x` memory reads).
    pub fn recv(&mut self) -> Result<String, RspError> {
        self.recv_bytes().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Sends `payload` and returns the reply; panics (with the server's
    /// stderr) on any protocol error or timeout.
    pub fn request(&mut self, payload: &str) -> String {
        match self.try_request(payload) {
            Ok(r) => r,
            Err(e) => panic!("request {payload:?} failed: {e}\n{}", self.describe()),
        }
    }

    /// Sends `payload` and returns the reply.
    pub fn try_request(&mut self, payload: &str) -> Result<String, RspError> {
        self.send(payload)?;
        self.recv()
    }

    /// Sends a binary-body request and returns the raw reply bytes.
    pub fn request_bytes(&mut self, body: &[u8]) -> Result<Vec<u8>, RspError> {
        self.send_bytes(body)?;
        self.recv_bytes()
    }

    /// Negotiates `QStartNoAckMode`; panics unless the server answers `OK`.
    pub fn no_ack_mode(&mut self) {
        let r = self.request("QStartNoAckMode");
        assert_eq!(r, "OK", "QStartNoAckMode refused\n{}", self.describe());
        self.no_ack = true;
    }

    /// Oldest queued `%...` notification body, if any.
    pub fn take_notification(&mut self) -> Option<String> {
        self.notifications.pop_front().map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    /// Sends `qSupported` with gdb-like features and returns the reply.
    pub fn q_supported(&mut self) -> String {
        self.request(
            "qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;\
             vfork-events+;exec-events+;vContSupported+;QThreadEvents+;no-resumed+;xmlRegisters=i386",
        )
    }

    /// Reads `len` bytes at `addr` with `m`; panics on an error reply.
    pub fn read_mem(&mut self, addr: u64, len: usize) -> Vec<u8> {
        let r = self.request(&format!("m{addr:x},{len:x}"));
        assert!(!r.starts_with('E') || r.len() != 3, "m{addr:x},{len:x} -> {r}\n{}", self.describe());
        hex_decode(&r)
    }

    /// Writes `data` at `addr` with `M`; panics unless the reply is `OK`.
    pub fn write_mem(&mut self, addr: u64, data: &[u8]) {
        let r = self.request(&format!("M{addr:x},{:x}:{}", data.len(), hex_encode(data)));
        assert_eq!(r, "OK", "M{addr:x} failed\n{}", self.describe());
    }
}

impl Drop for RspClient {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.marks);
    }
}
