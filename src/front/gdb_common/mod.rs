//! What both gdb front-ends share, free of any protocol engine: the command-line options of the
//! server (where gdb connects, `--disable-packet=`, `--rsp`), the launch configuration gdb
//! builds up (`QEnvironment*`, `QSetWorkingDir`, ...), gdb's breakpoint policy over the session
//! API ([`breakpoints`]), gdb's signal numbering ([`signals`]), the `monitor` commands
//! ([`monitor`]) and host I/O ([`host_io`]).
//!
//! Uses only the session API ([`crate::debugger`]) and [`crate::types`].

pub mod breakpoints;
pub mod host_io;
pub mod monitor;
pub mod signals;

use crate::debugger::{Launch, Stdin, Stdout};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};

/// Which remote-protocol server talks to gdb, chosen at start-up (`--rsp`), never mixed in a
/// session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RspServer {
    /// The server built on the `gdbstub` crate ([`crate::front::gdbstub`]), kept selectable.
    Gdbstub,
    /// xol's own server over [`crate::rsp`] ([`crate::front::gdb`]), the default.
    #[default]
    Xol,
}

impl std::str::FromStr for RspServer {
    type Err = String;

    fn from_str(s: &str) -> Result<RspServer, String> {
        match s {
            "gdbstub" => Ok(RspServer::Gdbstub),
            "xol" => Ok(RspServer::Xol),
            _ => Err(format!("unknown remote-protocol server `{s}`: say xol or gdbstub")),
        }
    }
}

/// Run the server `opts.rsp` names. Returns the exit code.
pub fn serve(opts: ServerOptions) -> anyhow::Result<i32> {
    match opts.rsp {
        RspServer::Gdbstub => crate::front::gdbstub::serve(opts),
        RspServer::Xol => crate::front::gdb::serve(opts),
    }
}

/// Where gdb connects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Comm {
    /// stdin/stdout (`target remote | xol ...`).
    Stdio,
    /// A TCP address, `[HOST]:PORT` (HOST defaults to 127.0.0.1).
    Tcp(String),
    /// A serial line (a tty device such as `/dev/ttyS0`), used in raw mode; one session.
    Serial(std::path::PathBuf),
}

impl Comm {
    /// gdbserver's reading of COMM: `-`/`stdio`, a device path (starts with `/`), else a
    /// `[HOST]:PORT`.
    pub fn parse(s: &str) -> Comm {
        match s {
            "-" | "stdio" => Comm::Stdio,
            _ if s.starts_with('/') => Comm::Serial(s.into()),
            _ => Comm::Tcp(s.to_string()),
        }
    }
}

/// Everything the server needs from its command line.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Where gdb connects.
    pub comm: Comm,
    /// Serve one connection, then exit.
    pub once: bool,
    /// Extended-remote mode.
    pub multi: bool,
    /// Attach to this process.
    pub attach: Option<i32>,
    /// Program and arguments to launch.
    pub program: Vec<OsString>,
    /// Wrapper programs (`--wrapper ... --`).
    pub wrapper: Vec<OsString>,
    /// Keep address-space randomisation on (gdbserver's `--no-disable-randomization`).
    pub aslr: bool,
    /// Log every packet to stderr (gdbserver's `--remote-debug`).
    pub remote_debug: bool,
    /// Packets to pretend not to support (gdbserver's `--disable-packet=`).
    pub disabled: Disabled,
    /// Which remote-protocol server speaks to gdb.
    pub rsp: RspServer,
}

impl ServerOptions {
    /// Options for `comm` with everything else at its default.
    pub fn new(comm: Comm) -> ServerOptions {
        ServerOptions {
            comm,
            once: false,
            multi: false,
            attach: None,
            program: Vec::new(),
            wrapper: Vec::new(),
            aslr: false,
            remote_debug: false,
            disabled: Disabled::default(),
            rsp: RspServer::default(),
        }
    }
}

/// gdbserver's `--disable-packet=` set: the requests answered as unsupported and the stop
/// reply forms not used, so gdb falls back to older packets.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Disabled {
    /// `vCont` (gdb then resumes with `Hc` + `c`/`s`).
    pub vcont: bool,
    /// `T` stop replies (`S` instead).
    pub t: bool,
    /// The `thread:` field of `T` stop replies.
    pub tthread: bool,
    /// `qC`.
    pub qc: bool,
    /// `qfThreadInfo`/`qsThreadInfo`.
    pub qfthreadinfo: bool,
}

impl Disabled {
    /// Add one name of gdbserver's list (`vCont`, `T`, `Tthread`, `qC`, `qfThreadInfo`,
    /// `threads`); false if the name is not one of them.
    pub fn add(&mut self, name: &str) -> bool {
        match name {
            "vCont" => self.vcont = true,
            "T" => self.t = true,
            "Tthread" => self.tthread = true,
            "qC" => self.qc = true,
            "qfThreadInfo" => self.qfthreadinfo = true,
            "threads" => {
                self.vcont = true;
                self.tthread = true;
                self.qc = true;
                self.qfthreadinfo = true;
            }
            _ => return false,
        }
        true
    }
}

