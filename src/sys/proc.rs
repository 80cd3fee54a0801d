//! Small `/proc/PID` readers: thread lists, names, thread-group ids, auxv, exe.

use std::path::PathBuf;

/// The thread ids of process `pid`, from `/proc/PID/task`.
pub fn threads(pid: i32) -> std::io::Result<Vec<i32>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = e?.file_name().to_str().and_then(|s| s.parse().ok()) {
            out.push(tid);
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The thread-group id (process id) of thread `tid`.
pub fn tgid(tid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("Tgid:").and_then(|v| v.trim().parse().ok()))
}

/// The name (`comm`) of a thread.
pub fn thread_name(pid: i32, tid: i32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).ok().map(|s| s.trim_end().to_string())
}

/// The auxiliary vector of a process, raw.
pub fn auxv(pid: i32) -> std::io::Result<Vec<u8>> {
    std::fs::read(format!("/proc/{pid}/auxv"))
}

/// The executable of a process.
pub fn exe(pid: i32) -> std::io::Result<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe"))
}

/// True if the process exists (possibly as a zombie).
pub fn exists(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// True if thread `tid` of process `pid` is a zombie (exited, not yet reaped). A zombie thread
/// group leader is not reported by `waitpid` until every other thread has exited.
pub fn is_zombie(pid: i32, tid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(')').map(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])))
        .unwrap_or(true)
}

/// True while kernel thread `tid` exists and is not a zombie or dead (`/proc/TID/stat` state
/// other than `Z`, `X`, `x`): a thread killed under a tracer has left this state.
pub fn is_alive_tid(tid: i32) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{tid}/stat")) else { return false };
    // The state follows the parenthesised command name, which may contain spaces.
    let state = stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
    !matches!(state, None | Some('Z') | Some('X') | Some('x'))
}

/// Whether the kernel randomises the address space of `pid`: `Some(false)` when its
/// personality has `ADDR_NO_RANDOMIZE` (as gdb, `xol serve` and `xol count` launch programs)
/// or randomisation is off system-wide; `None` when it cannot be told.
pub fn randomized(pid: i32) -> Option<bool> {
    let system = std::fs::read_to_string("/proc/sys/kernel/randomize_va_space").ok()?;
    if system.trim() == "0" {
        return Some(false);
    }
    let p = std::fs::read_to_string(format!("/proc/{pid}/personality")).ok()?;
    let flags = u64::from_str_radix(p.trim(), 16).ok()?;
    Some(flags & libc::ADDR_NO_RANDOMIZE as u64 == 0)
}

/// One process as `/proc` shows it, for gdb's `info os` (`qXfer:osdata:read`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Its pid.
    pub pid: i32,
    /// Its real user's name (or the uid when the name cannot be told).
    pub user: String,
    /// Its command line, arguments separated by spaces (its `comm` in brackets for a kernel
    /// thread).
    pub command: String,
    /// Its process group.
    pub pgid: i32,
    /// Its threads and the CPU each last ran on.
    pub threads: Vec<(i32, i32)>,
    /// Its open file descriptors and what they name.
    pub fds: Vec<(i32, String)>,
}

/// Every process visible in `/proc` (those that vanish while being read are left out).
pub fn processes() -> Vec<ProcessInfo> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    let mut out: Vec<ProcessInfo> =
        dir.flatten().filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok()).filter_map(process).collect();
    out.sort_by_key(|p| p.pid);
    out
}

fn process(pid: i32) -> Option<ProcessInfo> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let uid: u32 = status.lines().find_map(|l| l.strip_prefix("Uid:"))?.split_whitespace().next()?.parse().ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let pgid = stat_field(&stat, 5).and_then(|f| f.parse().ok()).unwrap_or(0);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let command = if cmdline.is_empty() {
        let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        format!("[{}]", comm.trim_end())
    } else {
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        args.join(" ")
    };
    let threads = threads(pid)
        .unwrap_or_default()
        .into_iter()
        .map(|tid| {
            let core = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
                .ok()
                .and_then(|s| stat_field(&s, 39).and_then(|f| f.parse().ok()))
                .unwrap_or(-1);
            (tid, core)
        })
        .collect();
    let mut fds: Vec<(i32, String)> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| {
                    let fd = e.file_name().to_str()?.parse().ok()?;
                    let target = std::fs::read_link(e.path()).ok()?;
                    Some((fd, target.to_string_lossy().into_owned()))
                })
                .collect()
        })
        .unwrap_or_default();
    fds.sort();
    Some(ProcessInfo { pid, user: user_name(uid), command, pgid, threads, fds })
}

/// Field `n` (1-based, as proc(5) numbers them) of a `/proc/PID/stat` line; the command in
/// parentheses (field 2) may hold spaces and parentheses, so counting starts after its last `)`.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(n.checked_sub(3)?)
}

/// The name of user `uid` from `/etc/passwd`, else the number.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id: u32 = f.nth(1)?.parse().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_count_past_the_command() {
        let stat = "42 (a (weird) name) S 1 42 42 0 -1";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 5), Some("42"));
        assert_eq!(stat_field(stat, 99), None);
    }

    #[test]
    fn this_process_is_listed() {
        let me = std::process::id() as i32;
        let all = processes();
        let p = all.iter().find(|p| p.pid == me).expect("this process");
        assert!(p.threads.iter().any(|(t, _)| *t == me));
        assert!(p.fds.iter().any(|(fd, _)| *fd == 0 || *fd == 1 || *fd == 2));
        assert!(!p.user.is_empty() && !p.command.is_empty());
    }
}
