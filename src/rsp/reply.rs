//! Reply encoders: the payloads xol sends gdb (framing, escaping and the checksum are
//! [`super::framing`]'s), and the typed [`StopReply`], which also makes `%Stop` notifications
//! and parses stop replies back (for round trips and packet-level test clients).
//!
//! Binary replies (`x`, `qXfer` chunks, `vFile` attachments) carry raw bytes here; the framing
//! encoder escapes `$ # } *` in them. Text replies never contain those bytes: the one reply
//! that carries free text, [`error_message`], replaces them, since gdb does not unescape text
//! replies and would read a `*` as a run-length marker.
//!
//! Pure; encoders cannot fail and the stop-reply parser cannot panic on input.

use super::framing;
use super::hex;
use super::request::{ParseError, Problem};
use super::thread_id::ThreadId;

/// `OK`.
pub fn ok() -> Vec<u8> {
    b"OK".to_vec()
}

/// The empty reply: "not supported" (unknown packets, unsupported features).
pub fn empty() -> Vec<u8> {
    Vec::new()
}

/// `Exx`: an error with a number (gdbserver sends errno values for memory and file errors).
pub fn error(code: u8) -> Vec<u8> {
    let mut out = b"E".to_vec();
    hex::push_u8(&mut out, code);
    out
}

/// `E.text`: an error with a message. gdb treats `E.` as an error wherever it checks a reply
/// with its generic result check (`Z`/`z`, `qXfer`, `vCont`, the `Q` settings, `vRun`,
/// `vAttach`, `qSearch`, ...); answer `m`, `g` and `p` with [`error`] instead, whose replies gdb
/// otherwise reads as hex data. Bytes that are not printable ASCII, and `$ # } *`, become `?`.
pub fn error_message(text: &str) -> Vec<u8> {
    let mut out = b"E.".to_vec();
    out.extend(text.bytes().map(|b| match b {
        b'$' | b'#' | b'}' | b'*' => b'?',
        0x20..=0x7e => b,
        _ => b'?',
    }));
    out
}

/// The `E.` reply for a malformed packet (its [`ParseError`] text).
pub fn parse_error(e: &ParseError) -> Vec<u8> {
    error_message(&e.to_string())
}

/// Hex-encoded bytes: `m` and `p` replies, `g` with every register known.
pub fn hex_data(bytes: &[u8]) -> Vec<u8> {
    hex::encode(bytes)
}

/// A `g`/`p` reply where some bytes are unavailable: `None` is written `xx`, as gdbserver does.
pub fn register_bytes(bytes: &[Option<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(2));
    for b in bytes {
        match b {
            Some(b) => hex::push_u8(&mut out, *b),
            None => out.extend_from_slice(b"xx"),
        }
    }
    out
}

/// The reply to `x addr,len`: `b` then the bytes, binary (gdb's form; an empty read is `b`).
pub fn binary_memory(data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(b'b');
    out.extend_from_slice(data);
    out
}

/// The reply to lldb's `x addr,len`: the bytes alone, binary.
pub fn binary_memory_lldb(data: &[u8]) -> Vec<u8> {
    data.to_vec()
}

/// One `qXfer` read chunk: `m` (more follows) or `l` (the last), then the bytes, binary.
pub fn xfer_chunk(data: &[u8], last: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 1);
    out.push(if last { b'l' } else { b'm' });
    out.extend_from_slice(data);
    out
}

/// The `qXfer` read reply for `offset,len` of a whole object held in memory: the chunk, `l`
/// when it reaches the end (or the offset is past it), `m` otherwise.
pub fn xfer_slice(object: &[u8], offset: u64, len: u64) -> Vec<u8> {
    let size = object.len();
    let start = usize::try_from(offset).unwrap_or(usize::MAX).min(size);
    let end = start.saturating_add(usize::try_from(len).unwrap_or(usize::MAX)).min(size);
    xfer_chunk(object.get(start..end).unwrap_or_default(), end == size)
}

/// A `qfThreadInfo`/`qsThreadInfo` reply: `m` and the ids, comma-separated; `l` when there are
/// none left.
pub fn thread_list(threads: &[ThreadId]) -> Vec<u8> {
    if threads.is_empty() {
        return b"l".to_vec();
    }
    let mut out = b"m".to_vec();
    for (i, t) in threads.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        t.push(&mut out);
    }
    out
}

