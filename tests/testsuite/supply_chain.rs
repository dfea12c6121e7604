//! The supply chain end to end against Debian's registry 2.8 (no referrers API: cosign's tag
//! scheme): a `--push --sign-key` release attaches a signature, SLSA provenance and two SBOMs to
//! the pushed digest, checked here by independent tools (openssl over the signed bytes,
//! spdx-tools and cyclonedx-python-lib over the documents; Debian's skopeo has its sigstore
//! support patched out and cosign is not packaged) and by
//! recomputing their digests; `verify` passes on them and fails on a wrong key, a tampered SBOM
//! and attachments copied onto another image. A workspace signed by a cosign-encrypted key in
//! its manifest gets one set per service.

use crate::support;

use std::path::Path;

use base64::Engine as _;
use serde_json::Value;
use support::keys::{cosign_encrypted, openssl_key, openssl_verifies};
use support::service::*;
use support::{Registry, TestImages};

const SPDX: &str = "https://spdx.dev/Document";
const CYCLONEDX: &str = "https://cyclonedx.org/bom";
const SLSA: &str = "https://slsa.dev/provenance/v1";

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64")
}

/// DSSE's pre-authentication encoding, written out independently of the tool.
fn pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {payload_type} {} ",
        payload_type.len(),
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

fn blob(registry: &Registry, repo: &str, digest: &str) -> String {
    let resp = registry.get(&format!("/v2/{repo}/blobs/{digest}"), &[]);
    assert_eq!(resp.status, 200, "blob {digest}: {}", resp.body);
    resp.body
}

/// The attestation layers of `repo`'s `.att` tag for `digest`: (predicate type, envelope).
fn attestations(registry: &Registry, repo: &str, digest: &str) -> Vec<(String, Value)> {
    let tag = format!("{}.att", digest.replacen(':', "-", 1));
    let manifest = registry.manifest(repo, &tag).expect("the .att tag exists");
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            assert_eq!(l["mediaType"], "application/vnd.dsse.envelope.v1+json");
            let envelope: Value =
                serde_json::from_str(&blob(registry, repo, l["digest"].as_str().unwrap())).unwrap();
            (
                l["annotations"]["predicateType"]
                    .as_str()
                    .unwrap()
                    .to_owned(),
                envelope,
            )
        })
        .collect()
}

fn sha256_file(path: &Path) -> String {
    support::registry::sha256(&std::fs::read(path).unwrap())
}

fn verify(
    fx: &Fixture,
    image: &str,
    key: Option<&Path>,
    env: &[(&str, &str)],
) -> std::process::Output {
    let mut args = vec!["verify", image, "--message-format", "json"];
    let key = key.map(|k| k.to_str().unwrap().to_owned());
    if let Some(k) = &key {
        args.extend(["--key", k]);
    }
    fx.run_env(&args, env)
}

