//! `COPY`/`ADD` sources the build context leaves out, found before the build.
//!
//! The engine only says `"/secrets/server.pem": not found` once it reaches the step, after
//! everything before it was built; the file is there on disk, and nothing says that a
//! `.dockerignore` pattern dropped it. [`excluded_sources`] reads the sources with the one
//! Dockerfile tokenizer ([`crate::dockerfile_syntax`]: not `--from` copies, not heredoc bodies,
//! not URLs; variables expanded with the build arguments) and asks the context's rules about
//! each one that exists: a source left out, or under a directory left out, or a wildcard whose
//! every match is left out, is named with the pattern that dropped it.

use std::collections::BTreeMap;
use std::ops::Range;

use camino::{Utf8Path, Utf8PathBuf};

use super::rules::{self, Cause, ContextRules};
use crate::dockerfile_syntax::{BuildArgs, sources::context_sources};
use crate::error::{Error, ManifestError, Result};

/// The files of a context directory, as [`excluded_sources`] needs them.
pub trait ContextTree {
    /// Whether `path` (relative, `/`-separated) exists: `Some(true)` for a directory.
    fn kind(&self, path: &str) -> Option<bool>;
    /// The names in directory `dir` (`""` is the root).
    fn names(&self, dir: &str) -> Vec<String>;
    /// Whether directory `dir` is one of cargo's target directories.
    fn is_cargo_target(&self, dir: &str) -> bool;
}

/// A context directory on disk.
#[derive(Debug, Clone)]
pub struct DiskTree {
    /// The context root.
    pub root: Utf8PathBuf,
}

impl ContextTree for DiskTree {
    /// Never through a link: a path under a symbolic link is not looked at (it may lead out of
    /// the context).
    fn kind(&self, path: &str) -> Option<bool> {
        let mut at = self.root.clone();
        let mut is_dir = true;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            if !is_dir {
                return None;
            }
            at.push(part);
            is_dir = std::fs::symlink_metadata(&at).ok()?.is_dir();
        }
        Some(is_dir)
    }

    fn names(&self, dir: &str) -> Vec<String> {
        if self.kind(dir) != Some(true) {
            return Vec::new();
        }
        let Ok(entries) = std::fs::read_dir(self.root.join(dir)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    fn is_cargo_target(&self, dir: &str) -> bool {
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let full = self.root.join(dir);
        super::is_cargo_target(
            name,
            self.root.join(parent).join("Cargo.toml").exists(),
            &full,
        )
    }
}

/// A context given as its file paths (directories implied), for tests and callers that already
/// listed it. Cargo's target directories are those beside a `Cargo.toml` or holding a
/// `CACHEDIR.TAG`, as on disk.
impl ContextTree for [&str] {
    fn kind(&self, path: &str) -> Option<bool> {
        let dir = format!("{path}/");
        if self.contains(&path) {
            Some(false)
        } else if path.is_empty() || self.iter().any(|f| f.starts_with(&dir)) {
            Some(true)
        } else {
            None
        }
    }

    fn names(&self, dir: &str) -> Vec<String> {
        let prefix = if dir.is_empty() {
            String::new()
        } else {
            format!("{dir}/")
        };
        let mut names: Vec<String> = self
            .iter()
            .filter_map(|f| f.strip_prefix(prefix.as_str()))
            .map(|rest| rest.split('/').next().unwrap_or(rest).to_owned())
            .collect();
        names.sort();
        names.dedup();
        names
    }

    fn is_cargo_target(&self, dir: &str) -> bool {
        let (parent, name) = dir.rsplit_once('/').unwrap_or(("", dir));
        let manifest = if parent.is_empty() {
            "Cargo.toml".to_owned()
        } else {
            format!("{parent}/Cargo.toml")
        };
        (name == "target" && self.contains(&manifest.as_str()))
            || self.contains(&format!("{dir}/CACHEDIR.TAG").as_str())
    }
}

/// A `COPY`/`ADD` source that the build context leaves out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excluded {
    /// 1-based line of the instruction.
    pub line: usize,
    /// `COPY` or `ADD`.
    pub keyword: String,
    /// The source as written.
    pub source: String,
    /// The context path left out (a match of the source when it has a wildcard).
    pub path: String,
    /// Why.
    pub cause: Cause,
    /// Bytes of the source in the Dockerfile.
    pub span: Range<usize>,
}