/// The `qC` reply: `QC` and the thread id.
pub fn current_thread(thread: ThreadId) -> Vec<u8> {
    let mut out = b"QC".to_vec();
    thread.push(&mut out);
    out
}

/// The `qAttached` reply: `1` (attached: detach on quit) or `0` (created: kill on quit).
pub fn attached(attached: bool) -> Vec<u8> {
    vec![if attached { b'1' } else { b'0' }]
}

/// The `qOffsets` reply `Text=..;Data=..;Bss=..` (bss takes the data offset).
pub fn offsets(text: u64, data: u64) -> Vec<u8> {
    let mut out = b"Text=".to_vec();
    hex::push_u64(&mut out, text);
    out.extend_from_slice(b";Data=");
    hex::push_u64(&mut out, data);
    out.extend_from_slice(b";Bss=");
    hex::push_u64(&mut out, data);
    out
}

/// `qSymbol:hexname`: ask gdb for a symbol's value (the reply to a `qSymbol` packet).
pub fn symbol_lookup(name: &[u8]) -> Vec<u8> {
    let mut out = b"qSymbol:".to_vec();
    hex::push_bytes(&mut out, name);
    out
}

/// `qRelocInsn:from;to`: ask gdb to relocate an instruction (the reply to a fast `QTDP`).
pub fn relocate_insn(from: u64, to: u64) -> Vec<u8> {
    let mut out = b"qRelocInsn:".to_vec();
    hex::push_u64(&mut out, from);
    out.push(b';');
    hex::push_u64(&mut out, to);
    out
}

/// The `qCRC` reply: `C` and the CRC-32.
pub fn crc(crc: u32) -> Vec<u8> {
    let mut out = b"C".to_vec();
    hex::push_u64(&mut out, u64::from(crc));
    out
}

/// The `qSearch:memory` reply: `1,addr` for a match, `0` for none.
pub fn search_result(found: Option<u64>) -> Vec<u8> {
    match found {
        Some(addr) => {
            let mut out = b"1,".to_vec();
            hex::push_u64(&mut out, addr);
            out
        }
        None => b"0".to_vec(),
    }
}

/// The `qGetTLSAddr` reply: the address, hex.
pub fn tls_address(addr: u64) -> Vec<u8> {
    let mut out = Vec::new();
    hex::push_u64(&mut out, addr);
    out
}

/// The `qThreadExtraInfo` reply (and a `qRcmd` text line): the text, hex-encoded.
pub fn hex_text(text: &[u8]) -> Vec<u8> {
    hex::encode(text)
}

/// `O` and the text hex-encoded: console output (between a resume and its stop reply, and for
/// `qRcmd` output).
pub fn console_output(text: &[u8]) -> Vec<u8> {
    let mut out = b"O".to_vec();
    hex::push_bytes(&mut out, text);
    out
}

/// The `vCont?` reply for everything xol supports: `vCont;c;C;s;S;t;r`.
pub fn vcont_supported() -> Vec<u8> {
    b"vCont;c;C;s;S;t;r".to_vec()
}

/// One entry of the `qSupported` reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Support<'a> {
    /// `name+`.
    Yes,
    /// `name-`.
    No,
    /// `name=value`.
    Value(&'a str),
}

