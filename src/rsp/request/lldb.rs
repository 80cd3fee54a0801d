//! The packets lldb's gdb-remote client sends beyond gdb's (its `docs/lldb-gdb-remote.txt`):
//! what lldb-server answers, so that `gdb-remote HOST:PORT` can drive xol. lldb writes a few
//! numbers in decimal (`A` lengths and indices); everything else is hex, as in gdb's packets.
//!
//! Not parsed here: lldb's `;thread:TID;` suffix on `g`/`p`/`G`/`P`, which it only adds after
//! the server answers `OK` to `QThreadSuffixSupported` (xol answers empty, so lldb uses `Hg`).

use super::{split_once, Cx, Problem, Request, Result};

/// An lldb request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lldb<'a> {
    /// `qHostInfo`: the host's triple, pointer size, endianness, ...
    HostInfo,
    /// `qProcessInfo`: the current process's pid, triple, ...
    ProcessInfo,
    /// `qRegisterInfoN`: register `N`'s name, size, offset, encoding (when lldb has no target
    /// description).
    RegisterInfo(u32),
    /// `A len,index,hexarg,...`: the program and arguments of the next launch (`argv`, decoded).
    Arguments(Vec<Vec<u8>>),
    /// `qLaunchSuccess`: did the launch `A` asked for work.
    LaunchSuccess,
    /// `QSetDisableASLR:0|1`.
    SetDisableAslr(bool),
    /// `QSetSTDIN:hexpath`, `QSetSTDOUT:`, `QSetSTDERR:`: where the launched program's
    /// standard streams go.
    SetStdio {
        /// 0, 1 or 2.
        fd: u8,
        /// The path, decoded.
        path: Vec<u8>,
    },
    /// `QEnvironment:NAME=VALUE` (not hex-encoded: lldb's plain form).
    Environment(&'a [u8]),
    /// `QThreadSuffixSupported`.
    ThreadSuffixSupported,
    /// `QListThreadsInStopReply`.
    ListThreadsInStopReply,
    /// `QEnableErrorStrings`: `E` replies may carry text.
    EnableErrorStrings,
    /// `qThreadStopInfoTID`: the stop reply of one thread.
    ThreadStopInfo(u32),
    /// `qMemoryRegionInfo[:addr]` (no address: does the server support it).
    MemoryRegionInfo(Option<u64>),
    /// `qGDBServerVersion`.
    ServerVersion,
    /// `qShlibInfoAddr`: the address of the dynamic linker's `r_debug`.
    ShlibInfoAddr,
    /// `qWatchpointSupportInfo[:]`: how many hardware watchpoints.
    WatchpointSupportInfo,
    /// `jThreadsInfo`: every thread's stop information, JSON.
    ThreadsInfo,
    /// `jGetLoadedDynamicLibrariesInfos:{json}`: the JSON arguments, as sent.
    LoadedLibrariesInfos(&'a [u8]),
    /// `qModuleInfo:hexpath;hextriple`.
    ModuleInfo {
        /// The module path, decoded.
        path: Vec<u8>,
        /// The target triple, decoded.
        triple: Vec<u8>,
    },
    /// `vAttachName;hexname`: attach to the process with this name.
    AttachName(Vec<u8>),
    /// `vAttachWait;hexname`: attach to the next process with this name.
    AttachWait(Vec<u8>),
    /// `qVAttachOrWaitSupported`.
    AttachOrWaitSupported,
    /// `qStructuredDataPlugins`.
    StructuredDataPlugins,
    /// `qQueryGDBServer`: the platform's list of debug servers.
    QueryServer,
}

/// Decimal, as lldb writes `A` fields.
fn decimal(cx: Cx, s: &[u8], what: &'static str) -> Result<u64> {
    if s.is_empty() {
        return Err(cx.err(Problem::Missing(what)));
    }
    s.iter().try_fold(0u64, |acc, &b| {
        let d = b.checked_sub(b'0').filter(|d| *d < 10).ok_or(cx.err(Problem::Invalid(what)))?;
        acc.checked_mul(10).and_then(|a| a.checked_add(u64::from(d))).ok_or(cx.err(Problem::Invalid(what)))
    })
}

/// `A len,index,hexarg,...` (the body after `A`).
pub(super) fn parse_arguments(body: &[u8]) -> Result<Request<'_>> {
    let cx = Cx("A");
    let mut fields = body.split(|&b| b == b',');
    let mut args = Vec::new();
    while let Some(len) = fields.next() {
        let len = decimal(cx, len, "argument length")?;
        let index = decimal(cx, fields.next().ok_or(cx.err(Problem::Missing("argument index")))?, "argument index")?;
        let arg = fields.next().ok_or(cx.err(Problem::Missing("argument")))?;
        if u64::try_from(args.len()).ok() != Some(index) {
            return Err(cx.err(Problem::Invalid("argument index (out of order)")));
        }
        cx.check_len(len, arg)?;
        args.push(cx.bytes(arg, "argument")?);
    }
    if args.is_empty() {
        return Err(cx.err(Problem::Missing("program")));
    }
    Ok(Request::Lldb(Lldb::Arguments(args)))
}

