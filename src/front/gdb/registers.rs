//! Registers: `g`, `G`, `p`, `P` of the current thread (`Hg`, else the last stopped one).
//!
//! The register file is xol-arch's amd64-linux layout, the one the target description served
//! by `qXfer:features:read:target.xml` describes (general registers, x87, SSE, `orig_rax`,
//! `fs_base`/`gs_base`, AVX upper halves), in the order of GNU gdbserver's `g` reply. gdb
//! without a target description (`set tdesc filename` unused, `qXfer:features` refused) still
//! reads `g`: the bytes are the same; a register number beyond the file is `E01` (an empty
//! reply would tell gdb `p` is unsupported).

use super::session::{Reply, Server};
use crate::rsp::reply;

impl Server {
    /// `g`.
    pub(super) fn read_registers(&mut self) -> Reply {
        let Some(t) = self.current_thread() else { return Reply::err() };
        match self.dbg.read_registers(t) {
            Ok(rf) => Reply::Send(reply::hex_data(&rf.to_g_bytes())),
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
        if rf.from_g_bytes(bytes).is_err() {
            return Reply::err();
        }
        Reply::from(self.dbg.write_registers(t, &rf))
    }

    /// `p`.
    pub(super) fn read_register(&mut self, n: u32) -> Reply {
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
        let Some(t) = self.current_thread() else { return Reply::err() };
        let Ok(mut rf) = self.dbg.read_registers(t) else { return Reply::err() };
        if rf.write_reg(n as usize, value).is_err() {
            return Reply::err();
        }
        Reply::from(self.dbg.write_registers(t, &rf))
    }
}
