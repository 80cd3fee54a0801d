//! The `monitor` commands (`qRcmd`) of both gdb front-ends: one implementation, written to a
//! line sink, so `--rsp xol` and `--rsp gdbstub` answer every command identically.
//!
//! Uses only the session API; what a command changes in the front-end itself (ending the
//! session, packet logging) comes back as an [`Effect`].

use super::breakpoints::GdbBreakpoints;
use crate::debugger::{Debugger, ProbeMode, StepMode};
use crate::types::Pid;

/// What a monitor command works on.
pub struct MonitorCtx<'a> {
    /// The core.
    pub dbg: &'a mut Debugger,
    /// The process gdb debugs.
    pub pid: Option<Pid>,
    /// gdb's breakpoints (to name owners).
    pub bps: &'a GdbBreakpoints,
}

/// What the front-end has to do after a command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Nothing.
    None,
    /// `monitor exit`: end the xol session.
    Exit,
    /// `monitor set remote-debug 0|1`: log packets or not.
    RemoteDebug(bool),
    /// `monitor set fork-events on|off`: report forks to gdb (`fork-events+`), or let xol
    /// handle them itself (children detached, or followed for per-file probes, without
    /// stopping the world). The front-end says what it did.
    ForkEvents(bool),
}

macro_rules! outln {
    ($out:expr, $($t:tt)*) => {
        $out(&format!($($t)*))
    };
}

/// Run one monitor command; each line of its output goes to `out` (without the newline).
pub fn run(ctx: &mut MonitorCtx<'_>, cmd: &str, out: &mut dyn FnMut(&str)) -> Effect {
    let mut effect = Effect::None;
    let words: Vec<&str> = cmd.split_whitespace().collect();
    match words.as_slice() {
        ["exit"] => {
            return Effect::Exit;
        }
        ["help"] => {
            outln!(out, "The following monitor commands are supported:");
            for (cmd, what) in MONITOR_HELP {
                outln!(out, "  {cmd:<34} -- {what}");
            }
        }
        ["breakpoints"] => match ctx.pid {
            Some(pid) => {
                for (a, owners) in ctx.dbg.breakpoints(pid) {
                    let o: Vec<String> = owners.iter().map(|o| ctx.bps.owner_label(*o)).collect();
                    outln!(out, "{a}  owners: {}", o.join(","));
                }
            }
            None => outln!(out, "no process"),
        },
        ["threads"] => match ctx.pid {
            Some(pid) => {
                for t in ctx.dbg.threads(pid) {
                    outln!(out, "{t} {}", ctx.dbg.thread_name(pid, t).unwrap_or_default());
                }
            }
            None => outln!(out, "no process"),
        },
        ["stats"] => {
            for line in ctx.dbg.stats(ctx.pid).to_string().lines() {
                outln!(out, "{line}");
            }
        }
        ["count", loc] => match ctx.pid {
            Some(pid) => match loc.parse().map_err(Into::into).and_then(|l| ctx.dbg.count(pid, &l)) {
                Ok(id) => match ctx.dbg.probe_report(id) {
                    Some(p) => outln!(out, "{}", count_reply(&p)),
                    None => outln!(out, "probe {id}"),
                },
                Err(e) => outln!(out, "cannot count {loc}: {e}"),
            },
            None => outln!(out, "no process"),
        },
        ["uncount", loc] => match ctx.pid {
            Some(pid) => match loc.parse().map_err(Into::into).and_then(|l| ctx.dbg.uncount(pid, &l)) {
                Ok(0) => outln!(out, "no probe at {loc}"),
                Ok(n) => outln!(out, "removed {n} probe(s) at {loc}"),
                Err(e) => outln!(out, "cannot remove the probe at {loc}: {e}"),
            },
            None => outln!(out, "no process"),
        },
        ["probes"] => {
            let probes = ctx.dbg.probe_reports();
            if probes.is_empty() {
                outln!(out, "no probes");
            }
            for p in probes {
                outln!(out, "{}", super::breakpoints::probe_line(&p));
            }
        }
        ["probe-mode"] => {
            let m = match ctx.dbg.probe_mode() {
                ProbeMode::PerFile => "per-file",
                ProbeMode::PerProcess => "per-process",
            };
            outln!(out, "probe mode: {m}");
        }
        ["probe-mode", m] => match *m {
            "per-file" => {
                ctx.dbg.set_probe_mode(ProbeMode::PerFile);
                outln!(out, "probe mode: per-file (new breakpoints and counting probes are armed in every traced process that maps their file)");
            }
            "per-process" => {
                ctx.dbg.set_probe_mode(ProbeMode::PerProcess);
                outln!(out, "probe mode: per-process");
            }
            _ => outln!(out, "probe-mode is per-file or per-process"),
        },
        ["set", "step-mode"] => {
            let mode = match ctx.dbg.step_mode() {
                StepMode::Displaced => "displaced",
                StepMode::InLine => "in-line",
            };
            outln!(out, "step mode: {mode} (monitor set step-mode displaced|in-line)");
        }
        ["set"] => {
            outln!(out, "usage: monitor set step-mode displaced|in-line, monitor set debug 0|1");
        }
        ["set", "fork-events", v @ ("on" | "off")] => effect = Effect::ForkEvents(*v == "on"),
        ["set", "fork-events", ..] => outln!(out, "usage: monitor set fork-events on|off"),
        ["set", "step-mode", m] => match *m {
            "displaced" => {
                ctx.dbg.set_step_mode(StepMode::Displaced);
                outln!(out, "step mode: displaced");
            }
            "in-line" | "inline" => {
                ctx.dbg.set_step_mode(StepMode::InLine);
                outln!(out, "step mode: in-line");
            }
            _ => outln!(out, "step-mode is displaced or in-line"),
        },
        ["set", what @ ("debug" | "remote-debug"), v] => {
            let on = !matches!(*v, "0" | "off" | "none");
            if *what == "debug" {
                log::set_max_level(if on { log::LevelFilter::Debug } else { log::LevelFilter::Warn });
            } else {
                effect = Effect::RemoteDebug(on);
            }
            let which = if *what == "debug" { "Debug" } else { "Protocol debug" };
            outln!(out, "{which} output {}.", if on { "enabled" } else { "disabled" });
        }
        ["set", "debug-format", v] => {
            let on = *v != "none";
            outln!(out, "All extra debug format options {}.", if on { "enabled" } else { "disabled" });
        }
        ["set", "libthread-db-search-path", ..] => {}
        ["count"] | ["uncount"] => {
            outln!(
                out,
                "usage: monitor {} LOCATION (0xADDR, SYMBOL, FILE:SYMBOL or FILE:0xOFFSET); see \"monitor help\"",
                words[0]
            );
        }
        _ => {
            outln!(out, "Unknown monitor command \"{}\".", cmd.trim());
            outln!(out, "Type \"monitor help\" for the commands xol supports.");
        }
    }
    effect
}

