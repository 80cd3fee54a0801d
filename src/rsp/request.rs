//! gdb's requests, typed: [`parse`] turns one decoded payload into a [`Request`], with one
//! parser per packet kind.
//!
//! The kinds covered are every kind gdb 13.1 sent GNU gdbserver 13.1 over the shared testsuite
//! (`protocol-usage.txt`), the packets gdbserver 13 advertises in `qSupported`, and the
//! packets lldb's gdb-remote client sends beyond gdb's ([`Lldb`]: `qHostInfo`, `qProcessInfo`,
//! `qRegisterInfo`, `A`, `jThreadsInfo`, ...).
//!
//! Outcomes: a packet kind this module does not know parses to [`Request::Unknown`] with its
//! name (the server answers the empty packet, "not supported"); a known kind that is malformed
//! is a [`ParseError`] naming the packet and what is wrong with it (the server answers `E..`).
//! Both keep the session going. Binary fields (`X`, `qXfer:...:write`, `vFile:pwrite`,
//! `qSearch:memory`) borrow the payload, already unescaped by [`super::framing`]; hex fields
//! are decoded into owned bytes.
//!
//! Pure; no input makes a parser panic (every index is checked, every number overflow-checked).

use super::hex;
use super::thread_id::ThreadId;
use std::fmt;

mod lldb;
pub use lldb::Lldb;

/// One request from gdb.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    // --- Session set-up and modes -----------------------------------------------------------
    /// `qSupported[:feature;...]`: gdb's features; the reply lists the server's.
    Supported(Vec<Feature<'a>>),
    /// `QStartNoAckMode`.
    StartNoAckMode,
    /// `!`: extended-remote mode.
    ExtendedMode,
    /// `vMustReplyEmpty`: the probe for how unknown `v` packets are answered (empty).
    MustReplyEmpty,
    /// `QNonStop:0|1`.
    NonStop(bool),
    /// `QThreadEvents:0|1`: report thread creation and exit.
    ThreadEvents(bool),
    /// `QPassSignals:sig;...`: signals (gdb numbers) to deliver without stopping.
    PassSignals(Vec<u8>),
    /// `QProgramSignals:sig;...`: signals the program may receive at all.
    ProgramSignals(Vec<u8>),
    /// `QCatchSyscalls:0`, `QCatchSyscalls:1[;sysno...]`.
    CatchSyscalls(CatchSyscalls),
    /// `QDisableRandomization:0|1`.
    DisableRandomization(bool),
    /// `QEnvironmentHexEncoded:hex` (`NAME=VALUE`, decoded).
    EnvironmentSet(Vec<u8>),
    /// `QEnvironmentUnset:hex` (the variable name, decoded).
    EnvironmentUnset(Vec<u8>),
    /// `QEnvironmentReset`.
    EnvironmentReset,
    /// `QSetWorkingDir:[hex]`: `None` (empty) restores the server's own directory.
    SetWorkingDir(Option<Vec<u8>>),
    /// `QStartupWithShell:0|1`.
    StartupWithShell(bool),
    /// `QAgent:0|1`: use the in-process agent.
    Agent(bool),
    /// `Qbtrace:bts|pt|off`: start or stop branch tracing of the current thread.
    Btrace(BtraceFormat),
    /// `Qbtrace-conf:bts:size=n`, `Qbtrace-conf:pt:size=n`: the trace buffer size.
    BtraceConf {
        /// The format configured (`Bts` or `Pt`).
        format: BtraceFormat,
        /// Buffer size in bytes.
        size: u64,
    },

    // --- Processes ---------------------------------------------------------------------------
    /// `vRun;program[;arg]...` (hex; an empty program means "the last one").
    Run {
        /// The program path, decoded (empty: the server's default).
        program: Vec<u8>,
        /// The arguments, decoded (empty arguments are kept).
        args: Vec<Vec<u8>>,
    },
    /// `vAttach;pid`.
    Attach(u32),
    /// `k`.
    Kill,
    /// `vKill;pid`.
    KillProcess(u32),
    /// `D`, or `D;pid` (multiprocess).
    Detach(Option<u32>),
    /// `R[XX]`: restart the program (extended mode; no reply).
    Restart,

    // --- Stops and resumption ----------------------------------------------------------------
    /// `?`: why did the target stop.
    HaltReason,
    /// `c[addr]`.
    Continue {
        /// Resume here instead of at the current pc.
        addr: Option<u64>,
    },
    /// `Csig[;addr]`.
    ContinueWithSignal {
        /// The signal (gdb's number).
        signal: u8,
        /// Resume here instead of at the current pc.
        addr: Option<u64>,
    },
    /// `s[addr]`.
    Step {
        /// Resume here instead of at the current pc.
        addr: Option<u64>,
    },
    /// `Ssig[;addr]`.
    StepWithSignal {
        /// The signal (gdb's number).
        signal: u8,
        /// Resume here instead of at the current pc.
        addr: Option<u64>,
    },
    /// `vCont?`: which actions `vCont` supports.
    VContSupported,
    /// `vCont;action[:thread-id]...`: the leftmost action matching a thread applies to it.
    VCont(Vec<VContAction>),
    /// `vStopped`: the next queued non-stop stop reply.
    Stopped,
    /// `vCtrlC`: interrupt (non-stop mode).
    CtrlC,

    // --- Threads -----------------------------------------------------------------------------
    /// `Hop thread-id`: `op` is `g` (registers, memory), `c` (legacy continue) or another byte.
    SetThread {
        /// The operation byte (`g`, `c`).
        op: u8,
        /// The thread.
        thread: ThreadId,
    },
    /// `Tthread-id`: is it alive.
    ThreadAlive(ThreadId),
    /// `qC`: the current thread.
    CurrentThread,
    /// `qfThreadInfo`.
    ThreadInfoFirst,
    /// `qsThreadInfo`.
    ThreadInfoNext,
    /// `qThreadExtraInfo,thread-id`.
    ThreadExtraInfo(ThreadId),
    /// `qAttached[:pid]`.
    Attached(Option<u32>),
    /// `qL<start><count><next>`: the pre-`qfThreadInfo` thread list (gdb's `maint` commands).
    LegacyThreadList {
        /// Start from the first thread.
        first: bool,
        /// Most threads per reply.
        max: u8,
        /// The thread after which to continue (a 64-bit thread reference).
        next: u64,
    },
    /// `qP<mode><thread>`: the pre-`qThreadExtraInfo` thread information query.
    LegacyThreadInfo {
        /// Bit mask of the fields wanted.
        mode: u32,
        /// The thread reference.
        thread: u64,
    },

    // --- Registers and memory ----------------------------------------------------------------
    /// `g`.
    ReadRegisters,
    /// `Ghex`: all registers, decoded.
    WriteRegisters(Vec<u8>),
    /// `pN`.
    ReadRegister(u32),
    /// `PN=hex`.
    WriteRegister {
        /// Register number.
        reg: u32,
        /// Its new bytes, target order.
        value: Vec<u8>,
    },
    /// `maddr,len`.
    ReadMemory {
        /// Start address.
        addr: u64,
        /// Bytes.
        len: u64,
    },
    /// `xaddr,len`: read, reply in binary.
    ReadMemoryBinary {
        /// Start address.
        addr: u64,
        /// Bytes.
        len: u64,
    },
    /// `Maddr,len:hex`.
    WriteMemory {
        /// Start address.
        addr: u64,
        /// The bytes, decoded (their count is checked against `len`).
        data: Vec<u8>,
    },
    /// `Xaddr,len:binary` (`X addr,0:` probes support).
    WriteMemoryBinary {
        /// Start address.
        addr: u64,
        /// The bytes (their count is checked against `len`).
        data: &'a [u8],
    },
    /// `qSearch:memory:addr;len;pattern`.
    SearchMemory {
        /// Start address.
        addr: u64,
        /// Bytes to search.
        len: u64,
        /// The pattern, binary.
        pattern: &'a [u8],
    },
    /// `qCRC:addr,len`: CRC-32 of a memory range (`compare-sections`).
    Crc {
        /// Start address.
        addr: u64,
        /// Bytes.
        len: u64,
    },

    // --- Breakpoints and watchpoints ---------------------------------------------------------
    /// `Ztype,addr,kind[;cond...][;cmds:...]`.
    InsertPoint(Point),
    /// `ztype,addr,kind`.
    RemovePoint(Point),

    // --- Queries -----------------------------------------------------------------------------
    /// `qOffsets`.
    Offsets,
    /// `qSymbol::` and `qSymbol:[value]:name`.
    Symbol(SymbolPacket),
    /// `qXfer:object:read|write:annex:...`.
    Xfer(Xfer<'a>),
    /// `qGetTLSAddr:thread-id,offset,lm`.
    TlsAddress {
        /// The thread.
        thread: ThreadId,
        /// Offset of the variable in the module's TLS block.
        offset: u64,
        /// The module's `link_map` address.
        lm: u64,
    },
    /// `qRcmd,hex`: a `monitor` command, decoded.
    Monitor(Vec<u8>),
    /// `qExecAndArgs`: the program and arguments the server would run.
    ExecAndArgs,
    /// `qRelocInsn:adjusted`: gdb's answer to the server's instruction-relocation request
    /// (fast tracepoints).
    RelocInsn {
        /// The relocated instruction's size.
        adjusted: u64,
    },
    /// The packets lldb sends beyond gdb's.
    Lldb(Lldb<'a>),

    // --- Tracepoints and host files ----------------------------------------------------------
    /// The tracepoint packets (`QT...`, `qT...`).
    Tracepoint(Tracepoint<'a>),
    /// The host I/O packets (`vFile:...`).
    File(VFile<'a>),

    /// A packet kind not known here: its name (`qFoo`, `vBar`, a single letter). The server
    /// answers the empty packet.
    Unknown(&'a [u8]),
}

/// One `qSupported` feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Feature<'a> {
    /// The name (`multiprocess`, `xmlRegisters`).
    pub name: &'a [u8],
    /// What gdb says about it.
    pub value: FeatureValue<'a>,
}

/// A feature's state in `qSupported`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureValue<'a> {
    /// `name+`.
    Yes,
    /// `name-`.
    No,
    /// `name?`.
    Query,
    /// `name=value`.
    Value(&'a [u8]),
}

/// What `QCatchSyscalls` asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CatchSyscalls {
    /// `0`: stop catching.
    Off,
    /// `1`: every system call.
    All,
    /// `1;n;...`: these system call numbers.
    Only(Vec<u64>),
}

/// A branch-trace format of `Qbtrace` (`Off` stops tracing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BtraceFormat {
    /// `bts`: Intel Branch Trace Store.
    Bts,
    /// `pt`: Intel Processor Trace.
    Pt,
    /// `off`.
    Off,
}

/// One `vCont` action and the thread(s) it applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VContAction {
    /// What to do.
    pub resume: Resume,
    /// To whom (`None`: every thread no earlier action named).
    pub thread: Option<ThreadId>,
}

/// A `vCont` action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resume {
    /// `c`.
    Continue,
    /// `Csig`.
    ContinueWithSignal(u8),
    /// `s`.
    Step,
    /// `Ssig`.
    StepWithSignal(u8),
    /// `t`: stop (non-stop mode).
    Stop,
    /// `rstart,end`: step while the pc is in `[start, end)`.
    RangeStep {
        /// Range start.
        start: u64,
        /// Range end (exclusive).
        end: u64,
    },
}

