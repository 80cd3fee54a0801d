//! Counting probes (`monitor count`) resumed by displaced stepping, through real gdb.
//!
//! The threads fixture calls one probed function from 4 threads at once. With displaced
//! stepping every call is counted, whatever the plan of the function's first instruction
//! (emulated, boosted, out-of-line), and no thread is stopped for another's step (`monitor
//! stats` counts world stops). The classic in-line step-over, run on the same program with
//! `monitor set step-mode in-line`, lifts the breakpoint while a thread steps, and the other
//! threads can run past it uncounted: that is what displaced stepping fixes. How many calls
//! it misses depends on scheduling, so that number is printed, not asserted; what is asserted
//! holds on every run: it never over-counts, and with one thread (nobody to run past the lifted
//! breakpoint) it counts every call.

mod support;

use std::time::Duration;
use support::*;

const CALLS: u64 = 20_000;
const THREADS: u64 = 4;

struct Run {
    out: GdbOutput,
    plan: String,
    hits: u64,
    world_stops: u64,
    in_line: u64,
}

fn field<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let i = line.find(key)? + key.len();
    line[i..].split_whitespace().next()
}

/// Run the fixture with a counting probe on `func` (fixture argument `which`) in `mode`,
/// stop after the threads joined, read `monitor probes` and `monitor stats`, then finish.
fn run(opts: FixtureOpts, which: u32, func: &str, mode: &str) -> Run {
    run_threads(opts, which, func, mode, THREADS)
}

/// [`run`] with `threads` threads.
fn run_threads(opts: FixtureOpts, which: u32, func: &str, mode: &str, threads: u64) -> Run {
    let prog = fixture_with("countthreads", opts);
    let calls = CALLS.to_string();
    let threads = threads.to_string();
    let which = which.to_string();
    let count = format!("monitor count {func}");
    let step_mode = format!("monitor set step-mode {mode}");
    let script = [
        count.as_str(),
        step_mode.as_str(),
        "break after_threads",
        "continue",
        "echo ==PROBES==\\n",
        "monitor probes",
        "echo ==STATS==\\n",
        "monitor stats",
        "echo ==END==\\n",
        "continue",
    ];
    let gopts = GdbOpts { timeout: Duration::from_secs(120), ..GdbOpts::default() };
    let out = gdb_batch_opts(Server::XolStdio, &prog, &[&calls, &threads, &which], &script, &gopts);
    let all = out.all_output();
    let probe = probe_at(&all, func).unwrap_or_else(|| panic!("no probe line for {func}\n{out}"));
    let (plan, hits) = (probe.plan, probe.total);
    let stat = |key: &str| -> u64 {
        all.lines().find_map(|l| field(l, key).and_then(|v| v.trim_end_matches(',').parse().ok())).unwrap_or(0)
    };
    let world_stops = stat("world stops: ");
    let in_line = stat("in-line step-overs: ");
    assert!(out.has_mark("done"), "the program must finish with the right checksum\n{out}");
    assert!(all.contains("exited normally"), "{out}");
    Run { out, plan, hits, world_stops, in_line }
}

fn check_exact(opts: FixtureOpts, which: u32, func: &str, want_plan: &str) {
    let r = run(opts, which, func, "displaced");
    assert_eq!(r.plan, want_plan, "plan kind of {func}\n{}", r.out);
    assert_eq!(r.hits, CALLS * THREADS, "every call of {func} from {THREADS} threads is counted\n{}", r.out);
    assert_eq!(r.in_line, 0, "no in-line step-over\n{}", r.out);
    // gdb's own stops (the entry, after_threads) stop the world; the 80,000 probe hits do not.
    assert!(r.world_stops <= 3, "probe hits must not stop other threads: {} world stops\n{}", r.world_stops, r.out);
}

#[test]
fn threads_emulated_probe_counts_every_call() {
    check_exact(FixtureOpts::PIE, 0, "counted", "emulate");
}

#[test]
fn threads_emulated_lea_probe_counts_every_call() {
    check_exact(FixtureOpts { pie: true, opt: "-O2" }, 0, "counted", "emulate");
}

#[test]
fn threads_boosted_probe_counts_every_call() {
    check_exact(FixtureOpts::PIE, 1, "counted_boost", "boosted");
}

#[test]
fn threads_out_of_line_probe_counts_every_call() {
    check_exact(FixtureOpts::PIE, 2, "counted_rip", "out-of-line");
}

