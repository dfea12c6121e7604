//! The payload cosign signs for an image ("simple signing", sigstore's `payload.Cosign`): the
//! image's repository and manifest digest, in exactly the bytes Go's `encoding/json` writes.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `critical.type` of a cosign image signature.
pub const SIGNATURE_TYPE: &str = "cosign container image signature";

/// What a simple-signing payload claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleSigning {
    /// `critical.identity.docker-reference`: the repository, as go-containerregistry's
    /// `Repository.Name()` spells it (`registry/path`, no tag or digest).
    pub docker_reference: String,
    /// `critical.image.docker-manifest-digest`, e.g. `sha256:…`.
    pub manifest_digest: String,
}

// Field order is the JSON's: Go writes struct fields in declaration order.
#[derive(Serialize, Deserialize)]
struct Payload {
    critical: Critical,
    optional: Option<serde_json::Value>,
}

#[derive(Serialize, Deserialize)]
struct Critical {
    identity: Identity,
    image: Image,
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Serialize, Deserialize)]
struct Identity {
    #[serde(rename = "docker-reference")]
    docker_reference: String,
}

#[derive(Serialize, Deserialize)]
struct Image {
    #[serde(rename = "docker-manifest-digest")]
    docker_manifest_digest: String,
}

/// The bytes cosign signs for the image `docker_reference@manifest_digest`:
/// `{"critical":{"identity":{"docker-reference":…},"image":{"docker-manifest-digest":…},
/// "type":"cosign container image signature"},"optional":null}`.
///
/// `docker_reference` is the repository without tag or digest, as cosign writes it
/// (`registry.example/team/orders`; Docker Hub images as `index.docker.io/library/name`).
pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
    let payload = Payload {
        critical: Critical {
            identity: Identity {
                docker_reference: docker_reference.to_owned(),
            },
            image: Image {
                docker_manifest_digest: manifest_digest.to_owned(),
            },
            kind: SIGNATURE_TYPE.to_owned(),
        },
        optional: None,
    };
    let json = serde_json::to_string(&payload).expect("the payload serializes");
    // Go's encoding/json escapes these for HTML; no valid reference or digest has them, but the
    // bytes must be Go's whatever the input.
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// Reads a simple-signing payload, refusing any other `critical.type`.
pub fn parse(bytes: &[u8]) -> Result<SimpleSigning> {
    let payload: Payload = serde_json::from_slice(bytes).map_err(|e| {
        Error::step(
            "verify",
            format!("the signature payload is not a cosign simple-signing payload: {e}"),
        )
    })?;
    if payload.critical.kind != SIGNATURE_TYPE {
        return Err(Error::step(
            "verify",
            format!(
                "the signature payload is of an unknown type {:?}, not {SIGNATURE_TYPE:?}",
                crate::error::printable(&payload.critical.kind, 80)
            ),
        ));
    }
    Ok(SimpleSigning {
        docker_reference: payload.critical.identity.docker_reference,
        manifest_digest: payload.critical.image.docker_manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_is_cosigns_bytes_and_parses_back() {
        let digest = format!("sha256:{}", "ab".repeat(32));
        let bytes = payload("localhost:5000/orders", &digest);
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"critical":{{"identity":{{"docker-reference":"localhost:5000/orders"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#
            )
        );
        let parsed = parse(&bytes).unwrap();
        assert_eq!(parsed.docker_reference, "localhost:5000/orders");
        assert_eq!(parsed.manifest_digest, digest);
    }

    #[test]
    fn other_payload_types_are_refused() {
        let other = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{"a":1}}"#;
        let error = parse(other).unwrap_err().to_string();
        assert!(error.contains("unknown type"), "{error}");
    }
}
