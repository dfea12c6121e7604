//! ECDSA P-256 keys as cosign keeps them: the private key in a PEM file (cosign's encrypted
//! format, plain PKCS#8 or SEC1), the public key as the SPKI `PUBLIC KEY` PEM of `cosign.pub`.
//!
//! cosign's encrypted key (`cosign generate-key-pair`, go-securesystemslib's `encrypted`
//! package) is a PEM block `ENCRYPTED SIGSTORE PRIVATE KEY` (or the older `ENCRYPTED COSIGN
//! PRIVATE KEY`) whose body is JSON: the scrypt parameters and salt, the NaCl secretbox nonce and
//! the ciphertext (all byte strings in standard base64). The box key is
//! `scrypt(password, salt, N, r, p, 32)`; the plaintext is the PKCS#8 DER of the key.
//!
//! No text produced here (errors, `Debug`) contains key material.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{
    ECDSA_P256_SHA256_ASN1, ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _,
    UnparsedPublicKey,
};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::{Error, Result};

/// The environment variable cosign reads the key's password from.
pub const PASSWORD_VARIABLE: &str = "COSIGN_PASSWORD";

/// The PEM label of cosign's encrypted private key.
pub const SIGSTORE_PRIVATE_KEY_LABEL: &str = "ENCRYPTED SIGSTORE PRIVATE KEY";
/// The PEM label of cosign's encrypted private key before it was renamed.
pub const COSIGN_PRIVATE_KEY_LABEL: &str = "ENCRYPTED COSIGN PRIVATE KEY";

