//! The interrupting signals and the first one this process received: what an interrupted run
//! is called in messages and which exit code it ends with. [`crate::interrupt`] listens for them.

use std::sync::atomic::{AtomicI32, Ordering};

/// A signal that interrupts a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT: Ctrl-C.
    Interrupt,
    /// SIGTERM: a cancelled CI job, `timeout`, `docker stop`, Kubernetes.
    Terminate,
    /// SIGHUP: the terminal went away.
    Hangup,
}

impl Signal {
    /// Every signal that interrupts a run.
    pub const ALL: [Signal; 3] = [Signal::Interrupt, Signal::Terminate, Signal::Hangup];

    /// The signal's number.
    pub fn number(self) -> i32 {
        match self {
            Signal::Interrupt => libc::SIGINT,
            Signal::Terminate => libc::SIGTERM,
            Signal::Hangup => libc::SIGHUP,
        }
    }

    /// `SIGINT`, `SIGTERM`, `SIGHUP`.
    pub fn name(self) -> &'static str {
        match self {
            Signal::Interrupt => "SIGINT",
            Signal::Terminate => "SIGTERM",
            Signal::Hangup => "SIGHUP",
        }
    }

    pub(crate) fn from_number(n: i32) -> Option<Signal> {
        Signal::ALL.into_iter().find(|s| s.number() == n)
    }
}

/// The first interrupting signal this process received (0: none).
static RECEIVED: AtomicI32 = AtomicI32::new(0);

/// The first interrupting signal this process received, if any.
pub fn received() -> Option<Signal> {
    Signal::from_number(RECEIVED.load(Ordering::SeqCst))
}

/// The exit code of an interrupted run: `128 + signal` (130 when no signal was seen, e.g. an
/// interruption reported by a library call).
pub fn exit_code() -> i32 {
    128 + received().map_or(libc::SIGINT, Signal::number)
}

/// What an interruption is called in messages: `SIGTERM`.
pub fn signal_name() -> &'static str {
    received().map_or("SIGINT", Signal::name)
}

/// Records `signal` as received (the first one wins), e.g. for a run stopped by a parent.
pub(crate) fn record(signal: Signal) {
    let _ = RECEIVED.compare_exchange(0, signal.number(), Ordering::SeqCst, Ordering::SeqCst);
}
