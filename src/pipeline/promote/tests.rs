//! The promotion policy against an in-memory registry that records every request.

use std::cell::RefCell;
use std::collections::BTreeMap;

use camino::Utf8Path;
use chrono::{TimeZone, Utc};
use semver::Version;

use super::*;
use crate::config::{ManifestSource, PackageFacts, resolve};
use crate::git::Revision;
use crate::plan::{PackageInput, PlanOptions, plan_image};
use crate::registry::DOCKER_MANIFEST;

const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
const OLD_SHA: &str = "fedcba9876543210fedcba9876543210fedcba98";

/// Called with the registry, image and tag of a PUT that just landed.
type PutHook = Box<dyn FnMut(&FakeRegistry, &str, &str)>;

/// A registry in memory: tags -> manifests, manifest digest -> config labels.
#[derive(Default)]
struct FakeRegistry {
    tags: RefCell<BTreeMap<(String, String), Manifest>>,
    labels: RefCell<BTreeMap<String, BTreeMap<String, String>>>,
    requests: RefCell<Vec<String>>,
    /// Runs after each PUT (a concurrent promotion overwriting the tag right after).
    after_put: RefCell<Option<PutHook>>,
}

impl FakeRegistry {
    fn manifest_of(&self, package: &str, version: &str, sha: &str) -> Manifest {
        let config =
            crate::registry::sha256_digest(format!("{package}-{version}-{sha}").as_bytes());
        let body = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_MANIFEST}","config":{{"digest":"{config}"}},"layers":[]}}"#
        );
        Manifest::parse(body.into_bytes().into(), Some(DOCKER_MANIFEST)).unwrap()
    }

    /// The immutable part of a release of `image` at `version` from `sha`, labelled as `plan` is.
    fn push(&self, plan: &ImagePlan, tags: &[&str]) -> Manifest {
        let manifest = self.manifest_of(&plan.package, &plan.version, &plan.revision);
        let mut labels = plan.labels.clone();
        labels.insert(LABEL_CI_RUN.into(), "https://ci/run/other-job".into());
        self.labels
            .borrow_mut()
            .insert(manifest.digest.clone(), labels);
        for tag in tags {
            self.set(&plan.image, tag, &manifest);
        }
        manifest
    }

    fn set(&self, image: &str, tag: &str, manifest: &Manifest) {
        self.tags
            .borrow_mut()
            .insert((image.into(), tag.into()), manifest.clone());
    }

    fn digest(&self, image: &str, tag: &str) -> Option<String> {
        self.tags
            .borrow()
            .get(&(image.into(), tag.into()))
            .map(|m| m.digest.clone())
    }

    fn count(&self, prefix: &str) -> usize {
        self.requests
            .borrow()
            .iter()
            .filter(|r| r.starts_with(prefix))
            .count()
    }
}

impl ManifestStore for FakeRegistry {
    async fn tags(&self, image: &str) -> Result<Vec<String>> {
        self.requests.borrow_mut().push(format!("LIST {image}"));
        Ok(self
            .tags
            .borrow()
            .keys()
            .filter(|(i, _)| i == image)
            .map(|(_, t)| t.clone())
            .collect())
    }

    async fn manifest(&self, image: &str, reference: &str) -> Result<Option<Manifest>> {
        self.requests
            .borrow_mut()
            .push(format!("GET {image}:{reference}"));
        Ok(self
            .tags
            .borrow()
            .get(&(image.into(), reference.into()))
            .cloned())
    }

