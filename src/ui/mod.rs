//! Everything the tool shows: cargo-style status lines on stderr, progress bars when a person is
//! watching, machine output (plan, report) on stdout. Nothing else in the crate prints.
#![allow(clippy::print_stdout, clippy::print_stderr)]

mod build_view;
pub mod github;

pub use build_view::BuildView;

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};

use anstyle::{AnsiColor, Effects, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// `--color`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal.
    #[default]
    Auto,
    /// Always color.
    Always,
    /// Never color.
    Never,
}

/// `--message-format`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum MessageFormat {
    /// Status lines for people.
    #[default]
    Human,
    /// One JSON document on stdout.
    Json,
}

/// How much to say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    /// `-q`: errors only.
    Quiet,
    /// Status lines.
    Normal,
    /// `-v`: details.
    Verbose,
    /// `-vv`: full logs.
    VeryVerbose,
}

/// The output channel of a run. Cheap to clone; clones share the progress area.
#[derive(Clone)]
pub struct Shell {
    verbosity: Verbosity,
    color: bool,
    format: MessageFormat,
    progress: Option<MultiProgress>,
    lock: Arc<Mutex<()>>,
}

impl std::fmt::Debug for Shell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shell")
            .field("verbosity", &self.verbosity)
            .field("color", &self.color)
            .finish()
    }
}

/// Progress bars are drawn only for a person at a terminal, never in CI logs.
pub fn use_progress_bars(stderr_is_terminal: bool, ci: bool, verbosity: Verbosity) -> bool {
    stderr_is_terminal && !ci && verbosity != Verbosity::Quiet
}

/// Whether to color stderr.
pub fn use_color(choice: ColorChoice, stderr_is_terminal: bool, no_color: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => stderr_is_terminal && !no_color,
    }
}

impl Shell {
    /// A shell for this process, from the command-line options and the environment.
    pub fn new(verbose: u8, quiet: bool, color: ColorChoice, format: MessageFormat) -> Self {
        let verbosity = match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, 0) => Verbosity::Normal,
            (false, 1) => Verbosity::Verbose,
            (false, _) => Verbosity::VeryVerbose,
        };
        let terminal = std::io::stderr().is_terminal();
        let ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
        let color = use_color(color, terminal, std::env::var_os("NO_COLOR").is_some());
        let progress = use_progress_bars(terminal, ci, verbosity)
            .then(|| MultiProgress::with_draw_target(ProgressDrawTarget::stderr()));
        Shell {
            verbosity,
            color,
            format,
            progress,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// A quiet shell for tests.
    pub fn silent() -> Self {
        Shell {
            verbosity: Verbosity::Quiet,
            color: false,
            format: MessageFormat::Human,
            progress: None,
            lock: Arc::new(Mutex::new(())),
        }
    }

    /// The verbosity.
    pub fn verbosity(&self) -> Verbosity {
        self.verbosity
    }

    /// Whether stderr is colored.
    pub fn color(&self) -> bool {
        self.color
    }

    /// The machine output format.
    pub fn format(&self) -> MessageFormat {
        self.format
    }

    /// `   Building orders 1.4.2`: a green bold verb right-aligned at 12 columns.
    pub fn status(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let style = AnsiColor::Green.on_default().effects(Effects::BOLD);
            self.line(
                &self.styled(style, &format!("{verb:>12}")),
                &message.to_string(),
            );
        }
    }

    /// A detail shown with `-v`.
    pub fn verbose(&self, verb: &str, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Verbose {
            let style = AnsiColor::Cyan.on_default().effects(Effects::BOLD);
            self.line(
                &self.styled(style, &format!("{verb:>12}")),
                &message.to_string(),
            );
        }
    }

    /// `warning: …`.
    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let style = AnsiColor::Yellow.on_default().effects(Effects::BOLD);
            self.line(&self.styled(style, "warning:"), &message.to_string());
        }
    }

    /// `note: …`.
    pub fn note(&self, message: impl std::fmt::Display) {
        if self.verbosity >= Verbosity::Normal {
            let style = AnsiColor::Cyan.on_default().effects(Effects::BOLD);
            self.line(&self.styled(style, "note:"), &message.to_string());
        }
    }

    /// Raw text on stderr (build logs, test output), shown unless `-q`.
    pub fn raw(&self, text: &str) {
        if self.verbosity >= Verbosity::Normal {
            self.write_stderr(text);
        }
    }

    /// Raw text on stderr even with `-q` (the output of a failure).
    pub fn raw_always(&self, text: &str) {
        self.write_stderr(text);
    }

    /// An error, rendered with its location and help.
    pub fn error(&self, error: &crate::error::Error) {
        self.write_stderr(&crate::error::render(error, self.color));
        if github::enabled() {
            self.write_stderr(&github::error_annotations(error));
        }
    }

    /// In GitHub Actions, a lint finding as an annotation at its line (nothing elsewhere: the
    /// finding itself is machine output on stdout).
    pub fn annotate_finding(&self, finding: &crate::dockerfile::lint::Finding) {
        if github::enabled() {
            self.write_stderr(&github::finding_annotation(finding));
        }
    }

    /// Machine output on stdout. A closed pipe is not an error.
    pub fn stdout(&self, text: &str) -> crate::error::Result<()> {
        let mut out = std::io::stdout().lock();
        match out.write_all(text.as_bytes()).and_then(|_| out.flush()) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other.map_err(|e| crate::error::Error::io("writing to stdout", e)),
        }
    }

    /// A spinner line for a long step, or a no-op bar when output is plain.
    pub fn spinner(&self, prefix: &str, message: &str) -> ProgressBar {
        match &self.progress {
            Some(multi) => {
                let bar = multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template("{prefix:>12.cyan.bold} {spinner} {wide_msg}")
                        .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(prefix.to_owned());
                bar.set_message(message.to_owned());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                bar
            }
            None => ProgressBar::hidden(),
        }
    }

    fn styled(&self, style: Style, text: &str) -> String {
        if self.color {
            format!("{style}{text}{style:#}")
        } else {
            text.to_owned()
        }
    }

    fn line(&self, head: &str, message: &str) {
        let message = crate::error::printable_block(message);
        self.write_stderr(&format!("{head} {message}\n"));
    }

    fn write_stderr(&self, text: &str) {
        let _guard = self.lock.lock();
        match &self.progress {
            Some(multi) => multi.suspend(|| {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }),
            None => {
                let _ = std::io::stderr().write_all(text.as_bytes());
            }
        }
    }
}

/// `sha256:0123456789ab…` -> `0123456789ab`.
pub fn short_id(id: &str) -> &str {
    let hex = id.strip_prefix("sha256:").unwrap_or(id);
    &hex[..hex.len().min(12)]
}

/// `12.3 MB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "kB", "MB", "GB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1000.0 && unit < UNITS.len() - 1 {
        value /= 1000.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_bars_only_for_a_person_at_a_terminal() {
        assert!(use_progress_bars(true, false, Verbosity::Normal));
        assert!(!use_progress_bars(true, true, Verbosity::Normal));
        assert!(!use_progress_bars(false, false, Verbosity::Normal));
        assert!(!use_progress_bars(true, false, Verbosity::Quiet));
    }

    #[test]
    fn color_follows_choice_terminal_and_no_color() {
        assert!(use_color(ColorChoice::Always, false, true));
        assert!(!use_color(ColorChoice::Never, true, false));
        assert!(use_color(ColorChoice::Auto, true, false));
        assert!(!use_color(ColorChoice::Auto, true, true));
    }
}
