//! Jump pads over real code (ignored by default: it reads the system's libc and runs `nm`):
//! `cargo test -p xol-arch --test pad_libc -- --ignored --nocapture`.
//!
//! Every instruction start of every function of `/lib/x86_64-linux-gnu/libc.so.6` (from
//! `nm -D -S`) is planned with `plan_jump`; each accepted window gets a pad, which is decoded
//! back and checked: each relocated instruction is the original instruction (same code,
//! operands, prefixes and absolute RIP-relative address; a `jcc` keeps its condition and target,
//! directly or through its stub). Prints the acceptance rate and the refusals by kind.

use std::collections::BTreeMap;
use std::process::Command;

use iced_x86::{Decoder, DecoderOptions, Instruction};
use xol_arch::pad::{build_pad, plan_jump, InsnClass, PadAction, Refusal};

const LIBC: &str = "/lib/x86_64-linux-gnu/libc.so.6";

/// `(address, size)` of libc's defined functions; in this libc, file offsets equal addresses
/// in the executable segment.
fn functions() -> Option<Vec<(u64, u64)>> {
    let out = Command::new("nm").args(["-D", "--defined-only", "-S", LIBC]).output().ok()?;
    let mut f: Vec<(u64, u64)> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            let (a, s, t) = (it.next()?, it.next()?, it.next()?);
            matches!(t, "T" | "t" | "W" | "i")
                .then(|| Some((u64::from_str_radix(a, 16).ok()?, u64::from_str_radix(s, 16).ok()?)))?
        })
        .filter(|&(_, s)| s > 0)
        .collect();
    f.sort_unstable();
    f.dedup_by_key(|x| x.0);
    Some(f)
}

fn kind(r: &Refusal) -> String {
    let s = format!("{r:?}");
    let name = s.split([' ', '(', '{']).next().unwrap_or("").to_string();
    match r {
        Refusal::NotRelocatable { mnemonic, .. } => format!("{name}({mnemonic})"),
        _ => name,
    }
}

fn normalised(mut i: Instruction) -> Instruction {
    i.set_memory_displ_size(0);
    i
}

#[test]
#[ignore]
fn libc_functions() {
    let (Ok(image), Some(funcs)) = (std::fs::read(LIBC), functions()) else {
        eprintln!("SKIP: no {LIBC} or nm");
        return;
    };
    let (mut sites, mut planned, mut built) = (0u64, 0u64, 0u64);
    let mut refused: BTreeMap<String, u64> = BTreeMap::new();
    let mut build_errors: BTreeMap<String, u64> = BTreeMap::new();
    let mut entries: BTreeMap<String, u64> = BTreeMap::new();
    for &(start, size) in &funcs {
        let Some(code) = image.get(start as usize..(start + size) as usize) else { continue };
        let starts: Vec<u64> = Decoder::with_ip(64, code, start, DecoderOptions::NONE)
            .into_iter()
            .take_while(|i| !i.is_invalid())
            .map(|i| i.ip())
            .collect();
        for site in starts {
            sites += 1;
            let plan = plan_jump(site, code, start, &[]);
            if site == start {
                *entries.entry(plan.as_ref().map_or_else(kind, |_| "jump plan".to_string())).or_default() += 1;
            }
            let w = match plan {
                Ok(w) => w,
                Err(e) => {
                    *refused.entry(kind(&e)).or_default() += 1;
                    continue;
                }
            };
            planned += 1;
            let pad_addr = (site + 0x4000_0000) & !0xf;
            let pad = match build_pad(&w, pad_addr, &PadAction::Count { counter_addr: pad_addr - 0x1000 }) {
                Ok(p) => p,
                Err(e) => {
                    *build_errors.entry(e.to_string()).or_default() += 1;
                    continue;
                }
            };
            built += 1;
            for (insn, &(at, orig)) in w.insns.iter().zip(&pad.points) {
                assert_eq!(orig, insn.addr);
                let off = (at - pad_addr) as usize;
                let got = Decoder::with_ip(64, &pad.bytes[off..], at, DecoderOptions::NONE).decode();
                let want =
                    Decoder::with_ip(64, &w.original[(insn.addr - w.site) as usize..], insn.addr, DecoderOptions::NONE)
                        .decode();
                match insn.class {
                    InsnClass::Plain | InsnClass::Ret | InsnClass::RipRelative { .. } | InsnClass::JmpMem { .. } => {
                        assert_eq!(
                            normalised(got),
                            normalised(want),
                            "{site:#x}: {} at {:#x}",
                            insn.mnemonic,
                            insn.addr
                        );
                    }
                    InsnClass::Jcc { target } => {
                        assert_eq!(got.condition_code(), want.condition_code(), "{site:#x}");
                        let t = got.near_branch_target();
                        assert!(t == target || pad.original_address(t) == Some(target), "{site:#x}: jcc to {t:#x}");
                    }
                    InsnClass::Jmp { target } => assert_eq!(got.near_branch_target(), target, "{site:#x}"),
                    InsnClass::Loop { target } => {
                        assert_eq!(got.mnemonic(), want.mnemonic(), "{site:#x}");
                        assert_eq!(pad.original_address(got.near_branch_target()), Some(target), "{site:#x}");
                    }
                }
            }
        }
    }
    println!("libc: {} functions, {sites} instruction starts", funcs.len());
    println!("  jump plan: {planned} windows ({:.1}%), {built} pads built", 100.0 * planned as f64 / sites as f64);
    println!("  at function entries: {entries:?}");
    for (k, n) in &refused {
        println!("  refused {n:>7}  {k}");
    }
    for (k, n) in &build_errors {
        println!("  build error {n:>5}  {k}");
    }
    assert!(build_errors.is_empty());
    assert!(planned > sites / 10, "suspiciously few windows");
}
