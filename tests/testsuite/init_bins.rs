//! `cargo docker-release init` on a package with several bins writes the one a user ships: with
//! `x-cli` and `x-server` (the client first in name order, as in mini-redis), `x-server`, and
//! every candidate in a comment beside `bin`; the tool then builds that bin.

use std::path::Path;
use std::process::Command;

use crate::support::{Clock, project};

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

#[test]
fn init_picks_the_server_over_the_cli_and_lists_both() {
    let dir = project().clock(Clock::Now).build_uncommitted();
    let manifest =
        "[package]\nname = \"x\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\n[workspace]\n";
    std::fs::write(dir.root().join("Cargo.toml"), manifest).unwrap();
    std::fs::create_dir_all(dir.root().join("src/bin")).unwrap();
    for bin in ["x-cli", "x-server"] {
        std::fs::write(
            dir.root().join(format!("src/bin/{bin}.rs")),
            "fn main() {}\n",
        )
        .unwrap();
    }

    let out = run(dir.root(), &["init"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = std::fs::read_to_string(dir.root().join("Cargo.toml")).unwrap();
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
    dir.commit_all("init");
    let out = run(dir.root(), &["dockerfile"]);
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
