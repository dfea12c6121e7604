//! The lint of a Dockerfile: built-in rules, plus hadolint's findings when `hadolint` is on
//! `PATH`.
//!
//! The file is read by the one Dockerfile tokenizer, [`crate::dockerfile_syntax`] (BuildKit's parser:
//! `# escape=`, continuations, heredocs, flags, `ARG` scopes); this module holds only the rules,
//! and [`buildkit_syntax`], which says which lines need BuildKit, and which need a newer
//! Dockerfile frontend than the one built into Docker 20.10.

use std::fmt;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dockerfile_syntax::{Dockerfile, Instruction};

pub use crate::dockerfile_syntax::has_syntax_directive;

/// How bad a finding is; the lint fails at or above a threshold (default: error; `--deny warnings`
/// makes it warning, like clippy's `-D warnings`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Cosmetic.
    Style,
    /// Worth knowing.
    Info,
    /// Should be fixed.
    Warning,
    /// Must be fixed.
    Error,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Style => "style",
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        })
    }
}

/// One problem at one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The Dockerfile, as shown to the user.
    pub file: String,
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Rule name (`root-user`, ...) or hadolint's code (`DL3007`, `SC2086`).
    pub rule: String,
    /// How bad it is.
    pub severity: Severity,
    /// What is wrong and how to fix it.
    pub message: String,
    /// `cargo-docker-release` or `hadolint`.
    pub source: &'static str,
}

impl fmt::Display for Finding {
    /// `file:line: rule: message`, printable: the message may quote the Dockerfile.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::error::printable;
        write!(
            f,
            "{}:{}: {}: {}",
            printable(&self.file, 200),
            self.line,
            printable(&self.rule, 40),
            printable(&self.message, crate::error::MAX_SHOWN_LINE)
        )
    }
}

/// Which builder a piece of Dockerfile syntax needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SyntaxNeed {
    /// BuildKit with any Dockerfile frontend (Docker 20.10's built-in one is enough):
    /// `RUN --mount`/`--network`/`--security`, `COPY`/`ADD --chmod`.
    BuildKit,
    /// BuildKit with Dockerfile frontend 1.4 or later (built into Docker 23 and later):
    /// heredocs, `COPY --link`, `--parents`, `--exclude`, `ADD --checksum`/`--keep-git-dir`.
    NewerFrontend,
}

/// One use of syntax the classic builder does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildKitSyntax {
    /// 1-based line of the instruction.
    pub line: usize,
    /// What it is, as written: `COPY --chmod`, `RUN heredoc`.
    pub what: String,
    /// What it needs.
    pub needs: SyntaxNeed,
}
/// The BuildKit-only syntax `text` uses, in line order.
pub fn buildkit_syntax(text: &str) -> Vec<BuildKitSyntax> {
    buildkit_syntax_of(&Dockerfile::parse(text))
}

fn buildkit_syntax_of(df: &Dockerfile) -> Vec<BuildKitSyntax> {
    let mut out = Vec::new();
    for ins in &df.instructions {
        let keyword = ins.keyword.as_str();
        for flag in &ins.flags {
            let needs = match (keyword, flag.name.as_str()) {
                ("RUN", "mount" | "network" | "security") | ("COPY" | "ADD", "chmod") => {
                    SyntaxNeed::BuildKit
                }
                ("COPY" | "ADD", "link" | "parents" | "exclude")
                | ("ADD", "checksum" | "keep-git-dir") => SyntaxNeed::NewerFrontend,
                _ => continue,
            };
            out.push(BuildKitSyntax {
                line: ins.line,
                what: format!("{keyword} --{}", flag.name),
                needs,
            });
        }
        if !ins.heredocs.is_empty() {
            out.push(BuildKitSyntax {
                line: ins.line,
                what: format!("{keyword} heredoc"),
                needs: SyntaxNeed::NewerFrontend,
            });
        }
    }
    out
}

/// The OCI labels every released image must carry (the others depend on the crate's metadata:
/// `source` needs `repository`, and so on).
pub const REQUIRED_LABELS: [&str; 4] = [
    "org.opencontainers.image.title",
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
];

/// Whether an `ENV`/`ARG` name looks like it holds a secret.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_TOKEN")
        || n.contains("PASSWORD")
        || n.contains("_SECRET")
        || n.ends_with("_KEY")
        || n == "TOKEN"
        || n.starts_with("SECRET")
}

