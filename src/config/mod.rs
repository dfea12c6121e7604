//! Manifest sections -> one validated [`ServiceConfig`] per service.
//!
//! Layers, lowest first: built-in defaults < `[workspace.metadata.docker]` <
//! `[package.metadata.docker]` < command line. Each layer is validated on its own so that an error
//! points at the file and line that holds the bad value; combinations are checked after merging.

pub mod layer;
pub mod messages;
pub mod paths;
mod reference;
pub mod source;
pub mod user;
mod validate;

use std::collections::BTreeMap;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

pub use layer::{DockerLayer, RevisionMode, Strategy};
pub use reference::{
    Digest, ImageRef, TAG_PLACEHOLDERS, check_image_name, check_tag_template, is_valid_tag,
    reserved_tag,
};
pub use source::ManifestSource;
pub use validate::{
    MAX_EXEC_FORM, MAX_GO_DURATION, MAX_KEY, MAX_TEST_TIMEOUT, MAX_VALUE, canonical_signal,
    image_from_package,
};

use crate::error::Result;

/// Default runtime user: distroless' `nonroot`, numeric so Kubernetes' `runAsNonRoot` can verify it.
pub const DEFAULT_USER: &str = "65532:65532";
/// Default builder image of the `docker` strategy.
pub const DEFAULT_BUILDER: &str = "rust:1-bookworm";
/// Default runtime base for dynamically linked binaries.
pub const DEFAULT_DYNAMIC_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";

/// Everything the pipeline needs to know about one service, with defaults applied.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ServiceConfig {
    /// Image repository, without tag.
    pub image: String,
    /// Binary target packaged in the image.
    pub bin: String,
    /// Where cargo runs.
    pub strategy: Strategy,
    /// Builder image (`docker` strategy), with `builder-digest` applied.
    pub builder: ImageRef,
    /// Runtime base image, with `base-digest` applied.
    pub base: ImageRef,
    /// Whether the binary is linked statically.
    pub static_link: bool,
    /// Whether BuildKit builds the image when the engine offers it (`buildkit = false`: the
    /// classic builder).
    pub buildkit: bool,
    /// Hand-written Dockerfile: an existing regular file inside the repository (absolute).
    pub dockerfile: Option<Utf8PathBuf>,
    /// User template: an existing regular file inside the repository (absolute).
    pub template: Option<Utf8PathBuf>,
    /// Build context: a directory inside the repository (absolute).
    pub context: Utf8PathBuf,
    /// Extra build args.
    pub build_args: BTreeMap<String, String>,
    /// Image and container environment.
    pub env: BTreeMap<String, String>,
    /// Exposed ports.
    pub expose: Vec<u16>,
    /// Numeric non-root `uid[:gid]`, canonical (`7`, never `007`).
    pub user: String,
    /// Exec-form entrypoint.
    pub entrypoint: Vec<String>,
    /// Exec-form default arguments.
    pub cmd: Vec<String>,
    /// The user's extra labels.
    pub labels: BTreeMap<String, String>,
    /// Exec-form healthcheck.
    pub healthcheck: Option<Healthcheck>,
    /// `STOPSIGNAL`, canonical (`SIGTERM`, `SIGRTMIN+3`, `15`).
    pub stop_signal: Option<String>,
    /// Exec-form smoke test run during the build.
    pub smoke_test: Option<Vec<String>>,
    /// `org.opencontainers.image.vendor`.
    pub vendor: Option<String>,
    /// Which commit the image is attributed to.
    pub revision: RevisionMode,
    /// Tag rules.
    pub tags: TagRules,
    /// Tests in the container.
    pub test: TestConfig,
    /// What is attached to the image when it is pushed.
    pub supply_chain: SupplyChain,
}

