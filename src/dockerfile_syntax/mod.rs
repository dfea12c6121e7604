//! The Dockerfile language, a leaf every layer may use: the one tokenizer (what lint, label
//! reading, build arguments, progress mapping, revisions and the build context read of a
//! Dockerfile) and the one way a value is written into one ([`escape`]). It imports nothing of the
//! crate, so configuration validation, the workspace's inputs and the engine's progress can read
//! or size Dockerfile text without depending on the renderer in [`crate::dockerfile`].
//!
//! It follows BuildKit's parser (moby/buildkit `frontend/dockerfile/parser`) and its shell
//! lexer (`frontend/dockerfile/shell`):
//!
//! - parser directives at the top of the file (`# syntax=`, `# escape=`, `# check=`), read until
//!   the first line that is not one (a comment, an empty line, an instruction);
//! - instructions with the line they start on; continuations (the escape character, `\` or
//!   `` ` ``, before the end of a line), comment and empty lines inside a continuation skipped;
//! - heredocs (`RUN <<EOF`, `COPY <<-"EOT" /dst`), whose body lines are not instructions;
//! - the leading flags of an instruction (`--from=`, `--chown=`, `--mount=`, …; [`lex::Flag`]);
//! - words with their quotes ([`lex::words`]), unquoted and expanded as BuildKit expands them
//!   ([`lex::expand`]: `$VAR`, `${VAR}`, `${VAR:-default}`, `${VAR:+alt}`, `\$`);
//! - the scope of each instruction's variables ([`scope`]): global `ARG`s before the first
//!   `FROM` (seen by `FROM` lines, and in a stage only where it declares them again), a stage's
//!   own `ARG`s and `ENV`s, and what a stage inherits from the stage it is built `FROM`;
//! - the context paths `COPY`/`ADD` read ([`sources`]).
//!
//! It is a small hand parser rather than a crate because the callers need exact start lines and
//! byte spans, the raw words and BuildKit's expansion (the `dockerfile-parser` crate targets an
//! older grammar and pulls in a PEG runtime for no gain here).

pub mod escape;
pub mod lex;
pub mod scope;
pub mod sources;

use std::ops::Range;

pub use lex::{Flag, Unresolved, Var, expand, fields, unquote, words};
pub use scope::{BuildArgs, Scope, Stage, Value};
pub use sources::{ContextSource, copied_sources};

/// The parser directives of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `# syntax=…`: the Dockerfile frontend the file asks for.
    pub syntax: Option<String>,
    /// `# escape=…`: `\` (the default) or `` ` ``.
    pub escape: char,
    /// `# check=…`: BuildKit's build checks.
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Self {
        Directives {
            syntax: None,
            escape: '\\',
            check: None,
        }
    }
}

/// A parsed Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Dockerfile {
    /// Its parser directives.
    pub directives: Directives,
    /// Its instructions, in order.
    pub instructions: Vec<Instruction>,
}

/// One heredoc of an instruction (`<<EOF` … `EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter, unquoted (`EOF`).
    pub name: String,
    /// The body lines, each ending in `\n`; leading tabs removed for `<<-`.
    pub body: String,
    /// `<<-`: leading tabs are stripped.
    pub chomp: bool,
    /// Whether variables in the body are expanded (the delimiter is not quoted).
    pub expand: bool,
}

/// One instruction of a Dockerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where it starts.
    pub line: usize,
    /// 1-based last line of the instruction with its continuations (before heredoc bodies).
    pub last_line: usize,
    /// 1-based last line with its heredoc bodies and delimiters.
    pub end_line: usize,
    /// The keyword, upper-case (`FROM`, `RUN`, ...).
    pub keyword: String,
    /// Everything after the keyword, flags included, continuations joined.
    pub args: String,
    /// The leading `--name[=value]` flags.
    pub flags: Vec<Flag>,
    /// The arguments after the flags.
    pub rest: String,
    /// Its heredocs, in order.
    pub heredocs: Vec<Heredoc>,
    /// Bytes of the file its own lines take (first line to [`Instruction::last_line`]).
    pub span: Range<usize>,
    /// The file's escape character.
    pub escape: char,
}

impl Instruction {
    /// The value of flag `--name` (`Some(None)` for a flag without `=`).
    pub fn flag(&self, name: &str) -> Option<Option<&str>> {
        self.flags
            .iter()
            .find(|f| f.name == name)
            .map(|f| f.value.as_deref())
    }

