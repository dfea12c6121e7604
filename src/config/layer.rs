//! The raw `[package.metadata.docker]` / `[workspace.metadata.docker]` tables, exactly as written.
//!
//! Every field is optional so that layers can be merged (see [`super::resolve`]). Unknown keys are
//! rejected by serde (`deny_unknown_fields`); the span of the offending key comes from `toml`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One layer of docker configuration (workspace defaults or a package's own section).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DockerLayer {
    /// Image repository, e.g. `ghcr.io/acme/orders`.
    pub image: Option<String>,
    /// Binary target that goes into the image.
    pub bin: Option<String>,
    /// Where cargo runs: on the host or inside a builder image.
    pub strategy: Option<Strategy>,
    /// Builder image for the `docker` strategy.
    pub builder: Option<String>,
    /// Digest pinning the builder image.
    pub builder_digest: Option<String>,
    /// Runtime base image (`scratch` for static binaries).
    pub base: Option<String>,
    /// Digest pinning the base image.
    pub base_digest: Option<String>,
    /// Link the binary statically (default: when the base is `scratch`).
    #[serde(rename = "static")]
    pub static_link: Option<bool>,
    /// Build with BuildKit when the engine offers it (default); `false` selects the classic
    /// builder (and, for the `docker` strategy, its dependency-layer template).
    pub buildkit: Option<bool>,
    /// Path of a hand-written Dockerfile, relative to the package directory.
    pub dockerfile: Option<String>,
    /// Path of a user template replacing the built-in one, relative to the package directory.
    pub template: Option<String>,
    /// Build context directory, relative to the package directory.
    pub context: Option<String>,
    /// Extra `--build-arg`s.
    pub build_args: Option<BTreeMap<String, String>>,
    /// `ENV` of the image (and of the test container).
    pub env: Option<BTreeMap<String, String>>,
    /// Ports the service listens on.
    pub expose: Option<Vec<u16>>,
    /// Numeric `uid[:gid]` the service runs as.
    pub user: Option<String>,
    /// Exec-form entrypoint.
    pub entrypoint: Option<Vec<String>>,
    /// Exec-form default arguments.
    pub cmd: Option<Vec<String>>,
    /// Extra image labels.
    pub labels: Option<BTreeMap<String, String>>,
    /// Exec-form healthcheck.
    pub healthcheck: Option<HealthcheckLayer>,
    /// Signal that stops the service (`STOPSIGNAL`).
    pub stop_signal: Option<String>,
    /// Exec-form command run during the build to prove the binary starts.
    pub smoke_test: Option<Vec<String>>,
    /// `org.opencontainers.image.vendor`.
    pub vendor: Option<String>,
    /// Which commit an image is attributed to.
    pub revision: Option<RevisionMode>,
    /// Tag rules.
    pub tags: Option<TagsLayer>,
    /// Tests run in a container of the built image.
    pub test: Option<TestLayer>,
}

/// How the binary gets built.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Strategy {
    /// cargo builds on the host; the image only packages the binary (ko/Jib style).
    Host,
    /// A multi-stage Dockerfile runs cargo inside the builder image, dependencies in their own layer.
    Docker,
}

/// Which commit an image is attributed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RevisionMode {
    /// The last commit that touched the crate's inputs.
    Crate,
    /// `HEAD`.
    Head,
}

/// `[…docker.healthcheck]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HealthcheckLayer {
    /// Exec-form command; exit 0 means healthy.
    pub cmd: Option<Vec<String>>,
    /// Time between checks, e.g. `"10s"`.
    pub interval: Option<String>,
    /// Time one check may take.
    pub timeout: Option<String>,
    /// Grace period after start.
    pub start_period: Option<String>,
    /// Consecutive failures before `unhealthy`.
    pub retries: Option<u32>,
}

/// `[…docker.tags]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TagsLayer {
    /// Tag the semver version and its compatibility lines.
    pub semver: Option<bool>,
    /// Tag the commit SHA.
    pub sha: Option<bool>,
    /// Hex digits of the SHA tag.
    pub sha_length: Option<usize>,
    /// Move `latest` (forward only, stable releases only).
    pub latest: Option<bool>,
    /// Extra tag templates, e.g. `"{branch}-{sha7}-{timestamp}"`.
    pub extra: Option<Vec<String>>,
}

/// `[…docker.test]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TestLayer {
    /// Deadline of the whole test stage, from the structure checks to the shutdown, e.g. `"2m"`
    /// (default `5m`; compiling the `cargo` tests comes before it).
    pub timeout: Option<String>,
    /// Readiness conditions.
    pub ready: Option<ReadyLayer>,
    /// Checks on the image itself, without a container.
    pub structure: Option<StructureLayer>,
    /// Exec-form commands run inside the running container (`[[…docker.test.exec]]`).
    pub exec: Option<Vec<ExecLayer>>,
    /// Integration test targets of the crate, compiled on the host and run inside the container.
    pub cargo: Option<Vec<CargoTestLayer>>,
    /// Commands run on the host with the container's address in their environment.
    pub host: Option<Vec<HostLayer>>,
    /// HTTP requests sent to the published port.
    pub http: Option<Vec<HttpProbeLayer>>,
    /// Stop the container with its stop signal and expect a clean exit (opt-in).
    pub shutdown: Option<ShutdownLayer>,
}

