//! Keys and signatures that cosign's key-based verification accepts, checked with tools that
//! share no code with ours: `openssl` verifies the signatures and makes keys, PyNaCl and Python's
//! scrypt make a cosign-format encrypted key.

use std::path::Path;

use base64::Engine as _;
use std::process::Command;

use cargo_docker_release::supply_chain::sign::{
    IN_TOTO_PAYLOAD_TYPE, PublicKey, SigningKey, dsse, pkcs8_pem, simple_signing,
};

use crate::support;
use support::keys::{openssl_ok, openssl_verifies};

/// `openssl ecparam` making a P-256 key as SEC1 PEM in `k.pem`.
const P256_TO_K_PEM: &[&str] = &[
    "ecparam",
    "-name",
    "prime256v1",
    "-genkey",
    "-noout",
    "-out",
    "k.pem",
];

const DIGEST: &str = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temp paths are UTF-8")
}

fn usage_error(result: cargo_docker_release::error::Result<SigningKey>) -> (String, String) {
    match result {
        Err(cargo_docker_release::error::Error::Usage { message, help }) => {
            (message, help.unwrap_or_default())
        }
        Err(other) => panic!("expected a usage error, got {other:?}"),
        Ok(key) => panic!("expected an error, got {key:?}"),
    }
}

#[test]
fn simple_signing_signature_verifies_with_openssl_and_tampering_fails() {
    let dir = tempfile::tempdir().unwrap();
    let (key, pkcs8) = SigningKey::generate();
    let payload = simple_signing::payload("127.0.0.1:5000/orders", DIGEST);
    assert_eq!(
        String::from_utf8(payload.clone()).unwrap(),
        format!(
            "{{\"critical\":{{\"identity\":{{\"docker-reference\":\"127.0.0.1:5000/orders\"}},\
             \"image\":{{\"docker-manifest-digest\":\"{DIGEST}\"}},\
             \"type\":\"cosign container image signature\"}},\"optional\":null}}"
        )
    );
    let signature = key.sign(&payload);
    let public = key.public_key().to_pem();
    std::fs::write(dir.path().join("payload"), &payload).unwrap();
    std::fs::write(dir.path().join("sig.der"), &signature).unwrap();
    std::fs::write(dir.path().join("pub.pem"), &public).unwrap();
    let out = openssl_ok(
        dir.path(),
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "payload",
        ],
    );
    assert_eq!(out.trim(), "Verified OK");
    // The signature is ASN.1 DER, as openssl parses it.
    let parsed = openssl_ok(
        dir.path(),
        &["asn1parse", "-inform", "DER", "-in", "sig.der"],
    );
    assert_eq!(parsed.matches("INTEGER").count(), 2, "{parsed}");

    let mut tampered = payload.clone();
    let at = tampered.len() - 20;
    tampered[at] ^= 1;
    assert!(!openssl_verifies(
        dir.path(),
        &public,
        &tampered,
        &signature
    ));
    assert!(openssl_verifies(dir.path(), &public, &payload, &signature));
    let ours = PublicKey::from_pem(&public).unwrap();
    assert!(ours.verify(&payload, &signature));
    assert!(!ours.verify(&tampered, &signature));

    // openssl reads the generated key as written for tests, and derives the same public key.
    std::fs::write(dir.path().join("gen.pem"), pkcs8_pem(&pkcs8)).unwrap();
    let derived = openssl_ok(dir.path(), &["pkey", "-in", "gen.pem", "-pubout"]);
    assert_eq!(derived, public);

    let parsed = simple_signing::parse(&payload).unwrap();
    assert_eq!(parsed.docker_reference, "127.0.0.1:5000/orders");
    assert_eq!(parsed.manifest_digest, DIGEST);
}

