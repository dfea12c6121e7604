//! The supply chain of a released image: what is inside it ([`sbom`]), how and from what it was
//! made ([`provenance`]), and who vouches for both ([`sign`]); [`attach`] puts them beside the image
//! in its registry the way cosign reads them, and `verify` checks them with nothing but the
//! registry and a public key.

pub mod attach;
pub mod provenance;
pub mod sbom;
pub mod sign;
pub mod verify;

/// The documents of one image, as written beside the report and attached in the registry.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Documents {
    /// Where they were written (`target/docker-release/<package>/`).
    pub dir: camino::Utf8PathBuf,
    /// What was attached to the image digest.
    #[serde(flatten)]
    pub attached: attach::Attached,
}

/// The predicate type of an SPDX SBOM attestation (cosign's `--type spdxjson`).
pub const SPDX_PREDICATE: &str = "https://spdx.dev/Document";
/// The predicate type of a CycloneDX SBOM attestation (cosign's `--type cyclonedx`).
pub const CYCLONEDX_PREDICATE: &str = "https://cyclonedx.org/bom";

/// The short name of an attestation's predicate type, for people.
pub fn predicate_name(predicate_type: &str) -> &str {
    match predicate_type {
        provenance::SLSA_PROVENANCE => "provenance",
        SPDX_PREDICATE => "SBOM (SPDX)",
        CYCLONEDX_PREDICATE => "SBOM (CycloneDX)",
        other => other,
    }
}