fn failed_checks(out: &std::process::Output) -> Vec<String> {
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify prints JSON ({e}):\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["passed"] == false)
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn a_signed_push_attaches_sbom_provenance_and_signature_that_independent_tools_verify() {
    let registry = Registry::start();
    let fx = Fixture::new("chain", Some(&registry.addr), "1.2.3", "");
    let repo = fx.image.split_once('/').unwrap().1.to_owned();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_key(keys.path(), "release");
    let (_, other_public) = openssl_key(keys.path(), "other");
    let public_pem = std::fs::read_to_string(&public).unwrap();
    let other_pem = std::fs::read_to_string(&other_public).unwrap();
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let env = [("DOCKER_CONFIG", config.path().to_str().unwrap())];
    let (sha, _) = fx.head();

    let out = fx.run_env(
        &[
            "--push",
            "--sign-key",
            key.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &env,
    );
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let service = &report["services"][0];
    let digest = service["digest"].as_str().unwrap().to_owned();
    assert_eq!(
        registry.manifest_digest(&repo, "1.2.3").as_deref(),
        Some(digest.as_str())
    );
    let hex = digest.strip_prefix("sha256:").unwrap();

    // The report lists what is attached to the digest; the image itself is still one manifest.
    let attached = &service["attached"];
    assert_eq!(attached["signature"], format!("sha256-{hex}.sig").as_str());
    assert_eq!(
        attached["attestations"],
        format!("sha256-{hex}.att").as_str()
    );
    assert_eq!(attached["signed"], true);
    assert_eq!(attached["scheme"], "tag");
    let image_manifest = registry.manifest(&repo, "1.2.3").unwrap();
    assert_eq!(
        image_manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let tags = registry.tags(&repo);
    for tag in [
        format!("sha256-{hex}.sig"),
        format!("sha256-{hex}.att"),
        "latest".into(),
    ] {
        assert!(tags.contains(&tag), "{tag} in {tags:?}");
    }

    // The signature: cosign's simple-signing payload over this digest, verified by openssl.
    let sig_manifest = registry
        .manifest(&repo, &format!("sha256-{hex}.sig"))
        .unwrap();
    let layers = sig_manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );
    let payload = blob(&registry, &repo, layers[0]["digest"].as_str().unwrap());
    let signing: Value = serde_json::from_str(&payload).unwrap();
    assert_eq!(
        signing["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        signing["critical"]["identity"]["docker-reference"],
        fx.image.as_str()
    );
    assert_eq!(
        signing["critical"]["type"],
        "cosign container image signature"
    );
    let signature = b64(
        layers[0]["annotations"]["dev.cosignproject.cosign/signature"]
            .as_str()
            .unwrap(),
    );
    assert!(openssl_verifies(
        keys.path(),
        &public_pem,
        payload.as_bytes(),
        &signature
    ));
    assert!(!openssl_verifies(
        keys.path(),
        &other_pem,
        payload.as_bytes(),
        &signature
    ));

    let reference = format!("{}:1.2.3", fx.image);

    // The attestations: DSSE envelopes signed over their PAE, about this digest.
    let atts = attestations(&registry, &repo, &digest);
    let mut types: Vec<&str> = atts.iter().map(|(t, _)| t.as_str()).collect();
    types.sort();
    assert_eq!(types, [CYCLONEDX, SLSA, SPDX]);
    let docs = fx.path().join("target/docker-release").join(&fx.package);
    for (predicate_type, envelope) in &atts {
        assert_eq!(envelope["payloadType"], "application/vnd.in-toto+json");
        let statement_bytes = b64(envelope["payload"].as_str().unwrap());
        let sig = b64(envelope["signatures"][0]["sig"].as_str().unwrap());
        assert!(
            openssl_verifies(
                keys.path(),
                &public_pem,
                &pae("application/vnd.in-toto+json", &statement_bytes),
                &sig
            ),
            "the {predicate_type} envelope verifies over its PAE"
        );
        let statement: Value = serde_json::from_slice(&statement_bytes).unwrap();
        assert_eq!(statement["_type"], "https://in-toto.io/Statement/v1");
        assert_eq!(statement["predicateType"], predicate_type.as_str());
        assert_eq!(statement["subject"][0]["digest"]["sha256"], hex);
        assert_eq!(statement["subject"][0]["name"], fx.image.as_str());
        // What was attached is what was written beside the report.
        let file = match predicate_type.as_str() {
            SLSA => "provenance.json",
            SPDX => "sbom.spdx.json",
            _ => "sbom.cdx.json",
        };
        let written: Value =
            serde_json::from_slice(&std::fs::read(docs.join(file)).unwrap()).unwrap();
        let attached = if predicate_type == SLSA {
            &statement
        } else {
            &statement["predicate"]
        };
        assert_eq!(&written, attached, "{file} is the attached document");
    }

    // Provenance: its digests recomputed here.
    let provenance: Value =
        serde_json::from_slice(&std::fs::read(docs.join("provenance.json")).unwrap()).unwrap();
    let definition = &provenance["predicate"]["buildDefinition"];
    assert_eq!(
        definition["externalParameters"]["package"],
        fx.package.as_str()
    );
    assert_eq!(definition["externalParameters"]["version"], "1.2.3");
    assert_eq!(definition["externalParameters"]["strategy"], "host");
    assert_eq!(definition["externalParameters"]["profile"], "release");
    let deps = definition["resolvedDependencies"].as_array().unwrap();
    let dep = |name: &str| {
        deps.iter()
            .find(|d| d["name"] == name)
            .unwrap_or_else(|| panic!("{name} in {deps:?}"))
    };
    assert_eq!(dep("source")["digest"]["gitCommit"], sha.as_str());
    let lock = sha256_file(&fx.path().join("Cargo.lock"));
    assert_eq!(
        dep("Cargo.lock")["digest"]["sha256"],
        lock.strip_prefix("sha256:").unwrap()
    );
    assert!(text(&b64(dep("rustc")["content"].as_str().unwrap())).contains("host: "));
    let tool = &provenance["predicate"]["runDetails"]["builder"]["builderDependencies"][0];
    let exe = sha256_file(Path::new(env!("CARGO_BIN_EXE_cargo-docker-release")));
    assert_eq!(
        tool["digest"]["sha256"],
        exe.strip_prefix("sha256:").unwrap()
    );
    let labels = &service["labels"];
    assert_eq!(labels["io.cargo-docker-release.cargo-lock"], lock.as_str());

    // The SBOM documents are valid to their own specifications' tools.
    support::sbom::assert_valid_spdx(&docs.join("sbom.spdx.json"));
    support::sbom::assert_valid_cyclonedx(&docs.join("sbom.cdx.json"));

    // Releasing the same commit again (`--force` rebuilds what the registry holds) attaches
    // nothing new: the signature and attestations by this key for this digest stand.
    let sig_tag = format!("sha256-{hex}.sig");
    let att_tag = format!("sha256-{hex}.att");
    let before = (
        registry.manifest_digest(&repo, &sig_tag),
        registry.manifest_digest(&repo, &att_tag),
    );
    let log_before = registry.access_log().len();
    let again = fx.run_env(
        &["--push", "--force", "--sign-key", key.to_str().unwrap()],
        &env,
    );
    assert_success(&again);
    assert!(
        text(&again.stderr).contains("Attached"),
        "{}",
        text(&again.stderr)
    );
    let uploads: Vec<String> = registry.access_log()[log_before..]
        .iter()
        .filter(|l| l.starts_with("POST ") || l.starts_with("PATCH "))
        .cloned()
        .collect();
    assert!(
        uploads.is_empty(),
        "a repeated release uploads nothing: {uploads:?}"
    );
    assert_eq!(
        before,
        (
            registry.manifest_digest(&repo, &sig_tag),
            registry.manifest_digest(&repo, &att_tag)
        )
    );

    // verify: passes with the key, fails with another.
    let ok = verify(&fx, &reference, Some(&public), &env);
    assert_success(&ok);
    assert!(failed_checks(&ok).is_empty());
    let wrong = verify(&fx, &reference, Some(&other_public), &env);
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong.stderr));
    let failed = failed_checks(&wrong);
    assert!(failed.contains(&"signature".to_owned()), "{failed:?}");
    assert!(failed.contains(&"provenance".to_owned()), "{failed:?}");

    // A tampered SBOM: the SPDX envelope's payload changed, its signature kept.
    let mut att_manifest = registry.manifest(&repo, &att_tag).unwrap();
    let spdx_at = atts.iter().position(|(t, _)| t == SPDX).unwrap();
    let mut envelope = atts[spdx_at].1.clone();
    let mut statement: Value =
        serde_json::from_slice(&b64(envelope["payload"].as_str().unwrap())).unwrap();
    statement["predicate"]["packages"][0]["versionInfo"] = "9.9.9".into();
    envelope["payload"] = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(&statement).unwrap())
        .into();
    let tampered = serde_json::to_vec(&envelope).unwrap();
    let tampered_digest = registry.put_blob(&repo, &tampered);
    att_manifest["layers"][spdx_at]["digest"] = tampered_digest.into();
    att_manifest["layers"][spdx_at]["size"] = tampered.len().into();
    put_manifest(&registry, &repo, &att_tag, &att_manifest);
    let out = verify(&fx, &reference, Some(&public), &env);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        failed_checks(&out),
        ["SBOM (SPDX)"],
        "{}",
        text(&out.stdout)
    );

    // Another image under a tag, with this image's attachments copied to its own cosign tags.
    let other = registry.put_tiny_image(
        &repo,
        &[("org.opencontainers.image.revision", &sha)],
        &["retagged".to_owned()],
    );
    let other_hex = other.strip_prefix("sha256:").unwrap();
    for kind in ["sig", "att"] {
        let m = registry
            .manifest(&repo, &format!("sha256-{hex}.{kind}"))
            .unwrap();
        put_manifest(&registry, &repo, &format!("sha256-{other_hex}.{kind}"), &m);
    }
    let out = verify(&fx, &format!("{}:retagged", fx.image), Some(&public), &env);
    assert_eq!(out.status.code(), Some(1));
    let failed = failed_checks(&out);
    for check in ["signature", "provenance", "SBOM (SPDX)", "SBOM (CycloneDX)"] {
        assert!(
            failed.contains(&check.to_owned()),
            "{check} fails on a re-tagged image: {failed:?}"
        );
    }
}