/// The five point types of `Z`/`z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PointType {
    /// `0`: software breakpoint.
    Software,
    /// `1`: hardware breakpoint.
    Hardware,
    /// `2`: write watchpoint.
    WriteWatch,
    /// `3`: read watchpoint.
    ReadWatch,
    /// `4`: access watchpoint.
    AccessWatch,
}

/// A breakpoint or watchpoint of `Z`/`z`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Point {
    /// Which kind of point.
    pub ty: PointType,
    /// Its address.
    pub addr: u64,
    /// gdb's "kind": the breakpoint length (1 on x86), or the watched length.
    pub kind: u64,
    /// Target-side conditions (`;Xlen,hex`), agent-expression bytecode each: the point
    /// reports a hit when any is true.
    pub conditions: Vec<Vec<u8>>,
    /// Target-side commands (`;cmds:persist,Xlen,hex...`).
    pub commands: Option<PointCommands>,
}

/// Target-side breakpoint commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointCommands {
    /// Keep running them after gdb disconnects.
    pub persist: bool,
    /// Agent-expression bytecode, one per command.
    pub list: Vec<Vec<u8>>,
}

/// `qSymbol`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SymbolPacket {
    /// `qSymbol::`: gdb is ready to look symbols up.
    Ready,
    /// `qSymbol:[value]:hexname`: the value of a symbol the server asked for (`None`: unknown).
    Value {
        /// The symbol name, decoded.
        name: Vec<u8>,
        /// Its address, if gdb found it.
        value: Option<u64>,
    },
}

/// `qXfer:object:read|write:annex:...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Xfer<'a> {
    /// The object.
    pub object: XferObject<'a>,
    /// The annex (a file name, a pid, or empty).
    pub annex: &'a [u8],
    /// Read or write.
    pub op: XferOp<'a>,
}

/// The `qXfer` objects gdb knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XferObject<'a> {
    /// `features` (target descriptions).
    Features,
    /// `auxv`.
    Auxv,
    /// `libraries`.
    Libraries,
    /// `libraries-svr4`.
    LibrariesSvr4,
    /// `threads`.
    Threads,
    /// `exec-file`.
    ExecFile,
    /// `siginfo`.
    Siginfo,
    /// `osdata`.
    Osdata,
    /// `memory-map`.
    MemoryMap,
    /// `btrace`.
    Btrace,
    /// `btrace-conf`.
    BtraceConf,
    /// `traceframe-info`.
    TraceframeInfo,
    /// `fdpic`.
    Fdpic,
    /// `statictrace` (a static tracepoint's marker data).
    StaticTrace,
    /// Another object name.
    Other(&'a [u8]),
}

/// The operation of a `qXfer`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XferOp<'a> {
    /// `read:annex:offset,length`.
    Read {
        /// Offset in the object.
        offset: u64,
        /// Most bytes wanted.
        len: u64,
    },
    /// `write:annex:offset:data`.
    Write {
        /// Offset in the object.
        offset: u64,
        /// The bytes (binary).
        data: &'a [u8],
    },
}

impl Xfer<'_> {
    /// The annex as a process id (`qXfer:exec-file:read:PID:...`; empty: the current process).
    pub fn annex_pid(&self) -> Result<Option<u32>> {
        if self.annex.is_empty() {
            return Ok(None);
        }
        Cx("qXfer").num32(self.annex, "annex pid").map(Some)
    }

    /// The annex of `qXfer:libraries-svr4:read` (`start=ADDR;prev=ADDR;lmid=ID`, gdb's
    /// `augmented-libraries-svr4-read`); other keys are ignored.
    pub fn svr4_annex(&self) -> Result<Svr4Annex> {
        let cx = Cx("qXfer");
        let mut a = Svr4Annex::default();
        for item in self.annex.split(|&b| b == b';').filter(|i| !i.is_empty()) {
            let (key, value) = cx.split(item, b'=', "`=` in the annex")?;
            match key {
                b"start" => a.start = Some(cx.num(value, "annex start")?),
                b"prev" => a.prev = Some(cx.num(value, "annex prev")?),
                b"lmid" => a.lmid = Some(cx.num(value, "annex lmid")?),
                _ => {}
            }
        }
        Ok(a)
    }
}

