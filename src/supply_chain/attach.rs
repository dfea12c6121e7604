//! Attachments in the registry, stored the way cosign stores and reads them, so `cosign verify`
//! and `cosign verify-attestation` find them.
//!
//! Beside the image `repo@sha256:<hex>`, two tags of the same repository, each an OCI image
//! manifest whose layers are the attachments:
//! - `sha256-<hex>.sig`: one layer per signature, the simple-signing payload as the blob and its
//!   signature in the `dev.cosignproject.cosign/signature` annotation;
//! - `sha256-<hex>.att`: one layer per attestation, a DSSE envelope of an in-toto statement,
//!   its predicate type in the `predicateType` annotation (the envelope holds the signature).
//!
//! Where the registry serves the OCI 1.1 referrers API, each attachment manifest is pushed by
//! digest with the image as its `subject` instead (see [`crate::registry::referrers`]). Either way
//! the image itself is never touched: a single-platform image stays a single manifest, not an
//! index.
//!
//! Attaching is idempotent: a signature by the same key over the same payload is kept (ECDSA
//! signatures differ each time, so re-signing would churn the tag), and so is an attestation of
//! the same predicate type about the same digest by the same key (a retried release re-attests
//! the identical image, and the first provenance stays true); other keys' signatures and other
//! predicate types are kept; an attestation this key did not sign is replaced (cosign's
//! `attest --replace`).

use std::collections::BTreeMap;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::json;

use crate::error::{Error, Result};
use crate::image::Blob;
use crate::registry::RegistryClient;
use crate::supply_chain::sign::{
    Envelope, IN_TOTO_PAYLOAD_TYPE, PublicKey, SigningKey, dsse, simple_signing,
};

/// The layer media type of a cosign signature.
pub const SIMPLE_SIGNING: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
/// The layer media type of a cosign attestation.
pub const DSSE_ENVELOPE: &str = "application/vnd.dsse.envelope.v1+json";
/// The annotation holding a signature (base64), empty on attestations.
pub const SIGNATURE: &str = "dev.cosignproject.cosign/signature";
/// The annotation naming an attestation's predicate type.
pub const PREDICATE_TYPE: &str = "predicateType";
/// The `artifactType` of a signature pushed as a referrer.
pub const SIGNATURE_ARTIFACT: &str = "application/vnd.dev.cosign.artifact.sig.v1+json";
/// The `artifactType` of an attestation pushed as a referrer.
pub const ATTESTATION_ARTIFACT: &str = "application/vnd.dsse.envelope.v1+json";

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";

/// What an attachment is: cosign's tag suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `.sig`.
    Signature,
    /// `.att`.
    Attestation,
}

impl Kind {
    fn suffix(self) -> &'static str {
        match self {
            Kind::Signature => "sig",
            Kind::Attestation => "att",
        }
    }

    fn artifact_type(self) -> &'static str {
        match self {
            Kind::Signature => SIGNATURE_ARTIFACT,
            Kind::Attestation => ATTESTATION_ARTIFACT,
        }
    }
}

/// cosign's tag for the `kind` attachments of `digest`: `sha256-<hex>.sig`.
pub fn tag(digest: &str, kind: Kind) -> String {
    format!("{}.{}", digest.replacen(':', "-", 1), kind.suffix())
}

/// One layer of an attachment manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// Its media type.
    pub media_type: String,
    /// Its content.
    pub data: Vec<u8>,
    /// Its annotations.
    pub annotations: BTreeMap<String, String>,
}

/// An in-toto statement to attach.
#[derive(Debug, Clone)]
pub struct Attestation {
    /// Its predicate type.
    pub predicate_type: String,
    /// The statement (JSON).
    pub statement: Vec<u8>,
}

/// Where the attachments of one image went.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Attached {
    /// The signature's tag (or referrer digest), when the image was signed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// The attestations' tag (or referrer digest).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attestations: Option<String>,
    /// The predicate types attached.
    pub predicate_types: Vec<String>,
    /// Whether the attestations are signed.
    pub signed: bool,
    /// `tag` (cosign's tag scheme) or `referrers` (OCI 1.1).
    pub scheme: &'static str,
    /// Each attestation's statement as attached: the one given, or the one already there.
    #[serde(skip)]
    pub statements: Vec<(String, Vec<u8>)>,
}

