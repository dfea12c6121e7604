//! The tag step: the plan's tags on the image that passed, and nothing on anything else.
//!
//! Known releases (for the forward-only rules) are the semver tags the local engine already has
//! for each repository. Every immutable tag (`X.Y.Z`, SHA) is checked before any tag is applied:
//! one that points at a different image is a [`Error::TagConflict`] unless `--force`, so a refused
//! release leaves no half-tagged state. Floating tags (`X.Y`, `X`, `latest`) move only when every
//! selected service passed.

pub use crate::report::outcomes::TagOutcome;

use crate::engine::images::ImageStore;
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, KnownReleases, OCI, released_versions};
use crate::ui::Shell;

/// The semver releases each repository already has in the local engine, read in one batch (`1.4.2`, `1.5.0-rc.1`,
/// `1.4.2_ab` read back as `1.4.2+ab`).
pub async fn known_releases(
    store: &impl ImageStore,
    repositories: &[&str],
) -> Result<KnownReleases> {
    let mut known = KnownReleases::new();
    // One listing for every repository of the release, not one round trip per service.
    for (repo, tags) in store.repositories_tags(repositories).await? {
        known.insert(repo, released_versions(tags.iter().map(|t| t.tag.as_str())));
    }
    Ok(known)
}

/// Before building: an immutable tag that already names an image of another revision or package
/// can only conflict (the new image will differ). Checked for every service at once.
pub async fn preflight(store: &impl ImageStore, plans: &[&ImagePlan], force: bool) -> Result<()> {
    let mut conflicts = Vec::new();
    // One listing says which tags exist at all; only those are inspected for their revision.
    let mut repositories: Vec<&str> = plans.iter().map(|p| p.image.as_str()).collect();
    repositories.sort_unstable();
    repositories.dedup();
    let existing_tags = store.repositories_tags(&repositories).await?;
    for plan in plans {
        for tag in plan.applied_tags().filter(|t| t.kind.is_immutable()) {
            let exists = existing_tags
                .get(&plan.image)
                .is_some_and(|tags| tags.iter().any(|t| t.tag == tag.name));
            if !exists {
                continue;
            }
            let reference = format!("{}:{}", plan.image, tag.name);
            if let Some(existing) = store.image(&reference).await? {
                let revision = existing.labels.get(&format!("{OCI}.revision"));
                if revision.map(String::as_str) != Some(plan.revision.as_str()) {
                    conflicts.push(format!(
                        "{reference} is image {} from revision {}",
                        crate::ui::short_id(&existing.id),
                        revision.map_or("(unknown)", |r| &r[..r.len().min(12)])
                    ));
                }
            }
        }
    }
    conflict(conflicts, force, "")
}

/// Just before tagging: every immutable tag either does not exist or already names `image_id`.
pub async fn check_conflicts(
    store: &impl ImageStore,
    released: &[(&ImagePlan, &str)],
    force: bool,
) -> Result<()> {
    let mut conflicts = Vec::new();
    for (plan, image_id) in released {
        for tag in plan.applied_tags().filter(|t| t.kind.is_immutable()) {
            let reference = format!("{}:{}", plan.image, tag.name);
            if let Some(existing) = store.image(&reference).await?
                && existing.id != *image_id
            {
                conflicts.push(format!(
                    "{reference} is image {}, not the tested {}",
                    crate::ui::short_id(&existing.id),
                    crate::ui::short_id(image_id)
                ));
            }
        }
    }
    conflict(conflicts, force, "")
}

/// The conflicts found `where_` (see [`conflict_error`]) as an error, unless `force`.
pub fn conflict(conflicts: Vec<String>, force: bool, where_: &str) -> Result<()> {
    if conflicts.is_empty() || force {
        return Ok(());
    }
    Err(conflict_error(&conflicts, where_))
}

/// Immutable tags (`where_`: in the engine, or ` in the registry`) that already name other
/// images: exit 2, each one listed.
pub fn conflict_error(conflicts: &[String], where_: &str) -> Error {
    Error::TagConflict {
        message: format!(
            "immutable tags already point to other images{where_}:\n{}",
            conflicts
                .iter()
                .map(|c| format!("  {c}"))
                .collect::<Vec<_>>()
                .join("\n")
        ),
        help: Some(
            "bump the version in Cargo.toml for a new release, or pass --force to overwrite them"
                .into(),
        ),
    }
}

