//! Hostile manifests (issue 12): a generated corpus of several hundred manifests, run through the
//! library in-process (manifest -> config -> plan -> Dockerfile -> lint, as `plan`, `dockerfile`
//! and `lint` do), each on its own thread under a deadline. For every manifest:
//!
//! - no panic, no hang;
//! - refused: exit code 2, and when a key is at fault a located error (`Cargo.toml:line:col`, a
//!   specific help line), printable (no control character reaches the terminal) and short;
//! - accepted: a Dockerfile that Docker's parser (the independent model in
//!   `tests/testsuite/support/docker_model.rs`) reads into the same instruction sequence as a benign
//!   render of the same keys: every instruction came from the template.
//!
//! A few end-to-end runs of the binary at the end cover what only the command line shows.

use std::collections::BTreeMap;
use std::sync::OnceLock;
use std::time::Duration;

use camino::{Utf8Path, Utf8PathBuf};
use cargo_docker_release::config::{self, ManifestSource, PackageFacts};
use cargo_docker_release::dockerfile::{self, Severity, WorkspaceLayout, lint, render};
use cargo_docker_release::error::{self, Error};
use cargo_docker_release::git::Revision;
use cargo_docker_release::plan::{self, PackageInput, PlanOptions, TagKind};

use crate::support::{Project, docker_model, project};

const HEX: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const SHA: &str = "0123456789abcdef0123456789abcdef01234567";
/// A manifest that takes longer than this hangs.
const DEADLINE: Duration = Duration::from_secs(20);

/// What the corpus expects of a manifest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Refused with a located error at a key.
    Reject,
    /// Refused with exit 2, the fault being in a file the key names (a template), not the key.
    RejectUnlocated,
    /// Rendered.
    Accept,
    /// Either, with the invariants of both.
    Either,
}

#[derive(Debug, Clone)]
struct Case {
    name: String,
    /// Lines under `[package.metadata.docker]` (sub-tables last).
    docker: String,
    /// Lines under `[workspace.metadata.docker]` of the same manifest (a non-virtual workspace).
    workspace: Option<String>,
    /// The same keys with benign values, for the instruction sequence.
    benign: String,
    expect: Expect,
    package: &'static str,
    /// The section header, `docker` unless a misspelling is tested.
    section: &'static str,
}

fn case(
    name: impl Into<String>,
    docker: impl Into<String>,
    benign: impl Into<String>,
    expect: Expect,
) -> Case {
    Case {
        name: name.into(),
        docker: docker.into(),
        workspace: None,
        benign: benign.into(),
        expect,
        package: "svc",
        section: "docker",
    }
}

/// `value` as a TOML string (escapes included).
fn t(value: &str) -> String {
    toml::Value::String(value.to_owned()).to_string()
}

/// The fixture repository: `.git`, the package directory and files paths may name.
struct Fixture {
    _dir: tempfile::TempDir,
    root: Utf8PathBuf,
    svc: Utf8PathBuf,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let base = Utf8PathBuf::from_path_buf(dir.path().canonicalize().unwrap()).unwrap();
        let root = base.join("repo");
        let svc = root.join("svc");
        for d in [root.join(".git"), svc.join("sub"), svc.join("src"), base.join("outside-dir")] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(base.join("outside"), "SECRET=1\n").unwrap();
        std::fs::write(svc.join("src/main.rs"), "fn main() {}\n").unwrap();
        std::fs::write(
            svc.join("Dockerfile"),
            "FROM debian:12\nARG SHA\nENV SHA=${SHA}\nLABEL org.opencontainers.image.title=svc org.opencontainers.image.version=1 org.opencontainers.image.revision=${SHA} org.opencontainers.image.created=now\nUSER 1000\nHEALTHCHECK CMD [\"/x\"]\nENTRYPOINT [\"/x\"]\n",
        )
        .unwrap();
        std::fs::write(
            svc.join("template.j2"),
            "{{ header }}\nFROM {{ base }}\nCOPY {{ copy_binary }}\n{% include \"runtime.dockerfile\" %}",
        )
        .unwrap();
        std::fs::write(svc.join("big"), vec![b'#'; (2 << 20) + 1]).unwrap();
        let fifo = std::process::Command::new("mkfifo").arg(svc.join("fifo")).status().unwrap();
        assert!(fifo.success(), "mkfifo is needed (coreutils)");
        std::os::unix::fs::symlink("../../outside", svc.join("link-out")).unwrap();
        std::os::unix::fs::symlink("../../outside-dir", svc.join("link-out-dir")).unwrap();
        for (name, text) in HOSTILE_TEMPLATES {
            std::fs::write(svc.join(name), text).unwrap();
        }
        Fixture { _dir: dir, root, svc }
    })
}

