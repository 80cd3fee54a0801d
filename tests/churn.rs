//! The probe table under stress: probes are unregistered and registered again every
//! millisecond (`xol count --churn`) while two threads of the inferior call the probed
//! functions as fast as they can (fixture `churn`: one emulated, one stepped out of line).
//! Every result the program computes stays right, no stray SIGTRAP is delivered, nothing
//! crashes, and after the last unregistration the code holds no `int3` of xol's.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(60);

fn parse_hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim_start_matches("0x"), 16).unwrap_or_else(|_| panic!("bad address {s:?}"))
}

#[test]
fn churning_probes_while_two_threads_hit_them() {
    let prog = fixture_with("churn", FixtureOpts::PIE);
    let mut cmd = Command::new(xol_bin());
    cmd.args(["count", "--churn", "1", "--churn-cycles", "300", "--json", "f_emul", "f_step", "--"])
        .arg(&prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut stdin = g.stdin.take().expect("stdin");
    let mut out = LineReader::new(g.stdout.take().expect("stdout"));
    let mut err = LineReader::new(g.stderr.take().expect("stderr"));

    let start = out.wait_for("MARK:start", T).unwrap_or_else(|e| panic!("no start line: {e}"));
    let field = |k: &str| start.split_whitespace().find_map(|w| w.strip_prefix(k)).unwrap_or_else(|| panic!("{start}"));
    let pid: u32 = field("pid=").parse().expect("pid");
    let addrs = [parse_hex(field("f_emul=")), parse_hex(field("f_step="))];

    err.wait_for("churn done", T).unwrap_or_else(|e| panic!("the churn never finished: {e}\n{}", err.text()));
    // The program is still running, probes unregistered: its code must be its own again.
    let bytes = std::fs::read(&prog).expect("read fixture");
    let base = pie_load_base(pid, &prog).expect("load base");
    let mem = std::fs::File::open(format!("/proc/{pid}/mem")).expect("open mem");
    for a in addrs {
        let mut b = [0u8; 1];
        std::os::unix::fs::FileExt::read_exact_at(&mem, &mut b, a).expect("read code");
        let off = xol::symbols::vaddr_to_offset(&bytes, a - base).expect("elf").expect("in a segment") as usize;
        assert_ne!(b[0], 0xcc, "an int3 was left at {a:#x}");
        assert_eq!(b[0], bytes[off], "code at {a:#x} differs from the file");
    }

    writeln!(stdin, "stop").expect("write stop");
    drop(stdin);
    let status = g.wait_timeout(T).unwrap_or_else(|| panic!("xol count did not finish"));
    let stdout = out.read_to_eof(T).join("\n");
    let stderr = err.read_to_eof(T).join("\n");
    let all = format!("{}\n{stdout}\n{stderr}", out.text());
    assert!(all.contains("MARK:ok"), "every result right, no stray SIGTRAP:\n{all}");
    assert!(status.success(), "the program exited 0 ({status:?}):\n{all}");
    // `--json` writes the report where the text report goes: stderr.
    let json = stderr.lines().find(|l| l.starts_with('{')).unwrap_or_else(|| panic!("no JSON report\n{all}"));
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{e}: {json}"));
    for loc in ["f_emul", "f_step"] {
        let l = v["locations"].as_array().and_then(|ls| ls.iter().find(|l| l["location"] == loc));
        let total = l.and_then(|l| l["total"].as_u64()).unwrap_or_else(|| panic!("{json}"));
        assert!(total > 0, "{loc} was hit while armed: {json}");
    }
    eprintln!("{json}");
}

#[test]
fn count_front_end_errors_are_clear() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let o = run_with_timeout(
        {
            let mut c = Command::new(xol_bin());
            c.args(["count", "no_such_symbol", "--"]).arg(&prog);
            c
        },
        T,
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("cannot count no_such_symbol") && e.contains("no symbol"), "{e}");
    let o = run_with_timeout(
        {
            let mut c = Command::new(xol_bin());
            c.args(["count", "main", "--", "/nonexistent/prog"]);
            c
        },
        T,
    );
    let e = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{e}");
    assert!(e.contains("cannot start"), "{e}");
}

#[test]
fn count_front_end_counts_children_per_file() {
    let prog = fixture_with("forker", FixtureOpts::PIE);
    let o = run_with_timeout(
        {
            let mut c = Command::new(xol_bin());
            c.args(["count", "--per-file", "child_work", "parent_work", "--"]).arg(&prog);
            c
        },
        T,
    );
    let e = String::from_utf8_lossy(&o.stderr);
    let s = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{s}{e}");
    assert!(s.contains("MARK:done"), "{s}{e}");
    let line =
        |loc: &str| e.lines().find(|l| l.starts_with(&format!("{loc}: "))).unwrap_or_else(|| panic!("{e}")).to_string();
    assert!(line("child_work").starts_with("child_work: 1 hits ("), "the child's one call: {e}");
    assert!(line("parent_work").starts_with("parent_work: 1 hits ("), "the parent's one call: {e}");
}