#[test]
fn openssl_keys_load_in_sec1_and_pkcs8_with_the_same_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ok(d, P256_TO_K_PEM);
    assert!(
        std::fs::read_to_string(d.join("k.pem"))
            .unwrap()
            .contains("BEGIN EC PRIVATE KEY")
    );
    openssl_ok(
        d,
        &[
            "pkcs8", "-topk8", "-nocrypt", "-in", "k.pem", "-out", "k8.pem",
        ],
    );
    assert!(
        std::fs::read_to_string(d.join("k8.pem"))
            .unwrap()
            .contains("BEGIN PRIVATE KEY")
    );
    // `ecparam -genkey` without -noout writes the curve parameters before the key.
    openssl_ok(
        d,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-out",
            "withparams.pem",
        ],
    );
    let openssl_public = openssl_ok(d, &["ec", "-in", "k.pem", "-pubout"]);
    let openssl_public = openssl_public
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .map(|l| format!("{l}\n"))
        .collect::<String>();

    let sec1 = SigningKey::load(path_str(&d.join("k.pem")), None).unwrap();
    let pkcs8 = SigningKey::load(path_str(&d.join("k8.pem")), Some("ignored")).unwrap();
    assert_eq!(sec1.public_key().to_pem(), openssl_public);
    assert_eq!(pkcs8.public_key().to_pem(), openssl_public);
    assert_eq!(
        sec1.public_key(),
        PublicKey::from_pem(&openssl_public).unwrap()
    );
    SigningKey::load(path_str(&d.join("withparams.pem")), None).unwrap();

    let message = b"signed by a key openssl made";
    for key in [&sec1, &pkcs8] {
        assert!(openssl_verifies(
            d,
            &openssl_public,
            message,
            &key.sign(message)
        ));
    }
    // And ours verifies what openssl signs with that key.
    std::fs::write(d.join("m"), message).unwrap();
    openssl_ok(
        d,
        &["dgst", "-sha256", "-sign", "k.pem", "-out", "m.sig", "m"],
    );
    let openssl_signature = std::fs::read(d.join("m.sig")).unwrap();
    std::fs::write(d.join("k.pub"), &openssl_public).unwrap();
    let public = PublicKey::load(path_str(&d.join("k.pub"))).unwrap();
    assert!(public.verify(message, &openssl_signature));
    assert!(!public.verify(b"another message", &openssl_signature));
}

/// Writes, with Python only (hashlib's scrypt, PyNaCl's SecretBox), the cosign encrypted key of
/// the PKCS#8 key in `pkcs8.der` to `cosign.key`, as go-securesystemslib's `encrypted.Encrypt`
/// does.
const MAKE_COSIGN_KEY: &str = r#"
import base64, hashlib, json, os, sys
import nacl.secret

password = sys.argv[1].encode()
n = int(sys.argv[2])
plaintext = open("pkcs8.der", "rb").read()
salt = os.urandom(32)
key = hashlib.scrypt(password, salt=salt, n=n, r=8, p=1, dklen=32, maxmem=256 * 1024 * 1024)
box = nacl.secret.SecretBox(key)
nonce = os.urandom(24)
sealed = box.encrypt(plaintext, nonce)
b64 = lambda b: base64.b64encode(b).decode()
body = json.dumps({
    "kdf": {"name": "scrypt", "params": {"N": n, "r": 8, "p": 1}, "salt": b64(salt)},
    "cipher": {"name": "nacl/secretbox", "nonce": b64(nonce)},
    "ciphertext": b64(sealed.ciphertext),
}, separators=(",", ":")).encode()
armoured = base64.b64encode(body).decode()
lines = [armoured[i:i + 64] for i in range(0, len(armoured), 64)]
label = sys.argv[3]
open("cosign.key", "w").write(
    "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label))
"#;

/// A cosign encrypted key of a fresh openssl key, made in `dir`; returns openssl's public PEM.
fn make_cosign_key(dir: &Path, password: &str, n: u32, label: &str) -> String {
    openssl_ok(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            "plain.pem",
        ],
    );
    openssl_ok(
        dir,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "plain.pem",
            "-outform",
            "DER",
            "-out",
            "pkcs8.der",
        ],
    );
    let python = support::require_tool("python3", "install Python 3 and `pip install pynacl`");
    let out = Command::new(python)
        .args(["-c", MAKE_COSIGN_KEY, password, &n.to_string(), label])
        .current_dir(dir)
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "making the cosign key in Python (needs `pip install pynacl`): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    openssl_ok(dir, &["ec", "-in", "plain.pem", "-pubout"])
        .lines()
        .skip_while(|l| !l.starts_with("-----BEGIN"))
        .map(|l| format!("{l}\n"))
        .collect()
}