/// How the stub was started, and what gdb configured for the next `run`.
#[derive(Debug, Clone, Default)]
pub struct ServeConfig {
    /// Extended-remote (`--multi`): the session survives the process.
    pub multi: bool,
    /// The protocol runs over xol's stdin/stdout.
    pub stdio_is_protocol: bool,
    /// The program and arguments given on the command line, if any.
    pub program: Vec<OsString>,
    /// `--wrapper` programs.
    pub wrapper: Vec<OsString>,
    /// Environment changes requested by gdb (`None` value: unset).
    pub env: BTreeMap<OsString, Option<OsString>>,
    /// gdb asked for a clean environment first (`QEnvironmentReset`).
    pub env_reset: bool,
    /// Working directory for the next run.
    pub cwd: Option<std::path::PathBuf>,
    /// Keep ASLR on (gdb's `set disable-randomization off`).
    pub aslr: bool,
}

impl ServeConfig {
    /// The launch configuration of `argv` with what gdb configured.
    pub fn launch(&self, argv: Vec<OsString>) -> Launch {
        let env = if self.env.is_empty() && !self.env_reset {
            None
        } else {
            let mut base: BTreeMap<OsString, OsString> =
                if self.env_reset { BTreeMap::new() } else { std::env::vars_os().collect() };
            for (k, v) in &self.env {
                match v {
                    Some(v) => {
                        base.insert(k.clone(), v.clone());
                    }
                    None => {
                        base.remove(k);
                    }
                }
            }
            Some(
                base.into_iter()
                    .map(|(k, v)| {
                        let mut s = k;
                        s.push("=");
                        s.push(v);
                        s
                    })
                    .collect(),
            )
        };
        let mut argv = argv;
        if let (Some(_), Some(p)) = (&self.cwd, argv.first_mut()) {
            // `./prog` is passed as given (argv[0] and so the stack layout as with gdbserver),
            // but a working directory set by gdb would make it name another file.
            let path = std::path::Path::new(p);
            if path.is_relative() && path.components().count() > 1 {
                if let Ok(cwd) = std::env::current_dir() {
                    *p = cwd.join(path).into_os_string();
                }
            }
        }
        // When the protocol runs over xol's stdio, the program's input is /dev/null and its
        // output goes to xol's stderr, as gdbserver does under `target remote | gdbserver - PROG`.
        let protocol = self.stdio_is_protocol;
        Launch {
            argv,
            wrapper: self.wrapper.clone(),
            env,
            cwd: self.cwd.clone(),
            aslr: self.aslr,
            stdin: if protocol { Stdin::Null } else { Stdin::Inherit },
            stdout: if protocol { Stdout::Stderr } else { Stdout::Inherit },
            tty: None,
        }
    }
}

/// Set up xol's logging on stderr: `XOL_LOG` if set, else warnings, or xol's debug messages
/// with `debug`. xol's own messages can be raised to debug later (`monitor set debug 1`).
pub fn init_logging(debug: bool) {
    let from_env = std::env::var_os("XOL_LOG").is_some();
    env_logger::Builder::from_env(
        env_logger::Env::default().filter_or("XOL_LOG", "warn,xol=debug,xol_gdbserver=debug"),
    )
    .init();
    if !from_env {
        log::set_max_level(if debug { log::LevelFilter::Debug } else { log::LevelFilter::Warn });
    }
}

/// How a session ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEnd {
    /// gdb detached or killed, or the process ended (plain remote).
    Done,
    /// The connection went away or failed.
    Lost(String),
    /// `monitor exit`.
    ExitRequested,
    /// xol received a termination signal.
    Terminated,
}

/// Parse `[HOST]:PORT` the way gdbserver does, with 127.0.0.1 as the default host.
pub fn resolve(comm: &str) -> Result<SocketAddr, String> {
    let (host, port) = if let Some(rest) = comm.strip_prefix('[') {
        let (h, p) = rest.split_once("]:").ok_or_else(|| format!("{comm}: cannot resolve name: bad address"))?;
        (h.to_string(), p.to_string())
    } else {
        let (h, p) = comm.rsplit_once(':').ok_or_else(|| format!("{comm}: cannot resolve name: no port"))?;
        (h.to_string(), p.to_string())
    };
    let port: u16 = port.parse().map_err(|_| format!("{comm}: cannot resolve name: bad port"))?;
    let host = if host.is_empty() { "127.0.0.1".to_string() } else { host };
    let host = host.strip_prefix("tcp:").or_else(|| host.strip_prefix("tcp4:")).unwrap_or(&host).to_string();
    (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{comm}: cannot resolve name: {e}"))?
        .next()
        .ok_or_else(|| format!("{comm}: cannot resolve name: no address"))
}
