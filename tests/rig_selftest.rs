//! Self-tests of the test rig in `tests/support/` that do not need xol:
//! fixtures build and behave, process guards clean up, symbol lookup agrees
//! with gdb, and (when GNU gdbserver is installed) the gdb driver and the RSP
//! client work against gdbserver.

mod support;

use std::ffi::OsString;
use std::os::unix::process::ExitStatusExt;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(30);

fn run_fixture(path: &std::path::Path, args: &[&str]) -> Output {
    let (o, _) = run_fixture_with_channel(path, args);
    o
}

/// Runs a fixture natively with its own marks channel ([`MARKS_ENV`]); returns its output
/// and what it wrote to the channel.
fn run_fixture_with_channel(path: &std::path::Path, args: &[&str]) -> (Output, Option<String>) {
    let file = new_marks_path();
    let mut cmd = Command::new(path);
    cmd.args(args).env(MARKS_ENV, &file);
    let o = run_with_timeout(cmd, T);
    (o, take_marks_file(&file))
}

fn marks(o: &Output) -> Vec<String> {
    String::from_utf8_lossy(&o.stdout).lines().filter_map(|l| l.strip_prefix("MARK:").map(str::to_string)).collect()
}

/// Every fixture that prints MARK lines writes each of them, in order, to its own channel
/// too: a stream of the marks it printed on stdout and stderr (`mark_to(stderr, ...)`).
fn assert_channel_matches(name: &str, opts: FixtureOpts, args: &[&str]) {
    let (o, chan) = run_fixture_with_channel(&fixture_with(name, opts), args);
    let printed: Vec<String> = marks(&o)
        .into_iter()
        .chain(String::from_utf8_lossy(&o.stderr).lines().filter_map(|l| l.strip_prefix("MARK:").map(str::to_string)))
        .collect();
    let chan = chan.unwrap_or_else(|| panic!("{name} wrote no marks to ${MARKS_ENV}\n{}", dump(&o)));
    assert!(!printed.is_empty(), "{name}: {}", dump(&o));
    let mut got = marks_in_channel(&chan);
    let mut want = printed;
    // (Several processes print to the channel in the order they ran, to stdout as buffered.)
    got.sort();
    want.sort();
    assert_eq!(got, want, "{name}: the channel must hold the printed marks\n--- channel ---\n{chan}\n{}", dump(&o));
}

