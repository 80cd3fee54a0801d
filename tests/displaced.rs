//! Displaced stepping end to end:
//!
//! - `xol verify-steps --json` on the `insns` fixture (non-PIE and PIE) and on `diffhost` with
//!   `--libc`: in-line and displaced execution of thousands of instructions must agree. A
//!   mismatch fails the test; one that `verify-steps` recognises as an open bug
//!   (docs/displaced-stepping.md, "Open bugs") is named as such, and is accepted only when
//!   `XOL_VERIFY_LENIENT=1` is set;
//! - a natural run of `insns` under xol with a counting probe (`monitor count`) on every
//!   `insn_*` label: the program's own checks pass and every probe counts exactly its hits;
//! - real gdb breakpoints on labels of each plan kind, `continue` and `stepi` through them, with
//!   the same output as GNU gdbserver.
//!
//! Every process runs under the rig's guards and timeouts.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

/// Timeout of one `xol verify-steps` run (debug build, libc: about half a minute).
const VERIFY_TIMEOUT: Duration = Duration::from_secs(300);

// ---------------------------------------------------------------------------
// Reading the JSON report (serde_json), leniently: a missing field reads as empty
// ---------------------------------------------------------------------------

type Json = serde_json::Value;

/// Field access that reads a missing field as null, 0, "" or empty (the report's checks then
/// fail on the value, naming it).
trait Field {
    fn field(&self, k: &str) -> &Json;
    fn num(&self) -> u64;
    fn str(&self) -> &str;
    fn arr(&self) -> &[Json];
    fn counts(&self) -> BTreeMap<String, u64>;
}

impl Field for Json {
    fn field(&self, k: &str) -> &Json {
        self.as_object().and_then(|m| m.get(k)).unwrap_or(&Json::Null)
    }
    fn num(&self) -> u64 {
        self.as_u64().unwrap_or(0)
    }
    fn str(&self) -> &str {
        self.as_str().unwrap_or("")
    }
    fn arr(&self) -> &[Json] {
        self.as_array().map(Vec::as_slice).unwrap_or(&[])
    }
    fn counts(&self) -> BTreeMap<String, u64> {
        self.as_object().map(|m| m.iter().map(|(k, v)| (k.clone(), v.num())).collect()).unwrap_or_default()
    }
}

// ---------------------------------------------------------------------------
// xol verify-steps
// ---------------------------------------------------------------------------

/// Run `xol verify-steps --json ARGS -- PROG` and parse its report. Exit status 0 means no
/// mismatch, 1 mismatches (possibly only known open bugs); anything else fails here.
fn verify_steps(prog: &Path, args: &[&str]) -> Json {
    let mut cmd = Command::new(xol_bin());
    cmd.arg("verify-steps").arg("--json").args(args).arg("--").arg(prog);
    let out = run_with_timeout(cmd, VERIFY_TIMEOUT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(1)),
        "xol verify-steps failed ({}):\n{stderr}\n{stdout}",
        describe_status(&out.status)
    );
    let start = stdout.find('{').unwrap_or_else(|| panic!("no JSON in the output:\n{stdout}\n{stderr}"));
    let v: Json = serde_json::from_str(stdout[start..].trim_end())
        .unwrap_or_else(|e| panic!("verify-steps wrote invalid JSON ({e}):\n{stdout}"));
    let mismatches = v.field("mismatch_count").num();
    assert_eq!(code == Some(0), mismatches == 0, "exit status {code:?} with {mismatches} mismatches");
    v
}

