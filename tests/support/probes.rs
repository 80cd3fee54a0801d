//! One reader of `monitor probes` output for every test: each line parsed into a [`Probe`].

use std::collections::BTreeMap;

/// One line of `monitor probes`:
/// `ID KIND LOCATION at ADDR[,ADDR...]|- [mnemonic|state] plan KIND hits TOTAL (PID:N ...|none) MODE armed in K`
/// (KIND `count` or `gdb-breakpoint`, kept here as the consumer `count` / `gdb`).
#[derive(Clone, Debug)]
pub struct Probe {
    pub id: u64,
    pub location: String,
    pub addr: Option<u64>,
    /// `[...]` after the address: the instruction, or the state of a probe armed nowhere.
    pub note: String,
    pub total: u64,
    pub per_pid: BTreeMap<u32, u64>,
    /// The plan kind (`emulate`, `boosted`, `out-of-line`, `refused`, `-`).
    pub plan: String,
    pub mode: String,
    pub consumer: String,
    pub armed: u64,
}

pub fn parse_probe_line(line: &str) -> Option<Probe> {
    let l = line.trim();
    let (id, rest) = l.split_once(' ')?;
    let id: u64 = id.parse().ok()?;
    let (kind, rest) = rest.split_once(' ')?;
    let consumer = match kind {
        "count" => "count",
        "gdb-breakpoint" => "gdb",
        _ => return None,
    }
    .to_string();
    let plan_i = rest.find(" plan ")?;
    let hits_i = rest.find(" hits ")?;
    // `LOCATION at 0xADDR,... [mnemonic]` or `LOCATION at - [state]` (LOCATION may hold " at ").
    let (head, note) = rest[..plan_i].split_once(" [")?;
    let note = note.strip_suffix(']')?.to_string();
    let (location, addr) = head.rsplit_once(" at ")?;
    let addr = addr.split(',').next()?.strip_prefix("0x").and_then(|a| u64::from_str_radix(a, 16).ok());
    let location = location.to_string();
    let plan = rest[plan_i + " plan ".len()..].split_whitespace().next()?.to_string();
    let after = &rest[hits_i + " hits ".len()..];
    let (total, after) = after.split_once(' ')?;
    let total: u64 = total.parse().ok()?;
    let after = after.strip_prefix('(')?;
    let (pids, after) = after.split_once(')')?;
    let mut per_pid = BTreeMap::new();
    if pids != "none" {
        for p in pids.split_whitespace() {
            let (pid, n) = p.split_once(':')?;
            per_pid.insert(pid.parse().ok()?, n.parse().ok()?);
        }
    }
    let mut it = after.split_whitespace();
    let mode = it.next()?.to_string();
    if it.next()? != "armed" || it.next()? != "in" {
        return None;
    }
    let armed: u64 = it.next()?.parse().ok()?;
    Some(Probe { id, location, addr, note, total, per_pid, plan, mode, consumer, armed })
}

/// Every probe line in `text`.
pub fn parse_probes(text: &str) -> Vec<Probe> {
    text.lines().filter_map(parse_probe_line).collect()
}

/// The probe at `location` in `monitor probes` output `text` (the last listing wins: a
/// script may list the probes more than once).
pub fn probe_at(text: &str, location: &str) -> Option<Probe> {
    parse_probes(text).into_iter().rev().find(|p| p.location == location)
}
