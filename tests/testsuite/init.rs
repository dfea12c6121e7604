//! `cargo docker-release init` adds a section and leaves every other byte alone.

use std::process::Command;

const ODD_MANIFEST: &str = "# A manifest full of comments and odd formatting.\n\
[package]   # trailing comment\n\
name    =   \"orders\"\n\
version = \"1.2.3\"   \n\
edition='2021'\n\
\n\
# keep me\n\
[dependencies]\n\
\n\
[package.metadata.release]\n\
tag-prefix = \"\"  # another\n\
\t\n\
[profile.release]\n\
lto = true # no trailing newline";

fn run(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn init_appends_a_commented_section_and_keeps_every_other_byte() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("Cargo.toml"), ODD_MANIFEST).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();

    let out = run(dir.path(), &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert!(
        after.starts_with(ODD_MANIFEST),
        "existing bytes changed:\n{after}"
    );
    let added = &after[ODD_MANIFEST.len()..];
    assert!(
        added.starts_with("\n\n[package.metadata.docker]\n"),
        "{added}"
    );
    assert!(added.contains("image = \"orders\""));
    assert!(
        added.lines().filter(|l| l.starts_with('#')).count() >= 8,
        "commented: {added}"
    );

    // The result is a valid manifest whose section the tool accepts.
    let doc: toml_edit::DocumentMut = after.parse().unwrap();
    assert_eq!(
        doc["package"]["metadata"]["docker"]["strategy"].as_str(),
        Some("host")
    );
    assert_eq!(
        doc["package"]["metadata"]["release"]["tag-prefix"].as_str(),
        Some("")
    );

    // A second run refuses and changes nothing.
    let again = run(dir.path(), &["init"]);
    assert_eq!(again.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has a [package.metadata.docker]")
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap(),
        after
    );
}

#[test]
fn init_refuses_an_inline_metadata_table() {
    let dir = tempfile::tempdir().unwrap();
    let text =
        "[package]\nname = \"a\"\nversion = \"0.1.0\"\nedition = \"2021\"\nmetadata = { x = 1 }\n";
    std::fs::write(dir.path().join("Cargo.toml"), text).unwrap();
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/main.rs"), "fn main() {}\n").unwrap();
    let out = run(dir.path(), &["init"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("written inline"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap(),
        text
    );
}
