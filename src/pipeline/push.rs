//! The push step (`--push`): the registry is the source of truth for the release.
//!
//! Before anything is built: every registry is pinged and authenticated
//! ([`crate::registry`]), its tags are the known releases of the forward-only rule, and
//! an immutable tag (`X.Y.Z`, the SHA tag, immutable extra tags) that already exists there from
//! another revision is a conflict (exit 2) unless `--force`, which warns naming the image it
//! replaces. A service whose whole release the registry already holds from this revision (a
//! retried job) is not built again ([`Pusher::released_in_registry`]). After the tests: the same tags must hold the tested image; right before each
//! immutable tag is pushed it is read again (another CI job may have pushed it since). An image
//! the tool assembled is pushed by the tool's registry client from its OCI layout (blobs the
//! registry lacks, then the manifest under each tag), so the registry's digest is the one
//! computed before the build; any other image goes through the engine with the Docker config's
//! credentials. Every pushed tag is read back: the registry's digest must be the one pushed
//! (or the engine reported), and it must be the tested image (its config digest with the
//! classic image store, the manifest digest itself with containerd's).

pub use crate::report::outcomes::TagPush;
use std::collections::{BTreeMap, BTreeSet};

use super::tag::{conflict, conflict_error};
use crate::engine::Engine;
use crate::engine::info::{ImageStore, PushFacts};
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, KnownReleases, OCI, released_versions};
use crate::registry::{BlobPush, Manifest, Registries, RegistryClient, Target};
use crate::ui::Shell;
use crate::ui::short_id;

/// An immutable tag found in the registry before the build.
#[derive(Debug, Clone)]
struct Existing {
    digest: String,
    config_digest: Option<String>,
    revision: Option<String>,
}

/// Where one image repository is pushed and how.
/// The registries of the selected services: one authenticated client per host.
#[derive(Debug)]
pub struct Pusher {
    registries: Registries,
    store: ImageStore,
    listed: BTreeMap<String, BTreeSet<String>>,
    existing: BTreeMap<(String, String), Existing>,
}

impl Pusher {
    /// Credentials for every image's registry from the Docker config (read once), and a client
    /// per registry host, pinged and authenticated: a refused or unreachable registry stops the
    /// release here.
    pub async fn connect(facts: &PushFacts, images: &[&str]) -> Result<Self> {
        Ok(Pusher {
            registries: Registries::connect(images, &facts.insecure, true).await?,
            store: facts.store,
            listed: BTreeMap::new(),
            existing: BTreeMap::new(),
        })
    }

    /// Where `image` is pushed and the client of its registry.
    pub fn registry(&self, image: &str) -> Result<(&Target, &RegistryClient)> {
        self.registries.get(image, "push")
    }

    /// Replaces the engine's known releases by the registry's: every tag of every repository
    /// (all pages), kept for the conflict check.
    pub async fn known_releases(&mut self, known: &mut KnownReleases) -> Result<()> {
        let images: Vec<String> = self.registries.images().map(str::to_owned).collect();
        for image in images {
            let (target, client) = self.registry(&image)?;
            let tags = client.tags(&target.repository).await?;
            known.insert(
                image.clone(),
                released_versions(tags.iter().map(String::as_str)),
            );
            self.listed.insert(image, tags.into_iter().collect());
        }
        Ok(())
    }

    /// Before the build: an immutable tag the plan applies that the registry already has from
    /// another revision (by its `org.opencontainers.image.revision` label) can only conflict.
    /// Every service is checked at once; with `force` each replaced image is named in a warning.
    pub async fn preflight(
        &mut self,
        plans: &[&ImagePlan],
        force: bool,
        shell: &Shell,
    ) -> Result<()> {
        let mut conflicts = Vec::new();
        let mut found = Vec::new();
        for plan in plans {
            let (target, client) = self.registry(&plan.image)?;
            let listed = self.listed.get(&plan.image).cloned().unwrap_or_default();
            for tag in plan.applied_tags().filter(|t| t.kind.is_immutable()) {
                if !listed.contains(&tag.name) {
                    continue;
                }
                let Some((manifest, config)) = client.labels(&target.repository, &tag.name).await?
                else {
                    continue;
                };
                let existing = Existing {
                    digest: manifest.digest.clone(),
                    config_digest: manifest.config_digest.clone(),
                    revision: config.labels.get(&format!("{OCI}.revision")).cloned(),
                };
                if existing.revision.as_deref() != Some(plan.revision.as_str()) {
                    let what = format!(
                        "{}:{} in registry {} is {} from revision {}",
                        plan.image,
                        tag.name,
                        target.host,
                        existing.digest,
                        existing
                            .revision
                            .as_deref()
                            .map_or("(unknown)", |r| &r[..r.len().min(12)])
                    );
                    if force {
                        shell.warn(format!("--force: {what}; it will be replaced"));
                    }
                    conflicts.push(what);
                }
                found.push(((plan.image.clone(), tag.name.clone()), existing));
            }
        }
        self.existing.extend(found);
        conflict(conflicts, force, " in the registry")
    }

