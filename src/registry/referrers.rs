//! The OCI 1.1 referrers API (`GET /v2/<name>/referrers/<digest>`): the manifests whose `subject`
//! is a given manifest. A registry without it answers 404 (Distribution 2.8 does), and attachments
//! then go under cosign's tags instead.

use bytes::Bytes;
use http::Method;
use serde::Deserialize;

use super::{RegistryClient, fail};
use crate::error::Result;

/// The media type a referrers response is an index of.
const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

impl RegistryClient {
    /// Whether the registry serves the referrers API for `repository` (a 200 index for `digest`).
    pub async fn supports_referrers(&self, repository: &str, digest: &str) -> Result<bool> {
        Ok(self
            .referrers_page(repository, digest, None)
            .await?
            .is_some())
    }

    /// The digests of the manifests referring to `digest` (of `artifact_type`, when given),
    /// in the order the registry lists them; none when the registry has no referrers API.
    pub async fn referrers(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Vec<String>> {
        let Some(body) = self
            .referrers_page(repository, digest, artifact_type)
            .await?
        else {
            return Ok(Vec::new());
        };
        parse_referrers(&body, artifact_type).map_err(|e| {
            fail(
                self.host(),
                "referrers",
                format!("the referrers of `{repository}@{digest}`: {e}"),
                "check the registry",
            )
        })
    }

    async fn referrers_page(
        &self,
        repository: &str,
        digest: &str,
        artifact_type: Option<&str>,
    ) -> Result<Option<Bytes>> {
        let mut path = format!("/v2/{repository}/referrers/{digest}");
        if let Some(t) = artifact_type {
            path.push_str(&format!("?artifactType={}", t.replace('+', "%2B")));
        }
        let scope = self.read_scope(repository);
        let response = self
            .send(
                Method::GET,
                &path,
                &[("Accept", OCI_INDEX)],
                Bytes::new(),
                &scope,
            )
            .await?;
        let index = response
            .header("content-type")
            .is_some_and(|t| t.starts_with(OCI_INDEX));
        Ok((response.status.as_u16() == 200 && index).then_some(response.body))
    }
}

/// The digests an OCI referrers index lists, filtered by `artifact_type` (a registry need not
/// apply the filter itself).
pub fn parse_referrers(
    body: &[u8],
    artifact_type: Option<&str>,
) -> std::result::Result<Vec<String>, String> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Descriptor {
        digest: String,
        #[serde(default)]
        artifact_type: Option<String>,
    }
    #[derive(Deserialize)]
    struct Index {
        #[serde(default)]
        manifests: Vec<Descriptor>,
    }
    let index: Index = serde_json::from_slice(body).map_err(|e| format!("not an index: {e}"))?;
    Ok(index
        .manifests
        .into_iter()
        .filter(|d| artifact_type.is_none_or(|t| d.artifact_type.as_deref() == Some(t)))
        .map(|d| d.digest)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example response of the OCI Distribution spec 1.1 ("Listing Referrers").
    const SPEC_EXAMPLE: &str = r#"{
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "size": 1234,
          "digest": "sha256:a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
          "artifactType": "application/vnd.example.sbom.v1",
          "annotations": { "org.opencontainers.image.created": "2022-01-01T14:42:55Z", "org.example.sbom.format": "json" }
        },
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "size": 1234,
          "digest": "sha256:a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2",
          "artifactType": "application/vnd.example.signature.v1",
          "annotations": { "org.opencontainers.image.created": "2022-01-01T07:21:33Z", "org.example.signature.fingerprint": "abcd" }
        }
      ]
    }"#;

    #[test]
    fn the_spec_example_lists_both_referrers_and_filters_by_artifact_type() {
        let all = parse_referrers(SPEC_EXAMPLE.as_bytes(), None).unwrap();
        assert_eq!(all.len(), 2);
        assert!(all[0].starts_with("sha256:a1"));
        let signatures = parse_referrers(
            SPEC_EXAMPLE.as_bytes(),
            Some("application/vnd.example.signature.v1"),
        )
        .unwrap();
        assert_eq!(signatures.len(), 1);
        assert!(signatures[0].starts_with("sha256:a2"));
        let empty = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}"#;
        assert!(parse_referrers(empty.as_bytes(), None).unwrap().is_empty());
        assert!(parse_referrers(b"<html>", None).is_err());
    }
}
