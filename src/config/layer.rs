//! The raw `[package.metadata.docker]` / `[workspace.metadata.docker]` tables, exactly as written.
//!
//! Every field is optional so that layers can be merged (see [`DockerLayer::over`]). Unknown keys
//! are rejected by serde (`deny_unknown_fields`); the span of the offending key comes from `toml`.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Declares a mergeable layer once: each field with its key as written in `Cargo.toml` and the rule
/// by which a higher layer overlays a lower one (see [`overlay`]). The serde names,
/// [`DockerLayer::set_keys`] and the field-by-field overlay all come from this one list, so a new
/// key cannot be forgotten in any of them.
macro_rules! layer {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$field_meta:meta])*
                $key:literal $field:ident: $ty:ty => $rule:ident,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Default, Clone, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            $(
                $(#[$field_meta])*
                #[serde(rename = $key)]
                pub $field: Option<$ty>,
            )*
        }

        impl $name {
            /// The keys this layer sets, in declaration order.
            pub fn set_keys(&self) -> Vec<&'static str> {
                let mut keys = Vec::new();
                $(
                    if self.$field.is_some() {
                        keys.push($key);
                    }
                )*
                keys
            }
        }

        impl overlay::Overlay for $name {
            fn overlay(self, bottom: Self) -> Self {
                $name {
                    $($field: overlay::$rule(self.$field, bottom.$field),)*
                }
            }
        }
    };
}

layer! {
    /// One layer of docker configuration (workspace defaults or a package's own section).
    pub struct DockerLayer {
    /// Image repository, e.g. `ghcr.io/acme/orders`.
    "image" image: String => own,
    /// Binary target that goes into the image.
    "bin" bin: String => own,
    /// Where cargo runs: on the host or inside a builder image.
    "strategy" strategy: Strategy => replace,
    /// Builder image for the `docker` strategy.
    "builder" builder: String => replace,
    /// Digest pinning the builder image.
    "builder-digest" builder_digest: String => replace,
    /// Runtime base image (`scratch` for static binaries).
    "base" base: String => replace,
    /// Digest pinning the base image.
    "base-digest" base_digest: String => replace,
    /// Link the binary statically (default: when the base is `scratch`).
    "static" static_link: bool => replace,
    /// Build with BuildKit when the engine offers it (default); `false` selects the classic
    /// builder (and, for the `docker` strategy, its dependency-layer template).
    "buildkit" buildkit: bool => replace,
    /// Path of a hand-written Dockerfile, relative to the package directory.
    "dockerfile" dockerfile: String => replace,
    /// Path of a user template replacing the built-in one, relative to the package directory.
    "template" template: String => replace,
    /// Build context directory, relative to the package directory.
    "context" context: String => replace,
    /// Extra `--build-arg`s.
    "build-args" build_args: BTreeMap<String, String> => extend,
    /// `ENV` of the image (and of the test container).
    "env" env: BTreeMap<String, String> => extend,
    /// Ports the service listens on.
    "expose" expose: Vec<u16> => replace,
    /// Numeric `uid[:gid]` the service runs as.
    "user" user: String => replace,
    /// Exec-form entrypoint.
    "entrypoint" entrypoint: Vec<String> => replace,
    /// Exec-form default arguments.
    "cmd" cmd: Vec<String> => replace,
    /// Extra image labels.
    "labels" labels: BTreeMap<String, String> => extend,
    /// Exec-form healthcheck.
    "healthcheck" healthcheck: HealthcheckLayer => replace,
    /// Signal that stops the service (`STOPSIGNAL`).
    "stop-signal" stop_signal: String => replace,
    /// Exec-form command run during the build to prove the binary starts.
    "smoke-test" smoke_test: Vec<String> => replace,
    /// `org.opencontainers.image.vendor`.
    "vendor" vendor: String => replace,
    /// Which commit an image is attributed to.
    "revision" revision: RevisionMode => replace,
    /// Tag rules.
    "tags" tags: TagsLayer => fields,
    /// Tests run in a container of the built image.
    "test" test: TestLayer => replace,
    /// Attach an SBOM of the shipped binary to every pushed image (default: true).
    "sbom" sbom: bool => replace,
    /// List build-dependencies in the SBOM too (default: false, only what is in the binary).
    "sbom-build-dependencies" sbom_build_dependencies: bool => replace,
    /// Attach SLSA provenance to every pushed image (default: true).
    "provenance" provenance: bool => replace,
    /// Sign the pushed image and its attestations with this cosign key: a path (relative to
    /// the manifest that sets it) or `env://VAR`.
    "sign-key" sign_key: String => replace,
}
}

