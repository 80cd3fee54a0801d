//! `xol count`: the standalone counting front-end. It runs a program under counting probes
//! (per-process, or per-file with `--per-file` or a `FILE:SYMBOL` location) and prints the
//! hits per location and per process when the program ends, in the spirit of
//! `bpftrace -e 'uprobe:FILE:SYM { @[pid] = count(); }'` — on ptrace, with displaced stepping.
//!
//! `--churn MS` unregisters and re-registers every probe every MS milliseconds while the
//! program runs (`--churn-cycles N` times, then leaves them unregistered): a stress of the
//! probe table's ordering rules (registration publishes then writes the `int3`s, removal
//! restores the bytes then unpublishes; a trap on a removed probe is a stale trap, rewound).
//!
//! Address randomisation is turned off for the program (as gdb and `xol serve` do), so an
//! address gdb showed is the address in this run; `--aslr` keeps it on.
//!
//! The counts go to stderr (the program's own output stays on stdout, as with `perf stat`);
//! `--json` makes them one JSON object; `-o FILE` writes either to FILE (`-o -`: stdout, shared
//! with the program's output, so a program that prints needs a file for `jq`).
//!
//! SIGINT, SIGTERM or SIGHUP to xol (Ctrl-C reaches the whole foreground process group, the
//! program included): xol detaches cleanly (every `int3` restored), prints what was counted,
//! passes the same signal on to the program it launched (as `strace` does: a program that
//! handles or ignores it goes on, untraced), and exits with 128 + the signal (130, 143, 129).
//!
//! Uses only the core facade.

use crate::debugger::{Action, Debugger, Launch, Location, StopKind, WaitOutcome};

use crate::types::Pid;
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::time::Duration;

/// What `xol count` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct CountOptions {
    /// Locations: `0xADDR`, a function of the program (an ELF symbol, or a function of its
    /// debug information: every inlined copy counts), `FILE:SYMBOL`, `FILE:0xOFFSET`,
    /// `FILE:LINE` (a source line: gdb's `break FILE:LINE` places).
    pub locations: Vec<String>,
    /// Make every probe per-file (armed in forked children, exec'd programs, libraries).
    pub per_file: bool,
    /// Re-register every probe this often while the program runs.
    pub churn: Option<Duration>,
    /// How many churn cycles (then the probes stay unregistered).
    pub churn_cycles: u64,
    /// Print the result as one JSON object.
    pub json: bool,
    /// Write the report to this file instead of stderr (JSON or text); `-` is stdout.
    pub output: Option<std::path::PathBuf>,
    /// Keep address randomisation on (by default it is turned off, as gdb does).
    pub aslr: bool,
    /// Force the trap plan (an `int3` per probe, a ptrace stop per hit). By default a probe
    /// takes the jump plan where its site allows it (a jump pad: no trap per hit) and the
    /// report says which plan counted and, for the trap plan, why.
    pub trap: bool,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// Run `xol count`; returns the exit code (the program's, or 2 for a usage or start error).
pub fn run(opts: CountOptions) -> i32 {
    match run_inner(&opts) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xol count: {e}");
            2
        }
    }
}

fn run_inner(opts: &CountOptions) -> Result<i32, String> {
    if opts.program.is_empty() {
        return Err("name the program to run after `--`".into());
    }
    if opts.locations.is_empty() {
        return Err("name at least one location to count (0xADDR, SYMBOL, FILE:SYMBOL, FILE:LINE)".into());
    }
    // Every location is parsed before the program runs: a typo costs no run.
    let locations = opts
        .locations
        .iter()
        .map(|l| l.parse::<Location>().map(|p| (l.clone(), p)).map_err(|e| format!("cannot count {l}: {e}")))
        .collect::<Result<Vec<_>, String>>()?;
    Debugger::init_signals().map_err(|e| format!("signals: {e}"))?;
    let mut dbg = Debugger::new();
    if opts.per_file {
        dbg.set_probe_mode(crate::debugger::ProbeMode::PerFile);
    }
    // Churn re-registers probes while the program runs: jump patches are written and removed
    // with the program stopped, so churn uses the trap plan.
    dbg.set_jump_plan(!opts.trap && opts.churn.is_none());
    let spec = Launch { aslr: opts.aslr, ..Launch::new(opts.program.clone()) };
    let pid = dbg.launch(&spec).map_err(|e| format!("cannot start {:?}: {e}", opts.program[0]))?;
    // Probe ids of each location, over churn cycles: hits are summed per location.
    let mut ids: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    let register = |dbg: &mut Debugger, ids: &mut BTreeMap<String, Vec<u32>>| -> Result<Vec<u32>, String> {
        let mut now = Vec::new();
        for (loc, parsed) in &locations {
            // A FILE:LINE or an inlined function can be several places: one probe each,
            // their hits summed under the location.
            let new = dbg.count_sites(pid, parsed).map_err(|e| format!("cannot count {loc}: {e}"))?;
            ids.entry(loc.clone()).or_default().extend(&new);
            now.extend(new);
        }
        Ok(now)
    };
    let mut live = match register(&mut dbg, &mut ids) {
        Ok(l) => l,
        Err(e) => {
            let _ = dbg.kill(pid);
            return Err(e);
        }
    };
    dbg.resume(pid, &[], Some(Action::CONTINUE)).map_err(|e| e.to_string())?;
    let mut cycles = 0u64;
    let mut churning = opts.churn.is_some() && opts.churn_cycles > 0;
    let code = loop {
        let outcome = match (churning, opts.churn) {
            (true, Some(t)) => dbg.wait_timeout(None, t),
            _ => dbg.wait(None),
        }
        .map_err(|e| e.to_string())?;
        match outcome {
            WaitOutcome::Timeout => {
                // Unregister (bytes restored first, then unpublished) and register again
                // (published first, then the int3s), with the program running.
                for id in live.drain(..) {
                    dbg.remove_probe(id).map_err(|e| e.to_string())?;
                }
                cycles += 1;
                if cycles >= opts.churn_cycles {
                    churning = false;
                    eprintln!("xol count: churn done after {cycles} cycles; probes unregistered");
                } else {
                    live = register(&mut dbg, &mut ids)?;
                }
            }
            WaitOutcome::Stopped(ev) if ev.pid == pid => match ev.kind {
                StopKind::Exited(c) => break c,
                StopKind::Killed(s) => {
                    eprintln!("xol count: the program was killed by signal {s}");
                    break 128 + s;
                }
                StopKind::Signal(s) => dbg
                    .resume(pid, &[(ev.tid, Action { step: false, sig: s, range: None })], Some(Action::CONTINUE))
                    .map_err(|e| e.to_string())?,
                _ => dbg.resume(pid, &[], Some(Action::CONTINUE)).map_err(|e| e.to_string())?,
            },
            WaitOutcome::Stopped(_) => {}
            WaitOutcome::NoProcesses => break 0,
            // (Not subscribed to notices.)
            WaitOutcome::Input | WaitOutcome::Notice(_) => {}
            WaitOutcome::Terminate => {
                let sig = dbg.terminate_signal().unwrap_or(15);
                // Bytes restored and every thread released before anything is printed; then
                // the program gets the signal too (it has left xol: delivered as natively).
                dbg.detach_all();
                report(&dbg, &ids, opts);
                if let Err(e) = dbg.signal_detached(pid, sig) {
                    log::info!("passing signal {sig} on to {pid}: {e}");
                }
                eprintln!("xol count: signal {sig}: detached; the signal was passed on to process {pid}");
                return Ok(128 + sig);
            }
        }
    };
    report(&dbg, &ids, opts);
    dbg.release_all();
    Ok(code)
}