    /// The words after the flags, quotes kept ([`lex::words`]).
    pub fn words(&self) -> Vec<String> {
        words(&self.rest, self.escape)
    }

    /// The exec (JSON) form's strings, when the arguments after the flags are one.
    pub fn json(&self) -> Option<Vec<String>> {
        let rest = self.rest.trim();
        if !rest.starts_with('[') {
            return None;
        }
        serde_json::from_str(rest).ok()
    }

    /// `ENV`/`LABEL` pairs as written (quotes kept): `KEY=VALUE ...`, or the old `KEY VALUE`.
    pub fn pairs(&self) -> Vec<(String, String)> {
        let words = self.words();
        match words.first() {
            None => Vec::new(),
            Some(first) if !first.contains('=') => {
                let rest = self.rest.trim_start()[first.len()..].trim();
                vec![(first.clone(), rest.to_owned())]
            }
            Some(_) => words
                .iter()
                .filter_map(|w| w.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect(),
        }
    }

    /// [`Instruction::pairs`] with quotes and escapes removed (variables as written).
    pub fn unquoted_pairs(&self) -> Vec<(String, String)> {
        self.pairs()
            .into_iter()
            .map(|(k, v)| (unquote(&k, self.escape), unquote(&v, self.escape)))
            .collect()
    }

    /// `ARG NAME[=default] ...`: each name, with its default as written.
    pub fn arg_declarations(&self) -> Vec<(String, Option<String>)> {
        self.words()
            .into_iter()
            .map(|w| match w.split_once('=') {
                Some((name, value)) => (name.to_owned(), Some(value.to_owned())),
                None => (w, None),
            })
            .filter(|(name, _)| !name.is_empty())
            .collect()
    }

    /// `FROM image [AS name]`: the image as written, and the stage name, lower-case.
    pub fn from_parts(&self) -> (String, Option<String>) {
        let parts = fields(&self.rest);
        let image = parts.first().cloned().unwrap_or_default();
        let name = match parts.as_slice() {
            [_, as_kw, name] if as_kw.eq_ignore_ascii_case("as") => Some(name.to_ascii_lowercase()),
            _ => None,
        };
        (image, name)
    }

    /// The source and destination words of `COPY`/`ADD` (the exec form's strings, or the
    /// words split at white space, as written), when there are any.
    pub fn paths(&self) -> Vec<String> {
        self.json().unwrap_or_else(|| fields(&self.rest))
    }
}

impl Dockerfile {
    /// Parses `text` as BuildKit does. Never fails: what BuildKit would refuse is read as well
    /// as it can be, and the build reports it.
    pub fn parse(text: &str) -> Dockerfile {
        Parser::new(text).run()
    }

    /// The file's escape character.
    pub fn escape(&self) -> char {
        self.directives.escape
    }

    /// Names of the `ARG`s the file declares, global and in any stage, in order.
    pub fn declared_args(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for ins in self.instructions.iter().filter(|i| i.keyword == "ARG") {
            for (name, _) in ins.arg_declarations() {
                if !names.contains(&name) {
                    names.push(name);
                }
            }
        }
        names
    }
}

/// Whether the file names its Dockerfile frontend (`# syntax=...`), which then decides what it
/// supports instead of the engine's built-in one.
pub fn has_syntax_directive(text: &str) -> bool {
    directives(text).syntax.is_some()
}

/// The parser directives of `text`, without parsing the rest.
pub fn directives(text: &str) -> Directives {
    let mut parser = Parser::new(text);
    parser.directives();
    parser.directives
}

/// One line of the file: its text without the line feed (and a carriage return before it), and
/// where it starts.
struct Line<'a> {
    text: &'a str,
    start: usize,
}

