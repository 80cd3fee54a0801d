//! The REPL's command grammar, pure: a line becomes a command and its argument text, as gdb
//! resolves it — a full name, one of gdb's predefined aliases (`b`, `c`, `n`, `s`, `p`, `bt`,
//! `i r`, `si`, ...), or any prefix that names one command unambiguously. `info` takes a
//! subcommand the same way. Errors are gdb's words (`Undefined command: "foo".  Try "help".`,
//! `Ambiguous command "de": delete, detach.`).

/// A command the REPL knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmd {
    /// `break LOC`
    Break,
    /// `tbreak LOC`
    Tbreak,
    /// `delete [N...]`
    Delete,
    /// `disable [N...]`
    Disable,
    /// `enable [N...]`
    Enable,
    /// `run [ARGS]`
    Run,
    /// `start [ARGS]`
    Start,
    /// `continue [N]`
    Continue,
    /// `kill`
    Kill,
    /// `attach PID`
    Attach,
    /// `detach`
    Detach,
    /// `stepi [N]`
    Stepi,
    /// `nexti [N]`
    Nexti,
    /// `print[/F] EXPR`
    Print,
    /// `x/NFU ADDR`
    Examine,
    /// `thread [N]`
    Thread,
    /// `tty FILE`: the program's terminal (gdb's `set inferior-tty`).
    Tty,
    /// `handle SIG ACTIONS...`
    Handle,
    /// `echo TEXT`
    Echo,
    /// `count LOC`: a probe that counts hits without stopping (xol's own).
    Count,
    /// `uncount LOC`
    Uncount,
    /// `probes`: xol's probes and their hits.
    Probes,
    /// `help [CMD]`
    Help,
    /// `quit`
    Quit,
    /// `info SUBCOMMAND`
    Info(Info),
}

/// `info` subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Info {
    /// `info breakpoints`
    Breakpoints,
    /// `info registers [REG...]`
    Registers,
    /// `info threads`
    Threads,
    /// `info sharedlibrary`
    Sharedlibrary,
    /// `info signals [SIG]`
    Signals,
    /// `info inferiors`
    Inferiors,
}

/// Every command: its name, its one-line help, and gdb's predefined aliases for it.
pub const COMMANDS: &[(&str, Cmd, &str, &[&str])] = &[
    ("attach", Cmd::Attach, "Attach to a process: attach PID.", &[]),
    ("break", Cmd::Break, "Set a breakpoint: break FUNCTION | *ADDRESS | FILE:FUNCTION.", &["b", "br", "bre", "brea"]),
    (
        "continue",
        Cmd::Continue,
        "Continue the program being debugged: continue [N] (ignore this breakpoint N-1 more times).",
        &["c", "fg"],
    ),
    ("count", Cmd::Count, "Count hits of a location without stopping the program: count LOCATION.", &[]),
    ("delete", Cmd::Delete, "Delete breakpoints: delete [N...] (all of them without N).", &["d"]),
    ("detach", Cmd::Detach, "Detach the program: it runs on without the debugger.", &[]),
    ("disable", Cmd::Disable, "Disable breakpoints: disable [N...].", &["dis", "disa"]),
    ("echo", Cmd::Echo, "Print a constant string: echo TEXT (\\n for a newline).", &[]),
    ("enable", Cmd::Enable, "Enable breakpoints: enable [N...].", &["en"]),
    (
        "handle",
        Cmd::Handle,
        "Say what to do with a signal: handle SIGNAL [stop|nostop|print|noprint|pass|nopass]...",
        &[],
    ),
    ("help", Cmd::Help, "Print the list of commands, or what one does: help [COMMAND].", &["h"]),
    (
        "info",
        Cmd::Info(Info::Breakpoints),
        "Show things about the program: info breakpoints|registers|threads|sharedlibrary|signals|inferiors.",
        &["i", "inf"],
    ),
    ("kill", Cmd::Kill, "Kill the program being debugged.", &["k"]),
    ("nexti", Cmd::Nexti, "Step one instruction, over calls: nexti [N].", &["ni"]),
    (
        "print",
        Cmd::Print,
        "Print the value of an expression: print[/x|d|u|o|t|c] EXPR ($REG, numbers, &SYMBOL, + - * / % ( )).",
        &["p", "inspect"],
    ),
    ("probes", Cmd::Probes, "List xol's probes, their plans and their hits.", &[]),
    ("quit", Cmd::Quit, "Exit the debugger (the program is killed, or detached if it was attached).", &["q", "exit"]),
    ("run", Cmd::Run, "Start the program: run [ARGS] (the last arguments again without ARGS).", &["r"]),
    ("start", Cmd::Start, "Start the program and stop at main: start [ARGS].", &[]),
    ("stepi", Cmd::Stepi, "Step one instruction exactly: stepi [N].", &["si"]),
    ("tbreak", Cmd::Tbreak, "Set a temporary breakpoint (deleted when hit): tbreak LOCATION.", &[]),
    ("thread", Cmd::Thread, "Switch to thread N, or show the current one: thread [N].", &["t"]),
    (
        "tty",
        Cmd::Tty,
        "Set the terminal (or file) the program's input and output use from the next run: tty FILE.",
        &[],
    ),
    ("uncount", Cmd::Uncount, "Remove the counting probes at a location: uncount LOCATION.", &[]),
    ("x", Cmd::Examine, "Examine memory: x/NFU ADDRESS (F: x d u o t c a; U: b h w g).", &[]),
];

