//! Readiness: every configured condition under one deadline, failing fast when the container
//! exits, is OOM-killed or turns `unhealthy`. The image's own health command is also run through
//! exec every [`POLL`], so a ready service is seen without sitting out Docker's health interval.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bollard::models::{ContainerInspectResponse, HealthStatusEnum};
use futures_util::StreamExt;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use super::listening::{self, Diagnosis};
use super::sockets::{self, Snapshot, SocketReader};
use super::{CheckResult, Session};
use crate::error::{Error, Result};
use crate::http;

/// Time between two rounds of readiness checks.
pub const POLL: Duration = Duration::from_millis(100);
/// Log lines shown when the service does not become ready.
pub const LOG_TAIL: usize = 30;
/// How long the service must listen only on ports the manifest does not declare before that is
/// taken as its answer (a service may open an admin port before its main one).
const OTHER_PORT_GRACE: Duration = Duration::from_millis(500);

/// One thing that must hold before the tests start.
#[derive(Debug, Clone)]
pub enum ReadinessCondition {
    /// Docker health `healthy`, or the image's health command exiting 0 through exec.
    Health {
        /// Exec-form health command (`None`: only Docker's status counts).
        command: Option<Vec<String>>,
    },
    /// A container port accepting TCP connections.
    Tcp(u16),
    /// An HTTP request answered with a status.
    Http {
        /// Container port.
        port: u16,
        /// Path.
        path: String,
        /// Expected status.
        status: u16,
    },
    /// A log line matching a pattern.
    Log(regex::Regex),
}

impl ReadinessCondition {
    fn name(&self) -> String {
        match self {
            ReadinessCondition::Health { .. } => "ready: health".into(),
            ReadinessCondition::Tcp(p) => format!("ready: tcp {p}"),
            ReadinessCondition::Http { path, status, .. } => {
                format!("ready: http GET {path} -> {status}")
            }
            ReadinessCondition::Log(re) => format!("ready: log /{re}/"),
        }
    }

    /// The container port a TCP or HTTP condition probes.
    fn port(&self) -> Option<u16> {
        match self {
            ReadinessCondition::Tcp(port) | ReadinessCondition::Http { port, .. } => Some(*port),
            ReadinessCondition::Health { .. } | ReadinessCondition::Log(_) => None,
        }
    }
}

struct Pending {
    condition: ReadinessCondition,
    done: Option<Duration>,
    last: String,
    /// This round's probe was refused, reset, or accepted and closed at once: the sockets say why.
    refused: Option<Refusal>,
    /// What the container's sockets said about the last refused probe (`Err`: why they could
    /// not be read).
    diagnosis: Option<std::result::Result<String, String>>,
    /// Since when the service listens only on undeclared ports.
    other_port_since: Option<Instant>,
    /// Waiting cannot help: the cause, found while waiting.
    conclusive: bool,
    /// The service itself closed an earlier probe at once: a probe passes only when the
    /// connection stays open for [`HOLD_AFTER_CLOSE`], not just [`HOLD`].
    closed_by_service: bool,
}

/// How a probe's connection failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// Refused or reset by the peer.
    Refused,
    /// Accepted, then closed before anything was sent.
    ClosedAtOnce,
}

/// A failed probe: what to show, and how the connection failed when that is worth diagnosing.
struct ProbeFailure {
    message: String,
    refusal: Option<Refusal>,
}

