//! `qRcmd` (gdb's `monitor`): the commands of [`crate::front::gdb_common::monitor`], the same
//! implementation the gdbstub front-end runs. Output goes to gdb as `O` packets, then `OK`.

use super::conn::Conn;
use super::session::{Reply, Server};
use crate::front::gdb_common::monitor::{self, Effect, MonitorCtx};
use crate::rsp::reply;

impl Server {
    /// `qRcmd,HEX`.
    pub(super) fn monitor(&mut self, conn: &mut Conn, cmd: &[u8]) -> std::io::Result<Reply> {
        let mut lines: Vec<String> = Vec::new();
        let mut ctx = MonitorCtx { dbg: &mut self.dbg, pid: self.pid, bps: &self.bps };
        let effect = monitor::run(&mut ctx, &String::from_utf8_lossy(cmd), &mut |l| lines.push(format!("{l}\n")));
        if let Effect::ForkEvents(on) = effect {
            let on = on && self.peer.fork_events;
            self.dbg.set_fork_events(on);
            lines.push(match (on, self.peer.fork_events) {
                (true, _) => "fork events to gdb: on\n".into(),
                (false, true) => "fork events to gdb: off (xol handles forks itself)\n".into(),
                (false, false) => "fork events to gdb: off (gdb did not offer fork-events)\n".into(),
            });
        }
        for l in lines {
            conn.send(&reply::console_output(l.as_bytes()))?;
        }
        match effect {
            Effect::None | Effect::ForkEvents(_) => {}
            Effect::Exit => self.exit_requested = true,
            Effect::RemoteDebug(on) => {
                self.remote_debug = on;
                conn.remote_debug = on;
            }
        }
        Ok(Reply::ok())
    }
}