/// `id-ecPublicKey` (RFC 5480), DER content of the OID.
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` / `secp256r1` / P-256.
const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];

/// The scrypt parameters go-securesystemslib accepts (legacy, standard, OWASP); anything else is
/// refused before deriving, so a crafted file cannot ask for gigabytes of memory.
const SCRYPT_PARAMS: [(u64, u32, u32); 3] = [(1 << 15, 8, 1), (1 << 16, 8, 1), (1 << 17, 8, 1)];

/// An ECDSA P-256 private key that signs with SHA-256 (ASN.1 DER signatures), as cosign does.
pub struct SigningKey {
    pair: EcdsaKeyPair,
}

/// An ECDSA P-256 public key, kept as its SubjectPublicKeyInfo DER.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    spki: Vec<u8>,
    /// The uncompressed point (`04 || X || Y`), what ring verifies with.
    point: Vec<u8>,
}

impl SigningKey {
    /// Loads a private key from `reference`: a file path, or `env://VAR` for the PEM text in the
    /// environment variable `VAR` (as cosign's `--key env://VAR`).
    ///
    /// Accepted PEM blocks: `ENCRYPTED SIGSTORE PRIVATE KEY` and `ENCRYPTED COSIGN PRIVATE KEY`
    /// (decrypted with `password`, which cosign reads from `COSIGN_PASSWORD`; an empty password
    /// is a valid one), `PRIVATE KEY` (PKCS#8) and `EC PRIVATE KEY` (SEC1, as
    /// `openssl ecparam -genkey` writes it). The key must be ECDSA P-256.
    pub fn load(reference: &str, password: Option<&str>) -> Result<SigningKey> {
        let (name, text) = read_reference(reference)?;
        SigningKey::from_pem(&name, &text, password)
    }

    /// Parses a private key from PEM `text`; `name` says where it came from in errors.
    pub fn from_pem(name: &str, text: &str, password: Option<&str>) -> Result<SigningKey> {
        let blocks = pem_blocks(text);
        // `openssl ecparam -genkey` writes the curve's parameters first.
        let Some((label, body)) = blocks
            .into_iter()
            .find(|(label, _)| label != "EC PARAMETERS")
        else {
            return Err(Error::usage(
                format!("the signing key {name} is not a PEM private key"),
                Some("make one with `cosign generate-key-pair`".to_owned()),
            ));
        };
        let body = Zeroizing::new(body.map_err(|()| {
            Error::usage(
                format!(
                    "the signing key {name} is not valid PEM (its `{label}` block is not base64)"
                ),
                None,
            )
        })?);
        match label.as_str() {
            SIGSTORE_PRIVATE_KEY_LABEL | COSIGN_PRIVATE_KEY_LABEL => {
                let Some(password) = password else {
                    return Err(Error::usage(
                        format!("the signing key {name} is encrypted and no password was given"),
                        Some(format!(
                            "set {PASSWORD_VARIABLE} to the password the key was made with"
                        )),
                    ));
                };
                let pkcs8 = Zeroizing::new(decrypt(name, &body, password)?);
                SigningKey::from_pkcs8(name, &pkcs8)
            }
            "PRIVATE KEY" => SigningKey::from_pkcs8(name, &body),
            "EC PRIVATE KEY" => SigningKey::from_sec1(name, &body),
            "RSA PRIVATE KEY" => Err(not_p256(name, "an RSA key")),
            "ENCRYPTED PRIVATE KEY" => Err(Error::usage(
                format!(
                    "the signing key {name} is a password-protected PKCS#8 key (OpenSSL's \
                     format), which cosign does not read"
                ),
                Some(
                    "turn it into a cosign key: `openssl pkcs8 -in KEY -out PLAIN`, then \
                     `cosign import-key-pair --key PLAIN`"
                        .to_owned(),
                ),
            )),
            other => Err(Error::usage(
                format!("the signing key {name} is a PEM `{other}` block, not a private key"),
                Some(format!(
                    "expected `{SIGSTORE_PRIVATE_KEY_LABEL}` (cosign generate-key-pair), \
                     `PRIVATE KEY` or `EC PRIVATE KEY`"
                )),
            )),
        }
    }

    /// A key from its PKCS#8 DER (`PrivateKeyInfo`, version 1 or 2).
    pub fn from_pkcs8(name: &str, der: &[u8]) -> Result<SigningKey> {
        let invalid = || invalid_key(name, "PKCS#8");
        let info = Der::new(der).sequence().ok_or_else(invalid)?;
        let mut info = Der::new(info);
        info.integer().ok_or_else(invalid)?;
        let mut algorithm = Der::new(info.sequence().ok_or_else(invalid)?);
        let oid = algorithm.oid().ok_or_else(invalid)?;
        if oid != OID_EC_PUBLIC_KEY {
            return Err(not_p256(name, key_kind(oid)));
        }
        let curve = algorithm.oid().ok_or_else(invalid)?;
        if curve != OID_P256 {
            return Err(not_p256(
                name,
                &format!("an ECDSA key on {}", curve_name(curve)),
            ));
        }
        let ec_private_key = info.octet_string().ok_or_else(invalid)?;
        SigningKey::from_ec_private_key(name, ec_private_key, "PKCS#8")
    }

    /// A key from its SEC1 DER (`ECPrivateKey`, RFC 5915), the `EC PRIVATE KEY` PEM block.
    pub fn from_sec1(name: &str, der: &[u8]) -> Result<SigningKey> {
        SigningKey::from_ec_private_key(name, der, "SEC1")
    }

    /// `ECPrivateKey ::= SEQUENCE { version 1, privateKey OCTET STRING, [0] parameters
    /// OPTIONAL, [1] publicKey BIT STRING OPTIONAL }`. ring needs the public key; every tool
    /// that writes P-256 keys (cosign, Go, OpenSSL) includes it.
    fn from_ec_private_key(name: &str, der: &[u8], format: &str) -> Result<SigningKey> {
        let invalid = || invalid_key(name, format);
        let mut key = Der::new(Der::new(der).sequence().ok_or_else(invalid)?);
        if key.integer().ok_or_else(invalid)? != [1] {
            return Err(invalid());
        }
        let private = key.octet_string().ok_or_else(invalid)?;
        let mut public = None;
        while let Some((tag, value)) = key.any() {
            match tag {
                0xa0 => {
                    let curve = Der::new(value).oid().ok_or_else(invalid)?;
                    if curve != OID_P256 {
                        return Err(not_p256(
                            name,
                            &format!("an ECDSA key on {}", curve_name(curve)),
                        ));
                    }
                }
                0xa1 => public = Some(Der::new(value).bit_string().ok_or_else(invalid)?),
                _ => return Err(invalid()),
            }
        }
        let Some(public) = public else {
            return Err(Error::usage(
                format!("the signing key {name} does not include its public key"),
                Some("`openssl ec -in KEY -out FIXED` writes it with its public key".to_owned()),
            ));
        };
        // A P-256 scalar is 32 bytes (a longer one is another curve, even without [0]);
        // RFC 5915 wants it padded to that size, which not every writer did.
        if private.len() > 32 {
            return Err(not_p256(name, "an ECDSA key of another size"));
        }
        let mut scalar = Zeroizing::new([0u8; 32]);
        scalar[32 - private.len()..].copy_from_slice(private);
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_ASN1_SIGNING,
            &*scalar,
            public,
            &SystemRandom::new(),
        )
        .map_err(|_| invalid())?;
        Ok(SigningKey { pair })
    }

    /// A new random key and its PKCS#8 DER (see [`pkcs8_pem`] to write it), for tests.
    pub fn generate() -> (SigningKey, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng)
            .expect("the system's random number generator works");
        let key = SigningKey::from_pkcs8("generated key", pkcs8.as_ref())
            .expect("ring reads the PKCS#8 it writes");
        (key, pkcs8.as_ref().to_vec())
    }

    /// Signs `message` (hashed with SHA-256): the ASN.1 DER `ECDSA-Sig-Value`, what cosign puts
    /// in its signature annotation and DSSE envelopes, and what `openssl dgst -sha256 -verify`
    /// checks.
    pub fn sign(&self, message: &[u8]) -> Vec<u8> {
        self.pair
            .sign(&SystemRandom::new(), message)
            .expect("ECDSA signing with the system's random number generator works")
            .as_ref()
            .to_vec()
    }

    /// The public half.
    pub fn public_key(&self) -> PublicKey {
        PublicKey::from_point(self.pair.public_key().as_ref().to_vec())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("public_key", &self.public_key().fingerprint())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Parses a `PUBLIC KEY` PEM block (SubjectPublicKeyInfo), as `cosign.pub` holds.
    pub fn from_pem(text: &str) -> Result<PublicKey> {
        PublicKey::from_pem_named("the public key", text)
    }

    fn from_pem_named(name: &str, text: &str) -> Result<PublicKey> {
        let invalid = || {
            Error::usage(
                format!("{name} is not an ECDSA P-256 `PUBLIC KEY` PEM block"),
                Some("use the `cosign.pub` that `cosign generate-key-pair` wrote".to_owned()),
            )
        };
        let Some((_, Ok(der))) = pem_blocks(text)
            .into_iter()
            .find(|(label, _)| label == "PUBLIC KEY")
        else {
            return Err(invalid());
        };
        PublicKey::from_spki(&der).ok_or_else(invalid)
    }

    /// A key from its SubjectPublicKeyInfo DER (e.g. from a certificate).
    pub fn from_spki_der(der: &[u8]) -> Result<PublicKey> {
        PublicKey::from_spki(der).ok_or_else(|| {
            Error::usage(
                "the public key is not an ECDSA P-256 SubjectPublicKeyInfo",
                None,
            )
        })
    }

    /// Reads a `PUBLIC KEY` PEM file (see [`PublicKey::from_pem`]).
    pub fn load(path: impl AsRef<std::path::Path>) -> Result<PublicKey> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::usage(
                format!("cannot read the public key {}: {e}", path.display()),
                None,
            )
        })?;
        PublicKey::from_pem_named(&format!("the public key {}", path.display()), &text)
    }

    /// `SubjectPublicKeyInfo ::= SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 },
    /// BIT STRING (uncompressed point) }`.
    fn from_spki(der: &[u8]) -> Option<PublicKey> {
        let mut spki = Der::new(Der::new(der).sequence()?);
        let mut algorithm = Der::new(spki.sequence()?);
        if algorithm.oid()? != OID_EC_PUBLIC_KEY || algorithm.oid()? != OID_P256 {
            return None;
        }
        let point = spki.bit_string()?;
        if point.len() != 65 || point[0] != 0x04 || spki.any().is_some() {
            return None;
        }
        let key = PublicKey::from_point(point.to_vec());
        (key.spki == der).then_some(key)
    }

    fn from_point(point: Vec<u8>) -> PublicKey {
        let algorithm = [der_tlv(0x06, OID_EC_PUBLIC_KEY), der_tlv(0x06, OID_P256)].concat();
        let mut bits = vec![0];
        bits.extend_from_slice(&point);
        let spki = der_tlv(
            0x30,
            &[der_tlv(0x30, &algorithm), der_tlv(0x03, &bits)].concat(),
        );
        PublicKey { spki, point }
    }

    /// The SubjectPublicKeyInfo DER.
    pub fn spki_der(&self) -> &[u8] {
        &self.spki
    }

    /// The `PUBLIC KEY` PEM text, as `cosign.pub` and `openssl ec -pubout` write it.
    pub fn to_pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.spki)
    }

    /// Whether `signature` (ASN.1 DER) is this key's signature of `message` (SHA-256).
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, &self.point)
            .verify(message, signature)
            .is_ok()
    }

    /// The `keyid` cosign writes in the DSSE signatures it makes with a key: always empty.
    ///
    /// Not a fingerprint on purpose: cosign's verifier compares a non-empty `keyid` with its own
    /// (an SSH-style `SHA256:` fingerprint) and skips signatures that differ, so anything but
    /// the empty string risks an envelope cosign rejects.
    pub fn key_id(&self) -> String {
        String::new()
    }

    /// The hex SHA-256 of the SubjectPublicKeyInfo DER: a stable name for the key in messages
    /// and reports (not key material).
    pub fn fingerprint(&self) -> String {
        ring::digest::digest(&ring::digest::SHA256, &self.spki)
            .as_ref()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PublicKey")
            .field(&self.fingerprint())
            .finish()
    }
}