/// The lldb packets by name (`None`: not one of them).
pub(super) fn parse<'a>(name: &'a [u8], rest: &'a [u8]) -> Result<Option<Lldb<'a>>> {
    let exact = |packet: &'static str, l: Lldb<'a>| Cx(packet).end(rest, l);
    let arg = |cx: Cx| cx.after(rest, b":", "`:`");
    let l = match name {
        b"qHostInfo" => exact("qHostInfo", Lldb::HostInfo)?,
        b"qProcessInfo" => exact("qProcessInfo", Lldb::ProcessInfo)?,
        b"qLaunchSuccess" => exact("qLaunchSuccess", Lldb::LaunchSuccess)?,
        b"QThreadSuffixSupported" => exact("QThreadSuffixSupported", Lldb::ThreadSuffixSupported)?,
        b"QListThreadsInStopReply" => exact("QListThreadsInStopReply", Lldb::ListThreadsInStopReply)?,
        b"QEnableErrorStrings" => exact("QEnableErrorStrings", Lldb::EnableErrorStrings)?,
        b"qGDBServerVersion" => exact("qGDBServerVersion", Lldb::ServerVersion)?,
        b"qShlibInfoAddr" => exact("qShlibInfoAddr", Lldb::ShlibInfoAddr)?,
        b"jThreadsInfo" => exact("jThreadsInfo", Lldb::ThreadsInfo)?,
        b"qVAttachOrWaitSupported" => exact("qVAttachOrWaitSupported", Lldb::AttachOrWaitSupported)?,
        b"qStructuredDataPlugins" => exact("qStructuredDataPlugins", Lldb::StructuredDataPlugins)?,
        b"qQueryGDBServer" => exact("qQueryGDBServer", Lldb::QueryServer)?,
        b"qWatchpointSupportInfo" => {
            let cx = Cx("qWatchpointSupportInfo");
            cx.end(rest.strip_prefix(b":").unwrap_or(rest), Lldb::WatchpointSupportInfo)?
        }
        b"QSetDisableASLR" => {
            let cx = Cx("QSetDisableASLR");
            Lldb::SetDisableAslr(cx.flag(arg(cx)?, "value")?)
        }
        b"QSetSTDIN" | b"QSetSTDOUT" | b"QSetSTDERR" => {
            let (fd, cx) = match name {
                b"QSetSTDIN" => (0, Cx("QSetSTDIN")),
                b"QSetSTDOUT" => (1, Cx("QSetSTDOUT")),
                _ => (2, Cx("QSetSTDERR")),
            };
            Lldb::SetStdio { fd, path: cx.bytes(arg(cx)?, "path")? }
        }
        b"QEnvironment" => {
            let cx = Cx("QEnvironment");
            let var = arg(cx)?;
            if split_once(var, b'=').is_none_or(|(name, _)| name.is_empty()) {
                return Err(cx.err(Problem::Invalid("variable (NAME=VALUE)")));
            }
            Lldb::Environment(var)
        }
        b"qMemoryRegionInfo" => {
            let cx = Cx("qMemoryRegionInfo");
            match rest.strip_prefix(b":") {
                Some(addr) => Lldb::MemoryRegionInfo(Some(cx.num(addr, "address")?)),
                None => cx.end(rest, Lldb::MemoryRegionInfo(None))?,
            }
        }
        b"jGetLoadedDynamicLibrariesInfos" => {
            let cx = Cx("jGetLoadedDynamicLibrariesInfos");
            Lldb::LoadedLibrariesInfos(arg(cx)?)
        }
        b"qModuleInfo" => {
            let cx = Cx("qModuleInfo");
            let (path, triple) = cx.split(arg(cx)?, b';', "`;triple`")?;
            Lldb::ModuleInfo { path: cx.bytes(path, "path")?, triple: cx.bytes(triple, "triple")? }
        }
        b"vAttachName" | b"vAttachWait" => {
            let cx = Cx(if name == b"vAttachName" { "vAttachName" } else { "vAttachWait" });
            let process = cx.bytes(cx.after(rest, b";", "`;name`")?, "name")?;
            if name == b"vAttachName" {
                Lldb::AttachName(process)
            } else {
                Lldb::AttachWait(process)
            }
        }
        _ => {
            if let Some(n) = name.strip_prefix(b"qRegisterInfo") {
                Lldb::RegisterInfo(Cx("qRegisterInfo").num32(n, "register number")?)
            } else if let Some(t) = name.strip_prefix(b"qThreadStopInfo") {
                Lldb::ThreadStopInfo(Cx("qThreadStopInfo").num32(t, "thread id")?)
            } else {
                return Ok(None);
            }
        }
    };
    Ok(Some(l))
}

