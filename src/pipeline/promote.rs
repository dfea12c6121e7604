//! The promotion step (`cargo docker-release promote`): the floating tags of every selected
//! service move at once, inside the registry, after separate jobs pushed the immutable ones
//! (`--stage immutable`).
//!
//! Policy, in order:
//! 1. **Check every service** in the registry: each immutable tag of this revision (`X.Y.Z`, SHA,
//!    extra) exists, all name one manifest, and that manifest's config carries this revision's
//!    labels (all of the plan's, except the CI-run URL, which names the job that built it).
//! 2. **Only if every service passed**, move each floating tag the plan applies (`X.Y`, `X`,
//!    `latest`, forward-only as decided from the registry's releases) by putting the very same
//!    manifest bytes under it: no pull, no layer transfer. If any service failed, nothing moves
//!    and the error names every failing service.
//! 3. **Races:** each tag is re-read right before it moves; one that already names this manifest
//!    is left alone (a re-run is a no-op) and one that names a newer stable release is skipped with
//!    a note. The tag is read again after the move, and moved again if an older promotion
//!    overwrote it in between.
//!
//! The registry is reached through the narrow [`ManifestStore`] seam, so the policy is unit-tested
//! with an in-memory registry and end to end against a real one (tests/testsuite/promote.rs).

use std::collections::BTreeMap;

use futures_util::StreamExt;
use semver::Version;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::plan::{ImagePlan, KnownReleases, LABEL_CI_RUN, OCI, TagKind, released_versions};
pub use crate::registry::Manifest;
use crate::ui::Shell;

/// What promotion needs from a registry, addressed by full image name (`host/repo`).
#[allow(async_fn_in_trait)]
pub trait ManifestStore {
    /// Every tag of `image`'s repository (empty when it does not exist).
    async fn tags(&self, image: &str) -> Result<Vec<String>>;
    /// The manifest `image:reference` names, or `None` when there is no such tag.
    async fn manifest(&self, image: &str, reference: &str) -> Result<Option<Manifest>>;
    /// The labels of the image config `manifest` refers to (for an index: of its first image).
    async fn config_labels(
        &self,
        image: &str,
        manifest: &Manifest,
    ) -> Result<BTreeMap<String, String>>;
    /// Puts `manifest`'s bytes under `image:tag` (a manifest PUT; the blobs are already there).
    async fn put_manifest(&self, image: &str, tag: &str, manifest: &Manifest) -> Result<()>;
}

/// How many services are checked or promoted at once (registry round trips overlap).
const CONCURRENCY: usize = 8;
/// How often a tag is moved again when a concurrent, older promotion overwrote it.
const MOVE_ATTEMPTS: usize = 3;

/// The semver releases each image has in the registry, from its tags (`1.4.2_ab` is `1.4.2+ab`):
/// the forward-only rule of the promotion's plan.
pub async fn known_releases(store: &impl ManifestStore, images: &[&str]) -> Result<KnownReleases> {
    let mut known = KnownReleases::new();
    for image in images {
        let tags = store.tags(image).await?;
        known.insert(
            (*image).to_owned(),
            released_versions(tags.iter().map(String::as_str)),
        );
    }
    Ok(known)
}

/// The plan of a `--stage immutable` release: every floating tag held back for `promote`.
pub fn immutable_stage(plan: &mut ImagePlan) {
    for tag in plan.tags.iter_mut().filter(|t| t.kind.is_floating()) {
        if tag.applied {
            tag.applied = false;
            tag.reason = format!(
                "held for `cargo docker-release promote` (--stage immutable; {})",
                tag.reason
            );
        }
    }
}

/// The tags a `--stage immutable` job pushes and the promotion checks: every applied tag that is
/// not floating.
fn immutable_tags(plan: &ImagePlan) -> impl Iterator<Item = &str> {
    plan.applied_tags()
        .filter(|t| !t.kind.is_floating())
        .map(|t| t.name.as_str())
}

/// The outcome of the promotion, per service (JSON and the human summary).
#[derive(Debug, Clone, Serialize)]
pub struct PromotionReport {
    /// Version of cargo-docker-release.
    pub tool_version: String,
    /// Whether every service passed its check (and so every planned floating tag was handled).
    pub success: bool,
    /// When the promotion started (RFC 3339, UTC).
    pub started: String,
    /// Wall time.
    pub duration_ms: u64,
    /// One entry per selected service, in plan order.
    pub services: Vec<ServicePromotion>,
}

/// How far one service got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PromotionState {
    /// Checked; its floating tags now name this release (or a newer one).
    Promoted,
    /// Checked, but nothing moved because another service failed its check.
    NotPromoted,
    /// Its immutable tags are missing from the registry or are not this revision.
    Failed,
}