/// The in-line step-over with several threads: whether another thread runs past the lifted
/// breakpoint while one steps is up to the scheduler, so the misses are reported, not asserted
/// (a test must not depend on a race happening). What every run satisfies: step-overs were
/// in-line, no call is counted twice, and the program's checksum is right.
#[test]
fn threads_in_line_step_over_never_over_counts() {
    let r = run(FixtureOpts::PIE, 0, "counted", "in-line");
    assert!(r.in_line > 0, "{}", r.out);
    assert!(r.hits <= CALLS * THREADS, "counted {} of {} calls\n{}", r.hits, CALLS * THREADS, r.out);
    eprintln!(
        "in-line step-over counted {} of {} calls ({} missed: other threads ran past the lifted breakpoint)",
        r.hits,
        CALLS * THREADS,
        CALLS * THREADS - r.hits
    );
}

/// With one thread there is nobody to run past the breakpoint the in-line step-over lifts:
/// every call is counted, deterministically.
#[test]
fn single_thread_in_line_step_over_counts_every_call() {
    let r = run_threads(FixtureOpts::PIE, 0, "counted", "in-line", 1);
    assert!(r.in_line > 0, "{}", r.out);
    assert_eq!(r.hits, CALLS, "one thread: every call counted\n{}", r.out);
}

#[test]
fn uncount_removes_the_probe_and_restores_the_byte() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let script = [
        "monitor count counted",
        "monitor probes",
        "x/1bx counted",
        "monitor uncount counted",
        "echo ==AFTER==\\n",
        "monitor probes",
        "monitor breakpoints",
        "break after_threads",
        "continue",
        "monitor probes",
        "continue",
    ];
    let out = gdb_batch(Server::XolStdio, &prog, &["100", "2", "0"], &script);
    let all = out.all_output();
    assert!(all.contains("removed 1 probe(s) at counted"), "{out}");
    let after = &all[all.find("==AFTER==").unwrap_or(0)..];
    assert!(after.contains("no probes"), "{out}");
    assert!(!after.contains("owners: probe"), "the insertion is gone\n{out}");
    // Memory reads are masked either way; the program runs correctly without the probe.
    assert!(out.has_mark("done"), "{out}");
}

#[test]
fn count_rejects_bad_locations_clearly() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let script = ["monitor count no_such_function", "monitor count 0xzz", "monitor uncount nothing", "continue"];
    let out = gdb_batch(Server::XolStdio, &prog, &["10", "1", "0"], &script);
    let all = out.all_output();
    assert!(all.contains("cannot count no_such_function: ") && all.contains("no symbol"), "{out}");
    assert!(all.contains("cannot count 0xzz"), "{out}");
    assert!(all.contains("no probe at nothing"), "{out}");
    assert!(out.has_mark("done"), "{out}");
}

// ---------------------------------------------------------------------------------------
// Where a probe may go (`xol count` and `monitor count`): code, at an instruction start, in
// a regular file; addresses as gdb shows them (randomisation off); libraries not loaded yet.

const T: Duration = Duration::from_secs(60);

/// `xol count ARGS -- PROG PROG_ARGS`, with a timeout.
fn xol_count(args: &[&str], prog: &std::path::Path, prog_args: &[&str]) -> std::process::Output {
    let mut cmd = std::process::Command::new(xol_bin());
    // The trap plan: what these tests are about (tests/jump_pads.rs has the jump plan).
    cmd.arg("count").arg("--trap").args(args).arg("--").arg(prog).args(prog_args);
    run_with_timeout(cmd, T)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The instructions of `func` in `prog` as objdump decodes them: (address, mnemonic).
fn objdump_insns(prog: &std::path::Path, func: &str) -> Vec<(u64, String)> {
    let mut cmd = std::process::Command::new("objdump");
    cmd.args(["-d", "--no-show-raw-insn", "-M", "intel"]).arg(prog);
    let o = run_with_timeout(cmd, T);
    assert!(o.status.success(), "objdump: {}", text(&o.stderr));
    let dis = text(&o.stdout);
    let head = format!("<{func}>:");
    let body = &dis[dis.find(&head).unwrap_or_else(|| panic!("no {func} in objdump"))..];
    body.lines()
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| {
            let (a, rest) = l.trim().split_once(':')?;
            Some((u64::from_str_radix(a, 16).ok()?, rest.split_whitespace().next()?.to_string()))
        })
        .collect()
}

