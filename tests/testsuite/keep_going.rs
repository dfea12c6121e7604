//! A workspace release where one service fails its tests: all or none by default, and with
//! `--keep-going` the service that passed is tagged. Real engine, real images.

use crate::support;

use support::{TestImages, image_exists, require_docker};

/// A two-service workspace (`good` and `bad`, both the hello example's server); `bad` has an
/// exec check that cannot pass.
fn two_services(images: &TestImages) -> support::Project {
    let members: Vec<(&str, String)> = [("good", "{version}"), ("bad", "not what it prints")]
        .into_iter()
        .map(|(name, exec_stdout)| {
            let manifest = format!(
                r#"[package]
name = "{name}"
version = "0.3.1"
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

[[package.metadata.docker.test.exec]]
cmd = ["/usr/local/bin/{name}", "--version"]
stdout = ["{exec_stdout}"]
"#,
                image = images.repo(name)
            );
            (name, manifest)
        })
        .collect();
    support::hello_workspace(
        "[workspace]\nmembers = [\"good\", \"bad\"]\nresolver = \"3\"\n",
        &members,
    )
}

#[test]
fn one_failing_service_holds_back_the_other_unless_keep_going() {
    require_docker();
    let images = TestImages::new("keep-going");
    let repo = two_services(&images);
    repo.commit_all("two services, one failing");
    let good = format!("{}:0.3.1", images.repo("good"));
    let bad = format!("{}:0.3.1", images.repo("bad"));

    let out = repo.run(["--workspace", "--message-format", "json"]);
    out.code_is(1);
    // One cargo for both services (their dependencies are built once, no lock wait).
    assert_eq!(
        out.stderr
            .matches("Compiling good 0.3.1, bad 0.3.1")
            .count(),
        1,
        "one cargo invocation for the workspace's services:\n{out}"
    );
    assert!(!image_exists(&good), "all or none by default:\n{out}");
    assert!(!image_exists(&bad));
    let report = out.json();
    let service = |name: &str| {
        report["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["package"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("{name} in the report:\n{report:#}"))
    };
    assert_eq!(service("good")["state"], "not-tagged", "{report:#}");
    let reason = service("good")["tags"][0]["reason"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        reason.contains("held back: bad failed") && reason.contains("--keep-going"),
        "{reason}"
    );
    assert_eq!(service("bad")["state"], "failed");

    let out = repo.run(["--workspace", "--keep-going", "--message-format", "json"]);
    out.code_is(1);
    assert!(image_exists(&good), "--keep-going tags what passed:\n{out}");
    assert!(image_exists(&format!("{}:latest", images.repo("good"))));
    assert!(!image_exists(&bad), "the failing service is never tagged");
    let report = out.json();
    let good_state = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["package"] == "good")
        .map(|s| s["state"].clone());
    assert_eq!(good_state, Some("released".into()), "{report:#}");
}