/// `monitor help`: every command with what it does.
const MONITOR_HELP: [(&str, &str); 12] = [
    ("exit", "end the xol session (kills launched, detaches attached)"),
    ("breakpoints", "list xol's breakpoint insertions and their owners"),
    ("threads", "list threads with their names"),
    ("stats", "counters of the core"),
    ("count 0xADDR | SYMBOL", "count hits at a place of this process, without stopping"),
    ("count FILE:SYMBOL | FILE:0xOFFSET", "a per-file counting probe (e.g. libc.so.6:malloc)"),
    ("uncount LOCATION", "remove the counting probes at LOCATION"),
    ("probes", "list probes: location, plan, hits per process"),
    ("probe-mode [per-file|per-process]", "show or set what new breakpoints and probes are"),
    ("set step-mode [displaced|in-line]", "show or set how threads go past breakpoints"),
    ("set fork-events on|off", "report forks to gdb (catch fork, follow-fork-mode) or handle them in xol"),
    ("set debug 0|1", "xol's own logging to stderr"),
];

/// The answer to `monitor count`: where the new probe is armed and how hits go past it, or
/// what it waits for.
fn count_reply(p: &crate::debugger::ProbeReport) -> String {
    let mode = if p.per_file { "per-file" } else { "per-process" };
    match p.armed.first() {
        Some((_, a)) => {
            let n = p.armed.len();
            let plan = match &p.refusal {
                Some(r) => format!("{} ({r})", p.plan),
                None => p.plan.clone(),
            };
            let named = if p.location == a.to_string() { String::new() } else { format!(" ({})", p.location) };
            format!(
                "probe {} at {a}{named}: {plan} {}, {mode}, armed in {n} place{}",
                p.id,
                p.mnemonic,
                if n == 1 { "" } else { "s" }
            )
        }
        None => format!("probe {} ({}): {}, {mode}", p.id, p.location, p.state),
    }
}
