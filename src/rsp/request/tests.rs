//! Unit tests of the request parsers: packets as gdb 13 sends them (shapes from the protocol
//! manual and the gdbserver logs behind `protocol-usage.txt`), and malformed variants of each.

use super::*;
use crate::rsp::thread_id::Id;

fn ok(p: &[u8]) -> Request<'_> {
    match parse(p) {
        Ok(r) => r,
        Err(e) => panic!("{:?}: {e}", String::from_utf8_lossy(p)),
    }
}

fn t(pid: u32, tid: u32) -> ThreadId {
    ThreadId::new(pid, tid)
}

/// One packet of every kind in protocol-usage.txt (both boards), as gdb writes it. None may
/// parse to `Unknown`.
pub(crate) const USAGE: &[(&str, &[u8])] = &[
    ("m", b"m555555555149,1"),
    ("qSymbol", b"qSymbol::"),
    ("Z0", b"Z0,555555555149,1"),
    ("z0", b"z0,555555555149,1"),
    ("vCont", b"vCont;c:p7a3.7a3;c"),
    ("QPassSignals", b"QPassSignals:e;10;14;17;1a;1b;1c;21;24;25;2c;4c;97;"),
    ("qXfer:threads:read", b"qXfer:threads:read::0,1000"),
    ("G", b"G0000000000000000ffffffffffffffff"),
    ("H", b"Hgp7a3.7a3"),
    ("vFile:pread", b"vFile:pread:7,3fff,0"),
    ("qXfer:libraries-svr4:read", b"qXfer:libraries-svr4:read:start=7ffff7ffe2e0;prev=7ffff7fc3000:0,fff"),
    ("g", b"g"),
    ("X", b"X555555558010,4:\x01\x00}\x00"),
    ("qXfer:features:read", b"qXfer:features:read:target.xml:0,ffb"),
    ("qTStatus", b"qTStatus"),
    ("vFile:open", b"vFile:open:2f6c69622f6c6962632e736f2e36,0,0"),
    ("vFile:close", b"vFile:close:7"),
    ("vFile:setfs", b"vFile:setfs:0"),
    ("qXfer:auxv:read", b"qXfer:auxv:read::0,1000"),
    ("qTsV", b"qTsV"),
    ("vFile:fstat", b"vFile:fstat:7"),
    ("qTfV", b"qTfV"),
    ("qXfer:exec-file:read", b"qXfer:exec-file:read:7a3:0,fff"),
    ("QProgramSignals", b"QProgramSignals:0;1;3;4;6;7;8;9;a;b;c;d;e;f;10;11;12;13;14;15;16;97;"),
    ("?", b"?"),
    ("QNonStop", b"QNonStop:0"),
    ("QStartNoAckMode", b"QStartNoAckMode"),
    (
        "qSupported",
        b"qSupported:multiprocess+;swbreak+;hwbreak+;qRelocInsn+;fork-events+;vfork-events+;exec-events+;\
vContSupported+;QThreadEvents+;no-resumed+;memory-tagging+;xmlRegisters=i386",
    ),
    ("vMustReplyEmpty", b"vMustReplyEmpty"),
    ("qOffsets", b"qOffsets"),
    ("qAttached", b"qAttached:7a3"),
    ("vCont?", b"vCont?"),
    ("qXfer:siginfo:read", b"qXfer:siginfo:read::0,1000"),
    ("qXfer:siginfo:write", b"qXfer:siginfo:write::0:\x0b\x00\x00\x00:$#"),
    ("qTBuffer", b"qTBuffer:0,1f4"),
    ("qRcmd", b"qRcmd,68656c70"),
    ("QTFrame", b"QTFrame:0"),
    ("qTsP", b"qTsP"),
    ("qTfP", b"qTfP"),
    ("qXfer:btrace-conf:read", b"qXfer:btrace-conf:read::0,fff"),
    ("!", b"!"),
    ("QCatchSyscalls", b"QCatchSyscalls:1;0;3c"),
    ("P", b"P10=4951555555550000"),
    ("QDisableRandomization", b"QDisableRandomization:1"),
    ("QEnvironmentReset", b"QEnvironmentReset"),
    ("QSetWorkingDir", b"QSetWorkingDir:2f746d70"),
    ("QStartupWithShell", b"QStartupWithShell:1"),
    ("QTDPsrc", b"QTDPsrc:1:555555555149:at:0:8:6d61696e2e633a35"),
    ("vRun", b"vRun;2f746d702f61;;6869"),
    ("QTDP", b"QTDP:1:0000555555555149:E:0:0-"),
    ("qsThreadInfo", b"qsThreadInfo"),
    ("Z2", b"Z2,555555558014,4"),
    ("z2", b"z2,555555558014,4"),
    ("T", b"Tp7a3.7a4"),
    ("vStopped", b"vStopped"),
    ("qfThreadInfo", b"qfThreadInfo"),
    ("qTP", b"qTP:1:555555555149"),
    ("vKill", b"vKill;7a3"),
    ("D", b"D;7a3"),
    ("qXfer:traceframe-info:read", b"qXfer:traceframe-info:read::0,fff"),
    ("QTBuffer:size", b"QTBuffer:size:-1"),
    ("QThreadEvents", b"QThreadEvents:1"),
    ("QTBuffer:circular", b"QTBuffer:circular:1"),
    ("QTDisconnected", b"QTDisconnected:0"),
    ("QTDV", b"QTDV:1:0000000000000000:1:74726163655f74696d657374616d70"),
    ("QTNotes:user", b"QTNotes:user:6a6f65;"),
    ("QTinit", b"QTinit"),
    ("QTStart", b"QTStart"),
    ("QTro", b"QTro:400238,400254:400254,400274"),
    ("QTNotes:tstop", b"QTNotes:tstop:646f6e65;"),
    ("QTStop", b"QTStop"),
    ("qSearch", b"qSearch:memory:555555558010;64;he}llo"),
    ("Z1", b"Z1,555555555149,1"),
    ("z1", b"z1,555555555149,1"),
    ("qC", b"qC"),
    ("qGetTLSAddr", b"qGetTLSAddr:p7a3.7a4,0,7ffff7fc3000"),
    ("vAttach", b"vAttach;7a3"),
    ("qThreadExtraInfo", b"qThreadExtraInfo,p7a3.7a4"),
    ("qL", b"qL1200000000000000000"),
    ("Z4", b"Z4,555555558014,4"),
    ("qTMinFTPILen", b"qTMinFTPILen"),
    ("qTV", b"qTV:1"),
    ("z4", b"z4,555555558014,4"),
    ("qXfer:osdata:read", b"qXfer:osdata:read:processes:0,fff"),
    ("c", b"c"),
    ("QTDisable", b"QTDisable:1:555555555149"),
    ("QTEnable", b"QTEnable:1:555555555149"),
    ("qP", b"qP0000001f0000000000000c74"),
    ("qRelocInsn", b"qRelocInsn:5"),
    ("s", b"s"),
    ("R", b"R00"),
    ("Z3", b"Z3,555555558014,4"),
    ("vFile:readlink", b"vFile:readlink:2f70726f632f3132332f657865"),
    ("vFile:unlink", b"vFile:unlink:2f746d702f78"),
    ("QTNotes:notes", b"QTNotes:notes:6e6f7465;"),
    ("vFile:pwrite", b"vFile:pwrite:7,0,he,llo"),
    // Beyond the usage file: advertised by gdbserver 13 or in the brief.
    ("x", b"x555555558010,40"),
    ("p", b"p10"),
    ("M", b"M555555558010,2:beef"),
    ("C", b"C0b;555555555149"),
    ("S", b"S05"),
    ("k", b"k"),
    ("vCtrlC", b"vCtrlC"),
    ("qCRC", b"qCRC:555555554000,1000"),
    ("vFile:stat", b"vFile:stat:2f746d70"),
    ("vFile:lstat", b"vFile:lstat:2f746d70"),
    ("qExecAndArgs", b"qExecAndArgs"),
    ("qHostInfo", b"qHostInfo"),
    ("qProcessInfo", b"qProcessInfo"),
    ("qRegisterInfo", b"qRegisterInfo1a"),
    ("A (lldb)", b"A18,0,2f746d702f6c6f6f70,4,1,2d76"),
    ("qThreadStopInfo (lldb)", b"qThreadStopInfo7a4"),
    ("qMemoryRegionInfo (lldb)", b"qMemoryRegionInfo:7ffff7dd0000"),
    ("jThreadsInfo (lldb)", b"jThreadsInfo"),
    ("qModuleInfo (lldb)", b"qModuleInfo:2f78;7838365f3634"),
    ("QEnvironmentHexEncoded", b"QEnvironmentHexEncoded:413d31"),
    ("QEnvironmentUnset", b"QEnvironmentUnset:41"),
    ("QAgent", b"QAgent:1"),
    ("Qbtrace", b"Qbtrace:pt"),
    ("Qbtrace-conf", b"Qbtrace-conf:bts:size=10000"),
    ("qXfer:statictrace:read", b"qXfer:statictrace:read::0,fff"),
    ("qTfSTM", b"qTfSTM"),
    ("qTSTMat", b"qTSTMat:401136"),
    ("QTDP actions", b"QTDP:-1:0000555555555149:MFFFFFFFF,555555558010,4-"),
    ("Z0 with conditions", b"Z0,401136,1;X3,220001;cmds:1,X2,2627"),
];

