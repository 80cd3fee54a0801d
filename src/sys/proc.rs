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