fn report(dbg: &Debugger, ids: &BTreeMap<String, Vec<u32>>, opts: &CountOptions) {
    let text = render(dbg, ids, opts.json);
    let written = match &opts.output {
        Some(path) if path.as_os_str() == "-" => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|_| out.flush()).map_err(|e| format!("stdout: {e}"))
        }
        Some(path) => std::fs::write(path, &text).map_err(|e| format!("{}: {e}", path.display())),
        None => {
            eprint!("{text}");
            Ok(())
        }
    };
    if let Err(e) = written {
        eprintln!("xol count: cannot write the report: {e}");
    }
}

/// The report: one line per location (`LOC: N hits (PID:N ...)`), or one JSON object.
fn render(dbg: &Debugger, ids: &BTreeMap<String, Vec<u32>>, json: bool) -> String {
    // Hits of every probe id ever registered (probes removed by churn included).
    let reports = dbg.probe_reports();
    let mut per: BTreeMap<&str, (BTreeMap<Pid, u64>, Option<String>)> = BTreeMap::new();
    for (loc, list) in ids {
        let e = per.entry(loc.as_str()).or_default();
        for id in list {
            for (pid, n) in dbg.probe_hits(*id) {
                *e.0.entry(pid).or_insert(0) += n;
            }
            // A probe that never found its file says so.
            if let Some(r) = reports.iter().find(|r| r.id == *id) {
                if r.state.is_pending() && r.hits.is_empty() {
                    e.1 = Some(format!("never armed: {}", r.state));
                }
            }
            // With --jump: which plan counted, and why not the jump if it was refused.
            match dbg.jump_plan_of(*id) {
                Some(None) => e.1 = Some("jump plan".into()),
                Some(Some(why)) => e.1 = Some(format!("trap plan: {why}")),
                None => {}
            }
        }
    }
    let stats = dbg.stats(None);
    let st = stats.steps;
    if json {
        let locations: Vec<serde_json::Value> = per
            .iter()
            .map(|(loc, (hits, note))| {
                let per_pid: serde_json::Map<String, serde_json::Value> =
                    hits.iter().map(|(p, n)| (p.0.to_string(), (*n).into())).collect();
                let mut o = serde_json::json!({
                    "location": loc,
                    "total": hits.values().sum::<u64>(),
                    "per_pid": per_pid,
                });
                if let Some(n) = note {
                    o["note"] = n.clone().into();
                }
                o
            })
            .collect();
        let out = serde_json::json!({
            "locations": locations,
            "traps": st.traps,
            "stale_traps": st.stale_traps,
            "emulated": st.emulated,
            "boosted": st.boosted,
            "out_of_line": st.out_of_line,
            "in_line": st.in_line,
            "rewound": st.rewound,
            "forks": stats.forks_handled,
            "children_followed": stats.children_followed,
        });
        return format!("{out}\n");
    }
    let mut text = String::new();
    for (loc, (hits, note)) in &per {
        let total: u64 = hits.values().sum();
        let pids: Vec<String> = hits.iter().map(|(p, n)| format!("{p}:{n}")).collect();
        let note = note.as_ref().map(|n| format!("; {n}")).unwrap_or_default();
        let pids = if pids.is_empty() { "none".into() } else { pids.join(" ") };
        text.push_str(&format!("{loc}: {total} hits ({pids}{note})\n"));
    }
    text
}