/// The first `call` of `func`: (its address, the next instruction's address).
fn first_call(prog: &std::path::Path, func: &str) -> (u64, u64) {
    let insns = objdump_insns(prog, func);
    let i = insns.iter().position(|(_, m)| m == "call").unwrap_or_else(|| panic!("no call in {func}: {insns:?}"));
    (insns[i].0, insns[i + 1].0)
}

/// The file offset of the link-time address `addr` (through `.text`'s VMA and file offset).
fn text_offset(prog: &std::path::Path, addr: u64) -> u64 {
    let mut cmd = std::process::Command::new("objdump");
    cmd.arg("-h").arg(prog);
    let o = run_with_timeout(cmd, T);
    let h = text(&o.stdout);
    let l = h.lines().find(|l| l.split_whitespace().nth(1) == Some(".text")).expect(".text");
    let f: Vec<&str> = l.split_whitespace().collect();
    let (vma, off) = (u64::from_str_radix(f[3], 16).unwrap(), u64::from_str_radix(f[5], 16).unwrap());
    addr - vma + off
}

/// The first `call` of main in the PIE countthreads at run time (as gdb shows addresses,
/// randomisation off): (its address, the next instruction's), and its link-time address.
fn main_call(prog: &std::path::Path) -> (u64, u64, u64) {
    let (call, next) = first_call(prog, "main");
    let main_link = objdump_insns(prog, "main")[0].0;
    let bias = gdb_address(prog, "main") - main_link;
    (call + bias, next + bias, call)
}

#[test]
fn xol_count_refuses_a_probe_inside_an_instruction() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let (call, next, call_link) = main_call(&prog);
    assert!(next - call >= 2, "a call is longer than one byte");
    let inside = call + 1;
    // Address form.
    let o = xol_count(&[&format!("{inside:#x}")], &prog, &["10", "1", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "refused\n{err}");
    assert!(
        err.contains(&format!(
            "{inside:#x} is inside the instruction at {call:#x} (call, {} bytes in main+",
            next - call
        )),
        "the reason names the instruction\n{err}"
    );
    assert!(!text(&o.stdout).contains("MARK:start"), "the program did not run\n{}", text(&o.stdout));
    // File form: FILE:0xOFFSET.
    let off = text_offset(&prog, call_link + 1);
    let loc = format!("{}:{off:#x}", prog.display());
    let o = xol_count(&[&loc], &prog, &["10", "1", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "refused\n{err}");
    assert!(err.contains("is inside the instruction at") && err.contains("(call, "), "{err}");
    assert!(!text(&o.stdout).contains("MARK:start"), "{}", text(&o.stdout));
    // The instruction's own start is fine.
    let o = xol_count(&[&format!("{call:#x}")], &prog, &["10", "1", "0"]);
    assert!(o.status.success() && text(&o.stdout).contains("MARK:done"), "{}", text(&o.stderr));
    assert!(text(&o.stderr).contains(&format!("{call:#x}: 1 hits")), "main calls once\n{}", text(&o.stderr));
}

#[test]
fn xol_count_refuses_a_data_symbol() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let o = xol_count(&["g_one"], &prog, &["10", "1", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("g_one is a data object in a non-executable section"), "{err}");
    assert!(!text(&o.stdout).contains("MARK:start"), "{}", text(&o.stdout));
    // Through gdb: refused, and the program runs to its end untouched.
    let out = gdb_batch(Server::XolStdio, &prog, &["10", "1", "0"], &["monitor count g_one", "continue"]);
    let all = out.all_output();
    assert!(all.contains("cannot count g_one: g_one is a data object"), "{out}");
    assert!(out.has_mark("done"), "{out}");
}

#[test]
fn monitor_count_refuses_a_probe_inside_a_call() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let (call, _, _) = main_call(&prog);
    let cmd = format!("monitor count {:#x}", call + 1);
    let out = gdb_batch(Server::XolStdio, &prog, &["10", "1", "0"], &[&cmd, "monitor probes", "continue"]);
    let all = out.all_output();
    assert!(all.contains(&format!("is inside the instruction at {call:#x} (call")), "{out}");
    assert!(all.contains("no probes"), "{out}");
    assert!(out.has_mark("done"), "{out}");
}