/// What the promotion did for one service.
#[derive(Debug, Clone, Serialize)]
pub struct ServicePromotion {
    /// Cargo package.
    pub package: String,
    /// Crate version.
    pub version: String,
    /// Image repository.
    pub image: String,
    /// Full revision.
    pub revision: String,
    /// How far it got.
    pub state: PromotionState,
    /// The manifest digest the immutable tags name (and the floating ones now do).
    pub digest: Option<String>,
    /// Why the check failed (empty when it passed).
    pub problems: Vec<String>,
    /// Every tag of the plan and what happened to it.
    pub tags: Vec<PromotedTag>,
}

/// What happened to one tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotedTag {
    /// The tag (without repository).
    pub name: String,
    /// The rule that produced it.
    pub kind: TagKind,
    /// What the promotion did.
    pub outcome: TagMove,
    /// Why.
    pub reason: String,
}

/// What the promotion did with one tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TagMove {
    /// An immutable tag, checked in the registry.
    Verified,
    /// A floating tag now names this release's manifest (it did not before).
    Moved,
    /// A floating tag already named this release's manifest.
    Unchanged,
    /// A floating tag already names a newer release: left alone.
    Newer,
    /// The plan holds it back (forward-only, pre-release).
    HeldBack,
    /// Not moved because a service failed its check.
    NotMoved,
}

/// The result of checking one service in the registry.
#[derive(Debug, Default)]
struct Check {
    manifest: Option<Manifest>,
    problems: Vec<String>,
}

/// Checks one service: its immutable tags exist, name one manifest, whose config carries the
/// plan's labels.
async fn check(store: &impl ManifestStore, plan: &ImagePlan) -> Result<Check> {
    let mut check = Check::default();
    let mut first: Option<String> = None;
    for tag in immutable_tags(plan) {
        let reference = format!("{}:{tag}", plan.image);
        match store.manifest(&plan.image, tag).await? {
            None => check.problems.push(format!(
                "{reference} is not in the registry: has the `--stage immutable` job of {} pushed it?",
                plan.package
            )),
            Some(found) => match &check.manifest {
                None => {
                    first = Some(reference);
                    check.manifest = Some(found);
                }
                Some(m) if m.digest != found.digest => check.problems.push(format!(
                    "{reference} is manifest {}, but {} is {}",
                    found.digest,
                    first.as_deref().unwrap_or_default(),
                    m.digest
                )),
                Some(_) => {}
            },
        }
    }
    let Some(manifest) = &check.manifest else {
        return Ok(check);
    };
    let labels = store.config_labels(&plan.image, manifest).await?;
    let reference = first.unwrap_or_default();
    let revision_key = format!("{OCI}.revision");
    let found_revision = labels.get(&revision_key).map(String::as_str);
    if found_revision != Some(plan.revision.as_str()) {
        check.problems.push(format!(
            "{reference} is revision {}, not this revision {}",
            found_revision.unwrap_or("(no revision label)"),
            plan.revision
        ));
        return Ok(check);
    }
    let wrong: Vec<String> = plan
        .labels
        .iter()
        .filter(|(k, _)| k.as_str() != LABEL_CI_RUN)
        .filter(|(k, v)| labels.get(*k) != Some(v))
        .map(|(k, v)| match labels.get(k) {
            Some(found) => format!("{k}={found:?} (expected {v:?})"),
            None => format!("{k} missing (expected {v:?})"),
        })
        .collect();
    if !wrong.is_empty() {
        check.problems.push(format!(
            "{reference} does not carry this revision's labels: {}",
            wrong.join(", ")
        ));
    }
    Ok(check)
}

/// Whether `plan`'s immutable tags are all in the registry, as one manifest carrying this
/// revision's labels: the service needs no build (`plan --matrix` leaves it out).
pub async fn is_current(store: &impl ManifestStore, plan: &ImagePlan) -> Result<bool> {
    let check = check(store, plan).await?;
    Ok(check.manifest.is_some() && check.problems.is_empty())
}

/// The stable version an image's config says it is, if any.
async fn release_of(
    store: &impl ManifestStore,
    image: &str,
    manifest: &Manifest,
) -> Result<Option<Version>> {
    let labels = store.config_labels(image, manifest).await?;
    Ok(labels
        .get(&format!("{OCI}.version"))
        .and_then(|v| Version::parse(v).ok())
        .filter(|v| v.pre.is_empty()))
}

