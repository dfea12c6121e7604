//! The registry client's push of what the tool assembles itself (`registry::upload`), against
//! real registries (Debian's `docker-registry`, see `support::registry`): blobs uploaded once
//! and then found present, mounted from another repository, uploaded in chunks, read back
//! checked against their digest; a manifest naming them put and read back by its digest; the
//! registry's refusals named by step; and all of it through Basic auth and the token registry
//! over TLS. What the registry received is read from its access log.

use crate::support;

use bytes::Bytes;
use cargo_docker_release::docker_config::credentials::Credentials;
use cargo_docker_release::registry::{
    BlobPush, InsecureRegistries, OCI_MANIFEST, RegistryClient, sha256_digest,
};
use support::registry::{Auth, Registry};
use support::service::block_on;

fn connect(registry: &Registry) -> RegistryClient {
    let credentials = registry.credentials.as_ref().map(|(u, p)| Credentials {
        username: u.clone(),
        password: p.clone(),
        identity_token: None,
    });
    block_on(RegistryClient::connect(
        &registry.addr,
        credentials,
        &InsecureRegistries::default(),
    ))
    .expect("connects")
}

/// `n` bytes that differ between calls with different `seed`s.
fn blob(seed: u8, n: usize) -> Bytes {
    Bytes::from(
        (0..n)
            .map(|i| (i as u8).wrapping_mul(31) ^ seed)
            .collect::<Vec<u8>>(),
    )
}

/// The access-log lines of blob uploads (`POST`/`PATCH`/`PUT` under `blobs/uploads/`) to `repo`.
fn uploads(registry: &Registry, repo: &str) -> Vec<String> {
    let prefix = format!("/v2/{repo}/blobs/uploads/");
    registry
        .access_log()
        .into_iter()
        .filter(|l| {
            let mut parts = l.split(' ');
            let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
            method != "HEAD" && method != "GET" && path.starts_with(&prefix)
        })
        .collect()
}

/// Waits until the registry has logged at least `n` requests (it writes the access log after it
/// answers).
fn log_settles(registry: &Registry, n: usize) {
    let start = std::time::Instant::now();
    while registry.access_log().len() < n && start.elapsed() < std::time::Duration::from_secs(5) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// An OCI manifest naming `config` and `layers` (as digests and sizes).
fn oci_manifest(config: &Bytes, layers: &[&Bytes]) -> Bytes {
    let layers: Vec<serde_json::Value> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha256_digest(l),
                "size": l.len(),
            })
        })
        .collect();
    Bytes::from(
        serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": sha256_digest(config),
                "size": config.len(),
            },
            "layers": layers,
        })
        .to_string(),
    )
}

fn image_config(revision: &str) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "architecture": "amd64",
            "os": "linux",
            "config": {"Labels": {"org.opencontainers.image.revision": revision}},
            "rootfs": {"type": "layers", "diff_ids": []},
        })
        .to_string(),
    )
}

#[test]
fn a_blob_is_uploaded_once_then_found_present_and_read_back_checked() {
    let registry = Registry::start();
    let client = connect(&registry);
    let repo = "acme/orders";
    let layer = blob(1, 3000);
    let digest = sha256_digest(&layer);

    assert!(!block_on(client.has_blob(repo, &digest)).unwrap());
    assert_eq!(block_on(client.blob(repo, &digest)).unwrap(), None);
    let pushed = block_on(client.push_blob(repo, &digest, layer.clone(), &[])).unwrap();
    assert_eq!(pushed, BlobPush::Uploaded { bytes: 3000 });
    assert!(block_on(client.has_blob(repo, &digest)).unwrap());
    log_settles(&registry, 5);
    let first = uploads(&registry, repo);
    assert_eq!(first.len(), 2, "one POST and one monolithic PUT: {first:?}");
    assert!(first[0].starts_with("POST ") && first[0].ends_with(" 202"));
    assert!(first[1].starts_with("PUT ") && first[1].contains("digest=sha256:"));

    // Again: the HEAD finds it and nothing is sent.
    let before = registry.access_log().len();
    let again = block_on(client.push_blob(repo, &digest, layer.clone(), &[])).unwrap();
    assert_eq!(again, BlobPush::Present);
    log_settles(&registry, before + 1);
    assert_eq!(uploads(&registry, repo), first, "no second upload");
    let log = registry.access_log();
    assert_eq!(
        log[before..],
        [format!("HEAD /v2/{repo}/blobs/{digest} 200")],
        "the re-push is one HEAD"
    );

    let back = block_on(client.blob(repo, &digest)).unwrap();
    assert_eq!(back, Some(layer));
}

