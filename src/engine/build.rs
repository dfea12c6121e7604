//! Building an image on the engine from an in-process build context, with its output streamed,
//! by BuildKit (the engine's `/build` with `version=2` and a session) or the classic builder.
//!
//! A person at a terminal sees one spinner line with the current Dockerfile step; plain output
//! (not a terminal, or `CI`) gets one line per step; `-v` shows every step's output. When the
//! build fails, the failing step's last log lines are shown whatever the verbosity, and the error
//! names the instruction and its Dockerfile line.
//!
//! Credentials for the images the Dockerfile starts `FROM` reach the engine as the docker CLI
//! sends them: in `X-Registry-Config` for the classic builder, through the session's auth
//! provider for BuildKit. Dropping the build future closes the `/build` request, which makes the
//! engine cancel the build; the session's connection closes with the process. Either way the
//! build produces only an untagged image: release tags come later, from the release.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bollard::auth::DockerCredentials;
use bollard::moby::buildkit::v1::StatusResponse;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use futures_util::StreamExt;
use serde::Serialize;

use super::context::BuildContext;
use super::{Engine, engine_error};
use crate::dockerfile::lint::{self, Instruction};
use crate::error::{Error, Result};
use crate::ui::{Shell, Verbosity};

/// Which of the engine's builders builds an image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// BuildKit, through the Engine API session.
    BuildKit,
    /// The classic builder (one container commit per instruction).
    Classic,
}

impl std::fmt::Display for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Builder::BuildKit => "BuildKit",
            Builder::Classic => "the classic builder",
        })
    }
}

/// Lines of a failing step's log shown with the error.
pub const FAILURE_LOG_LINES: usize = 30;

/// One image build: what to send and how to show it.
#[derive(Debug, Clone)]
pub struct BuildJob<'a> {
    /// The engine's build parameters (Dockerfile name, labels, build args); the builder's own
    /// ones (`version`, `session`) are set by [`Engine::build_image`].
    pub options: BuildImageOptions,
    /// The builder.
    pub builder: Builder,
    /// The build context.
    pub context: &'a BuildContext,
    /// The Dockerfile's text, to point a failing step at its line.
    pub dockerfile: &'a str,
    /// How the Dockerfile is named in messages (`Dockerfile`, `deploy/Containerfile`).
    pub dockerfile_name: &'a str,
    /// Credentials per registry host for the images the Dockerfile starts `FROM`.
    pub credentials: BTreeMap<String, super::credentials::Credentials>,
    /// What is built (`orders 1.4.2`), for the progress line.
    pub name: &'a str,
}

/// The classic builder's output, split into Dockerfile steps.
#[derive(Debug, Default, Clone)]
pub struct BuildLog {
    partial: String,
    /// Every complete line, in order.
    pub lines: Vec<String>,
    /// Index in `lines` where the current step's header is.
    step_start: usize,
    /// The current step's header (`Step 3/7 : COPY …`).
    pub current_step: Option<String>,
}

/// What a new line of build output is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogLine {
    /// A new Dockerfile step begins.
    Step(String),
    /// Output within a step.
    Output(String),
}

impl BuildLog {
    /// Feeds a chunk of the engine's `stream` text; returns the complete lines it finished.
    pub fn feed(&mut self, chunk: &str) -> Vec<LogLine> {
        self.partial.push_str(chunk);
        let mut out = Vec::new();
        while let Some(i) = self.partial.find('\n') {
            let line: String = self.partial.drain(..=i).collect();
            let line = without_escapes(line.trim_end_matches(['\n', '\r']));
            if line.starts_with("Step ") && line.contains(" : ") {
                self.step_start = self.lines.len();
                self.current_step = Some(line.clone());
                out.push(LogLine::Step(line.clone()));
            } else {
                out.push(LogLine::Output(line.clone()));
            }
            self.lines.push(line);
        }
        out
    }