/// The attachments of a pushed image (`sbom`, `provenance`, `sign-key`): SBOM and provenance
/// unless turned off, a signature of the image and of both when a key is given.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct SupplyChain {
    /// Attach the SBOM.
    pub sbom: bool,
    /// List build-dependencies in it (`sbom-build-dependencies`).
    pub sbom_build_dependencies: bool,
    /// Attach the provenance.
    pub provenance: bool,
    /// The signing key: an absolute path or `env://VAR`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sign_key: Option<String>,
}

/// A resolved exec-form healthcheck.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Healthcheck {
    /// Command; exit 0 is healthy.
    pub cmd: Vec<String>,
    /// Time between checks.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Time one check may take.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Grace period after start.
    #[serde(with = "humantime_serde_compat")]
    pub start_period: Duration,
    /// Failures before `unhealthy`.
    pub retries: u32,
}

/// Resolved `[…docker.tags]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TagRules {
    /// Tag `X.Y.Z` and its compatibility lines.
    pub semver: bool,
    /// Tag the commit SHA.
    pub sha: bool,
    /// Hex digits of the SHA tag.
    pub sha_length: usize,
    /// Move `latest` (forward only).
    pub latest: bool,
    /// Extra tag templates.
    pub extra: Vec<String>,
}

/// Resolved `[…docker.test]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct TestConfig {
    /// Deadline of the whole test stage.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Readiness conditions.
    pub ready: Readiness,
    /// Checks on the image itself.
    #[serde(skip_serializing_if = "StructureChecks::is_empty")]
    pub structure: StructureChecks,
    /// Commands run inside the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub exec: Vec<ExecCheck>,
    /// Integration test targets run inside the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cargo: Vec<CargoCheck>,
    /// Commands run on the host.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub host: Vec<HostCheck>,
    /// HTTP probes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub http: Vec<HttpProbe>,
    /// Shutdown expectations (`None`: the container is removed without a shutdown check).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<ShutdownCheck>,
}

/// Resolved `[…docker.test.structure]`. Labels and `ENV SHA` are always checked.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct StructureChecks {
    /// `Some(None)`: any non-root user; `Some(Some(u))`: exactly `u`.
    pub user: Option<Option<String>>,
    /// The image must declare a healthcheck.
    pub healthcheck: bool,
    /// The exact entrypoint required.
    pub entrypoint: Option<Vec<String>>,
    /// Ports the image must expose.
    pub expose: Vec<u16>,
    /// Largest acceptable image size in bytes.
    pub max_size: Option<u64>,
    /// Files that must exist.
    pub files: Vec<FileCheck>,
    /// Paths that must not exist.
    pub absent: Vec<String>,
}

impl StructureChecks {
    /// Whether nothing beyond the always-on label and `ENV SHA` checks is asked for.
    pub fn is_empty(&self) -> bool {
        let StructureChecks {
            user,
            healthcheck,
            entrypoint,
            expose,
            max_size,
            files,
            absent,
        } = self;
        user.is_none()
            && !healthcheck
            && entrypoint.is_none()
            && expose.is_empty()
            && max_size.is_none()
            && files.is_empty()
            && absent.is_empty()
    }
}

/// A file that must exist in the image.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct FileCheck {
    /// Absolute path.
    pub path: String,
    /// Required permission bits.
    pub mode: Option<u32>,
    /// Required `uid` and optional `gid`.
    pub owner: Option<(u64, Option<u64>)>,
}

/// Expectations on a command's exit code and output.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct OutputExpectations {
    /// Expected exit code.
    pub status: i64,
    /// Texts stdout must contain.
    pub stdout: Vec<String>,
    /// Texts stdout must not contain.
    pub stdout_not: Vec<String>,
    /// Texts stderr must contain.
    pub stderr: Vec<String>,
    /// Texts stderr must not contain.
    pub stderr_not: Vec<String>,
}

/// A resolved `[[…docker.test.exec]]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ExecCheck {
    /// Name in reports.
    pub name: String,
    /// Exec-form command.
    pub cmd: Vec<String>,
    /// What must hold.
    pub expect: OutputExpectations,
    /// Time the command may take.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// User to run as.
    pub user: Option<String>,
    /// Extra environment.
    pub env: BTreeMap<String, String>,
}

