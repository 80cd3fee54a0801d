//! Golden tests of jump-pad window planning and pad generation (`xol_arch::pad`): small
//! functions assembled here with iced-x86's `CodeAssembler`, the windows and refusals
//! `plan_jump` gives for them, and the pads `build_pad` makes, decoded back.

use iced_x86::code_asm::*;
use iced_x86::{BlockEncoderOptions, Decoder, DecoderOptions, Instruction, Mnemonic, Register};
use xol_arch::pad::{build_pad, plan_jump, site_patch, InsnClass, PadAction, Refusal};

const BASE: u64 = 0x40_1000;

/// A function assembled at [`BASE`]: its bytes and the addresses of its marks.
struct Func {
    code: Vec<u8>,
    marks: Vec<u64>,
}

/// Assemble what `body` emits at `BASE`; `body` places marks with `mark` and they come back in
/// order in `Func::marks`.
fn assemble(body: impl FnOnce(&mut CodeAssembler, &mut Vec<CodeLabel>)) -> Func {
    let mut a = CodeAssembler::new(64).unwrap();
    let mut marks = Vec::new();
    body(&mut a, &mut marks);
    let r = a.assemble_options(BASE, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).unwrap();
    let marks = marks.iter().map(|l| r.label_ip(l).unwrap()).collect();
    Func { code: r.inner.code_buffer, marks }
}

/// Place a mark before the next instruction; the label can be a (backward) branch target.
fn mark(a: &mut CodeAssembler, marks: &mut Vec<CodeLabel>) -> CodeLabel {
    let mut l = a.create_label();
    place(a, marks, &mut l);
    l
}

/// Place `l` (created earlier, maybe a forward branch target) before the next instruction, as a
/// mark.
fn place(a: &mut CodeAssembler, marks: &mut Vec<CodeLabel>, l: &mut CodeLabel) {
    a.set_label(l).unwrap();
    marks.push(*l);
}

fn decode(bytes: &[u8], ip: u64) -> Vec<Instruction> {
    Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE).into_iter().collect()
}

fn mnemonics(insns: &[Instruction]) -> Vec<Mnemonic> {
    insns.iter().map(|i| i.mnemonic()).collect()
}