    /// Output of the current (on failure: the failing) step, header included, at most its last
    /// [`FAILURE_LOG_LINES`] lines.
    pub fn current_step_output(&self) -> String {
        let mut lines: Vec<&str> = self.lines[self.step_start..]
            .iter()
            .map(String::as_str)
            .collect();
        if !self.partial.is_empty() {
            lines.push(&self.partial);
        }
        let skip = lines.len().saturating_sub(FAILURE_LOG_LINES + 1);
        if skip > 0 {
            lines.drain(1..=skip);
        }
        lines.join("\n")
    }

    /// The short ID from the classic builder's `Successfully built 0123abcd` line.
    pub fn built_id(&self) -> Option<&str> {
        self.lines
            .iter()
            .rev()
            .find_map(|l| l.strip_prefix("Successfully built "))
            .map(str::trim)
    }
}

/// One BuildKit vertex (a step, or an internal operation such as loading the Dockerfile).
#[derive(Debug, Clone, Default)]
struct Vertex {
    /// Number in order of appearance (`#3`), as the docker CLI numbers them.
    number: usize,
    name: String,
    started: bool,
    completed: bool,
    cached: bool,
    error: String,
    /// Milliseconds from start to completion, when both are known.
    millis: Option<i64>,
    /// The last lines of its log.
    log: VecDeque<String>,
    /// An unterminated last line.
    partial: String,
}

/// What changed in a BuildKit build, for the progress display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BuildEvent {
    /// A vertex started (or was found in the cache).
    Started {
        /// `#3`-style number.
        number: usize,
        /// `[builder 4/6] RUN cargo build`.
        name: String,
        /// Whether it came from the cache.
        cached: bool,
    },
    /// A line of a vertex's output.
    Log {
        /// `#3`-style number.
        number: usize,
        /// The line.
        line: String,
    },
    /// A vertex completed.
    Done {
        /// `#3`-style number.
        number: usize,
        /// Its duration.
        millis: Option<i64>,
        /// Its error, if it failed.
        error: Option<String>,
    },
}

/// The state of a BuildKit build from its status stream: vertices, their logs, cache hits.
#[derive(Debug, Default, Clone)]
pub struct BuildkitProgress {
    vertices: HashMap<String, Vertex>,
    /// Vertex digests in order of appearance.
    order: Vec<String>,
}

impl BuildkitProgress {
    /// Applies one status message; returns what changed. Within one message, vertices start,
    /// then their logs arrive, then they complete.
    pub fn apply(&mut self, status: &StatusResponse) -> Vec<BuildEvent> {
        let mut events = Vec::new();
        for v in &status.vertexes {
            if !self.vertices.contains_key(&v.digest) {
                self.order.push(v.digest.clone());
                let number = self.order.len();
                self.vertices.insert(
                    v.digest.clone(),
                    Vertex {
                        number,
                        ..Vertex::default()
                    },
                );
            }
            let state = self.vertices.get_mut(&v.digest).expect("inserted");
            if !v.name.is_empty() {
                state.name = v.name.clone();
            }
            state.cached |= v.cached;
            if (v.started.is_some() || v.cached) && !state.started {
                state.started = true;
                events.push(BuildEvent::Started {
                    number: state.number,
                    name: state.name.clone(),
                    cached: state.cached,
                });
            }
        }
        for log in &status.logs {
            let Some(state) = self.vertices.get_mut(&log.vertex) else {
                continue;
            };
            state.partial.push_str(&String::from_utf8_lossy(&log.msg));
            while let Some(i) = state.partial.find('\n') {
                let line: String = state.partial.drain(..=i).collect();
                let line = without_escapes(line.trim_end_matches(['\n', '\r']));
                push_line(&mut state.log, line.clone());
                events.push(BuildEvent::Log {
                    number: state.number,
                    line,
                });
            }
        }
        for v in &status.vertexes {
            let state = self.vertices.get_mut(&v.digest).expect("inserted");
            if !v.error.is_empty() {
                state.error = v.error.clone();
            }
            if v.completed.is_none() || state.completed {
                continue;
            }
            state.completed = true;
            state.millis = match (&v.started, &v.completed) {
                (Some(s), Some(c)) => {
                    Some((c.seconds - s.seconds) * 1000 + i64::from(c.nanos - s.nanos) / 1_000_000)
                }
                _ => None,
            };
            // The unterminated last line is complete now.
            if !state.partial.is_empty() {
                let line = without_escapes(&std::mem::take(&mut state.partial));
                push_line(&mut state.log, line.clone());
                events.push(BuildEvent::Log {
                    number: state.number,
                    line,
                });
            }
            events.push(BuildEvent::Done {
                number: state.number,
                millis: state.millis,
                error: (!state.error.is_empty()).then(|| state.error.clone()),
            });
        }
        events
    }

