//! Images in the local engine: inspect, list a repository's tags, tag, remove, find by label.
//!
//! [`ImageStore`] is the narrow seam the release steps use; [`super::Engine`] implements it with
//! bollard and the steps' unit tests implement it with a recording fake.

use std::collections::{BTreeMap, HashMap};

use bollard::query_parameters::{ListImagesOptions, RemoveImageOptions, TagImageOptions};
use serde::Serialize;

use super::{Engine, engine_error, is_not_found};
use crate::error::Result;

/// What the tool needs to know about one local image.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImageInfo {
    /// Image ID (`sha256:…`).
    pub id: String,
    /// Every `repository:tag` pointing at it.
    pub repo_tags: Vec<String>,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// `ENV` of the image config (`KEY=value`).
    pub env: Vec<String>,
    /// When the engine created it (RFC 3339, as the engine says).
    pub created: Option<String>,
    /// When the engine created it, in seconds since the Unix epoch.
    pub created_unix: Option<i64>,
    /// Size in bytes.
    pub size: u64,
}

impl ImageInfo {
    /// The value of `ENV key`.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env
            .iter()
            .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
    }

    /// The tags of `repo` among its references.
    pub fn tags_in(&self, repo: &str) -> Vec<String> {
        self.repo_tags
            .iter()
            .filter_map(|r| split_reference(r))
            .filter(|(r, _)| *r == repo)
            .map(|(_, t)| t.to_owned())
            .collect()
    }
}

/// `registry:5000/acme/app:1.2` -> (`registry:5000/acme/app`, `1.2`).
pub fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let (repo, tag) = reference.rsplit_once(':')?;
    (!tag.contains('/')).then_some((repo, tag))
}

/// A tag of a repository and the image it points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoTag {
    /// The tag.
    pub tag: String,
    /// The image ID it points at.
    pub image_id: String,
}

/// The image operations the release steps need.
#[allow(async_fn_in_trait)]
pub trait ImageStore {
    /// The image `reference` (name:tag or ID) names, or `None` when there is none.
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>>;
    /// Every tag of `repo` in the local engine.
    async fn repository_tags(&self, repo: &str) -> Result<Vec<RepoTag>>;
    /// Every tag of each of `repos`, in as few round trips as the store allows (the engine:
    /// one image listing per 50 repositories, however many services a release has).
    async fn repositories_tags(&self, repos: &[&str]) -> Result<BTreeMap<String, Vec<RepoTag>>> {
        let mut all = BTreeMap::new();
        for repo in repos {
            all.insert((*repo).to_owned(), self.repository_tags(repo).await?);
        }
        Ok(all)
    }
    /// Images carrying all of `labels`.
    async fn images_labelled(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>>;
    /// Points `repo:tag` at `image_id` (moving it if it pointed elsewhere).
    async fn tag(&self, image_id: &str, repo: &str, tag: &str) -> Result<()>;
    /// Removes a reference (a tag; the image goes when its last reference does).
    async fn untag(&self, reference: &str) -> Result<()>;
}

impl ImageStore for Engine {
    async fn image(&self, reference: &str) -> Result<Option<ImageInfo>> {
        match self.docker().inspect_image(reference).await {
            Ok(i) => {
                let config = i.config.unwrap_or_default();
                Ok(Some(ImageInfo {
                    id: i.id.unwrap_or_default(),
                    repo_tags: i.repo_tags.unwrap_or_default(),
                    labels: config.labels.unwrap_or_default().into_iter().collect(),
                    env: config.env.unwrap_or_default(),
                    // bollard's `buildkit` feature needs its `chrono` feature, which parses
                    // the engine's RFC 3339 time.
                    created_unix: i.created.map(|t| t.timestamp()),
                    created: i
                        .created
                        .map(|c| c.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
                    size: i.size.unwrap_or_default().max(0) as u64,
                }))
            }
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(engine_error(
                "engine",
                &format!("inspecting `{reference}`"),
                e,
            )),
        }
    }

    async fn repository_tags(&self, repo: &str) -> Result<Vec<RepoTag>> {
        let filters = HashMap::from([("reference".to_owned(), vec![repo.to_owned()])]);
        let images = self
            .docker()
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error("engine", &format!("listing the images of `{repo}`"), e))?;
        let mut tags = Vec::new();
        for image in images {
            for reference in &image.repo_tags {
                if let Some((r, tag)) = split_reference(reference)
                    && r == repo
                {
                    tags.push(RepoTag {
                        tag: tag.to_owned(),
                        image_id: image.id.clone(),
                    });
                }
            }
        }
        tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        Ok(tags)
    }

