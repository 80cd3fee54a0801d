//! Linux signal numbers <-> gdb's target-independent signal numbers (`enum gdb_signal`), which
//! is what the remote protocol carries (`T1e` is SIGUSR1, Linux's 10); and gdb's default
//! `handle` table where xol must apply it itself (on detach).

/// (Linux number, gdb number) for the classic signals.
const TABLE: &[(i32, u8)] = &[
    (libc::SIGHUP, 1),
    (libc::SIGINT, 2),
    (libc::SIGQUIT, 3),
    (libc::SIGILL, 4),
    (libc::SIGTRAP, 5),
    (libc::SIGABRT, 6),
    (libc::SIGFPE, 8),
    (libc::SIGKILL, 9),
    (libc::SIGBUS, 10),
    (libc::SIGSEGV, 11),
    (libc::SIGSYS, 12),
    (libc::SIGPIPE, 13),
    (libc::SIGALRM, 14),
    (libc::SIGTERM, 15),
    (libc::SIGURG, 16),
    (libc::SIGSTOP, 17),
    (libc::SIGTSTP, 18),
    (libc::SIGCONT, 19),
    (libc::SIGCHLD, 20),
    (libc::SIGTTIN, 21),
    (libc::SIGTTOU, 22),
    (libc::SIGIO, 23),
    (libc::SIGXCPU, 24),
    (libc::SIGXFSZ, 25),
    (libc::SIGVTALRM, 26),
    (libc::SIGPROF, 27),
    (libc::SIGWINCH, 28),
    (libc::SIGUSR1, 30),
    (libc::SIGUSR2, 31),
    (libc::SIGPWR, 32),
];

/// gdb's number for "unknown signal".
const GDB_SIGNAL_UNKNOWN: u8 = 143;

/// Linux signal -> gdb signal.
pub fn to_gdb(sig: i32) -> u8 {
    if sig == 0 {
        return 0;
    }
    if let Some((_, g)) = TABLE.iter().find(|(l, _)| *l == sig) {
        return *g;
    }
    match sig {
        32 => 77,
        33..=63 => (sig - 33 + 45) as u8,
        64 => 78,
        _ => GDB_SIGNAL_UNKNOWN,
    }
}

/// gdb signal -> Linux signal (0 if it has no Linux equivalent).
pub fn from_gdb(sig: u8) -> i32 {
    if sig == 0 {
        return 0;
    }
    if let Some((l, _)) = TABLE.iter().find(|(_, g)| *g == sig) {
        return *l;
    }
    match sig {
        77 => 32,
        45..=75 => sig as i32 - 45 + 33,
        78 => 64,
        _ => 0,
    }
}

/// Whether gdb's default `handle` table passes this (Linux) signal to the program: all but
/// SIGTRAP and SIGINT (gdb's own) and SIGSTOP.
pub fn passes_on_detach(sig: i32) -> bool {
    sig != 0 && sig != libc::SIGTRAP && sig != libc::SIGINT && sig != libc::SIGSTOP
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_linux_signal() {
        for s in 1..=64 {
            if s == libc::SIGSTKFLT {
                continue;
            }
            assert_eq!(from_gdb(to_gdb(s)), s, "signal {s}");
        }
        assert_eq!(to_gdb(libc::SIGUSR1), 30);
        assert_eq!(to_gdb(libc::SIGSEGV), 11);
        assert_eq!(to_gdb(libc::SIGCHLD), 20);
        assert_eq!(to_gdb(34), 46);
    }
}