/// Applies the plan's tags to the images that passed: first every non-floating tag of every
/// image, then the floating ones, and those only when `all_passed`.
///
/// Returns, per image in the order given, what happened to each of its tags.
pub async fn apply_tags(
    store: &impl ImageStore,
    released: &[(&ImagePlan, &str)],
    all_passed: bool,
    shell: &Shell,
) -> Result<Vec<Vec<TagOutcome>>> {
    let mut outcomes: Vec<Vec<TagOutcome>> = released
        .iter()
        .map(|(plan, _)| {
            plan.tags
                .iter()
                .map(|t| TagOutcome::unapplied(t, false, ""))
                .collect()
        })
        .collect();
    for floating in [false, true] {
        for ((plan, image_id), outcomes) in released.iter().zip(outcomes.iter_mut()) {
            for outcome in outcomes
                .iter_mut()
                .filter(|o| o.planned && o.kind.is_floating() == floating)
            {
                if floating && !all_passed {
                    outcome.reason = "held back: another selected service did not pass".to_owned();
                    continue;
                }
                let reference = format!("{}:{}", plan.image, outcome.name);
                let before = store.image(&reference).await?.map(|i| i.id);
                if before.as_deref() != Some(*image_id) {
                    store.tag(image_id, &plan.image, &outcome.name).await?;
                    outcome.moved = true;
                    outcome.previous = before;
                }
                outcome.applied = true;
            }
            if !floating || all_passed {
                let names = |moved: bool| -> Vec<&str> {
                    outcomes
                        .iter()
                        .filter(|o| o.applied && o.moved == moved)
                        .filter(|o| o.kind.is_floating() == floating)
                        .map(|o| o.name.as_str())
                        .collect()
                };
                let (moved, kept) = (names(true), names(false));
                if !moved.is_empty() {
                    shell.status("Tagged", format!("{} {}", plan.image, moved.join(", ")));
                }
                if !kept.is_empty() {
                    shell.status(
                        "Unchanged",
                        format!("{} {} (already this image)", plan.image, kept.join(", ")),
                    );
                }
            }
        }
    }
    Ok(outcomes)
}

#[cfg(test)]
pub(crate) mod fake {
    //! A recording [`ImageStore`] for unit tests of the steps.

    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use crate::engine::images::{ImageInfo, ImageStore, RepoTag, split_reference};
    use crate::error::Result;

    /// Images by ID, references to IDs, and every call that changed something.
    #[derive(Debug, Default)]
    pub struct FakeStore {
        pub images: Mutex<BTreeMap<String, ImageInfo>>,
        pub refs: Mutex<BTreeMap<String, String>>,
        pub calls: Mutex<Vec<String>>,
    }

    impl FakeStore {
        pub fn with_image(self, id: &str, labels: &[(&str, &str)], refs: &[&str]) -> Self {
            self.images.lock().unwrap().insert(
                id.to_owned(),
                ImageInfo {
                    id: id.to_owned(),
                    labels: labels
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                    ..Default::default()
                },
            );
            for r in refs {
                self.refs
                    .lock()
                    .unwrap()
                    .insert((*r).to_owned(), id.to_owned());
            }
            self
        }

        pub fn calls(&self) -> Vec<String> {
            self.calls.lock().unwrap().clone()
        }

        pub fn points_at(&self, reference: &str) -> Option<String> {
            self.refs.lock().unwrap().get(reference).cloned()
        }
    }

    impl ImageStore for FakeStore {
        async fn image(&self, reference: &str) -> Result<Option<ImageInfo>> {
            let id = self
                .refs
                .lock()
                .unwrap()
                .get(reference)
                .cloned()
                .unwrap_or_else(|| reference.to_owned());
            let refs = self.refs.lock().unwrap();
            Ok(self.images.lock().unwrap().get(&id).map(|i| ImageInfo {
                repo_tags: refs
                    .iter()
                    .filter(|(_, v)| **v == id)
                    .map(|(k, _)| k.clone())
                    .collect(),
                ..i.clone()
            }))
        }

        async fn repository_tags(&self, repo: &str) -> Result<Vec<RepoTag>> {
            Ok(self
                .refs
                .lock()
                .unwrap()
                .iter()
                .filter_map(|(r, id)| {
                    let (name, tag) = split_reference(r)?;
                    (name == repo).then(|| RepoTag {
                        tag: tag.to_owned(),
                        image_id: id.clone(),
                    })
                })
                .collect())
        }

        async fn images_labelled(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>> {
            Ok(self
                .images
                .lock()
                .unwrap()
                .values()
                .filter(|i| {
                    labels
                        .iter()
                        .all(|(k, v)| i.labels.get(*k).map(String::as_str) == Some(*v))
                })
                .cloned()
                .collect())
        }

        async fn tag(&self, image_id: &str, repo: &str, tag: &str) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("tag {repo}:{tag} -> {image_id}"));
            self.refs
                .lock()
                .unwrap()
                .insert(format!("{repo}:{tag}"), image_id.to_owned());
            Ok(())
        }

