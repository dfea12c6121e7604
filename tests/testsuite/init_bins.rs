//! `cargo docker-release init` on a package with several bins writes the one a user ships: with
//! `x-cli` and `x-server` (the client first in name order, as in mini-redis), `x-server`, and
//! every candidate in a comment beside `bin`; the tool then builds that bin.

use std::path::Path;
use std::process::Command;

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn commit_all(dir: &Path) {
    let repo = git2::Repository::init(dir).unwrap();
    let mut index = repo.index().unwrap();
    index
        .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
        .unwrap();
    index.write().unwrap();
    let tree = repo.find_tree(index.write_tree().unwrap()).unwrap();
    let sig = git2::Signature::now("Test", "test@example.com").unwrap();
    repo.commit(Some("HEAD"), &sig, &sig, "init", &tree, &[])
        .unwrap();
}

#[test]
fn init_picks_the_server_over_the_cli_and_lists_both() {
    let dir = tempfile::tempdir().unwrap();
    let manifest =
        "[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";
    std::fs::write(dir.path().join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.path().join("src/bin")).unwrap();
    for bin in ["x-cli", "x-server"] {
        std::fs::write(
            dir.path().join(format!("src/bin/{bin}.rs")),
            "fn main() {}\n",
        )
        .unwrap();
    }

    let out = run(dir.path(), &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(dir.path().join("Cargo.toml")).unwrap();
    assert!(after.starts_with(manifest), "{after}");
    let line = after
        .lines()
        .find(|l| l.starts_with("bin = "))
        .unwrap_or_else(|| panic!("no bin line:\n{after}"));
    assert_eq!(
        line,
        "bin = \"x-server\"  # candidates: \"x-cli\", \"x-server\" (chosen: its name says \"server\")"
    );
    let doc: toml_edit::DocumentMut = after.parse().unwrap();
    assert_eq!(
        doc["package"]["metadata"]["docker"]["bin"].as_str(),
        Some("x-server")
    );

    // The tool takes the written section as it is: its Dockerfile ships x-server.
    commit_all(dir.path());
    let out = run(dir.path(), &["dockerfile"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dockerfile = String::from_utf8_lossy(&out.stdout);
    assert!(
        dockerfile.contains("ENTRYPOINT [\"/usr/local/bin/x-server\"]"),
        "{dockerfile}"
    );
    assert!(!dockerfile.contains("x-cli"), "{dockerfile}");
}