#[test]
fn every_kind_in_the_usage_file_parses() {
    for (kind, p) in USAGE {
        let r = ok(p);
        assert!(!matches!(r, Request::Unknown(_)), "{kind}: {r:?}");
    }
}

#[test]
fn registers_and_memory() {
    assert_eq!(ok(b"g"), Request::ReadRegisters);
    assert_eq!(ok(b"G00ff"), Request::WriteRegisters(vec![0, 0xff]));
    assert_eq!(ok(b"p10"), Request::ReadRegister(0x10));
    assert_eq!(
        ok(b"P10=4951555555550000"),
        Request::WriteRegister { reg: 0x10, value: vec![0x49, 0x51, 0x55, 0x55, 0x55, 0x55, 0, 0] }
    );
    assert_eq!(ok(b"m555555555149,1"), Request::ReadMemory { addr: 0x5555_5555_5149, len: 1 });
    assert_eq!(ok(b"x0,0"), Request::ReadMemoryBinary { addr: 0, len: 0 });
    assert_eq!(ok(b"M1000,2:beef"), Request::WriteMemory { addr: 0x1000, data: vec![0xbe, 0xef] });
    // Binary data may contain ':' and ',' (it is unescaped by framing already).
    assert_eq!(ok(b"X1000,3::,\x00"), Request::WriteMemoryBinary { addr: 0x1000, data: b":,\x00" });
    assert_eq!(ok(b"X1000,0:"), Request::WriteMemoryBinary { addr: 0x1000, data: b"" });
    assert_eq!(ok(b"qSearch:memory:1000;64;a;b"), Request::SearchMemory { addr: 0x1000, len: 0x64, pattern: b"a;b" });
    assert_eq!(ok(b"qCRC:1000,20"), Request::Crc { addr: 0x1000, len: 0x20 });
}