fn put_manifest(registry: &Registry, repo: &str, tag: &str, manifest: &Value) {
    let resp = registry.request(
        "PUT",
        &format!("/v2/{repo}/manifests/{tag}"),
        &[("Content-Type", "application/vnd.oci.image.manifest.v1+json")],
        &serde_json::to_vec(manifest).unwrap(),
    );
    assert_eq!(resp.status, 201, "PUT {tag}: {}", resp.body);
}

#[test]
fn a_workspace_signed_by_its_manifests_cosign_key_gets_one_set_per_service() {
    let registry = Registry::start();
    let images = TestImages::new("chain-ws");
    let keys = tempfile::tempdir().unwrap();
    let (pkcs8, public) = openssl_key(keys.path(), "cosign");
    let encrypted = cosign_encrypted(&pkcs8, "correct horse");
    let image = |name: &str| format!("{}/{}", registry.addr, images.repo(name));
    let members: Vec<(&str, String)> = ["orders", "billing"]
        .into_iter()
        .map(|name| {
            let manifest = format!(
                r#"[package]
name = "{name}"
version = "2.0.1"
edition = "2024"
license = "MIT"
publish = false

[package.metadata.docker]
image = "{image}"
strategy = "host"
base = "scratch"
expose = [8080]

[package.metadata.docker.test]
ready = {{ timeout = "30s", http = {{ path = "/healthz", status = 200 }} }}
"#,
                image = image(name)
            );
            (name, manifest)
        })
        .collect();
    let repo = support::hello_workspace(
        "[workspace]\nmembers = [\"orders\", \"billing\"]\nresolver = \"3\"\n\n\
         [workspace.metadata.docker]\nsign-key = \"env://CDR_TEST_SIGNING_KEY\"\n",
        &members,
    );
    repo.commit_all("two signed services");
    let config = tempfile::tempdir().unwrap();
    std::fs::write(config.path().join("config.json"), "{}\n").unwrap();
    let docker_config = config.path().to_str().unwrap();
    let env = |password: &'static str| {
        [
            ("DOCKER_CONFIG", docker_config),
            ("CDR_TEST_SIGNING_KEY", encrypted.as_str()),
            ("COSIGN_PASSWORD", password),
        ]
    };

    // A wrong password stops the release before anything is built or pushed.
    let out = repo.run_with_env(["--workspace", "--push"], &env("wrong"));
    out.code_is(2);
    assert!(out.stderr.contains("COSIGN_PASSWORD"), "{out}");
    assert!(
        !out.stderr.contains("Compiling"),
        "nothing was built: {out}"
    );
    for name in ["orders", "billing"] {
        assert!(
            registry.tags(&images.repo(name)).is_empty(),
            "nothing pushed: {out}"
        );
    }

    let out = repo.run_with_env(
        ["--workspace", "--push", "--message-format", "json"],
        &env("correct horse"),
    );
    out.success();
    let report = out.json();
    let services = report["services"].as_array().unwrap();
    assert_eq!(services.len(), 2);
    for service in services {
        let name = service["package"].as_str().unwrap();
        let digest = service["digest"].as_str().unwrap();
        let attached = &service["attached"];
        assert_eq!(attached["signed"], true, "{name}");
        let mut types: Vec<&str> = attached["predicate_types"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap())
            .collect();
        types.sort();
        assert_eq!(types, [CYCLONEDX, SLSA, SPDX], "{name}");
        let atts = attestations(&registry, &images.repo(name), digest);
        assert_eq!(atts.len(), 3, "one set per service: {name}");
        let docs = repo.path(format!("target/docker-release/{name}"));
        support::sbom::assert_valid_spdx(&docs.join("sbom.spdx.json"));
        support::sbom::assert_valid_cyclonedx(&docs.join("sbom.cdx.json"));
        let out = repo.run_with_env(
            [
                "verify",
                &format!("{}:2.0.1", image(name)),
                "--key",
                public.to_str().unwrap(),
            ],
            &env("correct horse"),
        );
        out.success();
        assert!(out.stdout.contains("ok    signature"), "{out}");
    }
}

