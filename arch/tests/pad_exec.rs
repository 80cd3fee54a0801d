//! Execution tests of jump pads (`xol_arch::pad`), in this test process: small functions are
//! assembled with iced-x86 into an RWX mapping, run through a function pointer, then patched
//! with `site_patch` to jump to a pad `build_pad` made (a counter next to it) and run again. The
//! results (return value and the memory the function writes) must be the unpatched ones, and the
//! counter must equal the number of times the site was reached; after unpatching, the original
//! runs again. Covered: flags live across the window, every register and flag the program can
//! see (including the red zone and `rsp`), RIP-relative loads and stores, a `jcc` out of the
//! window (direct and through an absolute stub 2 GiB away), `loop`, `push`/`pop`, a window ending
//! in `ret`, a counter beyond ±2 GiB (through `rax`), and four threads counting at once.
//!
//! The only part of xol-arch's tests that maps memory (libc is a dev-dependency; arch/src stays
//! pure).

#![cfg(target_arch = "x86_64")]

use std::ptr;

use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Code, Instruction, MemoryOperand, Register};
use xol_arch::pad::{build_pad, plan_jump, PadAction};

const REGION: usize = 0x10000;
const DATA: u64 = 0x1000; // 64 qwords the functions read and write
const PAD: u64 = 0x2000;
const COUNTER: u64 = 0x3000;
const DATA_QWORDS: usize = 64;

/// An anonymous RWX mapping, unmapped on drop.
struct Region {
    base: *mut u8,
    len: usize,
}

impl Region {
    fn new(len: usize) -> Region {
        Region::map(ptr::null_mut(), len, 0).expect("mmap RWX")
    }

    /// A mapping at exactly `addr`, if that range is free.
    fn at(addr: u64, len: usize) -> Option<Region> {
        Region::map(addr as *mut libc::c_void, len, libc::MAP_FIXED_NOREPLACE)
    }

