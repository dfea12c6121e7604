//! Reads a test container's listening sockets, for [`super::listening`] to diagnose.
//!
//! With a local engine the container's main process is a process of this host: its
//! `/proc/<State.Pid>/net/tcp` and `tcp6` are the container's network namespace's tables, read
//! without touching the container. The pid is trusted only when `/proc/<pid>/cgroup` names the
//! container's ID: an engine on another host, in a VM or in another PID namespace reports a pid
//! that means nothing (or something else) here. Otherwise the tables are read inside the
//! container through the engine (`cat /proc/net/tcp /proc/net/tcp6` by exec), which needs a `cat`
//! (or busybox) in the image; when neither works the reader says why instead of guessing.

use std::fmt;
use std::time::{Duration, Instant};

use bollard::models::ContainerInspectResponse;

use super::exec::is_missing_program;
use super::listening::{Listener, ProcessState, parse_stat, parse_tcp_table};
use crate::engine::Engine;

/// How long one exec that reads the tables may take.
const EXEC_TIMEOUT: Duration = Duration::from_secs(3);
/// Reads through exec start a process in the container each time: at most this often.
const EXEC_INTERVAL: Duration = Duration::from_millis(500);
/// The programs tried, in order, to print the tables inside the container.
const READERS: [&[&str]; 3] = [&["cat"], &["busybox", "cat"], &["/bin/busybox", "cat"]];

/// Where the tables were read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `/proc/<pid>/net/tcp{,6}` of the container's main process, on this host.
    Host {
        /// The pid on this host.
        pid: u32,
    },
    /// Printed inside the container by `program…`.
    Exec {
        /// The command that printed them.
        program: String,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Host { pid } => write!(f, "/proc/{pid}/net/tcp and tcp6 on this host"),
            Source::Exec { program } => {
                write!(
                    f,
                    "`{program} /proc/net/tcp /proc/net/tcp6` in the container"
                )
            }
        }
    }
}

/// The container's listening sockets at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Every listening TCP socket of the container's network namespace.
    pub listeners: Vec<Listener>,
    /// Where they were read.
    pub source: Source,
    /// The main process, when it could be read on this host.
    pub process: Option<ProcessState>,
}

/// Reads one container's sockets, remembering which way works (and, when none does, why).
#[derive(Debug, Default)]
pub struct SocketReader {
    /// The exec command that printed the tables, once one did.
    exec: Option<&'static [&'static str]>,
    /// The container's process was read on this host once: its `/proc` is the container's.
    on_host: bool,
    /// Why this host's `/proc` did not serve, the last time it was tried.
    not_on_host: Option<String>,
    /// Why the sockets cannot be read at all: set once, then returned every time.
    unavailable: Option<String>,
    /// The last snapshot read through exec, and when.
    last_exec: Option<(Instant, Snapshot)>,
}

impl SocketReader {
    /// A reader for one container; nothing is read until [`SocketReader::read`].
    pub fn new() -> Self {
        Self::default()
    }

    /// The container's listening sockets now (through exec: at most [`EXEC_INTERVAL`] old).
    /// `Err` says, in words, why they cannot be read.
    pub async fn read(
        &mut self,
        engine: &Engine,
        id: &str,
        inspect: &ContainerInspectResponse,
    ) -> Result<Snapshot, String> {
        if let Some(why) = &self.unavailable {
            return Err(why.clone());
        }
        let pid = inspect
            .state
            .as_ref()
            .and_then(|s| s.pid)
            .filter(|p| *p > 0)
            .and_then(|p| u32::try_from(p).ok());
        let Some(pid) = pid else {
            return Err("the engine reports no process for the container".into());
        };
        // Tried every time (it costs a few file reads): a process that just exited is no reason
        // to give this host up.
        match read_host(pid, inspect.id.as_deref().unwrap_or(id)) {
            Ok(snapshot) => {
                self.on_host = true;
                return Ok(snapshot);
            }
            Err(why) if self.on_host => return Err(why),
            Err(why) => self.not_on_host = Some(why),
        }
        if let Some((at, snapshot)) = &self.last_exec
            && at.elapsed() < EXEC_INTERVAL
        {
            return Ok(snapshot.clone());
        }
        let candidates: Vec<&'static [&'static str]> = match self.exec {
            Some(program) => vec![program],
            None => READERS.to_vec(),
        };
        for program in candidates {
            let mut cmd: Vec<String> = program.iter().map(|s| (*s).to_owned()).collect();
            cmd.extend(["/proc/net/tcp".to_owned(), "/proc/net/tcp6".to_owned()]);
            let out =
                match tokio::time::timeout(EXEC_TIMEOUT, engine.exec(id, &cmd, &[], None)).await {
                    Ok(Ok(out)) => out,
                    Ok(Err(crate::error::Error::Step { message, .. })) => {
                        return Err(format!("cannot read the container's sockets: {message}"));
                    }
                    Ok(Err(e)) => return Err(format!("cannot read the container's sockets: {e}")),
                    Err(_) => {
                        return Err(format!(
                            "cannot read the container's sockets: `{}` did not finish within {}s",
                            cmd.join(" "),
                            EXEC_TIMEOUT.as_secs()
                        ));
                    }
                };
            if is_missing_program(&out) {
                continue;
            }
            // A kernel without IPv6 has no tcp6: cat fails on it but prints the v4 table.
            return match parse_tcp_table(&out.stdout) {
                Ok(listeners) => {
                    self.exec = Some(program);
                    let snapshot = Snapshot {
                        listeners,
                        source: Source::Exec {
                            program: program.join(" "),
                        },
                        process: None,
                    };
                    self.last_exec = Some((Instant::now(), snapshot.clone()));
                    Ok(snapshot)
                }
                Err(e) => {
                    let why = format!(
                        "cannot read the container's sockets: `{}` printed no socket table ({e}; \
                         stderr: {})",
                        cmd.join(" "),
                        out.stderr.trim()
                    );
                    self.unavailable = Some(why.clone());
                    Err(why)
                }
            };
        }
        let why = format!(
            "cannot read the container's sockets: {}, and the image has no `cat` (nor busybox) \
             to print /proc/net/tcp through the engine",
            self.not_on_host.as_deref().unwrap_or("not on this host")
        );
        self.unavailable = Some(why.clone());
        Err(why)
    }
}

