//! The registry client (`registry`) against real registries (Debian's
//! `docker-registry`, see `support::registry`): HTTPS under a test host name with the CA trusted
//! in `/etc/docker/certs.d`, htpasswd Basic auth, `auth: token` behind the suite's token server
//! (RS256 JWTs the registry verifies itself), identity tokens, anonymous pull-only tokens, tag
//! and catalog listing with `Link` pages, manifests and their config labels, and a manifest `PUT`
//! that copies a manifest under a new tag. No engine build is involved: tags are made with
//! manifest `PUT`s.

use crate::support;

use cargo_docker_release::docker_config::credentials::Credentials;
use cargo_docker_release::registry::auth::Challenge;
use cargo_docker_release::registry::{InsecureRegistries, RegistryClient};
use support::registry::{Auth, Registry};
use support::service::block_on;

fn creds(user: &str, password: &str) -> Option<Credentials> {
    Some(Credentials {
        username: user.into(),
        password: password.into(),
        identity_token: None,
    })
}

#[allow(clippy::result_large_err)]
fn connect(
    registry: &Registry,
    credentials: Option<Credentials>,
) -> cargo_docker_release::error::Result<RegistryClient> {
    block_on(RegistryClient::connect(
        &registry.addr,
        credentials,
        &InsecureRegistries::default(),
    ))
}

#[test]
fn a_token_registry_over_tls_lists_reads_and_copies_with_reused_tokens() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let repo = "acme/orders";
    let tags: Vec<String> = (0..130).map(|i| format!("1.0.{i}")).collect();
    let digest = registry.put_tiny_image(
        repo,
        &[("org.opencontainers.image.revision", "abc123")],
        &tags,
    );

    let client = connect(&registry, creds("ci", "s3cret")).expect("connects over verified TLS");
    assert!(
        client.base_url().starts_with("https://"),
        "{}",
        client.base_url()
    );
    assert!(matches!(client.challenge(), Challenge::Bearer { .. }));
    let server = registry.token_server().unwrap();

    let mut listed = block_on(client.tags(repo)).unwrap();
    listed.sort();
    let mut expected = tags.clone();
    expected.sort();
    assert_eq!(listed, expected, "every tag is listed");
    let after_first = server.requests();
    assert!(after_first >= 1, "a token was fetched");
    block_on(client.tags(repo)).unwrap();
    let digest_back = block_on(client.manifest_digest(repo, "1.0.7")).unwrap();
    assert_eq!(digest_back.as_deref(), Some(digest.as_str()));
    assert_eq!(
        server.requests(),
        after_first,
        "the pull token is reused within one client"
    );

    let (manifest, config) = block_on(client.labels(repo, "1.0.7")).unwrap().unwrap();
    assert_eq!(manifest.digest, digest);
    assert_eq!(config.labels["org.opencontainers.image.revision"], "abc123");
    assert_eq!(block_on(client.manifest(repo, "9.9.9")).unwrap(), None);
    assert_eq!(
        block_on(client.tags("acme/none")).unwrap(),
        Vec::<String>::new()
    );

    // A manifest copied under a new tag, inside the registry.
    let copied = block_on(client.put_manifest(repo, "copied", &manifest)).unwrap();
    assert_eq!(copied, digest);
    assert_eq!(
        registry.manifest_digest(repo, "copied"),
        Some(digest.clone())
    );
}

#[test]
fn anonymous_tokens_only_pull_and_wrong_passwords_fail_at_the_token_step() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let repo = "acme/public";
    registry.put_tiny_image(repo, &[], &["1.0.0".to_owned()]);

    let anonymous = connect(&registry, None).unwrap();
    assert_eq!(
        block_on(anonymous.tags(repo)).unwrap(),
        vec!["1.0.0".to_owned()]
    );
    let manifest = block_on(anonymous.manifest(repo, "1.0.0"))
        .unwrap()
        .unwrap();
    let refused = block_on(anonymous.put_manifest(repo, "2.0.0", &manifest)).unwrap_err();
    let text = format!("{refused:?}");
    assert!(
        text.contains(&format!("registry {}", registry.addr)),
        "{text}"
    );
    assert!(text.contains("(put)"), "{text}");
    assert!(text.contains("docker login"), "{text}");
    assert!(registry.manifest_digest(repo, "2.0.0").is_none());

    let wrong = connect(&registry, creds("ci", "not-the-password")).unwrap();
    let e = block_on(wrong.tags(repo)).unwrap_err();
    let text = format!("{e:?}");
    assert_eq!(e.exit_code(), 1);
    assert!(
        text.contains(&format!("registry {} (token)", registry.addr)),
        "{text}"
    );
    assert!(
        !text.contains("not-the-password"),
        "no secret in errors: {text}"
    );
}