    async fn config_labels(
        &self,
        image: &str,
        manifest: &Manifest,
    ) -> Result<BTreeMap<String, String>> {
        self.requests
            .borrow_mut()
            .push(format!("BLOB {image}@{}", manifest.digest));
        Ok(self
            .labels
            .borrow()
            .get(&manifest.digest)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_manifest(&self, image: &str, tag: &str, manifest: &Manifest) -> Result<()> {
        self.requests
            .borrow_mut()
            .push(format!("PUT {image}:{tag}"));
        self.set(image, tag, manifest);
        if let Some(hook) = self.after_put.borrow_mut().as_mut() {
            hook(self, image, tag);
        }
        Ok(())
    }
}

fn plan_for(package: &str, version: &str, sha: &str, known: &[Version]) -> ImagePlan {
    let text = format!(
        "[package]\nname = \"{package}\"\nversion = \"{version}\"\n\n[package.metadata.docker]\nimage = \"127.0.0.1:5000/acme/{package}\"\n"
    );
    let src = ManifestSource::parse("Cargo.toml", text).unwrap();
    let facts = PackageFacts {
        name: package,
        dir: Utf8Path::new("/w/svc"),
        workspace_root: Utf8Path::new("/w"),
        bins: vec![package.into()],
    };
    let config = resolve(&facts, None, &src).unwrap();
    let input = PackageInput {
        name: package.into(),
        version: Version::parse(version).unwrap(),
        description: None,
        repository: None,
        homepage: None,
        documentation: None,
        license: None,
        authors: vec![],
        dir: "/w/svc".into(),
        manifest_path: "/w/svc/Cargo.toml".into(),
        workspace_root: "/w".into(),
        target_dir: "/w/target".into(),
        is_root: false,
    };
    let git = Revision {
        sha: sha.into(),
        commit_time: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
        branch: Some("main".into()),
        dirty: false,
        dirty_files: vec![],
        head_tags: vec![],
        inputs: vec![],
    };
    let options = PlanOptions {
        allow_dirty: false,
        ci_run_url: Some("https://ci/run/promote-job".into()),
        features: Default::default(),
    };
    plan_image(&input, &config, &git, known, &options).unwrap()
}

/// The immutable tags a `--stage immutable` job pushes for `plan`.
fn immutable(plan: &ImagePlan) -> Vec<&str> {
    immutable_tags(plan).collect()
}

async fn plan_from_registry(
    reg: &FakeRegistry,
    package: &str,
    version: &str,
    sha: &str,
) -> ImagePlan {
    let image = format!("127.0.0.1:5000/acme/{package}");
    let known = known_releases(reg, &[&image]).await.unwrap();
    plan_for(package, version, sha, &known[&image])
}

fn outcome(report: &ServicePromotion, tag: &str) -> TagMove {
    report
        .tags
        .iter()
        .find(|t| t.name == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {report:?}"))
        .outcome
}

#[test]
fn immutable_stage_holds_every_floating_tag() {
    let mut plan = plan_for("orders", "1.4.2", SHA, &[]);
    immutable_stage(&mut plan);
    let applied: Vec<&str> = plan.applied_tags().map(|t| t.name.as_str()).collect();
    assert_eq!(applied, ["1.4.2", "0123456"]);
    let latest = plan.tags.iter().find(|t| t.name == "latest").unwrap();
    assert!(latest.reason.contains("promote"), "{}", latest.reason);
}

#[tokio::test]
async fn every_service_checked_then_all_floating_tags_move_by_manifest_copy() {
    let reg = FakeRegistry::default();
    let names = ["orders", "billing", "search"];
    let mut pushed = Vec::new();
    for name in names {
        let p = plan_for(name, "1.4.2", SHA, &[]);
        pushed.push(reg.push(&p, &immutable(&p)));
    }
    let mut plans = Vec::new();
    for name in names {
        plans.push(plan_from_registry(&reg, name, "1.4.2", SHA).await);
    }
    let refs: Vec<&ImagePlan> = plans.iter().collect();
    let (report, error) = promote(&reg, &refs, &Shell::silent()).await;
    assert!(error.is_none(), "{error:?}");
    for ((service, plan), manifest) in report.iter().zip(&plans).zip(&pushed) {
        assert_eq!(service.state, PromotionState::Promoted);
        assert_eq!(service.digest.as_deref(), Some(manifest.digest.as_str()));
        for tag in ["1.4", "1", "latest"] {
            assert_eq!(outcome(service, tag), TagMove::Moved);
            assert_eq!(reg.digest(&plan.image, tag), Some(manifest.digest.clone()));
        }
        assert_eq!(outcome(service, "1.4.2"), TagMove::Verified);
    }
    // 3 floating tags per service, each one PUT; nothing else written.
    assert_eq!(reg.count("PUT"), 9);

    // A re-run is a no-op: nothing is written.
    let before = reg.count("PUT");
    let (report, error) = promote(&reg, &refs, &Shell::silent()).await;
    assert!(error.is_none());
    assert_eq!(reg.count("PUT"), before);
    assert!(
        report
            .iter()
            .all(|s| s.tags.iter().all(|t| t.outcome != TagMove::Moved))
    );
    assert_eq!(outcome(&report[0], "latest"), TagMove::Unchanged);
}

#[tokio::test]
async fn a_missing_service_moves_nothing_and_is_named() {
    let reg = FakeRegistry::default();
    let orders = plan_for("orders", "1.0.0", SHA, &[]);
    reg.push(&orders, &immutable(&orders));
    let billing = plan_for("billing", "1.0.0", SHA, &[]);
    let refs = [&orders, &billing];
    let (report, error) = promote(&reg, &refs, &Shell::silent()).await;
    let error = error.expect("the promotion fails");
    assert_eq!(error.exit_code(), 1);
    let text = error.to_string();
    assert!(text.contains("billing"), "{text}");
    assert!(!text.contains("orders:"), "{text}");
    assert_eq!(report[0].state, PromotionState::NotPromoted);
    assert_eq!(report[1].state, PromotionState::Failed);
    assert_eq!(outcome(&report[0], "latest"), TagMove::NotMoved);
    assert_eq!(reg.count("PUT"), 0);
    assert_eq!(reg.digest(&orders.image, "latest"), None);
}

#[tokio::test]
async fn an_image_of_another_revision_or_with_other_labels_fails_the_check() {
    let reg = FakeRegistry::default();
    // The exact tag was pushed from an older commit.
    let old = plan_for("orders", "1.0.0", OLD_SHA, &[]);
    reg.push(&old, &["1.0.0"]);
    let new = plan_for("orders", "1.0.0", SHA, &[]);
    reg.push(&new, &["0123456"]);
    let (report, error) = promote(&reg, &[&new], &Shell::silent()).await;
    let text = error.unwrap().to_string();
    assert!(text.contains("is manifest"), "{text}");
    assert_eq!(report[0].state, PromotionState::Failed);

    // One manifest for both tags, but its labels say another package.
    let reg = FakeRegistry::default();
    let manifest = reg.push(&new, &immutable(&new));
    reg.labels
        .borrow_mut()
        .get_mut(&manifest.digest)
        .unwrap()
        .insert("org.opencontainers.image.title".into(), "impostor".into());
    let (_, error) = promote(&reg, &[&new], &Shell::silent()).await;
    let text = error.unwrap().to_string();
    assert!(text.contains("org.opencontainers.image.title"), "{text}");
    assert!(text.contains("impostor"), "{text}");
}

#[tokio::test]
async fn floating_tags_move_only_forward_as_the_registry_decides() {
    let reg = FakeRegistry::default();
    let v2 = plan_for("orders", "2.0.0", OLD_SHA, &[]);
    let m2 = reg.push(&v2, &["2.0.0", "2.0", "2", "latest"]);
    let v19 = plan_from_registry(&reg, "orders", "1.9.0", SHA).await;
    reg.push(&v19, &immutable(&v19));
    let (report, error) = promote(&reg, &[&v19], &Shell::silent()).await;
    assert!(error.is_none());
    assert_eq!(outcome(&report[0], "1.9"), TagMove::Moved);
    assert_eq!(outcome(&report[0], "1"), TagMove::Moved);
    assert_eq!(outcome(&report[0], "latest"), TagMove::HeldBack);
    assert_eq!(reg.digest(&v19.image, "latest"), Some(m2.digest));
}

#[tokio::test]
async fn a_tag_that_already_names_a_newer_release_is_skipped_with_a_note() {
    let reg = FakeRegistry::default();
    let older = plan_for("orders", "1.0.1", OLD_SHA, &[]);
    reg.push(&older, &immutable(&older));
    // Planned before 1.1.0 existed in the registry...
    let older = plan_from_registry(&reg, "orders", "1.0.1", OLD_SHA).await;
    // ...which a concurrent promotion then moved `1` and `latest` to.
    let newer = plan_for("orders", "1.1.0", SHA, &[]);
    let m_newer = reg.push(&newer, &["1.1.0", "0123456", "1.1", "1", "latest"]);
    let (report, error) = promote(&reg, &[&older], &Shell::silent()).await;
    assert!(error.is_none());
    assert_eq!(outcome(&report[0], "1.0"), TagMove::Moved);
    assert_eq!(outcome(&report[0], "1"), TagMove::Newer);
    assert_eq!(outcome(&report[0], "latest"), TagMove::Newer);
    let note = &report[0]
        .tags
        .iter()
        .find(|t| t.name == "1")
        .unwrap()
        .reason;
    assert!(note.contains("1.1.0"), "{note}");
    assert_eq!(reg.digest(&older.image, "latest"), Some(m_newer.digest));
}

#[tokio::test]
async fn an_older_promotion_overwriting_between_read_and_move_is_moved_forward_again() {
    let reg = FakeRegistry::default();
    let older = plan_for("orders", "1.0.1", OLD_SHA, &[]);
    let m_older = reg.push(&older, &immutable(&older));
    let newer = plan_for("orders", "1.1.0", SHA, &[]);
    let m_newer = reg.push(&newer, &immutable(&newer));
    let newer = plan_from_registry(&reg, "orders", "1.1.0", SHA).await;
    // The older promotion's PUT (its re-read saw no newer release) lands right after ours.
    let done = RefCell::new(std::collections::BTreeSet::<String>::new());
    let image = older.image.clone();
    *reg.after_put.borrow_mut() = Some(Box::new(move |reg, _, tag| {
        if done.borrow_mut().insert(tag.to_owned()) {
            reg.set(&image, tag, &m_older);
        }
    }));
    let (report, error) = promote(&reg, &[&newer], &Shell::silent()).await;
    assert!(error.is_none(), "{error:?}");
    for tag in ["1", "latest"] {
        assert_eq!(reg.digest(&newer.image, tag), Some(m_newer.digest.clone()));
        assert_eq!(outcome(&report[0], tag), TagMove::Moved);
    }
}

#[tokio::test]
async fn requests_grow_with_services_not_tags_or_history() {
    let reg = FakeRegistry::default();
    let mut plans = Vec::new();
    for i in 0..20 {
        let name = format!("svc{i}");
        // Some history per service: ten older releases.
        for minor in 0..10 {
            let old = plan_for(&name, &format!("1.{minor}.0"), OLD_SHA, &[]);
            reg.push(&old, &[&old.version]);
        }
        let p = plan_for(&name, "1.10.0", SHA, &[]);
        reg.push(&p, &immutable(&p));
        plans.push(p);
    }
    reg.requests.borrow_mut().clear();
    let refs: Vec<&ImagePlan> = plans.iter().collect();
    let (_, error) = promote(&reg, &refs, &Shell::silent()).await;
    assert!(error.is_none());
    // Per service: 2 immutable GETs + 1 config + 3 floating tags x (GET, PUT, GET).
    assert_eq!(reg.requests.borrow().len(), 20 * (2 + 1 + 3 * 3));
}
