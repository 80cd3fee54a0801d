//! `xol debug`: the standalone debugger, a REPL over the session API that a gdb user reads at
//! sight — gdb's command names and abbreviations (`command`), gdb's output (stop lines,
//! `info registers`, `x/NFU`, `info breakpoints`), gdb's errors, `-batch`, `-ex`, `-x` and
//! gdb's exit status, line editing with a history file (`rustyline`).
//!
//! Without debug information yet (DWARF comes with the debuginfo module): locations are
//! functions, `*ADDRESS` and `FILE:FUNCTION`; frames print as gdb prints a frame without line
//! information (`0x... in probe_site ()`); `break FUNC` skips the frame setup as gdb's prologue
//! analyzer does. Ctrl-C while the program runs stops it and returns to the prompt.

mod command;
mod expr;
mod signals;
mod symbolize;

use crate::debugger::{Action, Debugger, HwKind, Launch, Location, Notice, StopKind, Subscription, WaitOutcome};
use crate::types::{Owner, Pid, Tid, VirtAddr};
use command::{Cmd, Info, Parsed};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;
use symbolize::Symbolizer;

/// Where commands come from before (or instead of) the prompt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-ex CMD`
    Command(String),
    /// `-x FILE`
    File(PathBuf),
}

/// What `xol debug` was asked to do.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Options {
    /// `-batch`: run the commands, then exit (no prompt).
    pub batch: bool,
    /// `-ex` and `-x`, in order.
    pub sources: Vec<Source>,
    /// `--attach PID` / `-p PID`.
    pub attach: Option<i32>,
    /// The program and its arguments.
    pub program: Vec<OsString>,
}

/// Parse gdb-style arguments: `[-batch] [-q] [-nx] [-ex CMD]... [-x FILE]... [--attach PID]
/// [--args] PROG [ARGS...]`. Options are accepted with one or two dashes, and `-ex=CMD`.
pub fn parse_args(args: &[OsString]) -> Result<Options, String> {
    let mut o = Options::default();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].to_string_lossy().into_owned();
        let opt = a.strip_prefix("--").or_else(|| a.strip_prefix('-'));
        let Some(opt) = opt.filter(|_| o.program.is_empty()) else {
            o.program.extend(args[i..].iter().cloned());
            break;
        };
        let (name, inline) = match opt.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (opt, None),
        };
        let mut value = |what: &str| -> Result<String, String> {
            if let Some(v) = inline.clone() {
                return Ok(v);
            }
            i += 1;
            args.get(i)
                .map(|v| v.to_string_lossy().into_owned())
                .ok_or_else(|| format!("option '-{name}' requires {what}"))
        };
        match name {
            "batch" => o.batch = true,
            "q" | "quiet" | "silent" | "nx" | "n" | "nh" => {}
            "ex" | "eval-command" => o.sources.push(Source::Command(value("a command")?)),
            "x" | "command" => o.sources.push(Source::File(value("a file")?.into())),
            "p" | "pid" | "attach" => {
                let v = value("a process id")?;
                o.attach = Some(v.parse().map_err(|_| format!("invalid process id \"{v}\""))?);
            }
            "args" => {
                o.program.extend(args[i + 1..].iter().cloned());
                break;
            }
            "" => {
                o.program.extend(args[i + 1..].iter().cloned());
                break;
            }
            _ => {
                return Err(format!(
                    "unrecognized option '{a}'\nUse `xol debug --help' for a complete list of options."
                ))
            }
        }
        i += 1;
    }
    Ok(o)
}

/// What `xol debug --help` prints.
pub const USAGE: &str = "\
Usage: xol debug [OPTIONS] [PROGRAM [ARGS...]]
       xol debug [OPTIONS] --attach PID

The standalone debugger: gdb's commands and output, over xol's core.

Options:
  -batch           run the -ex/-x commands, then exit (status of the last command)
  -ex CMD          run CMD (repeatable, in order with -x)
  -x FILE          run the commands in FILE
  -p, --attach PID debug a running process
  --args           the rest is the program and its arguments
  -q, -nx          accepted, as gdb's (no banner, no init file are the default)

Type \"help\" at the prompt for the commands.";

/// A user's breakpoint.
#[derive(Debug, Clone)]
struct Breakpoint {
    num: u32,
    temp: bool,
    enabled: bool,
    /// The location as written.
    text: String,
    location: Location,
    /// Where it is in the process (or, before the program runs, at its link-time address).
    addr: Option<u64>,
    /// Inserted in the process at `addr`.
    inserted: bool,
    hits: u64,
    /// `*EXPR` with an expression: evaluated again in each new process (a PIE's symbols move).
    expr: Option<String>,
    /// `condition N EXPR`: stop only where it is nonzero (evaluated here, at the stop).
    condition: Option<String>,
    /// `ignore N COUNT`: crossings still to go past.
    ignore: u64,
    /// A watchpoint (hardware), not a breakpoint.
    watch: Option<Watch>,
}

/// A watchpoint: what it watches and the value last seen.
#[derive(Debug, Clone)]
struct Watch {
    kind: HwKind,
    /// The expression as written (`*(int *)&g_counter`).
    text: String,
    len: u64,
    signed: bool,
    old: u64,
}

/// What a stop comes to.
enum After {
    /// Shown to the user; `true` if it was the breakpoint a `continue N` counts.
    Stop(bool),
    /// Gone past silently: resume and wait again.
    Resume,
}

/// A display (`display[/F] EXPR`), shown at every stop.
#[derive(Debug, Clone)]
struct Display {
    num: u32,
    format: Option<char>,
    text: String,
}

/// The session.
struct Repl {
    dbg: Debugger,
    owner: Owner,
    program: Option<PathBuf>,
    args: Vec<OsString>,
    pid: Option<Pid>,
    attached: bool,
    thread: Option<Tid>,
    bps: Vec<Breakpoint>,
    next_bp: u32,
    history: Vec<expr::Value>,
    handling: BTreeMap<i32, signals::Handling>,
    thread_ids: BTreeMap<Tid, u32>,
    next_thread: u32,
    syms: Symbolizer,
    /// The signal the program stopped with, delivered on resume if `handle` passes it.
    pending_signal: Option<i32>,
    /// The last `x` format and unit, and the address after the last `x`.
    last_x: (char, char, u64),
    interactive: bool,
    out: std::io::Stdout,
    /// The program's terminal for the next run (`tty`).
    tty: Option<PathBuf>,
    /// The selected frame (0: innermost); back to 0 at every stop.
    frame: usize,
    displays: Vec<Display>,
    next_display: u32,
}

/// An error a command reports (printed, the session goes on).
type CmdResult = Result<(), String>;

/// Run `xol debug` with gdb-style `args`; returns the exit status.
pub fn run(args: &[OsString]) -> i32 {
    let opts = match parse_args(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("xol debug: {e}");
            return 1;
        }
    };
    if opts.program.first().is_some_and(|p| p == "--help" || p == "-h") {
        println!("{USAGE}");
        return 0;
    }
    if let Err(e) = Debugger::init_signals() {
        eprintln!("xol debug: {e}");
        return 1;
    }
    let mut dbg = Debugger::new();
    dbg.subscribe(Subscription { lifecycle: true, probe_hits: false });
    let owner = Owner::Client(dbg.new_client());
    let interactive = !opts.batch && std::io::IsTerminal::is_terminal(&std::io::stdin());
    let mut r = Repl {
        dbg,
        owner,
        program: None,
        args: Vec::new(),
        pid: None,
        attached: false,
        thread: None,
        bps: Vec::new(),
        next_bp: 1,
        history: Vec::new(),
        handling: signals::all().map(|s| (s, signals::default_handling(s))).collect(),
        thread_ids: BTreeMap::new(),
        next_thread: 1,
        syms: Symbolizer::default(),
        pending_signal: None,
        last_x: ('x', 'w', 0),
        interactive,
        out: std::io::stdout(),
        tty: None,
        frame: 0,
        displays: Vec::new(),
        next_display: 1,
    };
    if let Some(prog) = opts.program.first() {
        let path = PathBuf::from(prog);
        if !path.exists() {
            eprintln!("{}: No such file or directory.", path.display());
        } else {
            r.program = Some(path);
            r.args = opts.program[1..].to_vec();
            r.file_symbols();
        }
    }
    let mut status = 0;
    if let Some(pid) = opts.attach {
        let res = r.attach(&pid.to_string());
        status = r.report(res);
    }
    for src in &opts.sources {
        let lines = match src {
            Source::Command(c) => vec![c.clone()],
            Source::File(f) => match std::fs::read_to_string(f) {
                Ok(t) => t.lines().map(str::to_string).collect(),
                Err(e) => {
                    eprintln!("{}: {e}.", f.display());
                    status = 1;
                    continue;
                }
            },
        };
        for line in lines {
            match r.line(&line) {
                Ok(true) => return r.quit(),
                Ok(false) => status = 0,
                Err(e) => {
                    eprintln!("{e}");
                    status = 1;
                }
            }
        }
    }
    if opts.batch {
        r.quit();
        return status;
    }
    r.prompt_loop();
    r.quit()
}

