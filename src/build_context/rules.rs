//! What a `docker`-strategy build context leaves out, and why.
//!
//! Never sent, whatever the ignore files say: `.git` and cargo's target directories (`target/`
//! beside a `Cargo.toml`, or any directory holding cargo's `CACHEDIR.TAG`). Then the built-in
//! patterns (outputs and secrets: `.env`, `*.pem`, `*.key`, `.ssh`, ...) and the user's
//! `.dockerignore`, each with Docker's rules ([`DockerIgnore`]). The user's file decides what it
//! excludes; a path the built-in patterns exclude is sent only when the user's file ends on an
//! exception (`!a/keep.pem`) that names it at least as closely as the built-in pattern does: the
//! path itself, or the directory the built-in pattern names (`!.ssh` after `**/.ssh`). An
//! exception that only names a directory above it (`*` then `!src`, the common allowlist) does
//! not send `src/server.key`.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};

use super::dockerignore::DockerIgnore;

/// Why a path is not in the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// It is, or is under, a `.git` directory.
    Git,
    /// It is, or is under, a cargo target directory (this one).
    CargoTarget(String),
    /// A built-in pattern (as written) excludes it.
    Builtin(String),
    /// A pattern of the user's file excludes it.
    User {
        /// The file, as shown (relative to the context when it is inside).
        file: String,
        /// 1-based line of the pattern.
        line: usize,
        /// The pattern as written.
        pattern: String,
    },
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Cause::Git => f.write_str("the rule that `.git` is never sent"),
            Cause::CargoTarget(dir) => write!(
                f,
                "the rule that cargo's target directory (`{dir}`) is never sent"
            ),
            Cause::Builtin(pattern) => write!(f, "the built-in pattern `{pattern}`"),
            Cause::User {
                file,
                line,
                pattern,
            } => write!(f, "`{pattern}` ({file}:{line})"),
        }
    }
}

/// A file that a built-in pattern excludes and the user's exception sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentByException {
    /// The path in the context.
    pub path: String,
    /// The built-in pattern that would leave it out.
    pub builtin: String,
    /// The user's exception, as written (`!a/keep.pem`).
    pub exception: String,
    /// The user's file, as shown.
    pub file: String,
    /// 1-based line of the exception.
    pub line: usize,
}

impl fmt::Display for SentByException {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is sent: `{}` ({}:{}) overrides the built-in pattern `{}`",
            self.path, self.exception, self.file, self.line, self.builtin
        )
    }
}

/// What the patterns decide about one path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It is sent.
    Sent,
    /// It is sent because the user's exception overrides a built-in pattern.
    SentByException(SentByException),
    /// It is left out.
    Left(Cause),
}

impl Verdict {
    /// Whether the path is left out.
    pub fn is_left_out(&self) -> bool {
        matches!(self, Verdict::Left(_))
    }
}

/// The built-in patterns and the user's `.dockerignore` of one context.
#[derive(Debug, Clone, Default)]
pub struct ContextRules {
    builtin: DockerIgnore,
    user: DockerIgnore,
    /// The user's file, as shown.
    user_file: String,
}

impl ContextRules {
    /// The rules of a context: the built-in patterns, and the user's file when there is one
    /// (its path shown relative to `context` when it is inside).
    pub fn new(
        builtin: DockerIgnore,
        user: Option<(Utf8PathBuf, DockerIgnore)>,
        context: &Utf8Path,
    ) -> Self {
        let (user_file, user) = match user {
            Some((path, ignore)) => (
                path.strip_prefix(context)
                    .map(Utf8Path::to_string)
                    .unwrap_or_else(|_| path.to_string()),
                ignore,
            ),
            None => (".dockerignore".to_owned(), DockerIgnore::default()),
        };
        ContextRules {
            builtin,
            user,
            user_file,
        }
    }

    /// The user's file as shown (`.dockerignore` when there is none yet: where one would go).
    pub fn user_file(&self) -> &str {
        &self.user_file
    }