/// Print the counts of a report, and check what every run must satisfy: no incident and no
/// mismatch (with XOL_VERIFY_LENIENT=1, mismatches that are instances of a known bug are
/// accepted; unexplained ones never are).
fn check_report(what: &str, v: &Json) {
    eprintln!(
        "{what}: candidates {:?}, plan kinds {:?}, checked {} ({:?}, by source {:?}), comparisons {}, \
         skipped {:?}, launches {}, mismatches {} (by bug: {:?}), {} s",
        v.field("candidates").counts(),
        v.field("kinds").counts(),
        v.field("checked").num(),
        v.field("checked_kinds").counts(),
        v.field("checked_sources").counts(),
        v.field("comparisons").num(),
        v.field("skipped").counts(),
        v.field("launches").num(),
        v.field("mismatch_count").num(),
        v.field("known_bugs").counts(),
        v.field("seconds").as_f64().unwrap_or(0.0),
    );
    for r in v.field("refusals").arr() {
        eprintln!("  refused {:>4}: {}", r.field("count").num(), r.field("reason").str());
    }
    let describe = |m: &Json| {
        let diffs: Vec<&str> = m.field("diffs").arr().iter().map(|d| d.str()).collect();
        format!(
            "{} {} [{}] {} ({}, {} path, eflags {}, known: {:?}): {}",
            m.field("address").str(),
            m.field("symbol").str(),
            m.field("bytes").str(),
            m.field("mnemonic").str(),
            m.field("kind").str(),
            m.field("path").str(),
            m.field("eflags").str(),
            m.field("known"),
            diffs.join("; ")
        )
    };
    let unknown: Vec<String> =
        v.field("mismatches").arr().iter().filter(|m| m.field("known") == &Json::Null).map(describe).collect();
    assert!(unknown.is_empty(), "{what}: displaced and in-line execution differ:\n{}", unknown.join("\n"));
    let incidents: Vec<String> = v
        .field("incidents")
        .arr()
        .iter()
        .map(|i| format!("{} {}: {}", i.field("address").str(), i.field("symbol").str(), i.field("what").str()))
        .collect();
    assert!(incidents.is_empty(), "{what}: the inferior misbehaved:\n{}", incidents.join("\n"));
    if v.field("mismatch_count").num() > 0 {
        let known: Vec<String> = v.field("mismatches").arr().iter().map(describe).collect();
        eprintln!("{what}: OPEN BUGS (docs/displaced-stepping.md):\n  {}", known.join("\n  "));
        assert!(
            std::env::var_os("XOL_VERIFY_LENIENT").is_some(),
            "{what}: mismatches (set XOL_VERIFY_LENIENT=1 to accept instances of known bugs while one is open)"
        );
    }
}

fn check_insns_report(what: &str, v: &Json) {
    check_report(what, v);
    let kinds = v.field("kinds").counts();
    for k in ["emulate", "boosted", "out-of-line", "refused"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "{what}: no {k} instruction among {kinds:?}");
    }
    // Every label was looked at, and the plan of each class is the expected one.
    let labels: BTreeMap<&str, &Json> = v.field("labels").arr().iter().map(|l| (l.field("name").str(), l)).collect();
    let expect = [
        ("insn_push", "emulate"),
        ("insn_rip_load", "emulate"),
        ("insn_call_ind_rip", "emulate"),
        ("insn_jmp_ind_reg", "emulate"),
        ("insn_jcc32_not_taken", "emulate"),
        ("insn_loop", "emulate"),
        ("insn_jrcxz_taken", "emulate"),
        ("insn_ret_imm", "emulate"),
        ("insn_sub_rsp", "emulate"),
        ("insn_lea_sib", "emulate"),
        ("insn_cmov_taken", "boosted"),
        ("insn_lock_cmpxchg", "boosted"),
        ("insn_movaps_load_reg", "boosted"),
        ("insn_vmovdqu_ymm_store", "boosted"),
        ("insn_rep_movsb", "boosted"),
        ("insn_lock_cmpxchg_rip", "out-of-line"),
        ("insn_movdqu_rip_load", "out-of-line"),
        ("insn_movdqu_rip_store", "out-of-line"),
        ("insn_vmovdqu_ymm_rip", "out-of-line"),
        ("insn_syscall", "out-of-line"),
        ("insn_ud2", "out-of-line"),
        ("insn_int80", "refused"),
        ("insn_hlt", "refused"),
    ];
    for (name, kind) in expect {
        let l = labels.get(name).unwrap_or_else(|| panic!("{what}: label {name} not checked"));
        assert_eq!(l.field("kind").str(), kind, "{what}: {name}");
        let status = l.field("status").str();
        assert!(matches!(status, "ok" | "refused" | "mismatch"), "{what}: {name}: {status}");
    }
    let n_labels = nm_symbols(&fixture("insns")).iter().filter(|(n, _, _)| n.starts_with("insn_")).count();
    assert_eq!(labels.len(), n_labels, "{what}: every insn_ label is reported");
}

#[test]
fn verify_steps_insns_nopie() {
    let v = verify_steps(&fixture("insns"), &[]);
    check_insns_report("insns (non-PIE)", &v);
}

#[test]
fn verify_steps_insns_pie() {
    let v = verify_steps(&fixture_with("insns", FixtureOpts::PIE), &[]);
    check_insns_report("insns (PIE)", &v);
}

