//! Per-file probes across forks, vforks, execs, pipelines and `dlopen`, through real gdb.
//!
//! A per-file probe is a place in a file, armed in every traced process that maps the file
//! (`docs/probes.md`). Each test runs a fixture that spreads its calls of one probed function
//! over several processes, reads `monitor probes` while the program is stopped before its
//! exit, and checks the hits per pid exactly: every call counted once, in the process that
//! made it, and every process finished with the right output.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

/// The text between the lines `==NAME==` and the next `==...==` line (or the end).
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let tag = format!("=={name}==");
    let Some(i) = text.find(&tag) else {
        return "";
    };
    let rest = &text[i + tag.len()..];
    match rest.find("\n==") {
        Some(j) => &rest[..j + 1],
        None => rest,
    }
}

/// The one probe of `consumer` whose location ends with `loc` in section `name` of gdb's
/// stdout; panics (with everything) if there is not exactly one.
fn probe_in(out: &GdbOutput, name: &str, loc: &str, consumer: &str) -> Probe {
    let ps: Vec<Probe> = parse_probes(section(&out.stdout, name))
        .into_iter()
        .filter(|p| p.location.ends_with(loc) && p.consumer == consumer)
        .collect();
    assert_eq!(ps.len(), 1, "want one {consumer} probe at {loc} in section {name}: {ps:#?}\n{out}");
    ps.into_iter().next().unwrap()
}

/// The gdb probes (consumer `gdb`) at `addr` in section `name` of gdb's stdout (gdb's own
/// breakpoints elsewhere, such as its shared-library event breakpoint, are left out).
fn gdb_probes_at(out: &GdbOutput, name: &str, addr: u64) -> Vec<Probe> {
    parse_probes(section(&out.stdout, name))
        .into_iter()
        .filter(|p| p.consumer == "gdb" && p.addr == Some(addr))
        .collect()
}

/// The address of gdb's breakpoint N from `Breakpoint N at 0xADDR: ...`.
fn gdb_bp_addr(out: &GdbOutput, n: u32) -> u64 {
    let head = format!("Breakpoint {n} at 0x");
    out.stdout
        .lines()
        .find_map(|l| u64::from_str_radix(l.strip_prefix(&head)?.split(':').next()?, 16).ok())
        .unwrap_or_else(|| panic!("no `{head}...` line\n{out}"))
}

/// `key=value` from a MARK value such as `child i=3 pid=123 sum=55`.
fn kv<'a>(mark: &'a str, key: &str) -> Option<&'a str> {
    mark.split_whitespace().find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
}

/// The MARK values starting with `head ` (e.g. `child`).
fn marks_of(out: &GdbOutput, head: &str) -> Vec<String> {
    let h = format!("{head} ");
    out.marks().into_iter().filter(|m| m.starts_with(&h)).collect()
}

fn pid_of(mark: &str) -> u32 {
    kv(mark, "pid").and_then(|p| p.parse().ok()).unwrap_or_else(|| panic!("no pid= in {mark:?}"))
}

/// A `monitor stats` counter (`forks handled: N`).
fn stat(out: &GdbOutput, key: &str) -> Option<u64> {
    let k = format!("{key}: ");
    out.stdout.lines().find_map(|l| l.trim().strip_prefix(&k)?.split([',', ' ']).next()?.parse().ok())
}

/// Checksum of K calls of `pf_probed(j)` for j = 1..K (`j*3+1`).
fn probed_sum(k: u64) -> u64 {
    (1..=k).map(|j| j * 3 + 1).sum()
}

/// Checksum of K calls of `fix_add(j, 1)` for j = 1..K.
fn fix_sum(k: u64) -> u64 {
    (1..=k).map(|j| j + 1).sum()
}

/// A gdb command that runs `cmd` and prints its output to gdb's stdout between the lines
/// `==NAME==` and `==END==` (monitor output goes to gdb's stderr, unordered with stdout).
fn cap(name: &str, cmd: &str) -> String {
    format!("python print(\"=={name}==\\n\" + gdb.execute(\"{cmd}\", to_string=True) + \"==END==\")")
}