/// Templates that try to run forever, recurse, allocate or emit without bound.
const HOSTILE_TEMPLATES: [(&str, &str); 8] = [
    (
        "loop.j2",
        "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    ),
    (
        "recurse.j2",
        "{% macro f(n) %}{{ f(n) }}{% endmacro %}{{ f(1) }}",
    ),
    ("alloc.j2", "{{ 'x' * 100000000 }}"),
    (
        "flood.j2",
        "{% for a in range(100000) %}{% for b in range(1000) %}{{ 'y' * 1000 }}{% endfor %}{% endfor %}",
    ),
    ("longline.j2", "FROM scratch\nRUN {{ 'x' * 70000 }}\n"),
    ("undefined.j2", "FROM {{ no_such_variable }}\n"),
    ("escape.j2", "{% include '/etc/passwd' %}"),
    ("syntax.j2", "{% for %}"),
];

fn manifest(case: &Case, docker: &str) -> String {
    let mut text = format!(
        "[package]\nname = {}\nversion = \"1.2.3\"\nedition = \"2021\"\n\n",
        t(case.package)
    );
    if let Some(ws) = &case.workspace {
        text.push_str(&format!(
            "[workspace]\n\n[workspace.metadata.docker]\n{ws}\n\n"
        ));
    }
    text.push_str(&format!("[package.metadata.{}]\n{docker}\n", case.section));
    text
}

struct Rendered {
    dockerfile: String,
    build_args: BTreeMap<String, String>,
    generated: bool,
    plan: plan::ImagePlan,
}

/// The manifest through config, plan and Dockerfile, as `dockerfile` and `lint` run them.
#[allow(clippy::result_large_err)] // the library's own error type, as `src/lib.rs` allows it
fn run(case: &Case, docker: &str) -> Result<Rendered, Error> {
    let fx = fixture();
    let text = manifest(case, docker);
    let src = ManifestSource::parse("svc/Cargo.toml", text)?;
    if src.package.is_none() {
        // What `Workspace::select` reports for a package whose section is misspelt.
        return Err(src
            .misspelt_section("package")
            .map(Error::from)
            .unwrap_or_else(|| Error::usage("no section", None)));
    }
    let facts = PackageFacts {
        name: case.package,
        dir: &fx.svc,
        workspace_root: &fx.root,
        bins: vec![case.package.to_owned()],
    };
    let config = config::resolve(&facts, None, &src)?;
    let input = PackageInput {
        name: case.package.into(),
        version: semver::Version::new(1, 2, 3),
        description: Some("A \"service\"\n".into()),
        repository: None,
        homepage: None,
        documentation: None,
        license: Some("MIT".into()),
        authors: vec![],
        dir: fx.svc.clone(),
        manifest_path: fx.svc.join("Cargo.toml"),
        workspace_root: fx.root.clone(),
        target_dir: fx.root.join("target"),
        is_root: true,
    };
    let revision = Revision {
        sha: SHA.into(),
        commit_time: chrono::DateTime::from_timestamp(1_767_225_600, 0).unwrap(),
        branch: Some("main".into()),
        dirty: false,
        dirty_files: vec![],
        head_tags: vec![],
        inputs: vec![],
    };
    let plan = plan::plan_image(&input, &config, &revision, &[], &PlanOptions::default())?;
    let layout = WorkspaceLayout {
        root: String::new(),
        lockfile: false,
        cargo_inputs: vec![],
        members: vec![dockerfile::render::MemberLayout {
            name: case.package.into(),
            dir: "svc".into(),
            targets: vec![("svc/src/main.rs".into(), false)],
        }],
    };
    let layout = (config.strategy == config::Strategy::Docker).then_some(&layout);
    let rendered = dockerfile::rendered_with(&plan, layout)?;
    Ok(Rendered {
        generated: rendered.source == dockerfile::DockerfileSource::Generated,
        dockerfile: rendered.dockerfile,
        build_args: rendered.build_args,
        plan,
    })
}

/// Runs `f` on its own thread: a panic or a hang is a failure of `name`.
fn guarded<T: Send + 'static>(name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(DEADLINE) {
        Ok(v) => {
            handle.join().unwrap();
            v
        }
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("{name}: hung for {DEADLINE:?}"),
        Err(_) => match handle.join() {
            Err(p) => panic!(
                "{name}: panicked: {}",
                p.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            ),
            Ok(()) => unreachable!(),
        },
    }
}

