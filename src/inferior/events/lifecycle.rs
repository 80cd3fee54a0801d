//! The life cycle of traced processes: new threads (clone), forked children and the follow
//! policy (followed while per-file probes exist, else scrubbed and detached), vfork's shared
//! memory, exec (a new image: insertions, slots and debug registers gone), and, before a
//! detach, taking xol's own signals out of the kernel's queues.

use super::{continue_internal, SI_KERNEL};
use crate::inferior::aspace::ChildWrite;
use crate::inferior::notice::Notice;
use crate::inferior::{Error, Inferior, Origin, Process, Result, StopKind, Task, Thread};
use crate::sys::ptrace::{self, Queued, ResumeKind, SigQueue};
use crate::sys::wait::{self, Stop};
use crate::sys::{self, mem::Mem, RawTid};
use crate::types::{Owner, Pid, Tid};

impl Inferior {
    /// A new thread (`PTRACE_EVENT_CLONE` of `tid`): it is born running, of a thread the
    /// front-end resumed, and its first stop is still to come (or was already seen as an orphan).
    pub(super) fn handle_clone(&mut self, pid: Pid, tid: RawTid, stopping: bool) -> Result<()> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        let new = ptrace::event_msg(tid)? as RawTid;
        if let std::collections::btree_map::Entry::Vacant(slot) = p.threads.entry(new) {
            // Born running, of a thread the front-end resumed.
            let mut t = Thread::new_running();
            t.resumed = true;
            t.born = true;
            slot.insert(t);
            self.notices.push(Notice::ThreadStarted { pid, tid: Tid(new) });
            // Its first stop may already have been seen as an orphan.
            if let Some(i) = self.orphans.iter().position(|(o, _)| *o == new) {
                let (_, st) = self.orphans.remove(i);
                self.handle_status(new, st, stopping)?;
            }
        }
        Ok(())
    }

    /// An exec (`PTRACE_EVENT_EXEC` reported by `tid`): one thread is left, as the leader, in a
    /// new image whose memory, maps and per-file probes are set up again.
    pub(super) fn handle_exec(&mut self, pid: Pid, tid: RawTid) -> Result<()> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        // The old image is gone, with its breakpoints, its debug registers (the kernel
        // clears them on exec) and all other threads.
        p.aspace.forget_image();
        p.conditions.clear();
        // A vfork child's memory is its own from now on.
        p.vfork_parent = None;
        let former = ptrace::event_msg(tid).unwrap_or(tid as u64) as RawTid;
        p.threads.retain(|t, _| *t == former || *t == pid.0);
        let mut t = p.threads.remove(&former).unwrap_or_else(Thread::new_stopped);
        t.stop();
        t.set_task(Task::Free);
        t.rehit = None;
        p.threads.clear();
        p.threads.insert(pid.0, t);
        p.aspace.reopen(pid)?;
        // The new program's path is read only for someone who will see it.
        if self.notices.wants_lifecycle() || log::log_enabled!(log::Level::Info) {
            let path = sys::proc::exe(pid.0).ok();
            log::info!("process {pid} exec'd {path:?}");
            self.notices.push(Notice::Exec { pid, path });
        }
        // Per-file probes in the new image (the program and its dynamic linker now;
        // libraries when the linker reports them).
        self.after_exec(pid)?;
        Ok(())
    }

    /// A forked child. While per-file probes exist it is **followed**: traced from birth as a
    /// process of its own, with the per-file probes' `int3`s left armed in its copy of memory
    /// and every other insertion (gdb's, per-process probes') taken out of it; its events are
    /// handled here and never reported. Otherwise (gdb's default `detach-on-fork on`) xol's
    /// breakpoints are taken out of its memory and it runs on untraced. For vfork the memory is
    /// shared until the child execs or exits: a followed child shares every insertion (a hit of
    /// one that is not per-file is stepped over silently); an unfollowed one is protected by
    /// disarming the parent until `PTRACE_EVENT_VFORK_DONE`.
    ///
    /// With [`Inferior::fork_events`] the child is instead kept stopped as a process of the
    /// front-end's, with every insertion of the parent (see [`Inferior::keep_forked_child`]),
    /// and the fork is to be reported: the result is true.
    pub(super) fn handle_fork(&mut self, pid: Pid, _parent: RawTid, child: RawTid, vfork: bool) -> Result<bool> {
        // The child's first stop: maybe already seen.
        if let Some(i) = self.orphans.iter().position(|(o, _)| *o == child) {
            self.orphans.remove(i);
        } else {
            match wait::wait_tid(child) {
                Ok((_, Stop::Exited(_) | Stop::Killed(_))) => return Ok(false),
                Ok(_) => {}
                Err(e) => {
                    log::warn!("waiting for forked child {child}: {e}");
                    return Ok(false);
                }
            }
        }
        self.forks_handled += 1;
        if self.fork_events {
            return self.keep_forked_child(pid, child, vfork);
        }
        let snap = self.table.snapshot();
        if snap.has_per_file() {
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            let mem = match Mem::open(child) {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("cannot open memory of forked child {child}: {e}; detaching it");
                    let _ = ptrace::detach(child, 0);
                    return Ok(false);
                }
            };
            let per_file = |o: &Owner| per_file_owner(&snap, o);
            // Fork fast path (seed 003): a single-threaded parent is stopped at its fork event,
            // so nothing could have lifted a byte while the kernel copied its memory and the
            // child's copy holds every `int3` as they are. With other threads running, one of
            // them may have been in an in-line step-over (a byte lifted) at the moment of the
            // copy: only then are the child's `int3`s written again.
            let single = p.threads.len() == 1;
            let insertions = if vfork {
                p.aspace.insertions.shared_copy()
            } else {
                let (kept, failed) = p.aspace.insertions.for_forked_child(&mem, per_file, !single);
                for (addr, what, e) in failed {
                    match what {
                        ChildWrite::Scrub => {
                            log::warn!("removing breakpoint at {addr:#x} from forked child {child}: {e}")
                        }
                        ChildWrite::Rearm => log::warn!("re-arming {addr:#x} in forked child {child}: {e}"),
                    }
                }
                if !single {
                    self.forks_multithreaded += 1;
                }
                kept
            };
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            let slots = p.aspace.slots.for_child(vfork);
            let mut threads = std::collections::BTreeMap::new();
            threads.insert(child, Thread::new_stopped());
            let origin = Origin::Forked {
                insertions,
                slots,
                followed: true,
                launched: false,
                vfork_parent: vfork.then_some(pid),
            };
            let proc = Process::new(child, threads, mem, origin);
            self.procs.insert(Pid(child), proc);
            self.children_followed += 1;
            self.notices.push(Notice::Forked { parent: pid, child: Pid(child), vfork, followed: true });
            let p = self.procs.get_mut(&Pid(child)).ok_or(Error::NoProcess(Pid(child)))?;
            continue_internal(p, child)?;
            return Ok(false);
        }
        if vfork {
            self.set_armed(pid, false)?;
        } else {
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            if !p.aspace.insertions.is_empty() {
                match Mem::open(child) {
                    Ok(m) => {
                        for (addr, e) in p.aspace.insertions.scrub(&m) {
                            log::warn!("removing breakpoint at {addr:#x} from a forked child: {e}");
                        }
                    }
                    Err(e) => log::warn!("cannot open memory of forked child {child}: {e}"),
                }
            }
        }
        if let Err(e) = ptrace::detach(child, 0) {
            log::warn!("detaching forked child {child}: {e}");
        }
        self.notices.push(Notice::Forked { parent: pid, child: Pid(child), vfork, followed: false });
        Ok(false)
    }

    /// A forked child the front-end lets go (fork events on) while per-file probes exist: xol
    /// follows it on its own instead, as it would have from its birth, so its per-file probes
    /// keep counting (silently). Every other insertion is taken out of its memory (after a
    /// vfork the memory is the parent's: nothing is written), its debug registers cleared, and
    /// it runs on, a signal it stopped with delivered. Returns whether it is followed now.
    pub(in crate::inferior) fn follow_let_go_child(&mut self, pid: Pid) -> Result<bool> {
        let snap = self.table.snapshot();
        let Some(p) = self.procs.get_mut(&pid) else { return Ok(false) };
        if !p.forked || !snap.has_per_file() {
            return Ok(false);
        }
        if p.vfork_parent.is_none() {
            let (kept, failed) =
                p.aspace.insertions.for_forked_child(&p.aspace.mem, |o| per_file_owner(&snap, o), false);
            for (addr, _, e) in failed {
                log::warn!("removing breakpoint at {addr:#x} from forked child {pid}: {e}");
            }
            p.aspace.insertions = kept;
        }
        if p.aspace.hw.iter().any(|s| s.is_some()) {
            for tid in p.threads.keys() {
                let _ = ptrace::set_debugreg(*tid, 7, 0);
            }
            p.aspace.hw = [None; 4];
        }
        p.followed = true;
        p.forked = false;
        p.launched = false;
        p.catch = None;
        self.children_followed += 1;
        let tids: Vec<RawTid> = p.threads.keys().copied().collect();
        for tid in tids {
            let Some(t) = p.threads.get_mut(&tid) else { continue };
            t.resumed = false;
            let sig = match t.take_pending() {
                Some(StopKind::Signal(s)) => s,
                _ => std::mem::take(&mut t.deferred_sig),
            };
            if t.is_stopped() {
                super::resume_free(p, tid, sig)?;
            }
        }
        log::info!("forked child {pid} let go by the front-end: followed for its per-file probes");
        Ok(true)
    }

    /// A forked child kept for the front-end (fork events on): a process of its own, stopped,
    /// with every insertion of its parent (they are in its copy of memory, or, after a vfork,
    /// in the memory it shares) and the parent's slot area. The front-end then keeps it or lets
    /// it go ([`Inferior::detach`] takes xol's bytes out of it, or follows it on xol's own
    /// while per-file probes exist). Returns whether the child is there to report.
    pub(super) fn keep_forked_child(&mut self, pid: Pid, child: RawTid, vfork: bool) -> Result<bool> {
        let mem = match Mem::open(child) {
            Ok(m) => m,
            Err(e) => {
                log::warn!("cannot open memory of forked child {child}: {e}; detaching it");
                let _ = ptrace::detach(child, 0);
                return Ok(false);
            }
        };
        let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
        let insertions = if vfork {
            p.aspace.insertions.shared_copy()
        } else {
            // As for a followed child: with other threads running, one of them may have had a
            // byte lifted when the memory was copied; write the `int3`s again then.
            let (kept, failed) = p.aspace.insertions.for_forked_child(&mem, |_| true, p.threads.len() > 1);
            for (addr, _, e) in failed {
                log::warn!("re-arming {addr:#x} in forked child {child}: {e}");
            }
            kept
        };
        let origin = Origin::Forked {
            insertions,
            slots: p.aspace.slots.for_child(vfork),
            followed: false,
            launched: p.launched,
            vfork_parent: vfork.then_some(pid),
        };
        let conditions = p.conditions.clone();
        let mut threads = std::collections::BTreeMap::new();
        threads.insert(child, Thread::new_stopped());
        let mut proc = Process::new(child, threads, mem, origin);
        // The child's breakpoints are the parent's, conditions included (as gdbserver's).
        proc.conditions = conditions;
        self.procs.insert(Pid(child), proc);
        self.notices.push(Notice::Forked { parent: pid, child: Pid(child), vfork, followed: true });
        Ok(true)
    }

    /// Before detaching a stopped process, take out of the kernel's signal queues every signal
    /// xol itself caused and no front-end was told of: the SIGTRAP of an `int3` of ours that a
    /// thread executed just before it was interrupted (a `PTRACE_EVENT_STOP` is reported before
    /// the thread dequeues its signals), and the SIGINT xol sent for an interrupt. Left queued,
    /// either would kill the program once it runs without xol (a SIGTRAP at `int3 + 1` with the
    /// original byte back). A thread is resumed only while one of its unblocked signals is
    /// queued, so it stops again in signal delivery before running a single instruction; the
    /// first signal it dequeues that is not ours is kept for the detach to deliver.
    pub(in crate::inferior) fn flush_own_signals(&mut self, pid: Pid) -> Result<()> {
        let me = std::process::id() as i32;
        let tids: Vec<RawTid> = self.procs.get(&pid).map(|p| p.threads.keys().copied().collect()).unwrap_or_default();
        for tid in tids {
            // Bounded: standard signals are queued at most once each.
            for _ in 0..32 {
                let Some(p) = self.procs.get(&pid) else { return Ok(()) };
                let Some(t) = p.threads.get(&tid) else { break };
                if !t.is_stopped() || t.pending().is_some() || t.deferred_sig != 0 {
                    break;
                }
                let blocked = match ptrace::sigmask(tid) {
                    Ok(m) => m,
                    Err(e) if e.is_gone() => break,
                    Err(e) => return Err(e.into()),
                };
                let deliverable = |q: &Queued| q.signo >= 1 && q.signo <= 64 && blocked & (1u64 << (q.signo - 1)) == 0;
                let mut queued: Vec<Queued> = Vec::new();
                for queue in [SigQueue::Thread, SigQueue::Process] {
                    match ptrace::peek_pending(tid, queue, 64) {
                        Ok(v) => queued.extend(v.into_iter().filter(deliverable)),
                        Err(e) if e.is_gone() => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                let regs = ptrace::get_regs(tid)?;
                let ours = |q: &Queued| {
                    (q.signo == libc::SIGTRAP
                        && q.code == SI_KERNEL
                        && p.aspace.insertions.contains(regs.rip.wrapping_sub(1)))
                        || (q.signo == libc::SIGINT && q.code <= 0 && q.sender == me)
                };
                if !queued.iter().any(ours) {
                    break;
                }
                // Let the thread dequeue one signal: it stops in signal delivery at once (and
                // is waited for here, so its state stays `Stopped`).
                match ptrace::resume(tid, ResumeKind::Cont, 0) {
                    Ok(()) => {}
                    Err(e) if e.is_gone() => break,
                    Err(e) => return Err(e.into()),
                }
                let (_, st) = wait::wait_tid(tid)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                match st {
                    Stop::Signal(sig) => {
                        let mut regs = ptrace::get_regs(tid)?;
                        let at = regs.rip.wrapping_sub(1);
                        let si = ptrace::siginfo(tid)?;
                        let code = si.si_code;
                        if sig == libc::SIGTRAP && code == SI_KERNEL && p.aspace.insertions.contains(at) {
                            log::debug!("detach: consumed the trap of {tid} at {at:#x}");
                            regs.rip = at;
                            ptrace::set_regs(tid, &regs)?;
                        } else if sig == libc::SIGINT && code <= 0 && unsafe { si.si_pid() } == me {
                            log::debug!("detach: discarded xol's SIGINT queued for {tid}");
                        } else if let Some(t) = p.threads.get_mut(&tid) {
                            // The program's own signal: delivered by the detach.
                            t.set_pending(StopKind::Signal(sig));
                        }
                    }
                    Stop::Exited(_) | Stop::Killed(_) => {
                        p.threads.remove(&tid);
                        break;
                    }
                    _ => {
                        // Some other stop (a group-stop): stopped again (its state never left
                        // `Stopped`: the resume above is a dequeue, not a front-end's), leave the
                        // rest queued.
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}

/// True if `o` holds an insertion a followed child keeps: a per-file probe's, or xol's own
/// (the dynamic linker's `r_brk`, which arms per-file probes in libraries loaded later).
fn per_file_owner(snap: &crate::probe::Snapshot, o: &Owner) -> bool {
    *o == Owner::Internal || matches!(o, Owner::Probe(id) if snap.get(*id).is_some_and(|pr| pr.per_file()))
}