    /// Whether the registry already holds this service's whole release: every tag the plan
    /// applies names one manifest, whose image carries this revision. That is a re-run of a
    /// finished release (a retried CI job, often on a fresh runner whose rebuild would not be
    /// bit-identical): there is nothing to build, test or push. Returns the manifest digest.
    /// Call after [`Self::preflight`]; a dirty build is never taken as released.
    pub async fn released_in_registry(&self, plan: &ImagePlan) -> Result<Option<String>> {
        let (target, client) = self.registry(&plan.image)?;
        let mut digest: Option<&str> = None;
        let mut floating = Vec::new();
        for tag in plan.applied_tags() {
            if !tag.kind.is_immutable() {
                floating.push(tag.name.as_str());
                continue;
            }
            let Some(existing) = self.existing.get(&(plan.image.clone(), tag.name.clone())) else {
                return Ok(None);
            };
            if existing.revision.as_deref() != Some(plan.revision.as_str())
                || digest.is_some_and(|d| d != existing.digest)
            {
                return Ok(None);
            }
            digest = Some(&existing.digest);
        }
        let Some(digest) = digest.filter(|_| !plan.git.dirty) else {
            return Ok(None);
        };
        let listed = self.listed.get(&plan.image);
        for tag in floating {
            if !listed.is_some_and(|l| l.contains(tag))
                || client
                    .manifest_digest(&target.repository, tag)
                    .await?
                    .as_deref()
                    != Some(digest)
            {
                return Ok(None);
            }
        }
        Ok(Some(digest.to_owned()))
    }

    /// After the tests, before any tag: the immutable tags the registry holds must already be
    /// the tested images (same revision, rebuilt identically), unless `force`.
    pub fn check_conflicts(
        &self,
        released: &[(&ImagePlan, &str)],
        force: bool,
        shell: &Shell,
    ) -> Result<()> {
        let mut conflicts = Vec::new();
        for (plan, image_id) in released {
            for tag in plan.applied_tags().filter(|t| t.kind.is_immutable()) {
                let Some(existing) = self.existing.get(&(plan.image.clone(), tag.name.clone()))
                else {
                    continue;
                };
                if !self.is_image(
                    &existing.digest,
                    existing.config_digest.as_deref(),
                    image_id,
                ) && existing.revision.as_deref() == Some(plan.revision.as_str())
                {
                    let what = format!(
                        "{}:{} in the registry is {}, not the tested image {}",
                        plan.image,
                        tag.name,
                        existing.digest,
                        short_id(image_id)
                    );
                    if force {
                        shell.warn(format!("--force: {what}; it will be replaced"));
                    }
                    conflicts.push(what);
                }
            }
        }
        conflict(conflicts, force, " in the registry")
    }

    /// Whether a manifest (`digest`, `config_digest`) is the local image `image_id`, for this
    /// engine's image store.
    fn is_image(&self, digest: &str, config_digest: Option<&str>, image_id: &str) -> bool {
        is_tested_image(self.store, digest, config_digest, image_id)
    }

    /// Right before pushing immutable `tag`: it must hold what the preflight saw (nothing, or an
    /// image `--force` replaces), or already the tested image.
    async fn recheck(&self, plan: &ImagePlan, image_id: &str, tag: &str) -> Result<Option<String>> {
        let (target, client) = self.registry(&plan.image)?;
        let seen = self.existing.get(&(plan.image.clone(), tag.to_owned()));
        let Some(now) = client.manifest_digest(&target.repository, tag).await? else {
            return Ok(None);
        };
        if seen.is_some_and(|s| s.digest == now) {
            let seen = seen.expect("checked");
            let same = self.is_image(&seen.digest, seen.config_digest.as_deref(), image_id);
            return Ok((!same).then(|| seen.digest.clone()));
        }
        let manifest = client.manifest(&target.repository, tag).await?;
        if manifest
            .as_ref()
            .is_some_and(|m| self.is_image(&m.digest, m.config_digest.as_deref(), image_id))
        {
            return Ok(None);
        }
        Err(conflict_error(
            &[format!(
                "{}:{tag} appeared in registry {} as {now} after the check before the build (another job pushed it)",
                plan.image, target.host
            )],
            " in the registry; nothing more was pushed",
        ))
    }