/// The `qSupported` reply: the entries separated by `;`.
pub fn supported(features: &[(&str, Support<'_>)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (name, value)) in features.iter().enumerate() {
        if i > 0 {
            out.push(b';');
        }
        out.extend_from_slice(name.as_bytes());
        match value {
            Support::Yes => out.push(b'+'),
            Support::No => out.push(b'-'),
            Support::Value(v) => {
                out.push(b'=');
                out.extend_from_slice(v.as_bytes());
            }
        }
    }
    out
}

/// `key:value;...`: lldb's `qHostInfo` and `qProcessInfo` replies.
pub fn key_values(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut out = Vec::new();
    for (k, v) in pairs {
        out.extend_from_slice(k.as_bytes());
        out.push(b':');
        out.extend_from_slice(v.as_bytes());
        out.push(b';');
    }
    out
}

/// A host I/O (`vFile`) reply: `Fresult[,errno][;attachment]`; a negative result is written
/// `-` and its magnitude (`F-1,2` is "failed, ENOENT" in gdb's errno numbers).
pub fn file_result(result: i64, errno: Option<u32>, attachment: Option<&[u8]>) -> Vec<u8> {
    let mut out = b"F".to_vec();
    if result < 0 {
        out.push(b'-');
    }
    hex::push_u64(&mut out, result.unsigned_abs());
    if let Some(e) = errno {
        out.push(b',');
        hex::push_u64(&mut out, u64::from(e));
    }
    if let Some(a) = attachment {
        out.push(b';');
        out.extend_from_slice(a);
    }
    out
}

/// A stop reply: the answer to `?`, `c`, `s`, `vCont`, `vStopped`, and the body of a `%Stop`
/// notification in non-stop mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReply {
    /// `SAA`: stopped by a signal, nothing more said.
    Signal(u8),
    /// `TAA...`: stopped by a signal, with the thread, core, registers and the reason.
    Stopped(Stopped),
    /// `WAA[;process:pid]`: the process exited with this status.
    Exited {
        /// The exit status.
        status: u8,
        /// The process (multiprocess).
        pid: Option<u32>,
    },
    /// `XAA[;process:pid]`: the process was killed by this signal.
    Terminated {
        /// The signal (gdb's number).
        signal: u8,
        /// The process (multiprocess).
        pid: Option<u32>,
    },
    /// `wAA;thread-id`: a thread exited (with `QThreadEvents` on, or the last of a process).
    ThreadExited {
        /// The exit status.
        status: u8,
        /// The thread.
        thread: ThreadId,
    },
    /// `N`: no thread is resumed any more, nothing can stop (`no-resumed+`).
    NoResumed,
    /// `OXX...`: console output, hex (not a stop: gdb keeps waiting for one).
    Output(Vec<u8>),
}

/// The fields of a `T` stop reply.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Stopped {
    /// The signal (gdb's number; 5 is SIGTRAP).
    pub signal: u8,
    /// The thread that stopped (`thread:`).
    pub thread: Option<ThreadId>,
    /// The core it ran on (`core:`).
    pub core: Option<u32>,
    /// Registers sent ahead (`NN:bytes;`, target order), so gdb needs no `g` for them.
    pub registers: Vec<(u32, Vec<u8>)>,
    /// Why it stopped, beyond the signal.
    pub reason: Option<StopReason>,
}

/// The reason part of a `T` stop reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// `watch:addr`: a write watchpoint.
    Watch(u64),
    /// `rwatch:addr`: a read watchpoint.
    ReadWatch(u64),
    /// `awatch:addr`: an access watchpoint.
    AccessWatch(u64),
    /// `swbreak:`: a software breakpoint (the pc is already rewound to it).
    SwBreak,
    /// `hwbreak:`: a hardware breakpoint.
    HwBreak,
    /// `fork:child`: the thread forked; the value is the **child's** thread id.
    Fork(ThreadId),
    /// `vfork:child`: the thread vforked; the child's thread id.
    VFork(ThreadId),
    /// `vforkdone:`: the vfork child exec'd or exited.
    VForkDone,
    /// `exec:hexpath`: the process exec'd this file.
    Exec(Vec<u8>),
    /// `syscall_entry:n`.
    SyscallEntry(u64),
    /// `syscall_return:n`.
    SyscallReturn(u64),
    /// `create:`: a new thread (with `QThreadEvents`).
    Create,
    /// `library:`: the loaded libraries changed.
    Library,
}

