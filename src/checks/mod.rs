//! The test stage: "test what you ship". Runs against the exact image just built (by ID), before any
//! release tag exists:
//!
//! ```text
//! smoke test (assembled images) and structure (no container) -> run -> ready
//!     -> exec, cargo, host, http (concurrently) -> shutdown -> remove
//! ```
//!
//! An image the tool assembled itself had no builder run its smoke test: that is the stage's
//! first check, beside the structure checks (both only read the image), and the service's
//! container starts beside them (a failure removes it unprobed). The tests after readiness
//! do not depend on each other and run concurrently; their results keep the manifest's order.
//!
//! A readiness probe that is refused or reset is diagnosed from the container's listening sockets
//! (`sockets` reads them, `listening` says what they mean): a service bound to loopback or to
//! another port fails at once, with the address and the fix.
//!
//! The whole stage has one deadline (`test.timeout`); the container is removed on success,
//! failure, timeout and Ctrl-C (kept on failure with `--keep-on-failure`). Every check's result and
//! duration goes to the [`Shell`], the [`TestReport`] and, when asked, a JUnit file ([`junit`]).

mod exec;
pub mod forward;
pub mod junit;
mod listening;
mod ready;
mod smoke;
mod sockets;
mod structure;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use camino::Utf8PathBuf;
use futures_util::future::try_join_all;
use serde::Serialize;

use crate::engine::Engine;
pub use crate::engine::container::CONTAINER_LABEL;
use crate::engine::container::{ContainerSpec, OWNER_LABEL, owner_id};
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, LABEL_PACKAGE};
use crate::ui::{Shell, Verbosity, short_id};
pub use ready::ReadinessCondition;

/// A started service container's published ports (and, for an ssh engine, their forwards).
struct Launched {
    ports: BTreeMap<u16, u16>,
    forwards: Option<crate::checks::forward::PortForwards>,
}

/// The outcome of one check.
#[derive(Debug, Clone, Serialize)]
pub struct CheckResult {
    /// Name shown to people and in JUnit, e.g. `ready: http GET /healthz`.
    pub name: String,
    /// `structure`, `ready`, `exec`, `cargo`, `host`, `http`, `shutdown`.
    pub kind: String,
    /// Whether it passed.
    pub passed: bool,
    /// When it started, in milliseconds since the test stage started (checks may overlap).
    pub started_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
    /// Output worth showing (on failure especially).
    pub output: String,
    /// When it started; made `started_ms` when the stage records it.
    #[serde(skip)]
    pub(crate) started: Option<Instant>,
}

impl CheckResult {
    fn new(name: &str, kind: &str, started: Instant, passed: bool, output: String) -> Self {
        Self::timed(name, kind, started, started.elapsed(), passed, output)
    }

    /// A check that started at `started` and took `duration`.
    fn timed(
        name: &str,
        kind: &str,
        started: Instant,
        duration: Duration,
        passed: bool,
        output: String,
    ) -> Self {
        CheckResult {
            name: name.to_owned(),
            kind: kind.to_owned(),
            passed,
            started_ms: 0,
            duration_ms: duration.as_millis() as u64,
            output,
            started: Some(started),
        }
    }

    fn failed(name: &str, kind: &str, started: Instant, output: String) -> Self {
        Self::new(name, kind, started, false, output)
    }
}

/// Everything the test stage did for one image.
#[derive(Debug, Clone, Default, Serialize)]
pub struct TestReport {
    /// Checks in the order they ran.
    pub checks: Vec<CheckResult>,
    /// The tested image ID.
    pub image_id: String,
    /// Time the whole stage took.
    pub duration_ms: u64,
    /// The container kept for inspection (`--keep-on-failure`), if any.
    pub kept_container: Option<String>,
}

impl TestReport {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }
}

