//! Building the test fixtures in `fixtures/` and looking up their symbols.
//!
//! Fixtures are compiled with gcc into
//! `$CARGO_TARGET_TMPDIR/fixtures/<variant>/<name>` where `<variant>` encodes
//! the options (e.g. `nopie-O0`). Each (name, variant) is built at most once
//! per test binary run, and only if the output is missing or older than its
//! sources. Output files are written under a temporary name and renamed into
//! place, so concurrently running test binaries never see a partial file.

use std::collections::HashMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use super::proc::run_with_timeout;

/// Every fixture program (a `fixtures/<name>.c` or `fixtures/<name>.S`).
/// `libfix` is not listed: it is the shared library built along with `solib`
/// (and `pf_leaf`, `pf_libexec`); nor is `pf_plugin`, the library `pf_dlopen` loads.
pub const FIXTURES: &[&str] = &[
    "loop",
    "threads",
    "solib",
    "sighandle",
    "sigdie",
    "spin",
    "forker",
    "syscalls",
    "insns",
    "zombie",
    "countthreads",
    "slotsys",
    "pf_forkn",
    "pf_forkthreads",
    "pf_leaf",
    "pf_libexec",
    "pf_pipe",
    "pf_dlopen",
    "pf_detach",
    "pf_forkbench",
    "trapblock",
    "inl",
    "permbp",
];

/// Fixtures linked against `libfix.so` (built next to them, found through
/// `-rpath $ORIGIN`).
const LIBFIX_USERS: &[&str] = &["solib", "pf_leaf", "pf_libexec"];

/// How to compile a fixture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FixtureOpts {
    /// Build a position-independent executable (gcc's default on Debian) if
    /// true, `-no-pie` if false.
    pub pie: bool,
    /// Optimisation flag, e.g. `"-O0"`, `"-O2"`, `"-Os"` (a bare `"2"` means `-O2`).
    pub opt: &'static str,
}

impl FixtureOpts {
    /// `-no-pie -O0`: symbol addresses from `nm` are runtime addresses.
    pub const NO_PIE: FixtureOpts = FixtureOpts { pie: false, opt: "-O0" };
    /// `-pie -O0`: loaded at a random (or, without ASLR, 0x555555554000) base.
    pub const PIE: FixtureOpts = FixtureOpts { pie: true, opt: "-O0" };

    fn opt_flag(&self) -> String {
        let o = self.opt.trim();
        let flag = if o.starts_with('-') { o.to_string() } else { format!("-O{o}") };
        assert!(
            flag.len() > 2 && flag.starts_with("-O") && flag[2..].chars().all(|c| c.is_ascii_alphanumeric()),
            "bad FixtureOpts::opt {:?} (want e.g. \"-O0\", \"-O2\", \"-Os\")",
            self.opt
        );
        flag
    }

    /// Directory name for this variant, e.g. `nopie-O0`.
    pub fn variant(&self) -> String {
        format!("{}-{}", if self.pie { "pie" } else { "nopie" }, &self.opt_flag()[1..])
    }
}

impl Default for FixtureOpts {
    /// Same as [`FixtureOpts::NO_PIE`].
    fn default() -> Self {
        FixtureOpts::NO_PIE
    }
}

/// Directory holding the fixture sources (`<crate>/fixtures`).
pub fn fixtures_src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// Directory the given variant is built into.
pub fn fixture_out_dir(opts: FixtureOpts) -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join("fixtures").join(opts.variant())
}

/// Builds (if needed) fixture `name` with the default options
/// ([`FixtureOpts::NO_PIE`]: `gcc -g -O0 -no-pie`) and returns the path of the
/// executable. Panics with gcc's stderr if compilation fails.
pub fn fixture(name: &str) -> PathBuf {
    fixture_with(name, FixtureOpts::default())
}