/// `info` subcommands and their aliases.
const INFOS: &[(&str, Info, &[&str])] = &[
    ("breakpoints", Info::Breakpoints, &["b", "break"]),
    ("inferiors", Info::Inferiors, &[]),
    ("registers", Info::Registers, &["r"]),
    ("sharedlibrary", Info::Sharedlibrary, &["dll"]),
    ("signals", Info::Signals, &["handle"]),
    ("threads", Info::Threads, &[]),
];

/// A parsed line: the command, its `/FMT` suffix if any (`x/4xw`, `p/x`), and the rest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    /// The command.
    pub cmd: Cmd,
    /// The format after a `/` (empty if none).
    pub format: String,
    /// The arguments, trimmed.
    pub args: String,
}

/// Resolve `word` among `names` (each with its aliases): an exact name or alias, else the one
/// name it is a prefix of. `Err(matches)` lists the candidates (empty: none).
fn resolve<'a, T: Copy>(
    word: &str,
    names: impl Iterator<Item = (&'a str, T, &'a [&'a str])>,
) -> Result<T, Vec<&'a str>> {
    let mut prefixed = Vec::new();
    for (name, v, aliases) in names {
        if name == word || aliases.contains(&word) {
            return Ok(v);
        }
        if name.starts_with(word) {
            prefixed.push((name, v));
        }
    }
    match prefixed.as_slice() {
        [(_, v)] => Ok(*v),
        _ => Err(prefixed.into_iter().map(|(n, _)| n).collect()),
    }
}

/// Parse one line. `Ok(None)` for an empty line or a comment.
pub fn parse(line: &str) -> Result<Option<Parsed>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let end = line.find(|c: char| c.is_whitespace() || c == '/').unwrap_or(line.len());
    let (word, rest) = line.split_at(end);
    let (format, rest) = match rest.strip_prefix('/') {
        Some(r) => {
            let e = r.find(char::is_whitespace).unwrap_or(r.len());
            (r[..e].to_string(), &r[e..])
        }
        None => (String::new(), rest),
    };
    let cmd = resolve(word, COMMANDS.iter().map(|(n, c, _, a)| (*n, *c, *a))).map_err(|m| match m.as_slice() {
        [] => format!("Undefined command: \"{word}\".  Try \"help\"."),
        m => format!("Ambiguous command \"{word}\": {}.", m.join(", ")),
    })?;
    let args = rest.trim().to_string();
    if let Cmd::Info(_) = cmd {
        let (sub, rest) = args.split_once(char::is_whitespace).unwrap_or((args.as_str(), ""));
        if sub.is_empty() {
            return Err("List of info subcommands: info breakpoints, info inferiors, info registers, info sharedlibrary, info signals, info threads.".into());
        }
        let info = resolve(sub, INFOS.iter().map(|(n, i, a)| (*n, *i, *a))).map_err(|m| match m.as_slice() {
            [] => format!("Undefined info command: \"{sub}\".  Try \"help info\"."),
            m => format!("Ambiguous info command \"{sub}\": {}.", m.join(", ")),
        })?;
        return Ok(Some(Parsed { cmd: Cmd::Info(info), format, args: rest.trim().to_string() }));
    }
    Ok(Some(Parsed { cmd, format, args }))
}

