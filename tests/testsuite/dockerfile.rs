//! Generated Dockerfiles (both strategies, every optional key), the escaping that cannot be
//! broken, `dockerfile --write/--check` and `lint`, run as a user runs them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use camino::Utf8PathBuf;
use cargo_docker_release::commands::GlobalArgs;
use cargo_docker_release::dockerfile::{self, DockerfileSource, Severity, lint};
use cargo_docker_release::dockerfile_syntax::escape;
use cargo_docker_release::plan::{ImagePlan, PlanOptions};

use crate::support::{Clock, Project, docker_model, fixture_dir, project, require_hadolint};

/// Snapshots a rendered Dockerfile with the host's target triple (`--target …`,
/// `target/<triple>/release`) written `[TRIPLE]`, so that one snapshot holds on every architecture.
macro_rules! assert_dockerfile_snapshot {
    ($($snapshot:tt)*) => {{
        let mut settings = insta::Settings::clone_current();
        settings.add_filter(
            &regex::escape(cargo_docker_release::toolchain::host_triple()),
            "[TRIPLE]",
        );
        let _triple = settings.bind_to_scope();
        insta::assert_snapshot!($($snapshot)*);
    }};
}

/// A fixture of `tests/fixtures/dockerfile/` copied into a fresh git repository with one commit.
struct Fixture {
    project: Project,
}

impl Fixture {
    fn new(name: &str) -> Self {
        let project = project()
            .copy_of(fixture_dir("dockerfile").join(name))
            .file(".gitignore", "target/\n")
            .clock(Clock::Now)
            .build();
        Fixture { project }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.path(rel)
    }