    async fn repositories_tags(&self, repos: &[&str]) -> Result<BTreeMap<String, Vec<RepoTag>>> {
        let mut all: BTreeMap<String, Vec<RepoTag>> = repos
            .iter()
            .map(|r| ((*r).to_owned(), Vec::new()))
            .collect();
        // The engine ORs several `reference` filters; a bounded number keeps the URL short.
        for chunk in repos.chunks(50) {
            let filters = HashMap::from([(
                "reference".to_owned(),
                chunk.iter().map(|r| (*r).to_owned()).collect::<Vec<_>>(),
            )]);
            let images = self
                .docker()
                .list_images(Some(ListImagesOptions {
                    filters: Some(filters),
                    ..Default::default()
                }))
                .await
                .map_err(|e| engine_error("engine", "listing the images of the release", e))?;
            for image in images {
                for reference in &image.repo_tags {
                    if let Some((r, tag)) = split_reference(reference)
                        && let Some(tags) = all.get_mut(r)
                    {
                        tags.push(RepoTag {
                            tag: tag.to_owned(),
                            image_id: image.id.clone(),
                        });
                    }
                }
            }
        }
        for tags in all.values_mut() {
            tags.sort_by(|a, b| a.tag.cmp(&b.tag));
        }
        Ok(all)
    }

    async fn images_labelled(&self, labels: &[(&str, &str)]) -> Result<Vec<ImageInfo>> {
        let filter = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let filters = HashMap::from([("label".to_owned(), filter)]);
        let images = self
            .docker()
            .list_images(Some(ListImagesOptions {
                filters: Some(filters),
                ..Default::default()
            }))
            .await
            .map_err(|e| engine_error("engine", "listing images", e))?;
        Ok(images
            .into_iter()
            .map(|i| ImageInfo {
                id: i.id,
                repo_tags: i.repo_tags,
                labels: i.labels.into_iter().collect(),
                env: Vec::new(),
                created: None,
                created_unix: Some(i.created),
                size: i.size.max(0) as u64,
            })
            .collect())
    }

    async fn tag(&self, image_id: &str, repo: &str, tag: &str) -> Result<()> {
        self.docker()
            .tag_image(
                image_id,
                Some(TagImageOptions {
                    repo: Some(repo.to_owned()),
                    tag: Some(tag.to_owned()),
                }),
            )
            .await
            .map_err(|e| engine_error("tag", &format!("tagging {repo}:{tag}"), e))
    }

    async fn untag(&self, reference: &str) -> Result<()> {
        match self
            .docker()
            .remove_image(reference, None::<RemoveImageOptions>, None)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(engine_error("prune", &format!("removing `{reference}`"), e)),
        }
    }
}

impl Engine {
    /// Loads a `docker save` archive (`POST /images/load`) and returns the ID of the image it
    /// held, as the engine reports it.
    pub async fn load_image(&self, archive: Vec<u8>) -> Result<String> {
        use futures_util::StreamExt;
        let options = bollard::query_parameters::ImportImageOptionsBuilder::default()
            .quiet(true)
            .build();
        let mut stream =
            self.docker()
                .import_image(options, bollard::body_full(archive.into()), None);
        let mut loaded = None;
        while let Some(info) = stream.next().await {
            let info = info.map_err(|e| engine_error("build", "cannot load the image", e))?;
            if let Some(id) = info
                .stream
                .as_deref()
                .and_then(|s| s.trim().strip_prefix("Loaded image ID: "))
            {
                loaded = Some(id.to_owned());
            }
        }
        loaded.ok_or_else(|| {
            crate::error::Error::step(
                "build",
                "the engine loaded the image archive but named no image ID",
            )
        })
    }

