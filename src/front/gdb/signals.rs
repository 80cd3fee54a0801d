//! Signal settings: `QPassSignals` (delivered at once, without a stop), `QProgramSignals`
//! (accepted; every signal reaches the program), `QCatchSyscalls`. Numbers on the wire are
//! gdb's ([`crate::front::gdb_common::signals`]).

use super::session::{Reply, Server};
use crate::debugger::SyscallFilter;
use crate::front::gdb_common::signals::from_gdb;
use crate::rsp::request::CatchSyscalls;

impl Server {
    /// `QPassSignals:sig;...`.
    pub(super) fn pass_signals(&mut self, list: &[u8]) -> Reply {
        self.dbg.set_pass_signals(list.iter().map(|s| from_gdb(*s)).filter(|s| *s > 0));
        Reply::ok()
    }

    /// `QCatchSyscalls:0|1[;n...]`.
    pub(super) fn catch_syscalls(&mut self, c: CatchSyscalls) -> Reply {
        let Some(pid) = self.pid else { return Reply::err() };
        let filter = match c {
            CatchSyscalls::Off => None,
            CatchSyscalls::All => Some(SyscallFilter::All),
            CatchSyscalls::Only(n) => Some(SyscallFilter::Only(n)),
        };
        Reply::from(self.dbg.set_catch_syscalls(pid, filter))
    }

    /// `QNonStop:0|1`. Hook: non-stop (`%Stop` notifications, `vStopped`) is not offered yet.
    pub(super) fn non_stop(&mut self, on: bool) -> Reply {
        if on {
            Reply::err()
        } else {
            self.peer.non_stop = false;
            Reply::ok()
        }
    }
}