/// Most files named for one wildcard source.
const MAX_NAMED: usize = 5;

/// The sources of `dockerfile` (variables expanded with `build_args`) that exist in `tree` and
/// that `rules` leave out of the context, in order. A directory source that the rules leave out
/// counts only when no exception sends anything under it; a wildcard source counts when it
/// matches files and every one is left out (each named, up to a few).
pub fn excluded_sources(
    dockerfile: &str,
    build_args: &BTreeMap<String, String>,
    rules: &ContextRules,
    tree: &(impl ContextTree + ?Sized),
) -> Vec<Excluded> {
    let mut out = Vec::new();
    for source in context_sources(dockerfile, BuildArgs::Given(build_args)) {
        let Ok(path) = &source.path else {
            continue;
        };
        let Some(path) = clean(path) else { continue };
        let found = |path: String, cause: Cause| Excluded {
            line: source.line,
            keyword: source.keyword.clone(),
            source: source.written.clone(),
            path,
            cause,
            span: source.span.clone(),
        };
        if path.is_empty() || path == super::DOCKERFILE {
            continue;
        }
        if !has_wildcard(&path) {
            if let Some(is_dir) = tree.kind(&path)
                && let Some(cause) = left_out(&path, is_dir, rules, tree)
            {
                out.push(found(path, cause));
            }
            continue;
        }
        let matches = glob(&path, tree);
        let causes: Vec<(String, Cause)> = matches
            .iter()
            .filter_map(|(m, is_dir)| Some((m.clone(), left_out(m, *is_dir, rules, tree)?)))
            .collect();
        if !matches.is_empty() && causes.len() == matches.len() {
            out.extend(
                causes
                    .into_iter()
                    .take(MAX_NAMED)
                    .map(|(m, cause)| found(m, cause)),
            );
        }
    }
    out
}

/// Why `path` is not sent, if it is not: it or a directory above it is `.git`, a cargo target
/// directory, or left out by the rules with no exception reaching below.
fn left_out(
    path: &str,
    is_dir: bool,
    rules: &ContextRules,
    tree: &(impl ContextTree + ?Sized),
) -> Option<Cause> {
    let parts: Vec<&str> = path.split('/').collect();
    for k in 1..=parts.len() {
        let prefix = parts[..k].join("/");
        let dir = k < parts.len() || is_dir;
        if let Some(cause) = rules::fixed_exclusion(&prefix, dir, || tree.is_cargo_target(&prefix))
        {
            return Some(cause);
        }
        if let rules::Verdict::Left(cause) = rules.verdict(&prefix)
            && !(dir && rules.may_include_under(&prefix))
        {
            return Some(cause);
        }
    }
    None
}

/// A source relative to the context root: leading `/` and `./`, `.` parts and `..` above the
/// root dropped, as the builder resolves it (`None` for an empty source).
fn clean(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    (!path.is_empty()).then(|| parts.join("/"))
}

fn has_wildcard(path: &str) -> bool {
    path.contains(['*', '?', '['])
}