struct Parser<'a> {
    lines: Vec<Line<'a>>,
    next: usize,
    directives: Directives,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        let mut lines = Vec::new();
        let mut start = 0;
        for raw in text.split('\n') {
            let mut line = raw.strip_suffix('\r').unwrap_or(raw);
            let mut offset = start;
            if start == 0 && line.starts_with('\u{feff}') {
                line = &line[3..];
                offset = 3;
            }
            lines.push(Line {
                text: line,
                start: offset,
            });
            start += raw.len() + 1;
        }
        Parser {
            lines,
            next: 0,
            directives: Directives::default(),
        }
    }

    /// The next line, with its 1-based number.
    fn line(&mut self) -> Option<(usize, &'a str, usize)> {
        let line = self.lines.get(self.next)?;
        self.next += 1;
        Some((self.next, line.text, line.start))
    }

    /// Reads the leading parser directives.
    fn directives(&mut self) {
        while let Some(line) = self.lines.get(self.next) {
            let Some((key, value)) = directive(line.text) else {
                return;
            };
            match key.as_str() {
                "escape" => {
                    // BuildKit refuses any other value; the default stays.
                    if let "\\" | "`" = value {
                        self.directives.escape = value.chars().next().expect("one char");
                    }
                }
                "syntax" => self.directives.syntax = Some(value.to_owned()),
                "check" => self.directives.check = Some(value.to_owned()),
                _ => return,
            }
            self.next += 1;
        }
    }

    /// The line without its escape character when it continues on the next line.
    fn continues(&self, line: &'a str) -> Option<&'a str> {
        line.trim_end_matches([' ', '\t'])
            .strip_suffix(self.directives.escape)
    }

    fn run(mut self) -> Dockerfile {
        self.directives();
        let escape = self.directives.escape;
        let mut instructions = Vec::new();
        while let Some((number, raw, start)) = self.line() {
            let first = raw.trim_start();
            if first.is_empty() || is_comment(first) {
                continue;
            }
            let mut logical = String::new();
            let mut end = start + raw.len();
            let mut last_line = number;
            match self.continues(first) {
                None => logical.push_str(first),
                Some(head) => {
                    logical.push_str(head);
                    while let Some((n, line, line_start)) = self.line() {
                        // Comment and empty lines inside a continuation are skipped.
                        if is_comment(line.trim_start()) || line.trim().is_empty() {
                            continue;
                        }
                        last_line = n;
                        end = line_start + line.len();
                        match self.continues(line) {
                            Some(head) => logical.push_str(head),
                            None => {
                                logical.push_str(line);
                                break;
                            }
                        }
                    }
                }
            }
            let logical = logical.trim_matches(lex::is_space);
            let (keyword, args) = match logical.split_once(lex::is_space) {
                Some((k, a)) => (k, a.trim_start_matches(lex::is_space)),
                None => (logical, ""),
            };
            let keyword = keyword.to_ascii_uppercase();
            let (flags, rest) = lex::extract_flags(args);
            let rest = rest.to_owned();
            let mut ins = Instruction {
                line: number,
                last_line,
                end_line: last_line,
                keyword,
                args: args.to_owned(),
                flags,
                rest,
                heredocs: Vec::new(),
                span: start..end,
                escape,
            };
            if can_contain_heredoc(&ins) {
                for (name, chomp, expand) in heredoc_delimiters(logical) {
                    let mut body = String::new();
                    while let Some((n, line, _)) = self.line() {
                        ins.end_line = n;
                        let line = if chomp {
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
                    ins.heredocs.push(Heredoc {
                        name,
                        body,
                        chomp,
                        expand,
                    });
                }
            }
            instructions.push(ins);
        }
        Dockerfile {
            directives: self.directives,
            instructions,
        }
    }
}

/// A comment line (after its leading white space).
fn is_comment(line: &str) -> bool {
    line.starts_with('#')
}

/// `# name=value` as a parser directive (see [`directives`]): BuildKit's `^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$`,
/// the name lower-case.
fn directive(line: &str) -> Option<(String, &str)> {
    let rest = line.trim_start().strip_prefix('#')?.trim_start();
    let (key, value) = rest.split_once('=')?;
    let key = key.trim_end();
    let value = value.trim();
    let mut chars = key.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric())
        && !value.is_empty();
    valid.then(|| (key.to_ascii_lowercase(), value))
}

/// `RUN`, `COPY` and `ADD` (also behind `ONBUILD`) in shell form may hold heredocs.
fn can_contain_heredoc(ins: &Instruction) -> bool {
    let (keyword, rest) = if ins.keyword == "ONBUILD" {
        let rest = ins.rest.trim_start();
        match rest.split_once(lex::is_space) {
            Some((k, r)) => (k.to_ascii_uppercase(), r.to_owned()),
            None => (rest.to_ascii_uppercase(), String::new()),
        }
    } else {
        (ins.keyword.clone(), ins.rest.clone())
    };
    if !matches!(keyword.as_str(), "RUN" | "COPY" | "ADD") {
        return false;
    }
    let rest = rest.trim();
    !(rest.starts_with('[') && serde_json::from_str::<Vec<String>>(rest).is_ok())
}

/// The heredocs a logical line opens (`<<EOF`, `<<-EOF`, `2<<"EOF"`): each word of the line (split
/// as the shell does, quotes kept) that is `[digits]<<[-]word`, with its delimiter unquoted,
/// whether tabs are stripped, and whether the body expands (the delimiter is not quoted).
pub(crate) fn heredoc_delimiters(line: &str) -> Vec<(String, bool, bool)> {
    if !line.contains("<<") {
        return Vec::new();
    }
    let mut out = Vec::new();
    for word in words(line, '\\') {
        if let Some(h) = heredoc_word(&word) {
            out.push(h);
        }
    }
    out
}

/// One word as a heredoc opener (BuildKit's `^(\d*)<<(-?)([^<]*)$`).
pub(crate) fn heredoc_word(word: &str) -> Option<(String, bool, bool)> {
    let after_fd = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let after = after_fd.strip_prefix("<<")?;
    let (chomp, rest) = match after.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, after),
    };
    if rest.is_empty() || rest.contains('<') {
        return None;
    }
    let name = unquote(rest, '\\');
    // A delimiter must be one word.
    if name.is_empty() || name.chars().any(char::is_whitespace) {
        return None;
    }
    let quoted = rest.contains(['"', '\'']);
    Some((name, chomp, !quoted))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(df: &Dockerfile) -> Vec<&str> {
        df.instructions.iter().map(|i| i.keyword.as_str()).collect()
    }

    #[test]
    fn continuations_comments_and_start_lines() {
        let text = "# escape=\\\nFROM a:1 AS b\n\nRUN x \\\n  # comment\n\n  y\nLABEL \"k k\"=\"v \\\" v\" j=1\n";
        let df = Dockerfile::parse(text);
        let ins = &df.instructions;
        assert_eq!(ins.len(), 3);
        assert_eq!((ins[1].line, ins[1].args.as_str()), (4, "x   y"));
        assert_eq!((ins[1].last_line, ins[1].end_line), (7, 7));
        assert_eq!(&text[ins[1].span.clone()], "RUN x \\\n  # comment\n\n  y");
        assert_eq!(ins[2].line, 8);
        assert_eq!(
            ins[2].unquoted_pairs(),
            vec![("k k".into(), "v \" v".into()), ("j".into(), "1".into())]
        );
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let text = "# escape=`\nFROM mcr.microsoft.com/windows:ltsc2022\nRUN dir c:\\ `\n  && echo done\nLABEL a=\"x`\"y\" `\n  b=2\nCOPY C:\\src\\ \\dst\\\n";
        let df = Dockerfile::parse(text);
        assert_eq!(df.escape(), '`');
        assert_eq!(keywords(&df), ["FROM", "RUN", "LABEL", "COPY"]);
        assert_eq!(df.instructions[1].args, "dir c:\\   && echo done");
        assert_eq!(df.instructions[2].line, 5);
        assert_eq!(
            df.instructions[2].unquoted_pairs(),
            [("a".into(), "x\"y".into()), ("b".into(), "2".into())]
        );
        // A `\` at the end of a line is only a character here.
        assert_eq!(df.instructions[3].line, 7);
        assert_eq!(df.instructions[3].paths(), ["C:\\src\\", "\\dst\\"]);
    }

    #[test]
    fn directives_are_read_only_at_the_top() {
        let df = Dockerfile::parse(
            "# syntax=docker/dockerfile:1.7\n#ESCAPE = `\n# check=skip=all\nFROM a\n",
        );
        assert_eq!(
            df.directives.syntax.as_deref(),
            Some("docker/dockerfile:1.7")
        );
        assert_eq!(df.directives.escape, '`');
        assert_eq!(df.directives.check.as_deref(), Some("skip=all"));
        assert!(has_syntax_directive(
            "\u{feff}# syntax=docker/dockerfile:1\nFROM a\n"
        ));
        // After a comment, an empty line or an instruction, `# x=y` is a comment.
        for text in [
            "# a comment\n# syntax=docker/dockerfile:1\nFROM a\n",
            "\n# syntax=docker/dockerfile:1\nFROM a\n",
            "FROM a\n# syntax=docker/dockerfile:1\n",
        ] {
            assert!(!has_syntax_directive(text), "{text:?}");
        }
        let late = Dockerfile::parse("FROM a\n# escape=`\nRUN x `\nRUN y\n");
        assert_eq!(late.escape(), '\\');
        assert_eq!(keywords(&late), ["FROM", "RUN", "RUN"]);
        // An escape BuildKit does not accept leaves the default.
        assert_eq!(Dockerfile::parse("# escape=x\nFROM a\n").escape(), '\\');
    }

    #[test]
    fn heredoc_bodies_are_not_instructions() {
        let text = "FROM a:1 AS b\nCOPY --chmod=755 --from=b [\"x\", \"/x\"]\nRUN --mount=type=cache,target=/c cargo build\nRUN <<EOF\nFROM evil\nUSER root\nEOF\nCOPY --link <<-EOT /etc/motd\n\thello\n\tEOT\nRUN 3<<\"A\" cat /dev/fd/3 && cat <<B \\\n && true\n$x\nA\n$y\nB\nUSER 1:1\n";
        let df = Dockerfile::parse(text);
        let ins = &df.instructions;
        assert_eq!(
            keywords(&df),
            ["FROM", "COPY", "RUN", "RUN", "COPY", "RUN", "USER"]
        );
        assert_eq!(ins[1].flag("chmod"), Some(Some("755")));
        assert_eq!(ins[1].flag("from"), Some(Some("b")));
        assert_eq!(ins[1].json().unwrap(), ["x", "/x"]);
        assert_eq!(ins[3].heredocs[0].body, "FROM evil\nUSER root\n");
        assert_eq!((ins[3].line, ins[3].end_line), (4, 7));
        assert_eq!(ins[4].heredocs[0].body, "hello\n");
        assert!(ins[4].heredocs[0].chomp);
        let h = &ins[5].heredocs;
        assert_eq!(h.len(), 2);
        assert_eq!(
            (h[0].name.as_str(), h[0].body.as_str(), h[0].expand),
            ("A", "$x\n", false)
        );
        assert_eq!(
            (h[1].name.as_str(), h[1].body.as_str(), h[1].expand),
            ("B", "$y\n", true)
        );
        assert_eq!((ins[5].line, ins[5].last_line, ins[6].line), (11, 12, 17));
        // Not heredocs: a shift, a here-string, a word that does not start with `<<`, JSON.
        for text in [
            "RUN echo $((1<<2)) <<< x\nUSER 1\n",
            "RUN cat<<EOF\nUSER 1\n",
            "RUN [\"sh\", \"-c\", \"cat <<EOF\"]\nUSER 1\n",
            "ENV A=<<EOF\nUSER 1\n",
        ] {
            let df = Dockerfile::parse(text);
            assert!(df.instructions[0].heredocs.is_empty(), "{text:?}");
            assert_eq!(df.instructions[1].keyword, "USER", "{text:?}");
        }
        let onbuild = Dockerfile::parse("ONBUILD RUN <<EOF\nUSER root\nEOF\nUSER 1\n");
        assert_eq!(keywords(&onbuild), ["ONBUILD", "USER"]);
    }

    #[test]
    fn words_flags_and_declarations() {
        let df = Dockerfile::parse(
            "ARG A B=\"x y\" \\\n  SHA\nFROM --platform=$BUILDPLATFORM rust:1 as Builder\nenv OLD value with spaces\nCOPY --chown=1:1 a b /dst/\n",
        );
        let ins = &df.instructions;
        assert_eq!(
            ins[0].arg_declarations(),
            [
                ("A".into(), None),
                ("B".into(), Some("\"x y\"".into())),
                ("SHA".into(), None)
            ]
        );
        assert_eq!(df.declared_args(), ["A", "B", "SHA"]);
        assert_eq!(ins[1].flag("platform"), Some(Some("$BUILDPLATFORM")));
        assert_eq!(
            ins[1].from_parts(),
            ("rust:1".into(), Some("builder".into()))
        );
        assert_eq!(ins[2].keyword, "ENV");
        assert_eq!(ins[2].pairs(), [("OLD".into(), "value with spaces".into())]);
        assert_eq!(ins[3].paths(), ["a", "b", "/dst/"]);
        assert_eq!(ins[3].rest, "a b /dst/");
    }
}