    /// Runs `cargo docker-release ARGS` in the fixture, as cargo runs the subcommand.
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
            .arg("docker-release")
            .args(args)
            .current_dir(self.project.root())
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_RUN_ID")
            .env_remove("CI_JOB_URL")
            .output()
            .unwrap()
    }

    /// The plan of the fixture's (selected) package, through the library.
    fn plan(&self, package: Option<&str>) -> ImagePlan {
        let global = GlobalArgs {
            manifest_path: Some(Utf8PathBuf::from_path_buf(self.path("Cargo.toml")).unwrap()),
            package: package.map(|p| vec![p.to_owned()]).unwrap_or_default(),
            ..GlobalArgs::default()
        };
        let (_, services) = global.load_services(true).unwrap();
        let options = PlanOptions {
            allow_dirty: true,
            ..Default::default()
        };
        let mut plan = cargo_docker_release::pipeline::planning::make_plan(
            &services,
            &Default::default(),
            &options,
        )
        .unwrap();
        plan.images.remove(0)
    }
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Renders the fixture's Dockerfile with the command a user runs.
fn rendered(fixture: &Fixture) -> String {
    let out = fixture.run(&["dockerfile"]);
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

#[test]
fn host_strategy_dockerfile() {
    assert_dockerfile_snapshot!(rendered(&Fixture::new("host")));
}

/// The `docker` fixture with `buildkit = false`: the classic builder's template.
fn classic_docker_fixture() -> Fixture {
    let fixture = Fixture::new("docker");
    let manifest = fixture.path("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, format!("{text}buildkit = false\n")).unwrap();
    fixture
}

#[test]
fn docker_strategy_dockerfile_caches_cargo_in_buildkit_mounts() {
    let text = rendered(&Fixture::new("docker"));
    for target in [
        "target=/usr/local/cargo/registry",
        "target=/usr/local/cargo/git",
        "target=/src/target",
    ] {
        assert!(text.contains(target), "a cache mount at {target}:\n{text}");
    }
    assert!(
        text.contains("Needs BuildKit"),
        "the file says which builder it needs"
    );
    assert_eq!(
        lint::buildkit_syntax(&text)
            .iter()
            .map(|u| u.what.as_str())
            .collect::<Vec<_>>(),
        ["RUN --mount", "RUN --mount", "RUN --mount"]
    );
    assert_dockerfile_snapshot!(text);
}

#[test]
fn docker_strategy_dockerfile_builds_dependencies_in_their_own_layer() {
    let text = rendered(&classic_docker_fixture());
    let deps = text.find("&& cargo build").unwrap();
    let sources = text.find("COPY [\"services/orders\", ").unwrap();
    assert!(
        deps < sources,
        "dependencies are built before the sources are copied"
    );
    assert!(!text.contains("--mount"), "classic builder: no RUN --mount");
    assert_dockerfile_snapshot!(text);
}

#[test]
fn every_optional_key_dockerfile() {
    assert_dockerfile_snapshot!(rendered(&Fixture::new("full")));
}

#[test]
fn generated_dockerignore_keeps_outputs_and_secrets_out() {
    let fixture = Fixture::new("host");
    let ignore = dockerfile::for_image(&fixture.plan(None))
        .unwrap()
        .dockerignore;
    assert!(ignore.starts_with("# Generated by `cargo docker-release dockerfile --write`"));
    for pattern in ["target", ".git", ".env", "**/*.key", "**/*.pem"] {
        assert!(
            ignore.lines().any(|l| l == pattern),
            "{pattern} in\n{ignore}"
        );
    }
}

fn hadolint_findings(text: &str) -> String {
    let mut child = Command::new(require_hadolint())
        .args(["--no-color", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run hadolint");
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    format!("{}{}", stdout(&out), stderr(&out))
}

#[test]
fn every_generated_dockerfile_passes_hadolint_with_zero_findings() {
    for name in ["host", "docker", "full"] {
        let text = rendered(&Fixture::new(name));
        let findings = hadolint_findings(&text);
        assert_eq!(findings, "", "hadolint on the `{name}` Dockerfile:\n{text}");
    }
    let text = rendered(&classic_docker_fixture());
    assert_eq!(hadolint_findings(&text), "", "the classic one:\n{text}");
}

#[test]
fn lint_reports_nothing_on_generated_dockerfiles() {
    for name in ["host", "docker", "full"] {
        let fixture = Fixture::new(name);
        let out = fixture.run(&["lint", "--message-format", "json"]);
        assert!(out.status.success(), "{name}: {}", stderr(&out));
        let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(json["findings"], serde_json::json!([]), "{name}");
    }
}

#[test]
fn lint_reports_every_rule_at_its_line() {
    let text = std::fs::read_to_string(fixture_dir("dockerfile/bad.Dockerfile")).unwrap();
    let found: Vec<(usize, String)> = lint::builtin("bad.Dockerfile", &text)
        .into_iter()
        .map(|f| (f.line, f.rule))
        .collect();
    let expected: Vec<(usize, String)> = [
        (2, "secret-in-arg"),
        (3, "latest-base"),
        (8, "missing-labels"),
        (8, "no-healthcheck"),
        (8, "no-revision"),
        (8, "unpinned-base"),
        (9, "secret-in-env"),
        (11, "add-url"),
        (13, "root-user"),
        (14, "shell-form"),
        (15, "shell-form"),
    ]
    .into_iter()
    .map(|(l, r)| (l, r.to_owned()))
    .collect();
    let mut found_sorted = found.clone();
    found_sorted.sort();
    assert_eq!(found_sorted, expected);
}

#[test]
fn lint_of_a_handwritten_dockerfile_fails_with_located_findings() {
    let fixture = Fixture::new("handwritten");
    let out = fixture.run(&["lint"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        "Dockerfile:3: latest-base: ",
        "Dockerfile:9: secret-in-env: `ENV DB_PASSWORD`",
        "Dockerfile:13: root-user: ",
        "Dockerfile:14: shell-form: ",
        // hadolint's findings are merged with their codes.
        "Dockerfile:14: DL3025: ",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(line)),
            "`{line}` in\n{text}"
        );
    }
    let out = fixture.run(&["lint", "--message-format", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let root = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "root-user")
        .unwrap();
    assert_eq!(root["line"], 13);
    assert_eq!(root["severity"], "error");
}

#[test]
fn a_handwritten_dockerfile_that_fails_lint_blocks_the_release() {
    let fixture = Fixture::new("handwritten");
    let err = dockerfile::for_image(&fixture.plan(None)).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    let message = err.to_string();
    assert!(message.contains(":13: root-user:"), "{message}");
}

#[test]
fn a_clean_handwritten_dockerfile_is_used_as_is() {
    let fixture = Fixture::new("handwritten");
    let generated = dockerfile::for_image(&Fixture::new("host").plan(None))
        .unwrap()
        .dockerfile
        .replace("bin/orders", "bin/legacy")
        .replace("/orders", "/legacy");
    std::fs::write(fixture.path("Dockerfile"), &generated).unwrap();
    let rendered = dockerfile::for_image(&fixture.plan(None)).unwrap();
    assert_eq!(rendered.dockerfile, generated);
    assert!(matches!(rendered.source, DockerfileSource::HandWritten(_)));
    assert_eq!(rendered.build_args["SHA"].len(), 40);
}

#[test]
fn lint_accepts_buildkit_flags_and_heredocs_in_a_handwritten_dockerfile() {
    let fixture = Fixture::new("handwritten");
    let generated = dockerfile::for_image(&Fixture::new("host").plan(None))
        .unwrap()
        .dockerfile
        .replace("bin/orders", "bin/legacy")
        .replace("/orders", "/legacy");
    // BuildKit's syntax before the final `USER`: flags, a cache mount and two heredocs, whose
    // bodies (an instruction-like `USER root` among them) are not instructions.
    let user = generated.rfind("\nUSER ").expect("a USER line") + 1;
    let buildkit = "COPY --chmod=755 --link [\"bin/legacy\", \"/usr/local/bin/legacy2\"]\n\
                    RUN --mount=type=cache,target=/cache [\"/usr/local/bin/legacy\", \"--version\"]\n\
                    RUN <<EOF\nUSER root\nEOF\n\
                    COPY <<-EOT /etc/motd\n\thello\n\tEOT\n";
    let text = format!("{}{buildkit}{}", &generated[..user], &generated[user..]);
    std::fs::write(fixture.path("Dockerfile"), &text).unwrap();
    let out = fixture.run(&["lint", "--message-format", "json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{json:#}\n{text}",
        stderr(&out)
    );
    let findings = json["findings"].as_array().unwrap();
    assert!(
        findings
            .iter()
            .all(|f| f["severity"] != "error" && f["severity"] != "warning"),
        "{json:#}"
    );
    // What the engine's built-in frontend may lack is a note, at its line.
    let base = text
        .lines()
        .position(|l| l.starts_with("COPY --chmod"))
        .unwrap()
        + 1;
    let notes: Vec<u64> = findings
        .iter()
        .filter(|f| f["rule"] == "buildkit-frontend")
        .map(|f| f["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        notes,
        [base, base + 2, base + 5].map(|l| l as u64),
        "{json:#}"
    );
    let used: Vec<String> = lint::buildkit_syntax(&text)
        .into_iter()
        .map(|u| u.what)
        .collect();
    assert_eq!(
        used,
        [
            "COPY --chmod",
            "COPY --link",
            "RUN --mount",
            "RUN heredoc",
            "COPY heredoc"
        ]
    );
}

#[test]
fn check_passes_after_write_and_a_new_commit_and_fails_after_a_manifest_change() {
    let fixture = Fixture::new("host");
    let out = fixture.run(&["dockerfile", "--check"]);
    assert_eq!(out.status.code(), Some(1), "nothing written yet");

    let out = fixture.run(&["dockerfile", "--write"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let written = std::fs::read_to_string(fixture.path("Dockerfile")).unwrap();
    assert!(written.starts_with("# Generated by `cargo docker-release dockerfile --write`"));
    assert!(fixture.path(".dockerignore").exists());
    let out = fixture.run(&["dockerfile", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));

    // A new commit and a version bump change the revision, not the Dockerfile.
    let manifest = fixture.path("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, text.replace("1.4.2", "1.4.3")).unwrap();
    fixture.project.commit_all("bump");
    let out = fixture.run(&["dockerfile", "--check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // And `for_image` builds exactly the committed file.
    let plan = fixture.plan(None);
    let rendered = dockerfile::for_image(&plan).unwrap();
    assert_eq!(rendered.dockerfile, written);
    assert_eq!(rendered.build_args["SHA"], plan.revision);
    assert_eq!(rendered.build_args["VERSION"], "1.4.3");

    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace("expose = [8080]", "expose = [9090]"),
    )
    .unwrap();
    let out = fixture.run(&["dockerfile", "--check"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let diff = stdout(&out);
    assert!(diff.contains("-EXPOSE 8080\n+EXPOSE 9090"), "{diff}");
    assert!(
        stderr(&out).contains("dockerfile --write"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn user_template_gets_the_same_variables_and_is_strict() {
    let fixture = Fixture::new("host");
    std::fs::write(
        fixture.path("Dockerfile.j2"),
        "{{ header }}\nFROM {{ base }}\nCOPY {{ copy_binary }}\n{% include \"runtime.dockerfile\" %}",
    )
    .unwrap();
    let manifest = fixture.path("Cargo.toml");
    let text = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(
        &manifest,
        text.replace(
            "[package.metadata.docker]\n",
            "[package.metadata.docker]\ntemplate = \"Dockerfile.j2\"\n",
        ),
    )
    .unwrap();
    let out = fixture.run(&["dockerfile"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ENV SHA=${SHA}"));

    std::fs::write(
        fixture.path("Dockerfile.j2"),
        "FROM {{ no_such_variable }}\n",
    )
    .unwrap();
    let out = fixture.run(&["dockerfile"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("no_such_variable") || stderr(&out).contains("undefined"));
}

/// The labels and environment a Dockerfile gives an image, read with Docker's rules (see
/// `docker_model`), build arguments substituted.
fn image_config(text: &str, build_args: &BTreeMap<String, String>) -> docker_model::ImageConfig {
    docker_model::evaluate(text, build_args).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

/// Strings made to hurt: Dockerfile syntax, line breaks, white space, any Unicode.
fn hostile_strings() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let special = prop::sample::select(vec![
        '"', '\'', '\\', '$', '{', '}', '\n', '\r', '\t', ' ', '#', '=', '`', '\0', '\u{feff}',
        '\u{85}', '\u{2028}', '\u{a0}', 'é', '🦀', '[', ']', '-',
    ]);
    let ch = prop_oneof![3 => special, 2 => any::<char>(), 2 => prop::char::range('a', 'z')];
    prop::collection::vec(ch, 0..24).prop_map(|v| v.into_iter().collect())
}

mod properties {
    use super::*;
    use proptest::prelude::*;

    fn words() -> impl Strategy<Value = Vec<String>> {
        prop::collection::vec(hostile_strings(), 1..4)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

        #[test]
        fn a_word_reads_back_exactly_and_starts_no_instruction(values in words()) {
            let mut text = String::from("FROM scratch\nLABEL ");
            let mut expected = BTreeMap::new();
            for (i, value) in values.iter().enumerate() {
                match escape::word(value) {
                    Some(word) => {
                        if i > 0 {
                            text.push_str(" \\\n      ");
                        }
                        text.push_str(&format!("k{i}={word}"));
                        expected.insert(format!("k{i}"), value.clone());
                    }
                    None => prop_assert!(value.contains('\n')),
                }
            }
            if expected.is_empty() {
                text.push_str("k=v");
                expected.insert("k".into(), "v".into());
            }
            text.push_str("\nUSER 1000\n");
            let config = image_config(&text, &BTreeMap::new());
            prop_assert_eq!(&config.labels, &expected);
            prop_assert_eq!(config.instructions, vec!["FROM", "LABEL", "USER"]);
        }

        #[test]
        fn exec_form_reads_back_exactly(args in words()) {
            let text = format!("FROM scratch\nCMD {}\nUSER 1000\n", escape::exec_form(&args));
            let config = image_config(&text, &BTreeMap::new());
            prop_assert_eq!(config.cmd, Some(args));
            prop_assert_eq!(config.instructions, vec!["FROM", "CMD", "USER"]);
        }

        #[test]
        fn rendered_labels_and_env_round_trip(
            labels in prop::collection::btree_map("[a-z][a-z.]{0,8}", hostile_strings(), 0..4),
            env in prop::collection::btree_map("[A-Z][A-Z_]{0,6}", hostile_strings(), 0..4),
            description in hostile_strings(),
        ) {
            let mut plan = base_plan().clone();
            let env: BTreeMap<String, String> =
                env.into_iter().filter(|(k, _)| k != "SHA").collect();
            plan.labels.extend(labels.into_iter().map(|(k, v)| (format!("com.example.{k}"), v)));
            plan.labels.insert("org.opencontainers.image.description".into(), description);
            plan.config.env = env.clone();
            let rendered = dockerfile::rendered_with(&plan, None).unwrap();
            let config = image_config(&rendered.dockerfile, &rendered.build_args);
            for (k, v) in &plan.labels {
                // Per-build labels go through the engine API, not the Dockerfile.
                if dockerfile::BUILD_ONLY_LABELS.contains(&k.as_str()) {
                    continue;
                }
                prop_assert_eq!(config.labels.get(k), Some(v), "label {}", k);
            }
            for (k, v) in &env {
                prop_assert_eq!(config.env.get(k), Some(v), "env {}", k);
            }
            prop_assert_eq!(config.env.get("SHA"), Some(&plan.revision));
            let instructions: Vec<&str> = config.instructions.iter().map(String::as_str).collect();
            let expected = ["FROM", "COPY", "USER", "EXPOSE", "HEALTHCHECK"];
            prop_assert_eq!(&instructions[..5], &expected[..]);
            prop_assert!(instructions[5..].iter().all(|i| ["ARG", "LABEL", "ENV", "ENTRYPOINT"].contains(i)));
        }
    }

    fn base_plan() -> &'static ImagePlan {
        static PLAN: std::sync::OnceLock<(Fixture, ImagePlan)> = std::sync::OnceLock::new();
        &PLAN
            .get_or_init(|| {
                let fixture = Fixture::new("host");
                let plan = fixture.plan(None);
                (fixture, plan)
            })
            .1
    }
}

/// Builds an image on the real engine from a rendered Dockerfile whose labels and environment
/// are hostile, and compares what `docker inspect` reads back byte for byte.
#[test]
fn hostile_labels_round_trip_through_the_real_engine() {
    let fixture = Fixture::new("host");
    let mut plan = fixture.plan(None);
    let hostile = [
        "quote \" single ' back \\ end \\",
        "dollar $HOME ${HOME} $$ ${X:-y} `id`",
        "two\nlines\r\nand a CR\r",
        "\nUSER root\nLABEL injected=1",
        "tab\t nbsp\u{a0} nel\u{85} ls\u{2028} bom\u{feff} nul\0 é 🦀",
        "",
        "  # not a comment  ",
        "ends with backslash \\",
    ];
    for (i, v) in hostile.iter().enumerate() {
        plan.labels
            .insert(format!("com.example.hostile{i}"), (*v).to_owned());
        plan.config
            .env
            .insert(format!("HOSTILE{i}"), (*v).to_owned());
    }
    // And random ones, the same the property tests use, so that the engine checks the model too.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let random: Vec<String> = (0..40)
        .map(|_| {
            use proptest::strategy::{Strategy, ValueTree};
            let value = hostile_strings().new_tree(&mut runner).unwrap().current();
            // Values with a line feed travel as build arguments, and the docker CLI's argv
            // cannot hold NUL (the engine API can).
            if value.contains('\n') {
                value.replace('\0', "")
            } else {
                value
            }
        })
        .collect();
    for (i, v) in random.iter().enumerate() {
        plan.labels
            .insert(format!("com.example.random{i}"), v.clone());
        plan.config.env.insert(format!("RANDOM{i}"), v.clone());
    }
    // Passed as a build argument (it has line feeds); argv cannot hold NUL, so not this one.
    plan.labels.insert(
        "org.opencontainers.image.description".into(),
        hostile[..4].join("|"),
    );
    let rendered = dockerfile::rendered_with(&plan, None).unwrap();

    let built = build_host_image(&rendered, "orders", b"not run");
    let out = &built.output;
    assert!(out.status.success(), "docker build failed: {}", stderr(out));
    let tag = &built.tag;

    let out = Command::new("docker")
        .args(["image", "inspect", "--format", "{{json .Config}}", tag])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let labels: BTreeMap<String, String> =
        serde_json::from_value(config["Labels"].clone()).unwrap();
    let mut expected = plan.labels.clone();
    expected.insert("cargo-docker-release.test".into(), "1".into());
    // Per-build labels go through the engine API, not the Dockerfile (see the module docs).
    for label in dockerfile::BUILD_ONLY_LABELS {
        expected.remove(label);
    }
    assert_eq!(labels, expected);
    // The model the property tests use reads the same as the engine.
    let model = image_config(&rendered.dockerfile, &rendered.build_args);
    let mut from_engine = labels.clone();
    from_engine.remove("cargo-docker-release.test");
    assert_eq!(model.labels, from_engine);
    let env: Vec<String> = serde_json::from_value(config["Env"].clone()).unwrap();
    for (k, v) in &model.env {
        assert!(env.contains(&format!("{k}={v}")), "{k}={v:?} in {env:?}");
    }
    for (i, v) in hostile.iter().enumerate() {
        let want = format!("HOSTILE{i}={v}");
        assert!(env.contains(&want), "{want:?} in {env:?}");
    }
    assert!(env.contains(&format!("SHA={}", plan.revision)));
    assert_eq!(config["User"], "65532:65532", "no injected USER");
}

/// An image built by the test; removed when dropped.
struct BuiltImage {
    tag: String,
    output: Output,
}

impl Drop for BuiltImage {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["rmi", "-f", &self.tag])
            .output();
    }
}

/// Builds a `host` strategy Dockerfile with the classic builder, the binary `bin` in the context.
fn build_host_image(rendered: &dockerfile::Rendered, bin: &str, binary: &[u8]) -> BuiltImage {
    use std::os::unix::fs::PermissionsExt;
    let context = tempfile::tempdir().unwrap();
    std::fs::create_dir(context.path().join("bin")).unwrap();
    let path = context.path().join("bin").join(bin);
    std::fs::write(&path, binary).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(context.path().join("Dockerfile"), &rendered.dockerfile).unwrap();
    static BUILDS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let tag = format!(
        "cargo-docker-release-test/dockerfile:{}-{}-{}",
        std::process::id(),
        BUILDS.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut build = Command::new("docker");
    build.env("DOCKER_BUILDKIT", "0").args([
        "build",
        "-q",
        "--force-rm",
        "--label",
        "cargo-docker-release.test=1",
        "-t",
        &tag,
    ]);
    for (k, v) in &rendered.build_args {
        build.arg("--build-arg").arg(format!("{k}={v}"));
    }
    let output = build.arg(context.path()).output().unwrap_or_else(|e| {
        panic!("the docker CLI and a running engine are required ({e}): install Docker")
    });
    BuiltImage { tag, output }
}

#[test]
fn the_smoke_test_runs_the_binary_during_the_build_even_on_scratch() {
    let busybox = std::fs::read("/usr/bin/busybox")
        .expect("a static busybox is required: `apt-get install busybox-static`");
    let mut plan = Fixture::new("host").plan(None);
    plan.config.bin = "busybox".into();
    plan.config.entrypoint = vec!["/usr/local/bin/busybox".into()];
    plan.config.smoke_test = Some(vec!["/usr/local/bin/busybox".into(), "true".into()]);
    let passing = dockerfile::rendered_with(&plan, None).unwrap();
    plan.config.smoke_test = Some(vec!["/usr/local/bin/busybox".into(), "false".into()]);
    let failing = dockerfile::rendered_with(&plan, None).unwrap();
    assert!(
        passing
            .dockerfile
            .contains("RUN [\"/usr/local/bin/busybox\", \"true\"]")
    );
    let (ok, broken) = std::thread::scope(|s| {
        let ok = s.spawn(|| build_host_image(&passing, "busybox", &busybox));
        let broken = s.spawn(|| build_host_image(&failing, "busybox", &busybox));
        (ok.join().unwrap(), broken.join().unwrap())
    });
    assert!(ok.output.status.success(), "{}", stderr(&ok.output));
    assert!(
        !broken.output.status.success(),
        "a failing smoke test fails the build"
    );
}

#[test]
fn lint_severity_threshold_orders() {
    assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
}

#[test]
fn rules_about_what_the_image_runs_look_at_the_final_stage_only() {
    let text = "FROM rust:1.83-bookworm AS build\nUSER root\nCMD cargo build\n\n\
                FROM scratch\nCOPY --from=build [\"/x\", \"/x\"]\nUSER 65532:65532\n\
                HEALTHCHECK CMD [\"/x\", \"health\"]\nARG SHA\n\
                LABEL org.opencontainers.image.title=x org.opencontainers.image.version=1 \\\n\
                \x20     org.opencontainers.image.revision=\"${SHA}\" org.opencontainers.image.created=now \\\n\
                \x20     org.opencontainers.image.source=https://example.com\n\
                ENV SHA=${SHA}\nENTRYPOINT [\"/x\"]\n";
    let findings = lint::lint("Dockerfile", text, true);
    assert_eq!(findings, vec![], "{findings:#?}");
}

#[test]
fn vendored_sources_and_cargo_config_reach_the_dependency_layer() {
    let fixture = classic_docker_fixture();
    std::fs::create_dir_all(fixture.path(".cargo")).unwrap();
    std::fs::write(fixture.path(".cargo/config.toml"), "[net]\nretry = 3\n").unwrap();
    let text = rendered(&fixture);
    let config = text.find("COPY [\".cargo\", \".cargo/\"]").expect(&text);
    assert!(config < text.find("RUN mkdir").unwrap(), "{text}");
}

#[test]
fn dockerfile_json_has_the_text_and_the_build_args_to_pass() {
    let fixture = Fixture::new("full");
    let out = fixture.run(&["dockerfile", "--message-format", "json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    let image = &json[0];
    assert_eq!(image["package"], "billing");
    assert_eq!(image["generated"], true);
    assert_eq!(image["build_args"]["SHA"].as_str().unwrap().len(), 40);
    assert_eq!(image["build_args"]["VERSION"], "2.0.0-rc.1");
    // The two-line description cannot be on a Dockerfile line: it travels as a build argument.
    assert_eq!(
        image["build_args"]["LABEL_1"],
        "Bills \"customers\" for $PRICE \\ per month,\non two lines; it's not a # comment"
    );
    assert!(
        image["dockerfile"]
            .as_str()
            .unwrap()
            .contains("org.opencontainers.image.description=\"${LABEL_1}\"")
    );
}

/// The bundled examples' Dockerfiles, as `cargo docker-release dockerfile` prints them.
fn example_dockerfiles() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut out = Vec::new();
    for (example, packages) in [
        ("hello", &["hello"][..]),
        ("workspace", &["orders", "billing"][..]),
    ] {
        for package in packages {
            let run = Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
                .args([
                    "docker-release",
                    "dockerfile",
                    "-p",
                    package,
                    "--manifest-path",
                ])
                .arg(root.join("examples").join(example).join("Cargo.toml"))
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            assert!(
                run.status.success(),
                "{example}/{package}: {}",
                stderr(&run)
            );
            out.push((format!("{example}_{package}"), stdout(&run)));
        }
    }
    out
}

#[test]
fn bundled_examples_dockerfiles() {
    for (name, text) in example_dockerfiles() {
        assert_dockerfile_snapshot!(format!("example_{name}"), text);
        assert_eq!(
            hadolint_findings(&text),
            "",
            "hadolint on the {name} example:\n{text}"
        );
    }
}