#[test]
fn cosign_encrypted_key_loads_with_its_password_and_says_what_is_wrong_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let public = make_cosign_key(d, "correct horse", 32768, "ENCRYPTED SIGSTORE PRIVATE KEY");
    let path = d.join("cosign.key");
    let path = path_str(&path);

    let started = std::time::Instant::now();
    let key = SigningKey::load(path, Some("correct horse")).unwrap();
    let took = started.elapsed();
    assert_eq!(key.public_key().to_pem(), public);
    let message = simple_signing::payload("127.0.0.1:5000/orders", DIGEST);
    assert!(openssl_verifies(d, &public, &message, &key.sign(&message)));
    eprintln!("decrypting a cosign key (scrypt N=2^15) took {took:?}");

    let (message, help) = usage_error(SigningKey::load(path, Some("wrong horse")));
    assert_eq!(
        message,
        format!("cannot decrypt the signing key {path}: wrong password")
    );
    assert!(help.contains("COSIGN_PASSWORD"), "{help}");

    let (message, help) = usage_error(SigningKey::load(path, None));
    assert_eq!(
        message,
        format!("the signing key {path} is encrypted and no password was given")
    );
    assert!(help.contains("COSIGN_PASSWORD"), "{help}");
    let text = std::fs::read_to_string(path).unwrap();
    for shown in [message, help] {
        assert!(!text.lines().any(|l| l.len() > 20 && shown.contains(l)));
    }
}

#[test]
fn legacy_cosign_label_standard_scrypt_and_an_empty_password_load() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // What `cosign generate-key-pair` writes today: N = 2^16; an empty COSIGN_PASSWORD is a
    // password too.
    let public = make_cosign_key(d, "", 65536, "ENCRYPTED COSIGN PRIVATE KEY");
    let path = d.join("cosign.key");
    let key = SigningKey::load(path_str(&path), Some("")).unwrap();
    assert_eq!(key.public_key().to_pem(), public);
    let (message, _) = usage_error(SigningKey::load(path_str(&path), Some("x")));
    assert!(message.ends_with("wrong password"), "{message}");

    // Parameters go-securesystemslib would not accept are refused before scrypt runs (a
    // crafted file cannot make us allocate gigabytes).
    make_cosign_key(d, "pw", 16384, "ENCRYPTED SIGSTORE PRIVATE KEY");
    let (message, _) = usage_error(SigningKey::load(path_str(&path), Some("pw")));
    assert_eq!(
        message,
        format!(
            "the signing key {} is not a valid cosign encrypted key: unsupported scrypt \
             parameters N=16384 r=8 p=1",
            path.display()
        )
    );
}

#[test]
fn cosign_encrypted_key_loads_from_an_environment_variable() {
    if !support::in_own_process(concat!(
        module_path!(),
        "::cosign_encrypted_key_loads_from_an_environment_variable"
    )) {
        return; // the child process ran it
    }
    let dir = tempfile::tempdir().unwrap();
    let public = make_cosign_key(
        dir.path(),
        "s3cret",
        32768,
        "ENCRYPTED SIGSTORE PRIVATE KEY",
    );
    let text = std::fs::read_to_string(dir.path().join("cosign.key")).unwrap();
    // SAFETY: this process runs this one test on one thread (`in_own_process`).
    unsafe { std::env::set_var("CDR_SIGNING_TEST_KEY", &text) };
    let key = SigningKey::load("env://CDR_SIGNING_TEST_KEY", Some("s3cret")).unwrap();
    assert_eq!(key.public_key().to_pem(), public);

    let (message, help) = usage_error(SigningKey::load("env://CDR_SIGNING_TEST_KEY", None));
    assert_eq!(
        message,
        "the signing key in environment variable CDR_SIGNING_TEST_KEY is encrypted and no \
         password was given"
    );
    assert!(help.contains("COSIGN_PASSWORD"), "{help}");
    let (message, _) = usage_error(SigningKey::load("env://CDR_SIGNING_TEST_NOT_SET", None));
    assert_eq!(
        message,
        "the signing key env://CDR_SIGNING_TEST_NOT_SET is not set"
    );
}