#[test]
fn run_control() {
    assert_eq!(ok(b"?"), Request::HaltReason);
    assert_eq!(ok(b"c"), Request::Continue { addr: None });
    assert_eq!(ok(b"c401136"), Request::Continue { addr: Some(0x401136) });
    assert_eq!(ok(b"s"), Request::Step { addr: None });
    assert_eq!(ok(b"C0b"), Request::ContinueWithSignal { signal: 0xb, addr: None });
    assert_eq!(ok(b"S05;401136"), Request::StepWithSignal { signal: 5, addr: Some(0x401136) });
    assert_eq!(ok(b"vCont?"), Request::VContSupported);
    assert_eq!(
        ok(b"vCont;r555555555149,55555555515d:p7a3.7a3;C1e:p7a3.7a4;s:7a5;t:p7a3.-1;S0b;c"),
        Request::VCont(vec![
            VContAction {
                resume: Resume::RangeStep { start: 0x5555_5555_5149, end: 0x5555_5555_515d },
                thread: Some(t(0x7a3, 0x7a3))
            },
            VContAction { resume: Resume::ContinueWithSignal(0x1e), thread: Some(t(0x7a3, 0x7a4)) },
            VContAction { resume: Resume::Step, thread: Some(ThreadId { pid: None, tid: Id::Is(0x7a5) }) },
            VContAction { resume: Resume::Stop, thread: Some(ThreadId { pid: Some(Id::Is(0x7a3)), tid: Id::All }) },
            VContAction { resume: Resume::StepWithSignal(0xb), thread: None },
            VContAction { resume: Resume::Continue, thread: None },
        ])
    );
    assert_eq!(ok(b"vStopped"), Request::Stopped);
    assert_eq!(ok(b"vCtrlC"), Request::CtrlC);
    assert_eq!(ok(b"k"), Request::Kill);
    assert_eq!(ok(b"vKill;7a3"), Request::KillProcess(0x7a3));
    assert_eq!(ok(b"D"), Request::Detach(None));
    assert_eq!(ok(b"D;7a3"), Request::Detach(Some(0x7a3)));
    assert_eq!(ok(b"R00"), Request::Restart);
    assert_eq!(ok(b"R"), Request::Restart);
    assert_eq!(ok(b"!"), Request::ExtendedMode);
    assert_eq!(ok(b"vAttach;7a3"), Request::Attach(0x7a3));
    assert_eq!(
        ok(b"vRun;2f746d702f61;;6869"),
        Request::Run { program: b"/tmp/a".to_vec(), args: vec![Vec::new(), b"hi".to_vec()] }
    );
    assert_eq!(ok(b"vRun;"), Request::Run { program: Vec::new(), args: Vec::new() });
}

#[test]
fn threads() {
    assert_eq!(ok(b"Hgp7a3.7a3"), Request::SetThread { op: b'g', thread: t(0x7a3, 0x7a3) });
    assert_eq!(ok(b"Hc-1"), Request::SetThread { op: b'c', thread: ThreadId::ALL });
    assert_eq!(ok(b"Hg0"), Request::SetThread { op: b'g', thread: ThreadId::ANY });
    assert_eq!(ok(b"Tp7a3.7a4"), Request::ThreadAlive(t(0x7a3, 0x7a4)));
    assert_eq!(ok(b"qC"), Request::CurrentThread);
    assert_eq!(ok(b"qfThreadInfo"), Request::ThreadInfoFirst);
    assert_eq!(ok(b"qsThreadInfo"), Request::ThreadInfoNext);
    assert_eq!(ok(b"qThreadExtraInfo,p7a3.7a4"), Request::ThreadExtraInfo(t(0x7a3, 0x7a4)));
    assert_eq!(ok(b"qAttached"), Request::Attached(None));
    assert_eq!(ok(b"qAttached:7a3"), Request::Attached(Some(0x7a3)));
    assert_eq!(ok(b"qL1200000000000000000"), Request::LegacyThreadList { first: true, max: 0x20, next: 0 });
    assert_eq!(ok(b"qP0000001f0000000000000c74"), Request::LegacyThreadInfo { mode: 0x1f, thread: 0xc74 });
    assert_eq!(
        ok(b"qGetTLSAddr:p7a3.7a4,10,7ffff7fc3000"),
        Request::TlsAddress { thread: t(0x7a3, 0x7a4), offset: 0x10, lm: 0x7fff_f7fc_3000 }
    );
}

#[test]
fn breakpoints_with_target_conditions_and_commands() {
    assert_eq!(
        ok(b"Z0,401136,1"),
        Request::InsertPoint(Point {
            ty: PointType::Software,
            addr: 0x401136,
            kind: 1,
            conditions: vec![],
            commands: None
        })
    );
    assert_eq!(
        ok(b"z4,7ffe0010,8"),
        Request::RemovePoint(Point {
            ty: PointType::AccessWatch,
            addr: 0x7ffe_0010,
            kind: 8,
            conditions: vec![],
            commands: None
        })
    );
    // Two conditions, then persistent commands (as gdb's remote_add_target_side_*).
    let Request::InsertPoint(p) = ok(b"Z0,401136,1;X3,220001;X2,2627;cmds:1,X2,2627X1,27") else { panic!() };
    assert_eq!(p.conditions, vec![vec![0x22, 0x00, 0x01], vec![0x26, 0x27]]);
    assert_eq!(p.commands, Some(PointCommands { persist: true, list: vec![vec![0x26, 0x27], vec![0x27]] }));
    let Request::InsertPoint(p) = ok(b"Z1,401136,1;cmds:0,X1,27;X1,28") else { panic!() };
    assert_eq!(p.ty, PointType::Hardware);
    assert_eq!(p.commands, Some(PointCommands { persist: false, list: vec![vec![0x27], vec![0x28]] }));
    for (ty, p) in [(PointType::WriteWatch, &b"Z2,0,4"[..]), (PointType::ReadWatch, b"Z3,0,4")] {
        assert!(matches!(ok(p), Request::InsertPoint(Point { ty: t, .. }) if t == ty));
    }
}