/// The annex of an augmented `qXfer:libraries-svr4:read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Svr4Annex {
    /// The `link_map` entry to start the list at.
    pub start: Option<u64>,
    /// The entry before it.
    pub prev: Option<u64>,
    /// The link-map namespace.
    pub lmid: Option<u64>,
}

/// The tracepoint packets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tracepoint<'a> {
    /// `QTinit`: clear every tracepoint and the trace buffer.
    Init,
    /// `QTStart`.
    Start,
    /// `QTStop`.
    Stop,
    /// `qTStatus`.
    Status,
    /// `QTDP:n:addr:E|D:step:pass[:Fflen][:S][:Xlen,cond][-]`: define a tracepoint.
    Define {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
        /// `E` (enabled) or `D`.
        enabled: bool,
        /// While-stepping count.
        step: u64,
        /// Pass count.
        pass: u64,
        /// `Fflen`: a fast tracepoint, with the bytes to move out of the way.
        fast: Option<u64>,
        /// `S`: a static tracepoint.
        static_: bool,
        /// `Xlen,hex`: the condition's bytecode.
        condition: Option<Vec<u8>>,
        /// Trailing `-`: action packets follow.
        more: bool,
    },
    /// `QTDP:-n:addr:[S]actions[-]`: actions of a tracepoint.
    Actions {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
        /// `S`: these are while-stepping actions.
        stepping: bool,
        /// The actions (gdb sends one a packet; several in a row are accepted, as gdbserver does).
        actions: Vec<TraceAction>,
        /// Trailing `-`: more action packets follow.
        more: bool,
    },
    /// `QTDPsrc:n:addr:type:start:slen:hex`: a piece of a tracepoint's source text.
    Source {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
        /// `at`, `cond` or `cmd`.
        kind: &'a [u8],
        /// Offset of this piece in the whole string.
        start: u64,
        /// Length of the whole string.
        len: u64,
        /// This piece, decoded.
        text: Vec<u8>,
    },
    /// `QTDV:n:value:builtin:hexname`: define a trace state variable.
    DefineVariable {
        /// Variable number.
        number: u32,
        /// Initial value (64-bit two's complement).
        value: i64,
        /// A builtin variable.
        builtin: bool,
        /// Its name, decoded.
        name: Vec<u8>,
    },
    /// `QTFrame:...`: select a trace frame.
    Frame(TraceFrame),
    /// `QTro[:start,end]...`: the read-only memory ranges.
    ReadOnly(Vec<(u64, u64)>),
    /// `QTDisconnected:0|1`: keep tracing when gdb disconnects.
    Disconnected(bool),
    /// `QTBuffer:circular:0|1`.
    BufferCircular(bool),
    /// `QTBuffer:size:n` (`None` for `-1`, the default size).
    BufferSize(Option<u64>),
    /// `QTNotes:[type:hex;]...` (`user`, `notes`, `tstop`; text decoded).
    Notes(Vec<(&'a [u8], Vec<u8>)>),
    /// `QTEnable:n:addr`.
    Enable {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
    },
    /// `QTDisable:n:addr`.
    Disable {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
    },
    /// `qTfP`: the first tracepoint definition (for upload).
    FirstDefinition,
    /// `qTsP`: the next one.
    NextDefinition,
    /// `qTfV`: the first trace state variable.
    FirstVariable,
    /// `qTsV`: the next one.
    NextVariable,
    /// `qTP:n:addr`: a tracepoint's hit count and bytes used.
    PointStatus {
        /// Tracepoint number.
        number: u32,
        /// Address.
        addr: u64,
    },
    /// `qTV:n`: a trace state variable's value.
    VariableValue(u32),
    /// `qTBuffer:offset,len`: raw trace buffer bytes.
    ReadBuffer {
        /// Offset.
        offset: u64,
        /// Most bytes.
        len: u64,
    },
    /// `qTMinFTPILen`: the shortest instruction a fast tracepoint can replace.
    MinFastTracepointLen,
    /// `qTfSTM`: the first static tracepoint marker.
    FirstStaticMarker,
    /// `qTsSTM`: the next one.
    NextStaticMarker,
    /// `qTSTMat:addr`: the static markers at an address.
    StaticMarkersAt(u64),
}

/// One tracepoint action of `QTDP:-...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TraceAction {
    /// `Rmask`: collect the registers of this bit mask (hex, most significant first; the
    /// bytes here are big-endian, an odd digit count padded with a leading zero nibble).
    Registers(Vec<u8>),
    /// `Mbasereg,offset,len`: collect memory at `basereg + offset` (`basereg` `None` for an
    /// absolute address, which gdb writes `FFFFFFFF`, -1 as an unsigned int).
    Memory {
        /// The base register, or `None` for an absolute address.
        basereg: Option<u32>,
        /// Offset from the register (or the address).
        offset: u64,
        /// Bytes to collect.
        len: u64,
    },
    /// `Xlen,hex`: evaluate an agent expression and collect what it says.
    Expression(Vec<u8>),
    /// `L`: collect the static tracepoint's marker data (`$_sdata`).
    StaticData,
}

/// How `QTFrame` selects a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFrame {
    /// `QTFrame:n` (`-1`, sent as `ffffffff`, stops looking at frames).
    Number(i32),
    /// `QTFrame:pc:addr`: the next frame at this pc.
    Pc(u64),
    /// `QTFrame:tdp:n`: the next frame of this tracepoint.
    Tracepoint(u32),
    /// `QTFrame:range:start:end`: the next frame with a pc in the range.
    Range {
        /// Range start.
        start: u64,
        /// Range end (inclusive, as gdb's `tfind range`).
        end: u64,
    },
    /// `QTFrame:outside:start:end`: the next frame with a pc outside the range.
    Outside {
        /// Range start.
        start: u64,
        /// Range end.
        end: u64,
    },
}

/// The host I/O packets (`vFile:`), on the server's file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VFile<'a> {
    /// `vFile:open:hexpath,flags,mode` (gdb's flag and mode numbers).
    Open {
        /// Path, decoded.
        path: Vec<u8>,
        /// gdb `O_*` flags.
        flags: u64,
        /// Creation mode.
        mode: u64,
    },
    /// `vFile:close:fd`.
    Close(u32),
    /// `vFile:pread:fd,count,offset`.
    Pread {
        /// Descriptor.
        fd: u32,
        /// Most bytes.
        count: u64,
        /// File offset.
        offset: u64,
    },
    /// `vFile:pwrite:fd,offset,data`.
    Pwrite {
        /// Descriptor.
        fd: u32,
        /// File offset.
        offset: u64,
        /// The bytes, binary.
        data: &'a [u8],
    },
    /// `vFile:unlink:hexpath`.
    Unlink(Vec<u8>),
    /// `vFile:readlink:hexpath`.
    Readlink(Vec<u8>),
    /// `vFile:fstat:fd`.
    Fstat(u32),
    /// `vFile:stat:hexpath`.
    Stat(Vec<u8>),
    /// `vFile:lstat:hexpath`.
    Lstat(Vec<u8>),
    /// `vFile:setfs:pid`: later paths are in this process's mount namespace (`0`: the server's).
    Setfs(u32),
}

/// A known packet kind that is malformed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParseError {
    /// The packet kind (`m`, `vCont`, `qXfer`).
    pub packet: &'static str,
    /// What is wrong.
    pub problem: Problem,
}

