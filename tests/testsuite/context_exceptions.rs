//! The user's `.dockerignore` exceptions against the built-in secret patterns, and `COPY`/`ADD`
//! sources the build context leaves out, against the real engine (issue 17): a `!a/keep.pem`
//! after `**/*.pem` sends the file into the image with both builders, and a Dockerfile that
//! copies a left-out file is refused before anything is built, naming the file and the pattern.

use std::collections::BTreeMap;
use std::process::Command;

use crate::support;

use cargo_docker_release::build_context as context;
use cargo_docker_release::engine::build::{BuildJob, Builder};
use cargo_docker_release::engine::images::ImageStore;
use support::service::{Fixture, block_on, engine, text};
use support::{TEST_LABEL, TOKEN_LABEL, TestImages};

/// The files of `image` under `/ctx/`, read from an exported (never started) container.
fn files_in(images: &TestImages, image: &str) -> Vec<String> {
    let container = images.container("fs");
    support::docker_ok(["create", "--name", &container, image, "/none"]);
    let export = Command::new("docker")
        .args(["export", &container])
        .output()
        .unwrap();
    support::docker(["rm", "-f", &container]);
    assert!(export.status.success(), "docker export {container}");
    let mut archive = tar::Archive::new(export.stdout.as_slice());
    let mut files: Vec<String> = archive
        .entries()
        .unwrap()
        .filter_map(|e| {
            let e = e.unwrap();
            let path = e.path().unwrap().display().to_string();
            (e.header().entry_type().is_file() && path.starts_with("ctx/")).then_some(path)
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_users_exception_sends_a_file_that_a_built_in_secret_pattern_leaves_out() {
    let images = TestImages::new("ctx-exception");
    let dir = tempfile::tempdir().unwrap();
    let root = camino::Utf8Path::from_path(dir.path()).unwrap();
    for path in [
        "Cargo.toml",
        "a/keep.pem",
        "a/drop.pem",
        "a/b/y.txt",
        "top.pem",
        "server.key",
    ] {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, path).unwrap();
    }
    std::fs::write(root.join(".dockerignore"), "**/*.pem\n!a/keep.pem\n").unwrap();
    let dockerfile = format!(
        "FROM scratch\nLABEL {TEST_LABEL} {TOKEN_LABEL}={}\nCOPY . /ctx/\n",
        images.token()
    );
    let builtin = cargo_docker_release::dockerfile::render::dockerignore("app");

    // Nothing the Dockerfile copies is left out, and the summary names the exception.
    context::check_copy_sources(
        root,
        None,
        "Dockerfile",
        &dockerfile,
        &builtin,
        &BTreeMap::new(),
    )
    .unwrap();
    let summary = context::context_summary(root, &builtin, None).unwrap();
    let noted: Vec<String> = summary
        .sent_by_exception
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        noted,
        [
            "`a/keep.pem` is sent: `!a/keep.pem` (.dockerignore:2) overrides the built-in pattern `**/*.pem`"
        ]
    );

    let ctx = context::service_context(root, &builtin, None, &dockerfile, 0).unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for builder in [Builder::BuildKit, Builder::Classic] {
        let tag = format!("{}:{builder:?}", images.repo("app")).to_ascii_lowercase();
        runtime
            .block_on(async {
                let engine = support::engine().await;
                let options = bollard::query_parameters::BuildImageOptions {
                    dockerfile: ctx.dockerfile.clone(),
                    t: Some(tag.clone()),
                    rm: true,
                    forcerm: true,
                    ..Default::default()
                };
                let job = BuildJob {
                    options,
                    builder,
                    context: &ctx,
                    dockerfile: &dockerfile,
                    dockerfile_name: "Dockerfile",
                    credentials: Default::default(),
                    name: "ctx-exception",
                };
                engine.build_image(job, &mut |_| {}).await
            })
            .unwrap_or_else(|e| panic!("{builder:?}: {e}"));
        assert_eq!(
            files_in(&images, &tag),
            [
                "ctx/.dockerignore",
                "ctx/Cargo.toml",
                "ctx/Dockerfile",
                "ctx/a/b/y.txt",
                "ctx/a/keep.pem",
            ],
            "{builder:?}: the exception sends a/keep.pem; the other keys stay out"
        );
    }
}

#[test]
fn a_copy_of_a_left_out_file_is_refused_before_anything_is_built_naming_file_and_pattern() {
    let fx = Fixture::new("ctxsrc", None, "0.1.0", "");
    fx.write(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\n\
             description = \"context test fixture\"\nlicense = \"MIT\"\n\n[workspace]\n\n\
             [package.metadata.docker]\nimage = \"{image}\"\nstrategy = \"docker\"\n\
             dockerfile = \"Dockerfile\"\nlabels = {{ \"cargo-docker-release.test\" = \"1\" }}\n",
            name = fx.package,
            image = fx.image,
        ),
    );
    fx.write(".dockerignore", "**/*.pem\n!a/keep.pem\n");
    fx.write("a/keep.pem", "sent by the exception\n");
    fx.write("secrets/server.pem", "left out by the user's pattern\n");
    fx.write(".env", "LEFT=out by the built-in pattern\n");
    fx.write(
        "Dockerfile",
        "FROM scratch\nARG SHA\nENV SHA=${SHA}\nCOPY a/keep.pem /etc/keep.pem\n\
         COPY [\"secrets/server.pem\", \"/etc/server.pem\"]\nCOPY --chown=1:1 .env /app/.env\n\
         USER 65532:65532\nHEALTHCHECK CMD [\"/none\"]\n",
    );
    fx.commit("a Dockerfile that copies left-out files");

    let started = std::time::Instant::now();
    let out = fx.run_env(&[], &[("NO_COLOR", "1"), ("CI", "1")]);
    let elapsed = started.elapsed();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // miette wraps long lines: compare with white space collapsed.
    let flat = stderr
        .split_whitespace()
        .filter(|w| *w != "│")
        .collect::<Vec<_>>()
        .join(" ");
    for part in [
        "2 COPY/ADD sources are left out of the build context",
        "Dockerfile:5: `COPY secrets/server.pem` is left out of the build context by `**/*.pem` (.dockerignore:1)",
        "Dockerfile:6: `COPY .env` is left out of the build context by the built-in pattern `.env`",
        "left out by `**/*.pem`",
        "add the exception `!secrets/server.pem` after it",
        "add the exception `!.env` to .dockerignore",
    ] {
        assert!(flat.contains(part), "{part:?} in:\n{stderr}");
    }
    assert!(
        !flat.contains("`COPY a/keep.pem` is left out"),
        "the exception's file is sent:\n{stderr}"
    );
    assert!(!stderr.contains("Built"), "{stderr}");

    // Nothing built: no image of the package, tagged or not.
    let labelled = block_on(async {
        engine()
            .await
            .images_labelled(&[("io.cargo-docker-release.package", fx.package.as_str())])
            .await
            .unwrap()
    });
    assert!(labelled.is_empty(), "{labelled:?}");
    assert!(fx.tags().is_empty());
    eprintln!("refused in {elapsed:?}");
}