/// Moves one floating tag to `source`, unless it already names it or a newer stable release.
async fn move_tag(
    store: &impl ManifestStore,
    plan: &ImagePlan,
    tag: &str,
    source: &Manifest,
) -> Result<(TagMove, String)> {
    let ours = Version::parse(&plan.version).ok();
    let reference = format!("{}:{tag}", plan.image);
    let mut moved = false;
    for _ in 0..MOVE_ATTEMPTS {
        // Re-read right before the move: another promotion may have moved it since the plan.
        let current = store.manifest(&plan.image, tag).await?;
        if let Some(current) = &current {
            if current.digest == source.digest {
                return Ok(if moved {
                    (
                        TagMove::Moved,
                        format!("now {} {}", plan.version, source.digest),
                    )
                } else {
                    (
                        TagMove::Unchanged,
                        format!("already names {} {}", plan.version, source.digest),
                    )
                });
            }
            if let (Some(theirs), Some(ours)) =
                (release_of(store, &plan.image, current).await?, &ours)
                && theirs.cmp_precedence(ours) == std::cmp::Ordering::Greater
            {
                return Ok((
                    TagMove::Newer,
                    format!(
                        "skipped: {reference} already names {theirs}, newer than {ours}; floating tags only move forward"
                    ),
                ));
            }
        }
        store.put_manifest(&plan.image, tag, source).await?;
        moved = true;
    }
    Err(Error::step(
        "promote",
        format!(
            "{reference} kept changing while it was moved to {}: another promotion is running",
            plan.version
        ),
    ))
}

/// Promotes every planned service: checks all, then (only if all passed) moves their floating
/// tags. Returns the report, and the error that makes the command fail (after the report is
/// printed).
pub async fn promote(
    store: &impl ManifestStore,
    plans: &[&ImagePlan],
    shell: &Shell,
) -> (Vec<ServicePromotion>, Option<Error>) {
    let checks: Vec<Result<Check>> =
        futures_util::stream::iter(plans.iter().map(|p| check(store, p)))
            .buffered(CONCURRENCY)
            .collect()
            .await;
    // A registry error while checking a service fails that service's check.
    let mut checks: Vec<Check> = checks
        .into_iter()
        .map(|c| {
            c.unwrap_or_else(|e| Check {
                manifest: None,
                problems: vec![e.to_string()],
            })
        })
        .collect();
    let failed: Vec<&str> = plans
        .iter()
        .zip(&checks)
        .filter(|(_, c)| !c.problems.is_empty())
        .map(|(p, _)| p.package.as_str())
        .collect();
    for (plan, check) in plans.iter().zip(&checks) {
        if check.problems.is_empty() {
            shell.status(
                "Checked",
                format!("{} {} in the registry", plan.image, plan.version),
            );
        }
    }
    let all_passed = failed.is_empty();
    let failure = if all_passed {
        None
    } else {
        let details: Vec<String> = plans
            .iter()
            .zip(&checks)
            .flat_map(|(p, c)| {
                c.problems
                    .iter()
                    .map(move |m| format!("  {}: {m}", p.package))
            })
            .collect();
        Some(Error::step_with_help(
            "promote",
            format!(
                "not promoting anything: {} of {} service(s) failed the registry check ({}):\n{}",
                failed.len(),
                plans.len(),
                failed.join(", "),
                details.join("\n")
            ),
            "re-run the `--stage immutable` release of those services at this revision, then promote again",
        ))
    };

    let moving = all_passed;
    let moves: Vec<Vec<Result<(TagMove, String)>>> = if moving {
        futures_util::stream::iter(plans.iter().zip(&checks).map(|(plan, check)| async move {
            let source = check
                .manifest
                .as_ref()
                .expect("a passed check has a manifest");
            let mut out = Vec::new();
            for tag in plan.applied_tags().filter(|t| t.kind.is_floating()) {
                out.push(move_tag(store, plan, &tag.name, source).await);
            }
            out
        }))
        .buffered(CONCURRENCY)
        .collect()
        .await
    } else {
        plans.iter().map(|_| Vec::new()).collect()
    };
    let not_moved = format!("not moved: {} failed the registry check", failed.join(", "));

    let mut failure = failure;
    let mut services = Vec::new();
    for ((plan, check), moves) in plans.iter().zip(checks.iter_mut()).zip(moves) {
        let mut moves = moves.into_iter();
        let mut moved_names = Vec::new();
        let mut tags = Vec::new();
        for t in &plan.tags {
            let (outcome, reason) = if !t.applied {
                (TagMove::HeldBack, t.reason.clone())
            } else if !t.kind.is_floating() {
                if check.problems.is_empty() && check.manifest.is_some() {
                    (
                        TagMove::Verified,
                        "in the registry, this revision".to_owned(),
                    )
                } else {
                    (TagMove::NotMoved, "failed the check".to_owned())
                }
            } else if !moving {
                (TagMove::NotMoved, not_moved.clone())
            } else {
                match moves.next() {
                    Some(Ok((outcome, reason))) => {
                        match outcome {
                            TagMove::Moved => moved_names.push(t.name.clone()),
                            TagMove::Newer => shell.note(&reason),
                            _ => {}
                        }
                        (outcome, reason)
                    }
                    Some(Err(e)) => {
                        let reason = format!("not moved: {e}");
                        failure.get_or_insert(e);
                        (TagMove::NotMoved, reason)
                    }
                    None => (TagMove::NotMoved, "not moved".to_owned()),
                }
            };
            tags.push(PromotedTag {
                name: t.name.clone(),
                kind: t.kind,
                outcome,
                reason,
            });
        }
        if !moved_names.is_empty() {
            shell.status(
                "Promoted",
                format!(
                    "{} {}: {}",
                    plan.image,
                    plan.version,
                    moved_names.join(", ")
                ),
            );
        }
        let state = if !check.problems.is_empty() {
            PromotionState::Failed
        } else if moving {
            PromotionState::Promoted
        } else {
            PromotionState::NotPromoted
        };
        services.push(ServicePromotion {
            package: plan.package.clone(),
            version: plan.version.clone(),
            image: plan.image.clone(),
            revision: plan.revision.clone(),
            state,
            digest: check.manifest.take().map(|m| m.digest),
            problems: std::mem::take(&mut check.problems),
            tags,
        });
    }
    (services, failure)
}

