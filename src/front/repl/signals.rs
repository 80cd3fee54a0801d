//! Signals as gdb shows them to a user: names, gdb's descriptions ("Segmentation fault"),
//! and gdb's default `handle` table (stop, print, pass), which `handle` changes and
//! `info signals` prints.

/// (Linux number, name, gdb's description).
const SIGNALS: &[(i32, &str, &str)] = &[
    (libc::SIGHUP, "SIGHUP", "Hangup"),
    (libc::SIGINT, "SIGINT", "Interrupt"),
    (libc::SIGQUIT, "SIGQUIT", "Quit"),
    (libc::SIGILL, "SIGILL", "Illegal instruction"),
    (libc::SIGTRAP, "SIGTRAP", "Trace/breakpoint trap"),
    (libc::SIGABRT, "SIGABRT", "Aborted"),
    (libc::SIGBUS, "SIGBUS", "Bus error"),
    (libc::SIGFPE, "SIGFPE", "Arithmetic exception"),
    (libc::SIGKILL, "SIGKILL", "Killed"),
    (libc::SIGUSR1, "SIGUSR1", "User defined signal 1"),
    (libc::SIGSEGV, "SIGSEGV", "Segmentation fault"),
    (libc::SIGUSR2, "SIGUSR2", "User defined signal 2"),
    (libc::SIGPIPE, "SIGPIPE", "Broken pipe"),
    (libc::SIGALRM, "SIGALRM", "Alarm clock"),
    (libc::SIGTERM, "SIGTERM", "Terminated"),
    (libc::SIGCHLD, "SIGCHLD", "Child status changed"),
    (libc::SIGCONT, "SIGCONT", "Continued"),
    (libc::SIGSTOP, "SIGSTOP", "Stopped (signal)"),
    (libc::SIGTSTP, "SIGTSTP", "Stopped (user)"),
    (libc::SIGTTIN, "SIGTTIN", "Stopped (tty input)"),
    (libc::SIGTTOU, "SIGTTOU", "Stopped (tty output)"),
    (libc::SIGURG, "SIGURG", "Urgent I/O condition"),
    (libc::SIGXCPU, "SIGXCPU", "CPU time limit exceeded"),
    (libc::SIGXFSZ, "SIGXFSZ", "File size limit exceeded"),
    (libc::SIGVTALRM, "SIGVTALRM", "Virtual timer expired"),
    (libc::SIGPROF, "SIGPROF", "Profiling timer expired"),
    (libc::SIGWINCH, "SIGWINCH", "Window size changed"),
    (libc::SIGIO, "SIGIO", "I/O possible"),
    (libc::SIGPWR, "SIGPWR", "Power fail/restart"),
    (libc::SIGSYS, "SIGSYS", "Bad system call"),
];

/// The name of signal `sig` (`SIG34` for a real-time one without a name).
pub fn name(sig: i32) -> String {
    SIGNALS.iter().find(|(n, _, _)| *n == sig).map_or_else(|| format!("SIG{sig}"), |(_, s, _)| s.to_string())
}

/// gdb's description of signal `sig`.
pub fn description(sig: i32) -> String {
    SIGNALS
        .iter()
        .find(|(n, _, _)| *n == sig)
        .map_or_else(|| format!("Real-time event {sig}"), |(_, _, d)| d.to_string())
}

/// The signal a user names: `SIGSEGV`, `segv`, `11`.
pub fn parse(text: &str) -> Option<i32> {
    if let Ok(n) = text.parse::<i32>() {
        return (1..=64).contains(&n).then_some(n);
    }
    let up = text.to_ascii_uppercase();
    let up = if up.starts_with("SIG") { up } else { format!("SIG{up}") };
    SIGNALS.iter().find(|(_, s, _)| *s == up).map(|(n, _, _)| *n)
}

/// What happens when the program gets a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handling {
    /// Stop and return to the prompt.
    pub stop: bool,
    /// Say so.
    pub print: bool,
    /// Deliver it to the program when it resumes.
    pub pass: bool,
}

/// gdb's default handling of `sig`: SIGALRM, SIGURG, SIGCHLD, SIGWINCH, SIGIO, SIGVTALRM and
/// SIGPROF pass silently; SIGINT and SIGTRAP stop and are not passed; the rest stop, print
/// and pass.
pub fn default_handling(sig: i32) -> Handling {
    match sig {
        libc::SIGALRM
        | libc::SIGURG
        | libc::SIGCHLD
        | libc::SIGWINCH
        | libc::SIGIO
        | libc::SIGVTALRM
        | libc::SIGPROF => Handling { stop: false, print: false, pass: true },
        libc::SIGINT | libc::SIGTRAP => Handling { stop: true, print: true, pass: false },
        _ => Handling { stop: true, print: true, pass: true },
    }
}

/// Every signal `info signals` lists, in order.
pub fn all() -> impl Iterator<Item = i32> {
    SIGNALS.iter().map(|(n, _, _)| *n)
}

/// One row of `info signals`, as gdb prints it.
pub fn row(sig: i32, h: Handling) -> String {
    let yn = |b: bool| if b { "Yes" } else { "No" };
    format!("{:<14}{:<7}{:<7}{:<15}{}", name(sig), yn(h.stop), yn(h.print), yn(h.pass), description(sig))
}

/// The header of `info signals`.
pub const HEADER: &str = "Signal        Stop\tPrint\tPass to program\tDescription";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_numbers_and_defaults() {
        assert_eq!(parse("SIGSEGV"), Some(11));
        assert_eq!(parse("segv"), Some(11));
        assert_eq!(parse("10"), Some(10));
        assert_eq!(parse("SIGNOPE"), None);
        assert_eq!(name(11), "SIGSEGV");
        assert_eq!(description(11), "Segmentation fault");
        assert!(!default_handling(libc::SIGCHLD).stop);
        assert!(!default_handling(libc::SIGINT).pass);
        assert!(default_handling(libc::SIGUSR1).pass);
    }
}