#[test]
fn a_plain_window_covers_whole_instructions() {
    // push rbp; [site] mov rbp,rsp (3); mov eax,edi (2); add eax,1 (3); pop rbp; ret
    let f = assemble(|a, m| {
        a.push(rbp).unwrap();
        mark(a, m);
        a.mov(rbp, rsp).unwrap();
        a.mov(eax, edi).unwrap();
        a.add(ecx, 1).unwrap();
        a.pop(rbp).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    assert_eq!((w.site, w.len), (BASE + 1, 5));
    assert_eq!(
        w.insns.iter().map(|i| (i.addr, i.len, i.mnemonic.as_str())).collect::<Vec<_>>(),
        [(BASE + 1, 3, "mov"), (BASE + 4, 2, "mov")]
    );
    assert!(w.insns.iter().all(|i| i.class == InsnClass::Plain));
    assert_eq!(w.original, f.code[1..6]);
    assert_eq!(w.end(), BASE + 6);
    assert!(!w.covers(BASE + 1) && w.covers(BASE + 2) && w.covers(BASE + 5) && !w.covers(BASE + 6));
    assert!(!w.ends_with_exit());
    assert_eq!((w.func_start, w.func_end), (BASE, BASE + f.code.len() as u64));
}

#[test]
fn a_long_first_instruction_is_a_window_alone() {
    let f = assemble(|a, m| {
        mark(a, m);
        a.mov(rax, 0x1122_3344_5566_7788u64).unwrap(); // 10 bytes
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    assert_eq!((w.len, w.insns.len()), (10, 1));
}

#[test]
fn sites_outside_or_inside_an_instruction_are_refused() {
    let f = assemble(|a, _| {
        a.mov(rbp, rsp).unwrap();
        a.mov(eax, edi).unwrap();
        a.add(ecx, 1).unwrap();
        a.ret().unwrap();
    });
    let end = BASE + f.code.len() as u64;
    assert_eq!(
        plan_jump(BASE - 1, &f.code, BASE, &[]).unwrap_err(),
        Refusal::OutsideFunction { site: BASE - 1, start: BASE, end }
    );
    assert!(matches!(plan_jump(end, &f.code, BASE, &[]), Err(Refusal::OutsideFunction { .. })));
    assert_eq!(
        plan_jump(BASE + 1, &f.code, BASE, &[]).unwrap_err(),
        Refusal::SplitsInstruction { site: BASE + 1, start: BASE, len: 3 }
    );
}

#[test]
fn undecodable_bytes_anywhere_in_the_function_refuse_it() {
    // mov rbp,rsp; mov eax,edi; add eax,1; (bad: 0x06 is push es, invalid in 64-bit); ret
    let code = [0x48, 0x89, 0xe5, 0x89, 0xf8, 0x83, 0xc0, 0x01, 0x06, 0xc3];
    assert_eq!(plan_jump(BASE, &code, BASE, &[]).unwrap_err(), Refusal::Undecodable { at: BASE + 8 });
    // A truncated last instruction, too.
    let code = [0x48, 0x89, 0xe5, 0x89, 0xf8, 0x83, 0xc0, 0x01, 0x48, 0x89];
    assert_eq!(plan_jump(BASE, &code, BASE, &[]).unwrap_err(), Refusal::Undecodable { at: BASE + 8 });
}

#[test]
fn the_window_must_end_inside_the_function() {
    let f = assemble(|a, m| {
        a.mov(rbp, rsp).unwrap();
        mark(a, m);
        a.add(ecx, 1).unwrap(); // 3
        a.inc(eax).unwrap(); // 2 ... but nothing after: 5 is exactly enough
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    assert_eq!(w.len, 5);
    let f = assemble(|a, m| {
        a.mov(rbp, rsp).unwrap();
        mark(a, m);
        a.add(ecx, 1).unwrap(); // 3
        a.nop().unwrap(); // 1
    });
    assert_eq!(
        plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap_err(),
        Refusal::PastFunctionEnd { site: f.marks[0], available: 4 }
    );
}

#[test]
fn a_ret_or_jmp_ends_the_window_but_nothing_may_follow_it() {
    // [site] add rax,rdi (3); pop rbp (1); ret (1): exactly 5 with the ret last.
    let f = assemble(|a, m| {
        a.push(rbp).unwrap();
        mark(a, m);
        a.add(rax, rdi).unwrap();
        a.pop(rbp).unwrap();
        a.ret().unwrap();
        a.int3().unwrap();
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    assert_eq!(w.len, 5);
    assert_eq!(w.insns.last().unwrap().class, InsnClass::Ret);
    assert!(w.ends_with_exit());

    // [site] pop rbp; ret; <padding>: the window would run past the ret.
    let f = assemble(|a, m| {
        a.add(rax, rdi).unwrap();
        mark(a, m);
        a.pop(rbp).unwrap();
        a.ret().unwrap();
        a.nop().unwrap();
        a.nop().unwrap();
        a.nop().unwrap();
        a.nop().unwrap();
    });
    let e = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap_err();
    assert_eq!(e, Refusal::AfterUnconditional { at: f.marks[0] + 1, mnemonic: "ret".into() });
    assert!(e.to_string().contains("past the ret"), "{e}");

    // A jmp rel32 (5 bytes) at the site is a window by itself, relocated to its target.
    let f = assemble(|a, m| {
        let mut out = a.create_label();
        mark(a, m);
        a.add_instruction(Instruction::with_branch(iced_x86::Code::Jmp_rel32_64, BASE + 0x100).unwrap()).unwrap();
        a.set_label(&mut out).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    assert_eq!(w.insns[0].class, InsnClass::Jmp { target: BASE + 0x100 });
}

#[test]
fn a_branch_into_the_window_refuses_it_but_one_to_the_site_does_not() {
    // top: [site] add rax,rcx (3); [in] lea rax,[rax+rcx*2] (4); dec rcx; jnz top|in; ret
    for into_middle in [false, true] {
        let f = assemble(|a, m| {
            a.xor(eax, eax).unwrap();
            let top = mark(a, m);
            a.add(rax, rcx).unwrap();
            let mid = mark(a, m);
            a.lea(rax, qword_ptr(rax + rcx * 2)).unwrap();
            a.dec(rcx).unwrap();
            mark(a, m);
            a.jnz(if into_middle { mid } else { top }).unwrap();
            a.ret().unwrap();
        });
        let r = plan_jump(f.marks[0], &f.code, BASE, &[]);
        if into_middle {
            let e = r.unwrap_err();
            assert_eq!(
                e,
                Refusal::BranchIntoWindow {
                    from: f.marks[2],
                    target: f.marks[1],
                    window: (f.marks[0], f.marks[0] + 7)
                }
            );
            assert!(e.to_string().contains("targets"), "{e}");
        } else {
            assert_eq!(r.unwrap().len, 7);
        }
    }
}

#[test]
fn a_call_to_a_byte_inside_the_window_refuses_it() {
    let f = assemble(|a, m| {
        let mut inner = a.create_label();
        a.call(inner).unwrap();
        a.ret().unwrap();
        mark(a, m);
        a.mov(eax, edi).unwrap(); // 2
        a.set_label(&mut inner).unwrap();
        a.add(ecx, 1).unwrap(); // 3
        a.ret().unwrap();
    });
    assert!(matches!(plan_jump(f.marks[0], &f.code, BASE, &[]), Err(Refusal::BranchIntoWindow { .. })));
}

#[test]
fn known_targets_and_references_into_the_window_refuse_it() {
    let f = assemble(|a, m| {
        mark(a, m);
        a.mov(eax, edi).unwrap(); // 2
        a.add(ecx, 1).unwrap(); // 3
        a.ret().unwrap();
    });
    let site = f.marks[0];
    assert!(plan_jump(site, &f.code, BASE, &[site, site + 5, BASE + 0x1000]).is_ok());
    assert_eq!(
        plan_jump(site, &f.code, BASE, &[site + 2]).unwrap_err(),
        Refusal::KnownTargetInWindow { target: site + 2, window: (site, site + 5) }
    );

    // lea rdx, [rip + (site+2)]: the address of a byte of the window is taken.
    let f = assemble(|a, m| {
        mark(a, m);
        a.mov(eax, edi).unwrap();
        a.add(ecx, 1).unwrap();
        let lea = Instruction::with2(
            iced_x86::Code::Lea_r64_m,
            Register::RDX,
            iced_x86::MemoryOperand::with_base_displ(Register::RIP, (BASE + 2) as i64),
        )
        .unwrap();
        a.add_instruction(lea).unwrap();
        a.ret().unwrap();
    });
    assert_eq!(
        plan_jump(BASE, &f.code, BASE, &[]).unwrap_err(),
        Refusal::ReferenceIntoWindow { from: BASE + 5, target: BASE + 2, window: (BASE, BASE + 5) }
    );
}

#[test]
fn indirect_jumps_refuse_the_function_except_through_a_rip_relative_slot() {
    // A switch: jmp rax somewhere else in the function.
    let f = assemble(|a, m| {
        mark(a, m);
        a.mov(eax, edi).unwrap();
        a.add(ecx, 1).unwrap();
        mark(a, m);
        a.jmp(rax).unwrap();
    });
    assert_eq!(
        plan_jump(BASE, &f.code, BASE, &[]).unwrap_err(),
        Refusal::IndirectJump { at: f.marks[1], mnemonic: "jmp".into() }
    );
    let f = assemble(|a, _| {
        a.mov(eax, edi).unwrap();
        a.add(ecx, 1).unwrap();
        a.jmp(qword_ptr(rdx + rax * 8 + 0x10)).unwrap();
    });
    assert!(matches!(plan_jump(BASE, &f.code, BASE, &[]), Err(Refusal::IndirectJump { .. })));

    // A tail call through a GOT slot is fine, and may end the window.
    let f = assemble(|a, _| {
        a.mov(eax, edi).unwrap();
        let jmp = Instruction::with1(
            iced_x86::Code::Jmp_rm64,
            iced_x86::MemoryOperand::with_base_displ(Register::RIP, 0x60_0000),
        )
        .unwrap();
        a.add_instruction(jmp).unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    assert_eq!(w.insns[1].class, InsnClass::JmpMem { slot: 0x60_0000 });
    assert!(w.ends_with_exit());
}

#[test]
fn calls_system_calls_traps_and_x87_in_the_window_are_refused() {
    let f = assemble(|a, m| {
        mark(a, m);
        a.mov(eax, edi).unwrap();
        mark(a, m);
        a.call(rax).unwrap();
        a.ret().unwrap();
    });
    assert_eq!(plan_jump(BASE, &f.code, BASE, &[]).unwrap_err(), Refusal::CallInWindow { at: f.marks[1] });

    type Emit = fn(&mut CodeAssembler);
    let cases: [(&str, Emit, &str); 6] = [
        ("syscall", |a| a.syscall().unwrap(), "rcx"),
        ("int3", |a| a.int3().unwrap(), "out of line"),
        ("int", |a| a.int(0x80).unwrap(), "int n"),
        ("ud2", |a| a.ud2().unwrap(), "SIGILL"),
        ("fld1", |a| a.fld1().unwrap(), "x87"),
        ("hlt", |a| a.hlt().unwrap(), "privileged"),
    ];
    for (name, emit, why) in cases {
        let f = assemble(|a, _| {
            a.mov(eax, edi).unwrap();
            emit(a);
            a.mov(eax, edi).unwrap();
            a.mov(eax, edi).unwrap();
            a.ret().unwrap();
        });
        match plan_jump(BASE, &f.code, BASE, &[]) {
            Err(Refusal::NotRelocatable { at, mnemonic, reason }) => {
                assert_eq!((at, mnemonic.as_str()), (BASE + 2, name));
                assert!(reason.contains(why), "{name}: {reason}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn branches_and_rip_relative_operands_are_classified() {
    let f = assemble(|a, m| {
        let mut out = a.create_label();
        mark(a, m);
        a.test(edi, 1).unwrap(); // 6 (test r/m32, imm32)
        a.jz(out).unwrap();
        a.ret().unwrap();
        place(a, m, &mut out);
        a.loop_(out).unwrap();
        a.jrcxz(out).unwrap();
        a.nop().unwrap();
        a.nop().unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    assert_eq!(w.insns.len(), 1, "test edi,1 is 6 bytes");
    let w = plan_jump(f.marks[1], &f.code, BASE, &[]).unwrap();
    assert_eq!(
        w.insns.iter().map(|i| i.class).collect::<Vec<_>>(),
        [InsnClass::Loop { target: f.marks[1] }, InsnClass::Loop { target: f.marks[1] }, InsnClass::Plain]
    );

    let f = assemble(|a, _| {
        let mov = Instruction::with2(
            iced_x86::Code::Mov_r64_rm64,
            Register::RAX,
            iced_x86::MemoryOperand::with_base_displ(Register::RIP, 0x60_0010),
        )
        .unwrap();
        a.add_instruction(mov).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    assert_eq!(w.insns[0].class, InsnClass::RipRelative { target: 0x60_0010 });
}

#[test]
fn the_site_patch_is_a_jmp_rel32_within_2_gib() {
    let p = site_patch(0x40_1000, 0x50_0000).unwrap();
    assert_eq!(p[0], 0xe9);
    assert_eq!(i32::from_le_bytes(p[1..].try_into().unwrap()) as i64, 0x50_0000 - 0x40_1005);
    let insns = decode(&p, 0x40_1000);
    assert_eq!(insns[0].near_branch_target(), 0x50_0000);
    // Backwards too, and the limits.
    assert_eq!(
        decode(&site_patch(0x7f00_0000_0000, 0x7eff_f000_0000).unwrap(), 0x7f00_0000_0000)[0].near_branch_target(),
        0x7eff_f000_0000
    );
    let edge = 0x40_1005 + i32::MAX as u64;
    assert!(site_patch(0x40_1000, edge).is_ok());
    assert_eq!(
        site_patch(0x40_1000, edge + 1).unwrap_err(),
        Refusal::OutOfRange { what: "site patch", from: 0x40_1000, to: edge + 1 }
    );
}

/// A function whose window is `mov rcx,rdi; lea rdx,[rdi+rdi*2]` (7 bytes) between a `cmp` and
/// a `cmovb`, so the flags are live across it.
fn flags_live() -> Func {
    assemble(|a, m| {
        a.cmp(rdi, 100).unwrap();
        mark(a, m);
        a.mov(rcx, rdi).unwrap();
        a.lea(rdx, qword_ptr(rdi + rdi * 2)).unwrap();
        a.mov(rax, rdx).unwrap();
        a.cmovb(rax, rcx).unwrap();
        a.ret().unwrap();
    })
}

#[test]
fn a_counting_pad_saves_flags_above_the_red_zone_and_jumps_back() {
    let f = flags_live();
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    let pad_addr = 0x50_0000;
    let counter = 0x50_1000;
    let pad = build_pad(&w, pad_addr, &PadAction::Count { counter_addr: counter }).unwrap();
    assert_eq!((pad.entry, pad.len, pad.site, pad.window_len), (pad_addr, pad.bytes.len(), w.site, 7));
    assert_eq!(pad.patch, site_patch(w.site, pad_addr).unwrap());
    assert_eq!(pad.original[..], f.code[(w.site - BASE) as usize..][..5]);
    let insns = decode(&pad.bytes, pad_addr);
    assert_eq!(
        mnemonics(&insns),
        [
            Mnemonic::Lea,
            Mnemonic::Pushfq,
            Mnemonic::Inc,
            Mnemonic::Popfq,
            Mnemonic::Lea,
            Mnemonic::Mov,
            Mnemonic::Lea,
            Mnemonic::Jmp
        ]
    );
    assert_eq!((insns[0].memory_base(), insns[0].memory_displacement64() as i64), (Register::RSP, -128));
    assert_eq!((insns[4].memory_base(), insns[4].memory_displacement64()), (Register::RSP, 128));
    assert!(insns[2].has_lock_prefix());
    assert!(insns[2].is_ip_rel_memory_operand());
    assert_eq!(insns[2].ip_rel_memory_address(), counter);
    assert_eq!(insns[7].near_branch_target(), w.end());
    // The relocated instructions are the originals.
    let orig = decode(&w.original, w.site);
    assert_eq!((insns[5].code(), insns[6].code()), (orig[0].code(), orig[1].code()));
    // Points: each relocated instruction and the jump back.
    assert_eq!(pad.body, insns[5].ip());
    assert_eq!(pad.points, vec![(insns[5].ip(), w.site), (insns[6].ip(), w.site + 3), (insns[7].ip(), w.end())]);
    assert_eq!(pad.original_address(insns[6].ip()), Some(w.site + 3));
    assert_eq!(pad.original_address(insns[2].ip()), None);
    assert!(pad.contains(pad_addr) && pad.contains(pad_addr + pad.len as u64 - 1));
    assert!(!pad.contains(pad_addr + pad.len as u64));
}

#[test]
fn a_misaligned_counter_is_refused() {
    let f = flags_live();
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    let e = build_pad(&w, 0x50_0000, &PadAction::Count { counter_addr: 0x50_1004 }).unwrap_err();
    assert_eq!(e, Refusal::MisalignedCounter { addr: 0x50_1004 });
}

#[test]
fn a_far_counter_goes_through_rax_saved_below_the_red_zone() {
    let f = flags_live();
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    let counter = 0x7f12_3456_7000;
    let pad = build_pad(&w, 0x50_0000, &PadAction::Count { counter_addr: counter }).unwrap();
    let insns = decode(&pad.bytes, 0x50_0000);
    assert_eq!(
        mnemonics(&insns[..8]),
        [
            Mnemonic::Lea,
            Mnemonic::Pushfq,
            Mnemonic::Push,
            Mnemonic::Mov,
            Mnemonic::Inc,
            Mnemonic::Pop,
            Mnemonic::Popfq,
            Mnemonic::Lea
        ]
    );
    assert_eq!((insns[2].op0_register(), insns[5].op0_register()), (Register::RAX, Register::RAX));
    assert_eq!(insns[3].immediate64(), counter);
    assert!(insns[4].has_lock_prefix());
    assert_eq!(insns[4].memory_base(), Register::RAX);
}

#[test]
fn rip_relative_operands_keep_their_absolute_address() {
    let data = 0x60_0010;
    let f = assemble(|a, _| {
        let mov = Instruction::with2(
            iced_x86::Code::Mov_r64_rm64,
            Register::RAX,
            iced_x86::MemoryOperand::with_base_displ(Register::RIP, data as i64),
        )
        .unwrap();
        a.add_instruction(mov).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    for pad_addr in [0x50_0000u64, 0x1000_0000, 0x7000_0000] {
        let pad = build_pad(&w, pad_addr, &PadAction::Count { counter_addr: (pad_addr + 0x1000) & !7 }).unwrap();
        let insns = decode(&pad.bytes, pad_addr);
        assert_eq!(insns[5].mnemonic(), Mnemonic::Mov);
        assert_eq!(insns[5].ip_rel_memory_address(), data, "pad at {pad_addr:#x}");
    }
    // A pad the operand cannot reach: refused (the site is also out of reach of such a pad, so
    // only a window whose operand is far from the site itself shows it).
    let far = Instruction::with2(
        iced_x86::Code::Mov_r64_rm64,
        Register::RAX,
        iced_x86::MemoryOperand::with_base_displ(Register::RIP, (BASE + 0x7fff_0000) as i64),
    )
    .unwrap();
    let f = assemble(|a, _| {
        a.add_instruction(far).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(BASE, &f.code, BASE, &[]).unwrap();
    let pad_addr = BASE - 0x20_0000;
    assert_eq!(
        build_pad(&w, pad_addr, &PadAction::Count { counter_addr: (pad_addr + 0x1000) & !7 }).unwrap_err(),
        Refusal::OutOfRange { what: "rip-relative operand", from: pad_addr, to: BASE + 0x7fff_0000 }
    );
}

#[test]
fn a_jcc_the_pad_cannot_reach_goes_through_an_absolute_stub() {
    // [site] test edi,1 (6 bytes); ...; the jz is at the site in a second variant.
    let f = assemble(|a, m| {
        let mut out = a.create_label();
        a.nop().unwrap();
        mark(a, m);
        a.test(dil, 1).unwrap(); // 4
        a.jz(out).unwrap(); // 2
        a.add(rax, 5).unwrap();
        place(a, m, &mut out);
        a.ret().unwrap();
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    assert_eq!(w.insns[1].class, InsnClass::Jcc { target: f.marks[1] });

    // Near: a jz rel32 straight to the target.
    let pad = build_pad(&w, 0x50_0000, &PadAction::Count { counter_addr: 0x50_1000 }).unwrap();
    let insns = decode(&pad.bytes, 0x50_0000);
    assert_eq!(mnemonics(&insns[5..]), [Mnemonic::Test, Mnemonic::Je, Mnemonic::Jmp]);
    assert_eq!(insns[6].near_branch_target(), f.marks[1]);
    assert_eq!(insns[7].near_branch_target(), w.end());

    // Far: the site reaches the pad, but the pad's last byte would not reach the target with
    // rel32 (the target is before the site): jz to a stub that jumps absolutely.
    let pad_addr = w.site + 5 + i32::MAX as u64 - 0x40;
    let pad = build_pad(&w, pad_addr, &PadAction::Count { counter_addr: (pad_addr + 0x1000) & !7 }).unwrap();
    let insns = decode(&pad.bytes, pad_addr);
    assert_eq!(mnemonics(&insns[5..8]), [Mnemonic::Test, Mnemonic::Je, Mnemonic::Jmp]);
    let stub = insns[6].near_branch_target();
    // The jump back's literal follows it; the stub follows the literal.
    assert_eq!(stub, insns[7].next_ip() + 8, "the je goes to the stub after the jump back");
    let stub_insn = decode(&pad.bytes[(stub - pad_addr) as usize..], stub)[0];
    for (j, target) in [(insns[7], w.end()), (stub_insn, f.marks[1])] {
        assert!(j.is_jmp_near_indirect() && j.memory_base() == Register::RIP, "{j:?}");
        assert_eq!(j.ip_rel_memory_address(), j.next_ip(), "the literal follows the jmp");
        let at = (j.ip_rel_memory_address() - pad_addr) as usize;
        assert_eq!(u64::from_le_bytes(pad.bytes[at..at + 8].try_into().unwrap()), target);
    }
    assert_eq!(pad.original_address(stub), Some(f.marks[1]));
}

#[test]
fn loops_branch_to_a_stub_in_the_pad() {
    let f = assemble(|a, m| {
        let mut top = a.create_label();
        a.set_label(&mut top).unwrap();
        a.add(rax, rcx).unwrap();
        mark(a, m);
        a.inc(rdx).unwrap(); // 3
        a.loop_(top).unwrap(); // 2
        a.ret().unwrap();
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    let pad = build_pad(&w, 0x50_0000, &PadAction::Count { counter_addr: 0x50_1000 }).unwrap();
    let insns = decode(&pad.bytes, 0x50_0000);
    assert_eq!(mnemonics(&insns[5..]), [Mnemonic::Inc, Mnemonic::Loop, Mnemonic::Jmp, Mnemonic::Jmp]);
    assert_eq!(insns[6].near_branch_target(), insns[8].ip());
    assert_eq!(insns[7].near_branch_target(), w.end());
    assert_eq!(insns[8].near_branch_target(), BASE);
}

#[test]
fn a_window_ending_in_ret_has_no_jump_back() {
    let f = assemble(|a, m| {
        a.push(rbp).unwrap();
        mark(a, m);
        a.add(rax, rdi).unwrap();
        a.pop(rbp).unwrap();
        a.ret().unwrap();
    });
    let w = plan_jump(f.marks[0], &f.code, BASE, &[]).unwrap();
    let pad = build_pad(&w, 0x50_0000, &PadAction::Count { counter_addr: 0x50_1000 }).unwrap();
    let insns = decode(&pad.bytes, 0x50_0000);
    assert_eq!(mnemonics(&insns[5..]), [Mnemonic::Add, Mnemonic::Pop, Mnemonic::Ret]);
    assert_eq!(pad.points.len(), 3);
}

#[test]
fn refusals_read_as_sentences() {
    let e = Refusal::CallInWindow { at: 0x401234 };
    assert_eq!(
        e.to_string(),
        "the call at 0x401234 would be in the window: its return address would point into the pad"
    );
    let e = Refusal::PastFunctionEnd { site: 0x401000, available: 3 };
    assert_eq!(e.to_string(), "only 3 bytes of whole instructions from 0x401000 to the function's end; a jump needs 5");
}