fn long_opts() -> GdbOpts {
    GdbOpts { timeout: Duration::from_secs(120), pre_target: vec!["set sysroot /".into()], ..GdbOpts::default() }
}

fn run(prog: &Path, args: &[&str], script: &[&str]) -> GdbOutput {
    gdb_batch_opts(Server::XolStdio, prog, args, script, &long_opts())
}

/// The path of the C library this test binary maps (the same file the fixtures map).
fn libc_path() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
    let p = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| Path::new(p).file_name().is_some_and(|n| n.to_string_lossy().starts_with("libc.so")))
        .expect("libc mapped in the test binary");
    std::fs::canonicalize(p).unwrap()
}

/// Checks the children of a pf_forkn / pf_forkthreads run: `n` distinct child pids, each
/// with the right checksum, and the parent reaped them all successfully. Returns their pids.
fn checked_children(out: &GdbOutput, n: usize, k: u64) -> Vec<u32> {
    let children = marks_of(out, "child");
    assert_eq!(children.len(), n, "every child prints its MARK: {children:?}\n{out}");
    let want = probed_sum(k).to_string();
    for c in &children {
        assert_eq!(kv(c, "sum"), Some(want.as_str()), "child checksum in {c:?}\n{out}");
    }
    let mut pids: Vec<u32> = children.iter().map(|c| pid_of(c)).collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), n, "distinct child pids\n{out}");
    assert!(out.has_mark(&format!("reaped={n} bad=0")), "every child exited 0\n{out}");
    pids
}

const N: usize = 8;
const K: u64 = 10;

// ---------------------------------------------------------------------------------------
// 1. Forked children.

#[test]
fn per_file_probe_counts_every_forked_child() {
    let prog = fixture("pf_forkn");
    let (n, k) = (N.to_string(), K.to_string());
    let script = [
        "break pf_end",
        "monitor probe-mode per-file",
        "monitor count pf_probed",
        "continue",
        &cap("P", "monitor probes"),
        &cap("S", "monitor stats"),
        "continue",
    ];
    let out = run(&prog, &[&n, &k], &script);
    let children = checked_children(&out, N, K);
    let parent = pid_of(&marks_of(&out, "parent")[0]);
    assert!(out.has_mark(&format!("parent pid={parent} sum={}", probed_sum(K))), "{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");

    let p = probe_in(&out, "P", "pf_probed", "count");
    assert_eq!(p.mode, "per-file", "{p:?}");
    let mut want = BTreeMap::from([(parent, K)]);
    want.extend(children.iter().map(|&c| (c, K)));
    assert_eq!(p.per_pid, want, "hits per pid: parent {K}, each of the {N} children {K}\n{out}");
    assert_eq!(p.total, (N as u64 + 1) * K, "{out}");
    assert_eq!(stat(&out, "forks handled"), Some(N as u64), "{out}");
    assert_eq!(stat(&out, "children followed"), Some(N as u64), "{out}");
}

