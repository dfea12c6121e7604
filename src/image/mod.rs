//! Images the tool assembles itself, as ko and Jib do, for the host strategy: no builder runs.
//!
//! The rendered Dockerfile is read as the description of the image ([`spec`]); the binary
//! becomes one deterministic layer ([`layer`]); the config and the OCI manifest are written
//! with the commit time as every time ([`oci`]). The same commit therefore gives the same
//! bytes, the same image ID (the config's digest, known before the engine sees the image) and
//! the same registry digest on every runner. The image is loaded into the engine for the tests
//! ([`archive`]) and kept as an OCI layout under the target directory ([`store`]), from which
//! the registry client pushes it.
//!
//! A non-scratch base ([`base`]) is resolved by digest in its registry: its config starts the
//! stage (Env, User, Labels, …), its layers, as the registry's compressed blobs, go below the
//! tool's, so the manifest is the same on every runner. The load includes a base layer only
//! when the engine lacks the base; the push mounts it from the base's repository on the same
//! registry, else uploads it.

pub mod archive;
pub mod base;
pub mod layer;
pub mod oci;
pub mod spec;
pub mod store;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};

use self::base::BaseSource;

pub use self::layer::{Layer, LayerFile};
use self::oci::{ContainerConfig, Descriptor, HealthConfig, History, ImageConfig, RootFs};
pub use self::spec::ImageSpec;

/// OCI image config.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
/// OCI gzip layer.
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
/// OCI image manifest.
pub const MANIFEST_MEDIA_TYPE: &str = crate::registry::OCI_MANIFEST;
/// The `history` comment of what the tool wrote.
const BY: &str = "cargo docker-release";

/// Bytes with their digest and media type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The media type it is pushed as.
    pub media_type: String,
    /// `sha256:…` of `data`.
    pub digest: String,
    /// The content.
    pub data: Vec<u8>,
}

impl Blob {
    /// `data` as a blob of `media_type`.
    pub fn new(media_type: &str, data: Vec<u8>) -> Blob {
        Blob {
            media_type: media_type.to_owned(),
            digest: digest(&data),
            data,
        }
    }

    /// Its descriptor.
    pub fn descriptor(&self) -> Descriptor {
        Descriptor {
            media_type: self.media_type.clone(),
            digest: self.digest.clone(),
            size: self.data.len() as u64,
            annotations: Default::default(),
        }
    }
}

/// `sha256:…` of `bytes`.
pub fn digest(bytes: &[u8]) -> String {
    crate::registry::sha256_digest(bytes)
}

/// An assembled image: everything the engine and a registry need, every digest known.
#[derive(Debug, Clone)]
pub struct Assembled {
    /// The image config; its digest is the image ID.
    pub config: Blob,
    /// The layers the tool wrote (above the base's).
    pub layers: Vec<Layer>,
    /// The OCI manifest; its digest is the registry's.
    pub manifest: Blob,
    /// The base's registry, repository and layers (below [`Self::layers`]), if not scratch.
    pub base: Option<BaseSource>,
    /// The base layers' blobs at hand (downloaded for a load), by digest.
    pub base_blobs: BTreeMap<String, Vec<u8>>,
}

impl Assembled {
    /// The engine's image ID (`sha256:` of the config).
    pub fn image_id(&self) -> &str {
        &self.config.digest
    }

    /// The registry's manifest digest.
    pub fn manifest_digest(&self) -> &str {
        &self.manifest.digest
    }
}

