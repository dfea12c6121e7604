//! A non-scratch base of an assembled image, resolved in its registry: the image config (what
//! the stage inherits: Env, User, WorkingDir, Entrypoint/Cmd, Labels, …, its diff IDs and
//! history) and its layers as the registry describes them. The registry's compressed layer
//! digests are taken as they are, never recompressed: every runner computes the same manifest
//! for the same base digest.

use serde::{Deserialize, Deserializer, Serialize};

use super::oci::{self, ContainerConfig, Descriptor, History};
use crate::docker_config::credentials;
use crate::error::Result;
use crate::registry::{OCI_INDEX, RegistryClient};

/// Docker's gzip layer, the same bytes as the OCI one.
const DOCKER_LAYER: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
const DOCKER_INDEX: &str = "application/vnd.docker.distribution.manifest.list.v2+json";

/// One layer of the base: its diff ID (in the config) and its registry descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseLayer {
    /// `sha256:` of the uncompressed tar.
    pub diff_id: String,
    /// The blob as the registry holds it.
    pub descriptor: Descriptor,
}

/// Where the base lives and its layers: what the load and the push need of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaseSource {
    /// Registry host (`registry.example.com:5000`).
    pub host: String,
    /// Repository in that registry (`lib/base`).
    pub repository: String,
    /// The config digest of the base (its image ID in the classic image store).
    pub config_digest: String,
    /// The manifest digest the base's reference resolved to (what provenance records).
    #[serde(default)]
    pub manifest_digest: String,
    /// Its layers, bottom first.
    pub layers: Vec<BaseLayer>,
}

/// A base image resolved by digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseImage {
    /// The reference as the `FROM` line names it.
    pub reference: String,
    /// The manifest digest it resolved to (for the host platform).
    pub manifest_digest: String,
    /// `architecture` and `variant` of its config.
    pub platform: (String, Option<String>),
    /// What a container of it runs with.
    pub config: ContainerConfig,
    /// Its history.
    pub history: Vec<History>,
    /// Registry, repository and layers.
    pub source: BaseSource,
}

/// `name[:tag][@digest]` -> (name, tag or digest to ask the registry for).
pub fn split_reference(reference: &str) -> (&str, &str) {
    if let Some((name, digest)) = reference.split_once('@') {
        let name = strip_tag(name);
        return (name, digest);
    }
    let name = strip_tag(reference);
    match reference.get(name.len() + 1..) {
        Some(tag) if !tag.is_empty() => (name, tag),
        _ => (name, "latest"),
    }
}

fn strip_tag(name: &str) -> &str {
    // A `:` after the last `/` is the tag's (one before it is a host's port).
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    }
}

/// `null` in a Docker config reads as the default (`"history": null`).
fn nullable<'de, D, T>(d: D) -> std::result::Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// The parts of an image config a base contributes (lenient: Docker writes `null`s).
#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
    #[serde(default)]
    os: String,
    #[serde(default, deserialize_with = "nullable")]
    config: ContainerConfig,
    rootfs: oci::RootFs,
    #[serde(default, deserialize_with = "nullable")]
    history: Vec<History>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImageManifest {
    #[serde(default)]
    schema_version: u32,
    config: Descriptor,
    #[serde(default)]
    layers: Vec<Descriptor>,
}

#[derive(Debug, Deserialize)]
struct Index {
    #[serde(default)]
    manifests: Vec<IndexEntry>,
}

#[derive(Debug, Deserialize)]
struct IndexEntry {
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    os: String,
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    variant: Option<String>,
}

/// Resolves `reference` in its registry (`client`) to the image for the platform
/// `(architecture, variant)`. `Ok(Err(why))` says why it cannot be a base the tool assembles on.
pub async fn resolve(
    client: &RegistryClient,
    reference: &str,
    (arch, variant): (&str, Option<&str>),
) -> Result<std::result::Result<BaseImage, String>> {
    let (name, wanted) = split_reference(reference);
    let host = credentials::registry_host(name).to_owned();
    let repository = credentials::repository_path(name);
    let Some(mut manifest) = client.manifest(&repository, wanted).await? else {
        return Ok(Err(format!("the registry {host} has no `{reference}`")));
    };
    if manifest.media_type == OCI_INDEX || manifest.media_type == DOCKER_INDEX {
        let index: Index = match serde_json::from_slice(&manifest.bytes) {
            Ok(i) => i,
            Err(e) => return Ok(Err(format!("its index is not readable: {e}"))),
        };
        let child = index.manifests.iter().find(|m| {
            m.platform.as_ref().is_some_and(|p| {
                p.os == "linux"
                    && p.architecture == arch
                    && (variant.is_none() || p.variant.is_none() || p.variant.as_deref() == variant)
            })
        });
        let Some(child) = child else {
            return Ok(Err(format!("its index has no linux/{arch} image")));
        };
        manifest = match client.manifest(&repository, &child.digest).await? {
            Some(m) => m,
            None => {
                return Ok(Err(format!(
                    "its linux/{arch} image is not in the registry"
                )));
            }
        };
    }
    let image: ImageManifest = match serde_json::from_slice::<ImageManifest>(&manifest.bytes) {
        Ok(m) if m.schema_version == 2 => m,
        Ok(_) => return Ok(Err("its manifest is not schema 2".into())),
        Err(e) => return Ok(Err(format!("its manifest is not an image manifest: {e}"))),
    };
    let Some(config_bytes) = client.blob(&repository, &image.config.digest).await? else {
        return Ok(Err(format!(
            "its config {} is missing",
            image.config.digest
        )));
    };
    let config: Config = match serde_json::from_slice(&config_bytes) {
        Ok(c) => c,
        Err(e) => return Ok(Err(format!("its config is not an image config: {e}"))),
    };
    if has_triggers(&config_bytes) {
        return Ok(Err("its ONBUILD triggers run only in a builder".into()));
    }
    Ok(from_parts(
        reference,
        &manifest.digest,
        host,
        repository,
        image,
        config,
        (arch, variant),
    ))
}