/// The `PRIVATE KEY` PEM text of a PKCS#8 DER key (e.g. from [`SigningKey::generate`]); cosign
/// and openssl read it.
pub fn pkcs8_pem(pkcs8: &[u8]) -> String {
    pem_encode("PRIVATE KEY", pkcs8)
}

/// The name for errors and the PEM text of a key reference.
fn read_reference(reference: &str) -> Result<(String, String)> {
    if let Some(variable) = reference.strip_prefix("env://") {
        let name = format!("in environment variable {variable}");
        return match std::env::var(variable) {
            Ok(text) => Ok((name, text)),
            Err(std::env::VarError::NotPresent) => Err(Error::usage(
                format!("the signing key {reference} is not set"),
                Some(format!(
                    "set {variable} to the PEM text of the key, or give the key's path"
                )),
            )),
            Err(std::env::VarError::NotUnicode(_)) => Err(Error::usage(
                format!("the signing key {name} is not text"),
                None,
            )),
        };
    }
    match std::fs::read(reference) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(text) => Ok((reference.to_owned(), text)),
            Err(_) => Err(Error::usage(
                format!("the signing key {reference} is not a PEM file"),
                Some("make one with `cosign generate-key-pair`".to_owned()),
            )),
        },
        Err(e) => Err(Error::usage(
            format!("cannot read the signing key {reference}: {e}"),
            None,
        )),
    }
}

