//! TEMPORARY stub of the signing API (replaced by the `sign` branch).
#![allow(missing_docs, unused)]
use crate::error::Result;
pub mod dsse {
    use super::*;
    pub fn sign(key: &SigningKey, payload_type: &str, payload: &[u8]) -> Envelope {
        unimplemented!()
    }
    pub fn verify(envelope: &Envelope, key: &PublicKey) -> Result<Vec<u8>> {
        unimplemented!()
    }
}
pub mod simple_signing {
    use super::*;
    pub struct SimpleSigning {
        pub docker_reference: String,
        pub manifest_digest: String,
    }
    pub fn payload(docker_reference: &str, manifest_digest: &str) -> Vec<u8> {
        unimplemented!()
    }
    pub fn parse(bytes: &[u8]) -> Result<SimpleSigning> {
        unimplemented!()
    }
}
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<Signature>,
}
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Signature {
    pub keyid: String,
    pub sig: String,
}
#[derive(Debug)]
pub struct SigningKey;
#[derive(Debug)]
pub struct PublicKey;
impl SigningKey {
    pub fn load(reference: &str, password: Option<&str>) -> Result<SigningKey> {
        unimplemented!()
    }
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        unimplemented!()
    }
    pub fn public_key(&self) -> PublicKey {
        unimplemented!()
    }
}
impl PublicKey {
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<PublicKey> {
        unimplemented!()
    }
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        unimplemented!()
    }
}
