//! What the engine's `/info` says about pushing: which registries it treats as insecure, and
//! which image store it keeps images in (classic, or containerd's).
//!
//! The image store decides what an image ID is: with the classic store it is the config digest
//! (the manifest's `config.digest`); with the containerd image store (the default of new Docker
//! Engine 29 installs) it is the manifest or index digest itself.

use super::Engine;
use crate::error::Result;
use crate::registry::InsecureRegistries;

/// How the engine identifies an image it pushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStore {
    /// Image ID == the manifest's config digest.
    Classic,
    /// Image ID == the manifest (or index) digest.
    Containerd,
}

/// The push-related facts of an engine.
#[derive(Debug, Clone)]
pub struct PushFacts {
    /// Registries reached without verified TLS.
    pub insecure: InsecureRegistries,
    /// The image store.
    pub store: ImageStore,
}

impl Default for PushFacts {
    fn default() -> Self {
        PushFacts {
            insecure: InsecureRegistries::default(),
            store: ImageStore::Classic,
        }
    }
}

/// Whether `driver_status` (`/info`'s `DriverStatus` pairs) names the containerd snapshotter.
pub fn is_containerd_store(driver_status: &[Vec<String>]) -> bool {
    driver_status
        .iter()
        .flatten()
        .any(|v| v.contains("io.containerd.snapshotter"))
}

impl Engine {
    /// Reads `/info` once for the push step.
    pub async fn push_facts(&self) -> Result<PushFacts> {
        let info = self
            .docker()
            .info()
            .await
            .map_err(|e| super::engine_error("engine", "reading the engine's /info", e))?;
        let registry = info.registry_config.unwrap_or_default();
        let insecure_hosts: Vec<String> = registry
            .index_configs
            .unwrap_or_default()
            .into_iter()
            .filter(|(_, index)| index.secure == Some(false))
            .map(|(name, _)| name)
            .collect();
        Ok(PushFacts {
            insecure: InsecureRegistries::new(
                &registry.insecure_registry_cidrs.unwrap_or_default(),
                &insecure_hosts,
            ),
            store: if is_containerd_store(&info.driver_status.unwrap_or_default()) {
                ImageStore::Containerd
            } else {
                ImageStore::Classic
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_containerd_snapshotter_in_driver_status_is_the_containerd_store() {
        let classic = vec![vec!["Backing Filesystem".to_owned(), "extfs".to_owned()]];
        assert!(!is_containerd_store(&classic));
        let containerd = vec![vec![
            "driver-type".to_owned(),
            "io.containerd.snapshotter.v1".to_owned(),
        ]];
        assert!(is_containerd_store(&containerd));
    }
}