#[test]
fn session_setup() {
    let Request::Supported(f) = ok(USAGE.iter().find(|(k, _)| *k == "qSupported").map(|(_, p)| *p).unwrap_or_default())
    else {
        panic!()
    };
    assert_eq!(f.len(), 12);
    assert_eq!(feature(&f, "multiprocess"), Some(FeatureValue::Yes));
    assert_eq!(feature(&f, "xmlRegisters"), Some(FeatureValue::Value(b"i386")));
    assert_eq!(feature(&f, "nothing"), None);
    assert_eq!(ok(b"qSupported"), Request::Supported(vec![]));
    assert_eq!(
        ok(b"qSupported:a-;b?"),
        Request::Supported(vec![
            Feature { name: b"a", value: FeatureValue::No },
            Feature { name: b"b", value: FeatureValue::Query }
        ])
    );
    assert_eq!(ok(b"QStartNoAckMode"), Request::StartNoAckMode);
    assert_eq!(ok(b"vMustReplyEmpty"), Request::MustReplyEmpty);
    assert_eq!(ok(b"QNonStop:1"), Request::NonStop(true));
    assert_eq!(ok(b"QThreadEvents:0"), Request::ThreadEvents(false));
    assert_eq!(ok(b"QPassSignals:e;10;"), Request::PassSignals(vec![0xe, 0x10]));
    assert_eq!(ok(b"QPassSignals:"), Request::PassSignals(vec![]));
    assert_eq!(ok(b"QProgramSignals:0;1"), Request::ProgramSignals(vec![0, 1]));
    assert_eq!(ok(b"QCatchSyscalls:0"), Request::CatchSyscalls(CatchSyscalls::Off));
    assert_eq!(ok(b"QCatchSyscalls:1"), Request::CatchSyscalls(CatchSyscalls::All));
    assert_eq!(ok(b"QCatchSyscalls:1;0;3c"), Request::CatchSyscalls(CatchSyscalls::Only(vec![0, 0x3c])));
    assert_eq!(ok(b"QDisableRandomization:0"), Request::DisableRandomization(false));
    assert_eq!(ok(b"QEnvironmentHexEncoded:413d31"), Request::EnvironmentSet(b"A=1".to_vec()));
    assert_eq!(ok(b"QEnvironmentUnset:41"), Request::EnvironmentUnset(b"A".to_vec()));
    assert_eq!(ok(b"QEnvironmentReset"), Request::EnvironmentReset);
    assert_eq!(ok(b"QSetWorkingDir:"), Request::SetWorkingDir(None));
    assert_eq!(ok(b"QSetWorkingDir:2f746d70"), Request::SetWorkingDir(Some(b"/tmp".to_vec())));
    assert_eq!(ok(b"QStartupWithShell:0"), Request::StartupWithShell(false));
    assert_eq!(ok(b"QAgent:1"), Request::Agent(true));
    assert_eq!(ok(b"Qbtrace:bts"), Request::Btrace(BtraceFormat::Bts));
    assert_eq!(ok(b"Qbtrace:pt"), Request::Btrace(BtraceFormat::Pt));
    assert_eq!(ok(b"Qbtrace:off"), Request::Btrace(BtraceFormat::Off));
    assert_eq!(ok(b"Qbtrace-conf:pt:size=4000"), Request::BtraceConf { format: BtraceFormat::Pt, size: 0x4000 });
}

