//! [`ManifestStore`] over the registries of the selected images: one authenticated client per
//! host ([`crate::registry::RegistryClient`]), each image mapped to its repository.

use std::collections::BTreeMap;

use super::{Manifest, ManifestStore};
use crate::docker_config::credentials::{self, DockerConfig};
use crate::error::{Error, Result};
use crate::registry::{InsecureRegistries, RegistryClient};

/// The registries of a promotion.
#[derive(Debug)]
pub struct Registries {
    clients: BTreeMap<String, RegistryClient>,
    /// image -> (host, repository path).
    repositories: BTreeMap<String, (String, String)>,
}

impl Registries {
    /// Pings and authenticates every image's registry with the Docker config's credentials.
    /// Which registries are insecure comes from the engine when there is one (a promotion job
    /// needs none: loopback registries are always reached over plain HTTP).
    pub async fn connect(images: &[&str]) -> Result<Self> {
        let insecure = match crate::engine::Engine::connect().await {
            Ok(engine) => engine
                .push_facts()
                .await
                .map(|f| f.insecure)
                .unwrap_or_default(),
            Err(_) => InsecureRegistries::default(),
        };
        let config = DockerConfig::load()?;
        let mut clients = BTreeMap::new();
        let mut repositories = BTreeMap::new();
        for image in images {
            let host = credentials::registry_host(image).to_owned();
            if !clients.contains_key(&host) {
                let creds = config.credentials(&host)?;
                clients.insert(
                    host.clone(),
                    RegistryClient::connect(&host, creds, &insecure).await?,
                );
            }
            repositories.insert(
                (*image).to_owned(),
                (host, credentials::repository_path(image)),
            );
        }
        Ok(Registries {
            clients,
            repositories,
        })
    }

    fn client(&self, image: &str) -> Result<(&RegistryClient, &str)> {
        let (host, repository) = self
            .repositories
            .get(image)
            .ok_or_else(|| Error::step("promote", format!("no registry known for `{image}`")))?;
        Ok((&self.clients[host], repository))
    }
}

impl ManifestStore for Registries {
    async fn tags(&self, image: &str) -> Result<Vec<String>> {
        let (client, repository) = self.client(image)?;
        client.tags(repository).await
    }

    async fn manifest(&self, image: &str, reference: &str) -> Result<Option<Manifest>> {
        let (client, repository) = self.client(image)?;
        client.manifest(repository, reference).await
    }

    async fn config_labels(
        &self,
        image: &str,
        manifest: &Manifest,
    ) -> Result<BTreeMap<String, String>> {
        let (client, repository) = self.client(image)?;
        Ok(client
            .image_config(repository, manifest)
            .await?
            .map(|c| c.labels)
            .unwrap_or_default())
    }

    async fn put_manifest(&self, image: &str, tag: &str, manifest: &Manifest) -> Result<()> {
        let (client, repository) = self.client(image)?;
        client
            .put_manifest(repository, tag, manifest)
            .await
            .map(drop)
    }
}
