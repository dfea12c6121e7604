//! `.dockerignore` with Docker's semantics (moby's `ignorefile` and `patternmatcher`, which the
//! docker CLI and BuildKit share).
//!
//! Reading a file: a UTF-8 BOM is dropped; a line *starting* with `#` is a comment; every other
//! line is trimmed, a leading `!` makes it an exception, the pattern is cleaned like Go's
//! `filepath.Clean` and one leading `/` is dropped (patterns are relative to the context root).
//!
//! Matching a path (relative, `/`-separated): every pattern is tried in order and the last one
//! that matches the path, or one of its parent directories, decides; an exception re-includes.
//! `*` and `?` never cross `/`, `[…]`/`[^…]` are character classes, `\` escapes the next
//! character, `**` matches any number of directories (`**/` included), a pattern that starts with
//! `**` matches any path that ends with the rest, and one that ends with `**` any path that starts
//! with what comes before it (`logs**` is `logs`, `logs/…` and `logsfoo`).

use regex::Regex;

/// A bad pattern, with its 1-based line in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternError {
    /// Line of the file (0 when the patterns did not come from a file).
    pub line: usize,
    /// The pattern as written.
    pub pattern: String,
    /// What is wrong with it.
    pub message: String,
}

/// One pattern: how it matches, and whether it is an exception (`!`).
#[derive(Debug, Clone)]
struct Pattern {
    text: String,
    exception: bool,
    matcher: Matcher,
    /// The line as written, trimmed (`!a/keep.pem`).
    written: String,
    /// 1-based line of the file.
    line: usize,
}

/// A pattern that matches a path, and how deep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PatternMatch<'a> {
    /// The pattern as written, trimmed (`!a/keep.pem`).
    pub pattern: &'a str,
    /// 1-based line of the file.
    pub line: usize,
    /// Whether it is an exception (`!`).
    pub exception: bool,
    /// How many components of the path the deepest matching prefix has: the whole path's count
    /// when the pattern names the path itself, fewer when it names one of its directories.
    pub depth: usize,
}

#[derive(Debug, Clone)]
enum Matcher {
    Exact,
    /// Ends with `**`: a prefix match on what comes before.
    Prefix,
    /// Starts with `**` and has no other wildcard: a suffix match on what comes after.
    Suffix,
    Regex(Regex),
}

/// The patterns of a `.dockerignore`, in order.
#[derive(Debug, Clone, Default)]
pub struct DockerIgnore {
    patterns: Vec<Pattern>,
}

impl DockerIgnore {
    /// Parses the text of a `.dockerignore` file.
    pub fn parse(text: &str) -> Result<Self, PatternError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut patterns = Vec::new();
        for (index, line) in text.lines().enumerate() {
            if line.starts_with('#') {
                continue;
            }
            let pattern = line.trim();
            if pattern.is_empty() {
                continue;
            }
            let (exception, rest) = match pattern.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, pattern),
            };
            let error = |message: &str| PatternError {
                line: index + 1,
                pattern: line.to_owned(),
                message: message.to_owned(),
            };
            if rest.is_empty() {
                return Err(error("an exception `!` needs a pattern after it"));
            }
            let mut cleaned = clean(rest);
            if cleaned.len() > 1 && cleaned.starts_with('/') {
                cleaned.remove(0);
            }
            let matcher = compile(&cleaned).map_err(|m| error(&m))?;
            patterns.push(Pattern {
                text: cleaned,
                exception,
                matcher,
                written: pattern.to_owned(),
                line: index + 1,
            });
        }
        Ok(DockerIgnore { patterns })
    }

    /// These rules followed by `other`'s.
    pub fn then(mut self, other: DockerIgnore) -> Self {
        self.patterns.extend(other.patterns);
        self
    }

    /// Whether there are no patterns.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether `path` (relative to the context root, `/`-separated) is left out of the context:
    /// moby's `MatchesOrParentMatches`.
    pub fn excludes(&self, path: &str) -> bool {
        let path = path.trim_end_matches('/');
        if path.is_empty() || path == "." {
            // Docker never lets the context root itself be excluded.
            return false;
        }
        let parents: Vec<&str> = path
            .char_indices()
            .filter(|(_, c)| *c == '/')
            .map(|(i, _)| &path[..i])
            .collect();
        let mut excluded = false;
        for pattern in &self.patterns {
            // An exception only matters once something excluded the path, and a further
            // exclusion only before.
            if pattern.exception != excluded {
                continue;
            }
            if pattern.matches(path) || parents.iter().any(|p| pattern.matches(p)) {
                excluded = !pattern.exception;
            }
        }
        excluded
    }

    /// The pattern that decides about `path` by Docker's rule: the last one that matches the
    /// path or one of its parent directories (`None`: no pattern matches).
    pub fn deciding(&self, path: &str) -> Option<PatternMatch<'_>> {
        let prefixes = prefixes(path);
        self.patterns
            .iter()
            .rev()
            .find_map(|p| p.deepest(&prefixes))
    }

    /// The pattern that matches `path` (or one of its parent directories) deepest; the first
    /// such pattern when several do.
    pub fn deepest_match(&self, path: &str) -> Option<PatternMatch<'_>> {
        let prefixes = prefixes(path);
        let mut best: Option<PatternMatch<'_>> = None;
        for m in self.patterns.iter().filter_map(|p| p.deepest(&prefixes)) {
            if best.is_none_or(|b| m.depth > b.depth) {
                best = Some(m);
            }
        }
        best
    }

    /// Whether a walk must still enter the excluded directory `dir`: some exception's text,
    /// followed by `/`, starts with `dir/` (the docker CLI's rule; `!**/x` does not reach into an
    /// excluded directory).
    pub fn may_include_under(&self, dir: &str) -> bool {
        let dir = format!("{}/", dir.trim_end_matches('/'));
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| format!("{}/", p.text).starts_with(&dir))
    }
}