impl Repl {
    /// Print an error of a command; 1 if there was one.
    fn report(&mut self, r: CmdResult) -> i32 {
        match r {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("{e}");
                1
            }
        }
    }

    fn prompt_loop(&mut self) {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            // Commands from a pipe or a file: no line editing, no history.
            return self.plain_loop();
        }
        let history = std::env::var_os("XOL_HISTORY")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".xol_history")));
        let mut editor = match rustyline::Editor::<CommandHelper, rustyline::history::DefaultHistory>::new() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("xol debug: no line editor ({e}); reading plain lines");
                return self.plain_loop();
            }
        };
        editor.set_helper(Some(CommandHelper));
        if let Some(h) = &history {
            let _ = editor.load_history(h);
        }
        loop {
            match editor.readline("(xol) ") {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    match self.line(&line) {
                        Ok(true) => break,
                        Ok(false) => {}
                        Err(e) => eprintln!("{e}"),
                    }
                }
                Err(rustyline::error::ReadlineError::Interrupted) => println!("Quit"),
                Err(_) => {
                    println!("quit");
                    break;
                }
            }
        }
        if let Some(h) = &history {
            let _ = editor.save_history(h);
        }
    }

    fn plain_loop(&mut self) {
        let stdin = std::io::stdin();
        let mut line = String::new();
        loop {
            print!("(xol) ");
            let _ = self.out.flush();
            line.clear();
            match stdin.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => match self.line(&line) {
                    Ok(true) => break,
                    Ok(false) => {}
                    Err(e) => eprintln!("{e}"),
                },
            }
        }
    }

    /// Leave: kill what was started, detach what was attached. Returns 0.
    fn quit(&mut self) -> i32 {
        if let Some(pid) = self.pid.take() {
            let _ = if self.attached { self.dbg.detach(pid) } else { self.dbg.kill(pid) };
        }
        0
    }

    /// Run one line. `Ok(true)`: quit.
    fn line(&mut self, line: &str) -> Result<bool, String> {
        let Some(Parsed { cmd, format, args }) = command::parse(line)? else { return Ok(false) };
        let a = args.as_str();
        match cmd {
            Cmd::Quit => return Ok(true),
            Cmd::Help => println!("{}", command::help(a)?),
            Cmd::Echo => {
                print!("{}", a.replace("\\n", "\n").replace("\\t", "\t"));
                let _ = self.out.flush();
            }
            Cmd::Break => self.breakpoint(a, false)?,
            Cmd::Tbreak => self.breakpoint(a, true)?,
            Cmd::Delete => self.delete(a)?,
            Cmd::Disable => self.enable(a, false)?,
            Cmd::Enable => self.enable(a, true)?,
            Cmd::Run => self.start_program(a, false)?,
            Cmd::Start => self.start_program(a, true)?,
            Cmd::Continue => self.continue_(a)?,
            Cmd::Kill => self.kill()?,
            Cmd::Attach => self.attach(a)?,
            Cmd::Detach => self.detach()?,
            Cmd::Stepi => self.stepi(a, false)?,
            Cmd::Condition => self.condition(a)?,
            Cmd::Ignore => self.ignore(a)?,
            Cmd::Watch => self.watch(a, HwKind::Write)?,
            Cmd::Rwatch => self.watch(a, HwKind::Read)?,
            Cmd::Awatch => self.watch(a, HwKind::Access)?,
            Cmd::Display => self.display(&format, a)?,
            Cmd::Undisplay => self.undisplay(a)?,
            Cmd::Advance => self.advance(a)?,
            Cmd::Backtrace => self.backtrace(a)?,
            Cmd::Finish => self.finish()?,
            Cmd::Frame => self.frame_cmd(a)?,
            Cmd::Up => self.move_frame(a, true)?,
            Cmd::Down => self.move_frame(a, false)?,
            Cmd::Nexti => self.stepi(a, true)?,
            Cmd::Print => self.print(&format, a)?,
            Cmd::Examine => self.examine(&format, a)?,
            Cmd::Thread => self.select_thread(a)?,
            Cmd::Tty => self.tty = if a.is_empty() { None } else { Some(PathBuf::from(a)) },
            Cmd::Handle => self.handle(a)?,
            Cmd::Count => self.count(a)?,
            Cmd::Uncount => self.uncount(a)?,
            Cmd::Probes => self.probes(),
            Cmd::Info(i) => self.info(i, a)?,
        }
        Ok(false)
    }

    /// Ask a yes-or-no question as gdb does. Without a terminal the answer is the default,
    /// and gdb's note says so.
    fn query(&mut self, question: &str, default_yes: bool) -> bool {
        let choices = if default_yes { "(y or n)" } else { "(y or [n])" };
        if !self.interactive {
            let a = if default_yes { "Y" } else { "N" };
            println!("{question} {choices} [answered {a}; input not from terminal]");
            return default_yes;
        }
        loop {
            print!("{question} {choices} ");
            let _ = self.out.flush();
            let mut line = String::new();
            if std::io::stdin().read_line(&mut line).unwrap_or(0) == 0 {
                println!("EOF [answered Y; input not from terminal]");
                return true;
            }
            match line.trim() {
                "y" | "Y" | "yes" => return true,
                "n" | "N" | "no" => return false,
                "" if !default_yes => return false,
                _ => println!("Please answer y or n."),
            }
        }
    }

    fn need_process(&self) -> Result<Pid, String> {
        self.pid.ok_or_else(|| "The program is not being run.".to_string())
    }

    // ---- breakpoints ----

    fn breakpoint(&mut self, text: &str, temp: bool) -> CmdResult {
        let text = if text.is_empty() {
            return Err("No default breakpoint location now selected.".into());
        } else {
            text
        };
        // `*EXPR`: an address computed as gdb does (`*main+4`, `*$pc`).
        let expr_text =
            text.strip_prefix('*').filter(|e| !e.trim().starts_with("0x") || e.contains(['+', '-', '$', '(']));
        let location: Location = match expr_text {
            Some(e) => Location::Address(expr::eval(e, &*self)?.bits),
            None => text.parse().map_err(|e: crate::debugger::LocationError| e.why)?,
        };
        let num = self.next_bp;
        let mut bp = Breakpoint {
            num,
            temp,
            enabled: true,
            text: text.into(),
            location,
            addr: None,
            inserted: false,
            hits: 0,
            expr: expr_text.map(str::to_string),
            condition: None,
            ignore: 0,
            watch: None,
        };
        if self.pid.is_none() && matches!(bp.location, Location::Symbol(_)) {
            if let Err(e) = self.resolve_in_file(&bp.location) {
                // gdb offers a pending breakpoint (on a library loaded later).
                eprintln!("{e}");
                if !self.query("Make breakpoint pending on future shared library load?", false) {
                    return Ok(());
                }
            }
        }
        match self.pid {
            Some(pid) => {
                let addr = self.resolve(pid, &bp.location)?;
                self.dbg.insert_breakpoint(pid, VirtAddr(addr), self.owner).map_err(|e| e.to_string())?;
                bp.addr = Some(addr);
                bp.inserted = true;
            }
            None => bp.addr = self.resolve_in_file(&bp.location).unwrap_or(None),
        }
        self.next_bp += 1;
        let kind = if temp { "Temporary breakpoint" } else { "Breakpoint" };
        match bp.addr {
            Some(a) => println!("{kind} {num} at {a:#x}"),
            None => println!("{kind} {num} ({text}) pending."),
        }
        self.bps.push(bp);
        Ok(())
    }

    /// A location in the running process, with gdb's prologue skip for a function.
    fn resolve(&mut self, pid: Pid, loc: &Location) -> Result<u64, String> {
        let addr = self.dbg.resolve_location(pid, loc).map_err(|e| self.location_error(loc, e.to_string()))?.0;
        if matches!(loc, Location::Address(_)) {
            return Ok(addr);
        }
        let mut code = [0u8; 8];
        let n = self.dbg.read_memory(pid, VirtAddr(addr), &mut code).unwrap_or(0);
        Ok(addr + symbolize::skip_prologue(&code[..n]))
    }

    /// A location before the program runs: its link-time address in the program's file (a
    /// library's function is pending until the library is loaded).
    fn resolve_in_file(&mut self, loc: &Location) -> Result<Option<u64>, String> {
        match loc {
            Location::Address(a) => Ok(Some(*a)),
            Location::Symbol(name) => {
                let prog = self.program.clone().ok_or("No symbol table is loaded.  Use the \"file\" command.")?;
                let bytes = crate::symbols::read_file(&prog)?;
                let sym = crate::symbols::lookup_symbol(&bytes, name)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("Function \"{name}\" not defined."))?;
                let code = file_bytes(&bytes, sym.value, 8);
                Ok(Some(sym.value + symbolize::skip_prologue(&code)))
            }
            Location::InFile { .. } => Ok(None),
            Location::Line { .. } => Err(format!("{loc}: source lines need debug information (not read yet).")),
        }
    }

    fn location_error(&self, loc: &Location, why: String) -> String {
        match loc {
            Location::Symbol(name) if why.contains("no symbol") => format!("Function \"{name}\" not defined."),
            _ => why,
        }
    }

    fn numbers(&self, text: &str) -> Result<Vec<u32>, String> {
        text.split_whitespace()
            .map(|w| {
                w.parse::<u32>().map_err(|_| {
                    "Convenience variable must have integer value.\nArgs must be numbers or '$' variables.".to_string()
                })
            })
            .collect()
    }

    fn delete(&mut self, text: &str) -> CmdResult {
        let nums = self.numbers(text)?;
        let all = nums.is_empty();
        if all && self.interactive && !self.bps.is_empty() && !self.query("Delete all breakpoints?", true) {
            return Ok(());
        }
        for n in nums.iter().filter(|n| !self.bps.iter().any(|b| b.num == **n)) {
            eprintln!("No breakpoint number {n}.");
        }
        let mut keep = Vec::new();
        for bp in std::mem::take(&mut self.bps) {
            if all || nums.contains(&bp.num) {
                self.uninsert(&bp);
            } else {
                keep.push(bp);
            }
        }
        self.bps = keep;
        Ok(())
    }

    fn uninsert(&mut self, bp: &Breakpoint) {
        if let (Some(pid), Some(addr), true) = (self.pid, bp.addr, bp.inserted) {
            match &bp.watch {
                Some(w) => {
                    let _ = self.dbg.remove_hw(pid, VirtAddr(addr), w.len, w.kind);
                }
                None => {
                    let _ = self.dbg.remove_breakpoint(pid, VirtAddr(addr), self.owner);
                }
            }
        }
    }

    /// Insert breakpoint or watchpoint `i` at its address.
    fn insert_one(&mut self, pid: Pid, i: usize) -> CmdResult {
        let Some(addr) = self.bps[i].addr else { return Ok(()) };
        match &self.bps[i].watch {
            Some(w) => self.dbg.insert_hw(pid, VirtAddr(addr), w.len, w.kind).map_err(|e| e.to_string())?,
            None => self.dbg.insert_breakpoint(pid, VirtAddr(addr), self.owner).map_err(|e| e.to_string())?,
        }
        self.bps[i].inserted = true;
        Ok(())
    }

    fn enable(&mut self, text: &str, on: bool) -> CmdResult {
        let nums = self.numbers(text)?;
        for n in &nums {
            if !self.bps.iter().any(|b| b.num == *n) {
                eprintln!("No breakpoint number {n}.");
            }
        }
        let pid = self.pid;
        for i in 0..self.bps.len() {
            if !(nums.is_empty() || nums.contains(&self.bps[i].num)) || self.bps[i].enabled == on {
                continue;
            }
            self.bps[i].enabled = on;
            if let Some(pid) = pid {
                if on && !self.bps[i].inserted {
                    self.insert_one(pid, i)?;
                } else if !on && self.bps[i].inserted {
                    let bp = self.bps[i].clone();
                    self.uninsert(&bp);
                    self.bps[i].inserted = false;
                }
            }
        }
        Ok(())
    }

    /// Insert every enabled breakpoint into the new process (and resolve pending ones).
    fn insert_all(&mut self, pid: Pid) {
        for i in 0..self.bps.len() {
            if !self.bps[i].enabled || self.bps[i].inserted {
                continue;
            }
            if let Some(text) = self.bps[i].watch.as_ref().map(|w| w.text.clone()) {
                // A watchpoint's address is computed again in the new process.
                if let Ok((addr, len, signed)) = self.lvalue(&text) {
                    let old = self.read_value(addr, len, signed).unwrap_or(0);
                    self.bps[i].addr = Some(addr);
                    if let Some(w) = self.bps[i].watch.as_mut() {
                        (w.len, w.signed, w.old) = (len, signed, old);
                    }
                    let _ = self.insert_one(pid, i);
                }
                continue;
            }
            if let Some(e) = self.bps[i].expr.clone() {
                match expr::eval(&e, &*self) {
                    Ok(v) => self.bps[i].location = Location::Address(v.bits),
                    Err(_) => continue,
                }
            }
            let loc = self.bps[i].location.clone();
            // One that cannot be resolved yet (a library not loaded) stays pending.
            if let Ok(addr) = self.resolve(pid, &loc) {
                if self.dbg.insert_breakpoint(pid, VirtAddr(addr), self.owner).is_ok() {
                    self.bps[i].addr = Some(addr);
                    self.bps[i].inserted = true;
                }
            }
        }
    }

    // ---- running ----

    fn start_program(&mut self, args: &str, stop_at_main: bool) -> CmdResult {
        let prog =
            self.program.clone().ok_or("No executable file specified.\nUse the \"file\" or \"exec-file\" command.")?;
        if let Some(pid) = self.pid {
            println!("The program being debugged has been started already.");
            if !self.query("Start it from the beginning?", true) {
                return Err("Program not restarted.".into());
            }
            let _ = if self.attached { self.dbg.detach(pid) } else { self.dbg.kill(pid) };
            self.process_gone(pid);
        }
        if !args.is_empty() {
            self.args = args.split_whitespace().map(OsString::from).collect();
        }
        if stop_at_main {
            self.breakpoint("main", true)?;
        }
        let mut argv = vec![prog.clone().into_os_string()];
        argv.extend(self.args.iter().cloned());
        if self.interactive {
            let shown: Vec<String> = argv.iter().map(|a| a.to_string_lossy().into_owned()).collect();
            println!("Starting program: {}", shown.join(" "));
        }
        let launch = Launch { tty: self.tty.clone(), ..Launch::new(argv) };
        let pid = self.dbg.launch(&launch).map_err(|e| e.to_string())?;
        self.pid = Some(pid);
        self.attached = false;
        self.new_process(pid);
        self.insert_all(pid);
        self.resume_and_wait(Action::CONTINUE)
    }

    fn new_process(&mut self, pid: Pid) {
        for bp in &mut self.bps {
            bp.inserted = false;
            if !matches!(bp.location, Location::Address(_)) || bp.expr.is_some() {
                bp.addr = None;
            }
        }
        self.thread_ids.clear();
        self.next_thread = 1;
        self.thread_number(pid.leader());
        self.thread = Some(pid.leader());
        self.pending_signal = None;
        self.refresh_symbols(pid);
    }

    fn refresh_symbols(&mut self, pid: Pid) {
        self.syms.clear();
        if let Ok(exe) = self.dbg.exe(pid) {
            // The program's bias: where one of its symbols is now, against the file.
            let bias = crate::symbols::read_file(&exe)
                .ok()
                .and_then(|b| {
                    let s = crate::symbols::symbols(&b).ok()?.into_iter().find(|s| s.is_func && s.value != 0)?;
                    let at = self.dbg.resolve_location(pid, &Location::Symbol(s.name.clone())).ok()?;
                    Some(at.0.wrapping_sub(s.value))
                })
                .unwrap_or(0);
            self.syms.add(&exe, bias, true);
        }
        if let Ok(libs) = self.dbg.libraries(pid) {
            for l in libs.libraries.iter().filter(|l| !l.name.is_empty()) {
                self.syms.add(std::path::Path::new(&l.name), l.l_addr, false);
            }
        }
    }

    fn thread_number(&mut self, tid: Tid) -> u32 {
        if let Some(n) = self.thread_ids.get(&tid) {
            return *n;
        }
        let n = self.next_thread;
        self.next_thread += 1;
        self.thread_ids.insert(tid, n);
        n
    }

    fn continue_(&mut self, args: &str) -> CmdResult {
        self.need_process()?;
        if let Ok(n) = args.trim().parse::<u64>() {
            // Ignore the breakpoint the program stopped at N-1 more times.
            if let Some(pc) = self.current_pc() {
                if let Some(num) = self.bps.iter().find(|b| b.addr == Some(pc) && b.inserted).map(|b| b.num) {
                    println!("Will ignore next {} crossings of breakpoint {num}.  Continuing.", n.saturating_sub(1));
                    return self.resume_ignoring(num, n.saturating_sub(1));
                }
            }
        }
        if self.interactive {
            println!("Continuing.");
        }
        self.resume_and_wait(Action::CONTINUE)
    }

    fn resume_ignoring(&mut self, num: u32, mut skip: u64) -> CmdResult {
        loop {
            self.resume_quiet(Action::CONTINUE)?;
            let at_bp = self.wait_stop(skip > 0, num)?;
            if !at_bp || skip == 0 {
                return Ok(());
            }
            skip -= 1;
        }
    }

    fn current_pc(&self) -> Option<u64> {
        let tid = self.thread?;
        self.dbg.read_registers(tid).ok().map(|r| r.gp.rip)
    }

    /// Resume with `act` for the current thread (the others continue) and report the stop.
    fn resume_and_wait(&mut self, act: Action) -> CmdResult {
        self.resume_quiet(act)?;
        self.wait_stop(false, 0).map(|_| ())
    }

    fn resume_quiet(&mut self, act: Action) -> CmdResult {
        let pid = self.need_process()?;
        let sig = self.pending_signal.take().filter(|s| self.handling.get(s).is_some_and(|h| h.pass)).unwrap_or(0);
        let tid = self.thread.unwrap_or(pid.leader());
        let mine = Action { sig, ..act };
        let others = if act.step { None } else { Some(Action::CONTINUE) };
        // gdb's default scheduler: on a step, the other threads run too.
        let others = others.or(Some(Action::CONTINUE));
        self.dbg.resume(pid, &[(tid, mine)], others).map_err(|e| e.to_string())
    }

    /// Wait for the program to stop and print why, as gdb does. With `quiet_at`, a hit of
    /// breakpoint `quiet_at` is counted but not printed (`continue N`). Returns true if the
    /// stop was a hit of that breakpoint.
    fn wait_stop(&mut self, quiet: bool, quiet_at: u32) -> Result<bool, String> {
        let pid = self.need_process()?;
        let (tid, kind) = self.wait_raw()?;
        self.stopped(pid, tid, kind, quiet, quiet_at)
    }

    fn notice(&mut self, n: Notice) {
        match n {
            Notice::ThreadStarted { tid, .. } => {
                self.thread_number(tid);
                println!("[New LWP {}]", tid.0);
            }
            Notice::ThreadExited { tid, .. } => println!("[LWP {} exited]", tid.0),
            Notice::Forked { child, vfork, followed: false, .. } => {
                println!("[Detaching after {} from child process {}]", if vfork { "vfork" } else { "fork" }, child.0)
            }
            Notice::Exec { .. } => {}
            _ => {}
        }
    }

    fn stopped(&mut self, pid: Pid, tid: Tid, kind: StopKind, quiet: bool, quiet_at: u32) -> Result<bool, String> {
        let (mut tid, mut kind) = (tid, kind);
        loop {
            match self.show_stop(pid, tid, kind, quiet, quiet_at)? {
                After::Stop(at) => {
                    if self.pid.is_some() {
                        self.show_displays();
                    }
                    return Ok(at);
                }
                After::Resume => {
                    // A stop the user does not see (a false condition, an ignored crossing, a
                    // signal that does not stop): on, and wait again.
                    self.resume_quiet(Action::CONTINUE)?;
                    (tid, kind) = self.wait_raw()?;
                }
            }
        }
    }

    /// Print a stop as gdb does, or say that it is to be gone past silently.
    fn show_stop(&mut self, pid: Pid, tid: Tid, kind: StopKind, quiet: bool, quiet_at: u32) -> Result<After, String> {
        self.thread = Some(tid);
        self.frame = 0;
        self.thread_number(tid);
        match kind {
            StopKind::Exited(code) => {
                self.process_gone(pid);
                if code == 0 {
                    println!("[Inferior 1 (process {}) exited normally]", pid.0);
                } else {
                    println!("[Inferior 1 (process {}) exited with code {:02o}]", pid.0, code);
                }
                return Ok(After::Stop(false));
            }
            StopKind::Killed(sig) => {
                self.process_gone(pid);
                println!("\nProgram terminated with signal {}, {}.", signals::name(sig), signals::description(sig));
                println!("The program no longer exists.");
                return Ok(After::Stop(false));
            }
            _ => {}
        }
        // The library list may have changed since the last stop.
        self.refresh_symbols(pid);
        let pc = self.dbg.read_registers(tid).map(|r| r.gp.rip).unwrap_or(0);
        let frame = format!("{pc:#018x} in {}", self.syms.frame(pc));
        match kind {
            StopKind::Breakpoint => {
                let Some(i) = self.bps.iter().position(|b| b.inserted && b.addr == Some(pc)) else {
                    println!("\nProgram received signal SIGTRAP, Trace/breakpoint trap.\n{frame}");
                    return Ok(After::Stop(false));
                };
                if let Some(cond) = self.bps[i].condition.clone() {
                    match expr::eval(&cond, &*self) {
                        Ok(v) if v.bits == 0 => return Ok(After::Resume),
                        Ok(_) => {}
                        Err(e) => println!("Error in testing condition for breakpoint {}:\n{e}", self.bps[i].num),
                    }
                }
                self.bps[i].hits += 1;
                if self.bps[i].ignore > 0 {
                    self.bps[i].ignore -= 1;
                    return Ok(After::Resume);
                }
                let (num, temp) = (self.bps[i].num, self.bps[i].temp);
                if quiet && num == quiet_at {
                    return Ok(After::Stop(true));
                }
                if temp {
                    let bp = self.bps.remove(i);
                    self.uninsert(&bp);
                    println!("\nTemporary breakpoint {num}, {frame}");
                } else {
                    println!("\nBreakpoint {num}, {frame}");
                }
                Ok(After::Stop(num == quiet_at))
            }
            StopKind::Step | StopKind::Stopped => {
                println!("{frame}");
                Ok(After::Stop(false))
            }
            StopKind::Signal(sig) => {
                let h = self.handling.get(&sig).copied().unwrap_or(signals::default_handling(sig));
                self.pending_signal = Some(sig);
                if h.print {
                    println!("\nProgram received signal {}, {}.", signals::name(sig), signals::description(sig));
                }
                if !h.stop {
                    // Passed on (or not) without a stop.
                    return Ok(After::Resume);
                }
                println!("{frame}");
                Ok(After::Stop(false))
            }
            StopKind::Watch { addr, .. } => self.watch_hit(addr, &frame),
            other => {
                println!("\nProgram stopped ({other:?}).\n{frame}");
                Ok(After::Stop(false))
            }
        }
    }

    fn process_gone(&mut self, pid: Pid) {
        if self.pid == Some(pid) {
            self.pid = None;
        }
        self.thread = None;
        for bp in &mut self.bps {
            bp.inserted = false;
        }
        self.file_symbols();
    }

    /// Without a process: the program's own symbols at their link-time addresses (what gdb
    /// shows before `run`).
    fn file_symbols(&mut self) {
        self.syms.clear();
        if let Some(p) = self.program.clone() {
            self.syms.add(&p, 0, true);
        }
    }

    fn kill(&mut self) -> CmdResult {
        let pid = self.need_process()?;
        if !self.query("Kill the program being debugged?", true) {
            return Err("Not confirmed.".into());
        }
        self.dbg.kill(pid).map_err(|e| e.to_string())?;
        self.process_gone(pid);
        println!("[Inferior 1 (process {}) killed]", pid.0);
        Ok(())
    }

    fn attach(&mut self, text: &str) -> CmdResult {
        let pid: i32 = text.trim().parse().map_err(|_| "Argument required (process-id to attach).".to_string())?;
        if self.pid.is_some() {
            return Err("A program is being debugged already.  Kill it first (\"kill\").".into());
        }
        println!("Attaching to process {pid}");
        let pid = Pid(pid);
        self.dbg.attach(pid).map_err(|e| format!("ptrace: {e}."))?;
        self.pid = Some(pid);
        self.attached = true;
        if self.program.is_none() {
            self.program = self.dbg.exe(pid).ok();
        }
        self.new_process(pid);
        self.insert_all(pid);
        let pc = self.current_pc().unwrap_or(0);
        println!("{pc:#018x} in {}", self.syms.frame(pc));
        Ok(())
    }

    fn detach(&mut self) -> CmdResult {
        let pid = self.need_process()?;
        let prog = self.program.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
        println!("Detaching from program: {prog}, process {}", pid.0);
        self.dbg.detach(pid).map_err(|e| e.to_string())?;
        self.process_gone(pid);
        println!("[Inferior 1 (process {}) detached]", pid.0);
        Ok(())
    }

    fn stepi(&mut self, args: &str, over_calls: bool) -> CmdResult {
        self.need_process()?;
        let n: u64 =
            if args.is_empty() { 1 } else { args.parse().map_err(|_| format!("Invalid number \"{args}\"."))? };
        for i in 0..n {
            let pid = self.need_process()?;
            let tid = self.thread.unwrap_or(pid.leader());
            let pc = self.current_pc().ok_or("The program has no registers now.")?;
            let mut code = [0u8; 16];
            let got = self.dbg.read_memory(pid, VirtAddr(pc), &mut code).unwrap_or(0);
            let call = xol_arch::boundary::first_instruction(&code[..got], pc).filter(|(_, call)| *call && over_calls);
            let quiet_last = i + 1 < n;
            if let Some((len, _)) = call {
                // nexti over a call: run to the instruction after it.
                let after = VirtAddr(pc + len as u64);
                self.dbg.insert_breakpoint(pid, after, self.owner).map_err(|e| e.to_string())?;
                self.resume_quiet(Action::CONTINUE)?;
                let r = self.wait_raw();
                if self.pid == Some(pid) {
                    let _ = self.dbg.remove_breakpoint(pid, after, self.owner);
                }
                let (stop_tid, kind) = r?;
                if kind == StopKind::Breakpoint && stop_tid == tid && self.current_pc() == Some(after.0) {
                    if !quiet_last {
                        self.stopped(pid, tid, StopKind::Step, false, 0)?;
                    }
                    continue;
                }
                self.stopped(pid, stop_tid, kind, false, 0)?;
                return Ok(());
            }
            self.resume_quiet(Action::step(0))?;
            let (stop_tid, kind) = self.wait_raw()?;
            if kind == StopKind::Step && quiet_last {
                continue;
            }
            self.stopped(pid, stop_tid, kind, false, 0)?;
            if kind != StopKind::Step {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Wait for the next stop of the program without printing it (notices are printed).
    fn wait_raw(&mut self) -> Result<(Tid, StopKind), String> {
        loop {
            let pid = self.need_process()?;
            match self.dbg.wait(None).map_err(|e| e.to_string())? {
                WaitOutcome::Notice(n) => self.notice(n),
                WaitOutcome::Stopped(ev) if ev.pid == pid => return Ok((ev.tid, ev.kind)),
                WaitOutcome::NoProcesses => {
                    self.pid = None;
                    return Err("The program is not being run.".into());
                }
                WaitOutcome::Terminate if self.dbg.terminate_signal() == Some(libc::SIGINT) => {
                    // Ctrl-C: stop the program, not xol. From the terminal it reached the
                    // program too (same process group); otherwise send it on.
                    let from_tty = self.dbg.terminate_from_terminal();
                    self.dbg.clear_terminate_signal(libc::SIGINT);
                    if !from_tty {
                        let _ = self.dbg.interrupt(pid);
                    }
                }
                WaitOutcome::Terminate => {
                    let sig = self.dbg.terminate_signal().unwrap_or(libc::SIGTERM);
                    let _ = self.quit();
                    std::process::exit(128 + sig);
                }
                _ => {}
            }
        }
    }

    // ---- conditions, watchpoints, displays ----

    fn breakpoint_index(&self, n: u32) -> Result<usize, String> {
        self.bps.iter().position(|b| b.num == n).ok_or_else(|| format!("No breakpoint number {n}."))
    }

    /// `condition N [EXPR]`: evaluated at each hit; no EXPR removes it.
    fn condition(&mut self, args: &str) -> CmdResult {
        let (n, cond) = args.split_once(char::is_whitespace).unwrap_or((args, ""));
        let n: u32 = n.parse().map_err(|_| "Argument required (breakpoint number).".to_string())?;
        let i = self.breakpoint_index(n)?;
        let cond = cond.trim();
        if cond.is_empty() {
            self.bps[i].condition = None;
            println!("Breakpoint {n} now unconditional.");
        } else {
            self.bps[i].condition = Some(cond.to_string());
        }
        Ok(())
    }

    /// `ignore N COUNT`.
    fn ignore(&mut self, args: &str) -> CmdResult {
        let mut w = args.split_whitespace();
        let n: u32 = w.next().and_then(|x| x.parse().ok()).ok_or("Argument required (a breakpoint number).")?;
        let count: u64 =
            w.next().and_then(|x| x.parse().ok()).ok_or("Second argument (specified ignore-count) is missing.")?;
        let i = self.breakpoint_index(n)?;
        self.bps[i].ignore = count;
        if self.interactive {
            match count {
                0 => println!("Will stop next time breakpoint {n} is reached."),
                1 => println!("Will ignore next crossing of breakpoint {n}."),
                c => println!("Will ignore next {c} crossings of breakpoint {n}."),
            }
        }
        Ok(())
    }

    /// The address, size and signedness an expression designates (`*(int *)&g_counter`).
    fn lvalue(&self, text: &str) -> Result<(u64, u64, bool), String> {
        let inner = text.trim().strip_prefix('*').ok_or_else(|| format!("Cannot watch constant value `{text}'."))?;
        let v = expr::eval(inner, self)?;
        match v.kind {
            expr::Kind::PtrTo { size, signed } => Ok((v.bits, u64::from(size), signed)),
            expr::Kind::SymAddr { .. } | expr::Kind::DataPtr => {
                Err("Attempt to take contents of a non-pointer value.".into())
            }
            _ => Ok((v.bits, 4, true)),
        }
    }

    fn read_value(&self, addr: u64, len: u64, signed: bool) -> Option<u64> {
        let pid = self.pid?;
        let mut b = [0u8; 8];
        let n = len as usize;
        if !matches!(self.dbg.read_memory(pid, VirtAddr(addr), &mut b[..n]), Ok(k) if k == n) {
            return None;
        }
        let raw = u64::from_le_bytes(b);
        // Sign-extended to 64 bits for a signed type, as the value is shown.
        let shift = 64 - 8 * (n as u32).min(8);
        Some(if signed && shift < 64 && shift > 0 { (((raw << shift) as i64) >> shift) as u64 } else { raw })
    }

    /// `watch`, `rwatch`, `awatch EXPR`: a hardware watchpoint on the memory `EXPR` designates.
    fn watch(&mut self, text: &str, kind: HwKind) -> CmdResult {
        let pid = self
            .need_process()
            .map_err(|_| "Cannot watch constant value: the program is not being run.".to_string())?;
        if text.is_empty() {
            return Err("Argument required (expression to compute).".into());
        }
        let (addr, len, signed) = self.lvalue(text)?;
        let old =
            self.read_value(addr, len, signed).ok_or_else(|| format!("Cannot access memory at address {addr:#x}"))?;
        let num = self.next_bp;
        self.dbg.insert_hw(pid, VirtAddr(addr), len, kind).map_err(|e| e.to_string())?;
        self.next_bp += 1;
        let label = match kind {
            HwKind::Read => "Hardware read watchpoint",
            HwKind::Access => "Hardware access (read/write) watchpoint",
            _ => "Hardware watchpoint",
        };
        println!("{label} {num}: {text}");
        self.bps.push(Breakpoint {
            num,
            temp: false,
            enabled: true,
            text: text.to_string(),
            location: Location::Address(addr),
            addr: Some(addr),
            inserted: true,
            hits: 0,
            expr: None,
            condition: None,
            ignore: 0,
            watch: Some(Watch { kind, text: text.to_string(), len, signed, old }),
        });
        Ok(())
    }

    /// A watchpoint fired at `addr`: gdb's lines (`Old value`/`New value`, or `Value`). A write
    /// watchpoint whose value did not change is gone past, as gdb does.
    fn watch_hit(&mut self, addr: u64, frame: &str) -> Result<After, String> {
        let Some(i) = self.bps.iter().position(|b| b.watch.is_some() && b.inserted && b.addr == Some(addr)) else {
            println!("\nProgram received signal SIGTRAP, Trace/breakpoint trap.\n{frame}");
            return Ok(After::Stop(false));
        };
        let (num, w) = (self.bps[i].num, self.bps[i].watch.clone().ok_or("")?);
        let new = self.read_value(addr, w.len, w.signed).unwrap_or(w.old);
        let show = |v: u64| if w.signed { (v as i64).to_string() } else { v.to_string() };
        match w.kind {
            HwKind::Write if new == w.old => return Ok(After::Resume),
            // x86 watches reads only together with writes: a changed value was a write, which a
            // read watchpoint does not report (gdb's rule).
            HwKind::Read if new != w.old => {
                if let Some(wp) = self.bps[i].watch.as_mut() {
                    wp.old = new;
                }
                return Ok(After::Resume);
            }
            HwKind::Write => {
                println!(
                    "\nHardware watchpoint {num}: {}\n\nOld value = {}\nNew value = {}",
                    w.text,
                    show(w.old),
                    show(new)
                )
            }
            HwKind::Read => println!("\nHardware read watchpoint {num}: {}\n\nValue = {}", w.text, show(new)),
            _ if new != w.old => println!(
                "\nHardware access (read/write) watchpoint {num}: {}\n\nOld value = {}\nNew value = {}",
                w.text,
                show(w.old),
                show(new)
            ),
            _ => println!("\nHardware access (read/write) watchpoint {num}: {}\n\nValue = {}", w.text, show(new)),
        }
        self.bps[i].hits += 1;
        if let Some(wp) = self.bps[i].watch.as_mut() {
            wp.old = new;
        }
        println!("{frame}");
        Ok(After::Stop(false))
    }

    /// `display[/F] EXPR`, or the list again without EXPR.
    fn display(&mut self, fmt: &str, text: &str) -> CmdResult {
        if text.is_empty() {
            self.show_displays();
            return Ok(());
        }
        let d = Display { num: self.next_display, format: fmt.chars().last(), text: text.to_string() };
        self.next_display += 1;
        if self.interactive && self.pid.is_some() {
            self.show_display(&d);
        }
        self.displays.push(d);
        Ok(())
    }

    fn undisplay(&mut self, args: &str) -> CmdResult {
        if args.is_empty() {
            self.displays.clear();
            return Ok(());
        }
        for n in self.numbers(args)? {
            if !self.displays.iter().any(|d| d.num == n) {
                eprintln!("No display number {n}.");
            }
            self.displays.retain(|d| d.num != n);
        }
        Ok(())
    }

    fn show_display(&self, d: &Display) {
        let shown = expr::eval(&d.text, self).and_then(|v| expr::format(v, d.format, self));
        let f = d.format.map(|c| format!("/{c} ")).unwrap_or_default();
        match shown {
            Ok(v) => println!("{}: {f}{} = {v}", d.num, d.text),
            Err(e) => println!("{}: {f}{} = <error: {e}>", d.num, d.text),
        }
    }

    fn show_displays(&self) {
        for d in &self.displays {
            self.show_display(d);
        }
    }

    /// `advance LOCATION` / `until LOCATION`: run until the location is reached or the current
    /// frame returns, whichever comes first.
    fn advance(&mut self, text: &str) -> CmdResult {
        let pid = self.need_process()?;
        if text.is_empty() {
            return Err("Argument required (a location).".into());
        }
        let location: Location = match text.strip_prefix('*') {
            Some(e) => Location::Address(expr::eval(e, &*self)?.bits),
            None => text.parse().map_err(|e: crate::debugger::LocationError| e.why)?,
        };
        let target = self.resolve(pid, &location)?;
        let frames = self.unwind(false).unwrap_or_default();
        let mut stops = vec![target];
        if let Some(&(ret, _, _)) = frames.get(1) {
            stops.push(ret);
        }
        for a in &stops {
            self.dbg.insert_breakpoint(pid, VirtAddr(*a), self.owner).map_err(|e| e.to_string())?;
        }
        let r = self.resume_quiet(Action::CONTINUE).and_then(|_| self.wait_raw());
        if self.pid == Some(pid) {
            for a in &stops {
                let _ = self.dbg.remove_breakpoint(pid, VirtAddr(*a), self.owner);
            }
        }
        let (t, kind) = r?;
        let pc = self.current_pc();
        let ours = kind == StopKind::Breakpoint && pc.is_some_and(|p| stops.contains(&p));
        let users = pc.is_some_and(|p| self.bps.iter().any(|b| b.inserted && b.addr == Some(p)));
        let kind = if ours && !users { StopKind::Step } else { kind };
        self.stopped(pid, t, kind, false, 0)?;
        Ok(())
    }

    // ---- frames ----

    /// The stack, innermost first: (pc, sp, fp) per frame. Without CFI yet (DWARF comes with
    /// the debuginfo module): gdb's amd64 prologue analysis — before `push %rbp` the return
    /// address is at `sp`, between `push` and `mov %rsp,%rbp` at `sp+8`, after it at `fp+8`; a
    /// function without that frame setup is unwound only at its entry. Like gdb
    /// (`backtrace past-main off`) the walk stops at `main`.
    fn frames(&self) -> Result<Vec<(u64, u64, u64)>, String> {
        self.unwind(true)
    }

    /// [`Repl::frames`]; with `past_main` false the walk goes one frame past `main` too (where
    /// `main` returns to, for `finish` and `advance`).
    fn unwind(&self, stop_at_main: bool) -> Result<Vec<(u64, u64, u64)>, String> {
        let pid = self.need_process().map_err(|_| "No stack.".to_string())?;
        let tid = self.thread.unwrap_or(pid.leader());
        let r = self.dbg.read_registers(tid).map_err(|_| "No stack.".to_string())?.gp;
        let word = |a: u64| -> Option<u64> {
            let mut b = [0u8; 8];
            matches!(self.dbg.read_memory(pid, VirtAddr(a), &mut b), Ok(8)).then(|| u64::from_le_bytes(b))
        };
        let mut out = vec![(r.rip, r.rsp, r.rbp)];
        let (mut pc, mut sp, mut fp) = (r.rip, r.rsp, r.rbp);
        for depth in 0..256 {
            // A caller's pc is a return address: look it up one byte back (gdb's pc - 1).
            let look = if depth == 0 { pc } else { pc.wrapping_sub(1) };
            let Some((name, off, _)) = self.syms.lookup(look, true) else { break };
            let at_main = name == "main";
            if at_main && stop_at_main {
                break;
            }
            let start = look - off;
            let mut code = [0u8; 8];
            let n = self.dbg.read_memory(pid, VirtAddr(start), &mut code).unwrap_or(0);
            let code = &code[..n];
            let endbr = if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) { 4 } else { 0 };
            let framed = symbolize::skip_prologue(code) != 0;
            let here = pc - start;
            let (ret, csp, cfp) = if here <= endbr {
                (word(sp), sp + 8, fp)
            } else if framed && here <= endbr + 1 {
                (word(sp + 8), sp + 16, word(sp).unwrap_or(0))
            } else if framed {
                (word(fp + 8), fp + 16, word(fp).unwrap_or(0))
            } else {
                break;
            };
            let Some(ret) = ret.filter(|r| *r != 0) else { break };
            (pc, sp, fp) = (ret, csp, cfp);
            out.push((pc, sp, fp));
            if at_main {
                break;
            }
        }
        Ok(out)
    }

    /// gdb's line for frame `n` at `pc` (a caller's pc is looked up one byte back).
    fn frame_line(&self, n: usize, pc: u64) -> String {
        let look = if n == 0 { pc } else { pc.wrapping_sub(1) };
        format!("#{n:<3}{pc:#018x} in {}", self.syms.frame(look))
    }

    fn count_arg(args: &str, default: usize) -> Result<usize, String> {
        if args.is_empty() {
            return Ok(default);
        }
        args.parse().map_err(|_| format!("Invalid number \"{args}\"."))
    }

    fn backtrace(&mut self, args: &str) -> CmdResult {
        let frames = self.frames()?;
        let limit = Self::count_arg(args, usize::MAX)?;
        for (n, (pc, _, _)) in frames.iter().enumerate().take(limit) {
            println!("{}", self.frame_line(n, *pc));
        }
        if limit < frames.len() && self.interactive {
            println!("(More stack frames follow...)");
        }
        Ok(())
    }

    fn frame_cmd(&mut self, args: &str) -> CmdResult {
        let frames = self.frames()?;
        let n = Self::count_arg(args, self.frame)?;
        let Some((pc, _, _)) = frames.get(n) else { return Err(format!("No frame at level {args}.")) };
        self.frame = n;
        println!("{}", self.frame_line(n, *pc));
        Ok(())
    }

    fn move_frame(&mut self, args: &str, up: bool) -> CmdResult {
        let frames = self.frames()?;
        let k = Self::count_arg(args, 1)?;
        let n = if up {
            if self.frame + 1 >= frames.len() {
                return Err("Initial frame selected; you cannot go up.".into());
            }
            (self.frame + k).min(frames.len() - 1)
        } else {
            if self.frame == 0 {
                return Err("Bottom (innermost) frame selected; you cannot go down.".into());
            }
            self.frame.saturating_sub(k)
        };
        self.frame = n;
        println!("{}", self.frame_line(n, frames[n].0));
        Ok(())
    }

    /// `finish`: run until the selected frame returns to its caller (a recursive call's return
    /// to the same address does not count: the caller's stack pointer must be reached).
    fn finish(&mut self) -> CmdResult {
        let pid = self.need_process()?;
        // gdb's `finish` sees main as the outermost frame (`backtrace past-main off`); `advance`
        // and `until` look past it.
        let frames = self.frames()?;
        let Some(&(ret, caller_sp, _)) = frames.get(self.frame + 1) else {
            return Err("\"finish\" not meaningful in the outermost frame.".into());
        };
        if self.interactive {
            println!("Run till exit from {}", self.frame_line(self.frame, frames[self.frame].0));
        }
        let tid = self.thread.unwrap_or(pid.leader());
        let users_bp = self.bps.iter().any(|b| b.inserted && b.addr == Some(ret));
        self.dbg.insert_breakpoint(pid, VirtAddr(ret), self.owner).map_err(|e| e.to_string())?;
        let result = loop {
            if let Err(e) = self.resume_quiet(Action::CONTINUE) {
                break Err(e);
            }
            match self.wait_raw() {
                Ok((t, StopKind::Breakpoint)) if self.current_pc() == Some(ret) => {
                    let back = t == tid && self.dbg.read_registers(tid).is_ok_and(|r| r.gp.rsp >= caller_sp);
                    if back {
                        break Ok((t, StopKind::Step));
                    }
                    if users_bp {
                        break Ok((t, StopKind::Breakpoint));
                    }
                    // A recursive call returning there, or another thread: go on.
                }
                other => break other,
            }
        };
        if self.pid == Some(pid) {
            let _ = self.dbg.remove_breakpoint(pid, VirtAddr(ret), self.owner);
        }
        let (t, kind) = result?;
        self.stopped(pid, t, kind, false, 0)?;
        Ok(())
    }

    // ---- data ----

    fn print(&mut self, fmt: &str, text: &str) -> CmdResult {
        let f = fmt.chars().last();
        let v = if text.is_empty() {
            *self.history.last().ok_or("$1 = <error: History is empty.>".to_string())?
        } else {
            expr::eval(text, &*self)?
        };
        let shown = expr::format(v, f, &*self)?;
        self.history.push(v);
        println!("${} = {shown}", self.history.len());
        Ok(())
    }

    fn examine(&mut self, fmt: &str, text: &str) -> CmdResult {
        let pid = self.need_process().map_err(|_| "The program has no memory now.".to_string())?;
        let (mut count, mut f, mut unit) = (1usize, self.last_x.0, self.last_x.1);
        let digits: String = fmt.chars().take_while(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            count = digits.parse().map_err(|_| "Invalid number.".to_string())?;
        }
        for c in fmt[digits.len()..].chars() {
            match c {
                'b' | 'h' | 'w' | 'g' => unit = c,
                'x' | 'd' | 'u' | 'o' | 't' | 'c' | 'a' => f = c,
                _ => return Err(format!("Invalid format letter '{c}' (supported: x d u o t c a, sizes b h w g).")),
            }
        }
        if f == 'a' {
            unit = 'g';
        }
        if f == 'c' && !fmt.chars().any(|c| "bhwg".contains(c)) {
            unit = 'b';
        }
        let addr = if text.is_empty() { self.last_x.2 } else { expr::eval(text, &*self)?.bits };
        let size = match unit {
            'b' => 1,
            'h' => 2,
            'w' => 4,
            _ => 8,
        };
        let per_line = match (f, size) {
            ('c', _) => 8,
            ('a', _) => 2,
            (_, 1) | (_, 2) => 8,
            (_, 4) => 4,
            _ => 2,
        };
        let mut at = addr;
        let mut line = String::new();
        for i in 0..count {
            if i % per_line == 0 {
                if !line.is_empty() {
                    println!("{line}");
                }
                line = match self.syms.label(at) {
                    Some(l) => format!("{at:#x} {l}:"),
                    None => format!("{at:#x}:"),
                };
            }
            let mut b = vec![0u8; size];
            match self.dbg.read_memory(pid, VirtAddr(at), &mut b) {
                Ok(n) if n == size => {}
                _ => {
                    // gdb has printed the line so far (label and values) when the read fails.
                    print!("{line}\t");
                    let _ = self.out.flush();
                    return Err(format!("Cannot access memory at address {at:#x}"));
                }
            }
            let mut w = [0u8; 8];
            w[..size].copy_from_slice(&b);
            let raw = u64::from_le_bytes(w);
            let kind = expr::Kind::Int { size: size as u8, signed: f == 'd' || f == 'c' };
            let item = match f {
                'x' => format!("{raw:#0width$x}", width = 2 + 2 * size),
                _ => expr::format(expr::Value { bits: raw, kind }, Some(f), &*self)?,
            };
            line.push('\t');
            line.push_str(&item);
            at += size as u64;
        }
        if !line.is_empty() {
            println!("{line}");
        }
        self.last_x = (f, unit, at);
        Ok(())
    }

    // ---- info ----

    fn info(&mut self, what: Info, args: &str) -> CmdResult {
        match what {
            Info::Breakpoints => self.info_breakpoints(),
            Info::Registers => self.info_registers(args),
            Info::Threads => self.info_threads(),
            Info::Sharedlibrary => self.info_sharedlibrary(),
            Info::Signals => self.info_signals(args),
            Info::Inferiors => {
                println!("  Num  Description       Connection           Executable        ");
                let exe = self.program.as_ref().map(|p| p.display().to_string()).unwrap_or_default();
                let desc = self.pid.map_or("<null>".to_string(), |p| format!("process {}", p.0));
                let conn = if self.pid.is_some() { "1 (native)" } else { "" };
                println!("* 1    {desc:<17} {conn:<20} {exe} ");
                Ok(())
            }
        }
    }

    fn info_breakpoints(&mut self) -> CmdResult {
        if self.bps.is_empty() {
            println!("No breakpoints or watchpoints.");
            return Ok(());
        }
        println!("Num     Type           Disp Enb Address            What");
        for bp in &self.bps {
            let disp = if bp.temp { "del" } else { "keep" };
            let enb = if bp.enabled { "y" } else { "n" };
            if let Some(w) = &bp.watch {
                let kind = match w.kind {
                    HwKind::Read => "read watchpoint",
                    HwKind::Access => "acc watchpoint",
                    _ => "hw watchpoint",
                };
                println!("{:<8}{:<15}{:<5}{:<4}{:<19}{}", bp.num, kind, disp, enb, "", w.text);
            } else {
                let (addr, what) = match bp.addr {
                    Some(a) => (format!("{a:#018x}"), self.syms.label(a).unwrap_or_default()),
                    None => ("<PENDING>".to_string(), bp.text.clone()),
                };
                let what = if what.is_empty() { self.file_label(bp) } else { what };
                println!("{:<8}{:<15}{:<5}{:<4}{:<19}{}", bp.num, "breakpoint", disp, enb, addr, what);
            }
            if let Some(c) = &bp.condition {
                println!("\tstop only if {c}");
            }
            if bp.hits > 0 {
                println!("\tbreakpoint already hit {} time{}", bp.hits, if bp.hits == 1 { "" } else { "s" });
            }
            if bp.ignore > 0 {
                println!("\tignore next {} hits", bp.ignore);
            }
        }
        Ok(())
    }

    /// `<sym+off>` of a breakpoint before the program runs, from the program's file.
    fn file_label(&self, bp: &Breakpoint) -> String {
        let (Some(prog), Some(a)) = (&self.program, bp.addr) else { return String::new() };
        let mut s = Symbolizer::default();
        s.add(prog, 0, true);
        s.label(a).unwrap_or_default()
    }

    fn info_registers(&mut self, args: &str) -> CmdResult {
        let pid = self.need_process().map_err(|_| "The program has no registers now.".to_string())?;
        let tid = self.thread.unwrap_or(pid.leader());
        let regs = self.dbg.read_registers(tid).map_err(|e| e.to_string())?;
        let names: Vec<&str> = if args.is_empty() { REGISTERS.to_vec() } else { args.split_whitespace().collect() };
        for name in names {
            let name = name.trim_start_matches('$');
            let Some((v, kind)) = register(&regs.gp, name) else {
                return Err(format!("Invalid register `{name}'"));
            };
            let natural = match kind {
                expr::Kind::CodePtr => match self.syms.label(v) {
                    Some(l) => format!("{v:#x} {l}"),
                    None => format!("{v:#x}"),
                },
                expr::Kind::DataPtr => format!("{v:#x}"),
                expr::Kind::Flags => expr::eflags(v),
                _ => (v as i64).to_string(),
            };
            println!("{:<15}{:<20}{}", display_name(name), format!("{v:#x}"), natural);
        }
        Ok(())
    }

    fn info_threads(&mut self) -> CmdResult {
        let Some(pid) = self.pid else {
            println!("No threads.");
            return Ok(());
        };
        let tids = self.dbg.threads(pid);
        let multi = tids.len() > 1;
        let mut rows = Vec::new();
        for tid in tids {
            let n = self.thread_number(tid);
            let name = self.dbg.thread_name(pid, tid).unwrap_or_default();
            let target =
                if multi { format!("LWP {} \"{name}\"", tid.0) } else { format!("process {} \"{name}\"", pid.0) };
            let frame = match self.dbg.read_registers(tid) {
                Ok(r) => format!("{:#018x} in {}", r.gp.rip, self.syms.frame(r.gp.rip)),
                Err(_) => "(running)".into(),
            };
            rows.push((n, tid, target, frame));
        }
        rows.sort_by_key(|r| r.0);
        let w = rows.iter().map(|r| r.2.len()).max().unwrap_or(9).max(9) + 1;
        println!("  Id   {:<w$}Frame ", "Target Id");
        for (n, tid, target, frame) in rows {
            let star = if Some(tid) == self.thread { "*" } else { " " };
            println!("{star} {n:<4} {target:<w$}{frame}");
        }
        Ok(())
    }

    fn select_thread(&mut self, args: &str) -> CmdResult {
        let pid = self.pid.ok_or("No thread selected.")?;
        if args.is_empty() {
            let tid = self.thread.unwrap_or(pid.leader());
            let n = self.thread_number(tid);
            println!("[Current thread is {n} (LWP {})]", tid.0);
            return Ok(());
        }
        let n: u32 = args.parse().map_err(|_| format!("Invalid thread ID: {args}"))?;
        let tid = self
            .thread_ids
            .iter()
            .find(|(t, num)| **num == n && self.dbg.threads(pid).contains(t))
            .map(|(t, _)| *t)
            .ok_or_else(|| format!("Unknown thread {n}."))?;
        self.thread = Some(tid);
        let pc = self.current_pc().unwrap_or(0);
        println!("[Switching to thread {n} (LWP {})]", tid.0);
        println!("#0  {pc:#018x} in {}", self.syms.frame(pc));
        Ok(())
    }

    fn info_sharedlibrary(&mut self) -> CmdResult {
        let libs: Vec<_> = self.syms.modules().iter().filter(|m| !m.main).cloned().collect();
        if libs.is_empty() {
            println!("No shared libraries loaded at this time.");
            return Ok(());
        }
        println!("From                To                  Syms Read   Shared Object Library");
        for m in libs {
            let (a, b) = m.text.unwrap_or((0, 0));
            println!("{a:#018x}  {b:#018x}  {:<12}{}", "Yes (*)", m.path.display());
        }
        println!("(*): Shared library is missing debugging information.");
        Ok(())
    }

    fn info_signals(&mut self, args: &str) -> CmdResult {
        println!("{}\n", signals::HEADER);
        if !args.is_empty() {
            let sig = signals::parse(args).ok_or_else(|| "Only signals 1-15 are valid as numeric signals.\nUse \"info signals\" for a list of symbolic signals.".to_string())?;
            println!("{}", signals::row(sig, self.handling[&sig]));
            return Ok(());
        }
        for sig in signals::all() {
            println!("{}", signals::row(sig, self.handling[&sig]));
        }
        println!("\nUse the \"handle\" command to change these tables.");
        Ok(())
    }

    fn handle(&mut self, args: &str) -> CmdResult {
        let mut words = args.split_whitespace();
        let name = words.next().ok_or("Argument required (signal and action to apply).")?;
        let sig = signals::parse(name).ok_or_else(|| format!("Unrecognized or ambiguous flag word: \"{name}\"."))?;
        let mut h = self.handling[&sig];
        for w in words {
            match w {
                "stop" => {
                    h.stop = true;
                    h.print = true;
                }
                "nostop" => h.stop = false,
                "print" => h.print = true,
                "noprint" => {
                    h.print = false;
                    h.stop = false;
                }
                "pass" | "noignore" => h.pass = true,
                "nopass" | "ignore" => h.pass = false,
                _ => return Err(format!("Unrecognized or ambiguous flag word: \"{w}\".")),
            }
        }
        self.handling.insert(sig, h);
        if self.interactive {
            println!("{}", signals::HEADER);
            println!("{}", signals::row(sig, h));
        }
        Ok(())
    }

    // ---- xol's own ----

    /// `count [--jump] LOCATION`: a counting probe; `--jump` puts it on a jump pad where the
    /// site allows it (no trap per hit).
    fn count(&mut self, text: &str) -> CmdResult {
        let pid = self.need_process()?;
        let (jump, text) = match text.strip_prefix("--jump") {
            Some(rest) => (true, rest.trim()),
            None => (false, text),
        };
        let loc: Location = text.parse().map_err(|e: crate::debugger::LocationError| e.why)?;
        self.dbg.set_jump_plan(jump);
        let id = self.dbg.count(pid, &loc).map_err(|e| e.to_string());
        self.dbg.set_jump_plan(false);
        let id = id?;
        let plan = match self.dbg.jump_plan_of(id) {
            Some(None) => " (jump plan)".to_string(),
            Some(Some(why)) => format!(" (trap plan: {why})"),
            None => String::new(),
        };
        println!("Probe {id} counts hits of {text}{plan}.");
        Ok(())
    }

    fn uncount(&mut self, text: &str) -> CmdResult {
        let pid = self.need_process()?;
        let loc: Location = text.parse().map_err(|e: crate::debugger::LocationError| e.why)?;
        let n = self.dbg.uncount(pid, &loc).map_err(|e| e.to_string())?;
        println!("Removed {n} probe{}.", if n == 1 { "" } else { "s" });
        Ok(())
    }

    fn probes(&mut self) {
        let reports = self.dbg.probe_reports();
        if reports.is_empty() {
            println!("No probes.");
        }
        for r in reports {
            println!("{}", crate::front::gdbstub::breakpoints::probe_line(&r));
        }
    }
}

/// `info registers` without arguments: gdb's general registers, in gdb's order.
const REGISTERS: &[&str] = &[
    "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
    "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base",
];

/// gdb's names: `$pc` is shown as `pc`, the rest as themselves.
fn display_name(name: &str) -> &str {
    name
}

/// A general register by gdb's name (and `pc`, `sp`, `fp`), with the type gdb gives it.
fn register(gp: &xol_arch::regs::UserRegs, name: &str) -> Option<(u64, expr::Kind)> {
    let long = expr::Kind::Int { size: 8, signed: true };
    let int = expr::Kind::Int { size: 4, signed: true };
    Some(match name {
        "pc" | "rip" => (gp.rip, expr::Kind::CodePtr),
        "sp" | "rsp" => (gp.rsp, expr::Kind::DataPtr),
        "fp" | "rbp" => (gp.rbp, expr::Kind::DataPtr),
        "eflags" => (gp.eflags, expr::Kind::Flags),
        "rax" => (gp.rax, long),
        "rbx" => (gp.rbx, long),
        "rcx" => (gp.rcx, long),
        "rdx" => (gp.rdx, long),
        "rsi" => (gp.rsi, long),
        "rdi" => (gp.rdi, long),
        "r8" => (gp.r8, long),
        "r9" => (gp.r9, long),
        "r10" => (gp.r10, long),
        "r11" => (gp.r11, long),
        "r12" => (gp.r12, long),
        "r13" => (gp.r13, long),
        "r14" => (gp.r14, long),
        "r15" => (gp.r15, long),
        "cs" => (gp.cs, int),
        "ss" => (gp.ss, int),
        "ds" => (gp.ds, int),
        "es" => (gp.es, int),
        "fs" => (gp.fs, int),
        "gs" => (gp.gs, int),
        "fs_base" => (gp.fs_base, long),
        "gs_base" => (gp.gs_base, long),
        "orig_rax" => (gp.orig_rax, long),
        _ => return None,
    })
}

/// `len` bytes of the file's image at link-time address `vaddr` (for the prologue skip before
/// the program runs).
fn file_bytes(bytes: &[u8], vaddr: u64, len: usize) -> Vec<u8> {
    match crate::symbols::vaddr_to_offset(bytes, vaddr) {
        Ok(Some(off)) => {
            let off = off as usize;
            bytes.get(off..off.saturating_add(len).min(bytes.len())).map(<[u8]>::to_vec).unwrap_or_default()
        }
        _ => Vec::new(),
    }
}

impl expr::Context for Repl {
    fn register(&self, name: &str) -> Option<(u64, expr::Kind)> {
        let pid = self.pid?;
        let regs = self.dbg.read_registers(self.thread.unwrap_or(pid.leader())).ok()?;
        register(&regs.gp, name)
    }

    fn symbol(&self, name: &str) -> Option<(u64, bool)> {
        self.syms.symbol(name)
    }

    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
        let pid = self.pid?;
        let mut b = vec![0u8; len];
        matches!(self.dbg.read_memory(pid, VirtAddr(addr), &mut b), Ok(n) if n == len).then_some(b)
    }

    fn history(&self, n: Option<usize>) -> Option<expr::Value> {
        match n {
            None => self.history.last().copied(),
            Some(usize::MAX) => self.history.len().checked_sub(2).and_then(|i| self.history.get(i).copied()),
            Some(n) => n.checked_sub(1).and_then(|i| self.history.get(i).copied()),
        }
    }

    fn describe(&self, addr: u64) -> Option<String> {
        self.syms.label(addr)
    }

    fn has_symtab(&self) -> bool {
        self.syms.any_debug_info()
    }
}

