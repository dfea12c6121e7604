//! Cargo's feature selection: a binary behind `required-features` is released with `--features`
//! (the flag reaches cargo, the binary has the feature, the report records it, a re-run with the
//! same flags reuses the image), and without it the release is a configuration error naming the
//! feature and the flag.

use crate::support;

use support::docker_ok;
use support::service::*;

#[test]
fn a_binary_behind_required_features_is_released_with_features_and_refused_without() {
    let fx = Fixture::new("features", None, "0.1.0", "");
    let manifest = std::fs::read_to_string(fx.path().join("Cargo.toml")).unwrap();
    fx.write(
        "Cargo.toml",
        &format!(
            "{manifest}\n[features]\nmetrics = []\n\n[[bin]]\nname = \"{name}\"\npath = \"src/main.rs\"\nrequired-features = [\"metrics\"]\n",
            name = fx.package
        ),
    );
    fx.write(
        "src/main.rs",
        &MAIN_RS.replace(
            "Some(\"--version\") => println!(\"{} {}\", env!(\"CARGO_PKG_NAME\"), env!(\"CARGO_PKG_VERSION\")),",
            "Some(\"--version\") => println!(\"{} {} metrics={}\", env!(\"CARGO_PKG_NAME\"), env!(\"CARGO_PKG_VERSION\"), cfg!(feature = \"metrics\")),",
        ),
    );
    fx.commit("a binary behind a feature");

    let out = fx.run(&[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("feature `metrics`, which is not enabled")
            && stderr.contains("--features metrics"),
        "names the feature and the flag:\n{stderr}"
    );
    assert!(fx.tags().is_empty());

    let out = fx.run(&["--features", "metrics"]);
    assert_success(&out);
    let report: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(fx.path().join("target/docker-release/report.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        report["services"][0]["features"],
        serde_json::json!(["--features", "metrics"])
    );
    let version = docker_ok([
        "run",
        "--rm",
        "--label",
        "cargo-docker-release.test=1",
        &format!("{}:0.1.0", fx.image),
        "--version",
    ]);
    assert!(version.ends_with("metrics=true"), "{version}");

    // The same flags: the same build inputs, so the released image is reused.
    let out = fx.run(&["-F", "metrics"]);
    assert_success(&out);
    assert!(
        text(&out.stderr).contains("Reusing"),
        "{}",
        text(&out.stderr)
    );
}
