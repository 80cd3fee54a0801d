//! The `xol` command line: `xol serve` runs the gdb remote stub; `xol verify-steps` checks displaced
//! stepping against in-line stepping instruction by instruction.

use clap::{Parser, Subcommand};
use std::ffi::OsString;
use xol::front::gdb_common::{serve, Comm, RspServer, ServerOptions};

#[derive(Parser, Debug)]
#[command(name = "xol", version, about = "A gdb-compatible debugger backend for x86-64 Linux")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Count hits of probes while a program runs, without stopping it; print hits per process.
    ///
    /// Examples:
    ///   xol count main -- ./prog                    (a symbol of the program)
    ///   xol count loop.c:34 -- ./prog               (a source line, as gdb's break loop.c:34)
    ///   xol count libc.so.6:malloc -- sh -c 'ls | sort'   (per-file: every process mapping it)
    ///   xol count --per-file work -- ./prog         (forked children, exec'd programs too)
    ///   xol count --json -o hits.json main -- ./prog  (JSON to a file; `-o -`: stdout)
    ///
    /// Address randomisation is off (as under gdb) unless --aslr. SIGINT/SIGTERM/SIGHUP: xol
    /// detaches, prints the counts, passes the signal on to the program, exits 128+signal.
    #[command(verbatim_doc_comment)]
    Count {
        /// Make the probes per-file: armed in every traced process that maps the file.
        #[arg(long)]
        per_file: bool,
        /// Stress: unregister and re-register every probe every MS milliseconds.
        #[arg(long, value_name = "MS")]
        churn: Option<u64>,
        /// With --churn: how many cycles (then the probes stay unregistered).
        #[arg(long, default_value_t = 100)]
        churn_cycles: u64,
        /// Write the report as one JSON object (where the text report would go).
        #[arg(long)]
        json: bool,
        /// Write the report (text, or JSON with --json) to FILE instead of stderr; `-' is
        /// stdout, which the program's own output shares.
        #[arg(short = 'o', long, value_name = "FILE")]
        output: Option<std::path::PathBuf>,
        /// Keep address randomisation on for the program (by default it is turned off, as gdb
        /// does, so addresses gdb showed are valid).
        #[arg(long, alias = "no-disable-randomization")]
        aslr: bool,
        /// Force the trap plan: an int3 per probe and a ptrace stop per hit. By default a probe
        /// whose site allows it takes the jump plan (the site jumps to code that adds to a
        /// counter and runs the instructions it replaced: no trap per hit; per-process probes,
        /// not with --churn), and the report says which plan counted and why not the jump.
        #[arg(long, conflicts_with = "jump")]
        trap: bool,
        /// The jump plan where a site allows it (the default; see --trap).
        #[arg(long)]
        jump: bool,
        /// Locations: 0xADDR, SYMBOL (an ELF symbol or a DWARF function: every inlined copy
        /// is counted), FILE:SYMBOL, FILE:0xOFFSET or FILE:LINE (a source line).
        #[arg(required = true)]
        locations: Vec<String>,
        /// Program to run and its arguments (after `--`).
        #[arg(last = true, required = true)]
        program: Vec<OsString>,
    },
    /// The standalone debugger: gdb's commands, abbreviations and output over xol's core.
    ///
    /// Options as gdb's, with one or two dashes:
    ///   xol debug ./prog arg1               (then: break main, run, stepi, info registers, ...)
    ///   xol debug -batch -ex 'break probe_site' -ex run -ex 'info registers rip' ./prog
    ///   xol debug -x cmds.gdb ./prog        (commands from a file)
    ///   xol debug --attach 1234
    /// `xol debug --help` lists the options; `help` at the prompt lists the commands.
    #[command(verbatim_doc_comment, disable_help_flag = true)]
    Debug {
        /// gdb-style options, then the program and its arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
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
        /// Address to listen on, [HOST]:PORT, or a serial line (a tty such as /dev/ttyS0).
        /// HOST defaults to 127.0.0.1 (loopback only);
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
        /// The remote-protocol server: `xol` (xol's own, the default) or `gdbstub` (built on
        /// the gdbstub crate).
        #[arg(long, value_name = "xol|gdbstub", default_value = "xol")]
        rsp: RspServer,
        /// Program to launch and its arguments (after `--`).
        #[arg(last = true)]
        program: Vec<OsString>,
    },
    /// Check displaced stepping against in-line stepping, instruction by instruction.
    ///
    /// Runs PROGRAM to main, then executes its `insn_*` labels and the first instructions of
    /// every function (with --libc, of libc's too) from synthetic machine states, in line and
    /// displaced, and compares registers, flags, SSE/AVX state and memory. PROGRAM must own a
    /// global `scratch` buffer (e.g. fixtures/diffhost.c). Exits 0 only if nothing differs.
    ///
    /// Example:
    ///   xol verify-steps --libc -- ./diffhost
    #[command(verbatim_doc_comment)]
    VerifySteps {
        /// Also check the first instructions of every libc function.
        #[arg(long)]
        libc: bool,
        /// Check at most N candidate instructions (the `insn_*` labels come first).
        #[arg(long, value_name = "N")]
        max: Option<usize>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        /// Seconds one instruction may take before the program is killed and relaunched.
        #[arg(long, value_name = "SECS", default_value_t = 10)]
        timeout: u64,
        /// The host program and its arguments (after `--`).
        #[arg(last = true, required = true)]
        program: Vec<OsString>,
    },
}

fn main() {
    xol::front::gdb_common::init_logging(false);
    let cli = Cli::parse();
    let code = match cli.cmd {
        Cmd::Count { per_file, churn, churn_cycles, json, output, aslr, trap, jump: _, locations, program } => {
            xol::front::count::run(xol::front::count::CountOptions {
                locations,
                per_file,
                churn: churn.map(std::time::Duration::from_millis),
                churn_cycles,
                json,
                aslr,
                trap,
                output,
                program,
            })
        }
        Cmd::Debug { args } => xol::front::repl::run(&args),
        Cmd::Serve { stdio, addr, once, multi, attach, wrapper, rsp, program } => {
            let comm = match (stdio, addr) {
                (true, _) => Comm::Stdio,
                (false, Some(a)) => Comm::parse(&a),
                (false, None) => {
                    eprintln!("xol serve: say where gdb connects: --stdio or [HOST]:PORT (see --help)");
                    std::process::exit(2);
                }
            };
            let opts = ServerOptions { once, multi, attach, program, wrapper, rsp, ..ServerOptions::new(comm) };
            match serve(opts) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("xol: {e:#}");
                    1
                }
            }
        }
        Cmd::VerifySteps { libc, max, json, timeout, program } => {
            if let Err(e) = xol::debugger::Debugger::init_signals() {
                eprintln!("xol: cannot set up signal handling: {e}");
                std::process::exit(2);
            }
            let opts = xol::front::verify::Options {
                libc,
                max,
                json,
                timeout: std::time::Duration::from_secs(timeout.max(1)),
                program,
            };
            xol::front::verify::run_cli(&opts)
        }
    };
    std::process::exit(code);
}