#[test]
fn per_process_probe_counts_the_parent_only() {
    let prog = fixture("pf_forkn");
    let (n, k) = (N.to_string(), K.to_string());
    let script = [
        "break pf_end",
        "monitor probe-mode per-process",
        "monitor count pf_probed",
        "continue",
        &cap("P", "monitor probes"),
        &cap("S", "monitor stats"),
        "continue",
    ];
    let out = run(&prog, &[&n, &k], &script);
    checked_children(&out, N, K);
    let parent = pid_of(&marks_of(&out, "parent")[0]);
    assert!(out.has_mark(&format!("parent pid={parent} sum={}", probed_sum(K))), "{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    let p = probe_in(&out, "P", "pf_probed", "count");
    assert_eq!(p.mode, "per-process", "{p:?}");
    assert_eq!(p.per_pid, BTreeMap::from([(parent, K)]), "only the parent's calls\n{out}");
    assert_eq!(p.total, K, "{out}");
    assert_eq!(stat(&out, "children followed"), Some(0), "no per-file probe: children are not followed\n{out}");
}

// ---------------------------------------------------------------------------------------
// 2. Forks from a multi-threaded parent.

/// Runs pf_forkthreads (T worker threads calling pf_probed while a forker thread forks NC
/// children one after the other) under a per-file counting probe and checks every count.
/// Returns the session.
fn multithreaded_fork_run() -> GdbOutput {
    const T: u64 = 3;
    const M: u64 = 2000;
    const NC: usize = 6;
    const KC: u64 = 5;
    let prog = fixture("pf_forkthreads");
    let args = [T.to_string(), M.to_string(), NC.to_string(), KC.to_string()];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    // Forks reported to gdb (`--rsp xol`'s fork events) stop the process for gdb, as with
    // gdbserver; the fast path measured here is xol handling them itself.
    let script = [
        "break pf_end",
        "monitor set fork-events off",
        "monitor probe-mode per-file",
        "monitor count pf_probed",
        "continue",
        &cap("P", "monitor probes"),
        &cap("S", "monitor stats"),
        "continue",
    ];
    let out = run(&prog, &args, &script);
    let children = checked_children(&out, NC, KC);
    let pm = &marks_of(&out, "parent")[0];
    let parent = pid_of(pm);
    let calls: u64 = kv(pm, "calls").and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{out}"));
    assert!(calls >= T * M, "{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    let p = probe_in(&out, "P", "pf_probed", "count");
    let mut want = BTreeMap::from([(parent, calls)]);
    want.extend(children.iter().map(|&c| (c, KC)));
    assert_eq!(p.per_pid, want, "parent: every call its threads made ({calls}); each child {KC}\n{out}");
    assert_eq!(stat(&out, "children followed"), Some(NC as u64), "{out}");
    out
}

#[test]
fn per_file_probe_forks_from_a_multithreaded_parent() {
    multithreaded_fork_run();
}

#[test]
fn per_file_probe_forks_from_a_multithreaded_parent_repeatedly() {
    for _ in 0..12 {
        multithreaded_fork_run();
    }
}

#[test]
fn forks_from_a_multithreaded_parent_do_not_stop_the_world() {
    let out = multithreaded_fork_run();
    // None of the 6 forks stops the world. gdb's own stop at pf_end may (once): a joined
    // worker whose exit xol has not reaped yet is still a thread to stop then.
    let ws = stat(&out, "world stops").unwrap_or_else(|| panic!("{out}"));
    assert!(ws <= 1, "{ws} world stops for 6 forks\n{out}");
}

// ---------------------------------------------------------------------------------------
// 3 and 4. vfork + exec, and exec of the traced process itself.

fn libfix_probe() -> String {
    let lib = std::fs::canonicalize(libfix_path(FixtureOpts::NO_PIE)).unwrap();
    format!("monitor count {}:fix_add", lib.display())
}

#[test]
fn per_file_library_probe_follows_vfork_and_exec() {
    fixture("pf_leaf");
    let prog = fixture("pf_libexec");
    let count = libfix_probe();
    let script = [
        "break pf_end",
        count.as_str(),
        "continue",
        &cap("P", "monitor probes"),
        &cap("S", "monitor stats"),
        "continue",
    ];
    let (k1, k2, k3) = (3, 5, 4);
    let out = run(&prog, &["vfork", "3", "5", "4"], &script);
    let pre = &marks_of(&out, "pre")[0];
    let parent = pid_of(pre);
    assert_eq!(kv(pre, "sum"), Some(fix_sum(k1).to_string().as_str()), "{out}");
    let leaf = marks_of(&out, "leaf");
    assert_eq!(leaf.len(), 1, "{out}");
    let child = pid_of(&leaf[0]);
    assert_ne!(child, parent);
    assert_eq!(kv(&leaf[0], "sum"), Some(fix_sum(k2).to_string().as_str()), "{out}");
    assert!(out.has_mark("leaf-exit=0"), "{out}");
    assert!(out.has_mark(&format!("parent pid={parent} sum={}", fix_sum(k3))), "{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");

    let p = probe_in(&out, "P", "fix_add", "count");
    assert_eq!(p.mode, "per-file", "{p:?}");
    assert_eq!(
        p.per_pid,
        BTreeMap::from([(parent, k1 + k3), (child, k2)]),
        "the parent's own calls and the exec'd child's\n{out}"
    );
}

#[test]
fn per_file_library_probe_survives_exec_of_the_traced_process() {
    fixture("pf_leaf");
    let prog = fixture("pf_libexec");
    let count = libfix_probe();
    let script = [count.as_str(), "catch syscall exit_group", "continue", &cap("P", "monitor probes"), "continue"];
    let (k1, k2) = (3, 5);
    let out = run(&prog, &["exec", "3", "5"], &script);
    let pre = &marks_of(&out, "pre")[0];
    let pid = pid_of(pre);
    assert_eq!(kv(pre, "sum"), Some(fix_sum(k1).to_string().as_str()), "{out}");
    let leaf = marks_of(&out, "leaf");
    assert_eq!(leaf.len(), 1, "the exec'd program ran\n{out}");
    assert_eq!(pid_of(&leaf[0]), pid, "exec keeps the pid\n{out}");
    assert_eq!(kv(&leaf[0], "sum"), Some(fix_sum(k2).to_string().as_str()), "{out}");
    assert!(out.all_output().contains("exited normally"), "{out}");
    let p = probe_in(&out, "P", "fix_add", "count");
    assert_eq!(p.per_pid, BTreeMap::from([(pid, k1 + k2)]), "calls before and after the exec\n{out}");
}

// ---------------------------------------------------------------------------------------
// 5. A shell pipeline.

#[test]
fn per_file_libc_probe_counts_both_programs_of_a_pipeline() {
    let pipe = fixture("pf_pipe");
    let (ka, kb) = (7u64, 5u64);
    let cmd = format!("{p} a {ka} | {p} b {kb}", p = pipe.display());
    let count = format!("monitor count {}:puts", libc_path().display());
    let script = [
        count.as_str(),
        "catch syscall exit_group",
        "continue",
        &cap("P", "monitor probes"),
        &cap("S", "monitor stats"),
        "continue",
    ];
    let out = run(Path::new("/bin/sh"), &["-c", &cmd], &script);
    let a = marks_of(&out, "A");
    let b: Vec<String> = marks_of(&out, "B").into_iter().filter(|m| m.starts_with("B pid=")).collect();
    assert_eq!((a.len(), b.len()), (1, 1), "{out}");
    let (pa, pb) = (pid_of(&a[0]), pid_of(&b[0]));
    assert!(out.has_mark(&format!("B pid={pb} lines={ka} puts={kb}")), "B read every line of A\n{out}");
    for i in 0..kb {
        assert!(out.has_mark(&format!("B out={i}")), "{out}");
    }
    assert!(out.all_output().contains("exited normally"), "{out}");
    let p = probe_in(&out, "P", "puts", "count");
    assert_eq!(p.per_pid.get(&pa), Some(&ka), "A's puts calls\n{out}");
    assert_eq!(p.per_pid.get(&pb), Some(&kb), "B's puts calls\n{out}");
    assert_eq!(p.total, ka + kb, "nobody else calls puts (dash does not)\n{out}");
}

// ---------------------------------------------------------------------------------------
// 6. dlopen, dlclose, dlopen again elsewhere.

#[test]
fn per_file_probe_in_a_library_loaded_unloaded_and_reloaded() {
    let prog = fixture("pf_dlopen");
    let lib = std::fs::canonicalize(pf_plugin_path(FixtureOpts::NO_PIE)).unwrap();
    let count = format!("monitor count {}:pf_plugin_func", lib.display());
    let script = ["break pf_end", count.as_str(), "continue", &cap("P", "monitor probes"), "continue"];
    let (k1, k2) = (5u64, 7u64);
    let out = run(&prog, &["5", "7"], &script);
    let plug = |k: u64| -> u64 { (1..=k).map(|j| j * 5 + 2).sum() };
    assert!(out.has_mark(&format!("first sum={}", plug(k1))), "{out}");
    assert!(out.has_mark(&format!("second sum={}", plug(k2))), "{out}");
    assert!(out.has_mark("moved=yes"), "the second load must be at another address\n{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    let p = probe_in(&out, "P", "pf_plugin_func", "count");
    assert_eq!(p.total, k1 + k2, "calls through both loads\n{out}");
    assert_eq!(p.per_pid.len(), 1, "{out}");
}

// ---------------------------------------------------------------------------------------
// 7. gdb breakpoints in per-file mode.

#[test]
fn gdb_per_file_breakpoint_hit_in_children_is_counted_not_reported() {
    let prog = fixture("pf_forkn");
    let (n, k) = (4usize, 6u64);
    let script = [
        // gdb keeps its breakpoints inserted while stopped, so `monitor probes` lists them.
        "set breakpoint always-inserted on",
        "monitor probe-mode per-file",
        "break pf_probed",
        "continue",
        "echo ==STOP==\\n",
        "bt 1",
        "info inferiors",
        &cap("P", "monitor probes"),
        "delete",
        "continue",
    ];
    let out = run(&prog, &[&n.to_string(), &k.to_string()], &script);
    let children = checked_children(&out, n, k);
    let parent = pid_of(&marks_of(&out, "parent")[0]);
    assert!(out.has_mark(&format!("parent pid={parent} sum={}", probed_sum(k))), "{out}");
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    assert_eq!(out.stdout.matches("Breakpoint 1, ").count(), 1, "gdb stops once, in the parent\n{out}");
    let stop = section(&out.stdout, "STOP");
    assert!(stop.contains("pf_probed"), "stopped in pf_probed\n{out}");
    assert!(stop.contains(&format!("process {parent}")), "the stopped process is the parent\n{out}");
    let ps = gdb_probes_at(&out, "P", gdb_bp_addr(&out, 1));
    assert_eq!(ps.len(), 1, "{ps:#?}\n{out}");
    let p = &ps[0];
    let mut want = BTreeMap::from([(parent, 1)]);
    want.extend(children.iter().map(|&c| (c, k)));
    assert_eq!(p.per_pid, want, "children's hits counted; the parent's first hit reported\n{out}");
    assert_eq!(p.mode, "per-file", "{p:?}");
}

#[test]
fn gdb_per_file_breakpoint_keeps_child_hits_across_gdb_step_over() {
    let prog = fixture("pf_forkn");
    let (n, k) = (4usize, 6u64);
    let script = [
        "set breakpoint always-inserted on",
        "monitor probe-mode per-file",
        "break pf_probed",
        "continue",
        // gdb steps over the breakpoint (z0, vCont;s, Z0) and stops at the parent's 2nd call.
        "continue",
        &cap("P", "monitor probes"),
        "delete",
        "continue",
    ];
    let out = run(&prog, &[&n.to_string(), &k.to_string()], &script);
    let children = checked_children(&out, n, k);
    let parent = pid_of(&marks_of(&out, "parent")[0]);
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    let ps = gdb_probes_at(&out, "P", gdb_bp_addr(&out, 1));
    assert_eq!(ps.len(), 1, "{ps:#?}\n{out}");
    let mut want = BTreeMap::from([(parent, 2)]);
    want.extend(children.iter().map(|&c| (c, k)));
    assert_eq!(ps[0].per_pid, want, "the children's hits survive gdb's step-over in the parent\n{out}");
}

#[test]
fn deleting_a_gdb_breakpoint_keeps_a_counting_probe_at_the_same_place() {
    let prog = fixture("pf_forkn");
    let (n, k, pre) = (4usize, 6u64, 3u64);
    let script = [
        "set breakpoint always-inserted on",
        "monitor probe-mode per-file",
        "monitor count pf_probed",
        "break *pf_probed",
        "continue",
        &cap("P1", "monitor probes"),
        "delete",
        &cap("P2", "monitor probes"),
        "break pf_end",
        "continue",
        &cap("P3", "monitor probes"),
        "continue",
    ];
    let out = run(&prog, &[&n.to_string(), &k.to_string(), &pre.to_string()], &script);
    let children = checked_children(&out, n, k);
    let parent = pid_of(&marks_of(&out, "parent")[0]);
    assert!(out.has_mark("done") && out.all_output().contains("exited normally"), "{out}");
    assert_eq!(out.stdout.matches("Breakpoint 1, ").count(), 1, "{out}");

    // Stopped at the parent's first call: both probes saw that one hit.
    let c1 = probe_in(&out, "P1", "pf_probed", "count");
    assert_eq!(c1.per_pid, BTreeMap::from([(parent, 1)]), "{out}");
    let probed = symbol_addr(&prog, "pf_probed");
    let g1 = gdb_probes_at(&out, "P1", probed);
    assert_eq!(g1.len(), 1, "{out}");
    assert_eq!(g1[0].per_pid, BTreeMap::from([(parent, 1)]), "{out}");

    // After delete: the gdb probe is gone, the counting probe is still armed.
    assert!(gdb_probes_at(&out, "P2", probed).is_empty(), "gdb's probe removed\n{out}");
    let c2 = probe_in(&out, "P2", "pf_probed", "count");
    assert!(c2.armed >= 1, "the counting probe stays armed\n{out}");

    // Every call counted once, the stopped one included.
    let c3 = probe_in(&out, "P3", "pf_probed", "count");
    let mut want = BTreeMap::from([(parent, pre + k)]);
    want.extend(children.iter().map(|&c| (c, k)));
    assert_eq!(c3.per_pid, want, "the count keeps increasing after the delete\n{out}");
    assert_eq!(c3.id, c1.id);
}

// ---------------------------------------------------------------------------------------
// 8. Detach with followed children alive leaves no int3 anywhere.

/// The bytes of the non-PIE ELF file `elf` at virtual address `vaddr` (through its PT_LOAD
/// program headers).
fn elf_bytes_at(elf: &Path, vaddr: u64, len: usize) -> Vec<u8> {
    let d = std::fs::read(elf).unwrap();
    assert_eq!(&d[..4], b"\x7fELF");
    let u16_at = |o: usize| u16::from_le_bytes(d[o..o + 2].try_into().unwrap()) as usize;
    let u64_at = |o: usize| u64::from_le_bytes(d[o..o + 8].try_into().unwrap());
    let (phoff, phentsize, phnum) = (u64_at(0x20) as usize, u16_at(0x36), u16_at(0x38));
    for i in 0..phnum {
        let ph = phoff + i * phentsize;
        let p_type = u32::from_le_bytes(d[ph..ph + 4].try_into().unwrap());
        let (off, va, filesz) = (u64_at(ph + 8), u64_at(ph + 16), u64_at(ph + 32));
        if p_type == 1 && vaddr >= va && vaddr + len as u64 <= va + filesz {
            let o = (off + vaddr - va) as usize;
            return d[o..o + len].to_vec();
        }
    }
    panic!("{vaddr:#x} not in a PT_LOAD of {}", elf.display());
}

fn mem_bytes_at(pid: u32, vaddr: u64, len: usize) -> Vec<u8> {
    let mut f = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap_or_else(|e| panic!("/proc/{pid}/mem: {e}"));
    f.seek(SeekFrom::Start(vaddr)).unwrap();
    let mut b = vec![0; len];
    f.read_exact(&mut b).unwrap_or_else(|e| panic!("read /proc/{pid}/mem at {vaddr:#x}: {e}"));
    b
}

fn tracer_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("TracerPid:")?.trim().parse().ok())
}

fn log_marks(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.strip_prefix("MARK:").map(str::to_string))
        .collect()
}