/// What is wrong with a malformed packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Problem {
    /// A field or separator is missing.
    Missing(&'static str),
    /// A field that must be hexadecimal is not, or does not fit its type.
    NotHex(&'static str),
    /// A field has a value the packet does not allow.
    Invalid(&'static str),
    /// The data does not have the length the packet declares.
    LengthMismatch {
        /// The declared length.
        declared: u64,
        /// The bytes present.
        actual: u64,
    },
    /// Bytes after the last field.
    Trailing,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {} packet: ", self.packet)?;
        match self.problem {
            Problem::Missing(what) => write!(f, "missing {what}"),
            Problem::NotHex(what) => write!(f, "{what} is not a hex number that fits"),
            Problem::Invalid(what) => write!(f, "invalid {what}"),
            Problem::LengthMismatch { declared, actual } => {
                write!(f, "declares {declared} bytes but carries {actual}")
            }
            Problem::Trailing => f.write_str("unexpected bytes after the last field"),
        }
    }
}

impl std::error::Error for ParseError {}

type Result<T> = std::result::Result<T, ParseError>;

/// The packet being parsed, for error values.
#[derive(Clone, Copy)]
struct Cx(&'static str);

impl Cx {
    fn err(self, problem: Problem) -> ParseError {
        ParseError { packet: self.0, problem }
    }

    fn num(self, s: &[u8], what: &'static str) -> Result<u64> {
        if s.is_empty() {
            return Err(self.err(Problem::Missing(what)));
        }
        hex::u64_from(s).ok_or(self.err(Problem::NotHex(what)))
    }

    fn num32(self, s: &[u8], what: &'static str) -> Result<u32> {
        u32::try_from(self.num(s, what)?).map_err(|_| self.err(Problem::NotHex(what)))
    }

    fn signal(self, s: &[u8]) -> Result<u8> {
        u8::try_from(self.num(s, "signal")?).map_err(|_| self.err(Problem::NotHex("signal")))
    }

    fn bytes(self, s: &[u8], what: &'static str) -> Result<Vec<u8>> {
        hex::bytes_from(s).ok_or(self.err(Problem::NotHex(what)))
    }

    fn thread(self, s: &[u8]) -> Result<ThreadId> {
        if s.is_empty() {
            return Err(self.err(Problem::Missing("thread id")));
        }
        ThreadId::parse(s).ok_or(self.err(Problem::Invalid("thread id")))
    }

    fn flag(self, s: &[u8], what: &'static str) -> Result<bool> {
        match s {
            b"0" => Ok(false),
            b"1" => Ok(true),
            b"" => Err(self.err(Problem::Missing(what))),
            _ => Err(self.err(Problem::Invalid(what))),
        }
    }

    /// Splits at the first `sep`: the part before is field `what`.
    fn split<'s>(self, s: &'s [u8], sep: u8, what: &'static str) -> Result<(&'s [u8], &'s [u8])> {
        split_once(s, sep).ok_or(self.err(Problem::Missing(what)))
    }

    /// `s` must start with `prefix`.
    fn after<'s>(self, s: &'s [u8], prefix: &[u8], what: &'static str) -> Result<&'s [u8]> {
        s.strip_prefix(prefix).ok_or(self.err(Problem::Missing(what)))
    }

    fn end<T>(self, rest: &[u8], value: T) -> Result<T> {
        if rest.is_empty() {
            Ok(value)
        } else {
            Err(self.err(Problem::Trailing))
        }
    }

    /// `addr,len`.
    fn addr_len(self, s: &[u8]) -> Result<(u64, u64)> {
        let (a, l) = self.split(s, b',', "`,length`")?;
        Ok((self.num(a, "address")?, self.num(l, "length")?))
    }

    fn check_len(self, declared: u64, data: &[u8]) -> Result<()> {
        let actual = u64::try_from(data.len()).unwrap_or(u64::MAX);
        if declared == actual {
            Ok(())
        } else {
            Err(self.err(Problem::LengthMismatch { declared, actual }))
        }
    }
}

/// The parts before and after the first `sep`.
fn split_once(s: &[u8], sep: u8) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
}

/// Parses one decoded packet payload.
pub fn parse(p: &[u8]) -> Result<Request<'_>> {
    let Some(&first) = p.first() else {
        return Ok(Request::Unknown(p));
    };
    let body = p.get(1..).unwrap_or_default();
    let one = p.get(..1).unwrap_or_default();
    match first {
        b'?' => Cx("?").end(body, Request::HaltReason),
        b'!' => Cx("!").end(body, Request::ExtendedMode),
        b'g' => Cx("g").end(body, Request::ReadRegisters),
        b'k' => Cx("k").end(body, Request::Kill),
        b'G' => Ok(Request::WriteRegisters(Cx("G").bytes(body, "register data")?)),
        b'p' => Ok(Request::ReadRegister(Cx("p").num32(body, "register number")?)),
        b'P' => {
            let cx = Cx("P");
            let (reg, value) = cx.split(body, b'=', "`=value`")?;
            Ok(Request::WriteRegister { reg: cx.num32(reg, "register number")?, value: cx.bytes(value, "value")? })
        }
        b'm' => Cx("m").addr_len(body).map(|(addr, len)| Request::ReadMemory { addr, len }),
        b'x' => Cx("x").addr_len(body).map(|(addr, len)| Request::ReadMemoryBinary { addr, len }),
        b'M' => {
            let cx = Cx("M");
            let (range, data) = cx.split(body, b':', "`:data`")?;
            let (addr, len) = cx.addr_len(range)?;
            let data = cx.bytes(data, "data")?;
            cx.check_len(len, &data)?;
            Ok(Request::WriteMemory { addr, data })
        }
        b'X' => {
            let cx = Cx("X");
            let (range, data) = cx.split(body, b':', "`:data`")?;
            let (addr, len) = cx.addr_len(range)?;
            cx.check_len(len, data)?;
            Ok(Request::WriteMemoryBinary { addr, data })
        }
        b'c' | b's' => {
            let cx = Cx(if first == b'c' { "c" } else { "s" });
            let addr = if body.is_empty() { None } else { Some(cx.num(body, "address")?) };
            Ok(if first == b'c' { Request::Continue { addr } } else { Request::Step { addr } })
        }
        b'C' | b'S' => {
            let cx = Cx(if first == b'C' { "C" } else { "S" });
            let (sig, addr) = match split_once(body, b';') {
                Some((sig, addr)) => (sig, Some(cx.num(addr, "address")?)),
                None => (body, None),
            };
            let signal = cx.signal(sig)?;
            Ok(if first == b'C' {
                Request::ContinueWithSignal { signal, addr }
            } else {
                Request::StepWithSignal { signal, addr }
            })
        }
        b'H' => {
            let cx = Cx("H");
            let (&op, thread) = body.split_first().ok_or(cx.err(Problem::Missing("operation")))?;
            Ok(Request::SetThread { op, thread: cx.thread(thread)? })
        }
        b'T' => Ok(Request::ThreadAlive(Cx("T").thread(body)?)),
        b'D' => {
            let cx = Cx("D");
            if body.is_empty() {
                return Ok(Request::Detach(None));
            }
            let pid = cx.after(body, b";", "`;pid`")?;
            Ok(Request::Detach(Some(cx.num32(pid, "pid")?)))
        }
        b'R' => {
            // `R XX`: the argument is ignored by every stub; it must still be hex if present.
            if !body.is_empty() {
                Cx("R").num(body, "argument")?;
            }
            Ok(Request::Restart)
        }
        b'Z' | b'z' => {
            let point = parse_point(first, body)?;
            Ok(if first == b'Z' { Request::InsertPoint(point) } else { Request::RemovePoint(point) })
        }
        b'q' | b'Q' | b'v' | b'j' => parse_named(p),
        b'A' => lldb::parse_arguments(body),
        _ => Ok(Request::Unknown(one)),
    }
}

