//! Signing keys made independently of the tool: P-256 pairs by openssl, and cosign's encrypted
//! private-key format (scrypt + NaCl secretbox over the PKCS#8 DER, as go-securesystemslib's
//! `encrypted` package writes it) by Python's hashlib and PyNaCl.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::service::text;

/// A P-256 key pair made by openssl: (PKCS#8 private key PEM, SPKI public key PEM).
pub fn openssl_key(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let (key, public) = (
        dir.join(format!("{name}.key")),
        dir.join(format!("{name}.pub")),
    );
    let sec1 = dir.join(format!("{name}.sec1"));
    let path = |p: &PathBuf| p.to_str().unwrap().to_owned();
    openssl(&[
        "ecparam",
        "-name",
        "prime256v1",
        "-genkey",
        "-noout",
        "-out",
        &path(&sec1),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-in",
        &path(&sec1),
        "-out",
        &path(&key),
    ]);
    openssl(&["ec", "-in", &path(&key), "-pubout", "-out", &path(&public)]);
    (key, public)
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        text(&out.stderr)
    );
}

/// The PKCS#8 key at `pkcs8_pem` in cosign's `ENCRYPTED SIGSTORE PRIVATE KEY` format under
/// `password`, as PEM text.
pub fn cosign_encrypted(pkcs8_pem: &Path, password: &str) -> String {
    let script = r#"
import base64, hashlib, json, os, sys, textwrap
import nacl.secret
pem = open(sys.argv[1]).read()
der = base64.b64decode("".join(l for l in pem.splitlines() if not l.startswith("-----")))
salt, nonce = os.urandom(32), os.urandom(24)
key = hashlib.scrypt(sys.argv[2].encode(), salt=salt, n=32768, r=8, p=1, maxmem=64 << 20, dklen=32)
box = nacl.secret.SecretBox(key).encrypt(der, nonce)
doc = {
    "kdf": {"name": "scrypt", "params": {"N": 32768, "r": 8, "p": 1}, "salt": base64.b64encode(salt).decode()},
    "cipher": {"name": "nacl/secretbox", "nonce": base64.b64encode(nonce).decode()},
    "ciphertext": base64.b64encode(box.ciphertext).decode(),
}
body = base64.b64encode(json.dumps(doc).encode()).decode()
print("-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----")
print("\n".join(textwrap.wrap(body, 64)))
print("-----END ENCRYPTED SIGSTORE PRIVATE KEY-----")
"#;
    let out = Command::new("python3")
        .args(["-c", script])
        .arg(pkcs8_pem)
        .arg(password)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "making a cosign key needs PyNaCl (pip install pynacl; .ci/install does): {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}
