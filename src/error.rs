//! The one error type of the tool, its exit codes and how it is rendered.
//!
//! Exit codes (one table, [`Error::exit_code`]): `1` a release step failed (build, test, push, engine),
//! `2` usage or configuration (manifest, Dockerfile, dirty tree, tag conflict).

use std::ops::Range;

use miette::{Diagnostic, NamedSource, SourceSpan};

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A manifest problem located in a file: path, line, column and caret come from the span.
#[derive(Debug, thiserror::Error, Diagnostic)]
#[error("{message}")]
pub struct ManifestError {
    /// What is wrong.
    pub message: String,
    /// The file, for the snippet.
    #[source_code]
    pub source_code: NamedSource<String>,
    /// Where it is wrong.
    #[label("{label}")]
    pub span: Option<SourceSpan>,
    /// Text under the caret.
    pub label: String,
    /// How to fix it.
    #[help]
    pub help: Option<String>,
}

impl ManifestError {
    /// A located error in `path` whose text is `text`.
    pub fn new(
        path: &str,
        text: &str,
        span: Option<Range<usize>>,
        message: impl Into<String>,
    ) -> Self {
        let (excerpt, span) = excerpt(text, span);
        ManifestError {
            message: message.into(),
            source_code: NamedSource::new(printable(path, 200), excerpt),
            span: span.map(Into::into),
            label: "here".into(),
            help: None,
        }
    }

