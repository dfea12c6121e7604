//! The SLSA provenance of a released image: an in-toto statement whose subject is the image's
//! manifest digest and whose predicate ([SLSA provenance v1]) says what was built (the package,
//! its version, features, target, profile and strategy), from what (the commit, the `Cargo.lock`
//! digest, the base and builder images by digest, the toolchain), by what (the CI run, or the
//! host) and when.
//!
//! [SLSA provenance v1]: https://slsa.dev/spec/v1.0/provenance

use std::sync::OnceLock;

use base64::Engine as _;
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::config::Strategy;
use crate::plan::{ImagePlan, LABEL_CARGO_LOCK, LABEL_CI_RUN, OCI};

/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The predicate type of SLSA provenance v1.
pub const SLSA_PROVENANCE: &str = "https://slsa.dev/provenance/v1";
/// What `buildDefinition.buildType` names: a release by this tool, whose parameters are
/// documented in the README.
pub const BUILD_TYPE: &str =
    "https://github.com/cargo-docker-release/cargo-docker-release/build/v1";

/// What the release knows of one image once it is pushed.
#[derive(Debug, Clone)]
pub struct Built<'a> {
    /// The service's plan.
    pub plan: &'a ImagePlan,
    /// The manifest digest the registry holds (`sha256:…`).
    pub digest: &'a str,
    /// How the image was made: `assembled`, `buildkit` or `classic`.
    pub builder: &'a str,
    /// The base's manifest digest, when it is not `scratch` and its digest is known.
    pub base_digest: Option<&'a str>,
    /// The builder image's manifest digest (`docker` strategy), when known.
    pub builder_digest: Option<&'a str>,
    /// The checks that passed in the test container.
    pub checks_passed: usize,
    /// When the release started.
    pub started: DateTime<Utc>,
    /// When the image was pushed.
    pub finished: DateTime<Utc>,
}

/// The in-toto statement about the image `repository@digest` with `predicate`.
pub fn statement(repository: &str, digest: &str, predicate_type: &str, predicate: Value) -> Value {
    json!({
        "_type": STATEMENT_TYPE,
        "subject": [{
            "name": repository,
            "digest": { "sha256": digest.strip_prefix("sha256:").unwrap_or(digest) },
        }],
        "predicateType": predicate_type,
        "predicate": predicate,
    })
}

/// The provenance statement of `built`.
pub fn provenance(built: &Built<'_>) -> Value {
    let plan = built.plan;
    let config = &plan.config;
    let host = config.strategy == Strategy::Host;
    let mut external = json!({
        "package": plan.package,
        "version": plan.version,
        "bin": config.bin,
        "features": plan.features,
        "profile": "release",
        "strategy": config.strategy,
    });
    if host {
        external["target"] = json!(crate::toolchain::host_triple());
    }
    let mut dependencies = vec![source(plan)];
    if let Some(lock) = plan.labels.get(LABEL_CARGO_LOCK) {
        dependencies.push(json!({ "name": "Cargo.lock", "digest": sha256(lock) }));
    }
    if let Some(digest) = built.base_digest {
        dependencies.push(image("base", &config.base.name(), digest));
    }
    if !host && let Some(digest) = built.builder_digest {
        dependencies.push(image("builder", &config.builder.name(), digest));
    }
    if host {
        let rustc = crate::toolchain::Rustc::get();
        dependencies.push(json!({
            "name": "rustc",
            "uri": format!("pkg:generic/rustc@{}", rustc_version(&rustc.release)),
            "content": base64::engine::general_purpose::STANDARD.encode(&rustc.verbose),
            "annotations": { "rustc -vV": rustc.verbose },
        }));
    }
    let run = plan.labels.get(LABEL_CI_RUN);
    let mut tool = json!({
        "name": env!("CARGO_PKG_NAME"),
        "uri": format!("pkg:cargo/{}@{}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
    });
    if let Some(digest) = tool_digest() {
        tool["digest"] = sha256(digest);
    }
    let predicate = json!({
        "buildDefinition": {
            "buildType": BUILD_TYPE,
            "externalParameters": external,
            "internalParameters": { "builder": built.builder },
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {
                "id": run.cloned().unwrap_or_else(host_builder_id),
                "version": { env!("CARGO_PKG_NAME"): env!("CARGO_PKG_VERSION") },
                "builderDependencies": [tool],
            },
            "metadata": {
                "invocationId": run.cloned().unwrap_or_else(|| format!("{}@{}", plan.package, plan.revision)),
                "startedOn": time(built.started),
                "finishedOn": time(built.finished),
            },
            "byproducts": [{
                "name": "container tests",
                "annotations": { "checks passed": built.checks_passed },
            }],
        },
    });
    statement(&plan.image, built.digest, SLSA_PROVENANCE, predicate)
}

/// The commit, with the repository's URL when the manifest names one.
fn source(plan: &ImagePlan) -> Value {
    let mut commit = json!({ "name": "source", "digest": { "gitCommit": plan.revision } });
    if plan.git.dirty {
        // `--allow-dirty`: built from the commit plus uncommitted changes.
        commit["annotations"] = json!({ "dirty": true });
    }
    if let Some(url) = plan.labels.get(&format!("{OCI}.source")) {
        commit["uri"] = json!(format!("git+{url}@{}", plan.revision));
    }
    commit
}

/// An image by digest, as a package URL.
fn image(name: &str, reference: &str, digest: &str) -> Value {
    let repository = crate::image::base::split_reference(reference).0;
    json!({
        "name": name,
        "uri": format!("pkg:docker/{repository}@{digest}"),
        "digest": sha256(digest),
    })
}

/// `{"sha256": hex}` of a `sha256:hex` digest.
fn sha256(digest: &str) -> Value {
    json!({ "sha256": digest.strip_prefix("sha256:").unwrap_or(digest) })
}

/// `1.95.0` of `rustc 1.95.0 (59807616e 2026-04-14)`.
fn rustc_version(release: &str) -> &str {
    release.split_whitespace().nth(1).unwrap_or("unknown")
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Outside CI, the builder is this host.
fn host_builder_id() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    format!("local://{host}")
}

/// `sha256:…` of this tool's own executable, read once.
fn tool_digest() -> Option<&'static str> {
    static DIGEST: OnceLock<Option<String>> = OnceLock::new();
    DIGEST
        .get_or_init(|| {
            let exe = std::env::current_exe().ok()?;
            Some(crate::image::digest(&std::fs::read(exe).ok()?))
        })
        .as_deref()
}