    fn map(hint: *mut libc::c_void, len: usize, extra: libc::c_int) -> Option<Region> {
        // SAFETY: an anonymous private mapping; nothing else refers to it.
        let p = unsafe {
            libc::mmap(
                hint,
                len,
                libc::PROT_READ | libc::PROT_WRITE | libc::PROT_EXEC,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED || (!hint.is_null() && p != hint) {
            return None;
        }
        Some(Region { base: p.cast(), len })
    }

    fn addr(&self) -> u64 {
        self.base as u64
    }

    fn write(&self, addr: u64, bytes: &[u8]) {
        let off = (addr - self.addr()) as usize;
        assert!(off + bytes.len() <= self.len);
        // SAFETY: in bounds of our own mapping; no thread runs this code while it is written.
        unsafe { ptr::copy_nonoverlapping(bytes.as_ptr(), self.base.add(off), bytes.len()) }
    }

    fn read_u64(&self, addr: u64) -> u64 {
        let off = (addr - self.addr()) as usize;
        assert!(off + 8 <= self.len);
        // SAFETY: in bounds and 8-byte aligned (callers pass aligned addresses).
        unsafe { ptr::read_volatile(self.base.add(off).cast::<u64>()) }
    }

    /// Run `f` on the data area (no function runs meanwhile).
    fn with_data<R>(&self, f: impl FnOnce(&mut [u64; DATA_QWORDS]) -> R) -> R {
        // SAFETY: DATA is inside the mapping and aligned; the reference does not outlive `f`, and
        // the tests touch the area from one thread, between calls of the functions.
        f(unsafe { &mut *self.base.add(DATA as usize).cast::<[u64; DATA_QWORDS]>() })
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        // SAFETY: our own mapping.
        unsafe { libc::munmap(self.base.cast(), self.len) };
    }
}

type Func = extern "sysv64" fn(u64, u64) -> u64;

/// What a case's body gets: where things are.
#[derive(Clone, Copy)]
struct At {
    /// The data area (64 qwords), also passed to the function as its second argument.
    data: u64,
}

struct Case {
    name: &'static str,
    /// Emits the function; calls `mark` before each site to test.
    body: fn(&mut CodeAssembler, &mut Vec<CodeLabel>, At),
    /// The function's first arguments to try.
    inputs: Vec<u64>,
    /// How many times the site `mark` is reached for input `x`.
    hits: fn(usize, u64) -> u64,
    /// Fills the data area before each call.
    setup: fn(u64, &mut [u64; DATA_QWORDS]),
}

/// Mark the next instruction as a site to test; the label can be a backward branch target.
fn mark(a: &mut CodeAssembler, marks: &mut Vec<CodeLabel>) -> CodeLabel {
    let mut l = a.create_label();
    place(a, marks, &mut l);
    l
}

/// Mark the next instruction as a site with `l`, created earlier (a forward branch target).
fn place(a: &mut CodeAssembler, marks: &mut Vec<CodeLabel>, l: &mut CodeLabel) {
    a.set_label(l).unwrap();
    marks.push(*l);
}

fn rip(addr: u64) -> MemoryOperand {
    MemoryOperand::with_base_displ(Register::RIP, addr as i64)
}

fn add(a: &mut CodeAssembler, instr: Result<Instruction, iced_x86::IcedError>) {
    a.add_instruction(instr.unwrap()).unwrap();
}

fn no_setup(x: u64, d: &mut [u64; DATA_QWORDS]) {
    for (i, q) in d.iter_mut().enumerate() {
        *q = (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ x;
    }
}

fn once(_: usize, _: u64) -> u64 {
    1
}

/// Run every input unpatched, return (result, data after) per input.
fn run_all(r: &Region, case: &Case, f: Func) -> Vec<(u64, Vec<u64>)> {
    case.inputs
        .iter()
        .map(|&x| {
            r.with_data(|d| (case.setup)(x, d));
            let res = f(x, r.addr() + DATA);
            (res, r.with_data(|d| d.to_vec()))
        })
        .collect()
}

/// Where the pad and its counter go, relative to the function's region.
#[derive(Clone, Copy, Debug)]
enum Placement {
    /// Pad and counter in the function's region.
    Near,
    /// The counter in a mapping beyond ±2 GiB of the pad (the `rax` path).
    FarCounter,
    /// The pad near the end of the site's ±2 GiB reach, so targets before the site need
    /// absolute jumps.
    FarPad,
}

/// Assemble `case`, check each site with each placement.
fn check(case: &Case, placements: &[Placement]) {
    for &placement in placements {
        let r = Region::new(REGION);
        let at = At { data: r.addr() + DATA };
        let mut a = CodeAssembler::new(64).unwrap();
        let mut marks = Vec::new();
        (case.body)(&mut a, &mut marks, at);
        let out = a.assemble_options(r.addr(), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
        let code = out.inner.code_buffer.clone();
        assert!(code.len() <= DATA as usize);
        r.write(r.addr(), &code);
        // SAFETY: the code was assembled for this address as a sysv64 function of two u64s.
        let f: Func = unsafe { std::mem::transmute::<*mut u8, Func>(r.base) };
        let expected = run_all(&r, case, f);
        for (k, l) in marks.iter().enumerate() {
            let site = out.label_ip(l).unwrap();
            let name = format!("{} (site {k}, {placement:?})", case.name);
            let window = plan_jump(site, &code, r.addr(), &[]).unwrap_or_else(|e| panic!("{name}: {e}"));

            // Where the pad and the counter go.
            let far;
            let (pad_region, pad_addr, counter_region, counter_addr) = match placement {
                Placement::Near => (&r, r.addr() + PAD, &r, r.addr() + COUNTER),
                Placement::FarCounter => {
                    far = (1..16).find_map(|i| Region::at(r.addr() + (i << 33), 0x1000));
                    let Some(fr) = far.as_ref() else {
                        eprintln!("{name}: SKIP, no free range 8 GiB away");
                        continue;
                    };
                    (&r, r.addr() + PAD, fr, fr.addr())
                }
                Placement::FarPad => {
                    let want = (site + 5 + i32::MAX as u64 - 0x80) & !0xfff;
                    far = Region::at(want, 0x2000);
                    let Some(fr) = far.as_ref() else {
                        eprintln!("{name}: SKIP, {want:#x} is not free");
                        continue;
                    };
                    (fr, site + 5 + i32::MAX as u64 - 0x40, fr, fr.addr() + 0x1f00)
                }
            };
            let pad = build_pad(&window, pad_addr, &PadAction::Count { counter_addr })
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            counter_region.write(counter_addr, &0u64.to_le_bytes());
            pad_region.write(pad_addr, &pad.bytes);
            r.write(site, &pad.patch);

            let mut want_hits = 0;
            for (&x, want) in case.inputs.iter().zip(&expected) {
                r.with_data(|d| (case.setup)(x, d));
                let res = f(x, r.addr() + DATA);
                assert_eq!(res, want.0, "{name}: result for input {x:#x}");
                assert_eq!(r.with_data(|d| d.to_vec()), want.1, "{name}: memory after input {x:#x}");
                want_hits += (case.hits)(k, x);
                assert_eq!(counter_region.read_u64(counter_addr), want_hits, "{name}: count after input {x:#x}");
            }
            assert!(want_hits > 0, "{name}: the site was never reached");

            // Unpatched: the original again, and no more counting.
            r.write(site, &pad.original);
            assert_eq!(run_all(&r, case, f), expected, "{name}: unpatched");
            assert_eq!(counter_region.read_u64(counter_addr), want_hits, "{name}: counted after unpatching");
        }
    }
}

const ALL: [Placement; 3] = [Placement::Near, Placement::FarCounter, Placement::FarPad];

#[test]
fn flags_live_across_the_window() {
    check(
        &Case {
            name: "flags",
            body: |a, m, _| {
                a.cmp(rdi, 100).unwrap();
                mark(a, m);
                a.mov(rcx, rdi).unwrap(); // window: mov + lea (7 bytes), no flag changes
                a.lea(rdx, qword_ptr(rdi + rdi * 2)).unwrap();
                a.mov(rax, rdx).unwrap();
                a.cmovl(rax, rcx).unwrap(); // SF != OF
                a.sete(r8b).unwrap(); // ZF
                a.movzx(r8, r8b).unwrap();
                a.setp(r9b).unwrap(); // PF
                a.movzx(r9, r9b).unwrap();
                a.shl(r9, 8).unwrap();
                a.add(rax, r8).unwrap();
                a.add(rax, r9).unwrap();
                a.ret().unwrap();
            },
            inputs: (0..=200).chain([u64::MAX, 1 << 63, (1 << 63) - 1]).collect(),
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

/// Loads 15 registers and the flags from the data area, writes a pattern into the red zone, runs
/// a 5-byte nop (the window), and stores every register, the flags, the red zone and the change
/// of `rsp` back: the pad must change none of them.
#[test]
fn every_register_flag_and_the_red_zone_are_preserved() {
    const OUT: i32 = 8 * 16;
    check(
        &Case {
            name: "registers",
            body: |a, m, _| {
                for r in [rbx, rbp, r12, r13, r14, r15] {
                    a.push(r).unwrap();
                }
                a.mov(qword_ptr(rsi + 8 * 60), rsp).unwrap();
                // Flags first (push/popfq use the stack), then the red zone, then registers.
                a.push(qword_ptr(rsi + 8 * 14)).unwrap();
                a.popfq().unwrap();
                a.mov(rax, qword_ptr(rsi + 8 * 15)).unwrap();
                for off in [-8, -16, -64, -120, -128] {
                    a.mov(qword_ptr(rsp + off), rax).unwrap();
                    a.lea(rax, qword_ptr(rax + 0x1111)).unwrap(); // lea: the flags stay
                }
                let regs = [rax, rbx, rcx, rdx, rbp, rdi, r8, r9, r10, r11, r12, r13, r14, r15];
                for (i, r) in regs.iter().enumerate() {
                    a.mov(*r, qword_ptr(rsi + 8 * i as i32)).unwrap();
                }
                mark(a, m);
                a.nop_1(qword_ptr(rax + rax)).unwrap(); // the window: a 5-byte nop
                a.pushfq().unwrap(); // the flags after the window: into [rsp-8], read below
                a.pop(qword_ptr(rsi + OUT + 8 * 14)).unwrap();
                for (i, r) in regs.iter().enumerate() {
                    a.mov(qword_ptr(rsi + OUT + 8 * i as i32), *r).unwrap();
                }
                for (i, off) in [-8, -16, -64, -120, -128].into_iter().enumerate() {
                    // [rsp-8] was overwritten by our own pushfq above: read it as the flags.
                    if off != -8 {
                        a.mov(rax, qword_ptr(rsp + off)).unwrap();
                        a.mov(qword_ptr(rsi + OUT + 8 * (15 + i as i32)), rax).unwrap();
                    }
                }
                a.mov(rax, rsp).unwrap();
                a.sub(rax, qword_ptr(rsi + 8 * 60)).unwrap();
                a.mov(qword_ptr(rsi + 8 * 61), rax).unwrap();
                a.mov(qword_ptr(rsi + 8 * 60), 0).unwrap();
                a.cld().unwrap();
                for r in [r15, r14, r13, r12, rbp, rbx] {
                    a.pop(r).unwrap();
                }
                a.mov(rax, qword_ptr(rsi + OUT + 8 * 14)).unwrap();
                a.ret().unwrap();
            },
            // Every combination of CF PF AF ZF SF OF DF.
            inputs: (0..128).collect(),
            hits: once,
            setup: |x, d| {
                no_setup(x, d);
                let bits = [0x1u64, 0x4, 0x10, 0x40, 0x80, 0x800, 0x400];
                d[14] = 0x202 | bits.iter().enumerate().filter(|(i, _)| x >> i & 1 == 1).map(|(_, b)| b).sum::<u64>();
                for q in &mut d[16..] {
                    *q = 0;
                }
            },
        },
        &ALL,
    );
}

/// A leaf function keeps values in its red zone across the window, as compilers do: the pad's
/// `pushfq` (and `push rax` for a far counter) must land below it.
#[test]
fn a_leaf_function_keeps_its_red_zone() {
    check(
        &Case {
            name: "red-zone",
            body: |a, m, _| {
                a.mov(qword_ptr(rsp - 8), rdi).unwrap();
                a.mov(qword_ptr(rsp - 64), rsi).unwrap();
                a.lea(rax, qword_ptr(rdi + 77)).unwrap();
                a.mov(qword_ptr(rsp - 128), rax).unwrap();
                mark(a, m);
                a.add(rdi, rsi).unwrap(); // window: add (3) + imul (4)
                a.imul_3(rdi, rdi, 3).unwrap();
                a.mov(rax, qword_ptr(rsp - 8)).unwrap();
                a.add(rax, qword_ptr(rsp - 64)).unwrap();
                a.xor(rax, qword_ptr(rsp - 128)).unwrap();
                a.add(rax, rdi).unwrap();
                a.ret().unwrap();
            },
            inputs: vec![0, 1, 0xdead_beef, u64::MAX],
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn a_loop_whose_branch_targets_the_site() {
    check(
        &Case {
            name: "loop",
            body: |a, m, _| {
                let mut done = a.create_label();
                a.xor(eax, eax).unwrap();
                a.mov(rcx, rdi).unwrap();
                a.test(rcx, rcx).unwrap();
                a.jz(done).unwrap();
                let top = mark(a, m);
                a.add(rax, rcx).unwrap(); // window: add (3) + lea (4)
                a.lea(rax, qword_ptr(rax + rcx * 2)).unwrap();
                a.dec(rcx).unwrap();
                a.jnz(top).unwrap();
                a.set_label(&mut done).unwrap();
                a.ret().unwrap();
            },
            inputs: vec![0, 1, 2, 7, 100, 1000],
            hits: |_, x| x,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn rip_relative_loads_and_stores() {
    check(
        &Case {
            name: "rip-relative",
            body: |a, m, at| {
                mark(a, m);
                a.mov(ecx, edi).unwrap(); // window 0: mov ecx,edi (2) + load (7)
                add(a, Instruction::with2(Code::Mov_r64_rm64, Register::RAX, rip(at.data)));
                mark(a, m);
                add(a, Instruction::with2(Code::Add_rm64_r64, rip(at.data + 8), Register::RDI)); // window 1: a store
                add(a, Instruction::with2(Code::Add_r64_rm64, Register::RAX, rip(at.data + 8)));
                mark(a, m);
                add(a, Instruction::with2(Code::Lea_r64_m, Register::RDX, rip(at.data + 16))); // window 2: lea
                a.add(rax, qword_ptr(rdx)).unwrap();
                a.add(rax, rcx).unwrap();
                a.ret().unwrap();
            },
            inputs: vec![0, 1, 0x1234, u64::MAX],
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn a_jcc_in_the_window_whose_target_is_outside() {
    check(
        &Case {
            name: "jcc",
            body: |a, m, _| {
                let mut skip = a.create_label();
                let mut back = a.create_label();
                a.xor(eax, eax).unwrap();
                a.jmp(back).unwrap(); // the jz's target lies *before* the site: FarPad needs a stub
                a.set_label(&mut skip).unwrap();
                a.add(rax, rdi).unwrap();
                a.ret().unwrap();
                place(a, m, &mut back);
                a.test(dil, 1).unwrap(); // window: test (4) + jz rel8 (2)
                a.jz(skip).unwrap();
                a.add(rax, 5).unwrap();
                a.add(rax, rdi).unwrap();
                a.ret().unwrap();
            },
            inputs: (0..20).collect(),
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn loop_instruction_in_the_window() {
    check(
        &Case {
            name: "loop-insn",
            body: |a, m, _| {
                a.xor(eax, eax).unwrap();
                a.xor(edx, edx).unwrap();
                a.mov(rcx, rdi).unwrap();
                let mut top = a.create_label();
                a.set_label(&mut top).unwrap();
                a.add(rax, rcx).unwrap();
                mark(a, m);
                a.inc(rdx).unwrap(); // window: inc (3) + loop (2)
                a.loop_(top).unwrap();
                a.shl(rdx, 32).unwrap();
                a.add(rax, rdx).unwrap();
                a.ret().unwrap();
            },
            inputs: vec![1, 2, 3, 50],
            hits: |_, x| x,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn push_and_pop_in_the_window() {
    check(
        &Case {
            name: "push-pop",
            body: |a, m, _| {
                mark(a, m);
                a.push(rbx).unwrap(); // window: push rbx (1) + push r12 (2) + mov rbx,rdi (3)
                a.push(r12).unwrap();
                a.mov(rbx, rdi).unwrap();
                a.lea(r12, qword_ptr(rbx + rsi)).unwrap();
                a.mov(rax, r12).unwrap();
                a.imul_2(rax, rbx).unwrap();
                mark(a, m);
                a.pop(r12).unwrap(); // window: pop r12 (2) + pop rbx (1) + nop + nop
                a.pop(rbx).unwrap();
                a.nop().unwrap();
                a.nop().unwrap();
                a.ret().unwrap();
            },
            inputs: vec![0, 3, 1 << 40],
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn a_window_ending_in_ret() {
    check(
        &Case {
            name: "ret",
            body: |a, m, _| {
                a.push(rbp).unwrap();
                a.mov(rax, rsi).unwrap();
                mark(a, m);
                a.add(rax, rdi).unwrap(); // window: add (3) + pop rbp (1) + ret (1)
                a.pop(rbp).unwrap();
                a.ret().unwrap();
            },
            inputs: vec![0, 1, 99],
            hits: once,
            setup: no_setup,
        },
        &ALL,
    );
}

#[test]
fn four_threads_count_exactly() {
    let r = Region::new(REGION);
    let mut a = CodeAssembler::new(64).unwrap();
    let mut done = a.create_label();
    a.xor(eax, eax).unwrap();
    a.mov(rcx, rdi).unwrap();
    a.test(rcx, rcx).unwrap();
    a.jz(done).unwrap();
    let mut top = a.create_label();
    a.set_label(&mut top).unwrap();
    a.add(rax, rcx).unwrap();
    a.lea(rax, qword_ptr(rax + rcx * 2)).unwrap();
    a.dec(rcx).unwrap();
    a.jnz(top).unwrap();
    a.set_label(&mut done).unwrap();
    a.ret().unwrap();
    let out = a.assemble_options(r.addr(), BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let code = out.inner.code_buffer.clone();
    let site = out.label_ip(&top).unwrap();
    r.write(r.addr(), &code);
    let window = plan_jump(site, &code, r.addr(), &[]).unwrap();
    let pad = build_pad(&window, r.addr() + PAD, &PadAction::Count { counter_addr: r.addr() + COUNTER }).unwrap();
    r.write(r.addr() + PAD, &pad.bytes);
    r.write(site, &pad.patch);
    let f_addr = r.addr();
    let (threads, calls, n) = (4u64, 2000u64, 100u64);
    let handles: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                // SAFETY: assembled at f_addr as a sysv64 function; the region outlives the threads.
                let f: Func = unsafe { std::mem::transmute::<u64, Func>(f_addr) };
                (0..calls).map(|_| f(n, 0)).collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(|&v| v == 3 * n * (n + 1) / 2));
    }
    assert_eq!(r.read_u64(r.addr() + COUNTER), threads * calls * n);
}