#[test]
fn detach_with_live_followed_children_leaves_original_bytes() {
    let prog = fixture("pf_detach");
    let (n, k) = (3usize, 4u64);
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    let log = dir.path().join("log");
    let cfifo = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path that lives across the call.
    assert_eq!(unsafe { libc::mkfifo(cfifo.as_ptr(), 0o600) }, 0, "mkfifo {}", fifo.display());

    let probed = symbol_addr(&prog, "pf_probed");
    let hook = symbol_addr(&prog, "pf_child_hook");
    let ready = symbol_addr(&prog, "pf_ready");
    const LEN: usize = 8;
    let sites: Vec<(&str, u64, Vec<u8>)> = [("pf_probed", probed), ("pf_child_hook", hook), ("pf_ready", ready)]
        .into_iter()
        .map(|(what, a)| (what, a, elf_bytes_at(&prog, a, LEN)))
        .collect();

    // gdb is run by hand (not gdb_batch): the rig kills every process of a finished session,
    // and this program must outlive it.
    let server = shell_join(&[
        xol_bin().into_os_string(),
        "serve".into(),
        "--stdio".into(),
        "--".into(),
        prog.clone().into_os_string(),
        n.to_string().into(),
        k.to_string().into(),
        fifo.clone().into_os_string(),
        log.clone().into_os_string(),
    ]);
    let target = format!("target remote | {server}");
    let script = [
        "set confirm off",
        "set pagination off",
        "set sysroot /",
        "set breakpoint always-inserted on",
        target.as_str(),
        "monitor probe-mode per-file",
        "monitor count pf_probed",
        // Per-file gdb breakpoints: one only the children hit (counted, not reported), one
        // the parent stops at.
        "break *pf_child_hook",
        "break *pf_ready",
        "continue",
        &cap("P", "monitor probes"),
        "detach",
    ];
    let mut cmd = Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-iex", "set debuginfod enabled off"]);
    for c in script {
        cmd.arg("-ex").arg(c);
    }
    cmd.arg(&prog).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut gdb = ChildGuard::spawn(&mut cmd);
    let so = Collector::new(gdb.stdout.take().unwrap());
    let se = Collector::new(gdb.stderr.take().unwrap());
    let status = gdb.wait_timeout(Duration::from_secs(60));
    so.wait_eof(Duration::from_secs(10));
    se.wait_eof(Duration::from_secs(10));
    let out = GdbOutput {
        server: Server::XolStdio,
        stdout: so.text(),
        stderr: se.text(),
        status: status.unwrap_or_else(|| panic!("gdb timed out\n{}\n{}", so.text(), se.text())),
        server_output: String::new(),
        program_output: None,
    };
    let marks = log_marks(&log);
    let report = || format!("{out}\n--- program log ---\n{}", std::fs::read_to_string(&log).unwrap_or_default());

    let parent = marks.iter().find(|m| m.starts_with("parent-ready ")).map(|m| pid_of(m));
    let parent = parent.unwrap_or_else(|| panic!("the parent reached pf_ready\n{}", report()));
    let children: Vec<u32> = marks.iter().filter(|m| m.starts_with("child-ready ")).map(|m| pid_of(m)).collect();
    assert_eq!(children.len(), n, "{}", report());

    // Before the detach: the counting probe and gdb's per-file breakpoint were armed in all.
    let ps = parse_probes(section(&out.stdout, "P"));
    let count = ps.iter().find(|p| p.consumer == "count").unwrap_or_else(|| panic!("{}", report()));
    let mut want = BTreeMap::from([(parent, k)]);
    want.extend(children.iter().map(|&c| (c, k)));
    assert_eq!(count.per_pid, want, "{}", report());
    assert_eq!(count.armed, n as u64 + 1, "armed in the parent and every child\n{}", report());
    let gdbp = gdb_probes_at(&out, "P", hook);
    assert_eq!(gdbp.len(), 1, "{}", report());
    let want: BTreeMap<u32, u64> = children.iter().map(|&c| (c, 1)).collect();
    assert_eq!(gdbp[0].per_pid, want, "gdb's breakpoint hit once in each child\n{}", report());
    assert_eq!(gdbp[0].armed, n as u64 + 1, "{}", report());

    // After: everyone is still blocked (the parent on the fifo, the children on a pipe), no
    // longer traced, with the file's bytes at every probe address.
    let mut bad = Vec::new();
    for &pid in std::iter::once(&parent).chain(&children) {
        assert!(pid_alive(pid), "pid {pid} died after the detach\n{}", report());
        let tp = wait_until(Duration::from_secs(20), || tracer_pid(pid) == Some(0));
        assert!(tp, "pid {pid} still traced by {:?} after the detach\n{}", tracer_pid(pid), report());
        for (what, addr, file) in &sites {
            let (addr, file) = (*addr, file.clone());
            let mem = mem_bytes_at(pid, addr, LEN);
            if mem != file {
                bad.push(format!("pid {pid} {what} at {addr:#x}: memory {mem:02x?} file {file:02x?}"));
            }
        }
    }
    assert!(bad.is_empty(), "int3 left behind after the detach:\n{}\n{}", bad.join("\n"), report());

    // Release the parent; everyone finishes correctly.
    let mut w = std::fs::OpenOptions::new().write(true).open(&fifo).unwrap();
    w.write_all(b"go").unwrap();
    drop(w);
    let done = wait_until(Duration::from_secs(20), || log_marks(&log).iter().any(|m| m == "done"));
    let marks = log_marks(&log);
    assert!(done, "the program finishes after the detach\n{}", report());
    assert!(marks.contains(&format!("reaped={n} bad=0")), "{}", report());
    assert!(marks.contains(&format!("parent pid={parent} sum={}", 2 * probed_sum(k))), "{}", report());
    let sum = (2 * probed_sum(k)).to_string();
    let finished: Vec<&String> = marks.iter().filter(|m| m.starts_with("child ")).collect();
    assert_eq!(finished.len(), n, "{}", report());
    assert!(finished.iter().all(|m| kv(m, "sum") == Some(sum.as_str())), "{}", report());
    drop(gdb);
}