#[test]
fn a_blob_larger_than_the_chunk_size_goes_up_in_chunks() {
    let registry = Registry::start();
    let client = connect(&registry).with_chunk_size(1000);
    let repo = "acme/big";
    let layer = blob(2, 4500);
    let digest = sha256_digest(&layer);

    let pushed = block_on(client.push_blob(repo, &digest, layer.clone(), &[])).unwrap();
    assert_eq!(pushed, BlobPush::Uploaded { bytes: 4500 });
    log_settles(&registry, 8);
    let sent = uploads(&registry, repo);
    let methods: Vec<&str> = sent.iter().map(|l| l.split(' ').next().unwrap()).collect();
    assert_eq!(
        methods,
        ["POST", "PATCH", "PATCH", "PATCH", "PATCH", "PATCH", "PUT"],
        "{sent:?}"
    );
    assert!(sent[1..6].iter().all(|l| l.ends_with(" 202")), "{sent:?}");
    assert!(sent[6].ends_with(" 201"), "{sent:?}");
    assert_eq!(block_on(client.blob(repo, &digest)).unwrap(), Some(layer));

    // Exactly one chunk's size is still one monolithic PUT.
    let small = blob(3, 1000);
    let pushed = block_on(client.push_blob(repo, &sha256_digest(&small), small, &[])).unwrap();
    assert_eq!(pushed, BlobPush::Uploaded { bytes: 1000 });
    log_settles(&registry, 11);
    let sent = uploads(&registry, repo);
    assert_eq!(sent.len(), 9, "{sent:?}");
    assert!(sent[8].starts_with("PUT "), "{sent:?}");
}

#[test]
fn a_blob_another_repository_holds_is_mounted_not_uploaded() {
    let registry = Registry::start();
    let client = connect(&registry);
    let layer = blob(4, 2000);
    let digest = sha256_digest(&layer);
    block_on(client.push_blob("acme/base", &digest, layer.clone(), &[])).unwrap();

    // The first source lacks it (the registry opens an upload instead, which is cancelled);
    // the second has it.
    let pushed = block_on(client.push_blob(
        "acme/app",
        &digest,
        layer.clone(),
        &["acme/elsewhere", "acme/base"],
    ))
    .unwrap();
    assert_eq!(
        pushed,
        BlobPush::Mounted {
            from: "acme/base".into()
        }
    );
    log_settles(&registry, 8);
    let sent = uploads(&registry, "acme/app");
    assert!(
        sent.iter()
            .all(|l| l.starts_with("POST ") || l.starts_with("DELETE ")),
        "nothing uploaded to acme/app: {sent:?}"
    );
    assert!(
        sent.iter()
            .any(|l| l.contains("from=acme/base") && l.ends_with(" 201")),
        "{sent:?}"
    );
    assert!(
        sent.iter()
            .any(|l| l.starts_with("DELETE ") && l.ends_with(" 204")),
        "the upload the first refused mount opened is cancelled: {sent:?}"
    );
    assert_eq!(
        block_on(client.blob("acme/app", &digest)).unwrap(),
        Some(layer)
    );

    // No source has it: the session the last refused mount opened takes the upload.
    let other = blob(5, 500);
    let other_digest = sha256_digest(&other);
    let pushed =
        block_on(client.push_blob("acme/app", &other_digest, other.clone(), &["acme/base"]))
            .unwrap();
    assert_eq!(pushed, BlobPush::Uploaded { bytes: 500 });
    assert_eq!(
        block_on(client.blob("acme/app", &other_digest)).unwrap(),
        Some(other)
    );
}

#[test]
fn an_assembled_image_is_pushed_and_read_back_by_its_digest() {
    let registry = Registry::start();
    let client = connect(&registry);
    let repo = "acme/assembled";
    let config = image_config("abc123");
    let layer = blob(6, 5000);
    for b in [&config, &layer] {
        block_on(client.push_blob(repo, &sha256_digest(b), b.clone(), &[])).unwrap();
    }
    let manifest = oci_manifest(&config, &[&layer]);
    let digest = sha256_digest(&manifest);

    let answered =
        block_on(client.put_manifest_bytes(repo, "1.0.0", OCI_MANIFEST, manifest.clone())).unwrap();
    assert_eq!(answered, digest);
    let back = block_on(client.manifest(repo, "1.0.0")).unwrap().unwrap();
    assert_eq!(back.digest, digest);
    assert_eq!(back.bytes, manifest);
    assert_eq!(back.media_type, OCI_MANIFEST);
    assert_eq!(back.config_digest, Some(sha256_digest(&config)));
    let labels = block_on(client.image_config(repo, &back)).unwrap().unwrap();
    assert_eq!(labels.labels["org.opencontainers.image.revision"], "abc123");
    assert_eq!(
        registry.manifest_digest(repo, "1.0.0"),
        Some(digest.clone())
    );

    // By its digest, and copied under another tag by the older call.
    let by_digest =
        block_on(client.put_manifest_bytes(repo, &digest, OCI_MANIFEST, manifest)).unwrap();
    assert_eq!(by_digest, digest);
    assert_eq!(
        block_on(client.put_manifest(repo, "latest", &back)).unwrap(),
        digest
    );
    assert_eq!(registry.manifest_digest(repo, "latest"), Some(digest));
}

