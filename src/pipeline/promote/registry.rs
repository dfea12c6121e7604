//! [`ManifestStore`] over the registries of the selected images
//! ([`crate::registry::Registries`]).

use std::collections::BTreeMap;

use super::{Manifest, ManifestStore};
use crate::error::Result;
use crate::registry::{InsecureRegistries, RegistryClient};

pub use crate::registry::Registries;

/// Pings and authenticates every image's registry with the Docker config's credentials. Which
/// registries are insecure comes from the engine when there is one (a promotion job needs none:
/// loopback registries are always reached over plain HTTP).
pub async fn connect(images: &[&str]) -> Result<Registries> {
    let insecure = match crate::engine::Engine::connect().await {
        Ok(engine) => engine
            .push_facts()
            .await
            .map(|f| f.insecure)
            .unwrap_or_default(),
        Err(_) => InsecureRegistries::default(),
    };
    Registries::connect(images, &insecure, false).await
}

fn client<'a>(registries: &'a Registries, image: &str) -> Result<(&'a RegistryClient, &'a str)> {
    let (target, client) = registries.get(image, "promote")?;
    Ok((client, &target.repository))
}

impl ManifestStore for Registries {
    async fn tags(&self, image: &str) -> Result<Vec<String>> {
        let (client, repository) = client(self, image)?;
        client.tags(repository).await
    }

    async fn manifest(&self, image: &str, reference: &str) -> Result<Option<Manifest>> {
        let (client, repository) = client(self, image)?;
        client.manifest(repository, reference).await
    }

    async fn config_labels(
        &self,
        image: &str,
        manifest: &Manifest,
    ) -> Result<BTreeMap<String, String>> {
        let (client, repository) = client(self, image)?;
        Ok(client
            .image_config(repository, manifest)
            .await?
            .map(|c| c.labels)
            .unwrap_or_default())
    }

    async fn put_manifest(&self, image: &str, tag: &str, manifest: &Manifest) -> Result<()> {
        let (client, repository) = client(self, image)?;
        client
            .put_manifest(repository, tag, manifest)
            .await
            .map(drop)
    }
}