    /// Pushes `tags` of `plan.image` (already tagged locally on the tested `image_id`), each
    /// immutable one re-checked right before, and reads every one back; stops at the first
    /// failure.
    pub async fn push_tags(
        &self,
        engine: &Engine,
        plan: &ImagePlan,
        image_id: &str,
        tags: &[&str],
        shell: &Shell,
    ) -> Result<Vec<TagPush>> {
        let mut pushed = Vec::new();
        if tags.is_empty() {
            return Ok(pushed);
        }
        let (target, client) = self.registry(&plan.image)?;
        // An image the tool assembled is pushed by the tool, byte for byte what was tested.
        let assembled = crate::image::store::read(
            &crate::image::store::layout_dir(&plan.target_dir, &plan.package),
            image_id,
        );
        let mut uploaded: Option<Uploaded> = None;
        let creds = target
            .credentials
            .as_ref()
            .map(|c| c.for_engine(&target.host));
        let bar = shell.spinner("Pushing", &format!("{}:{}", plan.image, tags[0]));
        let result = async {
            for tag in tags {
                let immutable = plan
                    .tags
                    .iter()
                    .any(|t| t.name == *tag && t.kind.is_immutable());
                let replaced = if immutable {
                    self.recheck(plan, image_id, tag).await?
                } else {
                    None
                };
                let head = format!("{}:{tag}", plan.image);
                bar.set_message(head.clone());
                let reported = match &assembled {
                    Some(image) => {
                        if uploaded.is_none() {
                            bar.set_message(format!("{head}: blobs"));
                            uploaded = Some(push_blobs(engine, client, target, image).await?);
                        }
                        bar.set_message(format!("{head}: manifest"));
                        let manifest = &image.manifest;
                        let digest = client
                            .put_manifest_bytes(
                                &target.repository,
                                tag,
                                &manifest.media_type,
                                manifest.data.clone().into(),
                            )
                            .await?;
                        Some(digest)
                    }
                    None => {
                        engine
                            .push(&plan.image, tag, creds.clone(), |status| {
                                bar.set_message(format!("{head}: {status}"));
                            })
                            .await?
                    }
                };
                let digest = self
                    .verify(plan, image_id, tag, reported.as_deref())
                    .await?;
                pushed.push(TagPush {
                    tag: (*tag).to_owned(),
                    digest,
                    verified: true,
                    replaced,
                });
            }
            Ok::<(), Error>(())
        }
        .await;
        bar.finish_and_clear();
        result?;
        for p in pushed.iter().filter(|p| p.replaced.is_some()) {
            shell.warn(format!(
                "--force: replaced {}:{} (was {}) in registry {}",
                plan.image,
                p.tag,
                p.replaced.as_deref().unwrap_or_default(),
                target.host
            ));
        }
        shell.status(
            "Pushed",
            format!(
                "{} {} ({}, verified{})",
                plan.image,
                tags.join(", "),
                pushed
                    .first()
                    .map(|p| p.digest.as_str())
                    .unwrap_or_default(),
                uploaded.map(|u| format!("; {u}")).unwrap_or_default()
            ),
        );
        Ok(pushed)
    }

    /// Reads `tag` back: the registry's manifest digest must be the one the engine reported, and
    /// the manifest the tested image. Returns the digest.
    async fn verify(
        &self,
        plan: &ImagePlan,
        image_id: &str,
        tag: &str,
        reported: Option<&str>,
    ) -> Result<String> {
        let (target, client) = self.registry(&plan.image)?;
        let reference = format!("{}:{tag}", plan.image);
        let failed = |why: String| {
            Error::step_with_help(
                "push",
                format!("registry {} (verify): {reference} {why}", target.host),
                "no floating tag was pushed; check what else writes to this repository",
            )
        };
        let manifest: Manifest = client
            .manifest(&target.repository, tag)
            .await?
            .ok_or_else(|| failed("is not in the registry after pushing it".to_owned()))?;
        match reported {
            Some(d) if d == manifest.digest => {}
            Some(d) => {
                return Err(failed(format!(
                    "is {} in the registry, but the engine pushed {d}",
                    manifest.digest
                )));
            }
            None => {
                return Err(failed(
                    "was pushed but the engine reported no digest".to_owned(),
                ));
            }
        }
        if !self.is_image(
            &manifest.digest,
            manifest.config_digest.as_deref(),
            image_id,
        ) {
            return Err(failed(format!(
                "is {} (image {}) in the registry, not the tested image {image_id}",
                manifest.digest,
                manifest.config_digest.as_deref().unwrap_or("(an index)")
            )));
        }
        Ok(manifest.digest)
    }
}

/// What the push of an assembled image's blobs sent.
#[derive(Debug, Clone, Copy, Default)]
struct Uploaded {
    blobs: usize,
    bytes: u64,
    present: usize,
    mounted: usize,
}