#[test]
fn verify_steps_libc() {
    let v = verify_steps(&fixture("diffhost"), &["--libc"]);
    check_report("diffhost + libc", &v);
    assert!(v.field("libc").str().contains("libc"), "libc not found: {:?}", v.field("libc"));
    let libc = v.field("checked_sources").field("libc").num();
    assert!(libc >= 1000, "only {libc} libc instructions checked");
    let kinds = v.field("checked_kinds").counts();
    for k in ["emulate", "boosted", "out-of-line"] {
        assert!(kinds.get(k).copied().unwrap_or(0) > 0, "no {k} instruction checked in libc: {kinds:?}");
    }
}

#[test]
fn verify_steps_needs_a_scratch_buffer() {
    let mut cmd = Command::new(xol_bin());
    cmd.args(["verify-steps", "--"]).arg(fixture("loop")).arg("1");
    let out = run_with_timeout(cmd, Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("scratch"), "{stderr}");
}

// ---------------------------------------------------------------------------
// Under gdb
// ---------------------------------------------------------------------------

/// How often each `insn_*` label runs in a natural run of `insns` (1 unless listed).
fn expected_hits(label: &str) -> u64 {
    match label {
        "insn_loop" => 3,
        "insn_int80" | "insn_ud2" | "insn_hlt" | "insn_rip_store_ro" | "insn_jmp_noncanon" | "insn_call_noncanon" => 0,
        _ => 1,
    }
}

#[test]
fn counting_probes_on_every_label() {
    let prog = fixture("insns");
    let labels: Vec<String> =
        nm_symbols(&prog).into_iter().filter(|(n, _, _)| n.starts_with("insn_")).map(|(n, _, _)| n).collect();
    assert!(labels.len() > 40, "{labels:?}");
    let mut script: Vec<String> = labels.iter().map(|l| format!("monitor count {l}")).collect();
    script.extend(["break *checks_done", "continue", "monitor probes", "continue"].map(String::from));
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    let o = gdb_batch(Server::XolStdio, &prog, &[], &script);
    let all = o.all_output();
    assert!(o.has_mark("start") && o.has_mark("done"), "{o}");
    assert!(all.contains("exited normally"), "the program's own checks failed under xol:\n{o}");
    // gdb -batch prints the monitor's console output on stderr.
    let probes = parse_probes(&o.stderr);
    let mut seen = 0;
    for l in &labels {
        let p = probes.iter().find(|p| &p.location == l).unwrap_or_else(|| panic!("no probe line for {l}:\n{o}"));
        assert_eq!(p.total, expected_hits(l), "{l}: {p:?}");
        seen += 1;
    }
    assert_eq!(seen, labels.len());
    for plan in ["emulate", "boosted", "out-of-line", "refused"] {
        assert!(probes.iter().any(|p| p.plan == plan), "no probe with plan {plan}:\n{o}");
    }
}

/// Labels with a gdb breakpoint, in execution order, and what to print after a `stepi` there.
const BREAK_AT: &[(&str, &[&str])] = &[
    ("insn_push", &["p/d *(long *)$rsp", "p/d $rbx"]), // emulate
    ("insn_call_rel32", &["p/d *(long *)$rsp - (long)&insn_call_rel32"]), // emulate (branch)
    ("insn_jcc_taken", &["p $eflags"]),                // emulate (branch)
    ("insn_cmov_taken", &["p/d $rax", "p $eflags"]),   // boosted
    ("insn_lock_cmpxchg_rip", &["p/d $rax", "p/d *(int *)&g_lock", "p $eflags"]), // out-of-line
    ("insn_lock_cmpxchg", &["p/d *(int *)&g_lock", "p $eflags"]), // boosted
    ("insn_movdqu_rip_load", &["p $xmm0.v4_int32"]),   // out-of-line
    ("insn_vmovdqu_ymm_rip", &["p $ymm2.v8_int32"]),   // out-of-line
    ("insn_syscall", &["p/d $rcx - (long)&insn_syscall", "p/d $r11 & 0xff"]), // out-of-line
];

#[test]
fn gdb_breakpoints_and_stepi_match_gdbserver() {
    let prog = fixture("insns");
    let mut script: Vec<String> = BREAK_AT.iter().map(|(l, _)| format!("break *{l}")).collect();
    for (l, prints) in BREAK_AT {
        script.push("continue".into());
        script.push(format!("echo =={l}==\\n"));
        script.push(format!("p/d $pc - (long)&{l}"));
        script.push("stepi".into());
        script.push(format!("p/d $pc - (long)&{l}"));
        script.extend(prints.iter().map(|p| p.to_string()));
    }
    script.push("echo ==end==\\n".into());
    script.push("continue".into());
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    let cmp = gdb_script_compare(&prog, &[], &script, normalise_gdb_output);
    let check = |o: &GdbOutput| {
        assert!(o.stdout.contains("exited normally"), "{o}");
        for (l, _) in BREAK_AT {
            let s = &o.stdout[o.stdout.find(&format!("=={l}==")).unwrap_or_else(|| panic!("{l} not reached:\n{o}"))..];
            assert!(s.lines().nth(1).is_some_and(|x| x.ends_with("= 0")), "{l}: not stopped at the label:\n{s}");
        }
    };
    if let Some(gs) = &cmp.gdbserver {
        check(gs);
    }
    check(&cmp.xol);
    cmp.assert_same();
}

