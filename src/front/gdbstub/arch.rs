//! gdbstub's view of amd64-linux: the register file and register ids of `xol-arch`, with the
//! full target description (core, SSE, linux `orig_rax`, `fs_base`/`gs_base`, AVX).

use gdbstub::arch::{Arch, RegId, Registers};
use std::num::NonZeroUsize;
use xol_arch::regs::{RegisterFile, NUM_REGS, REGS};

/// The amd64-linux architecture as GNU gdbserver presents it.
#[derive(Debug)]
pub enum Amd64Linux {}

/// Registers wrapper for gdbstub.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Regs(pub RegisterFile);

impl Registers for Regs {
    type ProgramCounter = u64;

    fn pc(&self) -> u64 {
        self.0.pc()
    }

    fn gdb_serialize(&self, mut write_byte: impl FnMut(Option<u8>)) {
        for b in self.0.to_g_bytes() {
            write_byte(Some(b));
        }
    }

    fn gdb_deserialize(&mut self, bytes: &[u8]) -> Result<(), ()> {
        self.0.from_g_bytes(bytes).map_err(drop)
    }
}

/// A gdb register number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegNo(pub usize);

impl RegId for RegNo {
    fn from_raw_id(id: usize) -> Option<(Self, Option<NonZeroUsize>)> {
        if id < NUM_REGS {
            Some((RegNo(id), NonZeroUsize::new(REGS[id].bitsize as usize / 8)))
        } else {
            None
        }
    }

    fn to_raw_id(&self) -> Option<usize> {
        Some(self.0)
    }
}

impl Arch for Amd64Linux {
    type Usize = u64;
    type Registers = Regs;
    type BreakpointKind = usize;
    type RegId = RegNo;

    fn target_description_xml() -> Option<&'static str> {
        xol_arch::tdesc::xfer_annex("target.xml")
    }
}