/// go-securesystemslib's `encrypted` format.
#[derive(Deserialize)]
struct Encrypted {
    kdf: Kdf,
    cipher: Cipher,
    #[serde(with = "std_base64")]
    ciphertext: Vec<u8>,
}

#[derive(Deserialize)]
struct Kdf {
    name: String,
    params: KdfParams,
    #[serde(with = "std_base64")]
    salt: Vec<u8>,
}

#[derive(Deserialize)]
struct KdfParams {
    #[serde(rename = "N")]
    n: u64,
    r: u32,
    p: u32,
}

#[derive(Deserialize)]
struct Cipher {
    name: String,
    #[serde(with = "std_base64")]
    nonce: Vec<u8>,
}

mod std_base64 {
    use base64::Engine as _;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(serde::de::Error::custom)
    }
}

/// Decrypts cosign's encrypted key body (the JSON) to the PKCS#8 DER.
fn decrypt(name: &str, body: &[u8], password: &str) -> Result<Vec<u8>> {
    use crypto_secretbox::aead::Aead as _;
    use crypto_secretbox::{KeyInit as _, XSalsa20Poly1305};

    let malformed = |what: &str| {
        Error::usage(
            format!("the signing key {name} is not a valid cosign encrypted key: {what}"),
            Some("make one with `cosign generate-key-pair`".to_owned()),
        )
    };
    let data: Encrypted =
        serde_json::from_slice(body).map_err(|e| malformed(&format!("its JSON: {e}")))?;
    if data.kdf.name != "scrypt" {
        return Err(malformed(&format!("unknown kdf `{}`", data.kdf.name)));
    }
    if data.cipher.name != "nacl/secretbox" {
        return Err(malformed(&format!("unknown cipher `{}`", data.cipher.name)));
    }
    let KdfParams { n, r, p } = data.kdf.params;
    if !SCRYPT_PARAMS.contains(&(n, r, p)) {
        return Err(malformed(&format!(
            "unsupported scrypt parameters N={n} r={r} p={p}"
        )));
    }
    if data.cipher.nonce.len() != 24 {
        return Err(malformed("the nonce is not 24 bytes"));
    }
    let params = scrypt::Params::new(n.trailing_zeros() as u8, r, p, 32)
        .map_err(|_| malformed("unsupported scrypt parameters"))?;
    let mut box_key = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), &data.kdf.salt, &params, &mut *box_key)
        .expect("32 bytes is a valid scrypt output length");
    let cipher = XSalsa20Poly1305::new(crypto_secretbox::Key::from_slice(&*box_key));
    let nonce = crypto_secretbox::Nonce::from_slice(&data.cipher.nonce);
    cipher
        .decrypt(nonce, data.ciphertext.as_slice())
        .map_err(|_| {
            Error::usage(
                format!("cannot decrypt the signing key {name}: wrong password"),
                Some(format!(
                    "set {PASSWORD_VARIABLE} to the password the key was made with"
                )),
            )
        })
}