/// Run `script` under gdb through xol and return the values gdb printed (`$N = V` lines).
fn xol_values(script: &[&str]) -> Vec<String> {
    let o = gdb_batch(Server::XolStdio, &fixture("insns"), &[], script);
    o.stdout
        .lines()
        .filter_map(|l| l.split_once(" = ").filter(|(k, _)| k.starts_with('$')).map(|(_, v)| v.to_string()))
        .collect()
}

/// Open bug `rep-stepi` (docs/displaced-stepping.md): `stepi` on a `rep movsb` must run one
/// iteration (rcx 8 -> 7, pc unchanged), as it does under gdbserver and under xol without a
/// probe there; with a counting probe on the same address (so the `int3` stays while gdb steps)
/// xol runs every iteration (pc +2, rcx 0). Run with `cargo test --test displaced -- --ignored`.
#[test]
fn rep_stepi_runs_one_iteration() {
    let script = [
        "monitor count insn_rep_movsb",
        "break *insn_rep_movsb",
        "continue",
        "stepi",
        "p/d $pc - (long)&insn_rep_movsb",
        "p/d $rcx",
        "kill",
    ];
    assert_eq!(xol_values(&script), ["0", "7"]);
}

/// Open bug `x87-fip`: an x87 instruction run from its slot leaves the slot's address in the
/// FPU instruction pointer (gdb's `$fioff`); under gdbserver it is the instruction's address.
///
/// Whether the CPU records FIP at all is the host's: AMD CPUs store FIP/FDP/FOP with FXSAVE
/// only while an x87 exception is pending, so there `$fioff` reads 0 however the instruction
/// ran (GNU gdbserver shows the same). The reference is the same program without the probe
/// (the instruction runs in place); where it does not show the instruction's address the check
/// cannot tell anything and is reported as skipped.
#[test]
fn x87_fip_is_the_original_address() {
    let reference = xol_values(&["break *f_x87+6", "continue", "p/d $fioff - (int)&insn_fld_rip", "kill"]);
    if reference != ["0"] {
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "SKIP x87_fip_is_the_original_address: this CPU does not record the x87 FIP outside \
             exceptions (in-place $fioff - &insn_fld_rip = {reference:?})"
        );
        return;
    }
    let script =
        ["monitor count insn_fld_rip", "break *f_x87+6", "continue", "p/d $fioff - (int)&insn_fld_rip", "kill"];
    assert_eq!(xol_values(&script), ["0"]);
}

/// Open bug `noncanonical-branch`: an emulated `jmp *mem` to a non-canonical address must raise
/// SIGSEGV at the jmp (pc unchanged), as the CPU does; xol's emulation sets pc to the target.
#[test]
fn emulated_noncanonical_branch_faults_at_the_branch() {
    let script = [
        "monitor count insn_jmp_noncanon",
        "break *checks_done",
        "continue",
        "set $pc = &insn_jmp_noncanon",
        "stepi",
        "p/d $pc - (long)&insn_jmp_noncanon",
        "kill",
    ];
    let o = gdb_batch(Server::XolStdio, &fixture("insns"), &[], &script);
    assert!(o.stdout.contains("SIGSEGV"), "{o}");
    assert!(o.stdout.contains("$1 = 0"), "{o}");
}

/// Open bug (not in displaced stepping): writing a ymm register's upper half fails (`E05`) where
/// the XSAVE area is larger than the 1024 bytes xol reads and writes (AVX-512 machines): the
/// kernel's PTRACE_SETREGSET(NT_X86_XSTATE) wants the whole area. `verify-steps` works around
/// it by never writing the upper halves.
#[test]
fn ymm_upper_half_can_be_written() {
    let script = ["break main", "continue", "set $ymm0.v8_int32[7] = 5", "p $ymm0.v8_int32[7]", "kill"];
    assert_eq!(xol_values(&script), ["5"]);
}