/// How the test stage behaves beyond the manifest.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// Keep a failed container for inspection instead of removing it.
    pub keep_on_failure: bool,
    /// Write a JUnit XML report here.
    pub junit: Option<Utf8PathBuf>,
    /// The run's signal listener; without one the stage listens for SIGINT, SIGTERM and SIGHUP
    /// itself.
    pub interrupt: Option<crate::interrupt::Interrupt>,
    /// The `cargo` checks' test executables, when the build compiled them with the service;
    /// otherwise the stage compiles them.
    pub compiled_tests: Option<Vec<Utf8PathBuf>>,
}

/// Runs the test stage for `plan` against the image `image_id`.
///
/// Any failing check is `Error::Step { step: "test", .. }` naming it with its output; a check
/// that cannot work as configured (e.g. an exec program missing from the image) is
/// `Error::TestConfig`; SIGINT, SIGTERM or SIGHUP is `Error::Interrupted`. The container is gone in every case,
/// except a failed one with `keep_on_failure`.
pub async fn run(
    engine: &Engine,
    plan: &ImagePlan,
    image_id: &str,
    options: &TestOptions,
    shell: &Shell,
) -> Result<TestReport> {
    let (report, result) = run_with_report(engine, plan, image_id, options, shell).await;
    result.map(|()| report)
}

/// [`run`], also returning the report when the stage fails (for the release's JSON report).
pub async fn run_with_report(
    engine: &Engine,
    plan: &ImagePlan,
    image_id: &str,
    options: &TestOptions,
    shell: &Shell,
) -> (TestReport, Result<()>) {
    let started = Instant::now();
    let timeout = plan.config.test.timeout;
    let mut session = Session {
        started,
        engine,
        plan,
        image_id,
        shell,
        report: TestReport {
            image_id: image_id.to_owned(),
            ..Default::default()
        },
        container: None,
        container_name: container_name(plan),
        ports: BTreeMap::new(),
        forwards: None,
        running: Mutex::new(Vec::new()),
        concurrent: Mutex::new(Vec::new()),
        smoke_container: Mutex::new(None),
        launching: Mutex::new(None),
        keep_on_failure: options.keep_on_failure,
        compiled_tests: options.compiled_tests.clone(),
    };
    shell.status(
        "Testing",
        format!("{} {} ({})", plan.package, plan.version, short_id(image_id)),
    );
    let interrupt = match options.interrupt.clone() {
        Some(i) => Ok(i),
        None => crate::interrupt::Interrupt::listen(),
    };
    let outcome = match interrupt {
        Ok(mut interrupt) => tokio::select! {
            r = session.run_all(timeout) => r,
            _ = interrupt.wait() => Err(Outcome::Interrupted),
            e = engine.stops_answering("test") => Err(Outcome::Error(e)),
        },
        Err(e) => Err(Outcome::Error(e)),
    };
    let result = session.finish(outcome, options, started).await;
    (std::mem::take(&mut session.report), result)
}

/// Removes test containers left behind by runs that no longer exist (killed processes, kept
/// failures). A container of a live process on this host is left alone, and so is one that another
/// host (sharing a remote engine) created in the last [`FOREIGN_GRACE`]. Returns how many it removed.
pub async fn remove_leftovers(engine: &Engine) -> Result<usize> {
    let me = owner_id();
    let host = me.rsplit_once(':').map(|(h, _)| h).unwrap_or_default();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let mut removed = 0;
    for container in engine.containers_with_label(CONTAINER_LABEL).await? {
        let owner = container.labels.get(OWNER_LABEL).map(String::as_str);
        let (owner_host, pid) = owner.and_then(|o| o.rsplit_once(':')).unwrap_or(("", ""));
        let in_use = if owner_host == host {
            !pid.is_empty() && std::path::Path::new(&format!("/proc/{pid}")).exists()
        } else {
            now - container.created < FOREIGN_GRACE.as_secs() as i64
        };
        if !in_use {
            engine.remove_container(&container.id).await?;
            removed += 1;
        }
    }
    Ok(removed)
}

/// How long removing the test container (or reading its last logs) may take when the stage ends.
const REMOVE_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a test container made by another host is presumed in use.
pub const FOREIGN_GRACE: Duration = Duration::from_secs(3600);