/// Builds (if needed) fixture `name` with `opts` and returns the executable's
/// path. For `solib`, `libfix.so` is built next to it (the program finds it
/// through `-rpath $ORIGIN`).
pub fn fixture_with(name: &str, opts: FixtureOpts) -> PathBuf {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    static BUILT: OnceLock<Mutex<HashMap<(String, FixtureOpts), Slot>>> = OnceLock::new();
    let slot: Slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((name.to_string(), opts))
        .or_default()
        .clone();
    match slot.get_or_init(|| build_fixture(name, opts)) {
        Ok(p) => p.clone(),
        Err(e) => panic!("building fixture {name} ({}) failed:\n{e}", opts.variant()),
    }
}

/// Path of `libfix.so` for the variant (built by `fixture_with("solib", opts)`).
pub fn libfix_path(opts: FixtureOpts) -> PathBuf {
    fixture_with("solib", opts);
    fixture_out_dir(opts).join("libfix.so")
}

/// Path of `libpf_plugin.so` for the variant (built by `fixture_with("pf_dlopen", opts)`;
/// the program finds it next to itself).
pub fn pf_plugin_path(opts: FixtureOpts) -> PathBuf {
    fixture_with("pf_dlopen", opts);
    fixture_out_dir(opts).join("libpf_plugin.so")
}

/// Builds the shared library `lib_out` from `lib_src` unless it is up to date.
fn build_shared_lib(lib_src: &Path, lib_out: &Path, opt: &str) -> Result<(), String> {
    if !up_to_date(lib_out, &[lib_src.to_path_buf()]) {
        let args: Vec<OsString> =
            vec!["-g".into(), opt.into(), "-shared".into(), "-fPIC".into(), lib_src.as_os_str().to_owned()];
        gcc(&args, lib_out)?;
    }
    Ok(())
}

fn mtime(p: &Path) -> Option<SystemTime> {
    p.metadata().and_then(|m| m.modified()).ok()
}

fn up_to_date(out: &Path, sources: &[PathBuf]) -> bool {
    let Some(t_out) = mtime(out) else {
        return false;
    };
    sources.iter().all(|s| mtime(s).is_some_and(|t| t <= t_out))
}

fn tmp_name(out: &Path) -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let mut s = out.as_os_str().to_owned();
    s.push(format!(".tmp.{}.{n}", std::process::id()));
    PathBuf::from(s)
}

/// Runs gcc producing `out` (through a temporary file + rename).
fn gcc(args: &[OsString], out: &Path) -> Result<(), String> {
    let tmp = tmp_name(out);
    let mut cmd = Command::new(std::env::var_os("XOL_TEST_CC").unwrap_or_else(|| "gcc".into()));
    cmd.args(args).arg("-o").arg(&tmp);
    let what = format!("{cmd:?}");
    let o = run_with_timeout(cmd, Duration::from_secs(120));
    if !o.status.success() {
        let _ = std::fs::remove_file(&tmp);
        return Err(format!(
            "{what}\nstatus: {}\n{}{}",
            o.status,
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ));
    }
    std::fs::rename(&tmp, out).map_err(|e| format!("rename {tmp:?} -> {out:?}: {e}"))
}

fn build_fixture(name: &str, opts: FixtureOpts) -> Result<PathBuf, String> {
    let src_dir = fixtures_src_dir();
    let c = src_dir.join(format!("{name}.c"));
    let s = src_dir.join(format!("{name}.S"));
    let src = if c.exists() {
        c
    } else if s.exists() {
        s
    } else {
        return Err(format!("no fixture source {c:?} or {s:?}"));
    };
    let dir = fixture_out_dir(opts);
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {dir:?}: {e}"))?;
    let opt = opts.opt_flag();
    let out = dir.join(name);

    let mut common: Vec<OsString> = vec!["-g".into(), opt.clone().into()];
    if opts.pie {
        common.extend(["-pie".into(), "-fPIE".into()]);
    } else {
        common.extend(["-no-pie".into(), "-fno-pie".into()]);
    }

    let mut sources = vec![src.clone()];
    let lib = if LIBFIX_USERS.contains(&name) {
        Some("libfix")
    } else if name == "pf_dlopen" {
        Some("pf_plugin")
    } else {
        None
    };
    if let Some(lib) = lib {
        // libfix.c -> libfix.so, pf_plugin.c -> libpf_plugin.so
        let lib_src = src_dir.join(format!("{lib}.c"));
        let file = if lib.starts_with("lib") { format!("{lib}.so") } else { format!("lib{lib}.so") };
        let lib_out = dir.join(file);
        build_shared_lib(&lib_src, &lib_out, &opt)?;
        sources.push(lib_src);
        sources.push(lib_out);
    }
    if up_to_date(&out, &sources) {
        return Ok(out);
    }

    let mut args = common;
    args.push(src.into());
    args.push("-pthread".into());
    if LIBFIX_USERS.contains(&name) {
        args.push("-Wl,-rpath,$ORIGIN".into());
        args.push(format!("-L{}", dir.display()).into());
        args.push("-lfix".into());
    }
    if name == "pf_dlopen" {
        args.push("-ldl".into());
    }
    gcc(&args, &out)?;
    Ok(out)
}

