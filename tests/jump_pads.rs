//! Trapless counting probes (`xol count --jump`): a probe site jumps to a pad that counts and
//! runs the instructions it replaced. Checked on real programs: counts exact from 4 threads on
//! PIE executables with the program's own result unchanged (the `hitcost` checksum against a
//! native run); a site the jump plan refuses keeps the trap plan, counts exactly, and the
//! report says why; forked children get the program's bytes back and run correctly; and after
//! xol detaches (SIGTERM), the program's code is byte for byte the file's again and it runs on.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// `hitcost` built PIE with `-DV_<variant>` (the first instruction of `work`).
fn hitcost(variant: &str) -> PathBuf {
    let dir = fixture_out_dir(FixtureOpts::PIE);
    std::fs::create_dir_all(&dir).expect("fixture dir");
    let out = dir.join(format!("hitcost_jump_{variant}"));
    let src = fixtures_src_dir().join("hitcost.c");
    let st = Command::new("gcc")
        .args(["-O2", "-pie", "-fPIE", "-fcf-protection=none", "-pthread"])
        .arg(format!("-DV_{variant}"))
        .arg("-I")
        .arg(fixtures_src_dir())
        .arg(&src)
        .arg("-o")
        .arg(&out)
        .status()
        .expect("gcc");
    assert!(st.success(), "building hitcost {variant}");
    out
}

/// Run `cmd`; (stdout, stderr, exit code).
fn run(cmd: Command) -> (String, String, Option<i32>) {
    let out = run_with_timeout(cmd, TIMEOUT);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.code(),
    )
}

fn count(args: &[&str], prog: &Path, prog_args: &[&str]) -> (String, String, Option<i32>) {
    let mut c = Command::new(xol_bin());
    c.arg("count").args(args).arg("--").arg(prog).args(prog_args);
    run(c)
}

#[test]
fn jump_counts_are_exact_from_threads_and_the_program_computes_the_same() {
    for variant in ["EMULATE", "RIPREL"] {
        let prog = hitcost(variant);
        let (native, _, code) = run({
            let mut c = Command::new(&prog);
            c.args(["200000", "4"]);
            c
        });
        assert_eq!(code, Some(0));
        let (out, err, code) = count(&["--jump", "work"], &prog, &["200000", "4"]);
        assert_eq!(code, Some(0), "{err}");
        assert_eq!(out, native, "the program's result under the jump plan ({variant})");
        assert!(err.contains("work: 200000 hits ("), "{variant}: {err}");
        assert!(err.contains("; jump plan)"), "{variant} takes the jump plan: {err}");
    }
}

#[test]
fn a_site_the_jump_refuses_keeps_the_trap_plan_and_says_why() {
    // `imul $3,%edi,%eax; ret`: 4 bytes to the function's end, a jump needs 5.
    let prog = hitcost("BOOSTED");
    let (out, err, code) = count(&["--jump", "work"], &prog, &["1000"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.starts_with("checksum "), "{out}");
    assert!(err.contains("work: 1000 hits ("), "{err}");
    assert!(err.contains("trap plan: only 4 bytes"), "the reason is given: {err}");
}

#[test]
fn the_instruction_zoo_runs_right_under_jump_pads() {
    // fixtures/insns.S: each f_* function starts with another instruction class and main
    // checks every result (exit 0 only if all are right). Under --jump every function that
    // allows it runs from a pad; a label inside a window (another entry) refuses it.
    let prog = fixture_with("insns", FixtureOpts::PIE);
    let funcs: Vec<String> =
        nm_symbols(&prog).into_iter().filter(|(n, _, t)| n.starts_with("f_") && *t == 'T').map(|(n, _, _)| n).collect();
    assert!(funcs.len() > 10, "{funcs:?}");
    let mut args = vec!["--jump"];
    args.extend(funcs.iter().map(String::as_str));
    let (_, err, code) = count(&args, &prog, &[]);
    assert_eq!(code, Some(0), "the program's own checks pass under the pads: {err}");
    let jumped = err.lines().filter(|l| l.ends_with("; jump plan)")).count();
    assert!(jumped >= 8, "most functions take the jump plan: {err}");
    for f in funcs.iter().filter(|f| *f != "f_never") {
        assert!(err.contains(&format!("{f}: 1 hits (")), "{f} counted once: {err}");
    }
    assert!(err.contains("f_call: 1 hits") && err.contains("would be in the window"), "a call refuses: {err}");
    assert!(err.contains("is a known branch target or reference, inside the window"), "a label refuses: {err}");
}

#[test]
fn a_breakpoint_inside_a_window_puts_the_probe_back_on_the_trap_plan() {
    // The int3 cannot go into the patch: the probe returns to the trap plan (its count kept)
    // and both work: the breakpoint stops, every call is counted.
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut c = Command::new(xol_bin());
    c.args(["debug", "-batch", "-ex", "tty /dev/null", "-ex", "break main", "-ex", "run 5"]);
    c.args(["-ex", "count --jump probe_site", "-ex", "break *probe_site+1", "-ex", "continue", "-ex", "probes"]);
    c.args(["-ex", "delete", "-ex", "continue", "-ex", "probes"]).arg(&prog);
    let (out, err, code) = run(c);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("counts hits of probe_site (jump plan)"), "{out}");
    assert!(out.contains("in probe_site ()"), "the breakpoint inside the window stops: {out}");
    assert!(out.contains("jump plan refused: a breakpoint was put inside its window"), "{out}");
    assert!(out.contains("exited normally"), "{out}");
    assert!(out.contains("hits 5 ("), "every call counted across the change of plan: {out}");
}

