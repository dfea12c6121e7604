//! The supply-chain step (`--push`): once a service's immutable tags are in the registry, and
//! before any floating tag moves, its SBOM (SPDX and CycloneDX) and its provenance are written
//! to `target/docker-release/<package>/` and attached to the pushed digest as in-toto
//! attestations, with a cosign signature of the image when a key is given
//! ([`crate::supply_chain`]). A failure here holds the floating tags back, like a failed push.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::push::Pusher;
use crate::config::{ImageRef, Strategy};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::plan::ImagePlan;
use crate::supply_chain::Documents;
use crate::supply_chain::attach::{self, Attestation};
use crate::supply_chain::provenance::{self, Built, statement};
use crate::supply_chain::sbom;
use crate::supply_chain::sign::SigningKey;
use crate::supply_chain::{CYCLONEDX_PREDICATE, SPDX_PREDICATE};
use crate::ui::Shell;

/// What the release brings to every service's supply-chain step.
#[derive(Debug, Clone, Copy)]
pub struct Attesting<'a> {
    /// The engine (what it recorded of the base and builder images).
    pub engine: &'a Engine,
    /// The signing key (`--sign-key`, else the manifest's `sign-key`).
    pub key: Option<&'a SigningKey>,
    /// When the release started.
    pub started: DateTime<Utc>,
    /// cargo's flags (`--locked`, `--offline`, …), for `cargo metadata`.
    pub cargo_flags: &'a [String],
}

/// The crate graph of a service's bin, asked of cargo while the service builds and is tested.
pub type GraphTask = tokio::task::JoinHandle<Result<sbom::CrateGraph>>;

/// Starts resolving the crate graph `plan`'s SBOM needs (none when its SBOM is off), so that the
/// supply-chain step after the push does not wait for cargo.
pub fn start_graph(plan: &ImagePlan, cargo_flags: &[String]) -> Option<GraphTask> {
    if !plan.config.supply_chain.sbom {
        return None;
    }
    let (manifest_path, package, features) = (
        plan.manifest_path.clone(),
        plan.package.clone(),
        plan.features.clone(),
    );
    let flags = cargo_flags.to_vec();
    let build_deps = plan.config.supply_chain.sbom_build_dependencies;
    Some(tokio::task::spawn_blocking(move || {
        sbom::resolve(&sbom::SbomInput {
            manifest_path: &manifest_path,
            package: &package,
            features: &features,
            target: crate::toolchain::host_triple(),
            cargo_flags: &flags,
            include_build_deps: build_deps,
        })
    }))
}

/// What the build and test of one service tell its provenance and SBOM.
#[derive(Debug, Default)]
pub struct Facts {
    /// Its crate graph, being resolved ([`start_graph`]).
    pub graph: Option<GraphTask>,
    /// The tested image.
    pub image_id: String,
    /// `assembled`, `buildkit` or `classic` (`unknown` for a reused image that does not say).
    pub builder: String,
    /// The base's manifest digest, when the build knew it.
    pub base_digest: Option<String>,
    /// How many checks passed in the test container.
    pub checks_passed: usize,
}

/// Whether `plan` gets anything attached when pushed with `key`.
pub fn wanted(plan: &ImagePlan, key: Option<&SigningKey>) -> bool {
    let chain = &plan.config.supply_chain;
    chain.sbom || chain.provenance || key.is_some()
}

/// The supply-chain step of one service pushed as `digest`.
pub async fn attest(
    pusher: &Pusher,
    plan: &ImagePlan,
    digest: &str,
    mut facts: Facts,
    how: Attesting<'_>,
    shell: &Shell,
) -> Result<Documents> {
    let chain = &plan.config.supply_chain;
    let dir = plan.target_dir.join("docker-release").join(&plan.package);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("creating `{dir}` for the SBOM and provenance"), e))?;
    let documents = chain.sbom || chain.provenance;
    if documents && facts.base_digest.is_none() && !plan.config.base.is_scratch() {
        facts.base_digest = base_digest(how.engine, plan, &facts.image_id).await;
    }
    let mut attestations = Vec::new();
    if chain.sbom {
        let (spdx, cyclonedx) = sbom_documents(plan, digest, &mut facts, how.cargo_flags).await?;
        attestations.push(wrapped(plan, digest, SPDX_PREDICATE, &spdx)?);
        attestations.push(wrapped(plan, digest, CYCLONEDX_PREDICATE, &cyclonedx)?);
    }
    if chain.provenance {
        let builder_digest = match plan.config.strategy {
            Strategy::Docker => image_digest(how.engine, &plan.config.builder).await,
            Strategy::Host => None,
        };
        let built = Built {
            plan,
            digest,
            builder: &facts.builder,
            base_digest: facts.base_digest.as_deref(),
            builder_digest: builder_digest.as_deref(),
            checks_passed: facts.checks_passed,
            started: how.started,
            finished: Utc::now(),
        };
        let statement = pretty(&provenance::provenance(&built));
        attestations.push(Attestation {
            predicate_type: provenance::SLSA_PROVENANCE.to_owned(),
            statement,
        });
    }
    let (target, client) = pusher.registry(&plan.image)?;
    let attached = attach::attach(
        client,
        &target.repository,
        &plan.image,
        digest,
        &attestations,
        how.key,
    )
    .await?;
    // The files are what the registry holds: an attestation kept from an earlier release of
    // this digest is written, not the one this run made.
    for (predicate_type, statement) in &attached.statements {
        match predicate_type.as_str() {
            provenance::SLSA_PROVENANCE => write(&dir, "provenance.json", statement)?,
            SPDX_PREDICATE => write(&dir, "sbom.spdx.json", &predicate(statement)?)?,
            CYCLONEDX_PREDICATE => write(&dir, "sbom.cdx.json", &predicate(statement)?)?,
            _ => {}
        }
    }
    let mut parts: Vec<&str> = Vec::new();
    if chain.sbom {
        parts.push("SBOM (SPDX, CycloneDX)");
    }
    if chain.provenance {
        parts.push("provenance");
    }
    if how.key.is_some() {
        parts.push("signature");
    }
    shell.status(
        "Attached",
        format!(
            "{} to {}@{digest} ({}{})",
            parts.join(", "),
            plan.image,
            if how.key.is_some() {
                "signed"
            } else {
                "unsigned"
            },
            if attached.scheme == "referrers" {
                ", as OCI referrers"
            } else {
                ""
            }
        ),
    );
    Ok(Documents { dir, attached })
}