/// Static value of symbol `sym` in `binary` as printed by `nm`; panics if it
/// is not found. For non-PIE fixtures this is the runtime address; for PIE
/// ones add the load base (see [`pie_load_base`]).
pub fn symbol_addr(binary: &Path, sym: &str) -> u64 {
    match try_symbol_addr(binary, sym) {
        Some(a) => a,
        None => panic!("symbol {sym} not found by nm in {}", binary.display()),
    }
}

/// Like [`symbol_addr`] but returns `None` if the symbol is missing.
pub fn try_symbol_addr(binary: &Path, sym: &str) -> Option<u64> {
    nm_symbols(binary).into_iter().find(|(name, _, _)| name == sym).map(|(_, a, _)| a)
}

/// All defined symbols of `binary`: (name, value, nm type letter).
pub fn nm_symbols(binary: &Path) -> Vec<(String, u64, char)> {
    let mut cmd = Command::new("nm");
    cmd.arg(binary);
    let o = run_with_timeout(cmd, Duration::from_secs(30));
    assert!(o.status.success(), "nm {} failed: {}", binary.display(), String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let addr = u64::from_str_radix(it.next()?, 16).ok()?;
            let ty = it.next()?.chars().next()?;
            let name = it.next()?.to_string();
            Some((name, addr, ty))
        })
        .collect()
}

/// Load base of `binary` in process `pid`: the start of its mapping with file
/// offset 0 in `/proc/PID/maps`. For a PIE, the runtime address of a symbol
/// is this base + [`symbol_addr`]. `None` if it is not mapped.
pub fn pie_load_base(pid: u32, binary: &Path) -> Option<u64> {
    let want = std::fs::canonicalize(binary).ok()?;
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    for line in maps.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        if f.len() >= 6 && Path::new(f[5]) == want && u64::from_str_radix(f[2], 16).ok()? == 0 {
            let start = f[0].split('-').next()?;
            return u64::from_str_radix(start, 16).ok();
        }
    }
    None
}

/// How a fixture's debug information is built, beyond `-g` ([`fixture_debug`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub struct DebugOpts {
    /// `-gdwarf-N` (0: gcc's default, DWARF 5).
    pub dwarf: u8,
    /// Compressed debug sections: `"zlib"` (gcc's `-gz=zlib`) or `"zstd"` (gcc 12 has no
    /// `-gz=zstd`: `objcopy --compress-debug-sections=zstd` after the build).
    pub compress: Option<&'static str>,
    /// `-gsplit-dwarf`: the units' DWARF in a `.dwo` next to the program.
    pub split: bool,
    /// With `split`: pack the `.dwo` into `PROG.dwp` (binutils' `dwp`) and delete it.
    pub dwp: bool,
}

impl DebugOpts {
    /// The directory name of the variant, e.g. `dwarf4-zlib-split`.
    pub fn variant(&self) -> String {
        let mut v = vec![if self.dwarf == 0 { "dwarf".to_string() } else { format!("dwarf{}", self.dwarf) }];
        v.extend(self.compress.map(str::to_string));
        if self.split {
            v.push("split".into());
        }
        if self.dwp {
            v.push("dwp".into());
        }
        v.join("-")
    }
}

