//! GitHub Actions (`GITHUB_ACTIONS=true`): errors and lint findings as workflow-command
//! annotations (`::error file=…,line=…,col=…::…`), which GitHub shows on the file and line in the
//! pull request, and the release summary appended to `$GITHUB_STEP_SUMMARY`.

use crate::dockerfile::lint::{Finding, Severity};
use crate::error::Error;

/// Whether this process runs in a GitHub Actions job.
pub fn enabled() -> bool {
    std::env::var("GITHUB_ACTIONS").is_ok_and(|v| v == "true")
}

/// `$GITHUB_STEP_SUMMARY`, in a GitHub Actions job that has one.
pub fn step_summary_path() -> Option<std::path::PathBuf> {
    if !enabled() {
        return None;
    }
    std::env::var_os("GITHUB_STEP_SUMMARY")
        .filter(|p| !p.is_empty())
        .map(Into::into)
}

/// Where an annotation points.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// Path relative to the repository root (`$GITHUB_WORKSPACE`, else the current directory).
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column, when known.
    pub col: Option<usize>,
}

/// One workflow command: `::error file=Cargo.toml,line=9,col=1::message`.
pub fn annotation(level: &str, at: Option<&Location>, message: &str) -> String {
    let mut props = Vec::new();
    if let Some(at) = at {
        props.push(format!("file={}", escape_property(&at.file)));
        props.push(format!("line={}", at.line));
        if let Some(col) = at.col {
            props.push(format!("col={col}"));
        }
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{level}{props}::{}\n", escape_data(message))
}

/// The annotations for an error: a manifest error at its file, line and column; the findings a
/// blocked Dockerfile lists at their lines; anything else as one error without a location.
pub fn error_annotations(error: &Error) -> String {
    match error {
        Error::Preflight { problems } => problems.iter().map(error_annotations).collect(),
        Error::Manifest(m) => {
            use miette::SourceCode;
            let at = m.span.and_then(|span| {
                let contents = m.source_code.read_span(&span, 0, 0).ok()?;
                Some(Location {
                    file: relative(contents.name().unwrap_or_default()),
                    line: contents.line() + 1,
                    col: Some(contents.column() + 1),
                })
            });
            let mut message = m.message.clone();
            if let Some(help) = &m.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            annotation("error", at.as_ref(), &message)
        }
        Error::Dockerfile { message, .. } => {
            let findings: Vec<String> = message.lines().filter_map(finding_line).collect();
            if findings.is_empty() {
                annotation("error", None, &error.to_string())
            } else {
                findings.concat()
            }
        }
        other => annotation("error", None, &other.to_string()),
    }
}

/// A lint finding as an annotation at its line (errors and warnings as such, the rest notices).
pub fn finding_annotation(finding: &Finding) -> String {
    let level = match finding.severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
        Severity::Info | Severity::Style => "notice",
    };
    let at = Location {
        file: relative(finding.file.trim_end_matches(" (generated)")),
        line: finding.line,
        col: None,
    };
    annotation(
        level,
        Some(&at),
        &format!("{}: {}", finding.rule, finding.message),
    )
}

/// `  path:line: rule: message` (how a blocked Dockerfile lists its findings) as an annotation.
fn finding_line(line: &str) -> Option<String> {
    let (file, rest) = line.trim_start().split_once(':')?;
    let (number, message) = rest.split_once(": ")?;
    let line = number.parse().ok()?;
    let at = Location {
        file: relative(file),
        line,
        col: None,
    };
    Some(annotation("error", Some(&at), message))
}

/// `path` relative to the repository root, as GitHub wants it.
fn relative(path: &str) -> String {
    let root = std::env::var_os("GITHUB_WORKSPACE")
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::current_dir().ok());
    root.and_then(|r| {
        std::path::Path::new(path)
            .strip_prefix(r)
            .ok()
            .and_then(|p| p.to_str().map(str::to_owned))
    })
    .unwrap_or_else(|| path.to_owned())
}

/// Workflow-command data escaping (`%`, CR, LF).
fn escape_data(text: &str) -> String {
    text.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Workflow-command property escaping (also `:` and `,`).
fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}

/// Markdown table cell text: one line, `|` escaped.
pub fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\r', '\n'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn annotations_escape_as_github_reads_them() {
        let at = Location {
            file: "a,b:c.toml".into(),
            line: 3,
            col: Some(7),
        };
        assert_eq!(
            annotation("error", Some(&at), "50% off\nnext"),
            "::error file=a%2Cb%3Ac.toml,line=3,col=7::50%25 off%0Anext\n"
        );
        assert_eq!(annotation("notice", None, "hi"), "::notice::hi\n");
    }

    #[test]
    fn manifest_errors_point_at_their_line_and_column() {
        let text = "[package]\nname = \"x\"\n\n[package.metadata.docker]\nimagee = \"x\"\n";
        let start = text.find("imagee").unwrap();
        let e = Error::Manifest(
            crate::error::ManifestError::new(
                "/nowhere/Cargo.toml",
                text,
                Some(start..start + 6),
                "unknown key `imagee`",
            )
            .help("did you mean `image`?"),
        );
        assert_eq!(
            error_annotations(&e),
            "::error file=/nowhere/Cargo.toml,line=5,col=1::unknown key `imagee`%0Ahelp: did you mean `image`?\n"
        );
    }

    #[test]
    fn a_blocked_dockerfile_annotates_each_finding() {
        let e = Error::Dockerfile {
            message: "the Dockerfile of `x` fails the lint:\n  svc/Dockerfile:1: latest-tag: pin the base\n  svc/Dockerfile:4: root-user: add USER".into(),
            help: None,
        };
        assert_eq!(
            error_annotations(&e),
            "::error file=svc/Dockerfile,line=1::latest-tag: pin the base\n::error file=svc/Dockerfile,line=4::root-user: add USER\n"
        );
    }
}