    /// Pushes `repo:tag` with `credentials` (none: anonymous); `progress` sees each status line
    /// (`Pushing`, `Pushed`, `latest: digest: sha256:… size: …`). Returns the manifest digest
    /// the engine reports having pushed. A refused or unreachable registry is a `push` step
    /// failure with a hint.
    pub async fn push(
        &self,
        repo: &str,
        tag: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
        mut progress: impl FnMut(&str),
    ) -> Result<Option<String>> {
        use futures_util::StreamExt;
        let host = crate::docker_config::credentials::registry_host(repo).to_owned();
        let failed = |message: String| {
            let lower = message.to_ascii_lowercase();
            let help = if lower.contains("auth")
                || lower.contains("denied")
                || lower.contains("unauthorized")
            {
                format!(
                    "run `docker login {host}` (or set DOCKER_CONFIG to a config with its credentials)"
                )
            } else {
                format!("check that registry {host} is up and reachable from the engine")
            };
            crate::error::Error::step_with_help(
                "push",
                format!("pushing {repo}:{tag}: {message}"),
                help,
            )
        };
        let mut stream = self.docker().push_image(
            repo,
            Some(bollard::query_parameters::PushImageOptions {
                tag: Some(tag.to_owned()),
                platform: None,
            }),
            credentials,
        );
        let mut digest = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(info) => {
                    if let Some(e) = info.error_detail.and_then(|d| d.message) {
                        return Err(failed(e));
                    }
                    if let Some(status) = info.status {
                        if let Some(d) = pushed_digest(&status) {
                            digest = Some(d.to_owned());
                        }
                        progress(&status);
                    }
                }
                Err(bollard::errors::Error::DockerStreamError { error }) => {
                    return Err(failed(error));
                }
                Err(e) if super::is_connection_fault(&e) => {
                    return Err(super::engine_error(
                        "push",
                        &format!("pushing {repo}:{tag}"),
                        e,
                    ));
                }
                Err(e) => return Err(failed(crate::error::innermost(&e))),
            }
        }
        Ok(digest)
    }

    /// The manifest digest the registry serves for `reference`, asked through the engine's
    /// distribution API (works for any registry the engine can reach, HTTPS included).
    pub async fn registry_digest(
        &self,
        reference: &str,
        credentials: Option<bollard::auth::DockerCredentials>,
    ) -> Result<Option<String>> {
        match self
            .docker()
            .inspect_registry_image(reference, credentials)
            .await
        {
            Ok(d) => Ok(d.descriptor.digest),
            Err(e) => Err(crate::error::Error::step(
                "push",
                format!(
                    "reading the digest of {reference} back from the registry: {}",
                    crate::error::innermost(&e)
                ),
            )),
        }
    }

    /// The `repo@sha256:…` digests the engine recorded for `reference` (filled in by a push).
    pub async fn repo_digests(&self, reference: &str) -> Result<Vec<String>> {
        match self.docker().inspect_image(reference).await {
            Ok(i) => Ok(i.repo_digests.unwrap_or_default()),
            Err(e) => Err(engine_error(
                "push",
                &format!("inspecting `{reference}`"),
                e,
            )),
        }
    }
}

/// The digest of a push's final status line (`1.2.3: digest: sha256:… size: 528`).
pub fn pushed_digest(status: &str) -> Option<&str> {
    let rest = &status[status.find("digest: ")? + "digest: ".len()..];
    let digest = rest.split_whitespace().next()?;
    (digest.starts_with("sha256:") && digest.len() == 71).then_some(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pushed_digest_comes_from_the_final_status_line() {
        let d = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(
            pushed_digest(&format!("1.2.3: digest: {d} size: 528")),
            Some(d.as_str())
        );
        assert_eq!(pushed_digest("Pushed"), None);
        assert_eq!(pushed_digest("digest: sha256:short size: 1"), None);
    }

    #[test]
    fn references_split_at_the_tag_not_the_registry_port() {
        assert_eq!(
            split_reference("localhost:5000/acme/app:1.2"),
            Some(("localhost:5000/acme/app", "1.2"))
        );
        assert_eq!(split_reference("localhost:5000/acme/app"), None);
        assert_eq!(split_reference("app:latest"), Some(("app", "latest")));
    }

    #[test]
    fn env_var_reads_the_image_config() {
        let info = ImageInfo {
            env: vec!["PATH=/bin".into(), "SHA=abc".into(), "SHAX=no".into()],
            ..Default::default()
        };
        assert_eq!(info.env_var("SHA"), Some("abc"));
        assert_eq!(info.env_var("HOME"), None);
    }
}