#[test]
fn identity_tokens_get_tokens_by_the_refresh_grant() {
    let registry = Registry::start_tls(Auth::Token("ci".into(), "s3cret".into()));
    let repo = "acme/idt";
    registry.put_tiny_image(repo, &[], &["0.1.0".to_owned()]);
    let identity = |token: &str| {
        Some(Credentials {
            username: String::new(),
            password: String::new(),
            identity_token: Some(token.to_owned()),
        })
    };
    let good = identity(&registry.token_server().unwrap().identity_token);
    let client = connect(&registry, good).unwrap();
    let manifest = block_on(client.manifest(repo, "0.1.0")).unwrap().unwrap();
    block_on(client.put_manifest(repo, "0.1.1", &manifest)).expect("the user's token may push");

    let bad = connect(&registry, identity("refresh-wrong")).unwrap();
    let e = block_on(bad.tags(repo)).unwrap_err();
    assert!(format!("{e:?}").contains("(token)"), "{e:?}");
    assert!(!format!("{e:?}").contains("refresh-wrong"), "{e:?}");
}

#[test]
fn basic_auth_over_tls_checks_the_password_at_the_ping() {
    let registry = Registry::start_tls(Auth::Basic("ci".into(), "s3cret".into()));
    let e = connect(&registry, creds("ci", "wrong")).unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains(&format!("registry {} (ping)", registry.addr)),
        "{text}"
    );
    assert!(text.contains("401"), "{text}");
    assert!(!text.contains("wrong\""), "{text}");
    let e = connect(&registry, None).unwrap_err();
    assert!(format!("{e:?}").contains("no credentials"), "{e:?}");

    let client = connect(&registry, creds("ci", "s3cret")).unwrap();
    assert_eq!(client.challenge(), &Challenge::Basic);
    registry.put_tiny_image("acme/basic", &[], &["1.0.0".to_owned()]);
    assert_eq!(
        block_on(client.tags("acme/basic")).unwrap(),
        vec!["1.0.0".to_owned()]
    );
}

#[test]
fn an_untrusted_ca_is_refused_with_the_certs_d_hint_unless_the_registry_is_insecure() {
    let registry = Registry::start_tls_untrusted(Auth::None);
    let e = connect(&registry, None).unwrap_err();
    let text = format!("{e:?}");
    assert!(
        text.contains(&format!("registry {} (ping)", registry.addr)),
        "{text}"
    );
    assert!(
        text.contains(&format!("/etc/docker/certs.d/{}/ca.crt", registry.addr)),
        "{text}"
    );

    // Trusted through a certs.d directory: verified HTTPS.
    let certs_d = tempfile::tempdir().unwrap();
    let dir = certs_d.path().join(&registry.addr);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(registry.ca_cert().unwrap(), dir.join("ca.crt")).unwrap();
    let client = block_on(RegistryClient::connect_with(
        &registry.addr,
        None,
        &InsecureRegistries::default(),
        certs_d.path(),
    ))
    .unwrap();
    assert!(client.base_url().starts_with("https://"));

    // Declared insecure (as the engine's insecure-registries): HTTPS without verification.
    let insecure = InsecureRegistries::new(&[], std::slice::from_ref(&registry.addr));
    let client = block_on(RegistryClient::connect(&registry.addr, None, &insecure)).unwrap();
    assert!(client.base_url().starts_with("https://"));
}

#[test]
fn an_insecure_loopback_registry_falls_back_to_plain_http_and_lists_follow_link_pages() {
    let registry = Registry::start();
    let repos: Vec<String> = (0..120).map(|i| format!("cdr-page/r{i:03}")).collect();
    for repo in &repos {
        registry.put_tiny_image(repo, &[], &["1.0.0".to_owned()]);
    }
    let client = connect(&registry, None).unwrap().with_page_size(50);
    assert!(
        client.base_url().starts_with("http://"),
        "{}",
        client.base_url()
    );
    // The catalog answers 50 per page with a `Link` to the next: three pages.
    let listed = block_on(client.repositories()).unwrap();
    assert_eq!(listed, repos, "every page was followed");

    let many: Vec<String> = (0..120).map(|i| format!("0.{i}.0")).collect();
    registry.put_tiny_image("cdr-page/many", &[], &many);
    let mut tags = block_on(client.tags("cdr-page/many")).unwrap();
    tags.sort();
    let mut expected = many.clone();
    expected.sort();
    assert_eq!(tags, expected);
}
