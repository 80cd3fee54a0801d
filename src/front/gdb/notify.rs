//! The non-stop notification queue (the hook for `QNonStop:1`, not offered yet): in non-stop
//! mode a stop is not a reply but a `%Stop:...` notification, sent when the queue goes from
//! empty to not empty; gdb then drains the queue with `vStopped`, each answered with the next
//! stop reply, and `OK` once it is empty (the protocol manual's "Notification Packets").
//!
//! Pure: it holds encoded stop replies and says what to send; `run_control.rs` will push the
//! stops of threads gdb resumed with `vCont` (answered `OK` at once) once the core can leave
//! the other threads running.

use crate::rsp::framing::frame_notification;
use std::collections::VecDeque;

/// Stop replies waiting for gdb's `vStopped`.
#[derive(Debug, Default, Clone)]
pub struct StopQueue {
    /// The stop replies not yet acknowledged, oldest first (the first was notified).
    pending: VecDeque<Vec<u8>>,
}

impl StopQueue {
    /// Queue a stop reply; the `%Stop` notification to send now, if the queue was empty (gdb
    /// fetches the rest with `vStopped`).
    pub fn push(&mut self, stop_reply: Vec<u8>) -> Option<Vec<u8>> {
        self.pending.push_back(stop_reply);
        (self.pending.len() == 1).then(|| {
            let mut p = b"Stop:".to_vec();
            p.extend_from_slice(&self.pending[0]);
            frame_notification(&p)
        })
    }

    /// `vStopped`: gdb has the oldest stop; the answer is the next one, or `OK` when none is
    /// left.
    pub fn stopped(&mut self) -> Vec<u8> {
        self.pending.pop_front();
        match self.pending.front() {
            Some(r) => r.clone(),
            None => b"OK".to_vec(),
        }
    }

    /// Nothing waits for gdb.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Forget every queued stop (gdb left non-stop mode or the connection ended).
    pub fn clear(&mut self) {
        self.pending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notifies_once_then_drains_with_vstopped() {
        let mut q = StopQueue::default();
        assert_eq!(q.push(b"T05thread:p1.1;".to_vec()), Some(frame_notification(b"Stop:T05thread:p1.1;")));
        assert_eq!(q.push(b"T05thread:p1.2;".to_vec()), None, "gdb fetches it with vStopped");
        assert_eq!(q.stopped(), b"T05thread:p1.2;");
        assert_eq!(q.stopped(), b"OK");
        assert!(q.is_empty());
        assert_eq!(q.stopped(), b"OK", "vStopped on an empty queue");
        assert!(q.push(b"W00;process:1".to_vec()).is_some(), "a new stop after the drain is notified");
        q.clear();
        assert!(q.is_empty());
    }
}