        async fn untag(&self, reference: &str) -> Result<()> {
            self.calls
                .lock()
                .unwrap()
                .push(format!("untag {reference}"));
            self.refs.lock().unwrap().remove(reference);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fake::FakeStore;
    use super::*;
    use crate::plan::{TagDecision, TagKind};
    use semver::Version;

    pub(crate) fn plan(image: &str, version: &str, revision: &str) -> ImagePlan {
        let v = Version::parse(version).unwrap();
        let mut tags = vec![TagDecision {
            name: version.into(),
            applied: true,
            kind: TagKind::Exact,
            reason: "exact".into(),
        }];
        tags.extend(crate::plan::floating_tags_for(&v, &[]));
        tags.push(TagDecision {
            name: revision[..7].into(),
            applied: true,
            kind: TagKind::Sha,
            reason: "sha".into(),
        });
        tags.push(TagDecision {
            name: "latest".into(),
            applied: true,
            kind: TagKind::Latest,
            reason: "latest".into(),
        });
        crate::pipeline::test_stage::tests_support::image_plan(image, version, revision, tags)
    }

    fn run<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(f)
    }

    const REV_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const REV_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

    #[test]
    fn known_releases_are_the_semver_tags_of_the_repository() {
        let store = FakeStore::default()
            .with_image("sha256:1", &[], &["acme/app:1.2.3", "acme/app:latest"])
            .with_image("sha256:2", &[], &["acme/app:1.3.0_ab", "other/app:9.9.9"]);
        let known = run(known_releases(&store, &["acme/app"])).unwrap();
        assert_eq!(
            known["acme/app"],
            [
                Version::parse("1.2.3").unwrap(),
                Version::parse("1.3.0+ab").unwrap()
            ]
        );
    }

    #[test]
    fn a_conflicting_immutable_tag_stops_everything_before_any_tag_moves() {
        let ok = plan("acme/ok", "1.0.0", REV_A);
        let bad = plan("acme/bad", "2.0.0", REV_B);
        let store = FakeStore::default().with_image(
            "sha256:old",
            &[("org.opencontainers.image.revision", REV_A)],
            &["acme/bad:2.0.0"],
        );
        let e = run(check_conflicts(
            &store,
            &[(&ok, "sha256:new1"), (&bad, "sha256:new2")],
            false,
        ))
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("acme/bad:2.0.0"), "{e}");
        assert!(store.calls().is_empty());
        let e = run(preflight(&store, &[&ok, &bad], false)).unwrap_err();
        assert!(matches!(e, Error::TagConflict { .. }));
        run(preflight(&store, &[&ok, &bad], true)).unwrap();
    }

    #[test]
    fn the_same_image_again_is_not_a_conflict_and_moves_nothing() {
        let p = plan("acme/app", "1.0.0", REV_A);
        let store = FakeStore::default().with_image(
            "sha256:img",
            &[("org.opencontainers.image.revision", REV_A)],
            &[
                "acme/app:1.0.0",
                "acme/app:1.0",
                "acme/app:1",
                "acme/app:aaaaaaa",
                "acme/app:latest",
            ],
        );
        run(preflight(&store, &[&p], false)).unwrap();
        run(check_conflicts(&store, &[(&p, "sha256:img")], false)).unwrap();
        let out = run(apply_tags(
            &store,
            &[(&p, "sha256:img")],
            true,
            &Shell::silent(),
        ))
        .unwrap();
        assert!(store.calls().is_empty());
        assert!(out[0].iter().all(|o| o.applied && !o.moved));
    }

    #[test]
    fn floating_tags_wait_for_every_service() {
        let a = plan("acme/a", "1.0.0", REV_A);
        let store = FakeStore::default().with_image("sha256:a", &[], &[]);
        let out = run(apply_tags(
            &store,
            &[(&a, "sha256:a")],
            false,
            &Shell::silent(),
        ))
        .unwrap();
        assert_eq!(
            store.calls(),
            [
                "tag acme/a:1.0.0 -> sha256:a",
                "tag acme/a:aaaaaaa -> sha256:a"
            ]
        );
        let latest = out[0].iter().find(|o| o.name == "latest").unwrap();
        assert!(!latest.applied && latest.reason.contains("did not pass"));

        let store = FakeStore::default().with_image("sha256:old", &[], &["acme/a:latest"]);
        let out = run(apply_tags(
            &store,
            &[(&a, "sha256:a")],
            true,
            &Shell::silent(),
        ))
        .unwrap();
        assert_eq!(
            store.points_at("acme/a:latest").as_deref(),
            Some("sha256:a")
        );
        let latest = out[0].iter().find(|o| o.name == "latest").unwrap();
        assert!(latest.moved);
        assert_eq!(latest.previous.as_deref(), Some("sha256:old"));
        // Immutable tags first, floating ones after.
        assert_eq!(
            store.calls().last().unwrap(),
            "tag acme/a:latest -> sha256:a"
        );
        assert_eq!(store.calls()[0], "tag acme/a:1.0.0 -> sha256:a");
    }
}
