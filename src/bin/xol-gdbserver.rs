//! `xol-gdbserver`: xol behind GNU gdbserver's own command line, so scripts, IDEs and gdb's
//! testsuite board files that start `gdbserver` can start xol unchanged.
//!
//! Accepted: `[OPTIONS] COMM PROG [ARGS...]`, `[OPTIONS] --attach COMM PID`,
//! `[OPTIONS] COMM --attach PID`, `[OPTIONS] --multi COMM`; COMM is `-`/`stdio` or
//! `[HOST]:PORT`. Options: `--once`, `--multi`, `--attach`, `--wrapper WRAPPER... --`,
//! `--disable-packet=...`, `--debug[=...]`, `--remote-debug`, `--debug-file=F`,
//! `--debug-format=...`, `--[no-]disable-randomization`, `--[no-]startup-with-shell`,
//! `--selftest`, `--version`, `--help`, and xol's own `--rsp xol|gdbstub` (which
//! remote-protocol server; xol's own by default).

use std::ffi::OsString;
use xol::front::gdb_common::{serve, Comm, RspServer, ServerOptions};

const USAGE: &str = "Usage:\txol-gdbserver [OPTIONS] COMM PROG [ARGS ...]
\txol-gdbserver [OPTIONS] --attach COMM PID
\txol-gdbserver [OPTIONS] --multi COMM

COMM may either be a tty device (for serial debugging),
HOST:PORT to listen for a TCP connection (HOST defaults to 127.0.0.1), or
'-' or 'stdio' to use stdin/stdout of xol-gdbserver.
PROG is the executable program.  ARGS are arguments passed to inferior.
PID is the process ID to attach to, when --attach is specified.

Operating modes:

  --attach              Attach to running process PID.
  --multi               Start server without a specific program, and
                        only quit when explicitly commanded.
  --once                Exit after the first connection has closed.
  --help                Print this message and exit.
  --version             Display version information and exit.

Other options:

  --wrapper WRAPPER --  Run WRAPPER to start new programs.
  --disable-randomization
                        Run PROG with address space randomization disabled
                        (the default).
  --no-disable-randomization
                        Don't disable address space randomization when
                        starting PROG.
  --startup-with-shell, --no-startup-with-shell
                        Accepted; xol always starts PROG directly, without a
                        shell (as --no-startup-with-shell).

xol options:

  --rsp=xol|gdbstub     The remote-protocol server: xol's own (the default),
                        or the one built on the gdbstub crate.

Debug options:

  --debug               Enable general debugging output (to stderr).
  --remote-debug        Enable remote protocol debugging output (to stderr).
  --disable-packet=OPT1[,OPT2,...]
                        Disable support for RSP packets or features.
                          Options:
                            vCont, T, Tthread, qC, qfThreadInfo and
                            threads (disable all threading packets).
";

#[derive(Debug)]
struct Parsed {
    opts: ServerOptions,
    /// `--debug`: xol's debug logging on stderr.
    debug: bool,
}

