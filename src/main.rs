//! The `xol` command line: `xol serve` runs the gdb remote stub.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use xol::gdb::{serve, Comm, ServerOptions};

#[derive(Parser, Debug)]
#[command(name = "xol", version, about = "A gdb-compatible debugger backend for x86-64 Linux")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Serve gdb's remote protocol (a drop-in for gdbserver).
    ///
    /// Examples:
    ///   gdb -ex 'target remote | xol serve --stdio -- ./prog arg'
    ///   xol serve :2345 -- ./prog        then in gdb: target remote :2345
    ///   xol serve --multi :2345          then in gdb: target extended-remote :2345, run / attach
    #[command(verbatim_doc_comment)]
    Serve {
        /// Speak the protocol on stdin/stdout (for `target remote | xol serve --stdio ...`).
        #[arg(long, conflicts_with = "addr")]
        stdio: bool,
        /// Address to listen on, [HOST]:PORT. HOST defaults to 127.0.0.1 (loopback only);
        /// binding to another interface (e.g. 0.0.0.0:2345) exposes the debugger to the
        /// network and is the user's explicit choice. Port 0 picks a free port.
        addr: Option<String>,
        /// Serve a single connection, then exit.
        #[arg(long)]
        once: bool,
        /// Extended-remote mode: gdb can `run`, `attach` and `kill` repeatedly.
        #[arg(long)]
        multi: bool,
        /// Attach to a running process instead of launching one.
        #[arg(long, value_name = "PID")]
        attach: Option<i32>,
        /// Run the program through this wrapper (repeat for each word), like gdbserver's --wrapper.
        #[arg(long, value_name = "WORD")]
        wrapper: Vec<OsString>,
        /// Program to launch and its arguments (after `--`).
        #[arg(last = true)]
        program: Vec<OsString>,
    },
}

fn main() {
    env_logger::Builder::from_env(env_logger::Env::default().filter_or("XOL_LOG", "warn")).init();
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Serve { stdio, addr, once, multi, attach, wrapper, program } => {
            let comm = match (stdio, addr) {
                (true, _) => Comm::Stdio,
                (false, Some(a)) if a == "-" || a == "stdio" => Comm::Stdio,
                (false, Some(a)) => Comm::Tcp(a),
                (false, None) => {
                    eprintln!("xol serve: say where gdb connects: --stdio or [HOST]:PORT (see --help)");
                    std::process::exit(2);
                }
            };
            let opts = ServerOptions { comm, once, multi, attach, program, wrapper };
            match serve(opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("xol: {e:#}");
                    1
                }
            }
        }
    };
    std::process::exit(code);
}
