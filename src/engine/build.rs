//! Building an image on the engine from an in-process build context, with its output streamed,
//! by BuildKit (the engine's `/build` with `version=2` and a session) or the classic builder.
//!
//! The build reports what it does as [`BuildProgress`] events; the UI renders them
//! ([`crate::ui::BuildView`]: a spinner, a line per step, or every step's output). When the build
//! fails, the failing step's last log lines are reported, and the error names the instruction
//! and its Dockerfile line.
//!
//! Credentials for the images the Dockerfile starts `FROM` reach the engine as the docker CLI
//! sends them: in `X-Registry-Config` for the classic builder, through the session's auth
//! provider for BuildKit. Dropping the build future closes the `/build` request, which makes the
//! engine cancel the build; the session's connection closes with the process. Either way the
//! build produces only an untagged image: release tags come later, from the release.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bollard::auth::DockerCredentials;
use bollard::models::{BuildInfo, BuildInfoAux};
use bollard::query_parameters::{BuildImageOptions, BuilderVersion};
use futures_util::StreamExt;
use serde::Serialize;

use super::progress;

pub use progress::{BuildEvent, BuildLog, BuildkitProgress, LogLine, step_line};

use super::{Engine, engine_error};
use crate::build_context::BuildContext;
use crate::error::{Error, Result};

/// What a build reports as it goes, for the UI to render.
#[derive(Debug)]
pub enum BuildProgress<'a> {
    /// The current step, for a status line: `COPY … (3/5 steps, 1 cached, 2.1s)`.
    Status(String),
    /// The classic builder started a step (`Step 2/5 : COPY …`).
    Step(&'a str),
    /// A line of the classic builder's output.
    Output(&'a str),
    /// A BuildKit vertex event.
    Event(&'a BuildEvent),
    /// The build failed: the failing step and its last log lines.
    Failed(String),
}

/// What made an image: one of the engine's builders, or the tool itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Builder {
    /// BuildKit, through the Engine API session.
    BuildKit,
    /// The classic builder (one container commit per instruction).
    Classic,
    /// No builder: the tool assembled the image and loaded it ([`crate::image`]).
    Assembled,
}

/// Label saying what made an image ([`Builder::label`]).
pub const LABEL_BUILDER: &str = "io.cargo-docker-release.builder";

impl Builder {
    /// The value of [`LABEL_BUILDER`].
    pub fn label(self) -> &'static str {
        match self {
            Builder::BuildKit => "buildkit",
            Builder::Classic => "classic",
            Builder::Assembled => "assembled",
        }
    }

    /// The builder a [`LABEL_BUILDER`] value names.
    pub fn from_label(label: &str) -> Option<Builder> {
        [Builder::BuildKit, Builder::Classic, Builder::Assembled]
            .into_iter()
            .find(|b| b.label() == label)
    }
}

impl std::fmt::Display for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Builder::BuildKit => "BuildKit",
            Builder::Classic => "the classic builder",
            Builder::Assembled => "the tool (assembled)",
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
    pub credentials: BTreeMap<String, crate::docker_config::credentials::Credentials>,
    /// What is built (`orders 1.4.2`), for the progress line.
    pub name: &'a str,
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

    /// Builds `job`, reporting to `progress`; returns the image ID (`sha256:…`).
    pub async fn build_image(
        &self,
        job: BuildJob<'_>,
        progress: &mut (dyn FnMut(BuildProgress<'_>) + Send),
    ) -> Result<String> {
        match job.builder {
            Builder::BuildKit => self.build_with_buildkit(&job, progress).await,
            Builder::Classic => self.build_classic(&job, progress).await,
            Builder::Assembled => Err(Error::step(
                "build",
                "an assembled image is loaded, not built by the engine",
            )),
        }
    }

    async fn build_classic(
        &self,
        job: &BuildJob<'_>,
        report: &mut (dyn FnMut(BuildProgress<'_>) + Send),
    ) -> Result<String> {
        let name = job.name;
        let body = bollard::body_try_stream(job.context.stream());
        // `X-Registry-Config`: credentials keyed by server address.
        let credentials: HashMap<String, DockerCredentials> = job
            .credentials
            .iter()
            .map(|(host, c)| {
                (
                    crate::docker_config::credentials::server_address(host),
                    c.for_engine(host),
                )
            })
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
                            report(BuildProgress::Status(step.clone()));
                            report(BuildProgress::Step(&step));
                        }
                        LogLine::Output(out) => report(BuildProgress::Output(&out)),
                    }
                }
            }
        };
        if let Some(error) = failure {
            let output = log.current_step_output();
            if !output.is_empty() {
                report(BuildProgress::Failed(output));
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
        report: &mut (dyn FnMut(BuildProgress<'_>) + Send),
    ) -> Result<String> {
        let name = job.name;
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
                        report(BuildProgress::Event(&event));
                    }
                    let (done, cached, seen) = progress.counts();
                    let step = progress.current_step().unwrap_or("");
                    report(BuildProgress::Status(format!(
                        "{step} ({done}/{seen} steps, {cached} cached, {:.1}s)",
                        started.elapsed().as_secs_f64()
                    )));
                }
                Some(BuildInfoAux::Default(id)) => image_id = id.id.or(image_id),
                None => {}
            }
        };
        if let Some(error) = failure {
            let failed = progress.failed_step();
            if let Some((step, log)) = &failed {
                let mut text = step.to_string();
                for line in log {
                    text.push('\n');
                    text.push_str(line);
                }
                report(BuildProgress::Failed(text));
            }
            return Err(failure_error(job, &error, failed.map(|(s, _)| s)));
        }
        image_id
            .ok_or_else(|| Error::step("build", format!("{name}: BuildKit reported no image ID")))
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
    fn step_instructions_are_short_lines() {
        assert_eq!(step_instruction("[builder 4/6] RUN a \\\n b"), "RUN a \\ b");
        assert_eq!(step_instruction("Step 2/3 : COPY x /x"), "COPY x /x");
    }
}