/// Why the checks stopped early.
enum Outcome {
    /// The stage deadline passed.
    Timeout,
    /// Ctrl-C.
    Interrupted,
    /// An error that is not a failed check.
    Error(Error),
}

impl From<Error> for Outcome {
    fn from(e: Error) -> Self {
        Outcome::Error(e)
    }
}

/// One run of the test stage.
struct Session<'a> {
    /// When the stage started: the origin of every check's `started_ms`.
    started: Instant,
    engine: &'a Engine,
    plan: &'a ImagePlan,
    image_id: &'a str,
    shell: &'a Shell,
    report: TestReport,
    container: Option<ContainerGuard>,
    container_name: String,
    /// Container port -> published loopback port.
    ports: BTreeMap<u16, u16>,
    /// The ports forwarded from an ssh engine's host, while the container runs.
    forwards: Option<crate::checks::forward::PortForwards>,
    /// The checks running now, named when the deadline or Ctrl-C interrupts them.
    running: Mutex<Vec<String>>,
    /// Results of the checks that run concurrently, in the manifest's order (`None`: not done).
    concurrent: Mutex<Vec<Option<CheckResult>>>,
    /// The smoke test's one-off container while it exists.
    smoke_container: Mutex<Option<ContainerGuard>>,
    /// The service's container from its creation until the stage adopts it as `container`
    /// (it may start beside the smoke test, and the deadline may cut the start short).
    launching: Mutex<Option<ContainerGuard>>,
    /// `--keep-on-failure`.
    keep_on_failure: bool,
    /// [`TestOptions::compiled_tests`].
    compiled_tests: Option<Vec<Utf8PathBuf>>,
}