#[cfg(test)]
mod tests {
    use super::super::parse as parse_request;
    use super::*;

    fn lldb(p: &[u8]) -> Lldb<'_> {
        match parse_request(p) {
            Ok(Request::Lldb(l)) => l,
            r => panic!("{}: {r:?}", String::from_utf8_lossy(p)),
        }
    }

    #[test]
    fn lldb_packets() {
        assert_eq!(lldb(b"qHostInfo"), Lldb::HostInfo);
        assert_eq!(lldb(b"qProcessInfo"), Lldb::ProcessInfo);
        assert_eq!(lldb(b"qRegisterInfo1a"), Lldb::RegisterInfo(0x1a));
        // lldb's SendArgumentsPacket: "A%i,%i," with the hex length and the index, decimal.
        assert_eq!(
            lldb(b"A18,0,2f746d702f6c6f6f70,4,1,2d76"),
            Lldb::Arguments(vec![b"/tmp/loop".to_vec(), b"-v".to_vec()])
        );
        assert_eq!(lldb(b"qLaunchSuccess"), Lldb::LaunchSuccess);
        assert_eq!(lldb(b"QSetDisableASLR:1"), Lldb::SetDisableAslr(true));
        assert_eq!(lldb(b"QSetSTDIN:2f6465762f6e756c6c"), Lldb::SetStdio { fd: 0, path: b"/dev/null".to_vec() });
        assert_eq!(lldb(b"QSetSTDERR:2f"), Lldb::SetStdio { fd: 2, path: b"/".to_vec() });
        assert_eq!(lldb(b"QEnvironment:LANG=C.UTF-8"), Lldb::Environment(b"LANG=C.UTF-8"));
        assert_eq!(lldb(b"QThreadSuffixSupported"), Lldb::ThreadSuffixSupported);
        assert_eq!(lldb(b"QListThreadsInStopReply"), Lldb::ListThreadsInStopReply);
        assert_eq!(lldb(b"QEnableErrorStrings"), Lldb::EnableErrorStrings);
        assert_eq!(lldb(b"qThreadStopInfo7a4"), Lldb::ThreadStopInfo(0x7a4));
        assert_eq!(lldb(b"qMemoryRegionInfo"), Lldb::MemoryRegionInfo(None));
        assert_eq!(lldb(b"qMemoryRegionInfo:7ffff7dd0000"), Lldb::MemoryRegionInfo(Some(0x7fff_f7dd_0000)));
        assert_eq!(lldb(b"qGDBServerVersion"), Lldb::ServerVersion);
        assert_eq!(lldb(b"qShlibInfoAddr"), Lldb::ShlibInfoAddr);
        assert_eq!(lldb(b"qWatchpointSupportInfo:"), Lldb::WatchpointSupportInfo);
        assert_eq!(lldb(b"qWatchpointSupportInfo"), Lldb::WatchpointSupportInfo);
        assert_eq!(lldb(b"jThreadsInfo"), Lldb::ThreadsInfo);
        assert_eq!(
            lldb(b"jGetLoadedDynamicLibrariesInfos:{\"fetch_all_solibs\":true}"),
            Lldb::LoadedLibrariesInfos(b"{\"fetch_all_solibs\":true}")
        );
        assert_eq!(
            lldb(b"qModuleInfo:2f78;7838365f3634"),
            Lldb::ModuleInfo { path: b"/x".to_vec(), triple: b"x86_64".to_vec() }
        );
        assert_eq!(lldb(b"vAttachName;6c6f6f70"), Lldb::AttachName(b"loop".to_vec()));
        assert_eq!(lldb(b"vAttachWait;6c6f6f70"), Lldb::AttachWait(b"loop".to_vec()));
        assert_eq!(lldb(b"qVAttachOrWaitSupported"), Lldb::AttachOrWaitSupported);
        assert_eq!(lldb(b"qStructuredDataPlugins"), Lldb::StructuredDataPlugins);
        assert_eq!(lldb(b"qQueryGDBServer"), Lldb::QueryServer);
    }

    #[test]
    fn malformed_lldb_packets() {
        for (p, packet, problem) in [
            (&b"A"[..], "A", Problem::Missing("argument length")),
            (b"A4,0", "A", Problem::Missing("argument")),
            (b"A4", "A", Problem::Missing("argument index")),
            (b"A4,1,2f78", "A", Problem::Invalid("argument index (out of order)")),
            (b"A6,0,2f78", "A", Problem::LengthMismatch { declared: 6, actual: 4 }),
            (b"Ax,0,2f78", "A", Problem::Invalid("argument length")),
            (b"A99999999999999999999,0,2f", "A", Problem::Invalid("argument length")),
            (b"A3,0,2f7", "A", Problem::NotHex("argument")),
            (b"QSetDisableASLR:2", "QSetDisableASLR", Problem::Invalid("value")),
            (b"QSetSTDOUT:z", "QSetSTDOUT", Problem::NotHex("path")),
            (b"QEnvironment:NOVALUE", "QEnvironment", Problem::Invalid("variable (NAME=VALUE)")),
            (b"QEnvironment:=1", "QEnvironment", Problem::Invalid("variable (NAME=VALUE)")),
            (b"qThreadStopInfo", "qThreadStopInfo", Problem::Missing("thread id")),
            (b"qMemoryRegionInfo:", "qMemoryRegionInfo", Problem::Missing("address")),
            (b"qModuleInfo:2f78", "qModuleInfo", Problem::Missing("`;triple`")),
            (b"vAttachName", "vAttachName", Problem::Missing("`;name`")),
            (b"qHostInfo:1", "qHostInfo", Problem::Trailing),
            (b"qWatchpointSupportInfo:1", "qWatchpointSupportInfo", Problem::Trailing),
        ] {
            let e = parse_request(p).err();
            assert_eq!(e.map(|e| (e.packet, e.problem)), Some((packet, problem)), "{}", String::from_utf8_lossy(p));
        }
    }
}