#[test]
fn queries() {
    assert_eq!(ok(b"qOffsets"), Request::Offsets);
    assert_eq!(ok(b"qSymbol::"), Request::Symbol(SymbolPacket::Ready));
    assert_eq!(
        ok(b"qSymbol:7ffff7d8e000:6e70746c"),
        Request::Symbol(SymbolPacket::Value { name: b"nptl".to_vec(), value: Some(0x7fff_f7d8_e000) })
    );
    assert_eq!(ok(b"qSymbol::6e70746c"), Request::Symbol(SymbolPacket::Value { name: b"nptl".to_vec(), value: None }));
    assert_eq!(
        ok(b"qXfer:features:read:target.xml:0,ffb"),
        Request::Xfer(Xfer {
            object: XferObject::Features,
            annex: b"target.xml",
            op: XferOp::Read { offset: 0, len: 0xffb }
        })
    );
    assert_eq!(
        ok(b"qXfer:siginfo:write::0:a:b"),
        Request::Xfer(Xfer { object: XferObject::Siginfo, annex: b"", op: XferOp::Write { offset: 0, data: b"a:b" } })
    );
    assert_eq!(
        ok(b"qXfer:new-thing:read:x:10,20"),
        Request::Xfer(Xfer {
            object: XferObject::Other(b"new-thing"),
            annex: b"x",
            op: XferOp::Read { offset: 0x10, len: 0x20 }
        })
    );
    for (name, object) in [
        (&b"auxv"[..], XferObject::Auxv),
        (b"libraries", XferObject::Libraries),
        (b"libraries-svr4", XferObject::LibrariesSvr4),
        (b"threads", XferObject::Threads),
        (b"exec-file", XferObject::ExecFile),
        (b"osdata", XferObject::Osdata),
        (b"memory-map", XferObject::MemoryMap),
        (b"btrace", XferObject::Btrace),
        (b"btrace-conf", XferObject::BtraceConf),
        (b"traceframe-info", XferObject::TraceframeInfo),
        (b"fdpic", XferObject::Fdpic),
        (b"statictrace", XferObject::StaticTrace),
    ] {
        let mut p = b"qXfer:".to_vec();
        p.extend_from_slice(name);
        p.extend_from_slice(b":read::0,1");
        assert!(matches!(parse(&p), Ok(Request::Xfer(Xfer { object: o, .. })) if o == object));
    }
    let xfer = |p: &'static [u8]| match ok(p) {
        Request::Xfer(x) => x,
        r => panic!("{r:?}"),
    };
    assert_eq!(xfer(b"qXfer:exec-file:read:7a3:0,fff").annex_pid(), Ok(Some(0x7a3)));
    assert_eq!(xfer(b"qXfer:exec-file:read::0,fff").annex_pid(), Ok(None));
    assert!(xfer(b"qXfer:exec-file:read:x:0,fff").annex_pid().is_err());
    let a = xfer(b"qXfer:libraries-svr4:read:start=7ffff7ffe2e0;prev=7ffff7fc3000;new=1:0,fff").svr4_annex();
    assert_eq!(a, Ok(Svr4Annex { start: Some(0x7fff_f7ff_e2e0), prev: Some(0x7fff_f7fc_3000), lmid: None }));
    assert_eq!(xfer(b"qXfer:libraries-svr4:read::0,fff").svr4_annex(), Ok(Svr4Annex::default()));
    assert!(xfer(b"qXfer:libraries-svr4:read:start:0,fff").svr4_annex().is_err());
    assert!(xfer(b"qXfer:libraries-svr4:read:lmid=z:0,fff").svr4_annex().is_err());
    assert_eq!(ok(b"qRcmd,68656c70"), Request::Monitor(b"help".to_vec()));
    assert_eq!(ok(b"qExecAndArgs"), Request::ExecAndArgs);
    assert_eq!(ok(b"qRelocInsn:5"), Request::RelocInsn { adjusted: 5 });
}

#[test]
fn tracepoints() {
    let tp = |p: &'static [u8]| match ok(p) {
        Request::Tracepoint(t) => t,
        r => panic!("{r:?}"),
    };
    assert_eq!(
        tp(b"QTDP:1:0000555555555149:E:0:0-"),
        Tracepoint::Define {
            number: 1,
            addr: 0x5555_5555_5149,
            enabled: true,
            step: 0,
            pass: 0,
            fast: None,
            static_: false,
            condition: None,
            more: true
        }
    );
    assert_eq!(
        tp(b"QTDP:2:401136:D:5:a:F5:S:X3,260027"),
        Tracepoint::Define {
            number: 2,
            addr: 0x401136,
            enabled: false,
            step: 5,
            pass: 0xa,
            fast: Some(5),
            static_: true,
            condition: Some(vec![0x26, 0x00, 0x27]),
            more: false
        }
    );
    assert_eq!(
        tp(b"QTDP:-1:401136:SR1ff-"),
        Tracepoint::Actions {
            number: 1,
            addr: 0x401136,
            stepping: true,
            actions: vec![TraceAction::Registers(vec![1, 0xff])],
            more: true
        }
    );
    assert_eq!(
        tp(b"QTDP:-1:401136:M-1,7ffe,4X2,2627"),
        Tracepoint::Actions {
            number: 1,
            addr: 0x401136,
            stepping: false,
            actions: vec![
                TraceAction::Memory { basereg: None, offset: 0x7ffe, len: 4 },
                TraceAction::Expression(vec![0x26, 0x27])
            ],
            more: false
        }
    );
    // As gdb 13 writes them: one action a packet, the absolute base register as FFFFFFFF.
    let actions = |p: &'static [u8]| match tp(p) {
        Tracepoint::Actions { actions, .. } => actions,
        t => panic!("{t:?}"),
    };
    assert_eq!(
        actions(b"QTDP:-1:401136:MFFFFFFFF,555555558010,4-"),
        vec![TraceAction::Memory { basereg: None, offset: 0x5555_5555_8010, len: 4 }]
    );
    assert_eq!(
        actions(b"QTDP:-1:401136:M6,fffffffffffffff8,8"),
        vec![TraceAction::Memory { basereg: Some(6), offset: u64::MAX - 7, len: 8 }]
    );
    assert_eq!(actions(b"QTDP:-1:401136:X00000003,260027"), vec![TraceAction::Expression(vec![0x26, 0x00, 0x27])]);
    assert_eq!(
        actions(b"QTDP:-1:401136:R00000000000000000000000000000000000003"),
        vec![TraceAction::Registers(vec![0; 18].into_iter().chain([3]).collect())]
    );
    assert_eq!(actions(b"QTDP:-1:401136:LR3"), vec![TraceAction::StaticData, TraceAction::Registers(vec![3])]);
    assert_eq!(tp(b"qTfSTM"), Tracepoint::FirstStaticMarker);
    assert_eq!(tp(b"qTsSTM"), Tracepoint::NextStaticMarker);
    assert_eq!(tp(b"qTSTMat:401136"), Tracepoint::StaticMarkersAt(0x401136));
    assert_eq!(
        tp(b"QTDPsrc:1:555555555149:at:0:8:6d61696e2e633a35"),
        Tracepoint::Source {
            number: 1,
            addr: 0x5555_5555_5149,
            kind: b"at",
            start: 0,
            len: 8,
            text: b"main.c:5".to_vec()
        }
    );
    assert_eq!(
        tp(b"QTDV:2:ffffffffffffffff:0:666f6f"),
        Tracepoint::DefineVariable { number: 2, value: -1, builtin: false, name: b"foo".to_vec() }
    );
    assert_eq!(tp(b"QTFrame:0"), Tracepoint::Frame(TraceFrame::Number(0)));
    assert_eq!(tp(b"QTFrame:ffffffff"), Tracepoint::Frame(TraceFrame::Number(-1)));
    assert_eq!(tp(b"QTFrame:-1"), Tracepoint::Frame(TraceFrame::Number(-1)));
    assert_eq!(tp(b"QTFrame:pc:401136"), Tracepoint::Frame(TraceFrame::Pc(0x401136)));
    assert_eq!(tp(b"QTFrame:tdp:2"), Tracepoint::Frame(TraceFrame::Tracepoint(2)));
    assert_eq!(tp(b"QTFrame:range:10:20"), Tracepoint::Frame(TraceFrame::Range { start: 0x10, end: 0x20 }));
    assert_eq!(tp(b"QTFrame:outside:10:20"), Tracepoint::Frame(TraceFrame::Outside { start: 0x10, end: 0x20 }));
    assert_eq!(
        tp(b"QTro:400238,400254:400254,400274"),
        Tracepoint::ReadOnly(vec![(0x400238, 0x400254), (0x400254, 0x400274)])
    );
    assert_eq!(tp(b"QTro"), Tracepoint::ReadOnly(vec![]));
    assert_eq!(tp(b"QTDisconnected:1"), Tracepoint::Disconnected(true));
    assert_eq!(tp(b"QTBuffer:circular:0"), Tracepoint::BufferCircular(false));
    assert_eq!(tp(b"QTBuffer:size:-1"), Tracepoint::BufferSize(None));
    assert_eq!(tp(b"QTBuffer:size:4000"), Tracepoint::BufferSize(Some(0x4000)));
    assert_eq!(
        tp(b"QTNotes:user:6a6f65;notes:6e;tstop:;"),
        Tracepoint::Notes(vec![(&b"user"[..], b"joe".to_vec()), (b"notes", b"n".to_vec()), (b"tstop", vec![])])
    );
    assert_eq!(tp(b"QTEnable:1:401136"), Tracepoint::Enable { number: 1, addr: 0x401136 });
    assert_eq!(tp(b"QTDisable:1:401136"), Tracepoint::Disable { number: 1, addr: 0x401136 });
    assert_eq!(tp(b"qTP:1:401136"), Tracepoint::PointStatus { number: 1, addr: 0x401136 });
    assert_eq!(tp(b"qTV:3"), Tracepoint::VariableValue(3));
    assert_eq!(tp(b"qTBuffer:0,1f4"), Tracepoint::ReadBuffer { offset: 0, len: 0x1f4 });
    for (p, want) in [
        (&b"QTinit"[..], Tracepoint::Init),
        (b"QTStart", Tracepoint::Start),
        (b"QTStop", Tracepoint::Stop),
        (b"qTStatus", Tracepoint::Status),
        (b"qTfP", Tracepoint::FirstDefinition),
        (b"qTsP", Tracepoint::NextDefinition),
        (b"qTfV", Tracepoint::FirstVariable),
        (b"qTsV", Tracepoint::NextVariable),
        (b"qTMinFTPILen", Tracepoint::MinFastTracepointLen),
    ] {
        assert_eq!(ok(p), Request::Tracepoint(want));
    }
}