impl Session<'_> {
    /// Prepares, then runs the checks under the stage deadline `timeout`.
    async fn run_all(&mut self, timeout: Duration) -> std::result::Result<(), Outcome> {
        let image = self.engine.inspect_image_by_id(self.image_id).await?;
        let health_test = structure::healthcheck_test(&image);
        let conditions = self.conditions(health_test.as_deref())?;
        // Compile before the deadline starts and before any container exists: a cold build of the
        // tests says nothing about the image, and the container should not wait for the compiler.
        let binaries = match self.compiled_tests.take() {
            Some(binaries) => binaries,
            None => {
                self.compile_cargo_tests(&self.plan.config.test.cargo)
                    .await?
            }
        };
        match tokio::time::timeout(timeout, self.checks(&image, conditions, &binaries)).await {
            Ok(r) => r,
            Err(_) => Err(Outcome::Timeout),
        }
    }

    /// Structure, start, readiness, the tests and the shutdown, in that order.
    async fn checks(
        &mut self,
        image: &bollard::models::ImageInspect,
        conditions: Vec<ReadinessCondition>,
        binaries: &[Utf8PathBuf],
    ) -> std::result::Result<(), Outcome> {
        let test = self.plan.config.test.clone();
        // The smoke test needs its own container anyway: the service's starts beside it (and is
        // removed, never probed, when it fails). Otherwise a failed structure check starts none.
        let results = if self.smoke_command(image).is_some() {
            let this = &*self;
            let (results, launched) = tokio::join!(this.image_checks(image), this.launch(image));
            self.adopt(launched)?;
            results?
        } else {
            let results = self.image_checks(image).await?;
            if results.iter().all(|r| r.passed) {
                let launched = self.launch(image).await;
                self.adopt(launched)?;
            }
            results
        };
        let passed = results.iter().all(|r| r.passed);
        for r in results {
            self.record(r);
        }
        if !passed {
            return Ok(());
        }
        let copy = exec::copy_test_binaries(
            self.engine.clone(),
            self.container_id().to_owned(),
            &test.cargo,
            binaries,
        );
        let (ready, copied) = tokio::join!(self.wait_ready(conditions), copy);
        if !ready? {
            return Ok(());
        }
        let copy_failed = match copied {
            Some(Err(e)) => Some(self.container_gone().await.ok_or(e)?),
            _ => None,
        };
        self.tests(&test, copy_failed.as_deref()).await?;
        // A service that died during the tests fails the stage even if no check noticed (one poll
        // interval lets the engine see an exit the last check caused).
        let after_tests = Instant::now();
        tokio::time::sleep(ready::POLL).await;
        if let Some(why) = self.container_gone().await {
            let already_reported = self.report.checks.iter().any(|c| c.output.contains(&why));
            if !already_reported {
                self.record(CheckResult::failed(
                    "run: still running after the tests",
                    "run",
                    after_tests,
                    why,
                ));
            }
            return Ok(());
        }
        if let Some(shutdown) = &test.shutdown
            && (self.report.passed() || !self.keeps_failures())
        {
            let signal = image
                .config
                .as_ref()
                .and_then(|c| c.stop_signal.clone())
                .or_else(|| self.plan.config.stop_signal.clone())
                .unwrap_or_else(|| "SIGTERM".into());
            self.shutdown_check(shutdown, &signal).await?;
        }
        self.running_lock().clear();
        Ok(())
    }

    /// The smoke test the stage runs: an assembled image's (no builder ran it).
    fn smoke_command<'i>(&'i self, image: &bollard::models::ImageInspect) -> Option<&'i [String]> {
        self.plan
            .config
            .smoke_test
            .as_deref()
            .filter(|cmd| !cmd.is_empty() && smoke::is_assembled(image))
    }

    /// The checks that need no service: the smoke test of an assembled image and the structure
    /// checks, side by side (both only read the image); their results, smoke test first.
    async fn image_checks(
        &self,
        image: &bollard::models::ImageInspect,
    ) -> Result<Vec<CheckResult>> {
        let smoke = self.smoke_command(image);
        let (smoke, structure) = tokio::join!(
            async {
                match smoke {
                    Some(cmd) => self.smoke_test(cmd).await.map(Some),
                    None => Ok(None),
                }
            },
            self.structure(image),
        );
        Ok(smoke?.into_iter().chain(structure?).collect())
    }

    /// The exec, cargo, host and HTTP checks, concurrently: they do not depend on each other.
    /// Each is shown as it finishes and kept in its slot, so the report has the manifest's order
    /// (also when the deadline or Ctrl-C cuts them short: [`Session::finish`] keeps what finished).
    async fn tests(
        &mut self,
        test: &crate::config::TestConfig,
        copy_failed: Option<&str>,
    ) -> Result<()> {
        let total = test.exec.len() + test.cargo.len() + test.host.len() + test.http.len();
        *self.concurrent_lock() = vec![None; total];
        let this = &*self;
        let cargo_at = test.exec.len();
        let host_at = cargo_at + test.cargo.len();
        let http_at = host_at + test.host.len();
        let exec = test
            .exec
            .iter()
            .enumerate()
            .map(|(i, check)| this.in_slot(i, this.exec_check(check)));
        let cargo = test
            .cargo
            .iter()
            .enumerate()
            .map(|(i, check)| this.in_slot(cargo_at + i, this.cargo_check(check, copy_failed)));
        let host = test
            .host
            .iter()
            .enumerate()
            .map(|(i, check)| this.in_slot(host_at + i, this.host_check(check)));
        let http = test
            .http
            .iter()
            .enumerate()
            .map(|(i, probe)| this.in_slot(http_at + i, this.http_check(probe)));
        tokio::try_join!(
            try_join_all(exec),
            try_join_all(cargo),
            try_join_all(host),
            try_join_all(http),
        )?;
        self.keep_concurrent();
        Ok(())
    }

    /// Awaits one concurrent check, shows it and keeps it in `slot`.
    async fn in_slot(
        &self,
        slot: usize,
        check: impl std::future::Future<Output = Result<CheckResult>>,
    ) -> Result<()> {
        let result = self.stamp(check.await?);
        self.announce(&result);
        self.end(&result.name);
        if let Some(place) = self.concurrent_lock().get_mut(slot) {
            *place = Some(result);
        }
        Ok(())
    }

    /// Moves the finished concurrent checks into the report, in the manifest's order.
    fn keep_concurrent(&mut self) {
        let done: Vec<CheckResult> = self.concurrent_lock().drain(..).flatten().collect();
        self.report.checks.extend(done);
    }

    /// Notes that the check `name` runs now.
    fn begin(&self, name: &str) {
        self.running_lock().push(name.to_owned());
    }

    /// Notes that the check `name` is over.
    fn end(&self, name: &str) {
        let mut running = self.running_lock();
        if let Some(i) = running.iter().position(|n| n == name) {
            running.remove(i);
        }
    }

    fn running_lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn concurrent_lock(&self) -> std::sync::MutexGuard<'_, Vec<Option<CheckResult>>> {
        self.concurrent.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the smoke test's container; returns the one it held.
    fn set_smoke_container(&self, guard: Option<ContainerGuard>) -> Option<ContainerGuard> {
        let mut held = self
            .smoke_container
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::replace(&mut held, guard)
    }

    /// The labels of every container the stage creates: leftovers can always be found.
    fn container_labels(&self) -> HashMap<String, String> {
        HashMap::from([
            (CONTAINER_LABEL.to_string(), "test".to_string()),
            (OWNER_LABEL.to_string(), owner_id()),
            (LABEL_PACKAGE.to_string(), self.plan.package.clone()),
        ])
    }

    /// Whether the caller asked to keep failed containers.
    fn keeps_failures(&self) -> bool {
        self.keep_on_failure
    }

    /// The readiness conditions from the manifest and the image.
    fn conditions(&self, health_test: Option<&[String]>) -> Result<Vec<ReadinessCondition>> {
        let ready = &self.plan.config.test.ready;
        let mut conditions = Vec::new();
        let health = ready.health.unwrap_or(health_test.is_some());
        if health {
            let Some(test) = health_test else {
                return Err(ready::no_healthcheck());
            };
            conditions.push(ReadinessCondition::Health {
                command: structure::health_command(test),
            });
        }
        conditions.extend(ready.tcp.iter().map(|p| ReadinessCondition::Tcp(*p)));
        let nothing_configured = ready.health.is_none()
            && ready.tcp.is_empty()
            && ready.http.is_none()
            && ready.log.is_none();
        if nothing_configured && conditions.is_empty() {
            // No healthcheck and no condition: ready when every exposed port accepts connections.
            conditions.extend(
                self.plan
                    .config
                    .expose
                    .iter()
                    .map(|p| ReadinessCondition::Tcp(*p)),
            );
        }
        if let Some(h) = &ready.http {
            conditions.push(ReadinessCondition::Http {
                port: h.port,
                path: h.path.clone(),
                status: h.status,
            });
        }
        if let Some(pattern) = &ready.log {
            let re = regex::Regex::new(pattern).map_err(|e| Error::TestConfig {
                message: format!("invalid readiness log pattern: {e}"),
                help: None,
            })?;
            conditions.push(ReadinessCondition::Log(re));
        }
        Ok(conditions)
    }

    /// Creates and starts the test container.
    /// Creates and starts the service's container with its ports published (held in
    /// `launching` from its creation, so that it is removed whatever happens); returns its ports
    /// and forwards.
    async fn launch(&self, image: &bollard::models::ImageInspect) -> Result<Launched> {
        let config = &self.plan.config;
        let test = &config.test;
        let mut ports: BTreeSet<u16> = config.expose.iter().copied().collect();
        for p in image
            .config
            .as_ref()
            .and_then(|c| c.exposed_ports.clone())
            .unwrap_or_default()
        {
            if let Some(port) = p.strip_suffix("/tcp").and_then(|p| p.parse().ok()) {
                ports.insert(port);
            }
        }
        ports.extend(test.ready.tcp.iter().copied());
        ports.extend(test.ready.http.iter().map(|h| h.port));
        ports.extend(test.http.iter().map(|h| h.port));
        let spec = ContainerSpec {
            name: self.container_name.clone(),
            image: self.image_id.to_owned(),
            env: config.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            ports: ports.into_iter().collect(),
            labels: self.container_labels(),
            cmd: None,
            entrypoint: None,
        };
        let id = self.engine.create_container(&spec).await?;
        *self.launching_lock() = Some(ContainerGuard::new(self.engine, &id));
        {
            self.engine.start_container(&id).await?;
            let ports = self.engine.published_ports(&id).await?;
            match self.engine.ssh_target() {
                // An ssh engine published them on its own loopback: reach them through ssh.
                Some(target) => {
                    let (forwards, local) =
                        crate::checks::forward::PortForwards::open(target, &ports).await?;
                    Ok(Launched {
                        ports: local,
                        forwards: Some(forwards),
                    })
                }
                None => Ok(Launched {
                    ports,
                    forwards: None,
                }),
            }
        }
    }

    fn launching_lock(&self) -> std::sync::MutexGuard<'_, Option<ContainerGuard>> {
        self.launching.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes what [`Self::launch`] created (even when its start failed) as the stage's service.
    fn adopt(&mut self, launched: Result<Launched>) -> Result<()> {
        let created = self.launching_lock().take();
        if created.is_some() {
            self.container = created;
        }
        let launched = launched?;
        self.ports = launched.ports;
        self.forwards = launched.forwards;
        let id = self.container_id().to_owned();
        self.shell.verbose(
            "Started",
            format!(
                "container {} ({}){}",
                self.container_name,
                short_id(&id),
                self.address()
                    .map(|a| format!(" at {a}"))
                    .unwrap_or_default()
            ),
        );
        Ok(())
    }

    /// Why the container stopped, with its last log lines, when it is no longer running.
    async fn container_gone(&self) -> Option<String> {
        let inspect = self
            .engine
            .inspect_container(self.container_id())
            .await
            .ok()?;
        let why = ready::stopped(&inspect)?;
        let logs = self
            .engine
            .logs_tail(self.container_id(), ready::LOG_TAIL)
            .await
            .unwrap_or_default();
        Some(format!(
            "the container {why}\nlast {} log lines of the container:\n{}",
            ready::LOG_TAIL,
            logs.trim_end()
        ))
    }

    fn container_id(&self) -> &str {
        self.container.as_ref().map(|c| c.id.as_str()).unwrap_or("")
    }

    /// The first container port, the service's main one.
    fn first_port(&self) -> Option<u16> {
        self.plan
            .config
            .expose
            .first()
            .copied()
            .or_else(|| self.ports.keys().next().copied())
    }

    /// `HOST:<published>` of the main port, where this host reaches it (loopback for a local
    /// engine, the engine host for a remote one).
    fn address(&self) -> Option<String> {
        let port = self.first_port()?;
        let host = &self.engine.published().host;
        self.ports.get(&port).map(|p| format!("{host}:{p}"))
    }

    /// `KEY=value` environment of host commands (and, adjusted, of in-container tests).
    fn service_env(&self) -> Vec<String> {
        let mut env = vec![
            format!("IMAGE={}", self.image_id),
            format!("IMAGE_ID={}", self.image_id),
            format!("IMAGE_REPOSITORY={}", self.plan.image),
            format!("CONTAINER_ID={}", self.container_id()),
            format!("SHA={}", self.plan.revision),
            format!("VERSION={}", self.plan.version),
            format!("SERVICE_HOST={}", self.engine.published().host),
        ];
        if let Some(port) = self.first_port().and_then(|p| self.ports.get(&p)) {
            env.push(format!("SERVICE_PORT={port}"));
        }
        if let Some(addr) = self.address() {
            env.push(format!("SERVICE_ADDR={addr}"));
        }
        env
    }

    /// Expands `{sha}`, `{sha7}`, `{version}` and `{image}` in a pattern or path.
    fn expand(&self, text: &str) -> String {
        text.replace("{sha}", &self.plan.revision)
            .replace(
                "{sha7}",
                &self.plan.revision[..7.min(self.plan.revision.len())],
            )
            .replace("{version}", &self.plan.version)
            .replace("{image}", &self.plan.image)
    }

    /// Records a check and reports it on the shell.
    fn record(&mut self, result: CheckResult) {
        let result = self.stamp(result);
        self.announce(&result);
        self.end(&result.name);
        self.report.checks.push(result);
    }

    /// Sets `started_ms` from when the check started.
    fn stamp(&self, mut result: CheckResult) -> CheckResult {
        if let Some(started) = result.started {
            result.started_ms = started.saturating_duration_since(self.started).as_millis() as u64;
        }
        result
    }

    /// Shows a check's result on the shell.
    fn announce(&self, result: &CheckResult) {
        // Several services may be tested at once (`--jobs`): each line names its package.
        let line = format!(
            "{} {} ({} ms)",
            self.plan.package, result.name, result.duration_ms
        );
        if result.passed {
            self.shell.status("Passed", line);
            if self.shell.verbosity() >= Verbosity::Verbose {
                for l in result.output.lines() {
                    self.shell.raw(&format!("{:>12} | {l}\n", ""));
                }
            }
        } else {
            // The output goes into the stage's error; with `-v` it is shown as it happens too.
            self.shell.raw(&format!("{:>12} {line}\n", "FAILED"));
            if self.shell.verbosity() >= Verbosity::Verbose {
                for l in result.output.lines() {
                    self.shell.raw(&format!("{:>12} | {l}\n", ""));
                }
            }
        }
    }

    /// Cleans up, writes the JUnit file and turns the outcome into the stage's result.
    async fn finish(
        &mut self,
        outcome: std::result::Result<(), Outcome>,
        options: &TestOptions,
        started: Instant,
    ) -> Result<()> {
        let interrupted = matches!(outcome, Err(Outcome::Interrupted));
        // The concurrent checks that finished before the stage stopped keep their results.
        self.keep_concurrent();
        // A container the deadline or a signal caught while it started is removed like any.
        let created = self.launching_lock().take();
        if let Some(guard) = created {
            self.container.get_or_insert(guard);
        }
        if let Some(smoke) = self.set_smoke_container(None) {
            let _ = tokio::time::timeout(REMOVE_TIMEOUT, smoke.remove()).await;
        }
        if let Err(Outcome::Timeout | Outcome::Interrupted) = &outcome {
            let mut cut_short = std::mem::take(&mut *self.running_lock());
            if cut_short.is_empty() {
                cut_short.push("the test stage".into());
            }
            let why = if interrupted {
                format!("interrupted by {}", crate::interrupt::signal_name())
            } else {
                format!(
                    "the test stage ran out of its {} deadline (`test.timeout`)",
                    humantime::format_duration(self.plan.config.test.timeout)
                )
            };
            let mut output = why;
            if let Some(c) = &self.container {
                let logs = tokio::time::timeout(REMOVE_TIMEOUT, self.engine.logs_tail(&c.id, 20))
                    .await
                    .ok()
                    .and_then(|l| l.ok())
                    .unwrap_or_default();
                if !logs.trim().is_empty() {
                    output.push_str(&format!("\nlast log lines:\n{}", logs.trim_end()));
                }
            }
            // Every check the stage cut short fails with the reason.
            for what in cut_short {
                self.record(CheckResult::failed(
                    &what,
                    "timeout",
                    started,
                    output.clone(),
                ));
            }
        }
        self.report.duration_ms = started.elapsed().as_millis() as u64;
        let failed = outcome.is_err() || !self.report.passed();
        let keep = failed && options.keep_on_failure && !interrupted;
        if let Some(container) = self.container.take() {
            if keep {
                let id = container.disarm();
                self.report.kept_container = Some(id.clone());
                let address = self.address().unwrap_or_else(|| "no published port".into());
                self.shell.note(format!(
                    "kept the failed container {} for inspection\n  service:  {address}\n  shell:    docker exec -it {} sh   (if the image has a shell)\n  logs:     docker logs {}\n  remove:   docker rm -f {}   (or `cargo docker-release prune`)",
                    self.container_name,
                    short_id(&id),
                    short_id(&id),
                    short_id(&id)
                ));
            } else {
                let removal = tokio::time::timeout(REMOVE_TIMEOUT, container.remove()).await;
                match (removal, &outcome) {
                    (Ok(Ok(())), _) => {}
                    // The stage failed already (most likely the engine went away): that is the
                    // error to report; the next run removes the container.
                    (_, Err(Outcome::Error(_))) => {}
                    (Ok(Err(e)), _) => return Err(e),
                    (Err(_), _) => {
                        return Err(crate::engine::engine_fault(
                            "test",
                            "removing the test container",
                            &format!(
                                "stopped answering (no answer within {}s)",
                                REMOVE_TIMEOUT.as_secs()
                            ),
                        ));
                    }
                }
            }
        }
        if let Some(path) = &options.junit {
            if let Some(dir) = path.parent().filter(|d| !d.as_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(format!("cannot create {dir}"), e))?;
            }
            std::fs::write(path, junit::render(&self.plan.package, &self.report))
                .map_err(|e| Error::io(format!("cannot write the JUnit report {path}"), e))?;
        }
        match outcome {
            Err(Outcome::Interrupted) => return Err(Error::Interrupted),
            Err(Outcome::Error(e)) => return Err(e),
            Err(Outcome::Timeout) | Ok(()) => {}
        }
        let failures: Vec<&CheckResult> = self.report.checks.iter().filter(|c| !c.passed).collect();
        if failures.is_empty() {
            self.shell.status(
                "Tested",
                format!(
                    "{} {}: {} checks passed in {:.1}s",
                    self.plan.package,
                    self.plan.version,
                    self.report.checks.len(),
                    self.report.duration_ms as f64 / 1000.0
                ),
            );
            return Ok(());
        }
        let mut message = format!(
            "{} of {} checks failed for {}: {}",
            failures.len(),
            self.report.checks.len(),
            self.plan.package,
            failures
                .iter()
                .map(|c| format!("`{}`", c.name))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for c in &failures {
            message.push_str(&format!("\n\n{}:\n{}", c.name, c.output.trim_end()));
        }
        Err(Error::step_with_help(
            "test",
            message,
            if keep {
                "the container was kept for inspection (see the note above)"
            } else {
                "run with `--keep-on-failure` to keep the container for inspection"
            },
        ))
    }
}

/// Removes its container when dropped (a cancelled run), unless disarmed.
struct ContainerGuard {
    engine: Engine,
    id: String,
    armed: bool,
}

impl ContainerGuard {
    fn new(engine: &Engine, id: &str) -> Self {
        ContainerGuard {
            engine: engine.clone(),
            id: id.to_owned(),
            armed: true,
        }
    }

    /// Removes the container now.
    async fn remove(mut self) -> Result<()> {
        self.armed = false;
        self.engine.remove_container(&self.id).await
    }

    /// Keeps the container; returns its ID.
    fn disarm(mut self) -> String {
        self.armed = false;
        std::mem::take(&mut self.id)
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            let engine = self.engine.clone();
            let id = std::mem::take(&mut self.id);
            handle.spawn(async move {
                let _ = engine.remove_container(&id).await;
            });
        }
    }
}

/// A unique, readable container name: `cdr-test-<package>-<sha7>-<pid><nanos>`.
fn container_name(plan: &ImagePlan) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let package: String = plan
        .package
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    format!(
        "cdr-test-{package}-{}-{}{nanos:09}",
        &plan.revision[..7.min(plan.revision.len())],
        std::process::id()
    )
}