fn dump(o: &Output) -> String {
    format!(
        "status {}\n--- stdout ---\n{}--- stderr ---\n{}",
        describe_status(&o.status),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Runs every fixture except `spin` natively and checks MARK lines / status.
fn check_fixtures_run(opts: FixtureOpts) {
    // loop: sum = sum(2i+1) + sum(i+100) over i < n.
    let o = run_fixture(&fixture_with("loop", opts), &["5", "3"]);
    assert_eq!(o.status.code(), Some(3), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "sum=535", "counter=5", "done"], "{}", dump(&o));
    let o = run_fixture(&fixture_with("loop", opts), &[]);
    assert_eq!(o.status.code(), Some(0), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "sum=1145", "counter=10", "done"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("threads", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "work=12", "joined"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("solib", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["before", "fix=5", "after"], "{}", dump(&o));
    assert!(libfix_path(opts).is_file());

    let o = run_fixture(&fixture_with("sighandle", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "handled", "handled", "count=2"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("sigdie", opts), &[]);
    assert_eq!(o.status.signal(), Some(libc::SIGSEGV), "{}", dump(&o));
    assert_eq!(marks(&o), ["about-to-crash"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("forker", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "child", "child-exit=7", "done"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("syscalls", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "pid-same=1", "write", "done"], "{}", dump(&o));

    let o = run_fixture(&fixture_with("insns", opts), &[]);
    assert!(o.status.success(), "{}", dump(&o));
    assert_eq!(marks(&o), ["start", "done"], "{}", dump(&o));

    // spin builds (it is run by `spin_is_killed_by_guard`).
    assert!(fixture_with("spin", opts).is_file());

    // The marks channel of the fixtures gdb sessions read (insns, an assembly program run
    // only against xol for its marks, prints them on stdout only: the rig falls back to the
    // streams for it).
    for (name, args) in [
        ("loop", &["5", "3"][..]),
        ("threads", &[]),
        ("solib", &[]),
        ("sighandle", &[]),
        ("sigdie", &[]),
        ("forker", &[]),
        ("syscalls", &[]),
        ("zombie", &["2"]),
        ("countthreads", &["10", "2", "0"]),
        ("slotsys", &[]),
        ("trapblock", &["block"]),
    ] {
        assert_channel_matches(name, opts, args);
    }
    let (o, chan) = run_fixture_with_channel(&fixture_with("insns", opts), &[]);
    assert_eq!(chan, None, "{}", dump(&o));
}

#[test]
fn fixtures_run_nopie() {
    check_fixtures_run(FixtureOpts::NO_PIE);
}

#[test]
fn fixtures_run_pie() {
    check_fixtures_run(FixtureOpts::PIE);
}

#[test]
fn fixtures_run_o2() {
    // Optimised builds must keep the noinline probe sites.
    let opts = FixtureOpts { pie: false, opt: "-O2" };
    check_fixtures_run(opts);
    let l = fixture_with("loop", opts);
    for s in ["probe_site", "probe_other", "main", "g_counter", "g_flag"] {
        assert!(try_symbol_addr(&l, s).is_some(), "{s} missing in -O2 loop");
    }
}

#[test]
fn every_fixture_is_listed_and_builds() {
    for name in FIXTURES {
        for opts in [FixtureOpts::NO_PIE, FixtureOpts::PIE] {
            let p = fixture_with(name, opts);
            assert!(p.is_file(), "{p:?}");
            assert!(p.starts_with(fixture_out_dir(opts)));
        }
    }
    assert_eq!(fixture("loop"), fixture_with("loop", FixtureOpts::NO_PIE));
    assert_eq!(FixtureOpts::NO_PIE.variant(), "nopie-O0");
    assert_eq!(FixtureOpts { pie: true, opt: "s" }.variant(), "pie-Os");
}

#[test]
fn fixture_symbols() {
    let l = fixture("loop");
    for s in ["probe_site", "probe_other", "main", "g_counter", "g_flag"] {
        assert!(try_symbol_addr(&l, s).is_some(), "{s} missing in loop");
    }
    let t = fixture("threads");
    for s in ["thread_work", "at_barrier"] {
        assert!(try_symbol_addr(&t, s).is_some(), "{s} missing in threads");
    }
    assert!(try_symbol_addr(&fixture("sighandle"), "after_signal").is_some());
    assert!(try_symbol_addr(&fixture("sigdie"), "crash_here").is_some());
    assert!(try_symbol_addr(&fixture("spin"), "spin_tick").is_some());
    let f = fixture("forker");
    assert!(try_symbol_addr(&f, "child_work").is_some());
    assert!(try_symbol_addr(&f, "parent_work").is_some());
    let i = fixture("insns");
    for s in [
        "insn_rip_load",
        "insn_rip_store",
        "insn_rip_lea",
        "insn_push",
        "insn_pop",
        "insn_call_rel32",
        "insn_call_ind_rip",
        "insn_jmp_rel8",
        "insn_jmp_rel32",
        "insn_jcc_taken",
        "insn_jcc_not_taken",
        "insn_jcc32_taken",
        "insn_ret",
        "g_data",
    ] {
        assert!(try_symbol_addr(&i, s).is_some(), "{s} missing in insns");
    }
    assert!(try_symbol_addr(&l, "no_such_symbol_xyz").is_none());
}

#[test]
fn symbol_addr_agrees_with_gdb() {
    let l = fixture("loop");
    let addr = symbol_addr(&l, "probe_site");
    assert!(addr >= 0x400000, "non-PIE address expected, got {addr:#x}");
    let mut cmd = Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-ex", "info address probe_site"]).arg(&l);
    let o = run_with_timeout(cmd, T);
    let out = String::from_utf8_lossy(&o.stdout);
    // Symbol "probe_site" is a function at address 0x401136.
    let want = format!("is a function at address {addr:#x}.");
    assert!(out.contains(&want), "gdb says {out:?}, nm says {addr:#x}");
}

#[test]
fn spin_is_killed_by_guard() {
    let mut cmd = Command::new(fixture("spin"));
    cmd.stdout(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut lines = LineReader::new(g.stdout.take().unwrap());
    let ready = lines.wait_for("MARK:ready pid=", T).unwrap();
    let pid: u32 = ready.rsplit('=').next().unwrap().parse().unwrap();
    assert_eq!(pid, g.pid());
    assert!(pid_alive(pid));
    assert!(g.wait_timeout(Duration::from_millis(50)).is_none());
    drop(g);
    // The guard reaped it, so the pid is gone entirely (not even a zombie).
    assert_eq!(proc_state(pid), None);
    // SAFETY: kill with signal 0 only checks for existence.
    assert_eq!(unsafe { libc::kill(pid as i32, 0) }, -1);
    assert!(lines.read_to_eof(T).is_empty());
}

#[test]
fn spin_exits_on_sigterm() {
    let mut cmd = Command::new(fixture("spin"));
    cmd.stdout(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut lines = LineReader::new(g.stdout.take().unwrap());
    lines.wait_for("MARK:ready", T).unwrap();
    g.signal(libc::SIGTERM);
    let st = g.expect_exit(T);
    assert!(st.success(), "{st:?}");
    lines.wait_for("MARK:term", T).unwrap();
}

#[test]
fn guard_kills_descendants_in_other_sessions() {
    // The spin below is moved to its own session and process group, like the
    // server gdb starts for `target remote | ...`; the guard must find it.
    let spin = fixture("spin");
    let mut cmd = Command::new("setsid");
    cmd.arg("-f").arg(&spin).stdout(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut lines = LineReader::new(g.stdout.take().unwrap());
    let ready = lines.wait_for("MARK:ready pid=", T).unwrap();
    let pid: u32 = ready.rsplit('=').next().unwrap().parse().unwrap();
    // `setsid -f` forks and exits at once: spin is an orphan now.
    assert!(g.wait_timeout(T).is_some());
    assert!(pid_alive(pid));
    assert_eq!(g.leftover_processes(), vec![pid]);
    drop(g);
    assert!(wait_until(T, || !pid_alive(pid)), "spin {pid} survived the guard");
}

#[test]
fn run_with_timeout_kills_and_reports() {
    let spin = fixture("spin");
    let r = std::panic::catch_unwind(|| {
        let cmd = Command::new(&spin);
        run_with_timeout(cmd, Duration::from_millis(300))
    });
    let msg = match r {
        Ok(o) => panic!("spin finished?! {}", dump(&o)),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default(),
    };
    assert!(msg.contains("timeout after"), "{msg}");
    assert!(msg.contains("spin"), "{msg}");
    // Output printed before the timeout is in the report (usually; the
    // 300 ms budget includes exec + dynamic linking, so only check that the
    // report has the stdout section).
    assert!(msg.contains("--- stdout so far ---"), "{msg}");
}

#[test]
fn try_run_with_timeout_reports_output() {
    let mut cmd = Command::new("sh");
    cmd.args(["-c", "echo out; echo err >&2; exit 4"]);
    let o = try_run_with_timeout(cmd, T).unwrap();
    assert_eq!(o.status.code(), Some(4));
    assert_eq!(o.stdout, b"out\n");
    assert_eq!(o.stderr, b"err\n");
}

#[test]
fn shell_quoting() {
    assert_eq!(shell_quote("/a/b-c_d.e".as_ref()), "/a/b-c_d.e");
    assert_eq!(shell_quote("a b".as_ref()), "'a b'");
    assert_eq!(shell_quote("it's".as_ref()), r"'it'\''s'");
    assert_eq!(shell_quote("".as_ref()), "''");
    let mut cmd = Command::new("sh");
    cmd.arg("-c").arg(format!("printf '%s|' {}", shell_join(&["a b", "it's", "$HOME", "x"])));
    let o = run_with_timeout(cmd, T);
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a b|it's|$HOME|x|");
}

#[test]
fn normalise_strips_server_differences() {
    let raw = "\
Remote debugging using | /x/xol serve --stdio -- /p
Process /p created; pid = 4736
Listening on port 2345
stdin/stdout redirected
warning: Unable to find libthread_db matching inferior's thread library, thread debugging will not be available.
Reading /lib64/ld-linux-x86-64.so.2 from remote target...
0x00007ffff7fe4b70 in _start () from target:/lib64/ld-linux-x86-64.so.2
Breakpoint 1 at 0x401136: file loop.c, line 14.   
[New Thread 4736.4740]
[Switching to Thread 4736.4737]
* 1    Thread 4737 (LWP 4737) \"worker-0\" thread_work (id=0) at threads.c:17
#1  0x0000000000401235 in main (argc=2, argv=0x7fffffffe7e8) at loop.c:32
$1 = 10
Detaching from process 4736
[Inferior 1 (process 4736) exited with code 03]
";
    let want = "\
0xADDR in _start () from /lib64/ld-linux-x86-64.so.2
Breakpoint 1 at 0xADDR: file loop.c, line 14.
[New Thread PID.TID]
[Switching to Thread PID.TID]
* 1    Thread TID (LWP TID) \"worker-0\" thread_work (id=0) at threads.c:17
#1  0xADDR in main (argc=2, argv=0xADDR) at loop.c:32
$1 = 10
[Inferior 1 (process PID) exited with code 03]
";
    assert_eq!(normalise_gdb_output(raw), want);
}

/// GNU gdbserver 13 on Intel AMX hosts prints this on every register store.
const AMX_WARNING: &str = "Warning: ptrace(regsets_store_inferior_registers): Bad address";

#[test]
fn tool_warnings_interleaved_with_marks_are_stripped() {
    // A stdio server's stderr as it can look when its warnings and the program's writes
    // interleave: at the start of a line with a mark appended, after a mark, twice in a row,
    // alone, with another errno text, and between gdb's own lines.
    let raw = format!(
        "Process /p created; pid = 77\n\
         {AMX_WARNING}MARK:start\n\
         MARK:pid-same=1{AMX_WARNING}\n\
         {AMX_WARNING}{AMX_WARNING}MARK:write\n\
         {AMX_WARNING}\n\
         Warning: ptrace(regsets_fetch_inferior_registers): Input/output error\n\
         MARK:done\n\
         Catchpoint 1 (call to syscall getpid), 0x00007ffff7e9a2bd in syscall () from /lib/libc.so.6\n\
         {AMX_WARNING}"
    );
    assert_eq!(marks_in_stream(&raw), ["start", "pid-same=1", "write", "done"]);
    // Without the filter the marks that shared a line with a warning are lost: the input
    // really is corrupted, so the assertion above tests something.
    assert_eq!(marks_in_channel(&raw), [format!("pid-same=1{AMX_WARNING}"), "done".to_string()]);
    let stripped = strip_tool_warnings(&raw);
    assert!(!stripped.contains("Warning: ptrace("), "{stripped}");
    assert!(stripped.contains("Catchpoint 1 (call to syscall getpid)"), "{stripped}");
    assert_eq!(stripped.lines().count(), 6, "only warning-only lines are dropped:\n{stripped}");
    // The normaliser used by every comparison drops them too, so two outputs that differ
    // only in a reference tool's warnings compare equal.
    let clean = "MARK:start\n[Inferior 1 (process 77) exited normally]\n";
    let noisy = format!("{AMX_WARNING}\nMARK:start{AMX_WARNING}\n[Inferior 1 (process 77) exited normally]\n");
    assert_eq!(normalise_gdb_output(&noisy), normalise_gdb_output(clean));
    // Text without warnings is left alone, byte for byte.
    let plain = "a Warning: that is not ptrace\nMARK:x\n\nlast";
    assert_eq!(strip_tool_warnings(plain), plain);
}

/// The live path: the rig reads the program's marks from its own channel, so a warning the
/// reference server's stderr carries on the program's line cannot hide them. The warnings are
/// written into the very stream a stdio server's stderr ends up in (gdb's stderr) by gdb's
/// `shell`, deterministically before the program's writes: this host has no AMX, so gdbserver
/// itself would not print them.
fn interleaved_warnings_session(server: Server) {
    let l = fixture("loop");
    let partial = format!("shell printf '%s' '{AMX_WARNING}' >&2");
    let full = format!("shell printf '%s\\n' '{AMX_WARNING}' >&2");
    let script = [
        partial.as_str(),
        // The program's first write lands right after the unterminated warning.
        "break probe_site",
        "continue",
        full.as_str(),
        partial.as_str(),
        "delete",
        "continue",
    ];
    let out = gdb_batch(server, &l, &["3"], &script);
    out.assert_stdout_contains("Breakpoint 1, probe_site (x=0)");
    out.assert_stdout_contains("exited normally]");
    let want = ["start", "sum=312", "counter=3", "done"];
    // The stream really is corrupted: the first mark shares the warning's line.
    assert!(out.stderr.contains(&format!("{AMX_WARNING}MARK:start")), "{out}");
    assert!(!marks_in_channel(&out.all_output()).contains(&"start".to_string()), "{out}");
    // The program's own channel has every mark, in order ...
    assert!(out.program_output.is_some(), "{out}");
    assert_eq!(out.marks(), want, "{out}");
    // ... and the stream filter recovers them from the corrupted stream as well.
    let streamed = marks_in_stream(&out.all_output());
    assert_eq!(streamed, want, "{out}");
    assert!(!normalise_gdb_output(&out.stderr).contains("Warning: ptrace("), "{out}");
}

#[test]
fn reference_run_marks_survive_interleaved_gdbserver_warnings() {
    if !gdbserver_available() {
        return; // (reported as SKIP by gdbserver_available)
    }
    interleaved_warnings_session(Server::GdbserverStdio);
}

#[test]
fn xol_run_marks_survive_interleaved_tool_warnings() {
    interleaved_warnings_session(Server::XolStdio);
}

#[test]
fn missing_gdbserver_is_reported_or_fails() {
    // A reference part that cannot run is never silent: a SKIP line naming the test, or a
    // failure when REQUIRE_GDBSERVER_ENV is set (scripts/test.sh).
    let skip = gdbserver_missing_verdict("gdb_e2e::exit_code_reported", "gdbserver", false).unwrap();
    assert!(skip.starts_with("SKIP gdb_e2e::exit_code_reported: GNU gdbserver (gdbserver) is not installed"), "{skip}");
    let fail = gdbserver_missing_verdict("t", "/x/gdbserver", true).unwrap_err();
    assert!(fail.contains(REQUIRE_GDBSERVER_ENV) && fail.contains("/x/gdbserver"), "{fail}");
    // And the real lookup finds a gdbserver wherever scripts/test.sh ran (it installs it).
    if std::env::var_os(REQUIRE_GDBSERVER_ENV).is_some() {
        assert!(gdbserver_available());
    }
}

#[test]
fn line_diff_shows_changes() {
    let d = line_diff("a\nb\nc\n", "a\nx\nc\n", "L", "R");
    assert_eq!(d, "--- L\n+++ R\n a\n-b\n+x\n c\n");
}

#[test]
fn listening_port_parse() {
    assert_eq!(parse_listening_port("Listening on port 40123"), Some(40123));
    assert_eq!(parse_listening_port("xol: Listening on port 7 (stdio)"), Some(7));
    assert_eq!(parse_listening_port("Listening on port "), None);
}

#[test]
fn packet_helpers() {
    assert_eq!(checksum(b"qSupported"), 0x37);
    assert_eq!(frame(b"OK"), b"$OK#9a");
    assert_eq!(decode_body(b"0* ").unwrap(), b"0000");
    assert_eq!(decode_body(b"a}]b}\x03").unwrap(), b"a}b#");
    assert_eq!(decode_body(&escape_binary(b"#$}*x")).unwrap(), b"#$}*x");
    assert!(decode_body(b"*a").is_err());
    assert!(decode_body(b"ab}").is_err());
    assert_eq!(hex_encode(&[0, 0xab, 0x10]), "00ab10");
    assert_eq!(hex_decode("00AB10"), vec![0, 0xab, 0x10]);
    assert!(try_hex_decode("abc").is_err());
    assert_eq!(hex_str("ls"), "6c73");
    assert_eq!(u64_to_le_hex(0x401136), "3611400000000000");
    assert_eq!(le_hex_to_u64("3611400000000000"), 0x401136);
    assert_eq!(le_hex_to_u64("3611"), 0x1136);
    assert_eq!(parse_hex_u64("7fff0000"), 0x7fff0000);
    let s = StopReply::parse("T05thread:p1a2b.1a2b;06:0000000000000000;swbreak:;").unwrap();
    assert_eq!((s.kind, s.code), ('T', 5));
    assert_eq!(s.get("thread"), Some("p1a2b.1a2b"));
    assert_eq!(s.get("swbreak"), Some(""));
    let w = StopReply::parse("W03;process:1a2b").unwrap();
    assert_eq!((w.kind, w.code, w.get("process")), ('W', 3, Some("1a2b")));
    let w = StopReply::parse("W0;process:1a2b").unwrap();
    assert_eq!((w.kind, w.code, w.get("process")), ('W', 0, Some("1a2b")));
    assert_eq!(StopReply::parse("X0b").unwrap().code, 11);
    assert_eq!(StopReply::parse("OK"), None);
    assert_eq!(StopReply::parse("W"), None);
}

#[test]
fn xol_bin_paths_or_clear_panic() {
    // Either cargo provides the binary or the accessor panics with a message
    // naming the missing target: never a silent wrong path.
    for (f, name) in [(xol_bin as fn() -> std::path::PathBuf, "xol"), (xol_gdbserver_bin, "xol-gdbserver")] {
        match std::panic::catch_unwind(f) {
            Ok(p) => assert!(p.ends_with(name), "{p:?}"),
            Err(e) => {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                assert!(msg.contains(name), "{msg}");
            }
        }
    }
}

#[test]
fn gdb_batch_against_gdbserver() {
    if !gdbserver_available() {
        return; // (reported as SKIP by gdbserver_available)
    }
    let l = fixture("loop");
    let out = gdb_batch(
        Server::GdbserverStdio,
        &l,
        &["3"],
        &["break probe_site", "continue", "bt", "continue", "continue", "continue", "continue"],
    );
    out.assert_stdout_contains("Breakpoint 1, probe_site (x=0)");
    out.assert_stdout_contains("Breakpoint 1, probe_site (x=2)");
    out.assert_stdout_contains("in main (");
    out.assert_stdout_contains("exited normally]");
    assert!(out.has_mark("sum=312"), "{out}");
    assert!(out.has_mark("done"), "{out}");
    let norm = normalise_gdb_output(&out.stdout);
    assert!(norm.contains("[Inferior 1 (process PID) exited normally]"), "{norm}");
    assert!(!norm.contains("Reading "), "{norm}");
}

#[test]
fn gdb_batch_exit_code_against_gdbserver() {
    if !gdbserver_available() {
        return; // (reported as SKIP by gdbserver_available)
    }
    let out = gdb_batch(Server::GdbserverStdio, &fixture_with("loop", FixtureOpts::PIE), &["2", "5"], &["continue"]);
    out.assert_stdout_contains("exited with code 05]");
    assert!(out.has_mark("sum=205"), "{out}");
}

#[test]
fn rsp_client_against_gdbserver() {
    if !gdbserver_available() {
        return; // (reported as SKIP by gdbserver_available)
    }
    let l = fixture("loop");
    let gs = gdbserver_path().unwrap();
    let argv: Vec<OsString> = vec![gs.into(), "-".into(), l.clone().into(), "4".into()];
    let mut c = RspClient::spawn(&argv);
    let sup = c.q_supported();
    assert!(sup.contains("PacketSize="), "{sup}");
    assert!(sup.contains("QStartNoAckMode+"), "{sup}");
    c.no_ack_mode();
    assert!(c.is_no_ack());
    let stop = c.request("?");
    let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("not a stop reply: {stop}"));
    assert_eq!((sr.kind, sr.code), ('T', 5), "{stop}");

    // Memory read of a global of the non-PIE binary.
    let g = symbol_addr(&l, "g_counter");
    assert_eq!(c.read_mem(g, 4), vec![0, 0, 0, 0]);
    c.write_mem(g, &[1, 0, 0, 0]);
    assert_eq!(c.read_mem(g, 4), vec![1, 0, 0, 0]);

    // Breakpoint at probe_site, continue, check pc.
    let ps = symbol_addr(&l, "probe_site");
    assert_eq!(c.request(&format!("Z0,{ps:x},1")), "OK");
    let stop = c.request("vCont;c");
    let sr = StopReply::parse(&stop).unwrap();
    assert_eq!((sr.kind, sr.code), ('T', 5), "{stop}");
    assert_eq!(le_hex_to_u64(sr.get("10").unwrap()), ps, "stop {stop}");
    // gdbserver does not implement `p` on x86-64 (empty reply); use `g`.
    let g_reply = c.request("g");
    assert_eq!(g_reg64(&g_reply, AMD64_RIP), ps, "stop {stop}");
    assert_eq!(g_reg64(&g_reply, AMD64_RSP), le_hex_to_u64(sr.get("07").unwrap()));
    assert_eq!(c.request(&format!("z0,{ps:x},1")), "OK");
    let stop = c.request("vCont;c");
    let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("{stop:?}"));
    assert_eq!((sr.kind, sr.code), ('W', 0), "{stop}");
    // The program's marks come from its own channel (gdbserver sends its stdout to
    // gdbserver's stderr, shared with gdbserver's own messages); g_counter started at 1.
    assert!(
        wait_until(T, || c.program_marks().iter().any(|m| m == "done")),
        "{:?}\n{}",
        c.program_marks(),
        c.server_stderr()
    );
    assert!(c.program_marks().iter().any(|m| m == "counter=5"), "{:?}", c.program_marks());
    c.close_stdin();
    assert!(c.wait_exit(T).is_some());
    assert!(!c.is_alive());
}

#[test]
fn rsp_client_ack_mode_and_raw() {
    if !gdbserver_available() {
        return; // (reported as SKIP by gdbserver_available)
    }
    let l = fixture("loop");
    let mut c = RspClient::gdbserver(&l, &[]);
    // Ack mode: send() consumed gdbserver's `+`, recv() acked its reply.
    let r = c.request("qAttached");
    assert!(r == "0" || r == "1", "{r}");
    // A corrupted packet is NAKed.
    c.send_raw(b"$qAttached#00").unwrap();
    assert_eq!(c.read_byte().unwrap(), b'-');
    // The connection is still in sync afterwards.
    let r = c.request("qC");
    assert!(r.starts_with("QC"), "{r}");
}
