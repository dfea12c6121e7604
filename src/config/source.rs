//! A manifest's text kept beside its parsed form, so that any key can be pointed at.
//!
//! `cargo metadata` drops positions, so the tool reads each `Cargo.toml` itself: `toml` for typed
//! deserialization (its errors carry spans), `toml_edit` for the span of an arbitrary key path.

use std::ops::Range;

use serde::Deserialize;

use super::layer::DockerLayer;
use crate::error::{ManifestError, Result};

/// One `Cargo.toml`: its path, text and the docker layers it declares.
#[derive(Debug, Clone)]
pub struct ManifestSource {
    /// Path as shown to the user.
    pub path: String,
    /// The file's text.
    pub text: String,
    /// `[package.metadata.docker]`, when present.
    pub package: Option<DockerLayer>,
    /// `[workspace.metadata.docker]`, when present.
    pub workspace: Option<DockerLayer>,
}

#[derive(Deserialize)]
struct ManifestDoc {
    package: Option<MetadataHolder>,
    workspace: Option<MetadataHolder>,
}

#[derive(Deserialize)]
struct MetadataHolder {
    metadata: Option<MetadataDoc>,
}

#[derive(Deserialize)]
struct MetadataDoc {
    docker: Option<DockerLayer>,
}

/// Table path of the package section, for messages and span lookups.
pub const PACKAGE_SECTION: [&str; 3] = ["package", "metadata", "docker"];
/// Table path of the workspace section.
pub const WORKSPACE_SECTION: [&str; 3] = ["workspace", "metadata", "docker"];

impl ManifestSource {
    /// Reads and parses `path`. Syntax errors, unknown keys and wrong types are located errors.
    pub fn read(path: &str) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| crate::error::Error::io(format!("cannot read `{path}`"), e))?;
        Self::parse(path, text)
    }

    /// Parses manifest `text` read from `path`.
    pub fn parse(path: &str, text: String) -> Result<Self> {
        let doc: ManifestDoc = toml::from_str(&text).map_err(|e| deser_error(path, &text, &e))?;
        let layer = |h: Option<MetadataHolder>| h.and_then(|h| h.metadata).and_then(|m| m.docker);
        Ok(ManifestSource {
            path: path.to_owned(),
            package: layer(doc.package),
            workspace: layer(doc.workspace),
            text,
        })
    }

    /// Byte range of the value at `keys` (or of the deepest table on the way that exists).
    ///
    /// Keys walk tables, inline tables, arrays and arrays of tables (an index is a key like `"0"`).
    pub fn span<S: AsRef<str>>(&self, keys: &[S]) -> Option<Range<usize>> {
        let doc = toml_edit::Document::parse(self.text.as_str()).ok()?;
        let mut node = Node::Item(doc.as_item());
        let mut best = None;
        for key in keys.iter().map(AsRef::as_ref) {
            let index = || key.parse::<usize>().ok();
            node = match node {
                Node::Item(toml_edit::Item::Table(t)) | Node::Table(t) => match t.get(key) {
                    Some(item) => Node::Item(item),
                    None => break,
                },
                Node::Item(toml_edit::Item::ArrayOfTables(a)) => {
                    match index().and_then(|i| a.get(i)) {
                        Some(t) => Node::Table(t),
                        None => break,
                    }
                }
                Node::Item(toml_edit::Item::Value(v)) | Node::Value(v) => {
                    let next = match v {
                        toml_edit::Value::InlineTable(t) => t.get(key),
                        toml_edit::Value::Array(a) => index().and_then(|i| a.get(i)),
                        _ => None,
                    };
                    match next {
                        Some(v) => Node::Value(v),
                        None => break,
                    }
                }
                Node::Item(_) => break,
            };
            best = node.span().or(best);
        }
        best
    }

    /// A located error at the value of `keys`.
    pub fn error_at<S: AsRef<str>>(&self, keys: &[S], message: impl Into<String>) -> ManifestError {
        ManifestError::new(&self.path, &self.text, self.span(keys), message)
    }
}

/// Where a key path lookup stands: toml_edit hands out items, tables (in arrays of tables) and
/// values (in inline tables and arrays).
enum Node<'a> {
    Item(&'a toml_edit::Item),
    Table(&'a toml_edit::Table),
    Value(&'a toml_edit::Value),
}

impl Node<'_> {
    fn span(&self) -> Option<Range<usize>> {
        match self {
            Node::Item(i) => i.span(),
            Node::Table(t) => t.span(),
            Node::Value(v) => v.span(),
        }
    }
}

/// Turns a `toml` deserialization error into a located error, with "did you mean" for unknown keys.
fn deser_error(path: &str, text: &str, e: &toml::de::Error) -> crate::error::Error {
    let message = e.message().trim().to_owned();
    let span = e.span();
    if let Some((unknown, expected)) = parse_unknown_field(&message) {
        let mut err = ManifestError::new(path, text, span, format!("unknown key `{unknown}`"))
            .label("not a known key");
        let hint = strsim_best(&unknown, &expected);
        err = match hint {
            Some(best) => err.help(format!(
                "did you mean `{best}`? Known keys here: {}",
                expected.join(", ")
            )),
            None => err.help(format!("known keys here: {}", expected.join(", "))),
        };
        return err.into();
    }
    let first_line = message
        .lines()
        .next()
        .unwrap_or("invalid manifest")
        .to_owned();
    ManifestError::new(path, text, span, first_line)
        .label("here")
        .help("fix this value; see README.md for every key and its type")
        .into()
}

/// Extracts the unknown key and the expected keys from serde's message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix("unknown field `")?;
    let (unknown, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((unknown.to_owned(), expected))
}

/// The candidate closest to `input`, if it is close enough to be a likely typo.
pub fn strsim_best<'a>(input: &str, candidates: &'a [String]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| (strsim::jaro_winkler(input, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_field_message_is_parsed() {
        let (k, exp) =
            parse_unknown_field("unknown field `imgae`, expected one of `image`, `bin`").unwrap();
        assert_eq!(k, "imgae");
        assert_eq!(exp, vec!["image", "bin"]);
        assert_eq!(strsim_best("imgae", &exp), Some("image"));
    }

    #[test]
    fn span_points_into_inline_tables() {
        let text =
            "[package]\nname = \"a\"\n[package.metadata.docker]\ntags = { extra = [\"{bad}\"] }\n";
        let src = ManifestSource::parse("Cargo.toml", text.into()).unwrap();
        let span = src
            .span(&["package", "metadata", "docker", "tags", "extra", "0"])
            .unwrap();
        assert_eq!(&text[span], "\"{bad}\"");
    }

    #[test]
    fn span_points_into_arrays_of_tables() {
        let text = "[package]\nname = \"a\"\n[[package.metadata.docker.test.exec]]\ncmd = [\"/a\"]\n[[package.metadata.docker.test.exec]]\ncmd = [\"/b\"]\ntimeout = \"soon\"\n";
        let src = ManifestSource::parse("Cargo.toml", text.into()).unwrap();
        let span = src
            .span(&[
                "package", "metadata", "docker", "test", "exec", "1", "timeout",
            ])
            .unwrap();
        assert_eq!(&text[span], "\"soon\"");
    }
}