/// Signs `repository@digest` (the image named `image`) with `key`, when given, and
/// attaches each of `attestations` (DSSE-signed with `key`, unsigned without).
pub async fn attach(
    client: &RegistryClient,
    repository: &str,
    image: &str,
    digest: &str,
    attestations: &[Attestation],
    key: Option<&SigningKey>,
) -> Result<Attached> {
    let referrers = client.supports_referrers(repository, digest).await?;
    // A referrer names the image by its full descriptor.
    let subject = match referrers {
        true => {
            let image = client.manifest(repository, digest).await?.ok_or_else(|| {
                Error::step(
                    "attach",
                    format!("{repository}@{digest} is not in the registry"),
                )
            })?;
            Some(
                json!({ "mediaType": image.media_type, "digest": digest, "size": image.bytes.len() }),
            )
        }
        false => None,
    };
    let existing = |kind| read(client, repository, digest, kind, referrers);
    let mut attached = Attached {
        predicate_types: attestations
            .iter()
            .map(|a| a.predicate_type.clone())
            .collect(),
        signed: key.is_some(),
        scheme: if referrers { "referrers" } else { "tag" },
        ..Attached::default()
    };
    if let Some(key) = key {
        let payload = simple_signing::payload(&simple_signing::docker_reference(image), digest);
        let public = key.public_key();
        let mut layers = existing(Kind::Signature).await?;
        let ours = |l: &Layer| {
            l.media_type == SIMPLE_SIGNING
                && signature_of(l).is_some_and(|sig| public.verify(&l.data, &sig))
        };
        let kept = signed_by(&layers, &public, digest);
        if !kept {
            layers.retain(|l| !ours(l));
            let sig = key.sign(&payload);
            layers.push(Layer {
                media_type: SIMPLE_SIGNING.into(),
                data: payload,
                annotations: BTreeMap::from([(
                    SIGNATURE.into(),
                    base64::engine::general_purpose::STANDARD.encode(sig),
                )]),
            });
        }
        attached.signature = Some(
            write(
                client,
                repository,
                digest,
                Kind::Signature,
                &layers,
                kept,
                subject.as_ref(),
            )
            .await?,
        );
    }
    if !attestations.is_empty() {
        let mut layers = existing(Kind::Attestation).await?;
        let mut unchanged = true;
        for attestation in attestations {
            let same_type =
                |l: &Layer| l.annotations.get(PREDICATE_TYPE) == Some(&attestation.predicate_type);
            // One already attached to this digest (a retried release; provenance differs only
            // in its times) stands, when it is by this key or none is given.
            let current = layers.iter().filter(|l| same_type(l)).find_map(|l| {
                let envelope = envelope_of(l)?;
                let payload = match key {
                    Some(k) => dsse::verify(&envelope, &k.public_key()).ok()?,
                    None => envelope.payload_bytes()?,
                };
                let statement: serde_json::Value = serde_json::from_slice(&payload).ok()?;
                (statement["predicateType"] == attestation.predicate_type.as_str()
                    && super::provenance::subject_digests(&statement)
                        .iter()
                        .any(|d| d == digest))
                .then_some(payload)
            });
            if let Some(statement) = current {
                attached
                    .statements
                    .push((attestation.predicate_type.clone(), statement));
                continue;
            }
            attached.statements.push((
                attestation.predicate_type.clone(),
                attestation.statement.clone(),
            ));
            unchanged = false;
            layers.retain(|l| !same_type(l));
            let envelope = match key {
                Some(key) => dsse::sign(key, IN_TOTO_PAYLOAD_TYPE, &attestation.statement),
                None => Envelope::unsigned(IN_TOTO_PAYLOAD_TYPE, &attestation.statement),
            };
            layers.push(Layer {
                media_type: DSSE_ENVELOPE.into(),
                data: serde_json::to_vec(&envelope).expect("envelopes serialize"),
                annotations: BTreeMap::from([
                    (SIGNATURE.into(), String::new()),
                    (PREDICATE_TYPE.into(), attestation.predicate_type.clone()),
                ]),
            });
        }
        attached.attestations = Some(
            write(
                client,
                repository,
                digest,
                Kind::Attestation,
                &layers,
                unchanged,
                subject.as_ref(),
            )
            .await?,
        );
    }
    Ok(attached)
}

/// Pushes `layers` as the `kind` attachment of `digest` (unless `unchanged`): under cosign's tag,
/// or by digest as a referrer of `subject`. Returns the tag or the referrer's digest.
async fn write(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    kind: Kind,
    layers: &[Layer],
    unchanged: bool,
    subject: Option<&serde_json::Value>,
) -> Result<String> {
    let (config, manifest) = manifest(layers, subject.map(|s| (kind, s)));
    let name = match subject {
        Some(_) => manifest.digest.clone(),
        None => tag(digest, kind),
    };
    if unchanged {
        return Ok(name);
    }
    for blob in layers
        .iter()
        .map(|l| Blob::new(&l.media_type, l.data.clone()))
        .chain([config])
    {
        client
            .push_blob(repository, &blob.digest, blob.data.into(), &[])
            .await?;
    }
    client
        .put_manifest_bytes(repository, &name, OCI_MANIFEST, manifest.data.into())
        .await?;
    Ok(name)
}