/// The address of `sym` as gdb shows it when it runs the program itself (randomisation off).
fn gdb_address(prog: &std::path::Path, sym: &str) -> u64 {
    let mut cmd = std::process::Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-ex", "starti", "-ex", &format!("print/x (long)&{sym}"), "-ex", "kill"]).arg(prog);
    let o = run_with_timeout(cmd, T);
    let s = text(&o.stdout);
    let v = s.lines().find_map(|l| l.split_once(" = 0x").map(|(_, v)| v.trim().to_string()));
    u64::from_str_radix(&v.unwrap_or_else(|| panic!("no address from gdb\n{s}{}", text(&o.stderr))), 16).unwrap()
}

#[test]
fn xol_count_takes_a_pie_address_as_gdb_shows_it() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let addr = gdb_address(&prog, "counted");
    let loc = format!("{addr:#x}");
    let o = xol_count(&[&loc], &prog, &["100", "2", "0"]);
    let err = text(&o.stderr);
    assert!(o.status.success() && text(&o.stdout).contains("MARK:done"), "{err}");
    let line = err.lines().find(|l| l.starts_with(&format!("{loc}: "))).unwrap_or_else(|| panic!("{err}"));
    assert!(line.starts_with(&format!("{loc}: 200 hits (")), "every call counted: {line}");
    // With randomisation kept on, the address is (almost surely) elsewhere: said so.
    let randomised = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").is_ok_and(|s| s.trim() != "0");
    if randomised {
        let o = xol_count(&["--aslr", &loc], &prog, &["100", "2", "0"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains(&format!("{loc} is not mapped in process ")), "{err}");
        assert!(err.contains("address randomisation is on for it"), "{err}");
    }
    // Randomisation off (the default): an unmapped address is not blamed on it.
    let o = xol_count(&["0x1234"], &prog, &["1", "1", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("0x1234 is not mapped in process ") && !err.contains("randomisation"), "{err}");
}

#[test]
fn xol_count_arms_a_library_by_its_short_name() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let threads = 3;
    let o = xol_count(&["libc.so.6:pthread_create", "counted"], &prog, &["50", &threads.to_string(), "0"]);
    let err = text(&o.stderr);
    assert!(o.status.success() && text(&o.stdout).contains("MARK:done"), "{err}");
    assert!(err.contains(&format!("libc.so.6:pthread_create: {threads} hits (")), "{err}");
    assert!(err.contains(&format!("counted: {} hits (", 50 * threads)), "{err}");
    // A library that is never loaded: the probe says why it saw nothing.
    let o = xol_count(&["libnothere.so.1:f"], &prog, &["5", "1", "0"]);
    let err = text(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains("libnothere.so.1:f: 0 hits (none; never armed: pending until libnothere.so.1 is mapped)"),
        "{err}"
    );
}

/// A library the dynamic linker would find (libc) but a symbol it lacks: refused before the
/// program runs (exit 2, nothing of the program's output), in gdb's `monitor count` too.
#[test]
fn xol_count_refuses_a_symbol_the_library_lacks_before_running() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let o = xol_count(&["libc.so.6:no_such_symbol_xol"], &prog, &["5", "1", "0"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(!text(&o.stdout).contains("MARK:start"), "the program must not run\n{}", text(&o.stdout));
    assert!(
        err.contains("cannot count libc.so.6:no_such_symbol_xol: ")
            && err.contains("(where libc.so.6 would be loaded from): no symbol \"no_such_symbol_xol\""),
        "{err}"
    );
}

#[test]
fn monitor_count_of_a_library_at_the_first_stop_is_pending_then_armed() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let libc = libc_path();
    let by_path = format!("monitor count {}:pthread_create", libc.display());
    let script = [
        "echo ==COUNT==\\n",
        "monitor count libc.so.6:pthread_create",
        &by_path,
        "echo ==P1==\\n",
        "monitor probes",
        "break after_threads",
        "continue",
        "echo ==P2==\\n",
        "monitor probes",
        "echo ==END==\\n",
        "continue",
    ];
    let gopts = GdbOpts { pre_target: vec!["set sysroot /".into()], ..GdbOpts::default() };
    let out = gdb_batch_opts(Server::XolStdio, &prog, &["20", "4", "0"], &script, &gopts);
    let all = out.all_output();
    assert!(out.has_mark("done"), "{out}");
    assert!(
        all.contains("probe 1 (libc.so.6:pthread_create): pending until libc.so.6 is mapped, per-file"),
        "the first stop is before the dynamic linker ran: pending\n{out}"
    );
    assert!(
        all.contains(
            "1 count libc.so.6:pthread_create at - [pending until libc.so.6 is mapped] plan - hits 0 (none) per-file armed in 0"
        ),
        "{out}"
    );
    let armed = all
        .lines()
        .find(|l| l.starts_with("1 count libc.so.6:pthread_create at 0x"))
        .unwrap_or_else(|| panic!("armed once libc is mapped\n{out}"));
    assert!(armed.contains(" hits 4 (") && armed.ends_with(" per-file armed in 1"), "{armed}\n{out}");
    // A full path: per-file at once, pending until that file is mapped.
    let pending =
        format!("probe 2 ({}:pthread_create): pending until {} is mapped, per-file", libc.display(), libc.display());
    assert!(all.contains(&pending), "{pending}\n{out}");
    assert!(all.lines().any(|l| l.starts_with("2 count ") && l.contains(" hits 4 (")), "{out}");
}