/// The built-in rules (and hadolint's findings when `with_hadolint` and it is installed).
///
/// hadolint's rules about what the image runs ([`FINAL_STAGE_RULES`]) are kept for the final
/// stage only: a builder stage's user or command never reaches the image.
pub fn lint(file: &str, text: &str, with_hadolint: bool) -> Vec<Finding> {
    let mut findings = builtin(file, text);
    let (view, heredoc_lines) = hadolint_view(text);
    if with_hadolint && let Some(more) = hadolint(file, &view) {
        let final_stage = final_stage_line(text);
        findings.extend(more.into_iter().filter(|f| {
            (!FINAL_STAGE_RULES.contains(&f.rule.as_str()) || f.line >= final_stage)
                && !heredoc_lines.contains(&f.line)
        }));
    }
    findings.sort_by(|a, b| (a.line, &a.rule).cmp(&(b.line, &b.rule)));
    findings
}

/// The text hadolint reads, and the lines of instructions with heredocs. hadolint's parser does
/// not know BuildKit's heredocs (it stops at the first body line with `DL1000`): each body and
/// its delimiter become comment lines, so every other line keeps its number and its findings,
/// and hadolint's findings on the heredoc instructions themselves are dropped.
fn hadolint_view(text: &str) -> (String, Vec<usize>) {
    let instructions = Dockerfile::parse(text).instructions;
    let with_heredocs: Vec<&Instruction> = instructions
        .iter()
        .filter(|i| !i.heredocs.is_empty())
        .collect();
    let heredoc_lines: Vec<usize> = with_heredocs.iter().map(|i| i.line).collect();
    if heredoc_lines.is_empty() {
        return (text.to_owned(), heredoc_lines);
    }
    let mut view: Vec<String> = text.split('\n').map(str::to_owned).collect();
    for ins in with_heredocs {
        // The instruction's own (possibly continued) lines stay; its bodies and their
        // delimiters, after its last line, become comments.
        for line in view.iter_mut().take(ins.end_line).skip(ins.last_line) {
            *line = "#".to_owned();
        }
    }
    (view.join("\n"), heredoc_lines)
}

/// hadolint rules that only matter in the stage that becomes the image.
pub const FINAL_STAGE_RULES: [&str; 4] = ["DL3002", "DL3025", "DL3057", "DL3066"];

/// The line where the final stage starts (1 when there is no `FROM`).
pub fn final_stage_line(text: &str) -> usize {
    let df = Dockerfile::parse(text);
    df.final_stage()
        .map(|s| df.instructions[s.from].line)
        .unwrap_or(1)
}