fn parse_point(first: u8, body: &[u8]) -> Result<Point> {
    let cx = Cx(if first == b'Z' { "Z" } else { "z" });
    let (ty, rest) = cx.split(body, b',', "type")?;
    let ty = match ty {
        b"0" => PointType::Software,
        b"1" => PointType::Hardware,
        b"2" => PointType::WriteWatch,
        b"3" => PointType::ReadWatch,
        b"4" => PointType::AccessWatch,
        b"" => return Err(cx.err(Problem::Missing("type"))),
        _ => return Err(cx.err(Problem::Invalid("type"))),
    };
    let (addr, rest) = cx.split(rest, b',', "`,kind`")?;
    let addr = cx.num(addr, "address")?;
    let (kind, mut opts) = match split_once(rest, b';') {
        Some((kind, opts)) => (kind, Some(opts)),
        None => (rest, None),
    };
    let kind = cx.num(kind, "kind")?;
    let mut point = Point { ty, addr, kind, conditions: Vec::new(), commands: None };
    // Options: `Xlen,hex` conditions separated by `;`, then `cmds:persist,` and commands.
    while let Some(o) = opts {
        if let Some(cmds) = o.strip_prefix(b"cmds:") {
            let (persist, mut list) = cx.split(cmds, b',', "`cmds:persist,`")?;
            let persist = cx.flag(persist, "cmds persist flag")?;
            let mut commands = Vec::new();
            while !list.is_empty() {
                let (expr, rest) = agent_expr(cx, list)?;
                commands.push(expr);
                list = rest.strip_prefix(b";").unwrap_or(rest);
            }
            point.commands = Some(PointCommands { persist, list: commands });
            break;
        }
        if o.is_empty() {
            return Err(cx.err(Problem::Missing("condition")));
        }
        let (expr, rest) = agent_expr(cx, o)?;
        point.conditions.push(expr);
        opts = match rest {
            [] => None,
            [b';', more @ ..] => Some(more),
            _ => return Err(cx.err(Problem::Trailing)),
        };
    }
    Ok(point)
}

/// `Xlen,hexbytes` at the start of `s`: the bytecode and what follows it.
fn agent_expr(cx: Cx, s: &[u8]) -> Result<(Vec<u8>, &[u8])> {
    let s = cx.after(s, b"X", "`X` of an agent expression")?;
    let (len, rest) = cx.split(s, b',', "`,` of an agent expression")?;
    let len = cx.num(len, "agent expression length")?;
    let hex_len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_mul(2))
        .ok_or(cx.err(Problem::Invalid("agent expression length")))?;
    let Some(code) = rest.get(..hex_len) else {
        let actual = u64::try_from(rest.len() / 2).unwrap_or(u64::MAX);
        return Err(cx.err(Problem::LengthMismatch { declared: len, actual }));
    };
    Ok((cx.bytes(code, "agent expression")?, rest.get(hex_len..).unwrap_or_default()))
}

fn parse_named(p: &[u8]) -> Result<Request<'_>> {
    let name_len = p.iter().position(|&b| matches!(b, b':' | b';' | b',')).unwrap_or(p.len());
    let name = p.get(..name_len).unwrap_or_default();
    let rest = p.get(name_len..).unwrap_or_default();
    let flag = |packet: &'static str| -> Result<bool> {
        let cx = Cx(packet);
        cx.flag(cx.after(rest, b":", "`:`")?, "value")
    };
    let hex_arg = |packet: &'static str| -> Result<Vec<u8>> {
        let cx = Cx(packet);
        cx.bytes(cx.after(rest, b":", "`:`")?, "value")
    };
    Ok(match name {
        b"qSupported" => Request::Supported(parse_features(rest)?),
        b"QStartNoAckMode" => Cx("QStartNoAckMode").end(rest, Request::StartNoAckMode)?,
        b"vMustReplyEmpty" => Cx("vMustReplyEmpty").end(rest, Request::MustReplyEmpty)?,
        b"QNonStop" => Request::NonStop(flag("QNonStop")?),
        b"QThreadEvents" => Request::ThreadEvents(flag("QThreadEvents")?),
        b"QPassSignals" => Request::PassSignals(signal_list(Cx("QPassSignals"), rest)?),
        b"QProgramSignals" => Request::ProgramSignals(signal_list(Cx("QProgramSignals"), rest)?),
        b"QCatchSyscalls" => Request::CatchSyscalls(parse_catch_syscalls(rest)?),
        b"QDisableRandomization" => Request::DisableRandomization(flag("QDisableRandomization")?),
        b"QEnvironmentHexEncoded" => Request::EnvironmentSet(hex_arg("QEnvironmentHexEncoded")?),
        b"QEnvironmentUnset" => Request::EnvironmentUnset(hex_arg("QEnvironmentUnset")?),
        b"QEnvironmentReset" => Cx("QEnvironmentReset").end(rest, Request::EnvironmentReset)?,
        b"QSetWorkingDir" => {
            let dir = hex_arg("QSetWorkingDir")?;
            Request::SetWorkingDir(if dir.is_empty() { None } else { Some(dir) })
        }
        b"QStartupWithShell" => Request::StartupWithShell(flag("QStartupWithShell")?),
        b"QAgent" => Request::Agent(flag("QAgent")?),
        b"Qbtrace" => {
            let cx = Cx("Qbtrace");
            Request::Btrace(match cx.after(rest, b":", "`:`")? {
                b"bts" => BtraceFormat::Bts,
                b"pt" => BtraceFormat::Pt,
                b"off" => BtraceFormat::Off,
                _ => return Err(cx.err(Problem::Invalid("format (bts, pt or off)"))),
            })
        }
        b"Qbtrace-conf" => {
            let cx = Cx("Qbtrace-conf");
            let (format, setting) = cx.split(cx.after(rest, b":", "`:`")?, b':', "`:size=`")?;
            let format = match format {
                b"bts" => BtraceFormat::Bts,
                b"pt" => BtraceFormat::Pt,
                _ => return Err(cx.err(Problem::Invalid("format (bts or pt)"))),
            };
            let size = cx.after(setting, b"size=", "`size=`")?;
            Request::BtraceConf { format, size: cx.num(size, "size")? }
        }
        b"vRun" => {
            let cx = Cx("vRun");
            let rest = cx.after(rest, b";", "`;program`")?;
            let mut parts = rest.split(|&b| b == b';');
            let program = cx.bytes(parts.next().unwrap_or_default(), "program")?;
            let args = parts.map(|a| cx.bytes(a, "argument")).collect::<Result<_>>()?;
            Request::Run { program, args }
        }
        b"vAttach" => {
            let cx = Cx("vAttach");
            Request::Attach(cx.num32(cx.after(rest, b";", "`;pid`")?, "pid")?)
        }
        b"vKill" => {
            let cx = Cx("vKill");
            Request::KillProcess(cx.num32(cx.after(rest, b";", "`;pid`")?, "pid")?)
        }
        b"vCont?" => Cx("vCont?").end(rest, Request::VContSupported)?,
        b"vCont" => Request::VCont(parse_vcont(rest)?),
        b"vStopped" => Cx("vStopped").end(rest, Request::Stopped)?,
        b"vCtrlC" => Cx("vCtrlC").end(rest, Request::CtrlC)?,
        b"qC" => Cx("qC").end(rest, Request::CurrentThread)?,
        b"qfThreadInfo" => Cx("qfThreadInfo").end(rest, Request::ThreadInfoFirst)?,
        b"qsThreadInfo" => Cx("qsThreadInfo").end(rest, Request::ThreadInfoNext)?,
        b"qThreadExtraInfo" => {
            let cx = Cx("qThreadExtraInfo");
            Request::ThreadExtraInfo(cx.thread(cx.after(rest, b",", "`,thread-id`")?)?)
        }
        b"qAttached" => {
            let cx = Cx("qAttached");
            match rest.strip_prefix(b":") {
                Some(pid) => Request::Attached(Some(cx.num32(pid, "pid")?)),
                None => cx.end(rest, Request::Attached(None))?,
            }
        }
        b"qSearch" => {
            let cx = Cx("qSearch");
            let rest = cx.after(rest, b":memory:", "`:memory:`")?;
            let (addr, rest) = cx.split(rest, b';', "`;length`")?;
            let (len, pattern) = cx.split(rest, b';', "`;pattern`")?;
            Request::SearchMemory { addr: cx.num(addr, "address")?, len: cx.num(len, "length")?, pattern }
        }
        b"qCRC" => {
            let cx = Cx("qCRC");
            let (addr, len) = cx.addr_len(cx.after(rest, b":", "`:`")?)?;
            Request::Crc { addr, len }
        }
        b"qOffsets" => Cx("qOffsets").end(rest, Request::Offsets)?,
        b"qSymbol" => Request::Symbol(parse_symbol(rest)?),
        b"qXfer" => Request::Xfer(parse_xfer(rest)?),
        b"qGetTLSAddr" => {
            let cx = Cx("qGetTLSAddr");
            let rest = cx.after(rest, b":", "`:`")?;
            let (thread, rest) = cx.split(rest, b',', "`,offset`")?;
            let (offset, lm) = cx.split(rest, b',', "`,lm`")?;
            Request::TlsAddress { thread: cx.thread(thread)?, offset: cx.num(offset, "offset")?, lm: cx.num(lm, "lm")? }
        }
        b"qRcmd" => {
            let cx = Cx("qRcmd");
            Request::Monitor(cx.bytes(cx.after(rest, b",", "`,command`")?, "command")?)
        }
        b"qExecAndArgs" => Cx("qExecAndArgs").end(rest, Request::ExecAndArgs)?,
        b"qRelocInsn" => {
            let cx = Cx("qRelocInsn");
            Request::RelocInsn { adjusted: cx.num(cx.after(rest, b":", "`:`")?, "size")? }
        }
        b"vFile" => Request::File(parse_vfile(rest)?),
        _ => {
            if let Some(t) = parse_tracepoint(name, rest)? {
                Request::Tracepoint(t)
            } else if let Some(l) = lldb::parse(name, rest)? {
                Request::Lldb(l)
            } else if let Some(r) = parse_prefixed(name)? {
                r
            } else {
                Request::Unknown(name)
            }
        }
    })
}

