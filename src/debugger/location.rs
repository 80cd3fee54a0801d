//! Where a probe or breakpoint goes, as users write it: one grammar for every front-end
//! (`monitor count`, `xol count`, the REPL's `break`, the trace language), parsed here and
//! resolved in one place ([`super::Debugger`]).
//!
//! ```text
//! 0xADDR  *0xADDR          an address in the process
//! SYMBOL                   a function of the main program: its ELF symbol, or a function of the
//!                          debug information (C++ names with `::` included)
//! FILE:SYMBOL              a symbol of a file (a path, or a library's name: libc.so.6)
//! FILE:0xOFFSET            a place in a file, by its offset in the file
//! FILE:LINE                a source line: where gdb's `break FILE:LINE` goes (DWARF line tables)
//! LINE                     a line of the current source file (parsed; there is none yet)
//! ```

use std::fmt;

/// A parsed location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An address in the process (`0xADDR`, `*0xADDR`).
    Address(u64),
    /// A symbol of the main program.
    Symbol(String),
    /// A place in a file: `FILE:SYMBOL` or `FILE:0xOFFSET`.
    InFile {
        /// The file: a path, or the name of a file a process maps (`libc.so.6`).
        file: String,
        /// What in it.
        place: FilePlace,
    },
    /// A source line, in `file` or (when `None`) in the file of the current function.
    Line {
        /// The source file as written.
        file: Option<String>,
        /// The line (1-based).
        line: u32,
    },
}

/// What in a file a [`Location::InFile`] names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilePlace {
    /// A symbol of the file.
    Symbol(String),
    /// An offset in the file (not a virtual address).
    Offset(u64),
}

/// Why a location does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text}: {why}")]
pub struct LocationError {
    /// The location as given.
    pub text: String,
    /// What is wrong with it.
    pub why: String,
}

fn hex(s: &str) -> Option<Result<u64, ()>> {
    let h = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))?;
    Some(u64::from_str_radix(h, 16).map_err(|_| ()))
}

impl std::str::FromStr for Location {
    type Err = LocationError;

    fn from_str(text: &str) -> Result<Location, LocationError> {
        let loc = text.trim();
        let bad = |why: &str| LocationError { text: loc.to_string(), why: why.to_string() };
        if loc.is_empty() {
            return Err(LocationError { text: String::new(), why: "no location given".into() });
        }
        if loc.chars().any(char::is_whitespace) {
            return Err(bad("a location has no spaces (0xADDR, SYMBOL, FILE:SYMBOL, FILE:0xOFFSET)"));
        }
        let bare = loc.strip_prefix('*').unwrap_or(loc);
        if let Some(a) = hex(bare) {
            return a.map(Location::Address).map_err(|_| bad("not a hexadecimal address"));
        }
        if loc.starts_with('*') {
            return Err(bad("`*` takes an address (*0xADDR)"));
        }
        if let Ok(line) = loc.parse::<u32>() {
            return Ok(Location::Line { file: None, line });
        }
        // A C++ name (`ns::f`) is a symbol, not FILE:WHAT.
        if loc.contains("::") {
            return Ok(Location::Symbol(loc.to_string()));
        }
        let Some((file, what)) = loc.rsplit_once(':') else {
            return Ok(Location::Symbol(loc.to_string()));
        };
        if file.is_empty() {
            return Err(bad("no file before the colon (FILE:SYMBOL, FILE:0xOFFSET)"));
        }
        if what.is_empty() {
            return Err(bad(&format!("say what in {file}: FILE:SYMBOL or FILE:0xOFFSET")));
        }
        let file = file.to_string();
        if let Some(off) = hex(what) {
            let offset = off.map_err(|_| bad("not a hexadecimal offset"))?;
            return Ok(Location::InFile { file, place: FilePlace::Offset(offset) });
        }
        if what.bytes().all(|c| c.is_ascii_digit()) {
            let line = what.parse::<u32>().map_err(|_| bad("line number out of range"))?;
            return Ok(Location::Line { file: Some(file), line });
        }
        Ok(Location::InFile { file, place: FilePlace::Symbol(what.to_string()) })
    }
}