    /// The name of the step running now (the latest started, not completed one).
    pub fn current_step(&self) -> Option<&str> {
        self.order
            .iter()
            .rev()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| v.started && !v.completed && is_step(&v.name))
            .map(|v| v.name.as_str())
    }

    /// `(steps done, of them cached, steps seen)`.
    pub fn counts(&self) -> (usize, usize, usize) {
        let steps = self.vertices.values().filter(|v| is_step(&v.name));
        let (mut done, mut cached, mut seen) = (0, 0, 0);
        for v in steps {
            seen += 1;
            if v.completed {
                done += 1;
                cached += usize::from(v.cached);
            }
        }
        (done, cached, seen)
    }

    /// The vertex that failed: its name and the last lines of its log.
    pub fn failed_step(&self) -> Option<(&str, Vec<&str>)> {
        self.order
            .iter()
            .filter_map(|d| self.vertices.get(d))
            .find(|v| !v.error.is_empty())
            .map(|v| {
                let mut log: Vec<&str> = v.log.iter().map(String::as_str).collect();
                if !v.partial.is_empty() {
                    log.push(&v.partial);
                }
                (v.name.as_str(), log)
            })
    }
}

/// A line of build output without its terminal escape sequences (the classic builder colours a
/// step's stderr, `\x1b[91m…\x1b[0m`, around every write) or other control characters, so
/// that it reads as plain text and cannot drive the terminal.
fn without_escapes(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: `ESC [` parameters up to a final letter; otherwise one character after ESC.
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if c == '\t' || !c.is_control() {
            out.push(c);
        }
    }
    out
}

fn push_line(log: &mut VecDeque<String>, line: String) {
    if log.len() == FAILURE_LOG_LINES {
        log.pop_front();
    }
    log.push_back(line);
}

/// Whether a vertex is a Dockerfile step (`[2/5] COPY …`), not BuildKit's own work
/// (`[internal] load build context`, `exporting to image`).
fn is_step(name: &str) -> bool {
    name.starts_with('[') && !name.starts_with("[internal]")
}