/// The paths of `tree` that `pattern` (components matched as Go's `filepath.Match` does)
/// matches, with whether each is a directory.
fn glob(pattern: &str, tree: &(impl ContextTree + ?Sized)) -> Vec<(String, bool)> {
    let mut current: Vec<String> = vec![String::new()];
    let parts: Vec<&str> = pattern.split('/').collect();
    for (k, part) in parts.iter().enumerate() {
        let last = k + 1 == parts.len();
        let mut next = Vec::new();
        for dir in &current {
            let join = |name: &str| {
                if dir.is_empty() {
                    name.to_owned()
                } else {
                    format!("{dir}/{name}")
                }
            };
            if has_wildcard(part) {
                for name in tree.names(dir) {
                    if component_matches(part, &name) {
                        next.push(join(&name));
                    }
                }
            } else {
                next.push(join(&unescape(part)));
            }
        }
        current = next
            .into_iter()
            .filter(|p| tree.kind(p).is_some_and(|is_dir| last || is_dir))
            .collect();
    }
    current
        .into_iter()
        .map(|p| {
            let is_dir = tree.kind(&p).unwrap_or(false);
            (p, is_dir)
        })
        .collect()
}

fn unescape(part: &str) -> String {
    let mut out = String::new();
    let mut chars = part.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Go's `filepath.Match` for one component: `*`, `?`, `[a-z]`, `[^a]`, `\` escapes.
fn component_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('*') => (0..=n.len()).any(|k| go(&p[1..], &n[k..])),
            Some('?') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('[') => {
                let Some(&c) = n.first() else { return false };
                let mut i = 1;
                let negated = matches!(p.get(i), Some('^' | '!'));
                if negated {
                    i += 1;
                }
                let mut hit = false;
                let mut first = true;
                loop {
                    match p.get(i) {
                        None => return false,
                        Some(']') if !first => break,
                        _ => {}
                    }
                    first = false;
                    let mut lo = p[i];
                    if lo == '\\' {
                        i += 1;
                        let Some(&e) = p.get(i) else { return false };
                        lo = e;
                    }
                    i += 1;
                    let mut hi = lo;
                    if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|c| *c != ']') {
                        hi = p[i + 1];
                        if hi == '\\' {
                            let Some(&e) = p.get(i + 2) else { return false };
                            hi = e;
                            i += 1;
                        }
                        i += 2;
                    }
                    if lo <= c && c <= hi {
                        hit = true;
                    }
                }
                hit != negated && go(&p[i + 1..], &n[1..])
            }
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(&c) => n.first() == Some(&c) && go(&p[1..], &n[1..]),
        }
    }
    go(&p, &n)
}

/// Refuses, before anything is built, a Dockerfile whose `COPY`/`ADD` reads what the build
/// context leaves out: each such source named with its line, the file and the pattern that
/// dropped it, and how to send it (exit 2).
///
/// `context` is the context directory, `dockerfile_path` a hand-written Dockerfile (its
/// `<Dockerfile>.dockerignore` is the user's file when it exists), `dockerfile_name` the name
/// shown, `builtin` the built-in `.dockerignore` text and `build_args` what the build passes.
pub fn check_copy_sources(
    context: &Utf8Path,
    dockerfile_path: Option<&Utf8Path>,
    dockerfile_name: &str,
    dockerfile: &str,
    builtin: &str,
    build_args: &BTreeMap<String, String>,
) -> Result<()> {
    let rules = super::context_rules(context, builtin, dockerfile_path)?;
    let tree = DiskTree {
        root: context.to_owned(),
    };
    let excluded = excluded_sources(dockerfile, build_args, &rules, &tree);
    let Some(first) = excluded.first() else {
        return Ok(());
    };
    let describe = |e: &Excluded| {
        let what = if e.source == e.path {
            String::new()
        } else {
            format!(": `{}`", e.path)
        };
        format!(
            "{dockerfile_name}:{}: `{} {}`{what} is left out of the build context by {}",
            e.line, e.keyword, e.source, e.cause
        )
    };
    let message = match excluded.as_slice() {
        [one] => describe(one),
        all => format!(
            "{} COPY/ADD sources are left out of the build context:\n{}",
            all.len(),
            all.iter()
                .map(|e| format!("  {}", describe(e)))
                .collect::<Vec<_>>()
                .join("\n")
        ),
    };
    let mut helps: Vec<String> = Vec::new();
    for e in &excluded {
        let help = fix_for(e, rules.user_file());
        if !helps.contains(&help) {
            helps.push(help);
        }
    }
    let label = match &first.cause {
        Cause::User { pattern, .. } | Cause::Builtin(pattern) => {
            format!("left out by `{pattern}`")
        }
        Cause::Git => "under `.git`, never sent".to_owned(),
        Cause::CargoTarget(_) => "in cargo's target directory, never sent".to_owned(),
    };
    Err(Error::ExcludedSource(
        ManifestError::new(
            dockerfile_name,
            dockerfile,
            Some(first.span.clone()),
            message,
        )
        .label(label)
        .help(helps.join("\n")),
    ))
}