impl StopReply {
    /// The reply payload.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.push(&mut out);
        out
    }

    /// Appends the reply payload.
    pub fn push(&self, out: &mut Vec<u8>) {
        match self {
            StopReply::Signal(sig) => {
                out.push(b'S');
                hex::push_u8(out, *sig);
            }
            StopReply::Stopped(s) => s.push(out),
            StopReply::Exited { status, pid } | StopReply::Terminated { signal: status, pid } => {
                out.push(if matches!(self, StopReply::Exited { .. }) { b'W' } else { b'X' });
                hex::push_u8(out, *status);
                if let Some(pid) = pid {
                    out.extend_from_slice(b";process:");
                    hex::push_u64(out, u64::from(*pid));
                }
            }
            StopReply::ThreadExited { status, thread } => {
                out.push(b'w');
                hex::push_u8(out, *status);
                out.push(b';');
                thread.push(out);
            }
            StopReply::NoResumed => out.push(b'N'),
            StopReply::Output(text) => {
                out.push(b'O');
                hex::push_bytes(out, text);
            }
        }
    }

    /// The non-stop notification of this stop: `%Stop:payload#cs`, framed.
    pub fn notification(&self) -> Vec<u8> {
        let mut payload = b"Stop:".to_vec();
        self.push(&mut payload);
        framing::frame_notification(&payload)
    }

    /// Parses a stop reply payload (fields gdb would skip, unknown keys, are skipped).
    pub fn parse(p: &[u8]) -> Result<StopReply, ParseError> {
        let cx = |problem| ParseError { packet: "stop reply", problem };
        let (&kind, body) = p.split_first().ok_or(cx(Problem::Missing("kind")))?;
        let code =
            |s: &[u8]| hex::u8_from(s.get(..2).unwrap_or_default()).ok_or(cx(Problem::NotHex("signal or status")));
        let after_code = body.get(2..).unwrap_or_default();
        let process = |rest: &[u8]| -> Result<Option<u32>, ParseError> {
            if rest.is_empty() {
                return Ok(None);
            }
            let pid = rest.strip_prefix(b";process:").ok_or(cx(Problem::Trailing))?;
            hex::u32_from(pid).map(Some).ok_or(cx(Problem::NotHex("pid")))
        };
        match kind {
            b'S' => {
                let sig = code(body)?;
                if !after_code.is_empty() {
                    return Err(cx(Problem::Trailing));
                }
                Ok(StopReply::Signal(sig))
            }
            b'W' => Ok(StopReply::Exited { status: code(body)?, pid: process(after_code)? }),
            b'X' => Ok(StopReply::Terminated { signal: code(body)?, pid: process(after_code)? }),
            b'w' => {
                let status = code(body)?;
                let t = after_code.strip_prefix(b";").ok_or(cx(Problem::Missing("`;thread-id`")))?;
                Ok(StopReply::ThreadExited {
                    status,
                    thread: ThreadId::parse(t).ok_or(cx(Problem::Invalid("thread id")))?,
                })
            }
            b'N' if body.is_empty() => Ok(StopReply::NoResumed),
            b'O' => Ok(StopReply::Output(hex::bytes_from(body).ok_or(cx(Problem::NotHex("output")))?)),
            b'T' => Stopped::parse(code(body)?, after_code).map(StopReply::Stopped),
            _ => Err(cx(Problem::Invalid("kind"))),
        }
    }
}

impl Stopped {
    fn push(&self, out: &mut Vec<u8>) {
        out.push(b'T');
        hex::push_u8(out, self.signal);
        if let Some(r) = &self.reason {
            r.push(out);
        }
        for (reg, bytes) in &self.registers {
            if *reg < 0x10 {
                out.push(b'0');
            }
            hex::push_u64(out, u64::from(*reg));
            out.push(b':');
            hex::push_bytes(out, bytes);
            out.push(b';');
        }
        if let Some(t) = &self.thread {
            out.extend_from_slice(b"thread:");
            t.push(out);
            out.push(b';');
        }
        if let Some(core) = self.core {
            out.extend_from_slice(b"core:");
            hex::push_u64(out, u64::from(core));
            out.push(b';');
        }
    }