impl fmt::Display for FilePlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilePlace::Symbol(s) => f.write_str(s),
            FilePlace::Offset(o) => write!(f, "{o:#x}"),
        }
    }
}

/// The canonical text of a location; it parses back to the same location.
impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Address(a) => write!(f, "{a:#x}"),
            Location::Symbol(s) => f.write_str(s),
            Location::InFile { file, place } => write!(f, "{file}:{place}"),
            Location::Line { file: Some(file), line } => write!(f, "{file}:{line}"),
            Location::Line { file: None, line } => write!(f, "{line}"),
        }
    }
}

impl Location {
    /// True for the forms that name a file (always per-file probes).
    pub fn names_file(&self) -> bool {
        matches!(self, Location::InFile { .. } | Location::Line { file: Some(_), .. })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Result<Location, LocationError> {
        s.parse()
    }

    #[test]
    fn every_form_parses() {
        assert_eq!(p("0x1234"), Ok(Location::Address(0x1234)));
        assert_eq!(p(" *0X1234 "), Ok(Location::Address(0x1234)));
        assert_eq!(p("main"), Ok(Location::Symbol("main".into())));
        assert_eq!(p("ns::f"), Ok(Location::Symbol("ns::f".into())));
        assert_eq!(p("std::vector<int>::push_back"), Ok(Location::Symbol("std::vector<int>::push_back".into())));
        assert_eq!(
            p("libc.so.6:puts"),
            Ok(Location::InFile { file: "libc.so.6".into(), place: FilePlace::Symbol("puts".into()) })
        );
        assert_eq!(p("/a/b:0x10"), Ok(Location::InFile { file: "/a/b".into(), place: FilePlace::Offset(0x10) }));
        assert_eq!(p("prog.c:15"), Ok(Location::Line { file: Some("prog.c".into()), line: 15 }));
        assert_eq!(p("15"), Ok(Location::Line { file: None, line: 15 }));
        // A colon in a path: the last one splits.
        assert_eq!(
            p("/x:y/lib.so:f"),
            Ok(Location::InFile { file: "/x:y/lib.so".into(), place: FilePlace::Symbol("f".into()) })
        );
    }

    #[test]
    fn bad_locations_say_why() {
        for (text, why) in [
            ("", "no location given"),
            ("   ", "no location given"),
            ("0xzz", "not a hexadecimal address"),
            ("0x", "not a hexadecimal address"),
            ("0x1ffffffffffffffff", "not a hexadecimal address"),
            ("*main", "`*` takes an address"),
            ("prog:", "say what in prog"),
            (":main", "no file before the colon"),
            ("lib.so:0xg", "not a hexadecimal offset"),
            ("prog.c:99999999999", "line number out of range"),
            ("a b", "no spaces"),
        ] {
            let e = p(text).expect_err(text);
            assert!(e.to_string().contains(why), "{text:?}: {e}");
        }
    }

    #[test]
    fn display_parses_back() {
        for text in ["0x401136", "main", "ns::f", "libc.so.6:puts", "/lib/x.so:0x1f00", "a.c:7", "7"] {
            let l = p(text).unwrap();
            assert_eq!(l.to_string(), text);
            assert_eq!(p(&l.to_string()), Ok(l));
        }
        assert_eq!(p("*0X1F").unwrap().to_string(), "0x1f");
    }

    #[test]
    fn file_forms_are_known() {
        assert!(p("libc.so.6:puts").unwrap().names_file());
        assert!(p("a.c:3").unwrap().names_file());
        assert!(!p("main").unwrap().names_file());
        assert!(!p("0x10").unwrap().names_file());
    }
}
