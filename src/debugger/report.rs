//! Typed reports of the session, which every front-end formats its own way: where each probe
//! stands ([`ProbeReport`]) and the counters of the core ([`Stats`]).

use crate::types::{ClientId, Pid, VirtAddr};

/// Where a probe stands, beyond its insertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeState {
    /// Armed (an `int3`) in at least one traced process.
    Armed,
    /// Per-file, waiting for a traced process to map its file (`file`: as the user named it,
    /// or the path); `error`: why the last mapped file of that name could not take it.
    Pending {
        /// The file.
        file: String,
        /// Why a mapped file of that name could not take the probe, if one could not.
        error: Option<String>,
    },
    /// A client's per-file breakpoint that the client took out of its own process
    /// ([`super::Debugger::withdraw_probe`]; gdb takes its breakpoints out whenever the program stops)
    /// while it stays armed in the children xol follows.
    Withdrawn,
    /// Per-file, its file known, but no traced process maps it now (they all ended, or
    /// unloaded it).
    Unmapped {
        /// The file's path.
        file: String,
    },
    /// Per-process, and its process is gone.
    ProcessGone(Pid),
}

impl ProbeState {
    /// True while the probe waits for its file (never armed yet).
    pub fn is_pending(&self) -> bool {
        matches!(self, ProbeState::Pending { .. })
    }
}

impl std::fmt::Display for ProbeState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProbeState::Armed => write!(f, "armed"),
            ProbeState::Pending { file, error: None } => write!(f, "pending until {file} is mapped"),
            ProbeState::Pending { file, error: Some(e) } => {
                write!(f, "pending until {file} is mapped; the {file} mapped so far cannot take it: {e}")
            }
            ProbeState::Withdrawn => write!(f, "removed by its client while the program is stopped"),
            ProbeState::Unmapped { file } => write!(f, "no traced process maps {file} now"),
            ProbeState::ProcessGone(pid) => write!(f, "process {pid} has ended"),
        }
    }
}

/// A probe as `monitor probes` and `xol count` show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeReport {
    /// Its id.
    pub id: u32,
    /// The location as given (a gdb breakpoint: its address).
    pub location: String,
    /// A client's breakpoint made per-file (hits reported to that client), not a counting probe.
    pub reports_to: Option<ClientId>,
    /// Per-file (armed wherever its file is mapped) or per-process.
    pub per_file: bool,
    /// Armed, pending, withdrawn by its client...
    pub state: ProbeState,
    /// Where it is armed: (process, address).
    pub armed: Vec<(Pid, VirtAddr)>,
    /// The instruction's mnemonic where armed (empty otherwise).
    pub mnemonic: String,
    /// The plan kind (emulate, boosted, out-of-line, refused) where armed ("-" otherwise).
    pub plan: String,
    /// Why the plan was refused (the probe is then stepped over in line), if it was.
    pub refusal: Option<String>,
    /// Hits per process (processes that ended included).
    pub hits: Vec<(Pid, u64)>,
}

impl ProbeReport {
    /// Hits summed over the processes.
    pub fn total(&self) -> u64 {
        self.hits.iter().map(|(_, n)| n).sum()
    }
}

/// The counters of the core at one moment, for `monitor stats`, `xol count` and the REPL.
/// [`Stats`]'s `Display` is the one text form (one `label: value` line per counter); machine
/// readers use the fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stats {
    /// Forked children handled (vfork included).
    pub forks_handled: u64,
    /// Forked children kept traced for per-file probes.
    pub children_followed: u64,
    /// The maps cache: lookups, cache hits, kernel queries, full reads.
    pub maps: crate::maps::MapsStats,
    /// Traps and the resume paths taken past them.
    pub steps: super::StepStats,
    /// How threads go past breakpoints now.
    pub step_mode: super::StepMode,
    /// The displaced-stepping slot area of the process asked about (start, length), once mapped.
    pub slot_area: Option<(u64, u64)>,
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (m, st) = (&self.maps, &self.steps);
        writeln!(f, "forks handled: {}", self.forks_handled)?;
        writeln!(f, "children followed: {}", self.children_followed)?;
        writeln!(
            f,
            "maps: lookups {}, cache hits {}, kernel queries {}, full maps reads {}",
            m.lookups, m.cache_hits, m.kernel_queries, m.full_reads
        )?;
        writeln!(f, "breakpoint traps: {}", st.traps)?;
        writeln!(f, "world stops: {}", st.world_stops)?;
        writeln!(f, "stale traps: {}", st.stale_traps)?;
        writeln!(
            f,
            "conditions evaluated: {}, false (not reported): {}",
            st.conditions_evaluated, st.conditions_false
        )?;
        writeln!(
            f,
            "resumed by emulation: {}, boosted: {}, out-of-line steps: {}, in-line step-overs: {}, rewound: {}",
            st.emulated, st.boosted, st.out_of_line, st.in_line, st.rewound
        )?;
        let mode = match self.step_mode {
            super::StepMode::Displaced => "displaced",
            super::StepMode::InLine => "in-line",
        };
        write!(f, "step mode: {mode}")?;
        if let Some((b, l)) = self.slot_area {
            write!(f, "\ndisplaced-stepping slot area: {:#x}-{:#x}", b, b.wrapping_add(l))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_print_one_counter_per_line() {
        let s = Stats {
            forks_handled: 3,
            children_followed: 2,
            maps: crate::maps::MapsStats { lookups: 9, cache_hits: 7, kernel_queries: 2, full_reads: 1 },
            steps: super::super::StepStats { traps: 5, emulated: 4, in_line: 1, world_stops: 1, ..Default::default() },
            step_mode: super::super::StepMode::Displaced,
            slot_area: Some((0x7000, 0x1000)),
        };
        let text = s.to_string();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "forks handled: 3");
        assert_eq!(lines[1], "children followed: 2");
        assert_eq!(lines[2], "maps: lookups 9, cache hits 7, kernel queries 2, full maps reads 1");
        assert_eq!(lines[3], "breakpoint traps: 5");
        assert!(lines.contains(&"world stops: 1"), "{text}");
        assert!(text
            .contains("resumed by emulation: 4, boosted: 0, out-of-line steps: 0, in-line step-overs: 1, rewound: 0"));
        assert_eq!(lines.last(), Some(&"displaced-stepping slot area: 0x7000-0x8000"));
        assert!(!Stats { slot_area: None, ..s }.to_string().contains("slot area"));
    }
}