/// The path of the C library this test binary maps (the file the fixtures map too).
fn libc_path() -> std::path::PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
    let p = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| std::path::Path::new(p).file_name().is_some_and(|n| n.to_string_lossy().starts_with("libc.so")))
        .expect("libc mapped in the test binary");
    p.into()
}

/// How many times gdb's breakpoint at each location is hit in a run of `prog ARGS` (gdb
/// natively, each breakpoint ignored so the program runs through).
fn gdb_hits(prog: &std::path::Path, args: &str, locs: &[&str]) -> Vec<u64> {
    let mut cmd = std::process::Command::new("gdb");
    cmd.args(["-nx", "-batch", "-ex", "set breakpoint pending off"]);
    for (i, l) in locs.iter().enumerate() {
        cmd.args(["-ex", &format!("break {l}"), "-ex", &format!("ignore {} 1000000", i + 1)]);
    }
    cmd.args(["-ex", &format!("run {args} > /dev/null"), "-ex", "info breakpoints"]).arg(prog);
    let o = run_with_timeout(cmd, T);
    let out = text(&o.stdout);
    // "N  breakpoint ..." then "\tbreakpoint already hit K time(s)" (no such line: 0 hits).
    let mut hits = vec![0u64; locs.len()];
    let mut current = None;
    for line in out.lines() {
        if let Some(n) = line.split_whitespace().next().and_then(|t| t.parse::<usize>().ok()) {
            current = Some(n - 1);
        } else if let (Some(c), Some(rest)) = (current, line.trim().strip_prefix("breakpoint already hit ")) {
            hits[c] = rest.split_whitespace().next().and_then(|k| k.parse().ok()).unwrap_or(0);
        }
    }
    hits
}

/// The total `xol count` reported for `loc` (its text report: `LOC: N hits (...)`).
fn total_of(report: &str, loc: &str) -> Option<u64> {
    report.lines().find_map(|l| l.strip_prefix(&format!("{loc}: "))?.split_whitespace().next()?.parse().ok())
}

