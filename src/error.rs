//! The one error type of the tool, its exit codes and how it is rendered.
//!
//! Exit codes follow SPEC section 2: `1` a release step failed (build, test, push, engine),
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
        ManifestError {
            message: message.into(),
            source_code: NamedSource::new(path, text.to_owned()),
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
    /// A Dockerfile problem (rendering, drift, lint findings that block a release).
    #[error("{message}")]
    Dockerfile {
        /// What is wrong.
        message: String,
        /// How to fix it.
        #[help]
        help: Option<String>,
        /// Exit code: 1 for drift or findings, 2 for a template or configuration problem.
        code: i32,
    },
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
    #[error("interrupted by {}", crate::interrupt::signal_name())]
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
    /// The process exit code for this error (SPEC section 2).
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. }
            | Error::Manifest(_)
            | Error::Workspace { .. }
            | Error::Git { .. }
            | Error::Plan { .. }
            | Error::TagConflict { .. }
            | Error::TestConfig { .. } => 2,
            Error::Dockerfile { code, .. } => *code,
            Error::Step { .. } | Error::Io { .. } => 1,
            Error::Interrupted => crate::interrupt::exit_code(),
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
pub fn render(error: &Error, color: bool) -> String {
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
    if handler.render_report(&mut out, error).is_err() {
        out = format!("error: {error}\n");
    }
    // miette indents the headline by two spaces; cargo starts at column 0.
    match out.strip_prefix("  ") {
        Some(rest) => rest.to_owned(),
        None => out,
    }
}
