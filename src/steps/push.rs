//! The push step (`--push`): the registry's known releases for the plan, the registry-side
//! conflict check of immutable tags, pushing tags through the engine with the Docker config's
//! credentials, and reading the manifest digest back to check it is the tested image.
//!
//! Loopback registries (`127.0.0.1:PORT`, `localhost:PORT`) are also read directly over their
//! HTTP API ([`crate::engine::registry`]): tags, and each tag's manifest config digest, which must
//! equal the local image ID. Other (HTTPS) registries are read through the engine: their known
//! releases come from the local engine, and the pushed digest is checked against the engine's
//! `RepoDigests` of the tested image.

use std::collections::BTreeMap;

use semver::Version;

use crate::engine::Engine;
use crate::engine::credentials::{self, Credentials, DockerConfig};
use crate::engine::registry::RegistryClient;
use crate::error::{Error, Result};
use crate::plan::{ImagePlan, KnownReleases};
use crate::ui::Shell;

/// Where one image repository is pushed and how.
#[derive(Debug, Clone)]
struct Target {
    host: String,
    repository: String,
    credentials: Option<Credentials>,
    client: Option<RegistryClient>,
}

/// The registries of the selected services, with their credentials.
#[derive(Debug, Clone, Default)]
pub struct Pusher {
    targets: BTreeMap<String, Target>,
}

impl Pusher {
    /// Credentials for every image's registry from the Docker config (read once).
    pub fn new(images: &[&str]) -> Result<Self> {
        let config = DockerConfig::load()?;
        let mut by_host: BTreeMap<String, Option<Credentials>> = BTreeMap::new();
        let mut targets = BTreeMap::new();
        for image in images {
            let host = credentials::registry_host(image).to_owned();
            let creds = match by_host.get(&host) {
                Some(c) => c.clone(),
                None => {
                    let c = config.credentials(&host)?;
                    by_host.insert(host.clone(), c.clone());
                    c
                }
            };
            targets.insert(
                (*image).to_owned(),
                Target {
                    client: RegistryClient::for_host(&host, creds.as_ref()),
                    repository: credentials::repository_path(image),
                    host,
                    credentials: creds,
                },
            );
        }
        Ok(Pusher { targets })
    }

    fn target(&self, image: &str) -> Result<&Target> {
        self.targets
            .get(image)
            .ok_or_else(|| Error::step("push", format!("no registry known for `{image}`")))
    }

    /// Replaces the engine's known releases by the registry's for every registry that can be
    /// listed; a refused or unreachable registry stops the release before anything is built.
    pub async fn known_releases(&self, known: &mut KnownReleases, shell: &Shell) -> Result<()> {
        for (image, target) in &self.targets {
            match &target.client {
                Some(client) => {
                    let mut versions: Vec<Version> = client
                        .tags(&target.repository)
                        .await?
                        .into_iter()
                        .filter_map(|t| Version::parse(&t.replace('_', "+")).ok())
                        .collect();
                    versions.sort();
                    versions.dedup();
                    known.insert(image.clone(), versions);
                }
                None => shell.note(format!(
                    "known releases of {image} come from the local engine: tags of HTTPS registries are not listed"
                )),
            }
        }
        Ok(())
    }

    /// Before anything is pushed: every immutable tag either is absent from the registry or
    /// already names the tested image. Otherwise [`Error::TagConflict`] (exit 2) unless `force`.
    pub async fn check_conflicts(
        &self,
        released: &[(&ImagePlan, &str)],
        force: bool,
    ) -> Result<()> {
        let mut conflicts = Vec::new();
        for (plan, image_id) in released {
            let target = self.target(&plan.image)?;
            let Some(client) = &target.client else {
                continue;
            };
            for tag in plan.applied_tags().filter(|t| t.kind.is_immutable()) {
                if let Some(found) = client.manifest(&target.repository, &tag.name).await?
                    && found.config_digest.as_deref() != Some(*image_id)
                {
                    conflicts.push(format!(
                        "{}:{} in the registry is image {}, not the tested {}",
                        plan.image,
                        tag.name,
                        found
                            .config_digest
                            .as_deref()
                            .map_or("(an index)", crate::steps::build::short_id),
                        crate::steps::build::short_id(image_id)
                    ));
                }
            }
        }
        if conflicts.is_empty() || force {
            return Ok(());
        }
        Err(Error::TagConflict {
            message: format!(
                "immutable tags already point to other images in the registry:\n{}",
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
        })
    }

    /// Pushes `tags` of `plan.image` (already tagged locally on `image_id`), behind a spinner.
    pub async fn push_tags(
        &self,
        engine: &Engine,
        plan: &ImagePlan,
        tags: &[&str],
        shell: &Shell,
    ) -> Result<()> {
        if tags.is_empty() {
            return Ok(());
        }
        let target = self.target(&plan.image)?;
        let creds = target
            .credentials
            .as_ref()
            .map(|c| c.for_engine(&target.host));
        let bar = shell.spinner("Pushing", &format!("{}:{}", plan.image, tags[0]));
        for tag in tags {
            let head = format!("{}:{tag}", plan.image);
            bar.set_message(head.clone());
            let pushed = engine
                .push(&plan.image, tag, creds.clone(), |status| {
                    bar.set_message(format!("{head}: {status}"));
                })
                .await;
            if let Err(e) = pushed {
                bar.finish_and_clear();
                return Err(e);
            }
        }
        bar.finish_and_clear();
        shell.status("Pushed", format!("{} {}", plan.image, tags.join(", ")));
        Ok(())
    }

    /// Reads the manifest of every pushed tag back from the registry and checks it is the tested
    /// image; returns the manifest digest (of the first tag).
    pub async fn verify(
        &self,
        engine: &Engine,
        plan: &ImagePlan,
        image_id: &str,
        tags: &[&str],
    ) -> Result<Option<String>> {
        let target = self.target(&plan.image)?;
        let mut digest: Option<String> = None;
        for tag in tags {
            let reference = format!("{}:{tag}", plan.image);
            let found = match &target.client {
                Some(client) => {
                    let manifest =
                        client
                            .manifest(&target.repository, tag)
                            .await?
                            .ok_or_else(|| {
                                Error::step(
                                    "push",
                                    format!("{reference} is not in the registry after pushing it"),
                                )
                            })?;
                    if manifest.config_digest.as_deref() != Some(image_id) {
                        return Err(Error::step(
                            "push",
                            format!(
                                "{reference} in the registry is image {}, not the tested {}",
                                manifest.config_digest.as_deref().unwrap_or("(an index)"),
                                image_id
                            ),
                        ));
                    }
                    manifest.digest
                }
                None => {
                    let creds = target
                        .credentials
                        .as_ref()
                        .map(|c| c.for_engine(&target.host));
                    let d = engine
                        .registry_digest(&reference, creds)
                        .await?
                        .unwrap_or_default();
                    let local = engine.repo_digests(image_id).await?;
                    if !local.iter().any(|r| r.ends_with(&format!("@{d}"))) {
                        return Err(Error::step(
                            "push",
                            format!(
                                "{reference} in the registry is manifest {d}, which the engine did not push for the tested image {image_id}"
                            ),
                        ));
                    }
                    d
                }
            };
            match &digest {
                None => digest = Some(found),
                Some(first) if *first != found => {
                    return Err(Error::step(
                        "push",
                        format!(
                            "{reference} in the registry is manifest {found}, not {first} like the release's other tags"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(digest)
    }
}
