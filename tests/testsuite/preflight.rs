//! The release's preflight: every problem of every selected service reported at once, before the
//! first build, against the real engine.

use crate::support;

use support::{TestImages, docker_ok, example_dir, project, require_docker};

#[test]
fn every_services_problem_is_reported_at_once_and_nothing_is_built() {
    require_docker();
    let images = TestImages::new("preflight");
    let repo = project().copy_of(example_dir("workspace")).build();
    // Two services, each with its own manifest error ...
    repo.edit_toml("orders/Cargo.toml", |doc| {
        doc["package"]["metadata"]["docker"]["imagee"] = toml_edit::value("typo");
        doc["package"]["metadata"]["docker"]["image"] = toml_edit::value(images.repo("orders"));
    });
    repo.edit_toml("billing/Cargo.toml", |doc| {
        doc["package"]["metadata"]["docker"]["expose"] = toml_edit::value("eighty");
        doc["package"]["metadata"]["docker"]["image"] = toml_edit::value(images.repo("billing"));
    });
    // ... and a third whose hand-written Dockerfile fails the lint (runs as root).
    repo.edit_toml("Cargo.toml", |doc| {
        doc["workspace"]["members"]
            .as_array_mut()
            .unwrap()
            .push("gateway");
    });
    repo.write(
        "gateway/Cargo.toml",
        &format!(
            r#"[package]
name = "gateway"
version.workspace = true
edition.workspace = true
license.workspace = true
publish = false

[package.metadata.docker]
image = "{}"
dockerfile = "Dockerfile"
"#,
            images.repo("gateway")
        ),
    );
    repo.write("gateway/src/main.rs", "fn main() {}\n");
    repo.write(
        "gateway/Dockerfile",
        "FROM scratch\nCOPY gateway /gateway\nENTRYPOINT [\"/gateway\"]\n",
    );
    let locked = std::process::Command::new(env!("CARGO"))
        .args(["update", "--workspace", "--offline", "--quiet"])
        .current_dir(&repo.root)
        .status()
        .expect("cargo update");
    assert!(locked.success(), "cargo update --workspace failed");
    repo.commit_all("three services, three problems");

    let out = repo.run(["--workspace", "--message-format", "human"]);
    out.code_is(2);
    let stderr = &out.stderr;
    assert!(stderr.contains("imagee"), "orders' unknown key:\n{out}");
    assert!(
        stderr.contains("billing") && stderr.contains("expose"),
        "billing's bad `expose`:\n{out}"
    );
    assert!(
        stderr.contains("gateway") && stderr.contains("fails the lint"),
        "gateway's lint error:\n{out}"
    );
    assert!(
        stderr.contains("problems found before anything was built"),
        "one summary for all:\n{out}"
    );
    assert!(!stderr.contains("Compiling"), "cargo ran:\n{out}");
    assert!(!stderr.contains("Built"), "an image was built:\n{out}");
    let listed = docker_ok([
        "images",
        "--filter",
        &format!("reference={}/*", images.token()),
        "--format",
        "{{.Repository}}",
    ]);
    assert_eq!(listed.trim(), "", "images were built");
}