/// Aborts the log follower when readiness is over.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Session<'_> {
    /// Waits until every condition holds; records one check per condition.
    pub(super) async fn wait_ready(&mut self, conditions: Vec<ReadinessCondition>) -> Result<bool> {
        let id = self.container_id().to_owned();
        let deadline = self.plan.config.test.ready.timeout;
        let started = Instant::now();
        let logs = Arc::new(Mutex::new(String::new()));
        let _follower = conditions
            .iter()
            .any(|c| matches!(c, ReadinessCondition::Log(_)))
            .then(|| {
                let mut stream = Box::pin(self.engine.follow_logs(&id));
                let logs = logs.clone();
                AbortOnDrop(tokio::spawn(async move {
                    while let Some(chunk) = stream.next().await {
                        if let Ok(mut l) = logs.lock() {
                            l.push_str(&chunk);
                        }
                    }
                }))
            });
        let mut pending: Vec<Pending> = conditions
            .into_iter()
            .map(|condition| Pending {
                condition,
                done: None,
                last: String::new(),
                refused: None,
                diagnosis: None,
                other_port_since: None,
                conclusive: false,
                closed_by_service: false,
            })
            .collect();
        let declared: Vec<u16> = self.ports.keys().copied().collect();
        let mut sockets = SocketReader::new();
        self.begin("readiness");
        loop {
            let round = Instant::now();
            let inspect = self.engine.inspect_container(&id).await?;
            if let Some(why) = stopped(&inspect) {
                return self
                    .not_ready(&pending, started, &inspect, format!("the container {why}"))
                    .await;
            }
            let health = inspect
                .state
                .as_ref()
                .and_then(|s| s.health.as_ref())
                .and_then(|h| h.status);
            if health == Some(HealthStatusEnum::UNHEALTHY) {
                return self
                    .not_ready(
                        &pending,
                        started,
                        &inspect,
                        "the container turned unhealthy".into(),
                    )
                    .await;
            }
            for p in pending.iter_mut().filter(|p| p.done.is_none()) {
                p.refused = None;
                let ok = match &p.condition {
                    ReadinessCondition::Health { command } => {
                        if health == Some(HealthStatusEnum::HEALTHY) {
                            true
                        } else if let Some(cmd) = command {
                            let run = self.engine.exec(&id, cmd, &[], None);
                            match tokio::time::timeout(Duration::from_secs(5), run).await {
                                Ok(Ok(out)) => {
                                    p.last = format!(
                                        "health command exited with {}{}",
                                        out.exit_code.map_or("no code".into(), |c| c.to_string()),
                                        tail_of(&format!("{}{}", out.stdout, out.stderr))
                                    );
                                    out.exit_code == Some(0)
                                }
                                Ok(Err(e)) => {
                                    p.last = e.to_string();
                                    false
                                }
                                Err(_) => {
                                    p.last = "health command did not finish within 5s".into();
                                    false
                                }
                            }
                        } else {
                            p.last = format!(
                                "Docker health is `{}`",
                                health.unwrap_or(HealthStatusEnum::EMPTY)
                            );
                            false
                        }
                    }
                    ReadinessCondition::Tcp(port) => match self.ports.get(port) {
                        Some(host) => match tcp_accepts(
                            &self.engine.published().host,
                            *host,
                            if p.closed_by_service {
                                HOLD_AFTER_CLOSE
                            } else {
                                HOLD
                            },
                        )
                        .await
                        {
                            Ok(()) => true,
                            Err(e) => {
                                p.last = e.message;
                                p.refused = e.refusal;
                                false
                            }
                        },
                        None => {
                            p.last = format!("port {port} is not published");
                            false
                        }
                    },
                    ReadinessCondition::Http { port, path, status } => {
                        let Some(host) = self.ports.get(port) else {
                            p.last = format!("port {port} is not published");
                            continue;
                        };
                        match http::request(
                            &self.engine.published().host,
                            *host,
                            "GET",
                            path,
                            None,
                            Duration::from_secs(2),
                        )
                        .await
                        {
                            Ok(r) if r.status == *status => true,
                            Ok(r) => {
                                p.last = format!(
                                    "answered {} (expected {status}){}",
                                    r.status,
                                    tail_of(&r.body)
                                );
                                false
                            }
                            Err(e) => {
                                p.refused = http_refusal(&e);
                                p.last = e;
                                false
                            }
                        }
                    }
                    ReadinessCondition::Log(re) => {
                        let text = logs.lock().map(|l| l.clone()).unwrap_or_default();
                        let hit = text.lines().any(|l| re.is_match(l));
                        if !hit {
                            p.last = "no log line matched yet".into();
                        }
                        hit
                    }
                };
                if p.refused.is_none() {
                    // Only a refused probe is diagnosed: an earlier diagnosis is stale now.
                    p.diagnosis = None;
                }
                if ok {
                    p.done = Some(started.elapsed());
                }
            }
            if pending.iter().all(|p| p.done.is_some()) {
                for p in &pending {
                    self.record(CheckResult::timed(
                        &p.condition.name(),
                        "ready",
                        started,
                        p.done.unwrap_or_default(),
                        true,
                        String::new(),
                    ));
                }
                self.end("readiness");
                return Ok(true);
            }
            if pending
                .iter()
                .any(|p| p.done.is_none() && p.refused.is_some())
            {
                // Read at once, not at the deadline: a loopback bind or another port is final.
                let snapshot = sockets.read(self.engine, &id, &inspect).await;
                let now = Instant::now();
                for p in pending.iter_mut().filter(|p| p.done.is_none()) {
                    let (Some(refusal), Some(port)) = (p.refused, p.condition.port()) else {
                        continue;
                    };
                    let snapshot = match &snapshot {
                        Ok(s) => s,
                        Err(why) => {
                            p.diagnosis = Some(Err(why.clone()));
                            continue;
                        }
                    };
                    let diagnosis = listening::diagnose(port, &declared, &snapshot.listeners);
                    p.other_port_since = match diagnosis {
                        Diagnosis::OtherPort(_) => Some(p.other_port_since.unwrap_or(now)),
                        _ => None,
                    };
                    p.closed_by_service |= refusal == Refusal::ClosedAtOnce
                        && matches!(diagnosis, Diagnosis::Reachable(_));
                    // Another port counts once it has lasted a moment; a loopback bind at once.
                    p.conclusive = diagnosis.is_conclusive()
                        && p.other_port_since
                            .is_none_or(|since| now - since >= OTHER_PORT_GRACE);
                    p.diagnosis = Some(Ok(describe(
                        &diagnosis,
                        port,
                        refusal,
                        snapshot,
                        &sockets::engine_state(&inspect),
                    )));
                }
                if let Some(p) = pending.iter().find(|p| p.conclusive) {
                    let why = format!(
                        "`{}` cannot succeed however long it waits (found after {} ms)",
                        p.condition.name(),
                        started.elapsed().as_millis()
                    );
                    return self.not_ready(&pending, started, &inspect, why).await;
                }
            }
            if started.elapsed() >= deadline {
                let inspect = self.engine.inspect_container(&id).await?;
                return self
                    .not_ready(
                        &pending,
                        started,
                        &inspect,
                        format!("not ready within {}", humantime::format_duration(deadline)),
                    )
                    .await;
            }
            tokio::time::sleep(POLL.saturating_sub(round.elapsed())).await;
        }
    }

    async fn not_ready(
        &mut self,
        pending: &[Pending],
        started: Instant,
        inspect: &ContainerInspectResponse,
        why: String,
    ) -> Result<bool> {
        let logs = self
            .engine
            .logs_tail(self.container_id(), LOG_TAIL)
            .await
            .unwrap_or_else(|e| format!("(cannot read the logs: {e})"));
        let log_hint = listening::loopback_in_log(&logs).map(|h| h.explain(&logs));
        let health_log: Vec<String> = inspect
            .state
            .as_ref()
            .and_then(|s| s.health.as_ref())
            .and_then(|h| h.log.clone())
            .unwrap_or_default()
            .into_iter()
            .rev()
            .take(3)
            .map(|r| {
                format!(
                    "exit {}: {}",
                    r.exit_code.unwrap_or(-1),
                    r.output.unwrap_or_default().trim()
                )
            })
            .collect();
        for p in pending {
            let passed = p.done.is_some();
            let mut output = String::new();
            if !passed {
                output = why.clone();
                if !p.last.is_empty() {
                    output.push_str(&format!("\nlast check: {}", p.last));
                }
                match &p.diagnosis {
                    Some(Ok(diagnosis)) => output.push_str(&format!("\n{diagnosis}")),
                    // A container that stopped has no sockets to read: that is no news.
                    Some(Err(why)) if stopped(inspect).is_none() => {
                        output.push_str(&format!("\n{why}"));
                    }
                    _ => {}
                }
                if let Some(hint) = log_hint.as_ref().filter(|_| !p.conclusive) {
                    output.push_str(&format!("\n{hint}"));
                }
                if matches!(p.condition, ReadinessCondition::Health { .. })
                    && !health_log.is_empty()
                {
                    output.push_str(&format!(
                        "\nDocker health checks (newest first):\n{}",
                        health_log.join("\n")
                    ));
                }
                output.push_str(&format!(
                    "\nlast {LOG_TAIL} log lines of the container:\n{}",
                    if logs.trim().is_empty() {
                        "(no output)"
                    } else {
                        logs.trim_end()
                    }
                ));
            }
            self.record(CheckResult::timed(
                &p.condition.name(),
                "ready",
                started,
                p.done.unwrap_or(started.elapsed()),
                passed,
                output,
            ));
        }
        self.end("readiness");
        Ok(false)
    }
}

