//! Checking an image's attachments with nothing but its registry and a public key: the
//! signature of its digest, and that the provenance and both SBOMs are about this digest (and,
//! signed, by this key), the provenance's commit and `Cargo.lock` digest those of the image's
//! labels.

use serde::Serialize;
use serde_json::Value;

use super::attach::{self, Kind, Layer};
use super::sign::{PublicKey, dsse};
use super::{CYCLONEDX_PREDICATE, SPDX_PREDICATE, predicate_name, provenance, sbom};
use crate::error::Result;
use crate::plan::{LABEL_CARGO_LOCK, OCI};
use crate::registry::RegistryClient;

/// One check and how it went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `signature`, `provenance`, `SBOM (SPDX)`, `SBOM (CycloneDX)`.
    pub name: String,
    /// Whether it passed.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// The verification of one image.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    /// The reference asked about.
    pub reference: String,
    /// The manifest digest it names.
    pub digest: String,
    /// Whether signatures were checked (`--key`).
    pub key: bool,
    /// `tag` (cosign's tags) or `referrers`.
    pub scheme: &'static str,
    /// Every check, in order.
    pub checks: Vec<Check>,
}

impl Verification {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.checks.iter().all(|c| c.passed)
    }

    /// The lines people read.
    pub fn human(&self) -> String {
        let mut out = format!("{} ({})\n", self.reference, self.digest);
        for c in &self.checks {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            out.push_str(&format!("  {mark}  {}: {}\n", c.name, c.detail));
        }
        out
    }
}

/// Verifies the attachments of `repository@digest` whose image config has `labels`.
pub async fn verify(
    client: &RegistryClient,
    repository: &str,
    reference: &str,
    digest: &str,
    labels: &std::collections::BTreeMap<String, String>,
    key: Option<&PublicKey>,
) -> Result<Verification> {
    let referrers = client.supports_referrers(repository, digest).await?;
    let mut checks = Vec::new();
    if let Some(key) = key {
        let layers = attach::read(client, repository, digest, Kind::Signature, referrers).await?;
        checks.push(signature_check(&layers, key, digest));
    }
    let layers = attach::read(client, repository, digest, Kind::Attestation, referrers).await?;
    for predicate_type in [
        provenance::SLSA_PROVENANCE,
        SPDX_PREDICATE,
        CYCLONEDX_PREDICATE,
    ] {
        checks.push(attestation_check(
            &layers,
            predicate_type,
            digest,
            labels,
            key,
        ));
    }
    Ok(Verification {
        reference: reference.to_owned(),
        digest: digest.to_owned(),
        key: key.is_some(),
        scheme: if referrers { "referrers" } else { "tag" },
        checks,
    })
}

/// The image's signature: some simple-signing layer over this digest verifies with `key`.
pub fn signature_check(layers: &[Layer], key: &PublicKey, digest: &str) -> Check {
    let signatures = layers
        .iter()
        .filter(|l| l.media_type == attach::SIMPLE_SIGNING)
        .count();
    let (passed, detail) = if signatures == 0 {
        (
            false,
            format!("no signature at {}", attach::tag(digest, Kind::Signature)),
        )
    } else if attach::signed_by(layers, key, digest) {
        (
            true,
            format!("signed by the key ({signatures} signature(s))"),
        )
    } else {
        (
            false,
            format!("none of {signatures} signature(s) is by this key over this digest"),
        )
    };
    Check {
        name: "signature".into(),
        passed,
        detail,
    }
}

/// The attestation of `predicate_type`: present, signed by `key` (when given), about `digest`,
/// and for provenance its commit and lock digest those of `labels`.
pub fn attestation_check(
    layers: &[Layer],
    predicate_type: &str,
    digest: &str,
    labels: &std::collections::BTreeMap<String, String>,
    key: Option<&PublicKey>,
) -> Check {
    let result = check_attestation(layers, predicate_type, digest, labels, key);
    Check {
        name: predicate_name(predicate_type).to_owned(),
        passed: result.is_ok(),
        detail: result.unwrap_or_else(|e| e),
    }
}