    /// Adds the text shown under the caret.
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Adds a hint on how to fix it.
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Everything that can stop a run.
#[derive(Debug, thiserror::Error, Diagnostic)]
pub enum Error {
    /// Bad command line or a combination of options that cannot work.
    #[error("{message}")]
    Usage {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// A `Cargo.toml` problem with its location.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Manifest(ManifestError),
    /// `cargo metadata` failed or the workspace cannot be used.
    #[error("{message}")]
    Workspace {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// Reading the git repository failed, or the tree is not releasable.
    #[error("{message}")]
    Git {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// The plan's rules refuse the release (tag validation, git tag mismatch, no tags, ...).
    #[error("{message}")]
    Plan {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// A Dockerfile that cannot be rendered or used (templates, syntax, blocking lint findings).
    #[error("{message}")]
    Dockerfile {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// A check command found what it checks for: drift from a fresh render, lint findings.
    #[error("{message}")]
    Findings {
        /// What was found.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// Every problem the release's preflight found, before anything was built.
    #[error("{} problems found before anything was built", .problems.len())]
    #[diagnostic(help("fix them all, then run the release again; nothing was built or tagged"))]
    Preflight {
        /// Each problem with its own location and help.
        #[related]
        problems: Vec<Error>,
    },
    /// A `COPY`/`ADD` source that the build context leaves out, located in the Dockerfile, with
    /// the pattern that dropped it and how to send it.
    #[error(transparent)]
    #[diagnostic(transparent)]
    ExcludedSource(ManifestError),
    /// An immutable tag would move to a different image.
    #[error("{message}")]
    TagConflict {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// A release step failed (engine, build, test, tag, push).
    #[error("{step} failed: {message}")]
    Step {
        /// The pipeline step, e.g. `build`.
        step: &'static str,
        /// What went wrong.
        message: String,
        /// How to fix it or where to look.
        #[help]
        help: Option<String>,
    },
    /// A test check was misconfigured (e.g. an exec command whose binary is not in the image).
    #[error("{message}")]
    TestConfig {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
    },
    /// The run was interrupted (SIGINT, SIGTERM or SIGHUP; see [`crate::interrupt`]).
    #[error("interrupted by {}", crate::signal::signal_name())]
    Interrupted,
    /// An I/O error with what we were doing.
    #[error("{context}: {source}")]
    Io {
        /// What we were doing.
        context: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl Error {
    /// The process exit code: the one table of the crate. 2 for anything the user's
    /// configuration or command line must fix, 1 for a step or check that failed, 128 + the
    /// signal when interrupted.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. }
            | Error::Manifest(_)
            | Error::ExcludedSource(_)
            | Error::Workspace { .. }
            | Error::Git { .. }
            | Error::Plan { .. }
            | Error::Dockerfile { .. }
            | Error::TagConflict { .. }
            | Error::TestConfig { .. } => 2,
            Error::Findings { .. } | Error::Step { .. } | Error::Io { .. } => 1,
            Error::Preflight { problems } => {
                problems.iter().map(Error::exit_code).max().unwrap_or(1)
            }
            Error::Interrupted => crate::signal::exit_code(),
        }
    }

    /// One error for several: itself when there is one, [`Error::Preflight`] for more.
    pub fn all(mut problems: Vec<Error>) -> Option<Error> {
        match problems.len() {
            0 => None,
            1 => problems.pop(),
            _ => Some(Error::Preflight { problems }),
        }
    }

    /// A usage error.
    pub fn usage(message: impl Into<String>, help: impl Into<Option<String>>) -> Self {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    /// A failed release step.
    pub fn step(step: &'static str, message: impl Into<String>) -> Self {
        Error::Step {
            step,
            message: message.into(),
            help: None,
        }
    }

    /// A failed release step with a hint.
    pub fn step_with_help(
        step: &'static str,
        message: impl Into<String>,
        help: impl Into<String>,
    ) -> Self {
        Error::Step {
            step,
            message: message.into(),
            help: Some(help.into()),
        }
    }

    /// An I/O error with context.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// Whether this is a broken pipe on stdout, which is not an error (`… | head`).
    pub fn is_broken_pipe(&self) -> bool {
        matches!(self, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::BrokenPipe)
    }
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Self {
        Error::Manifest(e)
    }
}

/// Renders an error for the terminal, cargo-style: `error: …`, then file, line, caret and help.
///
/// Every text goes through [`printable_block`] on the way: values from a manifest or a Dockerfile
/// cannot move the cursor, recolor the terminal, reorder text (bidi) or flood it.
pub fn render(error: &Error, color: bool) -> String {
    // Each problem of a preflight is an error of its own, with its own snippet, as cargo prints
    // several; the count closes the list.
    if let Error::Preflight { problems } = error {
        let mut out: String = problems.iter().map(|p| render(p, color) + "\n").collect();
        out.push_str(&render_one(error, color));
        return out;
    }
    render_one(error, color)
}

fn render_one(error: &Error, color: bool) -> String {
    let error = Printable(error);
    let mut theme = if color {
        miette::GraphicalTheme::unicode()
    } else {
        miette::GraphicalTheme::unicode_nocolor()
    };
    theme.characters.error = "error:".into();
    let handler = miette::GraphicalReportHandler::new_themed(theme)
        .with_context_lines(1)
        .with_width(100);
    let mut out = String::new();
    if handler.render_report(&mut out, &error).is_err() {
        out = format!("error: {error}\n");
    }
    // miette indents the headline by two spaces; cargo starts at column 0.
    match out.strip_prefix("  ") {
        Some(rest) => rest.to_owned(),
        None => out,
    }
}

/// Longest line of a message shown in full; longer ones are cut with their size.
pub const MAX_SHOWN_LINE: usize = 400;
/// Most lines of one message.
pub const MAX_SHOWN_LINES: usize = 200;

/// Whether `c` must not reach a terminal as is: control characters (C0, DEL, C1), bidi controls,
/// line and paragraph separators, zero-width and byte-order marks.
pub fn is_unprintable(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{061c}' | '\u{200b}'..='\u{200f}' | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}' | '\u{feff}')
}

/// `value` for a one-line message: unprintable characters escaped (`\n`, `\u{1b}`), cut after
/// `max_chars` characters with the full size said.
pub fn printable(value: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == max_chars {
            out.push_str(&format!("… ({} bytes)", value.len()));
            break;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if is_unprintable(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A multi-line message for the terminal: each line [`printable`] and at most
/// [`MAX_SHOWN_LINE`] characters, at most [`MAX_SHOWN_LINES`] lines.
pub fn printable_block(text: &str) -> String {
    let lines: Vec<&str> = text.split('\n').collect();
    let mut out: Vec<String> = lines
        .iter()
        .take(MAX_SHOWN_LINES)
        .map(|l| printable(l, MAX_SHOWN_LINE))
        .collect();
    if lines.len() > MAX_SHOWN_LINES {
        out.push(format!("… ({} more lines)", lines.len() - MAX_SHOWN_LINES));
    }
    out.join("\n")
}

/// The part of a manifest a located error shows: the line of the span and one line around it,
/// printable and cut to a window around the span when long. Earlier lines stay as empty lines so
/// that line numbers are right; the span is moved into the excerpt.
fn excerpt(text: &str, span: Option<Range<usize>>) -> (String, Option<Range<usize>>) {
    let Some(span) = span else {
        return (String::new(), None);
    };
    let floor = |mut i: usize| {
        i = i.min(text.len());
        while !text.is_char_boundary(i) {
            i -= 1;
        }
        i
    };
    let (start, end) = (floor(span.start), floor(span.end.max(span.start)));
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line_end = text[start..].find('\n').map_or(text.len(), |i| start + i);
    let line_number = text[..line_start].matches('\n').count();
    let needs_care = |s: &str| s.len() > MAX_SHOWN_LINE || s.chars().any(is_unprintable);

    let mut out = "\n".repeat(line_number.saturating_sub(1));
    if line_number > 0 {
        let prev_start = text[..line_start - 1].rfind('\n').map_or(0, |i| i + 1);
        let prev = &text[prev_start..line_start - 1];
        out.push_str(&if needs_care(prev) {
            printable(prev, 80)
        } else {
            prev.to_owned()
        });
        out.push('\n');
    }
    let before = &text[line_start..start];
    let inside = &text[start..end.min(line_end)];
    let after = &text[end.min(line_end)..line_end];
    let before = if needs_care(before) {
        let tail: Vec<char> = before.chars().collect();
        let keep = tail.len().min(40);
        let cut = tail.len() > keep;
        format!(
            "{}{}",
            if cut { "…" } else { "" },
            printable(&tail[tail.len() - keep..].iter().collect::<String>(), 40)
        )
    } else {
        before.to_owned()
    };
    let inside = if needs_care(inside) {
        printable(inside, 80)
    } else {
        inside.to_owned()
    };
    let after = if needs_care(after) {
        printable(after, 40)
    } else {
        after.to_owned()
    };
    out.push_str(&before);
    let new_start = out.len();
    out.push_str(&inside);
    let new_end = out.len();
    out.push_str(&after);
    out.push('\n');
    if line_end + 1 < text.len() {
        let next_end = text[line_end + 1..]
            .find('\n')
            .map_or(text.len(), |i| line_end + 1 + i);
        let next = &text[line_end + 1..next_end];
        out.push_str(&if needs_care(next) {
            printable(next, 80)
        } else {
            next.to_owned()
        });
        out.push('\n');
    }
    (out, Some(new_start..new_end))
}

/// An error as the terminal sees it: every text printable (see [`render`]).
struct Printable<'a>(&'a Error);

impl std::fmt::Debug for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.0, f)
    }
}

impl std::fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&printable_block(&self.0.to_string()))
    }
}

impl std::error::Error for Printable<'_> {}

impl Diagnostic for Printable<'_> {
    fn help<'a>(&'a self) -> Option<Box<dyn std::fmt::Display + 'a>> {
        let help = self.0.help()?.to_string();
        Some(Box::new(printable_block(&help)))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.0.source_code()
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = miette::LabeledSpan> + '_>> {
        let labels = self.0.labels()?.map(|l| {
            miette::LabeledSpan::new_with_span(l.label().map(|t| printable(t, 80)), *l.inner())
        });
        Some(Box::new(labels.collect::<Vec<_>>().into_iter()))
    }
}

/// The most specific cause of an error, on one line (hyper wraps the OS error several times).
pub fn innermost(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = s.source();
    }
    let last = parts.last().cloned().unwrap_or_default().replace('\n', " ");
    // "Connection refused (os error 111)" -> "connection refused"
    let last = match last.rfind(" (os error ") {
        Some(i) if last.ends_with(')') => last[..i].to_owned(),
        _ => last,
    };
    let mut chars = last.chars();
    match chars.next() {
        Some(first) if chars.clone().next().is_some_and(char::is_lowercase) => {
            first.to_lowercase().chain(chars).collect()
        }
        _ => last,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unprintable_characters_are_escaped_and_long_values_cut() {
        assert_eq!(
            printable("a\u{1b}[31mb\u{7}\r\0", 100),
            "a\\u{1b}[31mb\\u{7}\\r\\u{0}"
        );
        assert_eq!(printable("\u{202e}x\u{2028}", 100), "\\u{202e}x\\u{2028}");
        assert_eq!(printable("ñandú", 100), "ñandú");
        let long = "x".repeat(1 << 20);
        assert!(printable(&long, 40).len() < 80);
        assert!(printable_block(&format!("{long}\n{long}")).len() < 2 * MAX_SHOWN_LINE + 100);
    }

    #[test]
    fn excerpts_keep_line_numbers_and_move_the_span() {
        let text = "a = 1\nb = 2\nc = \"\u{1b}x\"\nd = 4\ne = 5\n";
        let start = text.find("\"\u{1b}").unwrap();
        let (ex, span) = excerpt(text, Some(start..start + 5));
        let span = span.unwrap();
        assert_eq!(ex.lines().count(), 4, "{ex:?}");
        assert_eq!(&ex[span], "\"\\u{1b}x\"");
        assert!(!ex.contains('\u{1b}'));
        let huge = format!("k = \"{}\"\n", "y".repeat(1 << 20));
        let (ex, span) = excerpt(&huge, Some(4..huge.len() - 1));
        assert!(ex.len() < 400, "{}", ex.len());
        assert!(span.unwrap().end <= ex.len());
    }
}