/// `[…docker.test.structure]`: checks on the image itself (labels and `ENV SHA` are always checked).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct StructureLayer {
    /// `"non-root"`, or the exact `uid[:gid]` the image must run as.
    pub user: Option<String>,
    /// The image must declare a healthcheck.
    pub healthcheck: Option<bool>,
    /// The exact exec-form entrypoint the image must have.
    pub entrypoint: Option<Vec<String>>,
    /// Ports the image must expose.
    pub expose: Option<Vec<u16>>,
    /// Largest acceptable image size, e.g. `"50MB"` (units: B, kB, MB, GB, KiB, MiB, GiB).
    pub max_size: Option<String>,
    /// Files that must exist, optionally with a mode and owner.
    pub files: Option<Vec<FileLayer>>,
    /// Paths that must not exist, e.g. `["/bin/sh"]`.
    pub absent: Option<Vec<String>>,
}

/// One entry of `structure.files`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FileLayer {
    /// Absolute path in the image.
    pub path: String,
    /// Octal permission bits, e.g. `"0755"`.
    pub mode: Option<String>,
    /// Numeric `uid[:gid]` owning the file.
    pub owner: Option<String>,
}

/// `[[…docker.test.exec]]`: a command run inside the container.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ExecLayer {
    /// Name in reports (default: the command line).
    pub name: Option<String>,
    /// Exec-form command, e.g. `["/usr/local/bin/orders", "--version"]`.
    pub cmd: Vec<String>,
    /// Expected exit code (default 0).
    pub status: Option<i64>,
    /// Texts stdout must contain (`{sha}` and `{version}` expand).
    pub stdout: Option<Vec<String>>,
    /// Texts stdout must not contain.
    pub stdout_not: Option<Vec<String>>,
    /// Texts stderr must contain.
    pub stderr: Option<Vec<String>>,
    /// Texts stderr must not contain.
    pub stderr_not: Option<Vec<String>>,
    /// Time the command may take (default `30s`).
    pub timeout: Option<String>,
    /// Numeric `uid[:gid]` to run as (default: the image's user).
    pub user: Option<String>,
    /// Extra environment.
    pub env: Option<BTreeMap<String, String>>,
}

/// `[[…docker.test.cargo]]`: an integration test target, compiled on the host (statically when the
/// image needs it) and run inside the container with `SERVICE_HOST=127.0.0.1`, `SERVICE_PORT`,
/// `SERVICE_ADDR`, `SHA` and `VERSION` in its environment.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CargoTestLayer {
    /// Integration test target (`tests/<test>.rs`).
    pub test: String,
    /// Arguments for the test harness, e.g. `["--test-threads", "1"]`.
    pub args: Option<Vec<String>>,
    /// Time the tests may take in the container (default `2m`).
    pub timeout: Option<String>,
}

/// `[[…docker.test.host]]`: a command run on the host, in the package directory.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HostLayer {
    /// Name in reports (default: the command line).
    pub name: Option<String>,
    /// Exec-form command; `IMAGE` and `IMAGE_ID` (the tested image ID: no release tag exists yet),
    /// `IMAGE_REPOSITORY`, `CONTAINER_ID`, `SERVICE_HOST`, `SERVICE_PORT`, `SERVICE_ADDR` (the
    /// published address of the first exposed port), `SHA` and `VERSION` are in its environment.
    pub cmd: Vec<String>,
    /// Expected exit code (default 0).
    pub status: Option<i64>,
    /// Texts stdout must contain.
    pub stdout: Option<Vec<String>>,
    /// Texts stdout must not contain.
    pub stdout_not: Option<Vec<String>>,
    /// Texts stderr must contain.
    pub stderr: Option<Vec<String>>,
    /// Texts stderr must not contain.
    pub stderr_not: Option<Vec<String>>,
    /// Time the command may take (default `2m`).
    pub timeout: Option<String>,
}

/// `[[…docker.test.http]]`: an HTTP request to the published port.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpProbeLayer {
    /// Name in reports (default: `METHOD path`).
    pub name: Option<String>,
    /// Request method (default `GET`).
    pub method: Option<String>,
    /// Request path, e.g. `/version` (`{sha}` and `{version}` expand).
    pub path: String,
    /// Container port (default: the first exposed port).
    pub port: Option<u16>,
    /// Expected status (default 200).
    pub status: Option<u16>,
    /// Texts the body must contain (`{sha}` and `{version}` expand).
    pub body: Option<Vec<String>>,
    /// Texts the body must not contain.
    pub body_not: Option<Vec<String>>,
    /// Request body.
    pub data: Option<String>,
    /// Time the request may take (default `10s`).
    pub timeout: Option<String>,
}

/// `[…docker.test.shutdown]`: stop with the image's stop signal, expect a clean exit in time.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ShutdownLayer {
    /// Time the service has to exit after the stop signal (default `10s`).
    pub timeout: Option<String>,
    /// Expected exit code (default 0).
    pub exit_code: Option<i64>,
}

/// `[…docker.test.ready]`: all conditions must hold under one deadline.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ReadyLayer {
    /// Deadline for readiness, e.g. `"30s"`.
    pub timeout: Option<String>,
    /// Wait for Docker health `healthy` (default: when the image has a healthcheck).
    pub health: Option<bool>,
    /// Container ports that must accept TCP connections (default, when no condition is set and
    /// the image has no healthcheck: every port in `expose`).
    pub tcp: Option<Vec<u16>>,
    /// An HTTP request that must answer with a status.
    pub http: Option<HttpReadyLayer>,
    /// A regular expression a log line must match.
    pub log: Option<String>,
}

/// `[…docker.test.ready.http]`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct HttpReadyLayer {
    /// Container port (default: the first exposed port).
    pub port: Option<u16>,
    /// Request path.
    pub path: Option<String>,
    /// Expected status (default 200).
    pub status: Option<u16>,
}