#[test]
fn host_files() {
    let f = |p: &'static [u8]| match ok(p) {
        Request::File(f) => f,
        r => panic!("{r:?}"),
    };
    assert_eq!(f(b"vFile:open:2f746d70,241,1c0"), VFile::Open { path: b"/tmp".to_vec(), flags: 0x241, mode: 0x1c0 });
    assert_eq!(f(b"vFile:close:7"), VFile::Close(7));
    assert_eq!(f(b"vFile:pread:7,3fff,10"), VFile::Pread { fd: 7, count: 0x3fff, offset: 0x10 });
    assert_eq!(f(b"vFile:pwrite:7,10,a,b"), VFile::Pwrite { fd: 7, offset: 0x10, data: b"a,b" });
    assert_eq!(f(b"vFile:unlink:2f78"), VFile::Unlink(b"/x".to_vec()));
    assert_eq!(f(b"vFile:readlink:2f78"), VFile::Readlink(b"/x".to_vec()));
    assert_eq!(f(b"vFile:fstat:3"), VFile::Fstat(3));
    assert_eq!(f(b"vFile:stat:2f78"), VFile::Stat(b"/x".to_vec()));
    assert_eq!(f(b"vFile:lstat:2f78"), VFile::Lstat(b"/x".to_vec()));
    assert_eq!(f(b"vFile:setfs:7a3"), VFile::Setfs(0x7a3));
}

#[test]
fn unknown_kinds_are_not_errors() {
    assert_eq!(ok(b""), Request::Unknown(b""));
    assert_eq!(ok(b"qFooBar:1"), Request::Unknown(b"qFooBar"));
    assert_eq!(ok(b"vFlashDone"), Request::Unknown(b"vFlashDone"));
    assert_eq!(ok(b"QTDDCsrc:00"), Request::Unknown(b"QTDDCsrc"));
    assert_eq!(ok(b"jFooInfo"), Request::Unknown(b"jFooInfo"));
    assert_eq!(ok(b"qProcessInfoPID:1234"), Request::Unknown(b"qProcessInfoPID"));
    assert_eq!(ok(b"qLaunchGDBServer;host:x;"), Request::Unknown(b"qLaunchGDBServer"));
    assert_eq!(ok(b"qPx"), Request::Unknown(b"qPx"));
    assert_eq!(ok(b"i"), Request::Unknown(b"i"));
    assert_eq!(ok(b"\xff\x00"), Request::Unknown(b"\xff"));
    // The name stops at the first separator.
    assert_eq!(ok(b"qXferx:1"), Request::Unknown(b"qXferx"));
}