#[test]
fn forked_children_run_the_programs_own_bytes() {
    // pf_forkn checks every child's result and exits 2 if one is wrong; a child left with a
    // jump into a pad it cannot count in (or a torn patch) would fail or crash.
    let prog = fixture_with("pf_forkn", FixtureOpts::PIE);
    let (_, err, code) = count(&["--jump", "pf_probed"], &prog, &["3", "1000"]);
    assert_eq!(code, Some(0), "{err}");
    // Per-process: the parent's own 1000 calls; the children (let go at fork) are not counted.
    assert!(err.contains("pf_probed: 1000 hits ("), "{err}");
    assert!(err.contains("; jump plan)"), "{err}");
}

#[test]
fn after_detach_the_code_is_the_files_and_the_program_runs_on() {
    // Through `xol debug`: stop at main, put spin_tick on the jump plan, let it count two
    // ticks, detach. The program then runs on without xol; its code must be the file's again.
    let prog = fixture_with("spin", FixtureOpts::PIE);
    let mut c = Command::new(xol_bin());
    c.args(["debug", "-batch", "-ex", "tty /dev/null", "-ex", "break main", "-ex", "run", "-ex", "delete"]);
    c.args(["-ex", "count --jump spin_tick"]);
    for _ in 0..2 {
        c.args(["-ex", "tbreak libc.so.6:usleep", "-ex", "continue"]);
    }
    c.args(["-ex", "probes", "-ex", "detach"]).arg(&prog);
    let (out, err, code) = run_leaving_descendants(c);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("counts hits of spin_tick (jump plan)"), "{out}");
    assert!(out.contains("plan jump hits 2 ("), "two ticks counted by the pad: {out}");
    let pid: i32 = out
        .lines()
        .find_map(|l| l.strip_prefix("[Inferior 1 (process ")?.strip_suffix(") detached]")?.parse().ok())
        .unwrap_or_else(|| panic!("no detach line: {out}"));
    struct Kill(i32);
    impl Drop for Kill {
        fn drop(&mut self) {
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
    let _guard = Kill(pid);
    let base = pie_load_base(pid as u32, &prog).expect("load base");
    let off = symbol_addr(&prog, "spin_tick");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("mem");
    let mut now = [0u8; 16];
    std::os::unix::fs::FileExt::read_exact_at(&mem, &mut now, base + off).expect("read mem");
    let file = std::fs::read(&prog).expect("program");
    let o = file_offset(&prog, off);
    assert_eq!(&now[..], &file[o..o + 16], "spin_tick is the file's code again after the detach");
    // And it runs on: g_ticks keeps growing.
    let ticks_at = base + symbol_addr(&prog, "g_ticks");
    let ticks = || {
        let mut b = [0u8; 8];
        std::os::unix::fs::FileExt::read_exact_at(&mem, &mut b, ticks_at).map(|_| u64::from_le_bytes(b)).unwrap_or(0)
    };
    let first = ticks();
    assert!(wait_until(TIMEOUT, || ticks() > first + 10), "the program runs on after the detach");
}

/// Run `cmd` with a timeout (killed if it passes), leaving alone the processes it leaves behind
/// (the detached program: the test kills it itself).
fn run_leaving_descendants(mut cmd: Command) -> (String, String, Option<i32>) {
    use std::io::Read;
    cmd.stdin(std::process::Stdio::null()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let (mut o, mut e) = (String::new(), String::new());
        let _ = out.read_to_string(&mut o);
        let _ = err.read_to_string(&mut e);
        (o, e)
    });
    let pid = child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait());
    });
    let status = match rx.recv_timeout(TIMEOUT) {
        Ok(st) => st.expect("wait"),
        Err(_) => {
            unsafe { libc::kill(pid, libc::SIGKILL) };
            panic!("{cmd:?} did not finish within {TIMEOUT:?}");
        }
    };
    let (o, e) = reader.join().expect("reader");
    (o, e, status.code())
}

/// The file offset of link-time address `v` (from the program headers).
fn file_offset(prog: &Path, v: u64) -> usize {
    let out = Command::new("readelf").arg("-lW").arg(prog).output().expect("readelf");
    for l in String::from_utf8_lossy(&out.stdout).lines() {
        let f: Vec<&str> = l.split_whitespace().collect();
        if f.first() == Some(&"LOAD") {
            let hex = |s: &str| u64::from_str_radix(s.trim_start_matches("0x"), 16).expect("hex");
            let (o, va, sz) = (hex(f[1]), hex(f[2]), hex(f[4]));
            if v >= va && v < va + sz {
                return (v - va + o) as usize;
            }
        }
    }
    panic!("{v:#x} in no segment of {}", prog.display());
}