/// The SPDX and CycloneDX documents of the image `digest`: the resolved cargo graph of its bin.
async fn sbom_documents(
    plan: &ImagePlan,
    digest: &str,
    facts: &mut Facts,
    cargo_flags: &[String],
) -> Result<(Vec<u8>, Vec<u8>)> {
    let task = facts
        .graph
        .take()
        .or_else(|| start_graph(plan, cargo_flags))
        .expect("a graph is resolved whenever the SBOM is on");
    let graph = task
        .await
        .map_err(|e| Error::step("sbom", format!("the dependency graph: {e}")))??;
    let base = &plan.config.base;
    let subject = sbom::Subject {
        repository: plan.image.clone(),
        digest: digest.to_owned(),
        revision: plan.revision.clone(),
        created: plan
            .git
            .commit_time
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        base: match (&facts.base_digest, base.is_scratch()) {
            (Some(d), false) => Some(sbom::BaseImage {
                reference: base.name(),
                digest: d.clone(),
            }),
            _ => None,
        },
        tool: format!("{} {}", env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION")),
    };
    Ok((
        sbom::spdx(&graph, &subject),
        sbom::cyclonedx(&graph, &subject),
    ))
}

/// An SBOM document as the predicate of an in-toto statement about the image.
fn wrapped(
    plan: &ImagePlan,
    digest: &str,
    predicate_type: &str,
    document: &[u8],
) -> Result<Attestation> {
    let predicate: Value = serde_json::from_slice(document)
        .map_err(|e| Error::step("sbom", format!("the SBOM is not JSON: {e}")))?;
    Ok(Attestation {
        predicate_type: predicate_type.to_owned(),
        statement: pretty(&statement(&plan.image, digest, predicate_type, predicate)),
    })
}

/// The predicate of an in-toto statement, as the document it wraps.
fn predicate(statement: &[u8]) -> Result<Vec<u8>> {
    let statement: Value = serde_json::from_slice(statement)
        .map_err(|e| Error::step("attach", format!("an attached statement is not JSON: {e}")))?;
    Ok(pretty(&statement["predicate"]))
}

fn pretty(value: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("documents serialize");
    bytes.push(b'\n');
    bytes
}

fn write(dir: &camino::Utf8Path, name: &str, bytes: &[u8]) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, bytes).map_err(|e| Error::io(format!("writing `{path}`"), e))
}

/// The registry digest of `image`: its pinned digest, else the one the engine recorded when it
/// pulled it (`RepoDigests`); none when the engine does not hold it (BuildKit keeps what it pulls
/// in its own store).
async fn image_digest(engine: &Engine, image: &ImageRef) -> Option<String> {
    if let Some(d) = &image.digest {
        return Some(d.to_string());
    }
    let digests = engine.repo_digests(&image.name()).await.ok()?;
    let prefix = format!("{}@", image.repository);
    digests
        .iter()
        .find_map(|d| d.strip_prefix(&prefix).map(str::to_owned))
}

/// The base digest of the tested image the build did not know (a reused image, a base the
/// builder resolved): what the tool's kept layout of an assembled image says, else what the
/// engine recorded of the base.
async fn base_digest(engine: &Engine, plan: &ImagePlan, image_id: &str) -> Option<String> {
    match assembled_base(plan, image_id) {
        Some(d) => Some(d),
        None => image_digest(engine, &plan.config.base).await,
    }
}

/// The base digest an image the tool assembled earlier was assembled on (its kept layout says).
fn assembled_base(plan: &ImagePlan, image_id: &str) -> Option<String> {
    let layout = crate::image::store::layout_dir(&plan.target_dir, &plan.package);
    let base = crate::image::store::read(&layout, image_id)?.base?;
    (!base.manifest_digest.is_empty()).then_some(base.manifest_digest)
}