    fn parse(signal: u8, fields: &[u8]) -> Result<Stopped, ParseError> {
        let cx = |problem| ParseError { packet: "stop reply", problem };
        let num = |v: &[u8], what| hex::u64_from(v).ok_or(cx(Problem::NotHex(what)));
        let tid = |v: &[u8]| ThreadId::parse(v).ok_or(cx(Problem::Invalid("thread id")));
        let empty = |v: &[u8], r: StopReason| if v.is_empty() { Ok(r) } else { Err(cx(Problem::Trailing)) };
        let mut s = Stopped { signal, ..Stopped::default() };
        for field in fields.split(|&b| b == b';').filter(|f| !f.is_empty()) {
            let i = field.iter().position(|&b| b == b':').ok_or(cx(Problem::Missing("`:` in a field")))?;
            let (key, value) = (field.get(..i).unwrap_or_default(), field.get(i + 1..).unwrap_or_default());
            let reason = match key {
                b"thread" => {
                    s.thread = Some(tid(value)?);
                    continue;
                }
                b"core" => {
                    s.core = Some(u32::try_from(num(value, "core")?).map_err(|_| cx(Problem::NotHex("core")))?);
                    continue;
                }
                b"watch" => StopReason::Watch(num(value, "address")?),
                b"rwatch" => StopReason::ReadWatch(num(value, "address")?),
                b"awatch" => StopReason::AccessWatch(num(value, "address")?),
                b"swbreak" => empty(value, StopReason::SwBreak)?,
                b"hwbreak" => empty(value, StopReason::HwBreak)?,
                b"fork" => StopReason::Fork(tid(value)?),
                b"vfork" => StopReason::VFork(tid(value)?),
                b"vforkdone" => empty(value, StopReason::VForkDone)?,
                b"exec" => StopReason::Exec(hex::bytes_from(value).ok_or(cx(Problem::NotHex("exec path")))?),
                b"syscall_entry" => StopReason::SyscallEntry(num(value, "syscall number")?),
                b"syscall_return" => StopReason::SyscallReturn(num(value, "syscall number")?),
                b"create" => empty(value, StopReason::Create)?,
                b"library" => empty(value, StopReason::Library)?,
                _ => {
                    if let Some(reg) = hex::u32_from(key) {
                        let bytes = hex::bytes_from(value).ok_or(cx(Problem::NotHex("register value")))?;
                        s.registers.push((reg, bytes));
                    }
                    // Other keys (`replaylog`, a later gdb's): skipped, as gdb does.
                    continue;
                }
            };
            s.reason = Some(reason);
        }
        Ok(s)
    }
}

impl StopReason {
    fn push(&self, out: &mut Vec<u8>) {
        let (key, value): (&[u8], Option<Vec<u8>>) = match self {
            StopReason::Watch(a) => (b"watch", Some(number(*a))),
            StopReason::ReadWatch(a) => (b"rwatch", Some(number(*a))),
            StopReason::AccessWatch(a) => (b"awatch", Some(number(*a))),
            StopReason::SwBreak => (b"swbreak", None),
            StopReason::HwBreak => (b"hwbreak", None),
            StopReason::Fork(t) => (b"fork", Some(t.encode())),
            StopReason::VFork(t) => (b"vfork", Some(t.encode())),
            StopReason::VForkDone => (b"vforkdone", None),
            StopReason::Exec(path) => (b"exec", Some(hex::encode(path))),
            StopReason::SyscallEntry(n) => (b"syscall_entry", Some(number(*n))),
            StopReason::SyscallReturn(n) => (b"syscall_return", Some(number(*n))),
            StopReason::Create => (b"create", None),
            StopReason::Library => (b"library", None),
        };
        out.extend_from_slice(key);
        out.push(b':');
        out.extend(value.unwrap_or_default());
        out.push(b';');
    }
}

