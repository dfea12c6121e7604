//! GitHub Actions: the README's workflow command line, run as documented with
//! `GITHUB_ACTIONS=true`, pushes to a real registry and appends the job summary; manifest and
//! Dockerfile errors become `::error file=…,line=…,col=…::` annotations.

use std::path::Path;

use crate::support;

use support::Registry;
use support::service::*;

/// The arguments of the `cargo docker-release` line of the README's workflow.
fn documented_command_line() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    let (_, workflow) = readme
        .split_once("<!-- github-actions-workflow:")
        .expect("README.md has the GitHub Actions workflow");
    let workflow = workflow.split("\n```\n").next().unwrap();
    let line = workflow
        .lines()
        .find_map(|l| l.trim().strip_prefix("- run: cargo docker-release"))
        .expect("the workflow runs `cargo docker-release`");
    line.split_whitespace().map(str::to_owned).collect()
}

/// The environment a GitHub Actions job gives a step.
fn github_env<'a>(fx: &'a Fixture, summary: &'a Path, config: &'a Path) -> Vec<(&'a str, &'a str)> {
    vec![
        ("GITHUB_ACTIONS", "true"),
        ("CI", "true"),
        ("GITHUB_WORKSPACE", fx.path().to_str().unwrap()),
        ("GITHUB_STEP_SUMMARY", summary.to_str().unwrap()),
        ("DOCKER_CONFIG", config.to_str().unwrap()),
    ]
}

#[test]
fn the_readme_workflow_releases_and_pushes_with_a_job_summary() {
    let args = documented_command_line();
    assert_eq!(args, ["--workspace", "--push"], "the README's command line");
    let registry = Registry::start();
    let fx = Fixture::new("gha", Some(&registry.addr), "1.2.3", "");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("docker");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(config.join("config.json"), "{}\n").unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "output of an earlier step\n").unwrap();

    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = fx.run_env(&args, &github_env(&fx, &summary, &config));
    assert_success(&out);

    let repo = fx.image.split_once('/').unwrap().1;
    assert!(registry.release_tags(repo).contains(&"1.2.3".to_owned()));
    let md = std::fs::read_to_string(&summary).unwrap();
    eprintln!("{md}");
    assert!(
        md.starts_with("output of an earlier step\n"),
        "appended:\n{md}"
    );
    assert!(
        md.contains("### cargo docker-release: released 1 image(s)"),
        "{md}"
    );
    let row = md
        .lines()
        .find(|l| l.starts_with(&format!("| {} 1.2.3 |", fx.package)))
        .unwrap_or_else(|| panic!("a row for the service:\n{md}"));
    assert!(row.contains("✅ released"), "{row}");
    assert!(row.contains(&format!("`{}`", fx.image)), "{row}");
    // A host-strategy image is assembled by the tool.
    assert!(row.contains(", assembled)"), "the builder: {row}");
    for tag in ["1.2.3", "1.2", "1", "latest"] {
        assert!(row.contains(&format!("`{tag}` moved")), "{tag}: {row}");
    }
    let digest = registry.manifest_digest(repo, "1.2.3").unwrap();
    assert!(row.contains(&format!("`{digest}`")), "the digest: {row}");
    assert!(row.contains(" passed |"), "the tests: {row}");
}

#[test]
fn manifest_and_dockerfile_errors_are_annotations_at_their_line() {
    let fx = Fixture::new("gha", None, "0.1.0", "imagee = \"typo\"\n");
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    let env = github_env(&fx, &summary, dir.path());
    let manifest = std::fs::read_to_string(fx.path().join("Cargo.toml")).unwrap();
    let line = manifest
        .lines()
        .position(|l| l.starts_with("imagee"))
        .unwrap()
        + 1;
    let out = fx.run_env(&["plan"], &env);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("::error file=Cargo.toml,line={line},col=1::")),
        "an annotation at the key:\n{stderr}"
    );

    // Without GITHUB_ACTIONS, no workflow commands.
    let out = fx.run(&["plan"]);
    assert!(!text(&out.stderr).contains("::error"));

    // A hand-written Dockerfile's findings, at their lines.
    let manifest = manifest.replace("imagee = \"typo\"\n", "dockerfile = \"Dockerfile\"\n");
    fx.write("Cargo.toml", &manifest);
    fx.write(
        "Dockerfile",
        "FROM scratch\nCOPY app /app\nCMD /app serve\n",
    );
    fx.commit("a hand-written Dockerfile");
    let out = fx.run_env(&["lint"], &env);
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("file=Dockerfile,line=3::"),
        "the shell-form CMD is annotated at line 3:\n{stderr}"
    );
}