/// The built-in rules only.
pub fn builtin(file: &str, text: &str) -> Vec<Finding> {
    let df = Dockerfile::parse(text);
    let stages = df.stages();
    let instructions = &df.instructions;
    let mut findings = Vec::new();
    let mut add = |line: usize, rule: &str, severity: Severity, message: String| {
        findings.push(Finding {
            file: file.to_owned(),
            line,
            rule: rule.to_owned(),
            severity,
            message,
            source: "cargo-docker-release",
        });
    };

    let mut final_from: Option<usize> = None;
    for (i, ins) in instructions.iter().enumerate() {
        match ins.keyword.as_str() {
            "FROM" => {
                final_from = Some(i);
                let stage = stages
                    .iter()
                    .find(|s| s.from == i)
                    .expect("a stage per FROM");
                // A base that names an earlier stage, or whose value depends on a build
                // argument without a default, is not an image to pin.
                if let Some(image) = &stage.base
                    && stage.parent.is_none()
                    && stage.name.as_deref() != Some(image.to_ascii_lowercase().as_str())
                {
                    check_base(image, ins.line, &mut add);
                }
            }
            "ARG" => {
                for (name, _) in ins.arg_declarations() {
                    if is_secret_name(&name) {
                        add(
                            ins.line,
                            "secret-in-arg",
                            Severity::Error,
                            format!(
                                "`ARG {name}` looks like a secret; build arguments are recorded in the image history: pass secrets at run time instead"
                            ),
                        );
                    }
                }
            }
            "ENV" => {
                for (name, _) in ins.unquoted_pairs() {
                    if is_secret_name(&name) {
                        add(
                            ins.line,
                            "secret-in-env",
                            Severity::Error,
                            format!(
                                "`ENV {name}` looks like a secret; it is readable by anyone who pulls the image: pass it at run time instead"
                            ),
                        );
                    }
                }
            }
            "ADD" => {
                let sources = ins.paths();
                let n = sources.len().saturating_sub(1);
                if let Some(url) = sources.iter().take(n).find(|s| {
                    let s = s.to_ascii_lowercase();
                    s.starts_with("http://") || s.starts_with("https://") || s.starts_with("git@")
                }) {
                    add(
                        ins.line,
                        "add-url",
                        Severity::Error,
                        format!(
                            "`ADD {url}` downloads at build time without verification; download it in a `RUN` with a checksum, or `COPY` a vendored file"
                        ),
                    );
                }
            }
            "CMD" | "ENTRYPOINT" if is_final_stage(instructions, i) && ins.json().is_none() => {
                add(
                    ins.line,
                    "shell-form",
                    Severity::Warning,
                    format!(
                        "`{}` is in shell form: it runs under `/bin/sh -c`, which does not forward signals (and does not exist on scratch or distroless); use the exec form `{} [\"/usr/local/bin/app\", \"arg\"]`",
                        ins.keyword, ins.keyword
                    ),
                );
            }
            _ => {}
        }
    }

    // Syntax the engine's built-in Dockerfile frontend may not know: a note, not a finding that
    // fails; the build step refuses it on an engine whose frontend is older.
    if df.directives.syntax.is_none() {
        for u in buildkit_syntax_of(&df) {
            if u.needs == SyntaxNeed::NewerFrontend {
                add(
                    u.line,
                    "buildkit-frontend",
                    Severity::Info,
                    format!(
                        "`{}` needs BuildKit's Dockerfile frontend 1.4 or later (built into Docker 23 and later); on an older engine, a `# syntax=docker/dockerfile:1` line makes it pull that frontend",
                        u.what
                    ),
                );
            }
        }
    }

    let Some(from) = final_from else {
        add(
            1,
            "no-from",
            Severity::Error,
            "no `FROM` instruction".into(),
        );
        return findings;
    };
    let stage = &instructions[from..];
    let from_line = stage[0].line;
    let has_sha = stage
        .iter()
        .any(|i| i.keyword == "ENV" && i.unquoted_pairs().iter().any(|(k, _)| k == "SHA"));
    if !has_sha {
        add(from_line, "no-revision", Severity::Error,
            "the final stage does not set `ENV SHA`: add `ARG SHA` and `ENV SHA=${SHA}` (cargo docker-release passes the full commit SHA as the build argument `SHA`)".into());
    }
    let labels: Vec<String> = stage
        .iter()
        .filter(|i| i.keyword == "LABEL")
        .flat_map(|i| i.unquoted_pairs().into_iter().map(|(k, _)| k))
        .collect();
    let missing: Vec<&str> = REQUIRED_LABELS
        .iter()
        .copied()
        .filter(|l| !labels.iter().any(|k| k == l))
        .collect();
    if !missing.is_empty() {
        add(
            from_line,
            "missing-labels",
            Severity::Warning,
            format!(
                "the final stage does not set the OCI labels {}; e.g. `LABEL org.opencontainers.image.revision=\"${{SHA}}\"` (the build passes SHA, VERSION and CREATED)",
                missing
                    .iter()
                    .map(|l| format!("`{l}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    match stage.iter().rev().find(|i| i.keyword == "USER") {
        None => add(from_line, "root-user", Severity::Error,
            "the final stage has no `USER`: the service runs as root; add a numeric non-root user, e.g. `USER 65532:65532`".into()),
        Some(user) => {
            let name = crate::dockerfile_syntax::unquote(user.args.trim(), user.escape);
            if crate::config::user::user_is_root(&name) {
                add(user.line, "root-user", Severity::Error, format!(
                    "`USER {name}` runs the service as root; use a numeric non-root user, e.g. `USER 65532:65532`"
                ));
            }
        }
    }
    if !stage.iter().any(|i| i.keyword == "HEALTHCHECK") {
        add(from_line, "no-healthcheck", Severity::Warning,
            "the final stage has no `HEALTHCHECK`: add an exec-form one, e.g. `HEALTHCHECK CMD [\"/usr/local/bin/app\", \"health\"]`".into());
    }
    findings
}

/// Whether instruction `i` is in the last stage.
fn is_final_stage(instructions: &[Instruction], i: usize) -> bool {
    !instructions[i + 1..].iter().any(|n| n.keyword == "FROM")
}

/// `FROM image`: pinned by a tag or digest, and not `latest`.
fn check_base(image: &str, line: usize, add: &mut impl FnMut(usize, &str, Severity, String)) {
    let lower = image.to_ascii_lowercase();
    if image.is_empty() || image.contains('$') || lower == "scratch" {
        return;
    }
    let (name, digest) = match image.split_once('@') {
        Some((n, d)) => (n, Some(d)),
        None => (image, None),
    };
    let tag = match name.rsplit_once(':') {
        Some((_, t)) if !t.contains('/') => Some(t),
        _ => None,
    };
    if tag == Some("latest") {
        add(
            line,
            "latest-base",
            Severity::Warning,
            format!(
                "`FROM {image}` uses `latest`, which moves: pin a version tag{}",
                if digest.is_none() {
                    " and its digest (`image:tag@sha256:...`)"
                } else {
                    ""
                }
            ),
        );
    } else if tag.is_none() && digest.is_none() {
        add(
            line,
            "unpinned-base",
            Severity::Warning,
            format!(
                "`FROM {image}` is not pinned: use a version tag and its digest, e.g. `{image}:1.2@sha256:...`"
            ),
        );
    }
}

/// How long hadolint may take on one Dockerfile before its findings are given up.
pub const HADOLINT_TIMEOUT: Duration = Duration::from_secs(30);

/// hadolint's findings, when it is installed (`None` otherwise), within [`HADOLINT_TIMEOUT`].
///
/// A hadolint that does not finish in time is killed and reported as a `hadolint-timeout` warning;
/// a file hadolint's stricter parser cannot read (`DL1000`) is reported as `hadolint-parse`
/// information: Docker's parser (the one [`Dockerfile::parse`] follows) decides what is a Dockerfile, so it is
/// not a finding against the file.
pub fn hadolint(file: &str, text: &str) -> Option<Vec<Finding>> {
    hadolint_within(file, text, HADOLINT_TIMEOUT)
}

/// [`hadolint`] with a chosen time limit.
pub fn hadolint_within(file: &str, text: &str, limit: Duration) -> Option<Vec<Finding>> {
    let mut child = Command::new("hadolint")
        .args(["--no-fail", "-f", "json", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let finding = |rule: &str, severity: Severity, message: String| Finding {
        file: file.to_owned(),
        line: 1,
        rule: rule.to_owned(),
        severity,
        message,
        source: "hadolint",
    };
    // stdin is written and stdout read on their own threads: a large file fills both pipes.
    let mut stdin = child.stdin.take().expect("piped");
    let input = text.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    let mut stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        out
    });
    let deadline = Instant::now() + limit;
    let finished = loop {
        match child.try_wait() {
            Ok(Some(_)) => break true,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) | Err(_) => break false,
        }
    };
    if !finished {
        let _ = child.kill();
        let _ = child.wait();
        let _ = writer.join();
        let _ = reader.join();
        return Some(vec![finding(
            "hadolint-timeout",
            Severity::Warning,
            format!(
                "hadolint did not finish within {}s and was stopped; its rules were not applied",
                limit.as_secs_f64()
            ),
        )]);
    }
    let _ = writer.join();
    let stdout = reader.join().unwrap_or_default();
    #[derive(serde::Deserialize)]
    struct Raw {
        code: String,
        level: String,
        line: usize,
        message: String,
    }
    let raw: Vec<Raw> = serde_json::from_slice(&stdout).ok()?;
    Some(
        raw.into_iter()
            .map(|r| {
                if r.code == "DL1000" {
                    return Finding {
                        line: r.line.max(1),
                        ..finding(
                            "hadolint-parse",
                            Severity::Info,
                            format!(
                                "hadolint cannot parse this file ({}), but Docker's parser can; hadolint's rules were not applied",
                                r.message.lines().next().unwrap_or("parse error").trim()
                            ),
                        )
                    };
                }
                Finding {
                    file: file.to_owned(),
                    line: r.line,
                    rule: r.code,
                    severity: match r.level.as_str() {
                        "error" => Severity::Error,
                        "warning" => Severity::Warning,
                        "info" => Severity::Info,
                        _ => Severity::Style,
                    },
                    message: r.message,
                    source: "hadolint",
                }
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Item 2 of issue 12: no spelling of uid 0 passes the root-user rule.
    #[test]
    fn root_user_rule_sees_every_spelling_of_uid_zero() {
        for user in [
            "0",
            "00",
            "+0",
            "-0",
            "0000:1",
            "root",
            "\"0\"",
            "root:root",
        ] {
            let text = format!("FROM scratch\nUSER {user}\n");
            assert!(
                builtin("f", &text).iter().any(|f| f.rule == "root-user"),
                "USER {user}"
            );
        }
        let text = "FROM scratch\nUSER 65532:0\n";
        assert!(!builtin("f", text).iter().any(|f| f.rule == "root-user"));
    }

    #[test]
    fn findings_print_without_control_characters() {
        let f = Finding {
            file: "Dockerfile".into(),
            line: 1,
            rule: "x".into(),
            severity: Severity::Error,
            message: format!("`USER \u{1b}[2J{}`", "y".repeat(1 << 20)),
            source: "cargo-docker-release",
        };
        let shown = f.to_string();
        assert!(
            !shown.contains('\u{1b}') && shown.len() < 1000,
            "{}",
            shown.len()
        );
    }

    #[test]
    fn buildkit_flags_and_heredocs_are_named_with_what_they_need() {
        let text = "FROM a:1 AS b\nCOPY --chmod=755 --from=b [\"x\", \"/x\"]\nRUN --mount=type=cache,target=/c cargo build\nRUN <<EOF\nFROM evil\nUSER root\nEOF\nCOPY --link <<-EOT /etc/motd\n\thello\n\tEOT\nUSER 1:1\n";
        let all = buildkit_syntax(text);
        let what: Vec<(usize, &str)> = all.iter().map(|s| (s.line, s.what.as_str())).collect();
        assert_eq!(
            what,
            [
                (2, "COPY --chmod"),
                (3, "RUN --mount"),
                (4, "RUN heredoc"),
                (8, "COPY --link"),
                (8, "COPY heredoc")
            ]
        );
        assert_eq!(all[0].needs, SyntaxNeed::BuildKit);
        assert_eq!(all[2].needs, SyntaxNeed::NewerFrontend);
        assert!(!has_syntax_directive(text));
        assert!(has_syntax_directive(
            "# syntax=docker/dockerfile:1.7\nFROM a\n"
        ));
        // The heredoc's body is not the final stage's `USER`.
        assert!(!builtin("f", text).iter().any(|f| f.rule == "root-user"));
    }

    #[test]
    fn bases_are_expanded_with_the_global_args_defaults() {
        let rules = |text: &str| -> Vec<String> {
            builtin("f", text)
                .into_iter()
                .filter(|f| f.rule.ends_with("-base"))
                .map(|f| format!("{}:{}", f.line, f.rule))
                .collect()
        };
        assert_eq!(
            rules(
                "ARG IMG=rust\nARG TAG=latest\nFROM ${IMG}:${TAG} AS build\nFROM build\nFROM $IMG\nFROM ${IMG}:${UNSET:-1.80}\nARG IMG=other\nFROM scratch\n"
            ),
            ["3:latest-base", "5:unpinned-base"]
        );
        // Without a default, the build decides: nothing to say.
        assert!(rules("ARG TAG\nFROM rust:$TAG\nFROM $TAG\n").is_empty());
        // A continued `FROM` with the escape directive's character.
        assert_eq!(
            rules("# escape=`\nFROM `\n  rust:latest\n"),
            ["2:latest-base"]
        );
    }

    #[test]
    fn hadolint_reads_heredoc_bodies_as_comments_with_every_line_in_place() {
        let text = "FROM a:1\nRUN <<EOF\nset -e\nUSER root\nEOF\nUSER 1:1\n";
        let (view, lines) = hadolint_view(text);
        assert_eq!(view, "FROM a:1\nRUN <<EOF\n#\n#\n#\nUSER 1:1\n");
        assert_eq!(lines, [2]);
        let plain = "FROM a:1\nUSER 1:1\n";
        assert_eq!(hadolint_view(plain), (plain.to_owned(), Vec::new()));
    }

    #[test]
    fn secret_names() {
        for s in [
            "GITHUB_TOKEN",
            "DB_PASSWORD",
            "AWS_SECRET_ACCESS_KEY",
            "API_KEY",
        ] {
            assert!(is_secret_name(s), "{s}");
        }
        for s in ["SHA", "RUST_LOG", "KEYBOARD", "PORT"] {
            assert!(!is_secret_name(s), "{s}");
        }
    }
}