/// Tab completion of command names.
struct CommandHelper;

impl rustyline::completion::Completer for CommandHelper {
    type Candidate = String;

    fn complete(&self, line: &str, pos: usize, _: &rustyline::Context<'_>) -> rustyline::Result<(usize, Vec<String>)> {
        let head = &line[..pos];
        if head.contains(char::is_whitespace) {
            return Ok((pos, Vec::new()));
        }
        let names = command::COMMANDS.iter().map(|(n, ..)| n.to_string()).filter(|n| n.starts_with(head)).collect();
        Ok((0, names))
    }
}

impl rustyline::hint::Hinter for CommandHelper {
    type Hint = String;
}
impl rustyline::highlight::Highlighter for CommandHelper {}
impl rustyline::validate::Validator for CommandHelper {}
impl rustyline::Helper for CommandHelper {}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn gdb_style_arguments() {
        let o =
            parse_args(&os(&["-batch", "-ex", "break main", "--ex=run", "-x", "cmds", "./prog", "-v", "x"])).unwrap();
        assert!(o.batch);
        assert_eq!(
            o.sources,
            vec![Source::Command("break main".into()), Source::Command("run".into()), Source::File("cmds".into())]
        );
        assert_eq!(o.program, os(&["./prog", "-v", "x"]));
        let o = parse_args(&os(&["-q", "--args", "./prog", "-batch"])).unwrap();
        assert!(!o.batch);
        assert_eq!(o.program, os(&["./prog", "-batch"]));
        assert_eq!(parse_args(&os(&["-p", "42"])).unwrap().attach, Some(42));
        assert!(parse_args(&os(&["-ex"])).is_err());
        assert!(parse_args(&os(&["-frob"])).is_err());
    }
}