/// Whether a config has `OnBuild` triggers, which a build `FROM` it runs.
fn has_triggers(config: &[u8]) -> bool {
    #[derive(Deserialize)]
    struct Outer {
        #[serde(default)]
        config: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(rename = "OnBuild", default)]
        on_build: Option<Vec<String>>,
    }
    serde_json::from_slice::<Outer>(config)
        .ok()
        .and_then(|o| o.config?.on_build)
        .is_some_and(|t| !t.is_empty())
}

fn from_parts(
    reference: &str,
    manifest_digest: &str,
    host: String,
    repository: String,
    image: ImageManifest,
    config: Config,
    (arch, variant): (&str, Option<&str>),
) -> std::result::Result<BaseImage, String> {
    if config.os != "linux" || config.architecture != arch {
        return Err(format!(
            "it is a {}/{} image, not linux/{arch}",
            config.os, config.architecture
        ));
    }
    if image.layers.len() != config.rootfs.diff_ids.len() {
        return Err(format!(
            "its manifest has {} layers but its config {} diff IDs",
            image.layers.len(),
            config.rootfs.diff_ids.len()
        ));
    }
    let mut layers = Vec::new();
    for (mut descriptor, diff_id) in image.layers.into_iter().zip(config.rootfs.diff_ids) {
        // Docker's gzip layer is the OCI one; anything else (foreign, zstd) the builder handles.
        descriptor.media_type = match descriptor.media_type.as_str() {
            DOCKER_LAYER | super::LAYER_MEDIA_TYPE => super::LAYER_MEDIA_TYPE.to_owned(),
            other => return Err(format!("it has a layer of type `{other}`")),
        };
        layers.push(BaseLayer {
            diff_id,
            descriptor,
        });
    }
    Ok(BaseImage {
        reference: reference.to_owned(),
        manifest_digest: manifest_digest.to_owned(),
        platform: (
            config.architecture,
            config.variant.or(variant.map(str::to_owned)),
        ),
        config: config.config,
        history: config.history,
        source: BaseSource {
            host,
            repository,
            config_digest: image.config.digest,
            manifest_digest: manifest_digest.to_owned(),
            layers,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onbuild_triggers_are_seen() {
        assert!(has_triggers(br#"{"config":{"OnBuild":["RUN x"]}}"#));
        assert!(!has_triggers(br#"{"config":{"OnBuild":null}}"#));
        assert!(!has_triggers(br#"{"config":{}}"#));
    }

    #[test]
    fn references_split_into_name_and_what_to_ask_for() {
        assert_eq!(
            split_reference("registry:5000/lib/base:1@sha256:ab"),
            ("registry:5000/lib/base", "sha256:ab")
        );
        assert_eq!(
            split_reference("registry:5000/lib/base:1"),
            ("registry:5000/lib/base", "1")
        );
        assert_eq!(
            split_reference("registry:5000/lib/base"),
            ("registry:5000/lib/base", "latest")
        );
        assert_eq!(split_reference("debian:12"), ("debian", "12"));
    }

    #[test]
    fn a_docker_config_with_nulls_reads_and_docker_layers_become_oci_layers() {
        let config: Config = serde_json::from_str(
            r#"{"architecture":"amd64","os":"linux","config":{"Env":["PATH=/bin","A=1"],"Labels":null,"Cmd":["sh"],"WorkingDir":"","Hostname":""},"rootfs":{"type":"layers","diff_ids":["sha256:d"]},"history":[{"created":"2024-01-01T00:00:00Z","created_by":"ADD x /"}]}"#,
        )
        .unwrap();
        let image: ImageManifest = serde_json::from_str(
            r#"{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"sha256:c","size":1},"layers":[{"mediaType":"application/vnd.docker.image.rootfs.diff.tar.gzip","digest":"sha256:l","size":2}]}"#,
        )
        .unwrap();
        let base = from_parts(
            "r/b:1",
            "sha256:m",
            "r".into(),
            "b".into(),
            image,
            config,
            ("amd64", None),
        )
        .unwrap();
        assert_eq!(base.config.env, ["PATH=/bin", "A=1"]);
        assert!(base.config.labels.is_empty());
        let layer = &base.source.layers[0];
        assert_eq!(
            (layer.diff_id.as_str(), layer.descriptor.digest.as_str()),
            ("sha256:d", "sha256:l")
        );
        assert_eq!(layer.descriptor.media_type, crate::image::LAYER_MEDIA_TYPE);
        assert_eq!(base.source.config_digest, "sha256:c");
    }
}