/// `a`, `a/b`, `a/b/c` for `a/b/c` (a trailing `/` dropped).
fn prefixes(path: &str) -> Vec<&str> {
    let path = path.trim_end_matches('/');
    let mut out: Vec<&str> = path
        .char_indices()
        .filter(|(_, c)| *c == '/')
        .map(|(i, _)| &path[..i])
        .collect();
    if !path.is_empty() && path != "." {
        out.push(path);
    }
    out
}

impl Pattern {
    /// The deepest of `prefixes` (shortest first) this pattern matches.
    fn deepest(&self, prefixes: &[&str]) -> Option<PatternMatch<'_>> {
        let depth = prefixes.iter().rposition(|p| self.matches(p))? + 1;
        Some(PatternMatch {
            pattern: &self.written,
            line: self.line,
            exception: self.exception,
            depth,
        })
    }

    fn matches(&self, path: &str) -> bool {
        match &self.matcher {
            Matcher::Exact => path == self.text,
            Matcher::Prefix => path.starts_with(&self.text[..self.text.len() - 2]),
            Matcher::Suffix => {
                let suffix = &self.text[2..];
                path.ends_with(suffix) || suffix.strip_prefix('/').is_some_and(|rest| path == rest)
            }
            Matcher::Regex(re) => re.is_match(path),
        }
    }
}

/// Go's `filepath.Clean` on a `/`-separated path.
fn clean(path: &str) -> String {
    let rooted = path.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            p => parts.push(p),
        }
    }
    let joined = parts.join("/");
    match (rooted, joined.is_empty()) {
        (true, _) => format!("/{joined}"),
        (false, true) => ".".to_owned(),
        (false, false) => joined,
    }
}