/// The packets whose name runs into their first field (`qL...`, `qP...`).
fn parse_prefixed(name: &[u8]) -> Result<Option<Request<'_>>> {
    // Only names that continue in hex digits: `qLaunchSuccess`, `qProcessInfo` are others.
    let hex_after = |prefix: &[u8]| {
        name.strip_prefix(prefix).filter(|f| !f.is_empty() && f.iter().all(|&b| hex::digit(b).is_some()))
    };
    if let Some(f) = hex_after(b"qL") {
        let cx = Cx("qL");
        if f.len() != 19 {
            return Err(cx.err(Problem::Invalid("length (1 + 2 + 16 hex digits)")));
        }
        let first = cx.num(f.get(..1).unwrap_or_default(), "start flag")? != 0;
        let max = cx.signal(f.get(1..3).unwrap_or_default()).map_err(|_| cx.err(Problem::NotHex("count")))?;
        let next = cx.num(f.get(3..).unwrap_or_default(), "next thread")?;
        return Ok(Some(Request::LegacyThreadList { first, max, next }));
    }
    if let Some(f) = hex_after(b"qP") {
        let cx = Cx("qP");
        if f.len() != 24 {
            return Err(cx.err(Problem::Invalid("length (8 + 16 hex digits)")));
        }
        let mode = cx.num32(f.get(..8).unwrap_or_default(), "mode")?;
        let thread = cx.num(f.get(8..).unwrap_or_default(), "thread")?;
        return Ok(Some(Request::LegacyThreadInfo { mode, thread }));
    }
    Ok(None)
}

fn parse_features(rest: &[u8]) -> Result<Vec<Feature<'_>>> {
    let cx = Cx("qSupported");
    if rest.is_empty() {
        return Ok(Vec::new());
    }
    let list = cx.after(rest, b":", "`:`")?;
    let mut out = Vec::new();
    for f in list.split(|&b| b == b';').filter(|f| !f.is_empty()) {
        let feature = if let Some((name, value)) = split_once(f, b'=') {
            Feature { name, value: FeatureValue::Value(value) }
        } else {
            let (last, name) = f.split_last().ok_or(cx.err(Problem::Missing("feature")))?;
            let value = match last {
                b'+' => FeatureValue::Yes,
                b'-' => FeatureValue::No,
                b'?' => FeatureValue::Query,
                _ => return Err(cx.err(Problem::Invalid("feature (no `+`, `-`, `?` or `=`)"))),
            };
            Feature { name, value }
        };
        if feature.name.is_empty() {
            return Err(cx.err(Problem::Missing("feature name")));
        }
        out.push(feature);
    }
    Ok(out)
}

/// The value gdb gave `name` in its `qSupported` features.
pub fn feature<'a>(features: &[Feature<'a>], name: &str) -> Option<FeatureValue<'a>> {
    features.iter().find(|f| f.name == name.as_bytes()).map(|f| f.value)
}

/// `:sig;sig;...` (an empty list is allowed: nothing passes).
fn signal_list(cx: Cx, rest: &[u8]) -> Result<Vec<u8>> {
    let list = cx.after(rest, b":", "`:`")?;
    list.split(|&b| b == b';').filter(|s| !s.is_empty()).map(|s| cx.signal(s)).collect()
}

fn parse_catch_syscalls(rest: &[u8]) -> Result<CatchSyscalls> {
    let cx = Cx("QCatchSyscalls");
    let rest = cx.after(rest, b":", "`:`")?;
    let (on, list) = match split_once(rest, b';') {
        Some((on, list)) => (on, Some(list)),
        None => (rest, None),
    };
    match (cx.flag(on, "on/off flag")?, list) {
        (false, None) => Ok(CatchSyscalls::Off),
        (false, Some(_)) => Err(cx.err(Problem::Trailing)),
        (true, None) => Ok(CatchSyscalls::All),
        (true, Some(list)) => list
            .split(|&b| b == b';')
            .map(|n| cx.num(n, "syscall number"))
            .collect::<Result<_>>()
            .map(CatchSyscalls::Only),
    }
}

fn parse_vcont(rest: &[u8]) -> Result<Vec<VContAction>> {
    let cx = Cx("vCont");
    let list = cx.after(rest, b";", "`;action`")?;
    list.split(|&b| b == b';')
        .map(|a| {
            let (action, thread) = match split_once(a, b':') {
                Some((action, thread)) => (action, Some(cx.thread(thread)?)),
                None => (a, None),
            };
            let (&letter, arg) = action.split_first().ok_or(cx.err(Problem::Missing("action")))?;
            let resume = match letter {
                b'c' => cx.end(arg, Resume::Continue)?,
                b's' => cx.end(arg, Resume::Step)?,
                b't' => cx.end(arg, Resume::Stop)?,
                b'C' => Resume::ContinueWithSignal(cx.signal(arg)?),
                b'S' => Resume::StepWithSignal(cx.signal(arg)?),
                b'r' => {
                    let (start, end) = cx.split(arg, b',', "`,end` of a range")?;
                    Resume::RangeStep { start: cx.num(start, "range start")?, end: cx.num(end, "range end")? }
                }
                _ => return Err(cx.err(Problem::Invalid("action"))),
            };
            Ok(VContAction { resume, thread })
        })
        .collect()
}

fn parse_symbol(rest: &[u8]) -> Result<SymbolPacket> {
    let cx = Cx("qSymbol");
    let rest = cx.after(rest, b":", "`:`")?;
    let (value, name) = cx.split(rest, b':', "`:name`")?;
    if value.is_empty() && name.is_empty() {
        return Ok(SymbolPacket::Ready);
    }
    let value = if value.is_empty() { None } else { Some(cx.num(value, "value")?) };
    let name = cx.bytes(name, "name")?;
    if name.is_empty() {
        return Err(cx.err(Problem::Missing("name")));
    }
    Ok(SymbolPacket::Value { name, value })
}