/// What Docker's parser sees: each instruction's keyword, and for `FROM` and `USER` the number of
/// words (an injected ` AS evil` or second user changes it). The `ARG`s the tool declares for
/// values a line cannot hold (`LABEL_n`, `ENV_n`) are the template's own and are left out, so a
/// value that travels as a build argument compares equal to a benign one.
fn shape(text: &str, build_args: &BTreeMap<String, String>) -> Result<Vec<String>, String> {
    docker_model::evaluate(text, build_args)?;
    let tool_arg = |rest: &str| {
        ["LABEL_", "ENV_"].iter().any(|p| {
            rest.strip_prefix(p)
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
    };
    Ok(docker_model::logical_lines(text)?
        .iter()
        .filter(|line| {
            !line
                .strip_prefix("ARG ")
                .is_some_and(|rest| tool_arg(rest.trim()))
        })
        .map(|line| {
            let line = line.trim();
            let (keyword, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            let keyword = keyword.to_ascii_uppercase();
            match keyword.as_str() {
                "FROM" | "USER" | "STOPSIGNAL" | "EXPOSE" => {
                    format!("{keyword}/{}", rest.split_whitespace().count())
                }
                _ => keyword,
            }
        })
        .collect())
}

/// The `Cargo.toml:line:col` a rendered error points at.
fn location(rendered: &str) -> Option<(usize, usize)> {
    let at = rendered.find("Cargo.toml:")? + "Cargo.toml:".len();
    let rest = &rendered[at..];
    let end = rest.find(']')?;
    let (line, col) = rest[..end].split_once(':')?;
    Some((line.parse().ok()?, col.parse().ok()?))
}

/// Checks one manifest; `Err` says what broke.
fn check(case: &Case) -> Result<&'static str, String> {
    let owned = case.clone();
    let outcome = guarded(&case.name, move || {
        run(&owned, &owned.docker).map_err(|e| {
            (
                e.exit_code(),
                error::render(&e, false),
                matches!(&e, Error::Manifest(m) if m.span.is_some() && m.help.is_some()),
            )
        })
    });
    match outcome {
        Err((code, rendered, located)) => {
            if code != 2 {
                return Err(format!("exit {code}, not 2:\n{rendered}"));
            }
            if let Some(c) = rendered
                .chars()
                .find(|c| *c != '\n' && error::is_unprintable(*c))
            {
                return Err(format!("unprintable {c:?} reaches the terminal"));
            }
            if rendered.len() > 8 * 1024 {
                return Err(format!("{} bytes of error output", rendered.len()));
            }
            if rendered.contains("fix this value") {
                return Err(format!("generic help:\n{rendered}"));
            }
            match case.expect {
                Expect::Accept => return Err(format!("refused:\n{rendered}")),
                Expect::RejectUnlocated => {}
                Expect::Reject | Expect::Either => {
                    if !located || location(&rendered).is_none() {
                        return Err(format!(
                            "not located at a key with a help line:\n{rendered}"
                        ));
                    }
                    if !rendered.contains("help:") {
                        return Err(format!("no help line:\n{rendered}"));
                    }
                }
            }
            if case.workspace.is_some() && case.benign.is_empty() {
                // A fault in the workspace defaults is located in that section.
                let text = manifest(case, &case.docker);
                let ws_end = text[..text.find("[package.metadata").unwrap()]
                    .lines()
                    .count();
                let (line, _) = location(&rendered).unwrap_or_default();
                if line > ws_end {
                    return Err(format!(
                        "located at line {line}, not in the workspace section:\n{rendered}"
                    ));
                }
            }
            Ok("refused")
        }
        Ok(r) => {
            if matches!(case.expect, Expect::Reject | Expect::RejectUnlocated) {
                return Err(format!("accepted:\n{}", r.dockerfile));
            }
            let got = shape(&r.dockerfile, &r.build_args)
                .map_err(|e| format!("Docker cannot read it ({e}):\n{}", r.dockerfile))?;
            let benign_case = case.clone();
            let benign = guarded(&case.name, move || {
                run(&benign_case, &benign_case.benign).map_err(|e| error::render(&e, false))
            })
            .map_err(|e| format!("the benign counterpart fails:\n{e}"))?;
            let want = shape(&benign.dockerfile, &benign.build_args)?;
            if got != want {
                return Err(format!(
                    "instructions {got:?}\n  differ from the template's {want:?}:\n{}",
                    r.dockerfile
                ));
            }
            for line in docker_model::logical_lines(&r.dockerfile)? {
                if let Some(user) = line.strip_prefix("USER ")
                    && config::user::user_is_root(user.trim())
                {
                    return Err(format!("runs as root: {line}"));
                }
            }
            if r.generated {
                let findings = lint::builtin("Dockerfile", &r.dockerfile);
                if let Some(f) = findings.iter().find(|f| f.severity >= Severity::Error) {
                    return Err(format!("the generated Dockerfile fails the lint: {f}"));
                }
            }
            let applied: Vec<&plan::TagDecision> = r.plan.applied_tags().collect();
            for (i, tag) in applied.iter().enumerate() {
                if applied[..i].iter().any(|o| o.name == tag.name) {
                    return Err(format!("tag `{}` applied twice", tag.name));
                }
                if tag.kind == TagKind::Extra && config::reserved_tag(&tag.name).is_some() {
                    return Err(format!(
                        "extra tag `{}` spells a version or `latest`",
                        tag.name
                    ));
                }
            }
            Ok("accepted")
        }
    }
}

/// Strings made to hurt wherever they land in a Dockerfile.
fn hostile_strings() -> Vec<String> {
    [
        "a\nRUN touch /pwned",
        "a\\",
        "a \\",
        "a\\\nRUN touch /pwned",
        "${HOME}",
        "$(id)",
        "`id`",
        "\"quoted\" \\\"",
        "'single'",
        "#comment",
        "\r",
        "a\r\nRUN x",
        "\u{2028}RUN x",
        "\u{85}RUN x",
        "x\u{0}y",
        "é🦀ñandú",
        "--flag",
        " ",
        "\t\u{b}\u{c}",
        "a\" \\\nRUN x",
        "\u{1b}[31mred\u{7}",
        "\u{202e}evil",
    ]
    .map(String::from)
    .to_vec()
}

fn corpus() -> Vec<Case> {
    use Expect::*;
    let mut cases = Vec::new();
    let upper = HEX.to_uppercase();

    // 1. References: nothing but the grammar reaches `FROM`.
    let refs: Vec<String> = vec![
        "debian@sha256:x\nRUN touch /pwned".into(),
        format!("debian@sha256:{HEX}\nRUN touch /pwned"),
        "debian:12 \\".into(),
        "debian:12\\".into(),
        "debian:12 AS evil".into(),
        "debian:${TAG}".into(),
        "${BASE}".into(),
        "debian:12\r".into(),
        "debian:12\tAS".into(),
        "debian@md5:ab".into(),
        format!("debian@sha256:{upper}"),
        format!("debian@sha256:{}", &HEX[..63]),
        "debian:12#x".into(),
        " debian:12".into(),
        "debian:12\u{2028}RUN x".into(),
        "debian:12\u{85}".into(),
        "debian:-12".into(),
        "debian:".into(),
        "Debian:12".into(),
        format!("debian:12@sha256:{HEX}@x"),
        format!("{}:1", "a".repeat(300)),
        format!("debian:{}", "1".repeat(129)),
        "localhost:99999/x:1".into(),
        "[::1/x:1".into(),
        "debian:12\"".into(),
        "debian:12'".into(),
        "debian:12\n".into(),
    ];
    for (i, r) in refs.iter().enumerate() {
        cases.push(case(
            format!("base-ref-{i}"),
            format!("base = {}", t(r)),
            "",
            Reject,
        ));
        cases.push(case(
            format!("builder-ref-{i}"),
            format!("strategy = \"docker\"\nbuilder = {}", t(r)),
            "",
            Reject,
        ));
    }
    let digests: Vec<String> = vec![
        "sha256:x\nRUN touch /pwned".into(),
        format!("sha256:{upper}"),
        format!("sha256:{}", &HEX[..63]),
        format!("sha256:{HEX}\\"),
        format!("sha256:{HEX} AS evil"),
        "md5:abc".into(),
        "sha256:${X}".into(),
        format!("sha256:{HEX}\n"),
        format!("{HEX}"),
    ];
    for (i, d) in digests.iter().enumerate() {
        cases.push(case(
            format!("base-digest-{i}"),
            format!("base = \"debian:12\"\nbase-digest = {}", t(d)),
            "",
            Reject,
        ));
        cases.push(case(
            format!("builder-digest-{i}"),
            format!("strategy = \"docker\"\nbuilder-digest = {}", t(d)),
            "",
            Reject,
        ));
    }
    for r in [
        "[::1]:5000/acme/base:1",
        "localhost:5000/debian:12",
        "ghcr.io/a/b:1.0",
        "127.0.0.1:5000/x",
    ] {
        cases.push(case(
            format!("ref-ok-{r}"),
            format!("base = {}", t(r)),
            "base = \"debian:12\"",
            Accept,
        ));
    }
    cases.push(case(
        "digest-ok",
        format!("base = \"debian:12@sha256:{HEX}\"\nbase-digest = \"sha256:{HEX}\""),
        "base = \"debian:12\"",
        Accept,
    ));
    cases.push(case(
        "digest-conflict",
        format!(
            "base = \"debian:12@sha256:{HEX}\"\nbase-digest = \"sha256:{}\"",
            "f".repeat(64)
        ),
        "",
        Reject,
    ));

    // 2. Users: no spelling of uid 0.
    for u in [
        "0",
        "00",
        "+0",
        "-0",
        "0000:1",
        "0:0",
        "000000000000000000000",
        "root",
        "app",
        "",
        "1:2:3",
        "4294967295",
        " 1",
        "1\n",
        "1 AS x",
        "-1",
        "1:",
    ] {
        cases.push(case(
            format!("user-{u:?}"),
            format!("user = {}", t(u)),
            "",
            Reject,
        ));
    }
    for u in ["007", "65532:0", "1000", "+1000:+1000"] {
        cases.push(case(
            format!("user-ok-{u}"),
            format!("user = {}", t(u)),
            "user = \"1000\"",
            Accept,
        ));
    }

    // 3. Workspace defaults in the root package's own manifest: validated and applied.
    for ws in [
        "user = \"+0\"".to_string(),
        "base = \"debian:12 AS evil\"".into(),
        "tags = { extra = [\"latest\"] }".into(),
        "healthcheck = { cmd = [\"/x\"], interval = \"500us\" }".into(),
        "dockerfile = \"../../outside\"".into(),
        "stop-signal = \"SIGFOO\"".into(),
        "expose = [0]".into(),
        "env = { \"1BAD\" = \"x\" }".into(),
        "strategy = \"Docker\"".into(),
        "unknown-key = 1".into(),
    ] {
        let mut c = case(format!("workspace-{ws}"), "", "", Reject);
        c.workspace = Some(ws);
        cases.push(c);
    }
    for (ws, benign) in [
        ("user = \"1000\"", "user = \"1000\""),
        ("vendor = \"Acme\"", "vendor = \"Acme\""),
        ("env = { A = \"1\" }", "env = { A = \"1\" }"),
        ("expose = [8080]", "expose = [8080]"),
    ] {
        let mut c = case(format!("workspace-ok-{ws}"), "", benign, Accept);
        c.workspace = Some(ws.into());
        cases.push(c);
    }

    // 4. Paths stay inside the repository and name regular files of a bounded size.
    let bad_files = [
        "../../outside",
        "/etc/passwd",
        "/proc/self/environ",
        "/dev/zero",
        "fifo",
        "link-out",
        "big",
        "missing",
        ".",
        "sub",
        "/",
        "Dockerfile\u{0}x",
        "../svc/../../outside",
        "/dev/stdin",
    ];
    for key in ["dockerfile", "template"] {
        for p in bad_files {
            cases.push(case(
                format!("{key}-{p:?}"),
                format!("{key} = {}", t(p)),
                "",
                Reject,
            ));
        }
    }
    for p in [
        "../../outside-dir",
        "/",
        "/proc",
        "Dockerfile",
        "missing",
        "link-out-dir",
        "fifo",
    ] {
        cases.push(case(
            format!("context-{p:?}"),
            format!("strategy = \"docker\"\ncontext = {}", t(p)),
            "",
            Reject,
        ));
    }
    cases.push(case(
        "dockerfile-ok",
        "dockerfile = \"Dockerfile\"",
        "dockerfile = \"./Dockerfile\"",
        Accept,
    ));
    cases.push(case(
        "template-ok",
        "template = \"template.j2\"",
        "",
        Accept,
    ));
    cases.push(case("context-ok", "context = \"..\"", "", Accept));
    cases.push(case(
        "context-docker-ok",
        "strategy = \"docker\"\ncontext = \"..\"",
        "strategy = \"docker\"",
        Accept,
    ));

    // 5. Unbounded work in user templates ends, with exit 2.
    for (name, _) in HOSTILE_TEMPLATES {
        cases.push(case(
            format!("template-{name}"),
            format!("template = {}", t(name)),
            "",
            RejectUnlocated,
        ));
    }

    // 6. `tags.extra` never spells `latest`, a version, a line or a duplicate.
    for x in [
        "latest",
        "LATEST",
        "Latest",
        "2",
        "1.2",
        "9.9.9",
        "{version}",
        "{version}-{sha7}",
        "1.2.3_x",
        "0.4",
        "1.2.3-rc.1",
        "a b",
        "{nope}",
        "-x",
        ".x",
        "{sha",
        "x}",
        "{branch}\n",
        "x\u{202e}",
    ] {
        cases.push(case(
            format!("extra-{x:?}"),
            format!("tags = {{ extra = [{}] }}", t(x)),
            "",
            Reject,
        ));
    }
    cases.push(case(
        "extra-long",
        format!("tags = {{ extra = [\"{}\"] }}", "a".repeat(129)),
        "",
        Reject,
    ));
    cases.push(case(
        "extra-dup",
        "tags = { extra = [\"{branch}-{sha7}\", \"{branch}-{sha7}\"] }",
        "",
        Reject,
    ));
    for x in [
        "{branch}-{sha7}",
        "v{version}",
        "{timestamp}",
        "build-{sha}",
        "{sha7}",
        "{sha}",
    ] {
        cases.push(case(
            format!("extra-ok-{x}"),
            format!("tags = {{ extra = [{}] }}", t(x)),
            "",
            Accept,
        ));
    }

    // 7. The test section: request lines, ports, exit statuses, timeouts.
    let test_bad: Vec<String> = vec![
        "[package.metadata.docker.test.ready.http]\npath = \"/a\\r\\nX-Injected: 1\"".into(),
        "[package.metadata.docker.test.ready.http]\npath = \"/a b\"".into(),
        "[package.metadata.docker.test.ready.http]\npath = \"/\\n\"".into(),
        "[package.metadata.docker.test.ready.http]\npath = \"a\"".into(),
        "[package.metadata.docker.test.ready.http]\nport = 0".into(),
        "[package.metadata.docker.test.ready.http]\nstatus = 99".into(),
        "[package.metadata.docker.test.ready]\ntcp = [0]".into(),
        "[package.metadata.docker.test.ready]\nlog = \"(\"".into(),
        "[[package.metadata.docker.test.http]]\npath = \"/x\\r\\nHost: evil\"\nport = 1".into(),
        "[[package.metadata.docker.test.http]]\npath = \"/x\"\nport = 0".into(),
        "[[package.metadata.docker.test.http]]\npath = \"/x\"\nport = 1\nstatus = 600".into(),
        "[[package.metadata.docker.test.http]]\npath = \"/x\"\nport = 1\nmethod = \"GET\\r\\n\""
            .into(),
        "[[package.metadata.docker.test.http]]\npath = \"/x\"\nport = 1\nmethod = \"get\"".into(),
        "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]\nstatus = -1".into(),
        "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]\nstatus = 256".into(),
        "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]\nstatus = 9223372036854775807"
            .into(),
        "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]\nuser = \"x\"".into(),
        "[[package.metadata.docker.test.exec]]\ncmd = []".into(),
        "[[package.metadata.docker.test.host]]\ncmd = [\"/x\"]\nstatus = -1".into(),
        "[package.metadata.docker.test.shutdown]\nexit-code = 256".into(),
        "[package.metadata.docker.test.structure]\nmax-size = \"0B\"".into(),
        "[package.metadata.docker.test.structure]\nmax-size = \"1e400\"".into(),
        "[package.metadata.docker.test.structure]\nabsent = [\"rel\"]".into(),
        "[package.metadata.docker.test.structure]\nfiles = [{ path = \"/x\", owner = \"root\" }]"
            .into(),
        "[package.metadata.docker.test.structure]\nexpose = [0]".into(),
        "[[package.metadata.docker.test.cargo]]\ntest = \"../x\"".into(),
    ];
    for (i, s) in test_bad.iter().enumerate() {
        cases.push(case(format!("test-{i}"), s.clone(), "", Reject));
    }
    for (table, key) in [
        ("[package.metadata.docker.test]", "timeout"),
        ("[package.metadata.docker.test.ready]", "timeout"),
        (
            "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]",
            "timeout",
        ),
        (
            "[[package.metadata.docker.test.http]]\npath = \"/x\"\nport = 1",
            "timeout",
        ),
        ("[package.metadata.docker.test.shutdown]", "timeout"),
        (
            "[[package.metadata.docker.test.cargo]]\ntest = \"smoke\"",
            "timeout",
        ),
    ] {
        for d in ["99999999999h", "0s", "25h", "often", "-1s"] {
            cases.push(case(
                format!("timeout-{table}-{d}"),
                format!("{table}\n{key} = {}", t(d)),
                "",
                Reject,
            ));
        }
        cases.push(case(
            format!("timeout-ok-{table}"),
            format!("{table}\n{key} = \"24h\""),
            "",
            Accept,
        ));
    }
    cases.push(case(
        "test-ok",
        "[[package.metadata.docker.test.exec]]\ncmd = [\"/x\"]\nstatus = 255\n[[package.metadata.docker.test.http]]\npath = \"/a?b=%20\"\nport = 65535",
        "",
        Accept,
    ));

    // 8. Healthcheck durations Docker can hold, rendered exactly.
    for key in ["interval", "timeout", "start-period"] {
        for d in [
            "500us",
            "0.5ms",
            "300years",
            "99999999999h",
            "-1s",
            "1 fortnight",
            "0s",
        ] {
            let expect = if key == "start-period" && d == "0s" {
                Accept
            } else {
                Reject
            };
            cases.push(case(
                format!("healthcheck-{key}-{d}"),
                format!("healthcheck = {{ cmd = [\"/x\"], {key} = {} }}", t(d)),
                "healthcheck = { cmd = [\"/x\"] }",
                expect,
            ));
        }
        for d in ["1ms", "1500us", "291years", "1h 30m"] {
            cases.push(case(
                format!("healthcheck-ok-{key}-{d}"),
                format!("healthcheck = {{ cmd = [\"/x\"], {key} = {} }}", t(d)),
                "healthcheck = { cmd = [\"/x\"] }",
                Accept,
            ));
        }
    }
    cases.push(case(
        "healthcheck-retries-0",
        "healthcheck = { cmd = [\"/x\"], retries = 0 }",
        "",
        Reject,
    ));

    // 9. Docker's 65,535-byte lines.
    let long = "x".repeat(70_000);
    for (key, value) in [
        ("entrypoint", format!("[\"/x\", \"{long}\"]")),
        ("cmd", format!("[\"{long}\"]")),
        ("smoke-test", format!("[\"/x\", \"{long}\"]")),
        ("healthcheck", format!("{{ cmd = [\"/x\", \"{long}\"] }}")),
        ("env", format!("{{ {} = \"v\" }}", "A".repeat(1 << 20))),
        ("labels", format!("{{ \"{}\" = \"v\" }}", "k".repeat(2000))),
        ("build-args", format!("{{ {} = \"v\" }}", "B".repeat(2000))),
        ("vendor", format!("\"{long}\"")),
        ("image", format!("\"{long}\"")),
    ] {
        cases.push(case(
            format!("long-{key}"),
            format!("{key} = {value}"),
            "",
            Reject,
        ));
    }
    for (key, value, benign) in [
        (
            "env",
            format!("{{ A = \"{}\" }}", "v".repeat(1 << 20)),
            "env = { A = \"v\" }",
        ),
        (
            "labels",
            format!("{{ \"com.acme.x\" = \"{}\" }}", "v".repeat(100_000)),
            "labels = { \"com.acme.x\" = \"v\" }",
        ),
        (
            "entrypoint",
            format!("[\"/x\", \"{}\"]", "y".repeat(50_000)),
            "entrypoint = [\"/x\", \"y\"]",
        ),
    ] {
        cases.push(case(
            format!("long-ok-{key}"),
            format!("{key} = {value}"),
            benign,
            Accept,
        ));
    }

    // 10. The terminal: control characters and floods in refused values.
    for v in [
        "\u{1b}[31mred",
        "bell\u{7}",
        "cr\rx",
        "nul\u{0}",
        "\u{202e}evil",
        "line\u{2028}sep",
        "\u{9b}31m",
    ] {
        cases.push(case(
            format!("terminal-image-{v:?}"),
            format!("image = {}", t(v)),
            "",
            Reject,
        ));
        cases.push(case(
            format!("terminal-bin-{v:?}"),
            format!("bin = {}", t(v)),
            "",
            Reject,
        ));
        cases.push(case(
            format!("terminal-key-{v:?}"),
            format!("{} = 1", t(v)),
            "",
            Reject,
        ));
        cases.push(case(
            format!("terminal-label-{v:?}"),
            format!("labels = {{ {} = \"x\" }}", t(v)),
            "",
            Reject,
        ));
    }
    cases.push(case(
        "terminal-flood",
        format!("image = \"{}\"", "\u{1b}".repeat(1 << 20)),
        "",
        Reject,
    ));
    cases.push(case(
        "terminal-flood-key",
        format!("\"{}\" = 1", "x".repeat(1 << 20)),
        "",
        Reject,
    ));

    // 11. Every string that reaches the Dockerfile: escaped, or refused where it is written.
    for (i, s) in hostile_strings().iter().enumerate() {
        let v = t(s);
        for (key, docker, benign) in [
            (
                "vendor",
                format!("vendor = {v}"),
                "vendor = \"benign\"".to_string(),
            ),
            (
                "label",
                format!("labels = {{ \"com.acme.x\" = {v} }}"),
                "labels = { \"com.acme.x\" = \"benign\" }".into(),
            ),
            (
                "env",
                format!("env = {{ APP = {v} }}"),
                "env = { APP = \"benign\" }".into(),
            ),
            (
                "build-arg",
                format!("strategy = \"docker\"\nbuild-args = {{ APP = {v} }}"),
                "strategy = \"docker\"\nbuild-args = { APP = \"benign\" }".into(),
            ),
            (
                "entrypoint",
                format!("entrypoint = [\"/x\", {v}]"),
                "entrypoint = [\"/x\", \"benign\"]".into(),
            ),
            ("cmd", format!("cmd = [{v}]"), "cmd = [\"benign\"]".into()),
            (
                "smoke-test",
                format!("smoke-test = [\"/x\", {v}]"),
                "smoke-test = [\"/x\", \"benign\"]".into(),
            ),
            (
                "healthcheck",
                format!("healthcheck = {{ cmd = [\"/x\", {v}] }}"),
                "healthcheck = { cmd = [\"/x\", \"benign\"] }".into(),
            ),
            (
                "stop-signal",
                format!("stop-signal = {v}"),
                "stop-signal = \"SIGTERM\"".into(),
            ),
            (
                "label-key",
                format!("labels = {{ {v} = \"x\" }}"),
                "labels = { \"benign\" = \"x\" }".into(),
            ),
        ] {
            cases.push(case(format!("string-{key}-{i}"), docker, benign, Either));
        }
    }
    for s in ["sigterm", "SIGRTMIN+3", "term", "9", "SIGRTMAX-1", "rtmin"] {
        cases.push(case(
            format!("signal-ok-{s}"),
            format!("stop-signal = {}", t(s)),
            "stop-signal = \"SIGTERM\"",
            Accept,
        ));
    }

    // 12. Messages: enum values, wrong types, broken TOML, misspelt sections.
    for (docker, _) in [
        ("strategy = \"Docker\"", "docker"),
        ("strategy = \"HOST\"", "host"),
        ("strategy = \"dockr\"", "docker"),
        ("revision = \"HEAD\"", "head"),
        ("revision = \"Crate\"", "crate"),
        ("expose = \"8080\"", ""),
        ("user = 0", ""),
        ("tags = 1", ""),
        ("env = []", ""),
        ("static = \"yes\"", ""),
        ("entrypoint = \"/x\"", ""),
        ("healthcheck = \"x\"", ""),
        ("test = 1", ""),
        ("labels = 1", ""),
        ("image = 1", ""),
        ("tags = { sha-length = \"7\" }", ""),
        ("tags = { sha-length = 3 }", ""),
        ("tags = { extra = \"x\" }", ""),
        ("expose = [70000]", ""),
        ("expose = [-1]", ""),
        ("env = { A = 1 }", ""),
        ("image = ", ""),
        ("image = \"a", ""),
        ("image = \"a\"\nimage = \"b\"", ""),
        ("[package.metadata.docker", ""),
        ("bin = \"svx\"", ""),
        (
            "dockerfile = \"Dockerfile\"\ntemplate = \"template.j2\"",
            "",
        ),
        ("builder = \"rust:1\"", ""),
        ("static = false\nbase = \"scratch\"", ""),
        ("env = { SHA = \"x\" }", ""),
        (
            "build-args = { VERSION = \"x\" }\nstrategy = \"docker\"",
            "",
        ),
        ("[package.metadata.docker.test.ready]\nhealth = true", ""),
        ("[[package.metadata.docker.test.http]]\npath = \"/\"", ""),
    ] {
        cases.push(case(format!("message-{docker:?}"), docker, "", Reject));
    }
    for section in ["dockr", "Docker", "docker-release", "dcoker"] {
        let mut c = case(format!("section-{section}"), "image = \"x\"", "", Reject);
        c.section = section;
        cases.push(c);
    }

    // Wrongly refused before: a package named `ñandú`.
    let mut c = case("package-nandu", "", "", Accept);
    c.package = "ñandú";
    cases.push(c);
    cases
}

#[test]
fn hostile_manifest_corpus() {
    let cases = corpus();
    assert!(cases.len() >= 300, "only {} manifests", cases.len());
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        let one = std::time::Instant::now();
        let result = check(case);
        if one.elapsed() > Duration::from_millis(150) {
            eprintln!("slow: {} {:?}", case.name.escape_debug(), one.elapsed());
        }
        match result {
            Ok(outcome) => *counts.entry(outcome).or_default() += 1,
            Err(why) => failures.push(format!(
                "{} ({:?}): {}",
                case.name.escape_debug(),
                case.expect,
                crate::hostile::cut(&why)
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} manifests broke a rule:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
    eprintln!(
        "{} manifests ({counts:?}) in {:?}",
        cases.len(),
        started.elapsed()
    );
}

fn cut(text: &str) -> String {
    error::printable_block(&error::printable(text, 3000).replace("\\n", "\n"))
}

/// Accepted healthcheck durations render exactly what was asked, in Go's syntax.
#[test]
fn healthcheck_durations_render_exactly() {
    for (given, rendered) in [
        ("1500us", "0.0015s"),
        ("1ms", "0.001s"),
        ("90m", "5400s"),
        ("291years", "9183261600s"),
    ] {
        let c = case(
            "d",
            format!(
                "healthcheck = {{ cmd = [\"/x\"], interval = {} }}",
                t(given)
            ),
            "",
            Expect::Accept,
        );
        let r =
            run(&c, &c.docker).unwrap_or_else(|e| panic!("{given}: {}", error::render(&e, false)));
        assert!(
            r.dockerfile.contains(&format!("--interval={rendered} ")),
            "{given}:\n{}",
            r.dockerfile
        );
    }
}

/// Workspace defaults in a non-virtual root's own manifest apply to the root package.
#[test]
fn root_package_gets_its_own_workspace_defaults() {
    let mut c = case("ws", "image = \"acme/svc\"", "", Expect::Accept);
    c.workspace =
        Some("vendor = \"Acme\"\nuser = \"1000\"\ntags = { extra = [\"{branch}-{sha7}\"] }".into());
    let r = run(&c, &c.docker).unwrap_or_else(|e| panic!("{}", error::render(&e, false)));
    assert!(r.dockerfile.contains("USER 1000\n"), "{}", r.dockerfile);
    assert_eq!(r.plan.labels["org.opencontainers.image.vendor"], "Acme");
    assert!(r.plan.applied_tags().any(|t| t.name == "main-0123456"));
}

/// The fuel stops a template loop of 10^10 iterations quickly.
#[test]
fn endless_template_loops_stop_within_seconds() {
    let started = std::time::Instant::now();
    let c = case(
        "loop",
        "template = \"loop.j2\"",
        "",
        Expect::RejectUnlocated,
    );
    let err = guarded("loop", move || {
        run(&c, &c.docker).err().map(|e| error::render(&e, false))
    });
    let err = err.expect("refused");
    assert!(err.contains("steps of work"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    const { assert!(render::TEMPLATE_FUEL > 100_000) };
}

// ---- The binary, end to end: what only the command line shows. ----

fn git_repo(files: &[(&str, &str)]) -> Project {
    project().files(files).build()
}

/// Runs the binary with a deadline: a hang fails the test instead of the suite.
fn cli(dir: &Utf8Path, args: &[&str]) -> (i32, String, String) {
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cargo-docker-release"))
        .arg("docker-release")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("CI", "1")
        .env("DOCKER_HOST", "unix:///nonexistent.sock")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("`{}` hung", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn package(docker: &str) -> String {
    format!("[package]\nname = \"svc\"\nversion = \"1.0.0\"\nedition = \"2021\"\n\n{docker}\n")
}

#[test]
fn the_command_line_on_hostile_manifests() {
    // A FIFO named as the Dockerfile: `plan` refuses it at the key, nothing blocks.
    let dir = git_repo(&[
        (
            "Cargo.toml",
            &package("[package.metadata.docker]\ndockerfile = \"pipe\""),
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let root = Utf8Path::from_path(dir.root()).unwrap();
    assert!(
        std::process::Command::new("mkfifo")
            .arg(root.join("pipe"))
            .status()
            .unwrap()
            .success()
    );
    for command in ["plan", "dockerfile", "lint"] {
        let (code, _, err) = cli(root, &[command]);
        assert_eq!(code, 2, "{command}: {err}");
        assert!(
            err.contains("not a regular file") && err.contains("Cargo.toml:7:"),
            "{command}: {err}"
        );
    }

    // A generated Dockerfile without a healthcheck passes `lint`; `--deny warnings` fails it.
    let dir = git_repo(&[
        (
            "Cargo.toml",
            &package(
                "[package.metadata.docker]\nbase = \"localhost:5000/debian:12\"\nlabels = { \"com.acme.x\" = \"ends with \\\\\" }",
            ),
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let root = Utf8Path::from_path(dir.root()).unwrap();
    let (code, out, err) = cli(root, &["lint"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("no-healthcheck"), "{out}");
    let (code, _, err) = cli(root, &["lint", "--deny", "warnings"]);
    assert_eq!(code, 1, "{err}");

    // A misspelt section is located and named; an escape sequence in a value never reaches the
    // terminal raw.
    let dir = git_repo(&[
        (
            "Cargo.toml",
            &package("[package.metadata.dockr]\nimage = \"x\""),
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let root = Utf8Path::from_path(dir.root()).unwrap();
    let (code, _, err) = cli(root, &["plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("[package.metadata.docker]") && err.contains("Cargo.toml:6:"),
        "{err}"
    );
    let dir = git_repo(&[
        (
            "Cargo.toml",
            &package("[package.metadata.docker]\nimage = \"\\u001b[2J\\u0007x\""),
        ),
        ("src/main.rs", "fn main() {}\n"),
    ]);
    let (code, _, err) = cli(Utf8Path::from_path(dir.root()).unwrap(), &["plan"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        !err.contains('\u{1b}') && !err.contains('\u{7}') && err.contains("\\u{1b}"),
        "{err:?}"
    );
}
