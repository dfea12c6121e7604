//! A registry set up the way Docker's documentation says for a self-signed certificate: one
//! certificate made by `openssl req -newkey rsa:4096 -nodes -sha256 -keyout domain.key -addext
//! "subjectAltName = DNS:host" -x509 -days 365 -out domain.crt`, served by Debian's registry and
//! the same file copied to `/etc/docker/certs.d/host:port/ca.crt` (see `support::registry`).
//!
//! - a `--push` release to it, then an immutable-only job and a `promote` from it, succeed: the
//!   registry serves the tested manifest under every tag;
//! - a self-signed certificate that `certs.d` does not hold (none there, or another one with the
//!   same name) is refused before anything is built, saying it is self-signed and where to put it.

use crate::support;

use std::time::Instant;

use cargo_docker_release::engine::images::ImageStore;
use serde_json::Value;
use support::Registry;
use support::registry::{Auth, CERTS_D, CaTrust};
use support::service::*;

/// `text` without whitespace and miette's margin, so that wrapped messages can be searched.
fn flat(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

fn repo(fx: &Fixture) -> &str {
    fx.image.split_once('/').unwrap().1
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn owned(v: &[&str]) -> Vec<String> {
    sorted(v.iter().map(|s| (*s).to_owned()).collect())
}

/// Images the engine holds that were built for the fixture's package (tagged or not).
fn built_images(fx: &Fixture) -> usize {
    block_on(async {
        engine()
            .await
            .images_labelled(&[("io.cargo-docker-release.package", &fx.package)])
            .await
            .unwrap()
            .len()
    })
}

#[test]
fn a_registry_with_dockers_self_signed_certificate_is_pushed_to_and_promoted_from() {
    let registry = Registry::start_self_signed(Auth::Basic("ci".into(), "s3cret".into()), true);
    let config = registry.docker_config();
    let env = [("DOCKER_CONFIG", config.to_str().unwrap())];
    let fx = Fixture::new("selfsigned", Some(&registry.addr), "1.2.3", "");
    let (first, _) = fx.head();

    let started = Instant::now();
    let out = fx.run_env(&["--push", "--message-format", "json"], &env);
    let push_time = started.elapsed();
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let image = &report["services"][0];
    let digest = registry.manifest_digest(repo(&fx), "1.2.3").unwrap();
    assert_eq!(image["digest"], digest.as_str(), "{report}");
    assert_eq!(
        registry.release_tags(repo(&fx)),
        owned(&["1", "1.2", "1.2.3", &first[..7], "latest"])
    );
    for tag in ["1", "1.2", "latest", &first[..7]] {
        assert_eq!(
            registry.manifest_digest(repo(&fx), tag).as_deref(),
            Some(digest.as_str()),
            "{tag}"
        );
    }

    // A CI job pushes 1.3.0's immutable tags; the promotion moves the floating ones.
    fx.write_manifest("1.3.0", "");
    let second = fx.commit("1.3.0");
    let out = fx.run_env(&["--push", "--stage", "immutable"], &env);
    assert_success(&out);
    let digest = registry.manifest_digest(repo(&fx), "1.3.0").unwrap();
    assert_ne!(
        registry.manifest_digest(repo(&fx), "latest").as_deref(),
        Some(digest.as_str())
    );
    let started = Instant::now();
    let out = fx.run_env(&["promote", "--message-format", "json"], &env);
    let promote_time = started.elapsed();
    assert_success(&out);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["success"], true, "{report}");
    assert_eq!(
        registry.release_tags(repo(&fx)),
        owned(&[
            "1",
            "1.2",
            "1.2.3",
            "1.3",
            "1.3.0",
            &first[..7],
            &second[..7],
            "latest"
        ])
    );
    for tag in ["1", "1.3", "latest", &second[..7]] {
        assert_eq!(
            registry.manifest_digest(repo(&fx), tag).as_deref(),
            Some(digest.as_str()),
            "{tag} names 1.3.0's manifest"
        );
    }
    eprintln!("self-signed registry: --push release {push_time:.2?}, promote {promote_time:.2?}");
}

#[test]
fn a_self_signed_certificate_that_certs_d_does_not_hold_is_refused_before_the_build() {
    let registry = Registry::start_self_signed(Auth::None, false);
    let fx = Fixture::new("selfsigned", Some(&registry.addr), "1.0.0", "");
    let config = registry.docker_config();
    let env = [("DOCKER_CONFIG", config.to_str().unwrap())];
    let expect_refused = |what: &str| {
        let started = Instant::now();
        let out = fx.run_env(&["--push"], &env);
        let took = started.elapsed();
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(&out.stderr));
        let stderr = flat(&text(&out.stderr));
        for part in [
            format!("registry {} (ping)", registry.addr),
            "self-signed and not trusted".to_owned(),
            format!("{CERTS_D}/{}/ca.crt", registry.addr),
        ] {
            assert!(stderr.contains(&flat(&part)), "{what}: {part} in {stderr}");
        }
        assert_eq!(built_images(&fx), 0, "{what}: nothing was built");
        assert!(
            registry.tags(repo(&fx)).is_empty(),
            "{what}: nothing pushed"
        );
        eprintln!("{what}: refused in {took:.2?}");
    };
    expect_refused("no certs.d directory");

    // Another certificate of the same recipe and the same name in certs.d: trust is the exact
    // certificate, not its name.
    let other = Registry::start_self_signed(Auth::None, true);
    let _trust = CaTrust::install(&registry.addr, other.ca_cert().unwrap());
    expect_refused("another self-signed certificate in certs.d");
}