// ---------------------------------------------------------------------------------------
// 9. What `monitor probes` says.

#[test]
fn monitor_probes_labels_gdb_breakpoints_with_their_real_state() {
    let prog = fixture_with("countthreads", FixtureOpts::PIE);
    let script = [
        &cap("EMPTY", "monitor probes"),
        "monitor probe-mode per-file",
        "break counted",
        "continue",
        // gdb took its breakpoints out when the program stopped.
        &cap("REMOVED", "monitor probes"),
        "set breakpoint always-inserted on",
        "continue",
        &cap("INSERTED", "monitor probes"),
        "delete",
        "continue",
    ];
    let out = run(&prog, &["3", "1", "0"], &script);
    assert!(out.has_mark("done"), "{out}");
    assert_eq!(section(&out.stdout, "EMPTY").trim(), "no probes", "nothing else\n{out}");
    let addr = gdb_bp_addr(&out, 1);
    // (gdb's own shared-library event breakpoint is listed too; it is not looked at here.)
    let here = |name: &str| -> Vec<Probe> {
        parse_probes(section(&out.stdout, name)).into_iter().filter(|p| p.location == format!("{addr:#x}")).collect()
    };
    let removed = here("REMOVED");
    assert_eq!(removed.len(), 1, "{removed:#?}\n{out}");
    let r = &removed[0];
    assert_eq!((r.consumer.as_str(), r.mode.as_str(), r.armed, r.total), ("gdb", "per-file", 0, 1), "{r:?}\n{out}");
    assert_eq!(r.location, format!("{addr:#x}"), "{out}");
    assert_eq!(r.note, "removed by gdb while the program is stopped", "{out}");
    let inserted = here("INSERTED");
    assert_eq!(inserted.len(), 1, "{inserted:#?}\n{out}");
    let i = &inserted[0];
    assert_eq!((i.addr, i.armed, i.total), (Some(addr), 1, 2), "armed while gdb keeps it inserted\n{out}");
    assert!(!out.all_output().contains("slot area"), "{out}");
}