/// The 1-based Dockerfile line of a step as the builders name it: BuildKit's
/// `[builder 4/6] RUN cargo build` or the classic `Step 9/14 : RUN cargo build`.
///
/// The instruction text is matched first, within its stage for BuildKit (which shows exec-form
/// `COPY`/`ADD` arguments without their quotes and variables expanded); when it does not match,
/// the step's number decides: the classic builder counts every instruction of the file, BuildKit
/// only the ones of its stage that make a vertex (`FROM` an image, `RUN`, `COPY`, `ADD`,
/// `WORKDIR`).
pub fn step_line(dockerfile: &str, step: &str) -> Option<usize> {
    let instructions = lint::parse(dockerfile);
    let normalize = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let text_of = |i: &Instruction| normalize(&format!("{} {}", i.keyword, i.args));
    let unquoted = |s: &str| s.replace('"', "");
    if let Some(rest) = step.strip_prefix("Step ") {
        let (number, text) = rest.split_once(" : ")?;
        let n: usize = number.split('/').next()?.trim().parse().ok()?;
        let wanted = normalize(text);
        return instructions
            .iter()
            .find(|i| text_of(i) == wanted)
            .or_else(|| instructions.get(n.checked_sub(1)?))
            .map(|i| i.line);
    }
    let inner = step.strip_prefix('[')?;
    let (label, text) = inner.split_once("] ")?;
    let (stage_name, counter) = match label.rsplit_once(' ') {
        Some((name, counter)) => (Some(name), counter),
        None => (None, label),
    };
    let index: usize = counter.split('/').next()?.parse().ok()?;
    // Stages: (their name, their instructions from `FROM` on).
    let mut stages: Vec<(Option<String>, Vec<&Instruction>)> = Vec::new();
    for i in &instructions {
        if i.keyword == "FROM" {
            let words: Vec<&str> = i.args.split_whitespace().collect();
            let name = match words.as_slice() {
                [.., as_kw, name] if as_kw.eq_ignore_ascii_case("as") => {
                    Some(name.to_ascii_lowercase())
                }
                _ => None,
            };
            stages.push((name, vec![i]));
        } else if let Some((_, body)) = stages.last_mut() {
            body.push(i);
        }
    }
    let stage_names: Vec<String> = stages.iter().filter_map(|(n, _)| n.clone()).collect();
    let stage = match stage_name {
        None => stages.last(),
        Some(name) => stages
            .iter()
            .find(|(n, _)| n.as_deref() == Some(&name.to_ascii_lowercase()))
            .or_else(|| {
                let k: usize = name.strip_prefix("stage-")?.parse().ok()?;
                stages.get(k)
            }),
    }?;
    let wanted = normalize(text);
    let makes_vertex = |i: &Instruction| match i.keyword.as_str() {
        "FROM" => {
            let base = lint::words(&i.args)
                .into_iter()
                .find(|w| !w.starts_with("--"))
                .unwrap_or_default()
                .to_ascii_lowercase();
            base != "scratch" && !stage_names.contains(&base)
        }
        "RUN" | "COPY" | "ADD" | "WORKDIR" => true,
        _ => false,
    };
    stage
        .1
        .iter()
        .find(|i| text_of(i) == wanted)
        .or_else(|| {
            stage
                .1
                .iter()
                .find(|i| unquoted(&text_of(i)) == unquoted(&wanted))
        })
        .or_else(|| {
            stage
                .1
                .iter()
                .filter(|i| makes_vertex(i))
                .nth(index.checked_sub(1)?)
        })
        .map(|i| i.line)
}

/// Whether a build error is the engine failing to pull a base image (BuildKit: `pulling from
/// host … failed with status code …: 401 Unauthorized`; the classic builder: `pull access
/// denied`, `unauthorized: …`).
fn is_pull_failure(message: &str) -> bool {
    let message = message.to_ascii_lowercase();
    [
        "pull access denied",
        "manifest unknown",
        "registry-1.docker.io",
        "no such host",
        "failed to resolve reference",
        "not found: manifest",
        "failed to authorize",
        "unauthorized",
        "pulling from host",
        "no basic auth credentials",
    ]
    .iter()
    .any(|m| message.contains(m))
}

/// A session ID unique to this process and build.
fn session_id() -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "cargo-docker-release-{}-{n}-{nanos:08x}",
        std::process::id()
    )
}

/// Whether an engine of this API version and OS runs BuildKit builds through the Engine API:
/// API 1.39 (Docker 18.09) and later, on Linux (Windows engines got BuildKit much later).
pub fn offers_buildkit(api_version: &str, os: &str) -> bool {
    let mut parts = api_version.split('.').map(|p| p.parse::<u32>().ok());
    let version = match (parts.next().flatten(), parts.next().flatten()) {
        (Some(major), Some(minor)) => (major, minor),
        _ => return false,
    };
    version >= (1, 39) && os.eq_ignore_ascii_case("linux")
}

/// The engine's product version (`20.10.24`) as `(major, minor)`.
fn product_version(version: &str) -> Option<(u32, u32)> {
    let mut parts = version
        .split(['.', '+', '-'])
        .map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

/// What the engine can build with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EngineBuilders {
    /// BuildKit through the Engine API.
    pub buildkit: bool,
    /// Its built-in Dockerfile frontend is 1.4 or later (heredocs, `COPY --link`): Docker 23+.
    pub newer_frontend: bool,
}

