//! The lint of a Dockerfile: built-in rules on a careful parse of the classic syntax, plus
//! hadolint's findings when `hadolint` is on `PATH`.
//!
//! The parser follows Docker's own (moby/buildkit `frontend/dockerfile/parser`): the `escape`
//! parser directive, line continuations (the escape character before the end of a line),
//! comment and empty lines inside continuations, and words split at white space outside quotes.
//! BuildKit's syntax is read too: instruction flags (`--chmod`, `--link`, `--mount`, `--from`,
//! ...; [`Instruction::flags`]) and heredocs (`RUN <<EOF`, whose body lines are not
//! instructions); [`buildkit_syntax`] says which lines need BuildKit, and which need a newer
//! Dockerfile frontend than the one built into Docker 20.10. It is a small hand parser
//! rather than a crate because the rules need exact start lines and the raw words (the
//! `dockerfile-parser` crate targets an older grammar and pulls in a PEG runtime for no gain here).

use std::fmt;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

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

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// The keyword, upper-case (`FROM`, `RUN`, ...).
    pub keyword: String,
    /// Everything after the keyword, continuations joined.
    pub args: String,
    /// The bodies of its heredocs (`<<EOF` ... `EOF`), in order.
    pub heredocs: Vec<String>,
}

impl Instruction {
    /// The leading `--name[=value]` flags (`COPY --chmod=755 --from=builder ...`).
    pub fn flags(&self) -> Vec<(&str, Option<&str>)> {
        strip_flags(&self.args)
            .0
            .into_iter()
            .map(|f| {
                let f = &f[2..];
                match f.split_once('=') {
                    Some((name, value)) => (name, Some(value)),
                    None => (f, None),
                }
            })
            .collect()
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
    let mut out = Vec::new();
    for ins in parse(text) {
        let keyword = ins.keyword.as_str();
        for (flag, _) in ins.flags() {
            let needs = match (keyword, flag) {
                ("RUN", "mount" | "network" | "security") | ("COPY" | "ADD", "chmod") => {
                    SyntaxNeed::BuildKit
                }
                ("COPY" | "ADD", "link" | "parents" | "exclude")
                | ("ADD", "checksum" | "keep-git-dir") => SyntaxNeed::NewerFrontend,
                _ => continue,
            };
            out.push(BuildKitSyntax {
                line: ins.line,
                what: format!("{keyword} --{flag}"),
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

/// Whether the file names its Dockerfile frontend (`# syntax=...`), which then decides what it
/// supports instead of the engine's built-in one.
pub fn has_syntax_directive(text: &str) -> bool {
    text.lines()
        .take_while(|l| l.trim_start().starts_with('#'))
        .any(|l| directive(l, "syntax").is_some())
}

/// The heredoc delimiters an instruction's text opens (`<<EOF`, `<<-EOF`, `<<"EOF"`), each with
/// whether leading tabs are stripped from its body.
fn heredoc_delimiters(keyword: &str, args: &str) -> Vec<(String, bool)> {
    if !matches!(keyword, "RUN" | "COPY" | "ADD") {
        return Vec::new();
    }
    let mut out = Vec::new();
    let mut rest = args;
    while let Some(i) = rest.find("<<") {
        let after = &rest[i + 2..];
        let (strip_tabs, after) = match after.strip_prefix('-') {
            Some(a) => (true, a),
            None => (false, after),
        };
        let word: String = after.chars().take_while(|c| !c.is_whitespace()).collect();
        let name: String = word
            .trim_matches(|c| c == '"' || c == '\'')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        // `<<` not followed by a word (a shell `<<<`, `1<<2`) is not a heredoc.
        if !name.is_empty() && name.chars().next().is_some_and(|c| !c.is_ascii_digit()) {
            out.push((name, strip_tabs));
        }
        rest = &after[word.len().min(after.len())..];
    }
    out
}

/// Splits a Dockerfile into instructions, as Docker's classic parser does.
pub fn parse(text: &str) -> Vec<Instruction> {
    let mut escape = '\\';
    let mut directives_allowed = true;
    let mut out = Vec::new();
    let mut lines = text.split('\n').enumerate().peekable();
    let continues = |line: &str, escape: char| -> Option<String> {
        let trimmed = line.trim_end_matches([' ', '\t', '\r']);
        trimmed.strip_suffix(escape).map(|rest| rest.to_owned())
    };
    let is_comment = |line: &str| line.trim_start().starts_with('#');
    while let Some((index, raw)) = lines.next() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let raw = if index == 0 {
            raw.strip_prefix('\u{feff}').unwrap_or(raw)
        } else {
            raw
        };
        if directives_allowed {
            if let Some(value) = directive(raw, "escape") {
                if let Some(c) = value.chars().next() {
                    escape = c;
                }
                continue;
            }
            if directive(raw, "syntax").is_some() || directive(raw, "check").is_some() {
                continue;
            }
            directives_allowed = false;
        }
        let first = raw.trim_start();
        if first.is_empty() || is_comment(first) {
            continue;
        }
        let mut logical = String::new();
        let mut current = first.to_owned();
        loop {
            match continues(&current, escape) {
                Some(rest) => {
                    logical.push_str(&rest);
                    // Comment and empty lines inside a continuation are skipped.
                    let mut next = None;
                    for (_, line) in lines.by_ref() {
                        let line = line.strip_suffix('\r').unwrap_or(line);
                        if is_comment(line) || line.trim().is_empty() {
                            continue;
                        }
                        next = Some(line.to_owned());
                        break;
                    }
                    match next {
                        Some(n) => current = n,
                        None => break,
                    }
                }
                None => {
                    logical.push_str(&current);
                    break;
                }
            }
        }
        let logical = logical.trim();
        let (keyword, args) = match logical.split_once(|c: char| c.is_whitespace()) {
            Some((k, a)) => (k, a.trim_start()),
            None => (logical, ""),
        };
        let keyword = keyword.to_ascii_uppercase();
        // BuildKit's heredocs: the body lines up to each delimiter belong to the instruction.
        let mut heredocs = Vec::new();
        for (name, strip_tabs) in heredoc_delimiters(&keyword, args) {
            let mut body = String::new();
            for (_, line) in lines.by_ref() {
                let line = line.strip_suffix('\r').unwrap_or(line);
                let line = if strip_tabs {
                    line.trim_start_matches('\t')
                } else {
                    line
                };
                if line == name {
                    break;
                }
                body.push_str(line);
                body.push('\n');
            }
            heredocs.push(body);
        }
        out.push(Instruction {
            line: index + 1,
            keyword,
            args: args.to_owned(),
            heredocs,
        });
    }
    out
}

/// `# name=value` parser directive.
fn directive<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
}

/// Words split at white space outside quotes, quotes and escapes kept (buildkit's `parseWords`).
pub fn words(args: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    blank_ok = true;
                }
                word.push(c);
                if c == '\\'
                    && let Some(n) = chars.next()
                {
                    word.push(n);
                }
            }
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == '\\'
                    && q == '"'
                    && let Some(n) = chars.next()
                {
                    word.push(n);
                }
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// A word with its quotes and escapes removed (variables are left as written).
pub fn unquote(word: &str) -> String {
    let mut out = String::new();
    let mut chars = word.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(n) = chars.next() {
                    out.push(n);
                }
            }
            '\'' => {
                for n in chars.by_ref() {
                    if n == '\'' {
                        break;
                    }
                    out.push(n);
                }
            }
            '"' => {
                while let Some(n) = chars.next() {
                    match n {
                        '"' => break,
                        '\\' if matches!(chars.peek(), Some('"' | '$' | '\\')) => {
                            out.push(chars.next().expect("peeked"));
                        }
                        _ => out.push(n),
                    }
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The context paths a Dockerfile's `COPY`/`ADD` instructions read (not `--from` copies, not
/// URLs), as written (relative to the context root, leading `/` and `./` dropped). A path with a
/// wildcard is cut before its first wildcard component: its directory is what it may read.
pub fn copied_sources(text: &str) -> Vec<String> {
    let mut sources = Vec::new();
    for instruction in parse(text) {
        if instruction.keyword != "COPY" && instruction.keyword != "ADD" {
            continue;
        }
        let args = instruction.args.trim();
        let mut words: Vec<String> = if args.starts_with('[') {
            match serde_json::from_str::<Vec<String>>(args) {
                Ok(w) => w,
                Err(_) => continue,
            }
        } else {
            words(args).iter().map(|w| unquote(w)).collect()
        };
        let flags = words.iter().take_while(|w| w.starts_with("--")).count();
        if words[..flags].iter().any(|f| f.starts_with("--from")) {
            continue;
        }
        words.drain(..flags);
        words.pop(); // the destination
        for source in words {
            if source.contains("://") || source.starts_with("git@") {
                continue;
            }
            let mut kept = Vec::new();
            for part in source.trim_start_matches('/').split('/') {
                if part.contains(['*', '?', '[']) {
                    break;
                }
                if part.is_empty() || part == "." {
                    continue;
                }
                kept.push(part);
            }
            sources.push(kept.join("/"));
        }
    }
    sources.sort();
    sources.dedup();
    sources
}

/// `KEY=VALUE ...` or the old `KEY VALUE` form of `ENV`/`LABEL`: the unquoted keys and values.
pub fn key_values(args: &str) -> Vec<(String, String)> {
    let words = words(args);
    match words.first() {
        None => Vec::new(),
        Some(first) if !first.contains('=') => {
            let rest = args.trim_start()[first.len()..].trim();
            vec![(unquote(first), unquote(rest))]
        }
        Some(_) => words
            .iter()
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (unquote(k), unquote(v)))
            .collect(),
    }
}

/// Leading `--flag[=value]` words of an instruction, and the rest.
fn strip_flags(args: &str) -> (Vec<&str>, &str) {
    let mut flags = Vec::new();
    let mut rest = args.trim_start();
    while rest.starts_with("--") {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        flags.push(&rest[..end]);
        rest = rest[end..].trim_start();
    }
    (flags, rest)
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
    let heredoc_lines: Vec<usize> = parse(text)
        .iter()
        .filter(|i| !i.heredocs.is_empty())
        .map(|i| i.line)
        .collect();
    if heredoc_lines.is_empty() {
        return (text.to_owned(), heredoc_lines);
    }
    let lines: Vec<&str> = text.split('\n').collect();
    let mut view: Vec<String> = lines.iter().map(|l| (*l).to_owned()).collect();
    let instructions = parse(text);
    for (k, ins) in instructions.iter().enumerate() {
        if ins.heredocs.is_empty() {
            continue;
        }
        // The body runs from the instruction's last line to the line before the next
        // instruction; its own (possibly continued) lines stay, the rest become comments.
        let own_lines = 1 + text
            .split('\n')
            .skip(ins.line - 1)
            .take_while(|l| l.trim_end().ends_with('\\'))
            .count();
        let body_start = ins.line - 1 + own_lines;
        let end = instructions
            .get(k + 1)
            .map_or(lines.len(), |next| next.line - 1);
        let delimiters: Vec<(String, bool)> = heredoc_delimiters(&ins.keyword, &ins.args);
        let mut remaining = delimiters.len();
        for (n, line) in view.iter_mut().enumerate().take(end).skip(body_start) {
            if remaining == 0 {
                break;
            }
            let trimmed = lines[n].trim_end_matches('\r').trim_start_matches('\t');
            if delimiters.iter().any(|(d, _)| d == trimmed) {
                remaining -= 1;
            }
            *line = "#".to_owned();
        }
    }
    (view.join("\n"), heredoc_lines)
}

/// hadolint rules that only matter in the stage that becomes the image.
pub const FINAL_STAGE_RULES: [&str; 4] = ["DL3002", "DL3025", "DL3057", "DL3066"];

/// The line where the final stage starts (1 when there is no `FROM`).
pub fn final_stage_line(text: &str) -> usize {
    parse(text)
        .iter()
        .rev()
        .find(|i| i.keyword == "FROM")
        .map(|i| i.line)
        .unwrap_or(1)
}

/// The built-in rules only.
pub fn builtin(file: &str, text: &str) -> Vec<Finding> {
    let instructions = parse(text);
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

    let mut stages: Vec<String> = Vec::new();
    let mut global_args: Vec<(String, String)> = Vec::new();
    let mut final_from: Option<usize> = None;
    for (i, ins) in instructions.iter().enumerate() {
        match ins.keyword.as_str() {
            "FROM" => {
                final_from = Some(i);
                let (_, rest) = strip_flags(&ins.args);
                let parts: Vec<&str> = rest.split_whitespace().collect();
                let image = expand(parts.first().copied().unwrap_or(""), &global_args);
                if let [_, as_kw, name] = parts.as_slice()
                    && as_kw.eq_ignore_ascii_case("as")
                {
                    stages.push(name.to_ascii_lowercase());
                }
                check_base(&image, &stages, ins.line, &mut add);
            }
            "ARG" => {
                for word in words(&ins.args) {
                    let (name, value) = match word.split_once('=') {
                        Some((n, v)) => (n.to_owned(), unquote(v)),
                        None => (word.clone(), String::new()),
                    };
                    if final_from.is_none() {
                        global_args.push((name.clone(), value));
                    }
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
                for (name, _) in key_values(&ins.args) {
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
                let (_, rest) = strip_flags(&ins.args);
                let sources: Vec<String> = if rest.trim_start().starts_with('[') {
                    serde_json::from_str::<Vec<String>>(rest).unwrap_or_default()
                } else {
                    rest.split_whitespace().map(str::to_owned).collect()
                };
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
            "CMD" | "ENTRYPOINT"
                if is_final_stage(&instructions, i)
                    && serde_json::from_str::<Vec<String>>(ins.args.trim()).is_err() =>
            {
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
    if !has_syntax_directive(text) {
        for u in buildkit_syntax(text) {
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
        .any(|i| i.keyword == "ENV" && key_values(&i.args).iter().any(|(k, _)| k == "SHA"));
    if !has_sha {
        add(from_line, "no-revision", Severity::Error,
            "the final stage does not set `ENV SHA`: add `ARG SHA` and `ENV SHA=${SHA}` (cargo docker-release passes the full commit SHA as the build argument `SHA`)".into());
    }
    let labels: Vec<String> = stage
        .iter()
        .filter(|i| i.keyword == "LABEL")
        .flat_map(|i| key_values(&i.args).into_iter().map(|(k, _)| k))
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
            let name = unquote(user.args.trim());
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

/// `$NAME`/`${NAME}` replaced by the default of a global `ARG`.
fn expand(word: &str, args: &[(String, String)]) -> String {
    let mut out = word.to_owned();
    for (name, value) in args {
        out = out
            .replace(&format!("${{{name}}}"), value)
            .replace(&format!("${name}"), value);
    }
    out
}

/// `FROM image`: pinned by a tag or digest, and not `latest`.
fn check_base(
    image: &str,
    stages: &[String],
    line: usize,
    add: &mut impl FnMut(usize, &str, Severity, String),
) {
    let lower = image.to_ascii_lowercase();
    if image.is_empty() || image.contains('$') || lower == "scratch" || stages.contains(&lower) {
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
/// information: Docker's parser (the one [`parse`] follows) decides what is a Dockerfile, so it is
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

    #[test]
    fn continuations_comments_and_start_lines() {
        let text = "# escape=\\\nFROM a:1 AS b\n\nRUN x \\\n  # comment\n\n  y\nLABEL \"k k\"=\"v \\\" v\" j=1\n";
        let ins = parse(text);
        assert_eq!(ins.len(), 3);
        assert_eq!((ins[1].line, ins[1].args.as_str()), (4, "x   y"));
        assert_eq!(ins[2].line, 8);
        assert_eq!(
            key_values(&ins[2].args),
            vec![("k k".into(), "v \" v".into()), ("j".into(), "1".into())]
        );
    }

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
    fn buildkit_flags_and_heredocs_are_parsed_not_taken_for_instructions() {
        let text = "FROM a:1 AS b\nCOPY --chmod=755 --from=b [\"x\", \"/x\"]\nRUN --mount=type=cache,target=/c cargo build\nRUN <<EOF\nFROM evil\nUSER root\nEOF\nCOPY --link <<-EOT /etc/motd\n\thello\n\tEOT\nUSER 1:1\n";
        let ins = parse(text);
        let keywords: Vec<&str> = ins.iter().map(|i| i.keyword.as_str()).collect();
        assert_eq!(keywords, ["FROM", "COPY", "RUN", "RUN", "COPY", "USER"]);
        assert_eq!(
            ins[1].flags(),
            [("chmod", Some("755")), ("from", Some("b"))]
        );
        assert_eq!(ins[3].heredocs, ["FROM evil\nUSER root\n"]);
        assert_eq!(ins[4].heredocs, ["hello\n"]);
        assert_eq!(ins[5].line, 11);
        let all = buildkit_syntax(text);
        let what: Vec<&str> = all.iter().map(|s| s.what.as_str()).collect();
        assert_eq!(
            what,
            [
                "COPY --chmod",
                "RUN --mount",
                "RUN heredoc",
                "COPY --link",
                "COPY heredoc"
            ]
        );
        assert_eq!(all[0].needs, SyntaxNeed::BuildKit);
        assert_eq!(all[2].needs, SyntaxNeed::NewerFrontend);
        assert!(!has_syntax_directive(text));
        assert!(has_syntax_directive(
            "# syntax=docker/dockerfile:1.7\nFROM a\n"
        ));
        assert!(heredoc_delimiters("RUN", "echo $((1<<2)) <<< x").is_empty());
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