/// The help of `name` (a command or an alias), or of every command.
pub fn help(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() {
        let mut out = String::from("List of commands:\n\n");
        for (n, _, h, _) in COMMANDS {
            out.push_str(&format!("{n} -- {h}\n"));
        }
        out.push_str("\nType \"help\" followed by a command name for its full documentation.\n");
        out.push_str("Command name abbreviations are allowed if unambiguous.");
        return Ok(out);
    }
    let cmd = resolve(name, COMMANDS.iter().map(|(n, c, _, a)| (*n, *c, *a)))
        .map_err(|_| format!("Undefined command: \"{name}\".  Try \"help\"."))?;
    let (n, _, h, aliases) = COMMANDS
        .iter()
        .find(|(_, c, _, _)| std::mem::discriminant(c) == std::mem::discriminant(&cmd))
        .copied()
        .ok_or("")?;
    let mut out = h.to_string();
    if !aliases.is_empty() {
        out.push_str(&format!("\nAliases of \"{n}\": {}.", aliases.join(", ")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(line: &str) -> Cmd {
        parse(line).unwrap().unwrap().cmd
    }

    #[test]
    fn names_aliases_and_prefixes() {
        assert_eq!(cmd("break main"), Cmd::Break);
        assert_eq!(cmd("b main"), Cmd::Break);
        assert_eq!(cmd("c"), Cmd::Continue);
        assert_eq!(cmd("cont"), Cmd::Continue);
        assert_eq!(cmd("si"), Cmd::Stepi);
        assert_eq!(cmd("tb main"), Cmd::Tbreak);
        assert_eq!(cmd("i r rip"), Cmd::Info(Info::Registers));
        assert_eq!(cmd("info b"), Cmd::Info(Info::Breakpoints));
        assert_eq!(cmd("info thr"), Cmd::Info(Info::Threads));
        assert_eq!(cmd("dis 1"), Cmd::Disable);
        assert_eq!(cmd("q"), Cmd::Quit);
    }

    #[test]
    fn formats_and_arguments() {
        let p = parse("x/4xw &g_counter").unwrap().unwrap();
        assert_eq!((p.cmd, p.format.as_str(), p.args.as_str()), (Cmd::Examine, "4xw", "&g_counter"));
        let p = parse("p/x $rsp + 8").unwrap().unwrap();
        assert_eq!((p.cmd, p.format.as_str(), p.args.as_str()), (Cmd::Print, "x", "$rsp + 8"));
        assert_eq!(parse("   ").unwrap(), None);
        assert_eq!(parse("# a comment").unwrap(), None);
    }

    #[test]
    fn errors_read_like_gdbs() {
        assert_eq!(parse("foo").unwrap_err(), "Undefined command: \"foo\".  Try \"help\".");
        assert_eq!(parse("de").unwrap_err(), "Ambiguous command \"de\": delete, detach.");
        assert_eq!(parse("info frobs").unwrap_err(), "Undefined info command: \"frobs\".  Try \"help info\".");
        assert!(help("nosuch").is_err());
        assert!(help("b").unwrap().contains("breakpoint"));
        assert!(help("").unwrap().starts_with("List of commands:"));
    }
}