impl Engine {
    /// Which builders the engine offers, from its version.
    pub async fn builders(&self) -> Result<EngineBuilders> {
        let version = self
            .docker()
            .version()
            .await
            .map_err(|e| engine_error("build", "asking the engine for its version", e))?;
        let api = version.api_version.unwrap_or_default();
        let os = version.os.unwrap_or_default();
        Ok(EngineBuilders {
            buildkit: offers_buildkit(&api, &os),
            newer_frontend: version
                .version
                .as_deref()
                .and_then(product_version)
                .is_some_and(|v| v >= (23, 0)),
        })
    }

    /// Builds `job`; returns the image ID (`sha256:…`).
    pub async fn build_image(&self, job: BuildJob<'_>, shell: &Shell) -> Result<String> {
        let bar = shell.spinner("Building", job.name);
        let result = match job.builder {
            Builder::BuildKit => self.build_with_buildkit(&job, &bar, shell).await,
            Builder::Classic => self.build_classic(&job, &bar, shell).await,
        };
        bar.finish_and_clear();
        result
    }

    async fn build_classic(
        &self,
        job: &BuildJob<'_>,
        bar: &indicatif::ProgressBar,
        shell: &Shell,
    ) -> Result<String> {
        let name = job.name;
        let plain = bar.is_hidden();
        let full = shell.verbosity() >= Verbosity::Verbose;
        let body = bollard::body_try_stream(job.context.stream());
        // `X-Registry-Config`: credentials keyed by server address.
        let credentials: HashMap<String, DockerCredentials> = job
            .credentials
            .iter()
            .map(|(host, c)| (super::credentials::server_address(host), c.for_engine(host)))
            .collect();
        let mut options = job.options.clone();
        options.version = BuilderVersion::BuilderV1;
        options.session = None;
        let mut stream = self.docker().build_image(
            options,
            (!credentials.is_empty()).then_some(credentials),
            Some(body),
        );
        let mut log = BuildLog::default();
        let mut image_id = None;
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            let info = match item {
                Ok(info) => info,
                Err(e) => break Some(engine_error("build", "", e)),
            };
            if let Some(detail) = info.error_detail {
                break Some(Error::step("build", detail.message.unwrap_or_default()));
            }
            if let Some(BuildInfoAux::Default(id)) = info.aux
                && let Some(id) = id.id
            {
                image_id = Some(id);
            }
            if let Some(text) = info.stream {
                for line in log.feed(&text) {
                    match line {
                        LogLine::Step(step) => {
                            bar.set_message(format!("{name}: {step}"));
                            if full {
                                shell.raw(&format!("{step}\n"));
                            } else if plain {
                                shell.raw(&format!("{:>12} {name}: {step}\n", ""));
                            }
                        }
                        LogLine::Output(out) if full => shell.raw(&format!("{out}\n")),
                        LogLine::Output(_) => {}
                    }
                }
            }
        };
        if let Some(error) = failure {
            let output = log.current_step_output();
            if !output.is_empty() && !full {
                bar.finish_and_clear();
                shell.raw_always(&format!("{output}\n"));
            }
            return Err(failure_error(job, &error, log.current_step.as_deref()));
        }
        match image_id {
            Some(id) => Ok(id),
            None => {
                let short = log.built_id().ok_or_else(|| {
                    Error::step("build", format!("{name}: the engine reported no image ID"))
                })?;
                let info = self
                    .docker()
                    .inspect_image(short)
                    .await
                    .map_err(|e| engine_error("build", "inspecting the built image", e))?;
                Ok(info.id.unwrap_or_else(|| short.to_owned()))
            }
        }
    }

    async fn build_with_buildkit(
        &self,
        job: &BuildJob<'_>,
        bar: &indicatif::ProgressBar,
        shell: &Shell,
    ) -> Result<String> {
        let name = job.name;
        let plain = bar.is_hidden();
        let full = shell.verbosity() >= Verbosity::Verbose;
        let body = bollard::body_try_stream(job.context.stream());
        // The session's auth provider: credentials keyed by the host BuildKit asks for.
        let credentials: HashMap<String, DockerCredentials> = job
            .credentials
            .iter()
            .map(|(host, c)| {
                let key = if host == "docker.io" {
                    "registry-1.docker.io".to_owned()
                } else {
                    host.clone()
                };
                (key, c.for_engine(host))
            })
            .collect();
        let mut options = job.options.clone();
        options.version = BuilderVersion::BuilderBuildKit;
        options.session = Some(session_id());
        options.rm = true;
        options.forcerm = false;
        let mut stream = self
            .docker()
            .build_image(options, Some(credentials), Some(body));
        let mut progress = BuildkitProgress::default();
        let mut image_id = None;
        let started = Instant::now();
        let failure = loop {
            let Some(item) = stream.next().await else {
                break None;
            };
            let info: BuildInfo = match item {
                Ok(info) => info,
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    break Some(Error::step("build", error));
                }
                Err(e) => break Some(engine_error("build", "", e)),
            };
            if let Some(detail) = info.error_detail {
                break Some(Error::step("build", detail.message.unwrap_or_default()));
            }
            match info.aux {
                Some(BuildInfoAux::BuildKit(status)) => {
                    for event in progress.apply(&status) {
                        show_event(&event, name, plain, full, shell);
                    }
                    let (done, cached, seen) = progress.counts();
                    let step = progress.current_step().unwrap_or("");
                    bar.set_message(format!(
                        "{name}: {step} ({done}/{seen} steps, {cached} cached, {:.1}s)",
                        started.elapsed().as_secs_f64()
                    ));
                }
                Some(BuildInfoAux::Default(id)) => image_id = id.id.or(image_id),
                None => {}
            }
        };
        if let Some(error) = failure {
            let failed = progress.failed_step();
            if let Some((step, log)) = &failed
                && !full
            {
                bar.finish_and_clear();
                let mut text = format!("{step}\n");
                for line in log {
                    text.push_str(line);
                    text.push('\n');
                }
                shell.raw_always(&text);
            }
            return Err(failure_error(job, &error, failed.map(|(s, _)| s)));
        }
        image_id
            .ok_or_else(|| Error::step("build", format!("{name}: BuildKit reported no image ID")))
    }
}