fn not_p256(name: &str, what: &str) -> Error {
    Error::usage(
        format!("the signing key {name} is {what}; it must be ECDSA P-256"),
        Some(
            "make one with `cosign generate-key-pair`, or \
             `openssl ecparam -name prime256v1 -genkey -noout -out cosign.key`"
                .to_owned(),
        ),
    )
}

fn invalid_key(name: &str, format: &str) -> Error {
    Error::usage(
        format!("the signing key {name} is not a valid {format} ECDSA P-256 key"),
        None,
    )
}

fn key_kind(algorithm: &[u8]) -> &'static str {
    match algorithm {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01] => "an RSA key",
        [0x2b, 0x65, 0x70] => "an Ed25519 key",
        [0x2b, 0x65, 0x71] => "an Ed448 key",
        [0x2a, 0x86, 0x48, 0xce, 0x38, 0x04, 0x01] => "a DSA key",
        _ => "not an ECDSA key",
    }
}

fn curve_name(oid: &[u8]) -> &'static str {
    match oid {
        [0x2b, 0x81, 0x04, 0x00, 0x22] => "P-384 (secp384r1)",
        [0x2b, 0x81, 0x04, 0x00, 0x23] => "P-521 (secp521r1)",
        [0x2b, 0x81, 0x04, 0x00, 0x0a] => "secp256k1",
        _ => "another curve",
    }
}

/// The PEM blocks of `text`: label and decoded body (`Err` when the body is not base64).
/// Header lines (`Proc-Type: …`) are skipped, as Go's `pem.Decode` does.
fn pem_blocks(text: &str) -> Vec<(String, std::result::Result<Vec<u8>, ()>)> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let Some(label) = line
            .trim()
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
        else {
            continue;
        };
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        let mut closed = false;
        for line in lines.by_ref() {
            let line = line.trim();
            if line == end {
                closed = true;
                break;
            }
            if !line.contains(':') {
                body.push_str(line);
            }
        }
        if !closed {
            break;
        }
        blocks.push((label.to_owned(), STANDARD.decode(body).map_err(|_| ())));
    }
    blocks
}

fn pem_encode(label: &str, der: &[u8]) -> String {
    let body = STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).expect("base64 is ASCII"));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// A DER tag-length-value.
fn der_tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes: Vec<u8> = len
            .to_be_bytes()
            .into_iter()
            .skip_while(|&b| b == 0)
            .collect();
        out.push(0x80 | bytes.len() as u8);
        out.extend_from_slice(&bytes);
    }
    out.extend_from_slice(content);
    out
}

