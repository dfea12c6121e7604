//! Interruption: SIGINT, SIGTERM and SIGHUP (Ctrl-C, a cancelled CI job, `timeout`, `docker
//! stop`, a closed terminal) all take one path.
//!
//! The first signal is turned into a value the pipeline waits on ([`Interrupt::wait`]): the build
//! future is dropped (the engine cancels a build whose connection closes), the test stage removes
//! its container, nothing is tagged, and the process exits with `128 + signal`
//! ([`exit_code`]). A second signal exits at once, after killing the child process groups.
//!
//! Child processes (cargo, host checks) run in process groups of their own ([`ProcessGroup`]):
//! a terminal's Ctrl-C then reaches only this tool, which stops the whole group — grandchildren
//! such as rustc, build scripts or a host check's background jobs included — instead of
//! orphaning them.

use std::collections::BTreeSet;
use std::sync::Mutex;

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{Error, Result};

use crate::signal::record;
pub use crate::signal::{Signal, exit_code, received, signal_name};

/// Process groups of the children running now (their leaders' PIDs).
static GROUPS: Mutex<BTreeSet<i32>> = Mutex::new(BTreeSet::new());

/// A listener for the interrupting signals; clones share it. Dropping the last clone stops
/// listening (the signals keep being caught, so the process is not killed by them).
#[derive(Debug, Clone)]
pub struct Interrupt {
    signal: watch::Receiver<Option<Signal>>,
    _listener: std::sync::Arc<Listener>,
}

#[derive(Debug)]
struct Listener(tokio::task::JoinHandle<()>);

impl Drop for Listener {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Interrupt {
    /// Starts listening for SIGINT, SIGTERM and SIGHUP on the current tokio runtime.
    ///
    /// The first signal wakes every [`wait`](Self::wait); a second one kills the child process
    /// groups and exits the process at once with `128 + signal`.
    pub fn listen() -> Result<Interrupt> {
        let mut streams = Vec::new();
        for s in Signal::ALL {
            let stream = signal(SignalKind::from_raw(s.number()))
                .map_err(|e| Error::io(format!("cannot listen for {}", s.name()), e))?;
            streams.push((s, stream));
        }
        let (tx, rx) = watch::channel(received());
        let task = tokio::spawn(async move {
            let mut first = true;
            loop {
                let next =
                    futures_util::future::select_all(streams.iter_mut().map(|(s, stream)| {
                        Box::pin(async move { stream.recv().await.map(|_| *s) })
                    }))
                    .await
                    .0;
                let Some(signal) = next else { return };
                if first {
                    first = false;
                    record(signal);
                    let _ = tx.send(Some(signal));
                } else {
                    kill_all_groups();
                    std::process::exit(128 + signal.number());
                }
            }
        });
        Ok(Interrupt {
            signal: rx,
            _listener: std::sync::Arc::new(Listener(task)),
        })
    }

    /// The signal received so far, if any.
    pub fn received(&self) -> Option<Signal> {
        *self.signal.borrow()
    }

    /// Waits for the first signal (returns at once if it already came).
    pub async fn wait(&mut self) -> Signal {
        let got = self.signal.wait_for(Option::is_some).await.map(|s| *s);
        match got {
            Ok(s) => s.expect("waited for Some"),
            // The listener is gone only when the runtime shuts down: never wake.
            Err(_) => std::future::pending().await,
        }
    }
}

/// A child process leading a process group of its own; the whole group is killed when this is
/// dropped (a cancelled step, a deadline, an interruption) and on a second signal.
///
/// Spawn the child with `process_group(0)` and wrap it right away.
#[derive(Debug)]
pub struct ProcessGroup {
    leader: Option<i32>,
}

impl ProcessGroup {
    /// Owns the process group led by the child `pid` (`None`: the child is already gone).
    pub fn new(pid: Option<u32>) -> ProcessGroup {
        let leader = pid.and_then(|p| i32::try_from(p).ok()).filter(|p| *p > 0);
        if let Some(p) = leader {
            GROUPS.lock().unwrap_or_else(|e| e.into_inner()).insert(p);
        }
        ProcessGroup { leader }
    }
}

impl Drop for ProcessGroup {
    fn drop(&mut self) {
        if let Some(p) = self.leader.take() {
            GROUPS.lock().unwrap_or_else(|e| e.into_inner()).remove(&p);
            kill_group(p);
        }
    }
}

/// Kills every member of the group `leader` leads (an empty group is no error).
fn kill_group(leader: i32) {
    // SAFETY: killpg only sends a signal; a group with no members left answers ESRCH.
    unsafe {
        libc::killpg(leader, libc::SIGKILL);
    }
}

fn kill_all_groups() {
    let groups = std::mem::take(&mut *GROUPS.lock().unwrap_or_else(|e| e.into_inner()));
    for leader in groups {
        kill_group(leader);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_have_their_numbers_and_names() {
        assert_eq!(Signal::Interrupt.number(), 2);
        assert_eq!(Signal::Terminate.number(), 15);
        assert_eq!(Signal::Hangup.number(), 1);
        assert_eq!(Signal::from_number(15), Some(Signal::Terminate));
        assert_eq!(Signal::Hangup.name(), "SIGHUP");
    }

    #[tokio::test]
    async fn dropping_a_group_kills_its_background_jobs() {
        let mut cmd = tokio::process::Command::new("sh");
        cmd.args(["-c", "sleep 60 & echo $!; wait"])
            .stdout(std::process::Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap();
        let group = ProcessGroup::new(child.id());
        use tokio::io::AsyncBufReadExt;
        let mut lines = tokio::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let sleeper: i32 = lines.next_line().await.unwrap().unwrap().parse().unwrap();
        let alive = |pid: i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
        };
        assert!(alive(sleeper));
        drop(group);
        let _ = child.wait().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while alive(sleeper) {
            assert!(
                std::time::Instant::now() < deadline,
                "the background job survived"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}