/// Why the container is no longer running, if it is not.
pub(super) fn stopped(inspect: &ContainerInspectResponse) -> Option<String> {
    let state = inspect.state.as_ref()?;
    if state.running == Some(true) {
        return None;
    }
    let code = state.exit_code.unwrap_or(-1);
    let mut why = format!("exited with code {code}");
    if state.oom_killed == Some(true) {
        why.push_str(" (killed: out of memory)");
    }
    if let Some(e) = state.error.as_deref().filter(|e| !e.is_empty()) {
        why.push_str(&format!(": {e}"));
    }
    Some(why)
}

/// How long a TCP probe's connection must stay open (or send data) to count.
const HOLD: Duration = Duration::from_millis(50);
/// The same once the service itself was seen closing probes at once: Docker's proxy passes that
/// close on only after its own round trip, which a loaded machine can make longer than [`HOLD`].
const HOLD_AFTER_CLOSE: Duration = Duration::from_millis(500);

/// Whether something listens behind a published port. Docker's userland proxy accepts every
/// connection and closes it at once when nothing listens in the container, so a connection that
/// stays open for `hold` (or sends data) is the proof, and an immediate end of stream is not (who
/// closed it is for the container's sockets to say).
async fn tcp_accepts(
    host: &str,
    host_port: u16,
    hold: Duration,
) -> std::result::Result<(), ProbeFailure> {
    let refusal = |e: &std::io::Error| {
        use std::io::ErrorKind as K;
        matches!(
            e.kind(),
            K::ConnectionRefused | K::ConnectionReset | K::ConnectionAborted
        )
        .then_some(Refusal::Refused)
    };
    let mut stream = TcpStream::connect((host, host_port))
        .await
        .map_err(|e| ProbeFailure {
            message: format!("cannot connect to {host}:{host_port}: {e}"),
            refusal: refusal(&e),
        })?;
    let mut buf = [0u8; 1];
    match tokio::time::timeout(hold, stream.read(&mut buf)).await {
        Ok(Ok(0)) => Err(ProbeFailure {
            message: format!("{host}:{host_port}: the connection was accepted then closed at once"),
            refusal: Some(Refusal::ClosedAtOnce),
        }),
        Ok(Ok(_)) | Err(_) => Ok(()),
        Ok(Err(e)) => Err(ProbeFailure {
            message: format!("{host}:{host_port}: connection error: {e}"),
            refusal: refusal(&e),
        }),
    }
}