fn parse_xfer(rest: &[u8]) -> Result<Xfer<'_>> {
    let cx = Cx("qXfer");
    let rest = cx.after(rest, b":", "`:object`")?;
    let (object, rest) = cx.split(rest, b':', "`:read` or `:write`")?;
    let (op, rest) = cx.split(rest, b':', "`:annex`")?;
    let (annex, rest) = cx.split(rest, b':', "`:offset`")?;
    let object = match object {
        b"features" => XferObject::Features,
        b"auxv" => XferObject::Auxv,
        b"libraries" => XferObject::Libraries,
        b"libraries-svr4" => XferObject::LibrariesSvr4,
        b"threads" => XferObject::Threads,
        b"exec-file" => XferObject::ExecFile,
        b"siginfo" => XferObject::Siginfo,
        b"osdata" => XferObject::Osdata,
        b"memory-map" => XferObject::MemoryMap,
        b"btrace" => XferObject::Btrace,
        b"btrace-conf" => XferObject::BtraceConf,
        b"traceframe-info" => XferObject::TraceframeInfo,
        b"fdpic" => XferObject::Fdpic,
        b"statictrace" => XferObject::StaticTrace,
        b"" => return Err(cx.err(Problem::Missing("object"))),
        other => XferObject::Other(other),
    };
    let op = match op {
        b"read" => {
            let (offset, len) = cx.split(rest, b',', "`,length`")?;
            XferOp::Read { offset: cx.num(offset, "offset")?, len: cx.num(len, "length")? }
        }
        b"write" => {
            let (offset, data) = cx.split(rest, b':', "`:data`")?;
            XferOp::Write { offset: cx.num(offset, "offset")?, data }
        }
        _ => return Err(cx.err(Problem::Invalid("operation (read or write)"))),
    };
    Ok(Xfer { object, annex, op })
}

fn parse_vfile(rest: &[u8]) -> Result<VFile<'_>> {
    let cx = Cx("vFile");
    let rest = cx.after(rest, b":", "`:operation`")?;
    let (op, args) = cx.split(rest, b':', "`:` after the operation")?;
    let fd = |s: &[u8]| cx.num32(s, "descriptor");
    Ok(match op {
        b"open" => {
            let (path, rest) = cx.split(args, b',', "`,flags`")?;
            let (flags, mode) = cx.split(rest, b',', "`,mode`")?;
            VFile::Open { path: cx.bytes(path, "path")?, flags: cx.num(flags, "flags")?, mode: cx.num(mode, "mode")? }
        }
        b"close" => VFile::Close(fd(args)?),
        b"pread" => {
            let (d, rest) = cx.split(args, b',', "`,count`")?;
            let (count, offset) = cx.split(rest, b',', "`,offset`")?;
            VFile::Pread { fd: fd(d)?, count: cx.num(count, "count")?, offset: cx.num(offset, "offset")? }
        }
        b"pwrite" => {
            let (d, rest) = cx.split(args, b',', "`,offset`")?;
            let (offset, data) = cx.split(rest, b',', "`,data`")?;
            VFile::Pwrite { fd: fd(d)?, offset: cx.num(offset, "offset")?, data }
        }
        b"unlink" => VFile::Unlink(cx.bytes(args, "path")?),
        b"readlink" => VFile::Readlink(cx.bytes(args, "path")?),
        b"fstat" => VFile::Fstat(fd(args)?),
        b"stat" => VFile::Stat(cx.bytes(args, "path")?),
        b"lstat" => VFile::Lstat(cx.bytes(args, "path")?),
        b"setfs" => VFile::Setfs(cx.num32(args, "pid")?),
        _ => return Err(cx.err(Problem::Invalid("operation"))),
    })
}

/// The tracepoint packets, by name; `None` for a name that is not one.
fn parse_tracepoint<'a>(name: &'a [u8], rest: &'a [u8]) -> Result<Option<Tracepoint<'a>>> {
    let args = |cx: Cx| cx.after(rest, b":", "`:`");
    let t = match name {
        b"QTinit" => Cx("QTinit").end(rest, Tracepoint::Init)?,
        b"QTStart" => Cx("QTStart").end(rest, Tracepoint::Start)?,
        b"QTStop" => Cx("QTStop").end(rest, Tracepoint::Stop)?,
        b"qTStatus" => Cx("qTStatus").end(rest, Tracepoint::Status)?,
        b"qTfP" => Cx("qTfP").end(rest, Tracepoint::FirstDefinition)?,
        b"qTsP" => Cx("qTsP").end(rest, Tracepoint::NextDefinition)?,
        b"qTfV" => Cx("qTfV").end(rest, Tracepoint::FirstVariable)?,
        b"qTsV" => Cx("qTsV").end(rest, Tracepoint::NextVariable)?,
        b"qTMinFTPILen" => Cx("qTMinFTPILen").end(rest, Tracepoint::MinFastTracepointLen)?,
        b"qTfSTM" => Cx("qTfSTM").end(rest, Tracepoint::FirstStaticMarker)?,
        b"qTsSTM" => Cx("qTsSTM").end(rest, Tracepoint::NextStaticMarker)?,
        b"qTSTMat" => {
            let cx = Cx("qTSTMat");
            Tracepoint::StaticMarkersAt(cx.num(args(cx)?, "address")?)
        }
        b"QTDP" => parse_qtdp(args(Cx("QTDP"))?)?,
        b"QTDPsrc" => {
            let cx = Cx("QTDPsrc");
            let mut f = args(cx)?.splitn(6, |&b| b == b':');
            let mut next = |what| f.next().ok_or(cx.err(Problem::Missing(what)));
            let number = cx.num32(next("number")?, "number")?;
            let addr = cx.num(next("address")?, "address")?;
            let kind = next("type")?;
            let start = cx.num(next("start")?, "start")?;
            let len = cx.num(next("length")?, "length")?;
            let text = cx.bytes(next("text")?, "text")?;
            if kind.is_empty() {
                return Err(cx.err(Problem::Missing("type")));
            }
            Tracepoint::Source { number, addr, kind, start, len, text }
        }
        b"QTDV" => {
            let cx = Cx("QTDV");
            let mut f = args(cx)?.splitn(4, |&b| b == b':');
            let mut next = |what| f.next().ok_or(cx.err(Problem::Missing(what)));
            let number = cx.num32(next("number")?, "number")?;
            // A 64-bit two's complement value, written as its unsigned hex.
            let value = i64::from_ne_bytes(cx.num(next("value")?, "value")?.to_ne_bytes());
            let builtin = cx.flag(next("builtin flag")?, "builtin flag")?;
            let name = cx.bytes(next("name")?, "name")?;
            Tracepoint::DefineVariable { number, value, builtin, name }
        }
        b"QTFrame" => Tracepoint::Frame(parse_qtframe(args(Cx("QTFrame"))?)?),
        b"QTro" => {
            let cx = Cx("QTro");
            let ranges = if rest.is_empty() {
                Vec::new()
            } else {
                args(cx)?
                    .split(|&b| b == b':')
                    .map(|r| {
                        let (s, e) = cx.split(r, b',', "`,end`")?;
                        Ok((cx.num(s, "start")?, cx.num(e, "end")?))
                    })
                    .collect::<Result<_>>()?
            };
            Tracepoint::ReadOnly(ranges)
        }
        b"QTDisconnected" => {
            let cx = Cx("QTDisconnected");
            Tracepoint::Disconnected(cx.num(args(cx)?, "value")? != 0)
        }
        b"QTBuffer" => {
            let cx = Cx("QTBuffer");
            let (what, value) = cx.split(args(cx)?, b':', "`:value`")?;
            match what {
                b"circular" => Tracepoint::BufferCircular(cx.num(value, "value")? != 0),
                b"size" if value == b"-1" => Tracepoint::BufferSize(None),
                b"size" => Tracepoint::BufferSize(Some(cx.num(value, "size")?)),
                _ => return Err(cx.err(Problem::Invalid("setting (circular or size)"))),
            }
        }
        b"QTNotes" => {
            let cx = Cx("QTNotes");
            let notes = args(cx)?
                .split(|&b| b == b';')
                .filter(|n| !n.is_empty())
                .map(|n| {
                    let (kind, text) = cx.split(n, b':', "`:text`")?;
                    Ok((kind, cx.bytes(text, "text")?))
                })
                .collect::<Result<_>>()?;
            Tracepoint::Notes(notes)
        }
        b"QTEnable" | b"QTDisable" | b"qTP" => {
            let cx = Cx(match name {
                b"QTEnable" => "QTEnable",
                b"QTDisable" => "QTDisable",
                _ => "qTP",
            });
            let (number, addr) = cx.split(args(cx)?, b':', "`:address`")?;
            let (number, addr) = (cx.num32(number, "number")?, cx.num(addr, "address")?);
            match name {
                b"QTEnable" => Tracepoint::Enable { number, addr },
                b"QTDisable" => Tracepoint::Disable { number, addr },
                _ => Tracepoint::PointStatus { number, addr },
            }
        }
        b"qTV" => {
            let cx = Cx("qTV");
            Tracepoint::VariableValue(cx.num32(args(cx)?, "variable number")?)
        }
        b"qTBuffer" => {
            let cx = Cx("qTBuffer");
            let (offset, len) = cx.split(args(cx)?, b',', "`,length`")?;
            Tracepoint::ReadBuffer { offset: cx.num(offset, "offset")?, len: cx.num(len, "length")? }
        }
        _ => return Ok(None),
    };
    Ok(Some(t))
}