/// A resolved `[[…docker.test.cargo]]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct CargoCheck {
    /// Integration test target.
    pub test: String,
    /// Harness arguments.
    pub args: Vec<String>,
    /// Time the tests may take.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// A resolved `[[…docker.test.host]]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HostCheck {
    /// Name in reports.
    pub name: String,
    /// Exec-form command.
    pub cmd: Vec<String>,
    /// What must hold.
    pub expect: OutputExpectations,
    /// Time the command may take.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// A resolved `[[…docker.test.http]]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpProbe {
    /// Name in reports.
    pub name: String,
    /// Request method.
    pub method: String,
    /// Request path (placeholders not yet expanded).
    pub path: String,
    /// Container port.
    pub port: u16,
    /// Expected status.
    pub status: u16,
    /// Texts the body must contain.
    pub body: Vec<String>,
    /// Texts the body must not contain.
    pub body_not: Vec<String>,
    /// Request body.
    pub data: Option<String>,
    /// Time the request may take.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
}

/// A resolved `[…docker.test.shutdown]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct ShutdownCheck {
    /// Time the service has to exit after the stop signal.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Expected exit code.
    pub exit_code: i64,
}

/// Resolved `[…docker.test.ready]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct Readiness {
    /// Deadline for readiness.
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    /// Wait for Docker health `healthy` (`None`: when the image has a healthcheck).
    pub health: Option<bool>,
    /// Container ports that must accept connections.
    pub tcp: Vec<u16>,
    /// An HTTP request that must answer with a status.
    pub http: Option<HttpReady>,
    /// A regular expression some log line must match.
    pub log: Option<String>,
}

/// Resolved `[…docker.test.ready.http]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case")]
pub struct HttpReady {
    /// Container port.
    pub port: u16,
    /// Request path.
    pub path: String,
    /// Expected status.
    pub status: u16,
}

/// What the config resolution needs to know about a package besides its manifest.
#[derive(Debug, Clone)]
pub struct PackageFacts<'a> {
    /// Package name.
    pub name: &'a str,
    /// Directory holding its `Cargo.toml`.
    pub dir: &'a Utf8Path,
    /// Workspace root directory.
    pub workspace_root: &'a Utf8Path,
    /// Names of its binary targets.
    pub bins: Vec<String>,
}

/// Merges the layers of one package and validates the result.
///
/// `workspace` is the workspace root manifest (its `[workspace.metadata.docker]` layer), `package`
/// the package's own manifest, which must have a `[package.metadata.docker]` section. When the
/// package is the root package of a non-virtual workspace, its own manifest holds the workspace
/// defaults too: they apply, as in any other member.
pub fn resolve(
    facts: &PackageFacts<'_>,
    workspace: Option<&ManifestSource>,
    package: &ManifestSource,
) -> Result<ServiceConfig> {
    let workspace = workspace.or((package.workspace.is_some()).then_some(package));
    let ws_layer = workspace.and_then(|w| w.workspace.clone());
    if let (Some(src), Some(layer)) = (workspace, &ws_layer) {
        validate::layer(src, &source::WORKSPACE_SECTION, layer)?;
    }
    let pkg_layer = package.package.clone().unwrap_or_default();
    validate::layer(package, &source::PACKAGE_SECTION, &pkg_layer)?;
    let origins = validate::Origins {
        package,
        workspace: workspace.filter(|_| ws_layer.is_some()),
        package_keys: pkg_layer.set_keys(),
    };
    let merged = pkg_layer.over(ws_layer.unwrap_or_default());
    validate::resolved(facts, &origins, merged)
}

/// Durations serialize as humantime strings ("30s") in plans and reports.
mod humantime_serde_compat {
    use std::time::Duration;

    pub fn serialize<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}