/// moby's translation of a pattern into a match type and, when it needs one, a regular
/// expression.
fn compile(pattern: &str) -> Result<Matcher, String> {
    #[derive(PartialEq)]
    enum Kind {
        Exact,
        Prefix,
        Suffix,
        Regex,
    }
    let chars: Vec<char> = pattern.chars().collect();
    let mut re = String::from("^");
    let mut kind = Kind::Exact;
    let mut in_class = false;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                // `**/` is `**`.
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        re.push_str(".*");
                        kind = Kind::Regex;
                    }
                } else {
                    re.push_str("(.*/)?");
                    kind = Kind::Regex;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                re.push_str("[^/]*");
                kind = Kind::Regex;
            }
            '?' => {
                re.push_str("[^/]");
                kind = Kind::Regex;
            }
            '.' | '+' | '(' | ')' | '|' | '{' | '}' | '$' => {
                re.push('\\');
                re.push(ch);
            }
            '\\' => match chars.get(i) {
                Some(&next) => {
                    i += 1;
                    if next.is_ascii_alphanumeric() {
                        // Go's regexp reads `\d`, `\w`, … as classes; so does moby.
                        re.push('\\');
                        re.push(next);
                    } else {
                        re.push_str(&regex::escape(&next.to_string()));
                    }
                    kind = Kind::Regex;
                }
                None => return Err("a trailing `\\` escapes nothing".into()),
            },
            '[' if in_class => re.push_str("\\["),
            '[' => {
                in_class = true;
                re.push('[');
                kind = Kind::Regex;
            }
            ']' => {
                in_class = false;
                re.push(']');
                kind = Kind::Regex;
            }
            // Set operators of the regex crate's classes are plain characters in Go's.
            '&' | '~' if in_class => {
                re.push('\\');
                re.push(ch);
            }
            _ => re.push(ch),
        }
        step += 1;
    }
    Ok(match kind {
        Kind::Exact => Matcher::Exact,
        Kind::Prefix => Matcher::Prefix,
        Kind::Suffix => Matcher::Suffix,
        Kind::Regex => {
            re.push('$');
            Matcher::Regex(
                Regex::new(&re).map_err(|_| "not a valid pattern (an unclosed `[`?)".to_owned())?,
            )
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matcher(patterns: &[&str]) -> DockerIgnore {
        DockerIgnore::parse(&patterns.join("\n")).unwrap()
    }

    /// Single patterns against paths, from moby's patternmatcher tests and Docker's
    /// documentation of `.dockerignore`.
    #[test]
    fn patterns_match_as_docker_matches_them() {
        let table: &[(&str, &str, bool)] = &[
            ("**", "file", true),
            ("**", "dir/file", true),
            ("**/", "dir/file", true),
            ("**/**", "dir/file", true),
            ("dir/**", "dir/file", true),
            ("dir/**", "dir/dir2/file", true),
            ("**/dir", "dir", true),
            ("**/dir", "dir/file", true),
            ("**/dir2/*", "dir/dir2/file", true),
            ("**/dir2/**", "dir/dir2/dir3/file", true),
            ("**file", "file", true),
            ("**file", "dir/file", true),
            ("**/file", "dir/file", true),
            ("**file", "dir/dir/file", true),
            ("**/file*", "dir/dir/file.txt", true),
            ("**/file*txt", "dir/dir/file.txt", true),
            ("**/file*.txt*", "dir/dir/file.txt", true),
            ("**/**/*.txt", "dir/dir/file.txt", true),
            ("**/**/*.txt2", "dir/dir/file.txt", false),
            ("**/*.txt", "file.txt", true),
            ("a**/*.txt", "a/dir/dir/file.txt", true),
            ("a/*.txt", "a/dir/file.txt", false),
            ("a/*.txt", "a/file.txt", true),
            ("a/*.txt**", "a/file.txt", true),
            ("a[b-d]e", "ae", false),
            ("a[b-d]e", "ace", true),
            ("a[b-d]e", "aae", false),
            ("a[^b-d]e", "aze", true),
            ("a[^b-d]e", "ace", false),
            (".*", ".foo", true),
            (".*", "foo", false),
            ("abc.def", "abcdef", false),
            ("abc.def", "abc.def", true),
            ("abc?def", "abcZdef", true),
            ("abc?def", "abcdef", false),
            ("a\\\\", "a\\", true),
            ("**/foo/bar", "foo/bar", true),
            ("**/foo/bar", "dir/dir2/foo/bar", true),
            ("abc/**", "abc/def/ghi", true),
            ("**/.foo", ".foo", true),
            ("**/.foo", "bar.foo", false),
            ("a(b)c/def", "a(b)c/def", true),
            ("a.|)$(}+{bc", "a.|)$(}+{bc", true),
            (
                "dist/*.whl",
                "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl",
                true,
            ),
            ("a\\*b", "a*b", true),
            ("a\\*b", "ab", false),
            ("a?b", "a☺b", true),
            ("a[^a]b", "a☺b", true),
            ("a?b", "a/b", false),
            ("a*b", "a/b", false),
            ("*", "abc", true),
            ("a*/b", "abc/b", true),
            ("a*/b", "a/c/b", false),
            ("[\\]a]", "]", true),
            ("[x\\-]", "-", true),
            ("[x\\-]", "z", false),
            // The cases: `**.pem` and `logs**` were dropped, `[^a]` literal.
            ("**.pem", "server.pem", true),
            ("**.pem", "certs/deep/server.pem", true),
            ("**.pem", "server.pem.txt", false),
            ("logs**", "logs", true),
            ("logs**", "logs/today.log", true),
            ("logs**", "logsfoo", true),
            ("logs**", "blogs", false),
            ("[^a]*.md", "b.md", true),
            ("[^a]*.md", "a.md", false),
            // A leading `/` and `./` are the context root; `..` is cleaned away.
            ("/secret", "secret", true),
            ("./secret", "secret", true),
            ("a/../secret", "secret", true),
            ("*/temp*", "somedir/temporary.txt", true),
            ("*/temp*", "somedir/sub/temporary.txt", false),
            ("*/*/temp*", "somedir/subdir/temporary.txt", true),
            ("temp?", "tempa", true),
            ("temp?", "temp/x", false),
            // A matching parent directory excludes what is under it.
            ("docs", "docs/a/b.md", true),
            ("*.key", "keys/x", false),
        ];
        for (pattern, path, expected) in table {
            assert_eq!(
                matcher(&[pattern]).excludes(path),
                *expected,
                "pattern {pattern:?} on {path:?}"
            );
        }
    }

    /// Exceptions apply in order; the last matching line wins.
    #[test]
    fn exceptions_apply_in_order() {
        let table: &[(&[&str], &str, bool)] = &[
            (&["*.md", "!README.md"], "README.md", false),
            (&["*.md", "!README.md"], "CHANGES.md", true),
            (&["!README.md", "*.md"], "README.md", true),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-secret.md",
                true,
            ),
            (
                &["*.md", "!README*.md", "README-secret.md"],
                "README-public.md",
                false,
            ),
            (&["docs", "!docs/README.md"], "docs/README.md", false),
            (&["docs/", "!docs/README.md"], "docs/README.md", false),
            (&["docs/*", "!docs/README.md"], "docs/README.md", false),
            (&["docs", "!docs/README.md"], "docs/other.md", true),
            (&["**", "!util/docker/web"], "util/docker/web/foo", false),
            (
                &["**", "!util/docker/web", "util/docker/web/foo"],
                "util/docker/web/foo",
                true,
            ),
            (&["**", "!dist/*.whl"], "dist/x-1.0-py3-none-any.whl", false),
            (&["*.go", "!fileutils.go"], "fileutils.go", false),
            (&["!fileutils.go", "*.go"], "fileutils.go", true),
        ];
        for (patterns, path, expected) in table {
            assert_eq!(
                matcher(patterns).excludes(path),
                *expected,
                "patterns {patterns:?} on {path:?}"
            );
        }
    }

    #[test]
    fn the_file_format_is_dockers() {
        let ignore =
            DockerIgnore::parse("\u{feff}# comment\n  # not a comment\n\n  spaced  \n!  kept \n")
                .unwrap();
        assert!(ignore.excludes("# not a comment"));
        assert!(ignore.excludes("spaced"));
        assert!(!ignore.excludes("kept"));
        assert!(!ignore.excludes("."), "the context root is never excluded");
        let bad = DockerIgnore::parse("ok\n!\n").unwrap_err();
        assert_eq!(bad.line, 2);
        assert_eq!(DockerIgnore::parse("a[b\n").unwrap_err().line, 1);
        assert_eq!(DockerIgnore::parse("x\\\n").unwrap_err().line, 1);
    }

    #[test]
    fn the_deciding_pattern_is_the_last_that_matches_with_its_depth() {
        let ignore = matcher(&["**/*.pem", "docs", "!a/keep.pem", "!docs"]);
        let m = ignore.deciding("a/keep.pem").unwrap();
        assert_eq!(
            (m.pattern, m.line, m.exception, m.depth),
            ("!a/keep.pem", 3, true, 2)
        );
        let m = ignore.deciding("b/x.pem").unwrap();
        assert_eq!((m.pattern, m.exception), ("**/*.pem", false));
        // `!docs` names the directory, not the file under it.
        let m = ignore.deciding("docs/x.md").unwrap();
        assert_eq!((m.pattern, m.depth), ("!docs", 1));
        assert_eq!(ignore.deciding("src/main.rs"), None);
        for path in ["a/keep.pem", "b/x.pem", "docs/x.md", "src/main.rs"] {
            assert_eq!(
                ignore.deciding(path).is_some_and(|m| !m.exception),
                ignore.excludes(path),
                "{path}"
            );
        }
        let builtin = matcher(&["**/.ssh", "**/id_rsa*"]);
        let m = builtin.deepest_match(".ssh/id_rsa").unwrap();
        assert_eq!((m.pattern, m.depth), ("**/id_rsa*", 2));
        assert_eq!(builtin.deepest_match(".ssh/config").unwrap().depth, 1);
    }

    #[test]
    fn an_excluded_directory_is_entered_only_for_an_exception_under_it() {
        let ignore = matcher(&["logs", "!logs/keep.txt", "cache", "!**/keep.txt"]);
        assert!(ignore.may_include_under("logs"));
        assert!(!ignore.may_include_under("cache"));
        assert!(!ignore.may_include_under("log"));
    }
}