#[test]
fn refusals_and_mismatches_name_the_registry_and_the_step() {
    let registry = Registry::start();
    let client = connect(&registry);
    let repo = "acme/broken";
    let config = image_config("def456");
    block_on(client.push_blob(repo, &sha256_digest(&config), config.clone(), &[])).unwrap();

    // A layer that was never pushed: the registry refuses the manifest.
    let missing = blob(7, 100);
    let manifest = oci_manifest(&config, &[&missing]);
    let e = block_on(client.put_manifest_bytes(repo, "1.0.0", OCI_MANIFEST, manifest.clone()))
        .unwrap_err();
    let text = format!("{e:?}");
    assert_eq!(e.exit_code(), 1);
    assert!(
        text.contains(&format!("registry {} (put)", registry.addr)),
        "{text}"
    );
    assert!(text.contains("MANIFEST_BLOB_UNKNOWN"), "{text}");
    assert_eq!(registry.manifest_digest(repo, "1.0.0"), None);

    // A digest reference the bytes do not hash to is refused before anything is sent.
    let wrong = sha256_digest(b"something else");
    let e = block_on(client.put_manifest_bytes(repo, &wrong, OCI_MANIFEST, manifest)).unwrap_err();
    assert!(format!("{e:?}").contains("(put)"), "{e:?}");
    assert!(format!("{e:?}").contains(&wrong), "{e:?}");

    // A blob whose digest is not its sha256 is not pushed.
    let before = uploads(&registry, repo).len();
    let e = block_on(client.push_blob(repo, &wrong, missing, &[])).unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains(&format!("registry {} (upload)", registry.addr)),
        "{text}"
    );
    assert_eq!(uploads(&registry, repo).len(), before, "nothing uploaded");
    assert!(!block_on(client.has_blob(repo, &wrong)).unwrap());
}

#[test]
fn a_token_registry_pushes_and_mounts_with_tokens_and_refuses_anonymous_pushes() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let client = connect(&registry).with_chunk_size(4096);
    let config = image_config("t0k3n");
    let layer = blob(8, 10_000);
    let layer_digest = sha256_digest(&layer);

    // The base repository gets the layer in chunks; the app repository mounts it.
    assert_eq!(
        block_on(client.push_blob("acme/base", &layer_digest, layer.clone(), &[])).unwrap(),
        BlobPush::Uploaded { bytes: 10_000 }
    );
    let tokens = registry.token_server().unwrap().requests();
    assert_eq!(
        block_on(client.push_blob("acme/app", &layer_digest, layer.clone(), &["acme/base"]))
            .unwrap(),
        BlobPush::Mounted {
            from: "acme/base".into()
        }
    );
    assert!(
        registry.token_server().unwrap().requests() > tokens,
        "the mount asked for a token covering both repositories"
    );
    block_on(client.push_blob("acme/app", &sha256_digest(&config), config.clone(), &[])).unwrap();
    let manifest = oci_manifest(&config, &[&layer]);
    let digest =
        block_on(client.put_manifest_bytes("acme/app", "2.0.0", OCI_MANIFEST, manifest.clone()))
            .unwrap();
    assert_eq!(digest, sha256_digest(&manifest));
    assert_eq!(
        registry.manifest_digest("acme/app", "2.0.0"),
        Some(digest.clone())
    );

    // Anonymous users get pull-only tokens: they read, and their push is refused at the upload.
    let anonymous = block_on(RegistryClient::connect(
        &registry.addr,
        None,
        &InsecureRegistries::default(),
    ))
    .unwrap();
    assert_eq!(
        block_on(anonymous.blob("acme/app", &layer_digest)).unwrap(),
        Some(layer.clone())
    );
    let other = blob(9, 300);
    let e =
        block_on(anonymous.push_blob("acme/app", &sha256_digest(&other), other, &["acme/base"]))
            .unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains(&format!("registry {} (upload)", registry.addr)),
        "{text}"
    );
    assert!(text.contains("docker login"), "{text}");
    assert!(!text.contains("s3cret"), "{text}");
}

#[test]
fn a_basic_auth_registry_takes_blobs_mounts_and_manifests_with_its_credentials() {
    let registry = Registry::start_with_auth("ci", "s3cret");
    let client = connect(&registry).with_chunk_size(2048);
    let config = image_config("b4s1c");
    let layer = blob(10, 5000);
    let layer_digest = sha256_digest(&layer);
    assert_eq!(
        block_on(client.push_blob("acme/base", &layer_digest, layer.clone(), &[])).unwrap(),
        BlobPush::Uploaded { bytes: 5000 }
    );
    assert_eq!(
        block_on(client.push_blob("acme/app", &layer_digest, layer.clone(), &["acme/base"]))
            .unwrap(),
        BlobPush::Mounted {
            from: "acme/base".into()
        }
    );
    block_on(client.push_blob("acme/app", &sha256_digest(&config), config.clone(), &[])).unwrap();
    let manifest = oci_manifest(&config, &[&layer]);
    let digest =
        block_on(client.put_manifest_bytes("acme/app", "3.0.0", OCI_MANIFEST, manifest.clone()))
            .unwrap();
    assert_eq!(digest, sha256_digest(&manifest));
    assert_eq!(registry.manifest_digest("acme/app", "3.0.0"), Some(digest));
}