/// One BuildKit event on the terminal: every event with `-v` (as the docker CLI's plain
/// progress, `#3 [2/5] COPY …`), one line per started step when the output is plain.
fn show_event(event: &BuildEvent, name: &str, plain: bool, full: bool, shell: &Shell) {
    match event {
        BuildEvent::Started {
            number,
            name: step,
            cached,
        } => {
            let cached = if *cached { " (cached)" } else { "" };
            if full {
                shell.raw(&format!("#{number} {step}{cached}\n"));
            } else if plain && is_step(step) {
                shell.raw(&format!("{:>12} {name}: {step}{cached}\n", ""));
            }
        }
        BuildEvent::Log { number, line } if full => shell.raw(&format!("#{number} {line}\n")),
        BuildEvent::Log { .. } => {}
        BuildEvent::Done {
            number,
            millis,
            error,
        } if full => {
            let what = match error {
                Some(e) => format!("ERROR: {e}"),
                None => match millis {
                    Some(ms) => format!("DONE {:.1}s", *ms as f64 / 1000.0),
                    None => "DONE".to_owned(),
                },
            };
            shell.raw(&format!("#{number} {what}\n"));
        }
        BuildEvent::Done { .. } => {}
    }
}

/// The error of a failed build: the engine's message, and a help naming the failing
/// instruction and its Dockerfile line, or what to do about a base image that cannot be pulled.
fn failure_error(job: &BuildJob<'_>, error: &Error, step: Option<&str>) -> Error {
    let message = match error {
        Error::Step { message, .. } => message.trim_start_matches(": ").to_owned(),
        other => other.to_string(),
    };
    let help = if is_pull_failure(&message) {
        "the engine could not pull an image the Dockerfile starts FROM; build or load it into the \
         local engine, point `base`/`builder` at a local image, or `docker login` to its registry"
            .to_owned()
    } else if message.contains("requires BuildKit") && job.builder == Builder::Classic {
        "the Dockerfile uses BuildKit syntax, and the classic builder was selected: unset \
         DOCKER_BUILDKIT=0 or `buildkit = false`"
            .to_owned()
    } else {
        match step {
            Some(step) => {
                let instruction = step_instruction(step);
                match step_line(job.dockerfile, step) {
                    Some(line) => format!(
                        "`{instruction}` at {}:{line} failed; its output is above",
                        job.dockerfile_name
                    ),
                    None => format!("the engine stopped at `{instruction}`; its output is above"),
                }
            }
            None => "the engine refused the build context or the Dockerfile".to_owned(),
        }
    };
    Error::step_with_help("build", format!("{}: {}", job.name, message.trim()), help)
}

