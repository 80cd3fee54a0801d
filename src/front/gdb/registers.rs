//! Registers: `g`, `G`, `p`, `P` of the current thread (`Hg`, else the last stopped one).
//!
//! The register file is xol-arch's amd64-linux layout, the one the target description served
//! by `qXfer:features:read:target.xml` describes (general registers, x87, SSE, `orig_rax`,
//! `fs_base`/`gs_base`, AVX upper halves), in the order of GNU gdbserver's `g` reply. A gdb
//! that reads no target description (it did not send `xmlRegisters=i386`, e.g. `set remote
//! target-features-packet off`) gets what its built-in amd64-linux architecture expects, as
//! from gdbserver's no-XML description: the registers before the AVX upper halves (560
//! bytes); those are then out of range. A register number beyond the file is `E01` (an empty
//! reply would tell gdb `p` is unsupported).

use super::session::{Reply, Server};
use crate::rsp::reply;
use xol_arch::regs::{NUM_REGS, REGS, YMM0H_REGNUM};

/// Bytes of the registers before `n` in a `g` packet.
fn g_len(n: usize) -> usize {
    REGS[..n].iter().map(|r| r.size()).sum()
}

impl Server {
    /// `g`.
    pub(super) fn read_registers(&mut self) -> Reply {
        let Some(t) = self.current_thread() else { return Reply::err() };
        match self.dbg.read_registers(t) {
            Ok(rf) => {
                let mut g = rf.to_g_bytes();
                g.truncate(g_len(self.registers_shown()));
                Reply::Send(reply::hex_data(&g))
            }
            Err(e) => {
                log::debug!("reading the registers of {t}: {e}");
                Reply::err()
            }
        }
    }

    /// `G`.
    pub(super) fn write_registers(&mut self, bytes: &[u8]) -> Reply {
        let Some(t) = self.current_thread() else { return Reply::err() };
        let Ok(mut rf) = self.dbg.read_registers(t) else { return Reply::err() };
        if bytes.len() > g_len(self.registers_shown()) || rf.from_g_bytes(bytes).is_err() {
            return Reply::err();
        }
        Reply::from(self.dbg.write_registers(t, &rf))
    }

    /// How many registers this connection's layout has.
    fn registers_shown(&self) -> usize {
        if self.peer.xml_registers {
            NUM_REGS
        } else {
            YMM0H_REGNUM
        }
    }

    /// `p`.
    pub(super) fn read_register(&mut self, n: u32) -> Reply {
        if n as usize >= self.registers_shown() {
            return Reply::err();
        }
        let Some(t) = self.current_thread() else { return Reply::err() };
        let Ok(rf) = self.dbg.read_registers(t) else { return Reply::err() };
        let mut out = Vec::new();
        match rf.read_reg(n as usize, &mut out) {
            Some(()) => Reply::Send(reply::hex_data(&out)),
            None => Reply::err(),
        }
    }

    /// `P`.
    pub(super) fn write_register(&mut self, n: u32, value: &[u8]) -> Reply {
        if n as usize >= self.registers_shown() {
            return Reply::err();
        }
        let Some(t) = self.current_thread() else { return Reply::err() };
        let Ok(mut rf) = self.dbg.read_registers(t) else { return Reply::err() };
        if rf.write_reg(n as usize, value).is_err() {
            return Reply::err();
        }
        Reply::from(self.dbg.write_registers(t, &rf))
    }
}
