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
/// (`registry.example/team/orders`; Docker Hub images as `index.docker.io/library/name`):
/// see [`docker_reference`].
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

/// The `docker-reference` cosign writes for `image` (a reference with or without tag and
/// digest): its repository as go-containerregistry names it. The first path segment is the
/// registry when it is `localhost` or has a `.` or `:`; otherwise the image is on Docker Hub,
/// which is spelled `index.docker.io`, with `library/` before a single-segment name.
///
/// `docker_reference("orders:1.4.2")` is `index.docker.io/library/orders`;
/// `docker_reference("127.0.0.1:5000/team/orders@sha256:…")` is `127.0.0.1:5000/team/orders`.
pub fn docker_reference(image: &str) -> String {
    let without_digest = image.split_once('@').map_or(image, |(name, _)| name);
    // A tag is after the last ':' when no '/' follows it (else that ':' is a registry's port).
    let repository = match without_digest.rsplit_once(':') {
        Some((name, tag)) if !tag.contains('/') => name,
        _ => without_digest,
    };
    let (registry, path) = match repository.split_once('/') {
        Some((first, rest)) if first == "localhost" || first.contains(['.', ':']) => (first, rest),
        _ => ("", repository),
    };
    let registry = match registry {
        "" | "docker.io" => "index.docker.io",
        other => other,
    };
    if registry == "index.docker.io" && !path.contains('/') {
        format!("{registry}/library/{path}")
    } else {
        format!("{registry}/{path}")
    }
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
    fn docker_references_are_the_repository_as_cosign_names_it() {
        for (image, reference) in [
            ("orders", "index.docker.io/library/orders"),
            ("orders:1.4.2", "index.docker.io/library/orders"),
            ("team/orders:1", "index.docker.io/team/orders"),
            ("docker.io/library/orders", "index.docker.io/library/orders"),
            ("docker.io/orders", "index.docker.io/library/orders"),
            ("index.docker.io/team/orders", "index.docker.io/team/orders"),
            ("localhost/orders", "localhost/orders"),
            ("localhost:5000/orders", "localhost:5000/orders"),
            (
                "127.0.0.1:5000/team/orders:v2",
                "127.0.0.1:5000/team/orders",
            ),
            ("ghcr.io/acme/orders:1@sha256:abcd", "ghcr.io/acme/orders"),
            (
                "registry.example:443/a/b/c@sha256:00",
                "registry.example:443/a/b/c",
            ),
        ] {
            assert_eq!(docker_reference(image), reference, "{image}");
        }
    }

    #[test]
    fn other_payload_types_are_refused() {
        let other = br#"{"critical":{"identity":{"docker-reference":"r"},"image":{"docker-manifest-digest":"sha256:00"},"type":"atomic container signature"},"optional":{"a":1}}"#;
        let error = parse(other).unwrap_err().to_string();
        assert!(error.contains("unknown type"), "{error}");
    }
}
