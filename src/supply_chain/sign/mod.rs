//! Keys and signatures cosign verifies with `cosign verify --key` and
//! `cosign verify-attestation --key`: ECDSA P-256 keys in cosign's formats ([`key`]), the
//! simple-signing payload of an image signature ([`simple_signing`]) and DSSE envelopes for
//! attestations ([`dsse`]). Nothing here talks to a registry; [`super::attach`] does.

pub mod dsse;
pub mod key;
pub mod simple_signing;

pub use dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE, Signature, pae};
pub use key::{PASSWORD_VARIABLE, PublicKey, SigningKey, pkcs8_pem};
pub use simple_signing::{SIGNATURE_TYPE, SimpleSigning, docker_reference};