/// The instruction of a step name: `[builder 4/6] RUN x` / `Step 4/6 : RUN x` -> `RUN x`, cut
/// to one short line.
fn step_instruction(step: &str) -> String {
    let text = step
        .split_once("] ")
        .filter(|_| step.starts_with('['))
        .map(|(_, t)| t)
        .or_else(|| step.split_once(" : ").map(|(_, t)| t))
        .unwrap_or(step);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() > 100 {
        format!("{}…", text.chars().take(100).collect::<String>())
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::moby::buildkit::v1::{Vertex as PbVertex, VertexLog};

    #[test]
    fn the_log_tracks_steps_across_chunks() {
        let mut log = BuildLog::default();
        assert_eq!(
            log.feed("Step 1/3 : FROM scratch\n ---> \n"),
            [
                LogLine::Step("Step 1/3 : FROM scratch".into()),
                LogLine::Output(" ---> ".into())
            ]
        );
        assert_eq!(
            log.feed("Step 2/3 : RUN [\"/bin/false\"]\n ---> Running in ab"),
            [LogLine::Step("Step 2/3 : RUN [\"/bin/false\"]".into())]
        );
        log.feed("c\nboom\n");
        assert_eq!(
            log.current_step_output(),
            "Step 2/3 : RUN [\"/bin/false\"]\n ---> Running in abc\nboom"
        );
        log.feed("Successfully built 0123456789ab\n");
        assert_eq!(log.built_id(), Some("0123456789ab"));
    }

    fn vertex(digest: &str, name: &str, started: Option<i64>, completed: Option<i64>) -> PbVertex {
        let mut v = PbVertex {
            digest: digest.into(),
            name: name.into(),
            ..PbVertex::default()
        };
        if let Some(s) = started {
            v.started = Some(Default::default());
            v.started.as_mut().unwrap().seconds = s;
        }
        if let Some(c) = completed {
            v.completed = Some(Default::default());
            v.completed.as_mut().unwrap().seconds = c;
        }
        v
    }

    #[test]
    fn buildkit_progress_follows_vertices_logs_and_cache_hits() {
        let mut p = BuildkitProgress::default();
        let mut cached = vertex("a", "[1/3] FROM busybox", Some(1), Some(1));
        cached.cached = true;
        let events = p.apply(&StatusResponse {
            vertexes: vec![
                vertex(
                    "i",
                    "[internal] load build definition from Dockerfile",
                    Some(0),
                    Some(1),
                ),
                cached,
                vertex("b", "[2/3] RUN make", None, None),
            ],
            ..Default::default()
        });
        assert_eq!(
            events[0],
            BuildEvent::Started {
                number: 1,
                name: "[internal] load build definition from Dockerfile".into(),
                cached: false
            }
        );
        assert!(events.contains(&BuildEvent::Started {
            number: 2,
            name: "[1/3] FROM busybox".into(),
            cached: true
        }));
        assert_eq!(p.counts(), (1, 1, 2));
        assert_eq!(p.current_step(), None, "RUN make has not started");

        let events = p.apply(&StatusResponse {
            vertexes: vec![vertex("b", "[2/3] RUN make", Some(2), None)],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"compiling\nerror: bro".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert_eq!(p.current_step(), Some("[2/3] RUN make"));
        assert_eq!(
            events.last(),
            Some(&BuildEvent::Log {
                number: 3,
                line: "compiling".into()
            })
        );
        let mut failed = vertex("b", "[2/3] RUN make", Some(2), Some(5));
        failed.error = "exit code: 2".into();
        let events = p.apply(&StatusResponse {
            vertexes: vec![failed],
            logs: vec![VertexLog {
                vertex: "b".into(),
                msg: b"ken".to_vec(),
                ..Default::default()
            }],
            ..Default::default()
        });
        assert!(events.contains(&BuildEvent::Done {
            number: 3,
            millis: Some(3000),
            error: Some("exit code: 2".into())
        }));
        let (name, log) = p.failed_step().unwrap();
        assert_eq!(name, "[2/3] RUN make");
        assert_eq!(log, ["compiling", "error: broken"]);
    }

    #[test]
    fn steps_point_at_their_dockerfile_lines() {
        let dockerfile = "ARG X=1\nFROM rust:1 AS builder\nWORKDIR /src\nENV A=$X\nRUN cargo \\\n  build --release\n\nFROM scratch\nCOPY --from=builder [\"/a\", \"/a\"]\nRUN [\"/a\", \"--version\"]\n";
        assert_eq!(
            step_line(dockerfile, "[builder 4/4] RUN cargo   build --release"),
            Some(5)
        );
        // Expanded variables: the step's number among the stage's vertices decides.
        assert_eq!(
            step_line(dockerfile, "[builder 2/4] WORKDIR /elsewhere"),
            Some(3)
        );
        assert_eq!(
            step_line(
                "FROM scratch\nLABEL a=b\nCOPY [\"missing\", \"/missing\"]\n",
                "[1/1] COPY [missing, /missing]"
            ),
            Some(3)
        );
        assert_eq!(
            step_line(
                "FROM scratch\nENV X=1\nCOPY a /a\nRUN [\"/a\", \"$X\"]\n",
                "[2/2] RUN [\"/a\", \"1\"]"
            ),
            Some(4)
        );
        assert_eq!(
            step_line(dockerfile, "[stage-1 3/3] RUN [\"/a\", \"--version\"]"),
            Some(10)
        );
        assert_eq!(
            step_line(
                dockerfile,
                "Step 6/7 : COPY --from=builder [\"/a\", \"/a\"]"
            ),
            Some(9)
        );
        assert_eq!(
            step_line(dockerfile, "Step 3/7 : WORKDIR /elsewhere"),
            Some(3)
        );
        assert_eq!(
            step_line("FROM scratch\nCOPY a /a\n", "[2/2] COPY a /a"),
            Some(2)
        );
        assert_eq!(step_line(dockerfile, "exporting to image"), None);
    }

    #[test]
    fn buildkit_is_offered_from_api_1_39_on_linux() {
        assert!(offers_buildkit("1.41", "linux"));
        assert!(offers_buildkit("1.39", "linux"));
        assert!(!offers_buildkit("1.38", "linux"));
        assert!(!offers_buildkit("1.41", "windows"));
        assert!(!offers_buildkit("", "linux"));
        assert_eq!(product_version("20.10.24+dfsg1"), Some((20, 10)));
        assert_eq!(product_version("27.3.1"), Some((27, 3)));
    }

    #[test]
    fn both_builders_pull_failures_are_recognised() {
        assert!(is_pull_failure(
            "failed to solve with frontend dockerfile.v0: failed to create LLB definition: \
             pulling from host 127.0.0.1:5000 failed with status code [manifests 1]: 401 Unauthorized"
        ));
        assert!(is_pull_failure(
            "Head \"http://127.0.0.1:5000/v2/a/manifests/1\": no basic auth credentials"
        ));
        assert!(!is_pull_failure(
            "executor failed running [/a]: exit code: 3"
        ));
    }

    #[test]
    fn build_output_loses_its_terminal_escapes() {
        let mut log = BuildLog::default();
        log.feed("Step 2/3 : RUN [\"/a\"]\n\x1b[91msmoke line \x1b[0m\x1b[91m49\x1b[0m\x1b[91m\n");
        assert_eq!(log.lines[1], "smoke line 49");
        assert_eq!(without_escapes("a\x1b]0;title\x07b\tc"), "a0;titleb\tc");
    }

    #[test]
    fn step_instructions_are_short_lines() {
        assert_eq!(step_instruction("[builder 4/6] RUN a \\\n b"), "RUN a \\ b");
        assert_eq!(step_instruction("Step 2/3 : COPY x /x"), "COPY x /x");
    }
}
