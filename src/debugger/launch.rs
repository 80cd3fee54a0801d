//! How the session starts a program: the launch configuration every front-end fills in (gdb's
//! `run` and `set environment`, `xol count -- PROG`, the REPL's `run`), in the session's terms.

use std::ffi::OsString;
use std::path::PathBuf;

/// Where the program's standard input comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdin {
    /// xol's own standard input.
    #[default]
    Inherit,
    /// `/dev/null` (xol's standard input is not the program's: it carries a protocol).
    Null,
}

/// Where the program's standard output goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Stdout {
    /// xol's own standard output.
    #[default]
    Inherit,
    /// xol's standard error (xol's standard output carries a protocol).
    Stderr,
}

/// A program to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The program (looked up in `PATH` if it has no `/`), then its arguments.
    pub argv: Vec<OsString>,
    /// Programs run first, each `exec`ing the next and the last the program (gdbserver's
    /// `--wrapper`); the program is stopped once it is the one running.
    pub wrapper: Vec<OsString>,
    /// The full environment (`KEY=VALUE`); `None` inherits xol's.
    pub env: Option<Vec<OsString>>,
    /// The working directory; `None` inherits xol's.
    pub cwd: Option<PathBuf>,
    /// Keep address-space randomisation on. Off by default, as gdb does, so that addresses are
    /// the same from run to run.
    pub aslr: bool,
    /// Standard input.
    pub stdin: Stdin,
    /// Standard output (standard error is xol's).
    pub stdout: Stdout,
    /// The program's terminal: standard input, output and error all on this file or tty (gdb's
    /// `tty` / `set inferior-tty`), over `stdin` and `stdout`.
    pub tty: Option<PathBuf>,
}

impl Launch {
    /// `argv` with the defaults: xol's environment, directory and standard streams, address
    /// randomisation off.
    pub fn new<I, S>(argv: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        Launch {
            argv: argv.into_iter().map(Into::into).collect(),
            wrapper: Vec::new(),
            env: None,
            cwd: None,
            aslr: false,
            stdin: Stdin::Inherit,
            stdout: Stdout::Inherit,
            tty: None,
        }
    }

    /// The core's spawn request.
    pub(super) fn spec(&self) -> crate::inferior::SpawnSpec {
        crate::inferior::SpawnSpec {
            argv: self.argv.clone(),
            wrapper: self.wrapper.clone(),
            env: self.env.clone(),
            cwd: self.cwd.clone(),
            disable_aslr: !self.aslr,
            stdin_null: self.stdin == Stdin::Null,
            stdout_to_stderr: self.stdout == Stdout::Stderr,
            tty: self.tty.clone(),
        }
    }
}