fn check_attestation(
    layers: &[Layer],
    predicate_type: &str,
    digest: &str,
    labels: &std::collections::BTreeMap<String, String>,
    key: Option<&PublicKey>,
) -> std::result::Result<String, String> {
    let found: Vec<&Layer> = layers
        .iter()
        .filter(|l| {
            l.annotations
                .get(attach::PREDICATE_TYPE)
                .map(String::as_str)
                == Some(predicate_type)
        })
        .collect();
    if found.is_empty() {
        return Err(format!(
            "no attestation at {}",
            attach::tag(digest, Kind::Attestation)
        ));
    }
    let mut why = String::new();
    for layer in found {
        let Some(envelope) = attach::envelope_of(layer) else {
            why = "not a DSSE envelope".into();
            continue;
        };
        let payload = match key {
            Some(key) => match dsse::verify(&envelope, key) {
                Ok(payload) => payload,
                Err(_) => {
                    why = "its signature does not verify with the key (tampered, or another key)"
                        .into();
                    continue;
                }
            },
            None => match envelope.payload_bytes() {
                Some(payload) => payload,
                None => {
                    why = "its payload is not base64".into();
                    continue;
                }
            },
        };
        match statement_check(&payload, predicate_type, digest, labels) {
            Ok(detail) => {
                let signed = if key.is_some() {
                    "signed by the key; "
                } else {
                    ""
                };
                return Ok(format!("{signed}{detail}"));
            }
            Err(e) => why = e,
        }
    }
    Err(why)
}

/// The statement itself: its subject and, by kind, what it claims.
fn statement_check(
    payload: &[u8],
    predicate_type: &str,
    digest: &str,
    labels: &std::collections::BTreeMap<String, String>,
) -> std::result::Result<String, String> {
    let statement: Value =
        serde_json::from_slice(payload).map_err(|e| format!("not an in-toto statement: {e}"))?;
    if statement["predicateType"] != predicate_type {
        return Err(format!(
            "its statement says predicate type {}",
            statement["predicateType"]
        ));
    }
    let subjects = provenance::subject_digests(&statement);
    if !subjects.iter().any(|s| s == digest) {
        return Err(format!(
            "it is about {}, not this image (re-tagged?)",
            subjects.join(", ")
        ));
    }
    let predicate = serde_json::to_vec(&statement["predicate"]).unwrap_or_default();
    match predicate_type {
        provenance::SLSA_PROVENANCE => {
            let claims = provenance::claims(&statement).ok_or("not SLSA provenance")?;
            let revision = labels.get(&format!("{OCI}.revision"));
            if claims.commit.as_ref() != revision {
                return Err(format!(
                    "its commit {} is not the image's revision label {}",
                    claims.commit.as_deref().unwrap_or("(none)"),
                    revision.map_or("(none)", String::as_str)
                ));
            }
            let lock = labels.get(LABEL_CARGO_LOCK);
            if claims.cargo_lock.as_ref() != lock {
                return Err(format!(
                    "its Cargo.lock {} is not the image's label {}",
                    claims.cargo_lock.as_deref().unwrap_or("(none)"),
                    lock.map_or("(none)", String::as_str)
                ));
            }
            Ok(format!(
                "about this digest, commit {} and Cargo.lock match the image labels",
                claims
                    .commit
                    .as_deref()
                    .map_or("", |c| &c[..c.len().min(12)])
            ))
        }
        SPDX_PREDICATE | CYCLONEDX_PREDICATE => {
            let described = if predicate_type == SPDX_PREDICATE {
                sbom::subject_digest_spdx(&predicate)
            } else {
                sbom::subject_digest_cyclonedx(&predicate)
            };
            match described {
                Some(d) if d == digest => {
                    Ok("about this digest, the document describes it too".into())
                }
                Some(d) => Err(format!("the document describes {d}, not this image")),
                None => Err("the document names no image digest".into()),
            }
        }
        _ => Ok("about this digest".into()),
    }
}