    /// What the patterns decide about `path` (relative to the context root, `/`-separated).
    /// `.git` and cargo's target directories are the walk's to see ([`fixed_exclusion`]).
    pub fn verdict(&self, path: &str) -> Verdict {
        let user = self.user.deciding(path);
        if let Some(m) = user.filter(|m| !m.exception) {
            return Verdict::Left(Cause::User {
                file: self.user_file.clone(),
                line: m.line,
                pattern: m.pattern.to_owned(),
            });
        }
        if !self.builtin.excludes(path) {
            return Verdict::Sent;
        }
        let builtin = self
            .builtin
            .deepest_match(path)
            .expect("an excluding pattern matches");
        match user {
            Some(m) if m.exception && m.depth >= builtin.depth => {
                Verdict::SentByException(SentByException {
                    path: path.to_owned(),
                    builtin: builtin.pattern.to_owned(),
                    exception: m.pattern.to_owned(),
                    file: self.user_file.clone(),
                    line: m.line,
                })
            }
            _ => Verdict::Left(Cause::Builtin(builtin.pattern.to_owned())),
        }
    }

    /// Whether a walk must enter the left-out directory `dir`: an exception of the user's file
    /// may send something under it.
    pub fn may_include_under(&self, dir: &str) -> bool {
        self.user.may_include_under(dir)
    }
}

/// `.git` and cargo's target directories: `name` is the last component of `path`; `cargo_target`
/// says whether the directory is one of cargo's (asked only for a directory).
pub fn fixed_exclusion(
    path: &str,
    is_dir: bool,
    cargo_target: impl FnOnce() -> bool,
) -> Option<Cause> {
    let name = path.rsplit('/').next().unwrap_or(path);
    if name == ".git" {
        return Some(Cause::Git);
    }
    (is_dir && cargo_target()).then(|| Cause::CargoTarget(path.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(user: &str) -> ContextRules {
        let builtin = DockerIgnore::parse(&crate::dockerfile::render::dockerignore("app")).unwrap();
        let user = DockerIgnore::parse(user).unwrap();
        ContextRules::new(
            builtin,
            Some((Utf8PathBuf::from("/ctx/.dockerignore"), user)),
            Utf8Path::new("/ctx"),
        )
    }

    #[test]
    fn the_users_exception_wins_over_a_built_in_pattern_only_when_it_names_the_path() {
        let r = rules("*\n!src\n**/*.pem\n!a/keep.pem\n!.ssh\n!.env\n");
        let sent = |path: &str| !r.verdict(path).is_left_out();
        assert!(matches!(
            r.verdict("a/keep.pem"),
            Verdict::SentByException(SentByException { ref exception, line: 4, .. }) if exception == "!a/keep.pem"
        ));
        assert!(sent(".env"));
        assert!(sent(".ssh/config"), "`!.ssh` names what `**/.ssh` names");
        assert!(sent("src/main.rs"));
        assert!(
            !sent("src/server.key"),
            "`!src` does not name `src/server.key`"
        );
        assert_eq!(
            r.verdict("src/server.key"),
            Verdict::Left(Cause::Builtin("**/*.key".into()))
        );
        assert_eq!(
            r.verdict("b/x.pem"),
            Verdict::Left(Cause::User {
                file: ".dockerignore".into(),
                line: 3,
                pattern: "**/*.pem".into()
            })
        );
        assert!(!sent(".ssh/id_rsa"), "`**/id_rsa*` names the key itself");
        // Without a user file, the built-in patterns decide.
        let none = ContextRules::new(
            DockerIgnore::parse(".env\n").unwrap(),
            None,
            Utf8Path::new("/ctx"),
        );
        assert_eq!(
            none.verdict(".env"),
            Verdict::Left(Cause::Builtin(".env".into()))
        );
        assert_eq!(none.user_file(), ".dockerignore");
        assert_eq!(fixed_exclusion("a/.git", true, || false), Some(Cause::Git));
        assert_eq!(
            fixed_exclusion("target", true, || true),
            Some(Cause::CargoTarget("target".into()))
        );
        assert_eq!(fixed_exclusion("target", false, || true), None);
    }
}