#[test]
fn line_locations_and_inlined_functions_count_what_gdb_breakpoints_are_hit() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let locs = ["loop.c:15", "loop.c:33", "loop.c:34", "loop.c:13", "probe_other"];
    let o = xol_count(&locs, &prog, &["7"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    // probe_site's body (line 15) and the call in the loop (line 34): once per iteration.
    assert_eq!(total_of(&err, "loop.c:15"), Some(7), "{err}");
    assert_eq!(total_of(&err, "loop.c:34"), Some(7), "{err}");
    // Line 13 (the function's declaration) is where gdb's breakpoint goes: after the prologue.
    assert_eq!(total_of(&err, "loop.c:13"), Some(7), "{err}");
    if support::which("gdb").is_some() {
        let want = gdb_hits(&prog, "7", &locs);
        let got: Vec<u64> = locs.iter().map(|l| total_of(&err, l).unwrap_or(u64::MAX)).collect();
        assert_eq!(got, want, "xol count vs gdb's hit counts at {locs:?}\n{err}");
    }
    // A static inline function inlined into two callers, with no symbol of its own: a probe
    // on every inlined copy, 10 calls in first()'s loop and one in second().
    let inl = fixture_with("inl", FixtureOpts { pie: false, opt: "-O2" });
    let o = xol_count(&["twice", "inl.c:13"], &inl, &["10"]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(total_of(&err, "twice"), Some(11), "{err}");
    if support::which("gdb").is_some() {
        assert_eq!(
            vec![total_of(&err, "twice").unwrap_or(0), total_of(&err, "inl.c:13").unwrap_or(0)],
            gdb_hits(&inl, "10", &["twice", "inl.c:13"]),
            "{err}"
        );
    }
    // gdb's words when there is nothing there.
    for (loc, why) in [
        ("loop.c:999", "No line 999 in file \"loop.c\"."),
        ("nosuch.c:3", "No source file named nosuch.c."),
        ("nosuch_function", "Function \"nosuch_function\" not defined"),
        ("7", "a line alone needs a current source file"),
    ] {
        let o = xol_count(&[loc], &prog, &["1"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{loc}: {err}");
        assert!(err.contains(&format!("cannot count {loc}: ")) && err.contains(why), "{loc}: {err}");
    }
    // The same through gdb's monitor command.
    let out = gdb_batch(
        Server::XolStdio,
        &prog,
        &["7"],
        &["set remotetimeout 30", "monitor count loop.c:34", "continue", "monitor probes"],
    );
    assert!(out.all_output().contains("loop.c:34"), "{out}");
    assert!(!out.all_output().contains("cannot count"), "{out}");
    assert!(out.has_mark("done"), "{out}");
}

#[test]
fn a_fifo_or_a_device_as_probe_file_is_refused_at_once() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let dir = tempfile::tempdir().expect("tempdir");
    let fifo = dir.path().join("a_fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0, "mkfifo");
    let fifo_loc = format!("{}:x", fifo.display());
    for (loc, what) in [(fifo_loc.as_str(), "is a FIFO (named pipe)"), ("/dev/zero:x", "is a device")] {
        let started = std::time::Instant::now();
        let o = xol_count(&[loc], &prog, &["5", "1", "0"]);
        let err = text(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{loc}: {err}");
        assert!(err.contains(what), "{loc}: {err}");
        assert!(started.elapsed() < Duration::from_secs(30), "{loc} took {:?}", started.elapsed());
        let cmd = format!("monitor count {loc}");
        let out = gdb_batch(Server::XolStdio, &prog, &["5", "1", "0"], &[&cmd, "continue"]);
        assert!(
            out.all_output().contains(&format!("cannot count {loc}: ")) && out.all_output().contains(what),
            "{out}"
        );
        assert!(out.has_mark("done"), "the session goes on\n{out}");
    }
}

#[test]
fn xol_count_json_goes_where_the_report_goes() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let check = |json: &str| {
        let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
        let locs = v["locations"].as_array().unwrap_or_else(|| panic!("{json}"));
        assert_eq!(locs.len(), 1, "{json}");
        assert_eq!(locs[0]["location"], "counted", "{json}");
        assert_eq!(locs[0]["total"], 60, "{json}");
        assert!(v["traps"].as_u64().is_some_and(|t| t >= 60), "{json}");
    };
    // Like the text report, on stderr: stdout is the program's alone.
    let o = xol_count(&["--json", "counted"], &prog, &["30", "2", "0"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    check(err.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON on stderr\n{err}")));
    assert!(out.lines().all(|l| l.starts_with("MARK:")), "stdout is the program's output only\n{out}");
    // `-o -`: stdout, after the program's own lines.
    let o = xol_count(&["--json", "-o", "-", "counted"], &prog, &["30", "2", "0"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success(), "{err}");
    check(out.lines().last().unwrap_or_default());
    assert!(!err.contains("\"locations\""), "nothing of the report on stderr\n{err}");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("r.json");
    let o = xol_count(&["--json", "-o", file.to_str().unwrap(), "counted"], &prog, &["30", "2", "0"]);
    assert!(o.status.success(), "{}", text(&o.stderr));
    check(&std::fs::read_to_string(&file).expect("report file"));
    assert!(!text(&o.stdout).contains("\"locations\""), "{}", text(&o.stdout));
}

/// Start `xol count libc.so.6:printf spin_tick -- spin` and wait for the program's ready
/// line; returns the guard, its readers and the program's pid.
fn counting_spin() -> (ChildGuard, LineReader, LineReader, u32) {
    let prog = fixture("spin");
    let mut cmd = std::process::Command::new(xol_bin());
    cmd.args(["count", "--trap", "libc.so.6:printf", "spin_tick", "--"])
        .arg(&prog)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut out = LineReader::new(g.stdout.take().expect("stdout"));
    let err = LineReader::new(g.stderr.take().expect("stderr"));
    let ready = out.wait_for("MARK:ready", T).unwrap_or_else(|e| panic!("no ready line: {e}"));
    let pid = ready.split("pid=").nth(1).and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("{ready}"));
    (g, out, err, pid)
}

fn gone(pid: u32) -> bool {
    !pid_alive(pid) || proc_state(pid) == Some('Z')
}

#[test]
fn sigterm_to_xol_count_detaches_reports_and_passes_it_on() {
    let (mut g, mut out, mut err, spin) = counting_spin();
    g.signal(libc::SIGTERM);
    let st = g.expect_exit(T);
    // Everything xol wrote (the pipe ends when the program, which shares it, is gone too).
    err.read_to_eof(T);
    let report = err.text();
    assert_eq!(st.code(), Some(143), "128 + SIGTERM\n{report}");
    // printf printed the ready line once; the counts survive the signal.
    assert!(report.contains(&format!("libc.so.6:printf: 1 hits ({spin}:1)")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("spin_tick: ")), "{report}");
    // The program, detached with its code restored, got the SIGTERM too and ended by itself.
    out.wait_for("MARK:term", T).unwrap_or_else(|e| panic!("the program never got SIGTERM: {e}\n{report}"));
    assert!(wait_until(T, || gone(spin)), "the program ends\n{report}");
}

#[test]
fn ctrl_c_on_xol_count_reports_and_ends_the_program() {
    let (mut g, _out, mut err, spin) = counting_spin();
    // Ctrl-C: SIGINT to the whole foreground process group (xol and the program).
    // SAFETY: kill(2) with a negative pid signals a process group; no memory involved.
    unsafe { libc::kill(-(g.pid() as i32), libc::SIGINT) };
    let st = g.expect_exit(T);
    // Everything xol wrote (the pipe ends when the program, which shares it, is gone too).
    err.read_to_eof(T);
    let report = err.text();
    assert_eq!(st.code(), Some(130), "128 + SIGINT\n{report}");
    assert!(report.contains(&format!("libc.so.6:printf: 1 hits ({spin}:1)")), "{report}");
    assert!(wait_until(T, || gone(spin)), "the program dies of its SIGINT as it would without xol\n{report}");
}

/// The states (`/proc/PID/task/TID/stat` field 3) of every thread of `pid`.
fn thread_states(pid: u32) -> Vec<char> {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return Vec::new() };
    rd.flatten()
        .filter_map(|e| {
            let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
            stat.rsplit_once(") ")?.1.chars().next()
        })
        .collect()
}

#[test]
fn sigstop_stops_the_counted_program_as_it_would_without_xol() {
    let (mut g, mut out, mut err, spin) = counting_spin();
    let stopped = |st: &[char]| !st.is_empty() && st.iter().all(|c| matches!(c, 't' | 'T'));
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe { libc::kill(spin as i32, libc::SIGSTOP) };
    // Stopped, and still stopped at every read for 300 ms (a thread stopped only while xol
    // handles an event, a probe hit or the signal itself, runs again long before that).
    let stays_stopped = || {
        let t0 = std::time::Instant::now();
        while t0.elapsed() < Duration::from_millis(300) {
            if !stopped(&thread_states(spin)) {
                return false;
            }
        }
        true
    };
    assert!(
        wait_until(Duration::from_secs(10), stays_stopped),
        "every thread of the program stays stopped after SIGSTOP: {:?}\n{}",
        thread_states(spin),
        err.text()
    );
    // SIGCONT wakes it; SIGTERM then ends it the way it ends by itself.
    // SAFETY: as above.
    unsafe { libc::kill(spin as i32, libc::SIGCONT) };
    assert!(
        wait_until(Duration::from_secs(10), || !stopped(&thread_states(spin))),
        "SIGCONT resumes it: {:?}",
        thread_states(spin)
    );
    // SAFETY: as above.
    unsafe { libc::kill(spin as i32, libc::SIGTERM) };
    out.wait_for("MARK:term", T).unwrap_or_else(|e| panic!("{e}\n{}", err.text()));
    let st = g.expect_exit(T);
    // Everything xol wrote (the pipe ends when the program, which shares it, is gone too).
    err.read_to_eof(T);
    let report = err.text();
    assert_eq!(st.code(), Some(0), "{report}");
    // (The ready line is a printf; the term line compiles to a puts.)
    assert!(report.contains(&format!("libc.so.6:printf: 1 hits ({spin}:1)")), "{report}");
    assert!(report.lines().any(|l| l.starts_with("spin_tick: ")), "{report}");
}

#[test]
fn xol_count_finds_a_library_by_its_soname() {
    // /proc/PID/maps names the real file (libstdc++.so.6.0.30); the user names the soname.
    // gdb is a C++ program: every translation unit with <iostream> runs ios_base::Init.
    let gdb = which("gdb").expect("gdb");
    let mut ldd = std::process::Command::new("ldd");
    ldd.arg(&gdb);
    let libs = text(&run_with_timeout(ldd, T).stdout);
    let Some(path) = libs.lines().find(|l| l.contains("libstdc++.so.6 => ")).and_then(|l| l.split_whitespace().nth(2))
    else {
        eprintln!("skipped: gdb does not link libstdc++.so.6");
        return;
    };
    let real = std::fs::canonicalize(path).expect("canonicalize");
    assert_ne!(real.file_name().unwrap(), "libstdc++.so.6", "the file's name differs from its soname here");
    let o = xol_count(&["libstdc++.so.6:_ZNSt8ios_base4InitC1Ev"], &gdb, &["-nx", "-batch", "-ex", "print 6*7"]);
    let (out, err) = (text(&o.stdout), text(&o.stderr));
    assert!(o.status.success() && out.contains("$1 = 42"), "{out}{err}");
    let line = err.lines().find(|l| l.starts_with("libstdc++.so.6:")).unwrap_or_else(|| panic!("{err}"));
    assert!(!line.contains(": 0 hits") && !line.contains("never armed"), "armed in {}: {line}", real.display());
}

/// A source line of a shared library loaded at start-up, counted through gdb's monitor
/// command once the library is mapped (at main): the library's own load bias applies, and
/// `fix_add`, undefined in the program, is found in the library's debug information.
#[test]
fn a_line_of_a_loaded_library_is_counted() {
    let prog = fixture_with("solib", FixtureOpts::PIE);
    let out = gdb_batch(
        Server::XolStdio,
        &prog,
        &[],
        &[
            // The first FILE:LINE reads the line tables of every mapped file, the C library's
            // separate debug file included where it is installed: up to a second or two in a
            // debug build on a loaded machine, past gdb's default 2 s for a reply.
            "set remotetimeout 30",
            "break main",
            "continue",
            "monitor count libfix.c:4",
            "monitor count fix_add",
            "break solib.c:13",
            "continue",
            "monitor probes",
            "continue",
        ],
    );
    let all = out.all_output();
    assert!(!all.contains("cannot count"), "{out}");
    assert!(out.has_mark("fix=5"), "{out}");
    let probes: Vec<&str> = all.lines().filter(|l| l.contains("libfix.c:4") || l.contains("fix_add")).collect();
    assert!(probes.iter().any(|l| l.contains("libfix.c:4") && l.contains("hits 1 ")), "{out}");
    assert!(probes.iter().any(|l| l.contains("fix_add") && l.contains("hits 1 ")), "{out}");
}

/// At launch only the program and the dynamic linker are mapped: a source line or a function
/// of a library the program loads at start-up (`DT_NEEDED`, found through its `DT_RUNPATH`
/// `$ORIGIN`) makes probes pending on the library, armed when it is mapped; a line the library
/// lacks is refused at once.
#[test]
fn a_line_of_a_library_not_loaded_yet_is_pending_until_it_is() {
    let prog = fixture_with("solib", FixtureOpts::PIE);
    let o = xol_count(&["libfix.c:4", "fix_add"], &prog, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{err}");
    assert_eq!(total_of(&err, "libfix.c:4"), Some(1), "{err}");
    assert_eq!(total_of(&err, "fix_add"), Some(1), "{err}");
    let o = xol_count(&["libfix.c:99"], &prog, &[]);
    let err = text(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("No line 99 in file \"libfix.c\"."), "{err}");
}