#[test]
fn malformed_packets_say_what_is_wrong() {
    let cases: &[(&[u8], &str, Problem)] = &[
        (b"gx", "g", Problem::Trailing),
        (b"G0", "G", Problem::NotHex("register data")),
        (b"p", "p", Problem::Missing("register number")),
        (b"p100000000", "p", Problem::NotHex("register number")),
        (b"P10", "P", Problem::Missing("`=value`")),
        (b"P10=x", "P", Problem::NotHex("value")),
        (b"m", "m", Problem::Missing("`,length`")),
        (b"m,1", "m", Problem::Missing("address")),
        (b"m1,", "m", Problem::Missing("length")),
        (b"m1,10000000000000000", "m", Problem::NotHex("length")),
        (b"mzz,1", "m", Problem::NotHex("address")),
        (b"M1,2:be", "M", Problem::LengthMismatch { declared: 2, actual: 1 }),
        (b"M1,1", "M", Problem::Missing("`:data`")),
        (b"X1,2:a", "X", Problem::LengthMismatch { declared: 2, actual: 1 }),
        (b"cxyz", "c", Problem::NotHex("address")),
        (b"C", "C", Problem::Missing("signal")),
        (b"C100", "C", Problem::NotHex("signal")),
        (b"S05;", "S", Problem::Missing("address")),
        (b"H", "H", Problem::Missing("operation")),
        (b"Hg", "H", Problem::Missing("thread id")),
        (b"Hgp", "H", Problem::Invalid("thread id")),
        (b"Tp1.2.3", "T", Problem::Invalid("thread id")),
        (b"D7a3", "D", Problem::Missing("`;pid`")),
        (b"D;", "D", Problem::Missing("pid")),
        (b"Rzz", "R", Problem::NotHex("argument")),
        (b"Z", "Z", Problem::Missing("type")),
        (b"Z5,0,1", "Z", Problem::Invalid("type")),
        (b"Z0,0", "Z", Problem::Missing("`,kind`")),
        (b"z0,0,", "z", Problem::Missing("kind")),
        (b"Z0,0,1;", "Z", Problem::Missing("condition")),
        (b"Z0,0,1;Y1,00", "Z", Problem::Missing("`X` of an agent expression")),
        (b"Z0,0,1;X2,00", "Z", Problem::LengthMismatch { declared: 2, actual: 1 }),
        (b"Z0,0,1;X1,0g", "Z", Problem::NotHex("agent expression")),
        (b"Z0,0,1;X1,00X", "Z", Problem::Trailing),
        (b"Z0,0,1;Xffffffffffffffff,00", "Z", Problem::Invalid("agent expression length")),
        (b"Z0,0,1;cmds:2,X1,00", "Z", Problem::Invalid("cmds persist flag")),
        (b"Z0,0,1;cmds:1", "Z", Problem::Missing("`cmds:persist,`")),
        (b"vCont", "vCont", Problem::Missing("`;action`")),
        (b"vCont;", "vCont", Problem::Missing("action")),
        (b"vCont;x", "vCont", Problem::Invalid("action")),
        (b"vCont;cc", "vCont", Problem::Trailing),
        (b"vCont;C", "vCont", Problem::Missing("signal")),
        (b"vCont;c:", "vCont", Problem::Missing("thread id")),
        (b"vCont;r1", "vCont", Problem::Missing("`,end` of a range")),
        (b"vCont;c;;c", "vCont", Problem::Missing("action")),
        (b"vCont?;c", "vCont?", Problem::Trailing),
        (b"vKill", "vKill", Problem::Missing("`;pid`")),
        (b"vAttach;x", "vAttach", Problem::NotHex("pid")),
        (b"vRun;2", "vRun", Problem::NotHex("program")),
        (b"vRun;;z", "vRun", Problem::NotHex("argument")),
        (b"qSupported:multiprocess", "qSupported", Problem::Invalid("feature (no `+`, `-`, `?` or `=`)")),
        (b"qSupported:+", "qSupported", Problem::Missing("feature name")),
        (b"QNonStop:2", "QNonStop", Problem::Invalid("value")),
        (b"QNonStop", "QNonStop", Problem::Missing("`:`")),
        (b"QThreadEvents:", "QThreadEvents", Problem::Missing("value")),
        (b"QPassSignals:1;x", "QPassSignals", Problem::NotHex("signal")),
        (b"QCatchSyscalls:0;1", "QCatchSyscalls", Problem::Trailing),
        (b"QCatchSyscalls:1;", "QCatchSyscalls", Problem::Missing("syscall number")),
        (b"QEnvironmentHexEncoded:4", "QEnvironmentHexEncoded", Problem::NotHex("value")),
        (b"qC:1", "qC", Problem::Trailing),
        (b"qAttached:", "qAttached", Problem::Missing("pid")),
        (b"qThreadExtraInfo", "qThreadExtraInfo", Problem::Missing("`,thread-id`")),
        (b"qSearch:memory:1;2", "qSearch", Problem::Missing("`;pattern`")),
        (b"qSearch:mem:1;2;3", "qSearch", Problem::Missing("`:memory:`")),
        (b"qCRC:1", "qCRC", Problem::Missing("`,length`")),
        (b"qSymbol:", "qSymbol", Problem::Missing("`:name`")),
        (b"qSymbol:12:", "qSymbol", Problem::Missing("name")),
        (b"qSymbol::6", "qSymbol", Problem::NotHex("name")),
        (b"qXfer", "qXfer", Problem::Missing("`:object`")),
        (b"qXfer::read::0,1", "qXfer", Problem::Missing("object")),
        (b"qXfer:auxv:read::0", "qXfer", Problem::Missing("`,length`")),
        (b"qXfer:auxv:peek::0,1", "qXfer", Problem::Invalid("operation (read or write)")),
        (b"qXfer:auxv:write::0", "qXfer", Problem::Missing("`:data`")),
        (b"qXfer:auxv:read:0,1", "qXfer", Problem::Missing("`:offset`")),
        (b"qGetTLSAddr:p1.2,3", "qGetTLSAddr", Problem::Missing("`,lm`")),
        (b"qGetTLSAddr:x,3,4", "qGetTLSAddr", Problem::Invalid("thread id")),
        (b"qRcmd,6", "qRcmd", Problem::NotHex("command")),
        (b"qRegisterInfo", "qRegisterInfo", Problem::Missing("register number")),
        (b"qRegisterInfoz", "qRegisterInfo", Problem::NotHex("register number")),
        (b"qL12", "qL", Problem::Invalid("length (1 + 2 + 16 hex digits)")),
        (b"qP0000001f", "qP", Problem::Invalid("length (8 + 16 hex digits)")),
        (b"qL1", "qL", Problem::Invalid("length (1 + 2 + 16 hex digits)")),
        (b"vFile:open:2f,0", "vFile", Problem::Missing("`,mode`")),
        (b"vFile:pread:7,1", "vFile", Problem::Missing("`,offset`")),
        (b"vFile:close:-1", "vFile", Problem::NotHex("descriptor")),
        (b"vFile:frob:1", "vFile", Problem::Invalid("operation")),
        (b"vFile:close", "vFile", Problem::Missing("`:` after the operation")),
        (b"QTDP:1:0:X:0:0", "QTDP", Problem::Invalid("enable flag (E or D)")),
        (b"QTDP:1:0:E:0", "QTDP", Problem::Missing("pass count")),
        (b"QTDP:1:0:E:0:0:", "QTDP", Problem::Missing("option")),
        (b"QTDP:1:0:E:0:0:X2,00", "QTDP", Problem::LengthMismatch { declared: 2, actual: 1 }),
        (b"QTDP:-1:0", "QTDP", Problem::Missing("`:actions`")),
        (b"QTDPsrc:1:0:at:0:8", "QTDPsrc", Problem::Missing("text")),
        (b"QTDPsrc:1:0::0:1:61", "QTDPsrc", Problem::Missing("type")),
        (b"QTDV:1:0:2:61", "QTDV", Problem::Invalid("builtin flag")),
        (b"QTFrame:pc:", "QTFrame", Problem::Missing("pc")),
        (b"QTFrame:range:1", "QTFrame", Problem::Missing("`:end`")),
        (b"QTFrame:100000000", "QTFrame", Problem::NotHex("frame number")),
        (b"QTro:1", "QTro", Problem::Missing("`,end`")),
        (b"QTBuffer:size:x", "QTBuffer", Problem::NotHex("size")),
        (b"QTBuffer:colour:1", "QTBuffer", Problem::Invalid("setting (circular or size)")),
        (b"QTNotes:user", "QTNotes", Problem::Missing("`:text`")),
        (b"QTEnable:1", "QTEnable", Problem::Missing("`:address`")),
        (b"qTP:1:x", "qTP", Problem::NotHex("address")),
        (b"qTV", "qTV", Problem::Missing("`:`")),
        (b"qTBuffer:0", "qTBuffer", Problem::Missing("`,length`")),
        (b"QTinit:", "QTinit", Problem::Trailing),
        (b"qRelocInsn:", "qRelocInsn", Problem::Missing("size")),
        (b"QTDP:-1:0:", "QTDP", Problem::Missing("action")),
        (b"QTDP:-1:0:Q", "QTDP", Problem::Invalid("action")),
        (b"QTDP:-1:0:R", "QTDP", Problem::Missing("register mask")),
        (b"QTDP:-1:0:M1", "QTDP", Problem::Missing("`,offset`")),
        (b"QTDP:-1:0:M1,2", "QTDP", Problem::Missing("`,length`")),
        (b"QTDP:-1:0:M1,2,", "QTDP", Problem::Missing("length")),
        (b"QTDP:-1:0:M100000000,2,3", "QTDP", Problem::NotHex("base register")),
        (b"QTDP:-1:0:X1,0", "QTDP", Problem::LengthMismatch { declared: 1, actual: 0 }),
        (b"qTSTMat:", "qTSTMat", Problem::Missing("address")),
        (b"QAgent:x", "QAgent", Problem::Invalid("value")),
        (b"Qbtrace:lbr", "Qbtrace", Problem::Invalid("format (bts, pt or off)")),
        (b"Qbtrace-conf:off:size=1", "Qbtrace-conf", Problem::Invalid("format (bts or pt)")),
        (b"Qbtrace-conf:bts:sz=1", "Qbtrace-conf", Problem::Missing("`size=`")),
        (b"Qbtrace-conf:bts", "Qbtrace-conf", Problem::Missing("`:size=`")),
    ];
    let mut wrong = Vec::new();
    for (p, packet, problem) in cases {
        let shown = String::from_utf8_lossy(p);
        match parse(p) {
            Err(e) if (e.packet, e.problem) == (*packet, *problem) => {
                assert!(e.to_string().starts_with(&format!("malformed {packet} packet: ")), "{e}");
            }
            other => wrong.push(format!("{shown}: {other:?}")),
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