#[test]
fn dsse_envelope_verifies_here_and_with_openssl_over_the_pae() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (key, _) = SigningKey::generate();
    let statement = br#"{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}"#;
    let envelope = dsse::sign(&key, IN_TOTO_PAYLOAD_TYPE, statement);

    // The JSON is cosign's shape.
    let json: serde_json::Value = serde_json::to_value(&envelope).unwrap();
    assert_eq!(json["payloadType"], IN_TOTO_PAYLOAD_TYPE);
    assert_eq!(json["signatures"][0]["keyid"], "");
    let text = serde_json::to_string(&envelope).unwrap();
    let back: dsse::Envelope = serde_json::from_str(&text).unwrap();
    assert_eq!(back, envelope);
    assert_eq!(
        dsse::verify(&back, &key.public_key()).unwrap(),
        statement.to_vec()
    );

    // Independently: Python decodes the JSON and builds the PAE from the specification, openssl
    // checks the signature over it.
    std::fs::write(d.join("envelope.json"), &text).unwrap();
    let python = support::require_tool("python3", "install Python 3");
    let out = Command::new(python)
        .args([
            "-c",
            r#"
import base64, json
e = json.load(open("envelope.json"))
body = base64.b64decode(e["payload"])
t = e["payloadType"].encode()
open("pae", "wb").write(b"DSSEv1 %d %s %d %s" % (len(t), t, len(body), body))
open("sig.der", "wb").write(base64.b64decode(e["signatures"][0]["sig"]))
"#,
        ])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pae = std::fs::read(d.join("pae")).unwrap();
    assert_eq!(pae, dsse::pae(IN_TOTO_PAYLOAD_TYPE, statement));
    std::fs::write(d.join("pub.pem"), key.public_key().to_pem()).unwrap();
    let out = openssl_ok(
        d,
        &[
            "dgst",
            "-sha256",
            "-verify",
            "pub.pem",
            "-signature",
            "sig.der",
            "pae",
        ],
    );
    assert_eq!(out.trim(), "Verified OK");
    // The signature is over the PAE, not the bare payload.
    let signature = envelope.signatures[0].sig_bytes().unwrap();
    assert!(!openssl_verifies(
        d,
        &key.public_key().to_pem(),
        statement,
        &signature
    ));
    assert_eq!(envelope.payload_bytes().unwrap(), statement);

    // A flipped payload byte fails.
    let mut flipped = envelope.clone();
    let mut bytes = statement.to_vec();
    bytes[10] ^= 0x01;
    flipped.payload = base64::engine::general_purpose::STANDARD.encode(&bytes);
    let error = dsse::verify(&flipped, &key.public_key())
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("no signature of the DSSE envelope"),
        "{error}"
    );
    // So does another payload type over the same payload.
    let mut retyped = envelope.clone();
    retyped.payload_type = "application/json".into();
    assert!(dsse::verify(&retyped, &key.public_key()).is_err());
    // And another key.
    let (other, _) = SigningKey::generate();
    assert!(dsse::verify(&envelope, &other.public_key()).is_err());
    // No signature at all.
    let mut unsigned = envelope.clone();
    unsigned.signatures.clear();
    let error = dsse::verify(&unsigned, &key.public_key())
        .unwrap_err()
        .to_string();
    assert!(error.contains("has no signature"), "{error}");
}