fn parse(args: Vec<OsString>) -> Result<Option<Parsed>, String> {
    let mut once = false;
    let mut multi = false;
    let mut attach = false;
    let mut wrapper = Vec::new();
    let mut comm: Option<String> = None;
    let mut aslr = false;
    let mut debug = false;
    let mut remote_debug = false;
    let mut disabled = xol::front::gdb_common::Disabled::default();
    let mut rsp = RspServer::default();
    let mut rest: Vec<OsString> = Vec::new();
    let mut it = args.into_iter().peekable();
    while let Some(a) = it.next() {
        let s = a.to_string_lossy().into_owned();
        if comm.is_some() && !s.starts_with("--") {
            rest.push(a);
            rest.extend(it.by_ref());
            break;
        }
        match s.as_str() {
            "--once" => once = true,
            "--multi" => multi = true,
            "--attach" => attach = true,
            "--help" => {
                print!("{USAGE}");
                return Ok(None);
            }
            "--version" => {
                println!("xol-gdbserver (xol) {}", env!("CARGO_PKG_VERSION"));
                println!("A gdbserver-compatible front-end of xol.");
                return Ok(None);
            }
            "--selftest" => {
                println!("Selftests have been disabled for this build.");
                return Ok(None);
            }
            "--wrapper" => {
                for w in it.by_ref() {
                    if w == "--" {
                        break;
                    }
                    wrapper.push(w);
                }
                if wrapper.is_empty() {
                    return Err("--wrapper requires a program and a terminating --".into());
                }
            }
            "--debug" => debug = true,
            "--rsp" => {
                let v = it.next().ok_or("--rsp needs xol or gdbstub")?;
                rsp = v.to_string_lossy().parse()?;
            }
            o if o.starts_with("--rsp=") => rsp = o["--rsp=".len()..].parse()?,
            "--remote-debug" => remote_debug = true,
            "--disable-randomization" => aslr = false,
            "--no-disable-randomization" => aslr = true,
            // gdbserver starts PROG through `$SHELL -c exec PROG`; xol always execs it directly
            // (arguments are passed as given, never expanded by a shell).
            "--no-startup-with-shell" => {}
            "--startup-with-shell" => {
                eprintln!("xol-gdbserver: --startup-with-shell ignored: xol starts programs without a shell")
            }
            o if o.starts_with("--disable-packet=") => {
                for name in o["--disable-packet=".len()..].split(',') {
                    if !disabled.add(name) {
                        return Err(format!(
                            "Don't know how to disable \"{name}\" (known: vCont, T, Tthread, qC, qfThreadInfo, threads)"
                        ));
                    }
                }
            }
            o if o.starts_with("--debug=") => {
                debug = true;
                eprintln!("xol-gdbserver: debug components ignored ({o}): all of xol's debug output is enabled");
            }
            o if o.starts_with("--debug-file=")
                || o.starts_with("--debug-format=")
                || o.starts_with("--remote-debug=") =>
            {
                eprintln!("xol-gdbserver: {o} ignored (debug output goes to stderr)");
            }
            "-" | "stdio" if comm.is_none() => comm = Some(s),
            o if o.starts_with('-') && o != "-" => {
                return Err(format!("unknown option `{o}`; see `xol-gdbserver --help`"));
            }
            _ if comm.is_none() => comm = Some(s),
            _ => unreachable!("handled above"),
        }
    }
    let comm = comm.ok_or("missing COMM (a [HOST]:PORT or '-' for stdio)")?;
    let comm = Comm::parse(&comm);
    let mut attach_pid = None;
    if attach {
        let pid = rest.first().ok_or("--attach needs a PID")?;
        let pid: i32 =
            pid.to_string_lossy().parse().map_err(|_| format!("invalid process id `{}`", pid.to_string_lossy()))?;
        attach_pid = Some(pid);
        rest.clear();
    } else if rest.is_empty() && !multi {
        return Err("missing PROG: give a program to debug, --attach PID, or --multi".into());
    }
    let program = absolutize(rest);
    let opts = ServerOptions {
        once,
        multi,
        attach: attach_pid,
        program,
        wrapper,
        aslr,
        remote_debug,
        disabled,
        rsp,
        ..ServerOptions::new(comm)
    };
    Ok(Some(Parsed { opts, debug }))
}

/// A bare program name found in the current directory is resolved against it (`exec` would
/// look it up in PATH instead). A path with a slash (`./prog`) is kept exactly as given: it is
/// the program's `argv[0]`, on its stack, as with gdbserver.
fn absolutize(mut prog: Vec<OsString>) -> Vec<OsString> {
    if let Some(p) = prog.first_mut() {
        let path = std::path::Path::new(p);
        if path.is_relative() && path.components().count() == 1 && path.exists() {
            if let Ok(cwd) = std::env::current_dir() {
                *p = cwd.join(path).into_os_string();
            }
        }
    }
    prog
}

fn main() {
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let parsed = match parse(args) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(e) => {
            eprintln!("xol-gdbserver: {e}");
            eprint!("{USAGE}");
            std::process::exit(2);
        }
    };
    xol::front::gdb_common::init_logging(parsed.debug);
    let code = match serve(parsed.opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("xol-gdbserver: {e:#}");
            1
        }
    };
    std::process::exit(code);
}