impl DockerLayer {
    /// This layer over `bottom`: scalars and lists set here win, maps are merged key by key, `tags`
    /// field by field; `image` and `bin` are never inherited (they name one package: a workspace
    /// default would make every service the same).
    pub fn over(self, mut bottom: DockerLayer) -> DockerLayer {
        // A digest pins one image: a layer that names its own image drops the lower one's digest.
        if self.builder.is_some() {
            bottom.builder_digest = None;
        }
        if self.base.is_some() {
            bottom.base_digest = None;
        }
        overlay::Overlay::overlay(self, bottom)
    }
}

/// How a key of a higher layer overlays the same key of a lower one.
pub mod overlay {
    use std::collections::BTreeMap;

    /// A table merged field by field, each field by its own rule.
    pub trait Overlay {
        /// `self` over `bottom`.
        fn overlay(self, bottom: Self) -> Self;
    }

    /// Only the layer's own value counts; the lower layer's is ignored.
    pub fn own<T>(top: Option<T>, _bottom: Option<T>) -> Option<T> {
        top
    }

    /// The higher layer's value replaces the lower one's as a whole.
    pub fn replace<T>(top: Option<T>, bottom: Option<T>) -> Option<T> {
        top.or(bottom)
    }

    /// Maps merge key by key, the higher layer's entries winning.
    pub fn extend(
        top: Option<BTreeMap<String, String>>,
        bottom: Option<BTreeMap<String, String>>,
    ) -> Option<BTreeMap<String, String>> {
        match (top, bottom) {
            (Some(t), Some(mut b)) => {
                b.extend(t);
                Some(b)
            }
            (t, b) => t.or(b),
        }
    }

    /// Tables merge field by field.
    pub fn fields<T: Overlay>(top: Option<T>, bottom: Option<T>) -> Option<T> {
        match (top, bottom) {
            (Some(t), Some(b)) => Some(t.overlay(b)),
            (t, b) => t.or(b),
        }
    }
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

layer! {
    /// `[…docker.tags]`.
    pub struct TagsLayer {
        /// Tag the semver version and its compatibility lines.
        "semver" semver: bool => replace,
        /// Tag the commit SHA.
        "sha" sha: bool => replace,
        /// Hex digits of the SHA tag.
        "sha-length" sha_length: usize => replace,
        /// Move `latest` (forward only, stable releases only).
        "latest" latest: bool => replace,
        /// Extra tag templates, e.g. `"{branch}-{sha7}-{timestamp}"`.
        "extra" extra: Vec<String> => replace,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(toml: &str) -> DockerLayer {
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn a_package_layer_over_the_workspace_defaults() {
        let workspace = layer(
            r#"image = "ws"
            builder = "rust:1"
            builder-digest = "sha256:aa"
            base-digest = "sha256:bb"
            env = { A = "1", B = "1" }
            tags = { sha = false, sha-length = 9 }"#,
        );
        let package = layer(
            r#"builder = "rust:2"
            env = { B = "2" }
            tags = { sha-length = 12 }"#,
        );
        let merged = package.over(workspace);
        assert_eq!(merged.image, None, "an image names one package");
        assert_eq!(merged.builder.as_deref(), Some("rust:2"));
        assert_eq!(
            merged.builder_digest, None,
            "the digest pinned the other builder"
        );
        assert_eq!(merged.base_digest.as_deref(), Some("sha256:bb"));
        let env = merged.env.unwrap();
        assert_eq!((env["A"].as_str(), env["B"].as_str()), ("1", "2"));
        let tags = merged.tags.unwrap();
        assert_eq!((tags.sha, tags.sha_length), (Some(false), Some(12)));
    }

    #[test]
    fn set_keys_are_the_manifest_keys() {
        let keys = layer("static = true\nsmoke-test = [\"/a\"]").set_keys();
        assert_eq!(keys, ["static", "smoke-test"]);
    }
}