/// How an HTTP probe's connection failed, from the client's message, when it was refused, reset
/// or closed before any response.
fn http_refusal(message: &str) -> Option<Refusal> {
    let lower = message.to_ascii_lowercase();
    if lower.contains("closed without a response") {
        Some(Refusal::ClosedAtOnce)
    } else if lower.contains("refused")
        || lower.contains("reset by peer")
        || lower.contains("broken pipe")
        || lower.contains("connection aborted")
    {
        Some(Refusal::Refused)
    } else {
        None
    }
}

/// The diagnosis of a refused probe of `port`, with who closed the connection and, when nothing
/// listens, the state of the service's process.
fn describe(
    diagnosis: &Diagnosis,
    port: u16,
    refusal: Refusal,
    snapshot: &Snapshot,
    engine_state: &str,
) -> String {
    let mut text = match (diagnosis, refusal) {
        (Diagnosis::Reachable(l), Refusal::ClosedAtOnce) => format!(
            "the connection was accepted then closed at once by the service itself: it listens \
             on {l}, so Docker's proxy reached it; a readiness probe needs the service to keep \
             a connection open (or to answer on it)"
        ),
        (Diagnosis::Reachable(l), Refusal::Refused) => {
            format!("the service listens on {l} now")
        }
        (Diagnosis::NotListening(_), _) => {
            let mut text = listening::explain(diagnosis, port);
            if refusal == Refusal::ClosedAtOnce {
                text.push_str(
                    " (the connection was accepted by Docker's port proxy, which found nothing \
                     behind it and closed it)",
                );
            }
            let process = match &snapshot.process {
                Some(p) => format!("its main process {p}"),
                None => engine_state.to_owned(),
            };
            text.push_str(&format!("; {process}"));
            text
        }
        _ => listening::explain(diagnosis, port),
    };
    let listeners = if snapshot.listeners.is_empty() {
        "none".to_owned()
    } else {
        snapshot
            .listeners
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    text.push_str(&format!(
        "\nlistening sockets ({}): {listeners}",
        snapshot.source
    ));
    text
}

fn tail_of(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let lines: Vec<&str> = text.lines().collect();
    let start = lines.len().saturating_sub(5);
    format!(": {}", lines[start..].join("\n"))
}

/// An error for a health condition the image cannot satisfy.
pub fn no_healthcheck() -> Error {
    Error::TestConfig {
        message: "readiness waits for Docker health `healthy`, but the image has no HEALTHCHECK"
            .into(),
        help: Some(
            "add a `[package.metadata.docker.healthcheck]` section, or set `test.ready.health = false`"
                .into(),
        ),
    }
}
