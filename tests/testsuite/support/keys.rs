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
    let sec1 = format!("{name}.sec1");
    let (k, p) = (format!("{name}.key"), format!("{name}.pub"));
    openssl_ok(
        dir,
        &[
            "ecparam",
            "-name",
            "prime256v1",
            "-genkey",
            "-noout",
            "-out",
            &sec1,
        ],
    );
    openssl_ok(
        dir,
        &["pkcs8", "-topk8", "-nocrypt", "-in", &sec1, "-out", &k],
    );
    openssl_ok(dir, &["ec", "-in", &k, "-pubout", "-out", &p]);
    (key, public)
}

/// Runs `openssl` in `dir`: success, stdout, stderr.
pub fn openssl(dir: &Path, args: &[&str]) -> (bool, String, String) {
    let program = super::require_tool("openssl", "install it with `apt-get install openssl`");
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run openssl");
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

/// Runs `openssl` in `dir`, which must succeed; its stdout.
#[track_caller]
pub fn openssl_ok(dir: &Path, args: &[&str]) -> String {
    let (ok, stdout, stderr) = openssl(dir, args);
    assert!(ok, "openssl {args:?}: {stdout}{stderr}");
    stdout
}

/// Whether `openssl dgst -sha256 -verify` with `public_pem` accepts `signature` of `message`.
pub fn openssl_verifies(dir: &Path, public_pem: &str, message: &[u8], signature: &[u8]) -> bool {
    std::fs::write(dir.join("check.pub"), public_pem).unwrap();
    std::fs::write(dir.join("check.msg"), message).unwrap();
    std::fs::write(dir.join("check.sig"), signature).unwrap();
    let args = [
        "dgst",
        "-sha256",
        "-verify",
        "check.pub",
        "-signature",
        "check.sig",
        "check.msg",
    ];
    let (ok, text, stderr) = openssl(dir, &args);
    assert_eq!(ok, text.contains("Verified OK"), "{text}{stderr}");
    ok
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