/// Reads the tables of `pid` on this host, if `pid` is a process of container `id` here.
fn read_host(pid: u32, id: &str) -> Result<Snapshot, String> {
    let proc = format!("/proc/{pid}");
    let cgroup = std::fs::read_to_string(format!("{proc}/cgroup")).map_err(|e| {
        format!("the container's process {pid} is not readable on this host ({proc}/cgroup: {e}); the engine runs elsewhere or in another PID namespace")
    })?;
    if id.len() < 12 || !cgroup.contains(id) {
        return Err(format!(
            "process {pid} on this host is not the container's ({proc}/cgroup does not name it): \
             the engine runs elsewhere or in another PID namespace"
        ));
    }
    let tcp = std::fs::read_to_string(format!("{proc}/net/tcp"))
        .map_err(|e| format!("cannot read {proc}/net/tcp: {e}"))?;
    // Absent when the kernel has no IPv6.
    let tcp6 = std::fs::read_to_string(format!("{proc}/net/tcp6")).unwrap_or_default();
    let listeners = parse_tcp_table(&format!("{tcp}{tcp6}"))
        .map_err(|e| format!("cannot read {proc}/net/tcp: {e}"))?;
    let process = std::fs::read_to_string(format!("{proc}/stat"))
        .ok()
        .and_then(|stat| parse_stat(&stat, clock_ticks()));
    Ok(Snapshot {
        listeners,
        source: Source::Host { pid },
        process,
    })
}

/// The kernel's clock tick, the unit of CPU times in `/proc/<pid>/stat`.
fn clock_ticks() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|t| *t > 0).unwrap_or(100)
}

/// The container's state as the engine reports it: `running since 2024-01-02T03:04:05Z, pid 4046
/// on the engine's host`, for when its process cannot be read on this host.
pub fn engine_state(inspect: &ContainerInspectResponse) -> String {
    let Some(state) = inspect.state.as_ref() else {
        return "the engine reports no state".into();
    };
    let status = state
        .status
        .map(|s| s.to_string())
        .unwrap_or_else(|| "in an unknown state".into());
    let mut text = format!("the container is {status}");
    if let Some(started) = state
        .started_at
        .as_deref()
        .filter(|s| !s.starts_with("0001"))
    {
        text.push_str(&format!(" since {started}"));
    }
    if let Some(pid) = state.pid.filter(|p| *p > 0) {
        text.push_str(&format!(", its process is pid {pid} on the engine's host"));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerState, ContainerStateStatusEnum};

    #[test]
    fn this_process_is_no_container() {
        // This test's own pid is a process of this host but of no container with that ID.
        let e = read_host(std::process::id(), &"a".repeat(64)).unwrap_err();
        assert!(e.contains("is not the container's"), "{e}");
        let e = read_host(u32::MAX - 1, &"a".repeat(64)).unwrap_err();
        assert!(e.contains("not readable on this host"), "{e}");
    }

    #[test]
    fn the_engine_state_names_status_start_and_pid() {
        let inspect = ContainerInspectResponse {
            state: Some(ContainerState {
                status: Some(ContainerStateStatusEnum::RUNNING),
                started_at: Some("2024-01-02T03:04:05Z".into()),
                pid: Some(4046),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            engine_state(&inspect),
            "the container is running since 2024-01-02T03:04:05Z, its process is pid 4046 on the engine's host"
        );
    }
}
