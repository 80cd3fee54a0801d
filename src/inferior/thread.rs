//! One traced thread, as the event machine sees it: whether it sits in a ptrace-stop xol has
//! seen (its [`State`], with the decoded event it has not reported yet) and what xol has it do
//! when it runs (its [`Task`]: run freely, a front-end's single-step or range-step, or a
//! displaced step in flight), plus the bookkeeping of breakpoint hits and signals.
//!
//! The two enums make the valid combinations the only ones that can be written: an event is
//! pending only on a stopped thread; a step range exists only while stepping; a displaced step
//! in flight and a front-end's step are one or the other (a displaced step carries the
//! front-end's step it serves, see [`InFlight::step`]). A task is set afresh each time the
//! thread is resumed for a front-end, so nothing of an earlier request (a range, a step) leaks
//! into a later one; after an event handled inside the core the thread resumes "as it was
//! going", with the task it had.

use super::displaced::InFlight;
use super::StopKind;

/// A front-end's single-step: one instruction (`None`), or on while ip stays in `start..end`
/// (range stepping, gdb's `vCont;r`), reported when it leaves the range.
pub(crate) type Range = Option<(u64, u64)>;

/// True if `rip` is inside the step range `range`.
pub(crate) fn in_range(range: Range, rip: u64) -> bool {
    range.is_some_and(|(a, b)| rip >= a && rip < b)
}

/// What xol has a thread do when it runs.
#[derive(Debug)]
pub(super) enum Task {
    /// Run freely (`PTRACE_CONT`, or `PTRACE_SYSCALL` while syscalls are caught).
    Free,
    /// A front-end's single-step or range-step (`PTRACE_SINGLESTEP`).
    Step(Range),
    /// A displaced step in flight: the copy of a breakpoint's instruction runs from its slot
    /// (`PTRACE_SINGLESTEP` until it completes or is aborted).
    Displaced(InFlight),
}

/// Whether a thread is in a ptrace-stop xol has seen.
#[derive(Debug)]
pub(super) enum State {
    /// Resumed, and no stop seen since (or it was born running and its first stop is to come).
    Running,
    /// In a ptrace-stop. `pending`: an event of it not reported yet. It is reported only once
    /// the front-end resumes this thread (`Thread::resumed`): a stop of a thread the front-end
    /// did not resume is never reported (gdb's all-stop contract; gdb asserts on it).
    Stopped {
        /// The decoded event still to report.
        pending: Option<StopKind>,
    },
}

/// One traced thread.
#[derive(Debug)]
pub(super) struct Thread {
    state: State,
    task: Task,
    /// A PTRACE_INTERRUPT (or a new thread's initial stop) is still to arrive. Orthogonal to the
    /// state: the kernel may report another stop first, and the interrupt's stop comes later.
    pub expect_stop: bool,
    /// The front-end has resumed this thread since its process's last reported stop (whether or
    /// not it runs: a thread with a pending event is held stopped until that event is reported).
    pub resumed: bool,
    /// The last signal reported for this thread (delivered on detach if it is a passing signal).
    pub last_signal: i32,
    /// A signal a front-end asked to deliver while an event was pending.
    pub deferred_sig: i32,
    /// The breakpoint address whose hit was last reported for this thread. Only such a thread
    /// is stepped over the breakpoint on resume; a thread whose hit was cancelled while stopping
    /// the world sits at the same address and must hit it again.
    pub reported_bp: Option<u64>,
    /// The process's debug registers must be written into this thread before it runs.
    pub needs_dregs: bool,
    /// A new thread whose first stop has not been seen yet (reported as its creation with
    /// thread events on).
    pub born: bool,
    /// The front-end asked for this thread to stop (non-stop): its interrupt's stop is
    /// reported, not absorbed. Cleared when any stop of it is reported.
    pub stop_requested: bool,
    /// The next breakpoint trap of this thread at this address is the same hit again (its
    /// displaced step was rewound by a signal or an interrupt): do not count it twice.
    pub rehit: Option<u64>,
}

impl Thread {
    /// A thread in a ptrace-stop, with nothing pending and nothing to do.
    pub fn new_stopped() -> Thread {
        Thread {
            state: State::Stopped { pending: None },
            task: Task::Free,
            expect_stop: false,
            resumed: false,
            last_signal: 0,
            deferred_sig: 0,
            reported_bp: None,
            needs_dregs: true,
            stop_requested: false,
            born: false,
            rehit: None,
        }
    }

    /// A thread born running (a clone, a thread found at attach) whose first stop is to come.
    pub fn new_running() -> Thread {
        Thread { state: State::Running, expect_stop: true, ..Thread::new_stopped() }
    }

