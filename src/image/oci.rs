//! The documents of an assembled image: the image config (Docker's fields, which the engine
//! reads, including `Healthcheck`) and the OCI manifest. Serialized with a fixed field order and
//! sorted maps, so that the same image is the same bytes, hence the same digests. Fields
//! are named and documented as in the OCI image spec and Docker's image spec.
#![allow(missing_docs)]

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The image config (`application/vnd.oci.image.config.v1+json`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ImageConfig {
    /// `amd64`, `arm64`, ...
    pub architecture: String,
    /// `v8` for `arm64` and the like.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// `linux`.
    pub os: String,
    /// RFC 3339, the commit time.
    pub created: String,
    /// What a container of the image runs with.
    pub config: ContainerConfig,
    /// The layers' diff IDs.
    pub rootfs: RootFs,
    /// One entry per instruction, as `docker history` shows them.
    pub history: Vec<History>,
}

/// The `config` object (Docker's names).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub exposed_ports: BTreeMap<String, Empty>,
    #[serde(
        default,
        skip_serializing_if = "Vec::is_empty",
        deserialize_with = "nullable"
    )]
    pub env: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub labels: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "nullable"
    )]
    pub volumes: BTreeMap<String, Empty>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<HealthConfig>,
}

/// `{}` in `ExposedPorts`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Empty {}

/// Docker's `Healthcheck` (durations in nanoseconds; 0 is the engine's default).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "PascalCase")]
pub struct HealthConfig {
    pub test: Vec<String>,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub interval: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub timeout: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub start_period: u64,
    #[serde(default, skip_serializing_if = "is_zero")]
    pub retries: u64,
}

/// `null` (as Docker writes an empty list or map) reads as empty.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// `rootfs`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct RootFs {
    /// Always `layers`.
    #[serde(rename = "type")]
    pub kind: String,
    /// `sha256:` of each uncompressed layer, base first.
    pub diff_ids: Vec<String>,
}

/// One `history` entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct History {
    #[serde(default)]
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default)]
    pub created_by: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
}

/// An OCI image manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: String,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
}

/// A content descriptor.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The OCI platform of a Rust target triple (`aarch64-unknown-linux-gnu` -> `arm64`, `v8`).
pub fn platform(triple: &str) -> Option<(&'static str, Option<&'static str>)> {
    let arch = triple.split('-').next()?;
    Some(match arch {
        "x86_64" => ("amd64", None),
        "aarch64" => ("arm64", Some("v8")),
        "i686" | "i586" => ("386", None),
        "armv7" => ("arm", Some("v7")),
        "arm" => ("arm", Some("v6")),
        "powerpc64le" => ("ppc64le", None),
        "s390x" => ("s390x", None),
        "riscv64gc" | "riscv64" => ("riscv64", None),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_triples_name_oci_platforms() {
        assert_eq!(platform("x86_64-unknown-linux-gnu"), Some(("amd64", None)));
        assert_eq!(
            platform("aarch64-unknown-linux-musl"),
            Some(("arm64", Some("v8")))
        );
        assert_eq!(platform("wasm32-wasip1"), None);
    }

    #[test]
    fn a_config_serializes_the_engines_names_and_skips_what_is_unset() {
        let config = ContainerConfig {
            user: Some("65532".into()),
            exposed_ports: BTreeMap::from([("8080/tcp".into(), Empty {})]),
            healthcheck: Some(HealthConfig {
                test: vec!["CMD".into(), "x".into()],
                interval: 10_000_000_000,
                timeout: 0,
                start_period: 0,
                retries: 3,
            }),
            ..ContainerConfig::default()
        };
        assert_eq!(
            serde_json::to_string(&config).unwrap(),
            r#"{"User":"65532","ExposedPorts":{"8080/tcp":{}},"Healthcheck":{"Test":["CMD","x"],"Interval":10000000000,"Retries":3}}"#
        );
    }
}