fn parse_qtdp(args: &[u8]) -> Result<Tracepoint<'_>> {
    let cx = Cx("QTDP");
    if let Some(actions) = args.strip_prefix(b"-") {
        let (number, rest) = cx.split(actions, b':', "`:address`")?;
        let (addr, actions) = cx.split(rest, b':', "`:actions`")?;
        let (actions, more) = match actions.strip_suffix(b"-") {
            Some(a) => (a, true),
            None => (actions, false),
        };
        let (actions, stepping) = match actions.strip_prefix(b"S") {
            Some(a) => (a, true),
            None => (actions, false),
        };
        return Ok(Tracepoint::Actions {
            number: cx.num32(number, "number")?,
            addr: cx.num(addr, "address")?,
            stepping,
            actions: parse_trace_actions(cx, actions)?,
            more,
        });
    }
    let (args, more) = match args.strip_suffix(b"-") {
        Some(a) => (a, true),
        None => (args, false),
    };
    let mut f = args.split(|&b| b == b':');
    let mut next = |what| f.next().ok_or(cx.err(Problem::Missing(what)));
    let number = cx.num32(next("number")?, "number")?;
    let addr = cx.num(next("address")?, "address")?;
    let enabled = match next("enable flag")? {
        b"E" => true,
        b"D" => false,
        _ => return Err(cx.err(Problem::Invalid("enable flag (E or D)"))),
    };
    let step = cx.num(next("step count")?, "step count")?;
    let pass = cx.num(next("pass count")?, "pass count")?;
    let (mut fast, mut static_, mut condition) = (None, false, None);
    for opt in f {
        match opt.split_first() {
            Some((b'F', flen)) => fast = Some(cx.num(flen, "fast tracepoint length")?),
            Some((b'S', [])) => static_ = true,
            Some((b'X', _)) => {
                let (expr, rest) = agent_expr(cx, opt)?;
                cx.end(rest, ())?;
                condition = Some(expr);
            }
            // Options a later gdb may add (`K` for the breakpoint kind): ignored, as gdbserver does.
            Some(_) => {}
            None => return Err(cx.err(Problem::Missing("option"))),
        }
    }
    Ok(Tracepoint::Define { number, addr, enabled, step, pass, fast, static_, condition, more })
}

/// The leading hex digits of `s`, and the rest.
fn hex_prefix(s: &[u8]) -> (&[u8], &[u8]) {
    let n = s.iter().take_while(|&&b| hex::digit(b).is_some()).count();
    (s.get(..n).unwrap_or_default(), s.get(n..).unwrap_or_default())
}

fn parse_trace_actions(cx: Cx, mut s: &[u8]) -> Result<Vec<TraceAction>> {
    let mut out = Vec::new();
    if s.is_empty() {
        return Err(cx.err(Problem::Missing("action")));
    }
    while let Some((&letter, rest)) = s.split_first() {
        let (action, rest) = match letter {
            b'R' => {
                let (mask, rest) = hex_prefix(rest);
                if mask.is_empty() {
                    return Err(cx.err(Problem::Missing("register mask")));
                }
                let mut padded = Vec::with_capacity(mask.len() + 1);
                if mask.len() % 2 == 1 {
                    padded.push(b'0');
                }
                padded.extend_from_slice(mask);
                (TraceAction::Registers(cx.bytes(&padded, "register mask")?), rest)
            }
            b'M' => {
                let (reg, rest) = match rest.strip_prefix(b"-1") {
                    Some(rest) => (None, rest),
                    None => {
                        let (reg, rest) = hex_prefix(rest);
                        match cx.num(reg, "base register")? {
                            0xffff_ffff => (None, rest),
                            r => (Some(u32::try_from(r).map_err(|_| cx.err(Problem::NotHex("base register")))?), rest),
                        }
                    }
                };
                let rest = cx.after(rest, b",", "`,offset`")?;
                let (offset, rest) = hex_prefix(rest);
                let rest = cx.after(rest, b",", "`,length`")?;
                let (len, rest) = hex_prefix(rest);
                let action = TraceAction::Memory {
                    basereg: reg,
                    offset: cx.num(offset, "offset")?,
                    len: cx.num(len, "length")?,
                };
                (action, rest)
            }
            b'X' => {
                let (expr, rest) = agent_expr(cx, s)?;
                (TraceAction::Expression(expr), rest)
            }
            b'L' => (TraceAction::StaticData, rest),
            _ => return Err(cx.err(Problem::Invalid("action"))),
        };
        out.push(action);
        s = rest;
    }
    Ok(out)
}

fn parse_qtframe(args: &[u8]) -> Result<TraceFrame> {
    let cx = Cx("QTFrame");
    let range = |s: &[u8]| -> Result<(u64, u64)> {
        let (start, end) = cx.split(s, b':', "`:end`")?;
        Ok((cx.num(start, "start")?, cx.num(end, "end")?))
    };
    Ok(if let Some(pc) = args.strip_prefix(b"pc:") {
        TraceFrame::Pc(cx.num(pc, "pc")?)
    } else if let Some(t) = args.strip_prefix(b"tdp:") {
        TraceFrame::Tracepoint(cx.num32(t, "tracepoint number")?)
    } else if let Some(r) = args.strip_prefix(b"range:") {
        let (start, end) = range(r)?;
        TraceFrame::Range { start, end }
    } else if let Some(r) = args.strip_prefix(b"outside:") {
        let (start, end) = range(r)?;
        TraceFrame::Outside { start, end }
    } else if args == b"-1" {
        TraceFrame::Number(-1)
    } else {
        // gdb writes the frame number with `%x` of an int: -1 is `ffffffff`.
        TraceFrame::Number(i32::from_ne_bytes(cx.num32(args, "frame number")?.to_ne_bytes()))
    })
}

#[cfg(test)]
pub(super) mod tests;