    /// True if the thread is in a ptrace-stop xol has seen.
    pub fn is_stopped(&self) -> bool {
        matches!(self.state, State::Stopped { .. })
    }

    /// The thread reported a ptrace-stop: it is stopped, its task kept (to resume it as it was
    /// going) and any pending event kept.
    pub fn stop(&mut self) {
        if let State::Running = self.state {
            self.state = State::Stopped { pending: None };
        }
    }

    /// The thread was resumed to do `task`. Anything pending was reported before (a thread with
    /// a pending event is never resumed).
    pub fn run(&mut self, task: Task) {
        if let State::Stopped { pending: Some(kind) } = self.state {
            log::debug!("a thread resumed with an event pending ({kind:?}): dropped");
        }
        self.state = State::Running;
        self.task = task;
    }

    /// The thread was resumed with the task it has (after an event handled inside the core).
    pub fn run_on(&mut self) {
        self.state = State::Running;
    }

    /// The thread is gone (killed under us): no stop of it will be seen, nothing is pending.
    pub fn vanish(&mut self) {
        self.state = State::Running;
        self.task = Task::Free;
        self.expect_stop = false;
    }

    /// Set the task without resuming (the caller resumes the thread itself).
    pub fn set_task(&mut self, task: Task) {
        self.task = task;
    }

    /// True if the thread runs with `PTRACE_SINGLESTEP` (a step or a displaced step).
    pub fn single_steps(&self) -> bool {
        !matches!(self.task, Task::Free)
    }

    /// True if a displaced step of this thread is in flight.
    pub fn is_displaced(&self) -> bool {
        matches!(self.task, Task::Displaced(_))
    }

    /// The front-end's step the thread was doing when it stopped, ending it (the thread runs
    /// freely next unless given a task again).
    pub fn take_step(&mut self) -> Option<Range> {
        match self.task {
            Task::Step(range) => {
                self.task = Task::Free;
                Some(range)
            }
            _ => None,
        }
    }

    /// The displaced step in flight, ending it.
    pub fn take_displaced(&mut self) -> Option<InFlight> {
        match std::mem::replace(&mut self.task, Task::Free) {
            Task::Displaced(fl) => Some(fl),
            other => {
                self.task = other;
                None
            }
        }
    }

    /// The event still to report, if the thread is stopped with one.
    pub fn pending(&self) -> Option<StopKind> {
        match self.state {
            State::Stopped { pending } => pending,
            State::Running => None,
        }
    }

    /// Keep `kind` to report once the front-end resumes this thread. Only a stopped thread can
    /// hold an event; for a running one (gone under us) it is dropped.
    pub fn set_pending(&mut self, kind: StopKind) {
        match &mut self.state {
            State::Stopped { pending } => *pending = Some(kind),
            State::Running => log::debug!("an event of a running thread dropped: {kind:?}"),
        }
    }

    /// Take the event still to report.
    pub fn take_pending(&mut self) -> Option<StopKind> {
        match &mut self.state {
            State::Stopped { pending } => pending.take(),
            State::Running => None,
        }
    }

    /// Forget the event still to report.
    pub fn clear_pending(&mut self) {
        self.take_pending();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_held_only_by_stopped_threads() {
        let mut t = Thread::new_running();
        assert!(!t.is_stopped() && t.expect_stop);
        t.set_pending(StopKind::Step);
        assert_eq!(t.pending(), None, "a running thread holds no event");
        t.stop();
        t.set_pending(StopKind::Signal(10));
        t.stop();
        assert_eq!(t.pending(), Some(StopKind::Signal(10)), "a second stop keeps the pending event");
        assert_eq!(t.take_pending(), Some(StopKind::Signal(10)));
        assert_eq!(t.pending(), None);
    }

    #[test]
    fn a_step_range_lives_as_long_as_its_step() {
        let mut t = Thread::new_stopped();
        t.run(Task::Step(Some((0x10, 0x20))));
        assert!(t.single_steps());
        t.stop();
        assert_eq!(t.take_step(), Some(Some((0x10, 0x20))));
        assert_eq!(t.take_step(), None, "taken once: the next task starts afresh");
        assert!(!t.single_steps());
        t.run(Task::Step(None));
        t.stop();
        assert_eq!(t.take_step(), Some(None));
    }

    #[test]
    fn resuming_as_it_was_going_keeps_the_task() {
        let mut t = Thread::new_stopped();
        t.run(Task::Step(None));
        t.stop();
        t.run_on();
        assert!(!t.is_stopped() && t.single_steps());
        t.vanish();
        assert!(!t.single_steps() && !t.expect_stop);
    }

    #[test]
    fn ranges() {
        assert!(in_range(Some((1, 3)), 2));
        assert!(!in_range(Some((1, 3)), 3));
        assert!(!in_range(None, 2));
    }
}