impl PromotionReport {
    /// The report as pretty JSON, newline-terminated.
    pub fn json(&self) -> String {
        let mut text = serde_json::to_string_pretty(self).expect("reports serialize");
        text.push('\n');
        text
    }

    /// Writes the report to `<target_dir>/docker-release/promotion.json`; returns the path.
    pub fn write(&self, target_dir: &camino::Utf8Path) -> Result<camino::Utf8PathBuf> {
        let dir = target_dir.join("docker-release");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating `{dir}`"), e))?;
        let path = dir.join("promotion.json");
        std::fs::write(&path, self.json())
            .map_err(|e| Error::io(format!("writing `{path}`"), e))?;
        Ok(path)
    }

    /// Appends the promotion as a Markdown table to a CI job summary (`$GITHUB_STEP_SUMMARY`).
    pub fn append_markdown(&self, path: &std::path::Path) -> Result<()> {
        use std::fmt::Write;
        let mut md = String::from(
            "### cargo docker-release promote\n\n| service | version | state | moved | unchanged | left alone |\n|---|---|---|---|---|---|\n",
        );
        for s in &self.services {
            let names = |f: &dyn Fn(TagMove) -> bool| -> String {
                s.tags
                    .iter()
                    .filter(|t| t.kind.is_floating() && f(t.outcome))
                    .map(|t| format!("`{}`", t.name))
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:?} | {} | {} | {} |",
                s.package,
                s.version,
                s.state,
                names(&|o| o == TagMove::Moved),
                names(&|o| o == TagMove::Unchanged),
                names(&|o| !matches!(o, TagMove::Moved | TagMove::Unchanged)),
            );
        }
        for s in self.services.iter().filter(|s| !s.problems.is_empty()) {
            for p in &s.problems {
                let _ = writeln!(md, "\n- **{}**: {p}", s.package);
            }
        }
        use std::io::Write as _;
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(md.as_bytes()))
            .map_err(|e| Error::io(format!("writing the job summary `{}`", path.display()), e))
    }

    /// The summary for people: per service its state, digest and what each floating tag did.
    pub fn human(&self) -> String {
        use std::fmt::Write;
        let mut out = String::new();
        for s in &self.services {
            let state = match s.state {
                PromotionState::Promoted => "promoted",
                PromotionState::NotPromoted => "not promoted (another service failed its check)",
                PromotionState::Failed => "FAILED its registry check",
            };
            let _ = writeln!(out, "{} {} -> {}: {state}", s.package, s.version, s.image);
            if let Some(digest) = &s.digest {
                let _ = writeln!(out, "  digest   {digest}");
            }
            let list = |outcome: TagMove| -> Vec<&str> {
                s.tags
                    .iter()
                    .filter(|t| t.outcome == outcome)
                    .map(|t| t.name.as_str())
                    .collect()
            };
            for (label, outcome) in [
                ("verified", TagMove::Verified),
                ("moved", TagMove::Moved),
                ("unchanged", TagMove::Unchanged),
                ("newer", TagMove::Newer),
                ("held", TagMove::HeldBack),
                ("not moved", TagMove::NotMoved),
            ] {
                let tags = list(outcome);
                if !tags.is_empty() {
                    let _ = writeln!(out, "  {label:<9}{}", tags.join(", "));
                }
            }
            for p in &s.problems {
                let _ = writeln!(out, "  problem  {p}");
            }
        }
        let _ = writeln!(out, "total {:.1}s", self.duration_ms as f64 / 1000.0);
        out
    }
}

mod registry;
pub use registry::{Registries, connect as connect_registries};

#[cfg(test)]
mod tests;
