//! Notices: what happens in the traced processes that no front-end has to answer — a fork, an
//! exec, a thread born or ended, a followed child ending, a probe hit — queued for the
//! front-ends that subscribed (nothing is queued otherwise) and handed out by
//! [`super::Inferior::wait`] before it blocks again. The queue is bounded: when a front-end
//! does not keep up, the notices that did not fit are counted and reported as [`Notice::Lost`].

use crate::types::{Pid, Tid};
use std::collections::VecDeque;

/// One notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `parent` forked (or vforked) `child`; `followed`: the child stays traced (per-file
    /// probes are armed in it), else it runs on untraced with xol's bytes taken out.
    Forked {
        /// The forking process.
        parent: Pid,
        /// The new process.
        child: Pid,
        /// A vfork (the parent waits until the child execs or exits).
        vfork: bool,
        /// The child is traced.
        followed: bool,
    },
    /// The process replaced its program.
    Exec {
        /// The process.
        pid: Pid,
        /// The new program, as the kernel names it.
        path: Option<std::path::PathBuf>,
    },
    /// A new thread.
    ThreadStarted {
        /// Its process.
        pid: Pid,
        /// The thread.
        tid: Tid,
    },
    /// A thread ended (not the last of its process: that is the process's exit).
    ThreadExited {
        /// Its process.
        pid: Pid,
        /// The thread.
        tid: Tid,
    },
    /// A followed child (never reported as a stop) ended.
    ChildEnded {
        /// The child.
        pid: Pid,
        /// Its exit code, or the signal that killed it (negative).
        status: i32,
    },
    /// A probe was hit and its hit counted (the thread ran on).
    ProbeHit {
        /// The probe.
        probe: u32,
        /// Who the hit is for.
        consumer: crate::probe::Consumer,
        /// The process.
        pid: Pid,
        /// The thread.
        tid: Tid,
    },
    /// This many notices did not fit in the queue and were dropped.
    Lost(u64),
}

/// What a front-end wants to be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Subscription {
    /// Forks, execs, threads, followed children ending.
    pub lifecycle: bool,
    /// Every probe hit (one notice per hit: for tracing front-ends).
    pub probe_hits: bool,
}

/// Notices that fit in the queue before new ones are counted as lost.
pub const MAX_QUEUED: usize = 1 << 16;

/// The queue.
#[derive(Debug, Default)]
pub struct Notices {
    /// What is wanted.
    pub sub: Subscription,
    queue: VecDeque<Notice>,
    lost: u64,
}

impl Notices {
    /// Queue a notice if it is wanted.
    pub fn push(&mut self, n: Notice) {
        let wanted = match n {
            Notice::ProbeHit { .. } => self.sub.probe_hits,
            Notice::Lost(_) => false,
            _ => self.sub.lifecycle,
        };
        if !wanted {
            return;
        }
        if self.queue.len() >= MAX_QUEUED {
            self.lost += 1;
            return;
        }
        self.queue.push_back(n);
    }

    /// The oldest notice; the count of lost ones once those queued before them are out.
    pub fn pop(&mut self) -> Option<Notice> {
        if let Some(n) = self.queue.pop_front() {
            return Some(n);
        }
        (self.lost > 0).then(|| Notice::Lost(std::mem::take(&mut self.lost)))
    }

    /// True if lifecycle notices are wanted (to skip the work of making them otherwise).
    pub fn wants_lifecycle(&self) -> bool {
        self.sub.lifecycle
    }

    /// True if a notice is waiting to be handed out.
    pub fn has_queued(&self) -> bool {
        !self.queue.is_empty() || self.lost > 0
    }

    /// Drop everything queued (a new subscription).
    pub fn clear(&mut self) {
        self.queue.clear();
        self.lost = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_subscribed_is_queued() {
        let mut q = Notices::default();
        q.push(Notice::Exec { pid: Pid(1), path: None });
        assert_eq!(q.pop(), None, "nothing without a subscription");
        q.sub.lifecycle = true;
        q.push(Notice::Exec { pid: Pid(1), path: None });
        q.push(Notice::ProbeHit { probe: 1, consumer: crate::probe::Consumer::Count, pid: Pid(1), tid: Tid(1) });
        assert_eq!(q.pop(), Some(Notice::Exec { pid: Pid(1), path: None }));
        assert_eq!(q.pop(), None, "probe hits need their own subscription");
    }

    #[test]
    fn a_full_queue_counts_what_it_drops() {
        let mut q = Notices { sub: Subscription { lifecycle: false, probe_hits: true }, ..Default::default() };
        for i in 0..MAX_QUEUED + 5 {
            q.push(Notice::ProbeHit {
                probe: 1,
                consumer: crate::probe::Consumer::Count,
                pid: Pid(1),
                tid: Tid(i as i32),
            });
        }
        let mut n = 0;
        while let Some(x) = q.pop() {
            match x {
                Notice::ProbeHit { .. } => n += 1,
                Notice::Lost(k) => {
                    assert_eq!(k, 5);
                    assert_eq!(n, MAX_QUEUED, "the lost count comes after what was queued");
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(q.pop(), None);
    }
}
