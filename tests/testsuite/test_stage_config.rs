//! `[package.metadata.docker.test]` in Cargo.toml: typed, defaulted, and wrong values reported at
//! their line with a hint (exit 2). No engine needed.

#![allow(clippy::result_large_err)]

use cargo_docker_release::cli::Cli;
use cargo_docker_release::config::ServiceConfig;
use cargo_docker_release::error::{Error, Result};
use clap::Parser;

fn load(test_section: &str) -> Result<ServiceConfig> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    std::fs::write(
        dir.path().join("Cargo.toml"),
        format!(
            "[package]\nname = \"svc\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n\n[package.metadata.docker]\nexpose = [8080]\n\n[package.metadata.docker.test]\n{test_section}"
        ),
    )
    .unwrap();
    let manifest = dir.path().join("Cargo.toml");
    let Cli::DockerRelease(args) = Cli::parse_from([
        "cargo",
        "docker-release",
        "--manifest-path",
        manifest.to_str().unwrap(),
    ]);
    let (_, services) = args.global.load_services(true)?;
    Ok(services.into_iter().next().unwrap().config)
}

fn manifest_error(test_section: &str) -> String {
    match load(test_section) {
        Err(e @ Error::Manifest(_)) => {
            assert_eq!(e.exit_code(), 2);
            cargo_docker_release::error::render(&e, false)
        }
        other => panic!("expected a manifest error, got {other:?}"),
    }
}

#[test]
fn every_section_is_typed_with_defaults() {
    let config = load(
        r#"
structure = { user = "non-root", max-size = "50MB", files = [{ path = "/app", mode = "0755", owner = "0:0" }], absent = ["/bin/sh"] }
shutdown = {}

[[package.metadata.docker.test.exec]]
cmd = ["/app", "--version"]
stdout = ["{version}"]

[[package.metadata.docker.test.cargo]]
test = "smoke"

[[package.metadata.docker.test.host]]
cmd = ["true"]

[[package.metadata.docker.test.http]]
path = "/version"
body = ["{sha}"]
"#,
    )
    .unwrap();
    let test = &config.test;
    assert_eq!(test.structure.user, Some(None));
    assert_eq!(test.structure.max_size, Some(50_000_000));
    assert_eq!(test.structure.files[0].mode, Some(0o755));
    assert_eq!(test.structure.files[0].owner, Some((0, Some(0))));
    assert_eq!(test.exec[0].name, "/app --version");
    assert_eq!(test.exec[0].expect.status, 0);
    assert_eq!(test.exec[0].timeout.as_secs(), 30);
    assert_eq!(test.cargo[0].test, "smoke");
    assert_eq!(test.host[0].cmd, ["true"]);
    assert_eq!(
        (
            test.http[0].method.as_str(),
            test.http[0].port,
            test.http[0].status
        ),
        ("GET", 8080, 200)
    );
    let shutdown = test.shutdown.as_ref().unwrap();
    assert_eq!((shutdown.timeout.as_secs(), shutdown.exit_code), (10, 0));
}

#[test]
fn misspelt_key_points_at_its_line_and_suggests_the_right_one() {
    let rendered = manifest_error(
        r#"
[[package.metadata.docker.test.exec]]
cmd = ["/app"]
stdot = ["ok"]
"#,
    );
    assert!(rendered.contains("unknown key `stdot`"), "{rendered}");
    assert!(rendered.contains("did you mean `stdout`?"), "{rendered}");
    assert!(rendered.contains("stdot = [\"ok\"]"), "{rendered}");
}

#[test]
fn wrong_values_are_located_with_a_hint() {
    for (section, expected) in [
        (
            r#"structure = { max-size = "lots" }"#,
            "invalid size `lots`",
        ),
        (
            r#"structure = { files = [{ path = "/app", mode = "rwx" }] }"#,
            "`rwx` is not an octal mode",
        ),
        (r#"structure = { absent = ["bin/sh"] }"#, "must be absolute"),
        (
            "[[package.metadata.docker.test.exec]]\ncmd = []\n",
            "`cmd` needs at least a program",
        ),
        (
            "[[package.metadata.docker.test.exec]]\ncmd = [\"/app\"]\ntimeout = \"soon\"\n",
            "invalid duration `soon`",
        ),
        (
            "[[package.metadata.docker.test.http]]\npath = \"version\"\n",
            "HTTP path must start with `/`",
        ),
        (
            "[[package.metadata.docker.test.http]]\npath = \"/\"\nmethod = \"get\"\n",
            "`get` is not an HTTP method",
        ),
        (
            "[[package.metadata.docker.test.cargo]]\ntest = \"../x\"\n",
            "`../x` is not a test target name",
        ),
        (
            r#"shutdown = { timeout = "1 fortnight" }"#,
            "invalid duration",
        ),
    ] {
        let rendered = manifest_error(section);
        assert!(rendered.contains(expected), "{section}\n{rendered}");
        assert!(rendered.contains("Cargo.toml"), "{rendered}");
    }
}