/// Assembles the image `spec` describes with `files` as its one layer, `created` as every
/// time, for the platform of the Rust target `triple`.
pub fn assemble(
    spec: &ImageSpec,
    files: &[LayerFile],
    created: DateTime<Utc>,
    triple: &str,
) -> Result<Assembled, String> {
    let (architecture, variant) = oci::platform(triple)
        .ok_or_else(|| format!("no OCI platform is known for the Rust target `{triple}`"))?;
    let base = spec.base_image.as_deref();
    let variant = match base {
        Some(b) => b.platform.1.as_deref(),
        None => variant,
    };
    let mtime = created.timestamp().max(0) as u64;
    let layer = layer::layer(files, mtime).map_err(|e| format!("writing the layer: {e}"))?;
    let created = created.to_rfc3339_opts(SecondsFormat::Secs, true);
    let nanos = |d: std::time::Duration| d.as_nanos() as u64;
    let config = ImageConfig {
        architecture: architecture.to_owned(),
        variant: variant.map(str::to_owned),
        os: "linux".into(),
        created: created.clone(),
        config: ContainerConfig {
            user: spec.user.clone(),
            exposed_ports: spec
                .exposed
                .iter()
                .map(|p| (p.clone(), oci::Empty {}))
                .collect(),
            env: spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect(),
            entrypoint: spec.entrypoint.clone(),
            cmd: spec.cmd.clone(),
            labels: spec.labels.clone(),
            working_dir: spec.working_dir.clone(),
            volumes: spec
                .volumes
                .iter()
                .map(|v| (v.clone(), oci::Empty {}))
                .collect(),
            stop_signal: spec.stop_signal.clone(),
            healthcheck: spec.healthcheck.as_ref().map(|h| HealthConfig {
                test: h.test.clone(),
                interval: nanos(h.interval),
                timeout: nanos(h.timeout),
                start_period: nanos(h.start_period),
                retries: h.retries.into(),
            }),
        },
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: base
                .iter()
                .flat_map(|b| b.source.layers.iter().map(|l| l.diff_id.clone()))
                .chain([layer.diff_id.clone()])
                .collect(),
        },
        history: base
            .iter()
            .flat_map(|b| b.history.iter().cloned())
            .chain(spec.history.iter().map(|(shown, made_layer)| History {
                created: created.clone(),
                author: None,
                created_by: shown.clone(),
                comment: Some(BY.into()),
                empty_layer: !made_layer,
            }))
            .collect(),
    };
    let config = Blob::new(
        CONFIG_MEDIA_TYPE,
        serde_json::to_vec(&config).expect("a config serializes"),
    );
    let manifest = oci::Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        config: config.descriptor(),
        layers: base
            .iter()
            .flat_map(|b| b.source.layers.iter().map(|l| l.descriptor.clone()))
            .chain([layer.blob.descriptor()])
            .collect(),
    };
    let manifest = Blob::new(
        MANIFEST_MEDIA_TYPE,
        serde_json::to_vec(&manifest).expect("a manifest serializes"),
    );
    Ok(Assembled {
        config,
        layers: vec![layer],
        manifest,
        base: base.map(|b| b.source.clone()),
        base_blobs: BTreeMap::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn image(binary: &[u8], created: i64) -> Assembled {
        let text = "FROM scratch\nCOPY [\"bin/app\", \"/usr/local/bin/app\"]\nUSER 65532\nEXPOSE 8080\nHEALTHCHECK --interval=10s CMD [\"/usr/local/bin/app\", \"health\"]\nARG SHA\nLABEL rev=${SHA}\nENV SHA=${SHA}\nENTRYPOINT [\"/usr/local/bin/app\"]\n";
        let args = BTreeMap::from([("SHA".to_owned(), "c0ffee".to_owned())]);
        let spec = ImageSpec::read(text, &args).unwrap();
        let files = [LayerFile {
            path: "/usr/local/bin/app".into(),
            data: binary.to_vec(),
            mode: 0o755,
        }];
        let created = DateTime::from_timestamp(created, 0).unwrap();
        assemble(&spec, &files, created, "x86_64-unknown-linux-gnu").unwrap()
    }

    #[test]
    fn an_image_on_a_base_has_its_layers_first_and_its_history_before_ours() {
        use crate::image::base::{BaseImage, BaseLayer, BaseSource};
        let layer = BaseLayer {
            diff_id: "sha256:basediff".into(),
            descriptor: Descriptor {
                media_type: LAYER_MEDIA_TYPE.into(),
                digest: "sha256:baseblob".into(),
                size: 7,
                annotations: Default::default(),
            },
        };
        let history = History {
            created: "2020-01-01T00:00:00Z".into(),
            author: None,
            created_by: "ADD rootfs /".into(),
            comment: None,
            empty_layer: false,
        };
        let base = BaseImage {
            reference: "r:5000/b:1".into(),
            manifest_digest: "sha256:m".into(),
            platform: ("amd64".into(), None),
            config: ContainerConfig {
                env: vec!["B=1".into()],
                ..Default::default()
            },
            history: vec![history.clone()],
            source: BaseSource {
                host: "r:5000".into(),
                repository: "b".into(),
                config_digest: "sha256:c".into(),
                manifest_digest: "sha256:m".into(),
                layers: vec![layer.clone()],
            },
        };
        let text = "FROM r:5000/b:1\nCOPY [\"bin/app\", \"/app\"]\nENV C=$B\n";
        let spec = ImageSpec::read_on(text, &BTreeMap::new(), Some(base)).unwrap();
        let files = [LayerFile {
            path: "/app".into(),
            data: b"x".to_vec(),
            mode: 0o755,
        }];
        let created = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        let a = assemble(&spec, &files, created, "x86_64-unknown-linux-gnu").unwrap();
        let config: ImageConfig = serde_json::from_slice(&a.config.data).unwrap();
        assert_eq!(
            config.rootfs.diff_ids,
            ["sha256:basediff".to_owned(), a.layers[0].diff_id.clone()]
        );
        assert_eq!(config.history[0], history);
        assert_eq!(config.config.env, ["B=1", "C=1"]);
        let manifest: oci::Manifest = serde_json::from_slice(&a.manifest.data).unwrap();
        assert_eq!(manifest.layers[0], layer.descriptor);
        assert_eq!(manifest.layers[1].digest, a.layers[0].blob.digest);
        assert_eq!(a.base.unwrap().layers, [layer]);
    }

    #[test]
    fn the_same_inputs_are_the_same_image_id_and_manifest_digest() {
        let (a, b) = (image(b"bin", 1_700_000_000), image(b"bin", 1_700_000_000));
        assert_eq!(a.image_id(), b.image_id());
        assert_eq!(a.manifest_digest(), b.manifest_digest());
        assert_ne!(image(b"bin2", 1_700_000_000).image_id(), a.image_id());
        assert_ne!(image(b"bin", 1_700_000_001).image_id(), a.image_id());
    }

    #[test]
    fn the_config_carries_what_the_dockerfile_says() {
        let a = image(b"bin", 1_700_000_000);
        let config: ImageConfig = serde_json::from_slice(&a.config.data).unwrap();
        assert_eq!(config.created, "2023-11-14T22:13:20Z");
        assert_eq!(
            (config.architecture.as_str(), config.os.as_str()),
            ("amd64", "linux")
        );
        assert_eq!(config.config.user.as_deref(), Some("65532"));
        assert_eq!(config.config.labels["rev"], "c0ffee");
        assert!(config.config.env.contains(&"SHA=c0ffee".to_owned()));
        assert_eq!(config.config.healthcheck.unwrap().interval, 10_000_000_000);
        assert_eq!(config.rootfs.diff_ids, [a.layers[0].diff_id.clone()]);
        let manifest: oci::Manifest = serde_json::from_slice(&a.manifest.data).unwrap();
        assert_eq!(manifest.config.digest, a.image_id());
        assert_eq!(manifest.layers[0].digest, a.layers[0].blob.digest);
        assert_eq!(
            config.history.iter().filter(|h| !h.empty_layer).count(),
            1,
            "one layer"
        );
    }
}