#[test]
fn over_https_with_tokens_the_attachments_are_pushed_and_verified() {
    let registry =
        Registry::start_tls(support::registry::Auth::Token("ci".into(), "s3cret".into()));
    let fx = Fixture::new("chaintls", Some(&registry.addr), "3.1.0", "");
    let repo = fx.image.split_once('/').unwrap().1.to_owned();
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = openssl_key(keys.path(), "release");
    let config = registry.docker_config();
    let env = [("DOCKER_CONFIG", config.to_str().unwrap())];

    let out = fx.run_env(
        &[
            "--push",
            "--sign-key",
            key.to_str().unwrap(),
            "--message-format",
            "json",
        ],
        &env,
    );
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let digest = report["services"][0]["digest"].as_str().unwrap().to_owned();
    let hex = &digest[7..];
    let tags = registry.tags(&repo);
    for tag in [format!("sha256-{hex}.sig"), format!("sha256-{hex}.att")] {
        assert!(tags.contains(&tag), "{tag} in {tags:?}");
    }
    assert_eq!(attestations(&registry, &repo, &digest).len(), 3);

    let reference = format!("{}:3.1.0", fx.image);
    let ok = verify(&fx, &reference, Some(&public), &env);
    assert_success(&ok);
    assert!(failed_checks(&ok).is_empty());
}