/// What `verify` reads back from a provenance statement.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Claims {
    /// `sha256:…` of each subject.
    pub subjects: Vec<String>,
    /// The commit.
    pub commit: Option<String>,
    /// `sha256:…` of `Cargo.lock`.
    pub cargo_lock: Option<String>,
}

/// The claims of a provenance statement; `None` when it is not one.
pub fn claims(statement: &Value) -> Option<Claims> {
    if statement["predicateType"] != SLSA_PROVENANCE {
        return None;
    }
    let dependencies = statement["predicate"]["buildDefinition"]["resolvedDependencies"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    let named = |name: &str| dependencies.iter().find(|d| d["name"] == name).cloned();
    Some(Claims {
        subjects: subject_digests(statement),
        commit: named("source").and_then(|d| d["digest"]["gitCommit"].as_str().map(str::to_owned)),
        cargo_lock: named("Cargo.lock").and_then(|d| {
            d["digest"]["sha256"]
                .as_str()
                .map(|h| format!("sha256:{h}"))
        }),
    })
}

/// `sha256:…` of each subject of an in-toto statement.
pub fn subject_digests(statement: &Value) -> Vec<String> {
    statement["subject"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| s["digest"]["sha256"].as_str())
        .map(|h| format!("sha256:{h}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_statement_names_its_subject_by_hex_digest() {
        let s = statement("r/a", "sha256:abc", SLSA_PROVENANCE, json!({}));
        assert_eq!(s["subject"][0]["digest"]["sha256"], "abc");
        assert_eq!(subject_digests(&s), ["sha256:abc"]);
        assert_eq!(rustc_version("rustc 1.95.0 (5980 2026-04-14)"), "1.95.0");
    }

    #[test]
    fn claims_read_the_commit_and_the_lock_back() {
        let mut s = statement("r/a", "sha256:abc", SLSA_PROVENANCE, json!({}));
        s["predicate"] = json!({ "buildDefinition": { "resolvedDependencies": [
            { "name": "source", "digest": { "gitCommit": "c0ffee" } },
            { "name": "Cargo.lock", "digest": { "sha256": "10c4" } },
        ] } });
        let c = claims(&s).unwrap();
        assert_eq!(c.commit.as_deref(), Some("c0ffee"));
        assert_eq!(c.cargo_lock.as_deref(), Some("sha256:10c4"));
        s["predicateType"] = json!("https://spdx.dev/Document");
        assert_eq!(claims(&s), None);
    }
}