/// A reader of the few DER elements keys are made of.
struct Der<'a> {
    rest: &'a [u8],
}

impl<'a> Der<'a> {
    fn new(input: &'a [u8]) -> Self {
        Der { rest: input }
    }

    /// The next element: tag and content.
    fn any(&mut self) -> Option<(u8, &'a [u8])> {
        let (&tag, rest) = self.rest.split_first()?;
        let (&first, mut rest) = rest.split_first()?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let count = usize::from(first & 0x7f);
            if count == 0 || count > 4 || rest.len() < count {
                return None;
            }
            let (bytes, after) = rest.split_at(count);
            rest = after;
            bytes.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b))
        };
        if rest.len() < len {
            return None;
        }
        let (content, after) = rest.split_at(len);
        self.rest = after;
        Some((tag, content))
    }

    fn expect(&mut self, tag: u8) -> Option<&'a [u8]> {
        match self.any()? {
            (t, content) if t == tag => Some(content),
            _ => None,
        }
    }

    fn sequence(&mut self) -> Option<&'a [u8]> {
        self.expect(0x30)
    }

    fn integer(&mut self) -> Option<&'a [u8]> {
        self.expect(0x02)
    }

    fn octet_string(&mut self) -> Option<&'a [u8]> {
        self.expect(0x04)
    }

    fn oid(&mut self) -> Option<&'a [u8]> {
        self.expect(0x06)
    }

    /// A BIT STRING without unused bits, its bytes.
    fn bit_string(&mut self) -> Option<&'a [u8]> {
        match self.expect(0x03)? {
            [0, bits @ ..] => Some(bits),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_sign_and_round_trip_through_pem() {
        let (key, pkcs8) = SigningKey::generate();
        let again = SigningKey::from_pem("k", &pkcs8_pem(&pkcs8), None).unwrap();
        assert_eq!(key.public_key(), again.public_key());
        let public = PublicKey::from_pem(&key.public_key().to_pem()).unwrap();
        let sig = key.sign(b"message");
        assert!(public.verify(b"message", &sig));
        assert!(!public.verify(b"messagf", &sig));
        assert_eq!(public.fingerprint().len(), 64);
        assert!(!format!("{key:?}").contains(&STANDARD.encode(&pkcs8)[40..60]));
    }

    #[test]
    fn sec1_keys_with_an_unpadded_scalar_load() {
        // One key in 256 has a scalar starting with a zero byte; some writers dropped it.
        let (key, pkcs8) = std::iter::repeat_with(SigningKey::generate)
            .find(|(_, pkcs8)| {
                let (private, _) = ec_private_key_parts(pkcs8);
                private[0] == 0
            })
            .unwrap();
        let (private, public) = ec_private_key_parts(&pkcs8);
        let mut bits = vec![0];
        bits.extend_from_slice(&public);
        let sec1 = der_tlv(
            0x30,
            &[
                der_tlv(0x02, &[1]),
                der_tlv(0x04, &private[1..]),
                der_tlv(0xa1, &der_tlv(0x03, &bits)),
            ]
            .concat(),
        );
        let loaded = SigningKey::from_sec1("k", &sec1).unwrap();
        assert_eq!(loaded.public_key(), key.public_key());
    }

    /// The scalar and public point inside ring's PKCS#8.
    fn ec_private_key_parts(pkcs8: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let mut info = Der::new(Der::new(pkcs8).sequence().unwrap());
        info.integer().unwrap();
        info.sequence().unwrap();
        let mut key = Der::new(Der::new(info.octet_string().unwrap()).sequence().unwrap());
        key.integer().unwrap();
        let private = key.octet_string().unwrap().to_vec();
        let (_, public) = std::iter::from_fn(|| key.any())
            .find(|(tag, _)| *tag == 0xa1)
            .unwrap();
        (private, Der::new(public).bit_string().unwrap().to_vec())
    }

    #[test]
    fn der_lengths_in_long_form_round_trip() {
        let content = vec![7u8; 300];
        let tlv = der_tlv(0x04, &content);
        assert_eq!(&tlv[..4], &[0x04, 0x82, 0x01, 0x2c]);
        assert_eq!(Der::new(&tlv).octet_string(), Some(content.as_slice()));
    }
}