/// The attachment manifest of `layers` and its config, as cosign writes them: the config lists
/// the layers as its root filesystem (they are uncompressed), with no platform. As a referrer it
/// names `subject` (the image's descriptor) and its artifact type.
fn manifest(layers: &[Layer], subject: Option<(Kind, &serde_json::Value)>) -> (Blob, Blob) {
    let blobs: Vec<Blob> = layers
        .iter()
        .map(|l| Blob::new(&l.media_type, l.data.clone()))
        .collect();
    let config = json!({
        "architecture": "",
        "os": "",
        "created": "0001-01-01T00:00:00Z",
        "config": {},
        "history": [{ "created": "0001-01-01T00:00:00Z" }],
        "rootfs": { "type": "layers", "diff_ids": blobs.iter().map(|b| &b.digest).collect::<Vec<_>>() },
    });
    let config = Blob::new(OCI_CONFIG, serde_json::to_vec(&config).expect("json"));
    let descriptors: Vec<_> = blobs
        .iter()
        .zip(layers)
        .map(|(b, l)| {
            json!({
                "mediaType": b.media_type,
                "digest": b.digest,
                "size": b.data.len(),
                "annotations": l.annotations,
            })
        })
        .collect();
    let mut manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": { "mediaType": config.media_type, "digest": config.digest, "size": config.data.len() },
        "layers": descriptors,
    });
    if let Some((kind, subject)) = subject {
        manifest["artifactType"] = json!(kind.artifact_type());
        manifest["subject"] = subject.clone();
    }
    let manifest = Blob::new(OCI_MANIFEST, serde_json::to_vec(&manifest).expect("json"));
    (config, manifest)
}

/// The layers of the `kind` attachment of `digest` (none when there is none), each blob read and
/// checked against its digest.
pub async fn read(
    client: &RegistryClient,
    repository: &str,
    digest: &str,
    kind: Kind,
    referrers: bool,
) -> Result<Vec<Layer>> {
    let manifests = if referrers {
        let mut found = Vec::new();
        for d in client
            .referrers(repository, digest, Some(kind.artifact_type()))
            .await?
        {
            found.extend(client.manifest(repository, &d).await?);
        }
        found
    } else {
        client
            .manifest(repository, &tag(digest, kind))
            .await?
            .into_iter()
            .collect()
    };
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        media_type: String,
        digest: String,
        #[serde(default)]
        annotations: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    struct Body {
        #[serde(default)]
        layers: Vec<Descriptor>,
    }
    let mut layers = Vec::new();
    for manifest in manifests {
        let body: Body = serde_json::from_slice(&manifest.bytes).map_err(|e| {
            Error::step(
                "attach",
                format!(
                    "{repository}:{} is not an image manifest: {e}",
                    tag(digest, kind)
                ),
            )
        })?;
        for d in body.layers {
            let data = client.blob(repository, &d.digest).await?.ok_or_else(|| {
                Error::step(
                    "attach",
                    format!(
                        "the attachment layer {} is missing from {repository}",
                        d.digest
                    ),
                )
            })?;
            layers.push(Layer {
                media_type: d.media_type,
                data: data.to_vec(),
                annotations: d.annotations,
            });
        }
    }
    Ok(layers)
}

/// The decoded signature annotation of a signature layer.
pub fn signature_of(layer: &Layer) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(layer.annotations.get(SIGNATURE)?)
        .ok()
}

/// The DSSE envelope of an attestation layer.
pub fn envelope_of(layer: &Layer) -> Option<Envelope> {
    serde_json::from_slice(&layer.data).ok()
}

/// Whether any signature layer verifies with `key` over a payload naming `digest`.
pub fn signed_by(layers: &[Layer], key: &PublicKey, digest: &str) -> bool {
    layers.iter().any(|l| {
        l.media_type == SIMPLE_SIGNING
            && signature_of(l).is_some_and(|sig| key.verify(&l.data, &sig))
            && simple_signing::parse(&l.data).is_ok_and(|s| s.manifest_digest == digest)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosign_tags_name_the_digest_with_a_dash() {
        assert_eq!(tag("sha256:ab12", Kind::Signature), "sha256-ab12.sig");
        assert_eq!(tag("sha256:ab12", Kind::Attestation), "sha256-ab12.att");
    }

    #[test]
    fn an_attachment_manifest_lists_its_layers_in_its_config() {
        let layer = Layer {
            media_type: SIMPLE_SIGNING.into(),
            data: b"{}".to_vec(),
            annotations: BTreeMap::from([(SIGNATURE.into(), "c2ln".into())]),
        };
        let (config, written) = manifest(std::slice::from_ref(&layer), None);
        let m: serde_json::Value = serde_json::from_slice(&written.data).unwrap();
        let c: serde_json::Value = serde_json::from_slice(&config.data).unwrap();
        let layer_digest = crate::image::digest(b"{}");
        assert_eq!(m["layers"][0]["digest"], layer_digest.as_str());
        assert_eq!(m["layers"][0]["annotations"][SIGNATURE], "c2ln");
        assert_eq!(m["config"]["digest"], config.digest.as_str());
        assert_eq!(c["rootfs"]["diff_ids"][0], layer_digest.as_str());
        assert!(m.get("subject").is_none());
        let subject = json!({ "mediaType": OCI_MANIFEST, "digest": "sha256:ab", "size": 7 });
        let (_, referrer) = manifest(&[layer], Some((Kind::Signature, &subject)));
        let r: serde_json::Value = serde_json::from_slice(&referrer.data).unwrap();
        assert_eq!(r["subject"]["digest"], "sha256:ab");
        assert_eq!(r["artifactType"], SIGNATURE_ARTIFACT);
    }
}