/// How to send what `e` names, or stop copying it.
fn fix_for(e: &Excluded, user_file: &str) -> String {
    match &e.cause {
        Cause::User { file, pattern, .. } => format!(
            "remove or narrow `{pattern}` in {file}, or add the exception `!{}` after it; or stop copying it",
            e.path
        ),
        Cause::Builtin(pattern) => format!(
            "the built-in pattern `{pattern}` keeps secrets and build outputs out of the context; to send `{0}` anyway, add the exception `!{0}` to {user_file} (an exception that names the file wins); or stop copying it",
            e.path
        ),
        Cause::Git => "`.git` is never sent: the build gets the commit as the build argument `SHA` (declare `ARG SHA`)".to_owned(),
        Cause::CargoTarget(_) => "cargo's target directories are never sent: build the binary in the Dockerfile, or use `strategy = \"host\"`, which builds on the host and sends only the binary".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::build_context::DockerIgnore;

    fn rules(user: &str) -> ContextRules {
        ContextRules::new(
            DockerIgnore::parse(&crate::dockerfile::render::dockerignore("app")).unwrap(),
            Some((
                Utf8PathBuf::from("/ctx/.dockerignore"),
                DockerIgnore::parse(user).unwrap(),
            )),
            Utf8Path::new("/ctx"),
        )
    }

    const TREE: &[&str] = &[
        "Cargo.toml",
        "src/main.rs",
        "a/keep.pem",
        "a/b/y.txt",
        "secrets/server.pem",
        "secrets/other.pem",
        ".env",
        "conf/app.toml",
        "docs/guide.md",
        "docs/keep/README.md",
        "target/release/app",
        ".git/HEAD",
    ];

    fn found(dockerfile: &str, user: &str) -> Vec<(usize, String, String)> {
        excluded_sources(dockerfile, &BTreeMap::new(), &rules(user), TREE)
            .into_iter()
            .map(|e| (e.line, e.path, e.cause.to_string()))
            .collect()
    }

    #[test]
    fn sources_the_context_leaves_out_are_named_with_their_pattern() {
        let user = "**/*.pem\n!a/keep.pem\ndocs\n!docs/keep\n";
        let dockerfile = "FROM scratch\nCOPY . /ctx/\nCOPY a/keep.pem src /x/\nCOPY secrets/server.pem /etc/\nCOPY [\"./.env\", \"/app/\"]\nCOPY --from=build /a/.env /x\nCOPY <<EOF /etc/motd\n.env\nEOF\nADD https://example.com/.env /x\nCOPY missing.pem docs /d/\nCOPY target/release/app .git/HEAD /bin/\n";
        assert_eq!(
            found(dockerfile, user),
            [
                (
                    4,
                    "secrets/server.pem".into(),
                    "`**/*.pem` (.dockerignore:1)".into()
                ),
                (5, ".env".into(), "the built-in pattern `.env`".into()),
                (
                    12,
                    "target/release/app".into(),
                    "the rule that cargo's target directory (`target`) is never sent".into()
                ),
                (
                    12,
                    ".git/HEAD".into(),
                    "the rule that `.git` is never sent".into()
                ),
            ]
        );
        // `COPY docs` above is not refused: `!docs/keep` sends part of it. `docs/guide.md` is.
        assert_eq!(
            found("FROM scratch\nCOPY docs/guide.md /d/\n", user)[0].2,
            "`docs` (.dockerignore:3)"
        );
    }

    #[test]
    fn wildcards_count_when_every_match_is_left_out_and_variables_are_expanded() {
        let user = "**/*.pem\n!a/keep.pem\n";
        assert_eq!(
            found("FROM scratch\nCOPY secrets/*.pem /x/\n", user)
                .into_iter()
                .map(|f| f.1)
                .collect::<Vec<_>>(),
            ["secrets/other.pem", "secrets/server.pem"]
        );
        assert!(
            found("FROM scratch\nCOPY */*.pem /x/\n", user).is_empty(),
            "a/keep.pem is sent"
        );
        assert!(found("FROM scratch\nCOPY nothing/*.pem /x/\n", user).is_empty());
        let args = BTreeMap::from([("DIR".to_owned(), "secrets".to_owned())]);
        let text = "FROM scratch\nARG DIR=conf\nCOPY ${DIR}/server.pem /x/\n";
        let e = excluded_sources(text, &args, &rules(user), TREE);
        assert_eq!(e[0].path, "secrets/server.pem");
        assert_eq!(&text[e[0].span.clone()], "${DIR}/server.pem");
        assert!(excluded_sources(text, &BTreeMap::new(), &rules(user), TREE).is_empty());
        for (pattern, name, hit) in [
            ("*.pem", "a.pem", true),
            ("*.pem", "a.pe", false),
            ("s?rver.*", "server.pem", true),
            ("[a-c]x", "bx", true),
            ("[^a-c]x", "bx", false),
            ("[!a]x", "bx", true),
            ("\\*", "*", true),
            ("\\*", "a", false),
        ] {
            assert_eq!(component_matches(pattern, name), hit, "{pattern} {name}");
        }
    }

    #[test]
    fn the_check_is_one_located_error_that_says_how_to_send_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = Utf8Path::from_path(dir.path()).unwrap();
        for (path, text) in [
            (".dockerignore", "**/*.pem\n!a/keep.pem\n"),
            ("a/keep.pem", "k"),
            ("secrets/server.pem", "s"),
            (".env", "e"),
        ] {
            let p = root.join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        // A link that leads out of the context is not followed.
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("id.pem"), "x").unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("out")).unwrap();
        let tree = DiskTree {
            root: root.to_owned(),
        };
        assert_eq!(tree.kind("out"), Some(false));
        assert_eq!(tree.kind("out/id.pem"), None);
        assert!(tree.names("out").is_empty());
        assert_eq!(tree.kind("secrets/server.pem"), Some(false));
        assert_eq!(tree.kind("secrets"), Some(true));
        let builtin = crate::dockerfile::render::dockerignore("app");
        let ok = "FROM scratch\nCOPY a/keep.pem /x/\nCOPY . /ctx/\nCOPY out/*.pem out/id.pem /o/\n";
        check_copy_sources(root, None, "Dockerfile", ok, &builtin, &BTreeMap::new()).unwrap();
        let bad =
            "FROM scratch\nCOPY a/keep.pem /x/\nCOPY secrets/server.pem /etc/\nCOPY .env /app/\n";
        let e = check_copy_sources(root, None, "Dockerfile", bad, &builtin, &BTreeMap::new())
            .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert_eq!(
            e.to_string(),
            "2 COPY/ADD sources are left out of the build context:\n  \
             Dockerfile:3: `COPY secrets/server.pem` is left out of the build context by `**/*.pem` (.dockerignore:1)\n  \
             Dockerfile:4: `COPY .env` is left out of the build context by the built-in pattern `.env`"
        );
        // miette wraps at 100 columns.
        let shown = crate::error::render(&e, false)
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        for part in [
            "[Dockerfile:3:6]",
            "left out by `**/*.pem`",
            "add the exception `!secrets/server.pem` after it",
            "add the exception `!.env` to .dockerignore",
        ] {
            assert!(shown.contains(part), "{part:?} in:\n{shown}");
        }
    }
}
