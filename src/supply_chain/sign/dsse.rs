//! DSSE envelopes (Dead Simple Signing Envelope v1), in which cosign keeps attestations: the
//! signature is over the pre-authentication encoding ([`pae`]) of the payload type and the
//! payload, never over the payload alone.

use serde::{Deserialize, Serialize};

use super::key::{PublicKey, SigningKey};
use crate::error::{Error, Result};

/// The payload type of an in-toto statement (SLSA provenance, SBOM attestations).
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope, serialized as cosign writes it (`payloadType`, `payload`, `signatures`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What the payload is, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signed bytes (standard base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub payload: Vec<u8>,
    /// One signature per signer.
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's key id; empty for cosign's key-based signatures (see [`PublicKey::key_id`]).
    #[serde(default)]
    pub keyid: String,
    /// The ASN.1 DER ECDSA signature of the [`pae`] (standard base64 in JSON).
    #[serde(with = "base64_bytes")]
    pub sig: Vec<u8>,
}

/// The DSSEv1 pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`, lengths in ASCII decimal.
pub fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// An envelope of `payload` signed by `key`.
pub fn sign(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Envelope {
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: payload.to_vec(),
        signatures: vec![Signature {
            keyid: key.public_key().key_id(),
            sig: key.sign(&pae(payload_type, payload)),
        }],
    }
}

/// The payload of `envelope` when one of its signatures is `key`'s (whatever its `keyid`, as
/// cosign verifies an envelope against a key).
pub fn verify(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>> {
    let message = pae(&envelope.payload_type, &envelope.payload);
    if envelope
        .signatures
        .iter()
        .any(|s| key.verify(&message, &s.sig))
    {
        return Ok(envelope.payload.clone());
    }
    let message = if envelope.signatures.is_empty() {
        "the DSSE envelope has no signature".to_owned()
    } else {
        format!(
            "no signature of the DSSE envelope ({} of them) verifies with the public key {}",
            envelope.signatures.len(),
            key.fingerprint()
        )
    };
    Err(Error::step_with_help(
        "verify",
        message,
        "check that the public key is the one of the key that signed",
    ))
}

/// Bytes as base64 in JSON: written in standard base64, read in standard or URL-safe base64,
/// padded or not (the DSSE specification allows both alphabets).
mod base64_bytes {
    use base64::Engine as _;
    use base64::alphabet;
    use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};

    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);

    pub fn serialize<S: serde::Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        GeneralPurpose::new(&alphabet::STANDARD, LENIENT)
            .decode(&text)
            .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT).decode(&text))
            .map_err(|_| serde::de::Error::custom("not base64"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_is_the_specifications_example() {
        // The DSSE protocol document's test vector.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
        );
    }

    #[test]
    fn envelopes_serialize_in_cosigns_field_order() {
        let envelope = Envelope {
            payload_type: IN_TOTO_PAYLOAD_TYPE.into(),
            payload: b"{}".to_vec(),
            signatures: vec![Signature {
                keyid: String::new(),
                sig: vec![0xfb, 0xff],
            }],
        };
        assert_eq!(
            serde_json::to_string(&envelope).unwrap(),
            r#"{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"","sig":"+/8="}]}"#
        );
    }

    #[test]
    fn envelopes_read_url_safe_base64() {
        let json = r#"{"payloadType":"t","payload":"_-8","signatures":[{"sig":"AA=="}]}"#;
        let envelope: Envelope = serde_json::from_str(json).unwrap();
        assert_eq!(envelope.payload, [0xff, 0xef]);
        assert_eq!(envelope.signatures[0].keyid, "");
    }
}