impl std::fmt::Display for Uploaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} blob(s) uploaded ({}), {} already there, {} mounted",
            self.blobs,
            crate::ui::human_bytes(self.bytes),
            self.present,
            self.mounted
        )
    }
}

/// Pushes the layers, then the config, of an assembled image to `target`: what the
/// registry has already is not sent again (a retried or repeated release uploads nothing). A
/// base layer is mounted from the base's repository when that is on the same registry, else
/// (or when the registry refuses the mount) downloaded from the base's registry and uploaded.
async fn push_blobs(
    engine: &Engine,
    client: &RegistryClient,
    target: &Target,
    image: &crate::image::Assembled,
) -> Result<Uploaded> {
    let repository = &target.repository;
    let mut done = Uploaded::default();
    let mut count = |pushed: BlobPush| match pushed {
        BlobPush::Present => done.present += 1,
        BlobPush::Mounted { .. } => done.mounted += 1,
        BlobPush::Uploaded { bytes } => {
            done.blobs += 1;
            done.bytes += bytes;
        }
    };
    if let Some(base) = &image.base {
        let same_host = base.host == target.host;
        let mut base_client: Option<RegistryClient> = None;
        for layer in &base.layers {
            let digest = &layer.descriptor.digest;
            if let Some(data) = image.base_blobs.get(digest) {
                let from: &[&str] = if same_host { &[&base.repository] } else { &[] };
                count(
                    client
                        .push_blob(repository, digest, data.clone().into(), from)
                        .await?,
                );
                continue;
            }
            if client.has_blob(repository, digest).await? {
                count(BlobPush::Present);
                continue;
            }
            if same_host {
                // Without the bytes: a mount sends nothing; a refused one makes `push_blob`
                // stop at its digest check before any upload, and the blob is fetched below.
                if let Ok(pushed) = client
                    .push_blob(repository, digest, Default::default(), &[&base.repository])
                    .await
                {
                    count(pushed);
                    continue;
                }
            }
            let data = if same_host {
                client.blob(&base.repository, digest).await?
            } else {
                if base_client.is_none() {
                    let facts = engine.push_facts().await?;
                    let creds = crate::docker_config::credentials::DockerConfig::load()?
                        .credentials(&base.host)?;
                    base_client =
                        Some(RegistryClient::connect(&base.host, creds, &facts.insecure).await?);
                }
                let from = base_client.as_ref().expect("connected");
                from.blob(&base.repository, digest).await?
            };
            let data = data.ok_or_else(|| {
                Error::step(
                    "push",
                    format!(
                        "the base layer {digest} is not in {}/{}",
                        base.host, base.repository
                    ),
                )
            })?;
            count(client.push_blob(repository, digest, data, &[]).await?);
        }
    }
    let blobs = image
        .layers
        .iter()
        .map(|l| &l.blob)
        .chain(std::iter::once(&image.config));
    for blob in blobs {
        count(
            client
                .push_blob(repository, &blob.digest, blob.data.clone().into(), &[])
                .await?,
        );
    }
    Ok(done)
}

/// Whether a registry manifest (`digest`, its `config_digest`) is the local image `image_id`:
/// the classic store's image ID is the config digest, the containerd store's the manifest (or
/// index) digest.
pub fn is_tested_image(
    store: ImageStore,
    digest: &str,
    config_digest: Option<&str>,
    image_id: &str,
) -> bool {
    match store {
        ImageStore::Classic => config_digest == Some(image_id),
        ImageStore::Containerd => digest == image_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_image_store_decides_what_the_image_id_is_compared_with() {
        let (manifest, config) = ("sha256:m", Some("sha256:c"));
        assert!(is_tested_image(
            ImageStore::Classic,
            manifest,
            config,
            "sha256:c"
        ));
        assert!(!is_tested_image(
            ImageStore::Classic,
            manifest,
            config,
            "sha256:m"
        ));
        assert!(!is_tested_image(
            ImageStore::Classic,
            manifest,
            None,
            "sha256:c"
        ));
        assert!(is_tested_image(
            ImageStore::Containerd,
            manifest,
            config,
            "sha256:m"
        ));
        assert!(is_tested_image(
            ImageStore::Containerd,
            manifest,
            None,
            "sha256:m"
        ));
        assert!(!is_tested_image(
            ImageStore::Containerd,
            manifest,
            config,
            "sha256:c"
        ));
    }

    #[test]
    fn conflicts_are_exit_2_naming_every_tag_unless_forced() {
        let c = vec!["r/a:1.0.0 in registry r is sha256:x".to_owned()];
        assert!(conflict(c.clone(), true, " in the registry").is_ok());
        assert!(conflict(Vec::new(), false, "").is_ok());
        let e = conflict(c, false, " in the registry").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("r/a:1.0.0"), "{e}");
    }
}
