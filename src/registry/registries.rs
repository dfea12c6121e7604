//! The registries of a release's images: one pinged, authenticated client per host (with the
//! Docker config's credentials, read once), and each image mapped to its host and repository.

use std::collections::BTreeMap;

use super::{InsecureRegistries, RegistryClient};
use crate::docker_config::credentials::{self, Credentials, DockerConfig};
use crate::error::{Error, Result};

/// Where one image lives.
#[derive(Debug, Clone)]
pub struct Target {
    /// Registry host (`registry.example.com:5000`).
    pub host: String,
    /// Repository path in that registry (`team/orders`).
    pub repository: String,
    /// The credentials its client uses.
    pub credentials: Option<Credentials>,
}

/// Clients for the registries of a set of images.
#[derive(Debug)]
pub struct Registries {
    clients: BTreeMap<String, RegistryClient>,
    targets: BTreeMap<String, Target>,
}

impl Registries {
    /// Pings and authenticates the registry of every image; `push` asks for push scope. A
    /// registry that refuses or does not answer is the error.
    pub async fn connect(
        images: &[&str],
        insecure: &InsecureRegistries,
        push: bool,
    ) -> Result<Self> {
        let config = DockerConfig::load()?;
        let mut clients = BTreeMap::new();
        let mut targets = BTreeMap::new();
        for image in images {
            let host = credentials::registry_host(image).to_owned();
            let creds = match clients.get(&host) {
                Some((_, creds)) => Clone::clone(creds),
                None => {
                    let creds = config.credentials(&host)?;
                    let client = RegistryClient::connect(&host, creds.clone(), insecure).await?;
                    let client = if push { client.for_push() } else { client };
                    clients.insert(host.clone(), (client, creds.clone()));
                    creds
                }
            };
            targets.insert(
                (*image).to_owned(),
                Target {
                    repository: credentials::repository_path(image),
                    credentials: creds,
                    host,
                },
            );
        }
        Ok(Registries {
            clients: clients.into_iter().map(|(h, (c, _))| (h, c)).collect(),
            targets,
        })
    }

    /// The images, in name order.
    pub fn images(&self) -> impl Iterator<Item = &str> {
        self.targets.keys().map(String::as_str)
    }

    /// Where `image` lives and the client of its registry; `step` names the caller in the error.
    pub fn get(&self, image: &str, step: &'static str) -> Result<(&Target, &RegistryClient)> {
        let target = self
            .targets
            .get(image)
            .ok_or_else(|| Error::step(step, format!("no registry known for `{image}`")))?;
        Ok((target, &self.clients[&target.host]))
    }
}