#[test]
fn keys_that_are_not_p256_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ok(
        d,
        &[
            "ecparam",
            "-name",
            "secp384r1",
            "-genkey",
            "-noout",
            "-out",
            "p384.pem",
        ],
    );
    openssl_ok(
        d,
        &[
            "pkcs8",
            "-topk8",
            "-nocrypt",
            "-in",
            "p384.pem",
            "-out",
            "p384-pkcs8.pem",
        ],
    );
    openssl_ok(
        d,
        &["genpkey", "-algorithm", "ed25519", "-out", "ed25519.pem"],
    );
    for (file, what) in [
        ("p384.pem", "an ECDSA key on P-384 (secp384r1)"),
        ("p384-pkcs8.pem", "an ECDSA key on P-384 (secp384r1)"),
        ("ed25519.pem", "an Ed25519 key"),
    ] {
        let path = d.join(file);
        let path = path_str(&path);
        let (message, help) = usage_error(SigningKey::load(path, None));
        assert_eq!(
            message,
            format!("the signing key {path} is {what}; it must be ECDSA P-256")
        );
        assert!(help.contains("prime256v1"), "{help}");
    }

    // A P-384 public key is refused as well, naming the file.
    openssl_ok(d, &["ec", "-in", "p384.pem", "-pubout", "-out", "p384.pub"]);
    let path = d.join("p384.pub");
    let error = PublicKey::load(path_str(&path)).unwrap_err().to_string();
    assert_eq!(
        error,
        format!(
            "the public key {} is not an ECDSA P-256 `PUBLIC KEY` PEM block",
            path.display()
        )
    );
}

#[test]
fn private_keys_that_cannot_sign_say_why() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    openssl_ok(d, P256_TO_K_PEM);
    // SEC1 without its public key (RFC 5915 allows it; ring needs it).
    openssl_ok(
        d,
        &["ec", "-in", "k.pem", "-no_public", "-out", "nopub.pem"],
    );
    let path = d.join("nopub.pem");
    let (message, help) = usage_error(SigningKey::load(path_str(&path), None));
    assert_eq!(
        message,
        format!(
            "the signing key {} does not include its public key",
            path.display()
        )
    );
    assert!(help.contains("openssl ec -in KEY -out FIXED"), "{help}");
    // The fix the help gives works.
    openssl_ok(d, &["ec", "-in", "nopub.pem", "-out", "fixed.pem"]);
    let fixed = SigningKey::load(path_str(&d.join("fixed.pem")), None).unwrap();
    let original = SigningKey::load(path_str(&d.join("k.pem")), None).unwrap();
    assert_eq!(fixed.public_key(), original.public_key());

    // The public key given where the private key belongs.
    openssl_ok(d, &["ec", "-in", "k.pem", "-pubout", "-out", "k.pub"]);
    let path = d.join("k.pub");
    let (message, _) = usage_error(SigningKey::load(path_str(&path), None));
    assert_eq!(
        message,
        format!(
            "the signing key {} is a PEM `PUBLIC KEY` block, not a private key",
            path.display()
        )
    );
    // OpenSSL's own password protection.
    openssl_ok(
        d,
        &[
            "pkcs8", "-topk8", "-in", "k.pem", "-passout", "pass:pw", "-out", "enc.pem",
        ],
    );
    let path = d.join("enc.pem");
    let (message, help) = usage_error(SigningKey::load(path_str(&path), Some("pw")));
    assert_eq!(
        message,
        format!(
            "the signing key {} is a password-protected PKCS#8 key (OpenSSL's format), which \
             cosign does not read",
            path.display()
        )
    );
    assert!(help.contains("cosign import-key-pair"), "{help}");
    // A missing file.
    let path = d.join("missing.key");
    let (message, _) = usage_error(SigningKey::load(path_str(&path), None));
    assert!(
        message.starts_with(&format!("cannot read the signing key {}: ", path.display())),
        "{message}"
    );
}