/// Builds (if needed) the single-file fixture `name` with `opts` and the debug information
/// `dbg`, in its own directory (`<variant>/<debug variant>/<name>`).
pub fn fixture_debug(name: &str, opts: FixtureOpts, dbg: DebugOpts) -> PathBuf {
    type Slot = Arc<OnceLock<Result<PathBuf, String>>>;
    type Built = Mutex<HashMap<(String, FixtureOpts, DebugOpts), Slot>>;
    static BUILT: OnceLock<Built> = OnceLock::new();
    let slot: Slot = BUILT
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry((name.to_string(), opts, dbg))
        .or_default()
        .clone();
    match slot.get_or_init(|| build_debug_fixture(name, opts, dbg)) {
        Ok(p) => p.clone(),
        Err(e) => panic!("building fixture {name} ({}/{}) failed:\n{e}", opts.variant(), dbg.variant()),
    }
}

fn build_debug_fixture(name: &str, opts: FixtureOpts, dbg: DebugOpts) -> Result<PathBuf, String> {
    let src = fixtures_src_dir().join(format!("{name}.c"));
    let dir = fixture_out_dir(opts).join(dbg.variant());
    std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {dir:?}: {e}"))?;
    let out = dir.join(name);
    let mark = fixtures_src_dir().join("mark.h");
    if up_to_date(&out, &[src.clone(), mark]) {
        return Ok(out);
    }
    let mut args: Vec<OsString> = vec!["-g".into(), opts.opt_flag().into()];
    if opts.pie {
        args.extend(["-pie".into(), "-fPIE".into()]);
    } else {
        args.extend(["-no-pie".into(), "-fno-pie".into()]);
    }
    if dbg.dwarf != 0 {
        args.push(format!("-gdwarf-{}", dbg.dwarf).into());
    }
    if dbg.compress == Some("zlib") {
        args.push("-gz=zlib".into());
    }
    if dbg.split {
        args.push("-gsplit-dwarf".into());
    }
    args.push(src.into());
    args.push("-pthread".into());
    if dbg.compress != Some("zstd") && !dbg.dwp {
        gcc(&args, &out)?;
        return Ok(out);
    }
    // Built under its final name (a `.dwo` is named after the program), then post-processed.
    let lock = dir.join(format!(".{name}.building"));
    let _ = std::fs::remove_file(&out);
    let mut cmd = Command::new(std::env::var_os("XOL_TEST_CC").unwrap_or_else(|| "gcc".into()));
    cmd.args(&args).arg("-o").arg(&lock);
    let run = |cmd: Command| -> Result<(), String> {
        let what = format!("{cmd:?}");
        let o = run_with_timeout(cmd, Duration::from_secs(120));
        if o.status.success() {
            Ok(())
        } else {
            Err(format!("{what}\n{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr)))
        }
    };
    run(cmd)?;
    if let Some("zstd") = dbg.compress {
        let mut c = Command::new("objcopy");
        c.arg("--compress-debug-sections=zstd").arg(&lock);
        run(c)?;
    }
    if dbg.dwp {
        let mut dwp = lock.as_os_str().to_owned();
        dwp.push(".dwp");
        let mut c = Command::new("dwp");
        c.arg("-e").arg(&lock).arg("-o").arg(&dwp);
        run(c)?;
        // The package replaces the .dwo files.
        for e in std::fs::read_dir(&dir).map_err(|e| e.to_string())?.flatten() {
            if e.file_name().to_string_lossy().ends_with(".dwo") {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut final_dwp = out.as_os_str().to_owned();
        final_dwp.push(".dwp");
        std::fs::rename(&dwp, &final_dwp).map_err(|e| e.to_string())?;
    }
    std::fs::rename(&lock, &out).map_err(|e| format!("rename {lock:?} -> {out:?}: {e}"))?;
    Ok(out)
}
