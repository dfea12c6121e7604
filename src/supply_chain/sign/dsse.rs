//! DSSE envelopes (Dead Simple Signing Envelope v1), in which cosign keeps attestations: the
//! signature is over the pre-authentication encoding ([`pae`]) of the payload type and the
//! payload, never over the payload alone.

use base64::Engine as _;
use base64::alphabet;
use base64::engine::general_purpose::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use serde::{Deserialize, Serialize};

use super::key::{PublicKey, SigningKey};
use crate::error::{Error, Result};

/// The payload type of an in-toto statement (SLSA provenance, SBOM attestations).
pub const IN_TOTO_PAYLOAD_TYPE: &str = "application/vnd.in-toto+json";

/// A DSSE envelope, serialized as cosign writes it (`payloadType`, `payload`, `signatures`).
/// Payload and signatures are kept as the base64 text of the JSON; [`Envelope::payload_bytes`]
/// and [`Signature::sig_bytes`] decode them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// What the payload is, e.g. [`IN_TOTO_PAYLOAD_TYPE`].
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    /// The signed bytes in standard base64.
    pub payload: String,
    /// One signature per signer.
    pub signatures: Vec<Signature>,
}

/// One signature of an [`Envelope`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    /// The signer's key id; empty for cosign's key-based signatures (see [`PublicKey::key_id`]).
    #[serde(default)]
    pub keyid: String,
    /// The ASN.1 DER ECDSA signature of the [`pae`], in standard base64.
    pub sig: String,
}

impl Envelope {
    /// An envelope of `payload` with no signature (attached when no key is given).
    pub fn unsigned(payload_type: &str, payload: &[u8]) -> Envelope {
        Envelope {
            payload_type: payload_type.to_owned(),
            payload: STANDARD.encode(payload),
            signatures: Vec::new(),
        }
    }

    /// The payload's bytes, without checking any signature; `None` when it is not base64
    /// (standard or URL-safe, as DSSE allows).
    pub fn payload_bytes(&self) -> Option<Vec<u8>> {
        decode_base64(&self.payload)
    }
}

impl Signature {
    /// The signature's bytes; `None` when it is not base64.
    pub fn sig_bytes(&self) -> Option<Vec<u8>> {
        decode_base64(&self.sig)
    }
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

/// An envelope of `payload` signed by `key`, as cosign makes one: one signature, empty `keyid`.
pub fn sign(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Envelope {
    Envelope {
        payload_type: payload_type.to_owned(),
        payload: STANDARD.encode(payload),
        signatures: vec![Signature {
            keyid: key.public_key().key_id(),
            sig: STANDARD.encode(key.sign(&pae(payload_type, payload))),
        }],
    }
}

/// The payload of `envelope` when one of its signatures is `key`'s over the [`pae`] (whatever
/// its `keyid`, as cosign verifies an envelope against a key).
pub fn verify(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>> {
    let failed = |message: String| {
        Error::step_with_help(
            "verify",
            message,
            "check that the public key is the one of the key that signed",
        )
    };
    let Some(payload) = envelope.payload_bytes() else {
        return Err(failed("the DSSE envelope's payload is not base64".into()));
    };
    if envelope.signatures.is_empty() {
        return Err(failed("the DSSE envelope has no signature".into()));
    }
    let message = pae(&envelope.payload_type, &payload);
    let signed = envelope
        .signatures
        .iter()
        .filter_map(Signature::sig_bytes)
        .any(|sig| key.verify(&message, &sig));
    if signed {
        Ok(payload)
    } else {
        Err(failed(format!(
            "no signature of the DSSE envelope ({} of them) verifies with the public key {}",
            envelope.signatures.len(),
            key.fingerprint()
        )))
    }
}

/// Standard or URL-safe base64, padded or not (the DSSE specification allows both alphabets).
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    const LENIENT: GeneralPurposeConfig =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    GeneralPurpose::new(&alphabet::STANDARD, LENIENT)
        .decode(text)
        .or_else(|_| GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT).decode(text))
        .ok()
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
            payload: STANDARD.encode(b"{}"),
            signatures: vec![Signature {
                keyid: String::new(),
                sig: STANDARD.encode([0xfb, 0xff]),
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
        assert_eq!(envelope.payload_bytes().unwrap(), [0xff, 0xef]);
        assert_eq!(envelope.signatures[0].sig_bytes().unwrap(), [0]);
        assert_eq!(envelope.signatures[0].keyid, "");
    }
}