fn number(n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    hex::push_u64(&mut out, n);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rsp::framing::{Decoder, Event};
    use crate::rsp::thread_id::Id;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8_lossy(&v).into_owned()
    }

    #[test]
    fn standard_replies() {
        assert_eq!(ok(), b"OK");
        assert!(empty().is_empty());
        assert_eq!(error(1), b"E01");
        assert_eq!(error(0x16), b"E16");
        assert_eq!(s(error_message("no such thread")), "E.no such thread");
        assert_eq!(s(error_message("a*b#c$d}e\n\u{e9}")), "E.a?b?c?d?e???");
        let e = crate::rsp::request::parse(b"m1").err();
        assert_eq!(e.map(|e| s(parse_error(&e))).as_deref(), Some("E.malformed m packet: missing `,length`"));
    }

    #[test]
    fn data_replies() {
        assert_eq!(hex_data(&[0xde, 0xad, 0x00]), b"dead00");
        assert_eq!(register_bytes(&[Some(1), None, Some(0xff)]), b"01xxff");
        assert_eq!(binary_memory(b"a$#"), b"ba$#");
        assert_eq!(binary_memory(b""), b"b");
        assert_eq!(binary_memory_lldb(b"ab"), b"ab");
        assert_eq!(xfer_chunk(b"<x/>", true), b"l<x/>");
        assert_eq!(xfer_chunk(b"<x", false), b"m<x");
        let doc = b"<threads></threads>";
        assert_eq!(s(xfer_slice(doc, 0, 4)), "m<thr");
        assert_eq!(s(xfer_slice(doc, 0, 0x1000)), "l<threads></threads>");
        assert_eq!(s(xfer_slice(doc, 9, 10)), "l</threads>");
        assert_eq!(s(xfer_slice(doc, 100, 10)), "l");
        assert_eq!(s(xfer_slice(doc, u64::MAX, u64::MAX)), "l");
        assert_eq!(s(xfer_slice(doc, 1, u64::MAX)), "lthreads></threads>");
        // qXfer data goes through framing's escaping and comes back intact.
        let chunk = xfer_chunk(b"#}$*", true);
        let got: Vec<Event> = Decoder::new().feed(&framing::frame(&chunk)).collect();
        assert_eq!(got, vec![Event::Packet(chunk)]);
    }

    #[test]
    fn thread_and_query_replies() {
        assert_eq!(s(thread_list(&[ThreadId::new(0x7a3, 0x7a3), ThreadId::new(0x7a3, 0x7a4)])), "mp7a3.7a3,p7a3.7a4");
        assert_eq!(s(thread_list(&[])), "l");
        assert_eq!(s(current_thread(ThreadId::new(0x7a3, 0x7a4))), "QCp7a3.7a4");
        assert_eq!(attached(true), b"1");
        assert_eq!(attached(false), b"0");
        assert_eq!(s(offsets(0x1000, 0x2000)), "Text=1000;Data=2000;Bss=2000");
        assert_eq!(s(symbol_lookup(b"nptl_version")), "qSymbol:6e70746c5f76657273696f6e");
        assert_eq!(s(relocate_insn(0x401136, 0x7ffff000)), "qRelocInsn:401136;7ffff000");
        assert_eq!(s(crc(0xdeadbeef)), "Cdeadbeef");
        assert_eq!(s(search_result(Some(0x555555558010))), "1,555555558010");
        assert_eq!(s(search_result(None)), "0");
        assert_eq!(s(tls_address(0x7ffff7d8a6f8)), "7ffff7d8a6f8");
        assert_eq!(s(hex_text(b"Name: a.out")), "4e616d653a20612e6f7574");
        assert_eq!(s(console_output(b"hi\n")), "O68690a");
        assert_eq!(s(vcont_supported()), "vCont;c;C;s;S;t;r");
        assert_eq!(
            s(supported(&[
                ("PacketSize", Support::Value("3fff")),
                ("multiprocess", Support::Yes),
                ("qXfer:btrace:read", Support::No)
            ])),
            "PacketSize=3fff;multiprocess+;qXfer:btrace:read-"
        );
        assert_eq!(s(key_values(&[("ptrsize", "8"), ("endian", "little")])), "ptrsize:8;endian:little;");
        assert_eq!(s(file_result(7, None, None)), "F7");
        assert_eq!(s(file_result(-1, Some(2), None)), "F-1,2");
        assert_eq!(s(file_result(3, None, Some(b"a;b"))), "F3;a;b");
        assert_eq!(s(file_result(i64::MIN, None, None)), "F-8000000000000000");
    }

    fn stopped(signal: u8) -> Stopped {
        Stopped { signal, ..Stopped::default() }
    }

    #[test]
    fn stop_replies_as_gdbserver_writes_them() {
        let t = ThreadId::new(0x7a3, 0x7a3);
        let child = ThreadId::new(0x7a9, 0x7a9);
        let cases = vec![
            (StopReply::Signal(5), "S05"),
            (
                StopReply::Stopped(Stopped { thread: Some(t), core: Some(1), ..stopped(5) }),
                "T05thread:p7a3.7a3;core:1;",
            ),
            (
                StopReply::Stopped(Stopped {
                    thread: Some(t),
                    registers: vec![
                        (6, vec![0x10, 0xe0, 0xff, 0xff, 0xff, 0x7f, 0, 0]),
                        (0x10, vec![0x49, 0x51, 0, 0]),
                    ],
                    reason: Some(StopReason::SwBreak),
                    ..stopped(5)
                }),
                "T05swbreak:;06:10e0ffffff7f0000;10:49510000;thread:p7a3.7a3;",
            ),
            (StopReply::Stopped(Stopped { reason: Some(StopReason::HwBreak), ..stopped(5) }), "T05hwbreak:;"),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::Watch(0x555555558014)), ..stopped(5) }),
                "T05watch:555555558014;",
            ),
            (StopReply::Stopped(Stopped { reason: Some(StopReason::ReadWatch(0x10)), ..stopped(5) }), "T05rwatch:10;"),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::AccessWatch(0x10)), ..stopped(5) }),
                "T05awatch:10;",
            ),
            // The fork event names the child, not the parent that stopped.
            (
                StopReply::Stopped(Stopped { thread: Some(t), reason: Some(StopReason::Fork(child)), ..stopped(5) }),
                "T05fork:p7a9.7a9;thread:p7a3.7a3;",
            ),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::VFork(child)), ..stopped(5) }),
                "T05vfork:p7a9.7a9;",
            ),
            (StopReply::Stopped(Stopped { reason: Some(StopReason::VForkDone), ..stopped(5) }), "T05vforkdone:;"),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::Exec(b"/bin/true".to_vec())), ..stopped(5) }),
                "T05exec:2f62696e2f74727565;",
            ),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::SyscallEntry(0x3c)), ..stopped(5) }),
                "T05syscall_entry:3c;",
            ),
            (
                StopReply::Stopped(Stopped { reason: Some(StopReason::SyscallReturn(0)), ..stopped(5) }),
                "T05syscall_return:0;",
            ),
            (StopReply::Stopped(Stopped { reason: Some(StopReason::Create), ..stopped(5) }), "T05create:;"),
            (StopReply::Stopped(Stopped { reason: Some(StopReason::Library), ..stopped(5) }), "T05library:;"),
            (StopReply::Stopped(stopped(0x13)), "T13"),
            (StopReply::Exited { status: 0, pid: None }, "W00"),
            (StopReply::Exited { status: 3, pid: Some(0x7a3) }, "W03;process:7a3"),
            (StopReply::Terminated { signal: 9, pid: Some(0x7a3) }, "X09;process:7a3"),
            (StopReply::ThreadExited { status: 0, thread: ThreadId::new(0x7a3, 0x7a4) }, "w00;p7a3.7a4"),
            (StopReply::NoResumed, "N"),
            (StopReply::Output(b"hi\n".to_vec()), "O68690a"),
        ];
        for (reply, wire) in cases {
            assert_eq!(s(reply.encode()), wire);
            assert_eq!(StopReply::parse(wire.as_bytes()), Ok(reply.clone()), "{wire}");
        }
    }

    #[test]
    fn stop_notifications() {
        let reply = StopReply::Stopped(Stopped { thread: Some(ThreadId::new(0x7a3, 0x7a4)), ..stopped(0x13) });
        let wire = reply.notification();
        assert!(wire.starts_with(b"%Stop:T13thread:p7a3.7a4;#"), "{}", s(wire.clone()));
        let got: Vec<Event> = Decoder::new().feed(&wire).collect();
        assert_eq!(got, vec![Event::Notification(b"Stop:T13thread:p7a3.7a4;".to_vec())]);
        let got = match got.first() {
            Some(Event::Notification(p)) => p.strip_prefix(b"Stop:").map(StopReply::parse),
            _ => None,
        };
        assert_eq!(got, Some(Ok(reply)));
    }

    #[test]
    fn parsing_stop_replies() {
        // gdb skips keys it does not know; so does the parser.
        let r = StopReply::parse(b"T05replaylog:1;thread:p1.-1;");
        let want = Stopped { thread: Some(ThreadId { pid: Some(Id::Is(1)), tid: Id::All }), ..stopped(5) };
        assert_eq!(r, Ok(StopReply::Stopped(want)));
        for bad in [
            &b""[..],
            b"T",
            b"T5",
            b"Tzz",
            b"T05thread",
            b"T05thread:x;",
            b"T05core:100000000;",
            b"T05swbreak:1;",
            b"T05exec:2;",
            b"T0506:0;",
            b"S05x",
            b"W00;pid:1",
            b"W00;process:",
            b"w00",
            b"w00;",
            b"Nx",
            b"O6",
            b"Q",
        ] {
            assert!(StopReply::parse(bad).is_err(), "{}", String::from_utf8_lossy(bad));
        }
    }
}
