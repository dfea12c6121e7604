//! A manifest's text kept beside its parsed form, so that any key can be pointed at.
//!
//! `cargo metadata` drops positions, so the tool reads each `Cargo.toml` itself: `toml` for typed
//! deserialization (its errors carry spans), `toml_edit` for the span of an arbitrary key path.

use std::ops::Range;

use serde::Deserialize;

use super::layer::DockerLayer;
use super::messages::strsim_best;
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

/// Turns a `toml` deserialization error into a located error: "did you mean" for unknown keys and
/// enum values, the key's expected type with an example otherwise.
fn deser_error(path: &str, text: &str, e: &toml::de::Error) -> crate::error::Error {
    let message = e.message().trim().to_owned();
    let span = e.span();
    if let Some((unknown, expected)) = parse_unknown_field(&message) {
        let shown = crate::error::printable(&unknown, 60);
        let mut err = ManifestError::new(path, text, span, format!("unknown key `{shown}`"))
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
    let key = span.clone().and_then(|s| key_before(text, s.start));
    if let Some((value, expected)) = parse_unknown_variant(&message) {
        let shown = crate::error::printable(&value, 60);
        let what = key.map(|k| format!(" for `{k}`")).unwrap_or_default();
        return ManifestError::new(path, text, span, format!("unknown value `{shown}`{what}"))
            .label("not one of the choices")
            .help(super::messages::enum_help(&value, &expected))
            .into();
    }
    let first_line = message
        .lines()
        .next()
        .unwrap_or("invalid manifest")
        .to_owned();
    ManifestError::new(path, text, span, crate::error::printable(&first_line, 200))
        .label("here")
        .help(super::messages::type_help(key.as_deref(), &message))
        .into()
}

/// The key whose value is at byte `start`: the last bare or quoted key before the nearest `=` on
/// the same line (`expose = "8080"`, `expose = [1, 70000]`, `tags = { sha = "yes" }`).
fn key_before(text: &str, start: usize) -> Option<String> {
    let start = (0..=start.min(text.len()))
        .rev()
        .find(|i| text.is_char_boundary(*i))?;
    let line_start = text[..start].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[line_start..start];
    let before = line[..line.rfind('=')?].trim_end();
    let key: String = before
        .chars()
        .rev()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '"'))
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    let key = key.trim_matches('"');
    (!key.is_empty()).then(|| key.to_owned())
}

/// Extracts the value and the choices from serde's "unknown variant" message.
fn parse_unknown_variant(message: &str) -> Option<(String, Vec<String>)> {
    parse_unknown(message, "unknown variant `")
}

/// Extracts the unknown key and the expected keys from serde's "unknown field" message.
fn parse_unknown_field(message: &str) -> Option<(String, Vec<String>)> {
    parse_unknown(message, "unknown field `")
}

/// serde's "unknown … `x`, expected one of `a`, `b`": the word after `prefix` and the choices.
fn parse_unknown(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (word, rest) = rest.split_once('`')?;
    let expected = rest
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((word.to_owned(), expected))
}

impl ManifestSource {
    /// A located error when `[package.metadata]` (or the workspace's) has a key that looks like a
    /// misspelt `docker` section, such as `[package.metadata.dockr]`.
    pub fn misspelt_section(&self, holder: &str) -> Option<ManifestError> {
        let doc: toml::Table = toml::from_str(&self.text).ok()?;
        let metadata = doc.get(holder)?.get("metadata")?.as_table()?;
        let typo = super::messages::section_typo(metadata.keys().map(String::as_str))?;
        Some(
            self.error_at(
                &[holder, "metadata", typo.as_str()],
                format!(
                    "`[{holder}.metadata.{}]` is not read: the section is `[{holder}.metadata.docker]`",
                    crate::error::printable(&typo, 40)
                ),
            )
            .label("misspelt section?")
            .help(format!("rename it to `[{holder}.metadata.docker]`")),
        )
    }
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
    fn wrong_types_and_enum_values_get_specific_help() {
        let parse = |docker: &str| {
            let text = format!("[package]\nname = \"a\"\n[package.metadata.docker]\n{docker}\n");
            match ManifestSource::parse("Cargo.toml", text) {
                Err(crate::error::Error::Manifest(e)) => (e.message, e.help.unwrap_or_default()),
                other => panic!("{docker}: {other:?}"),
            }
        };
        let (_, help) = parse("strategy = \"Docker\"");
        assert!(help.contains("did you mean `docker`"), "{help}");
        let (_, help) = parse("revision = \"HEAD\"");
        assert!(help.contains("did you mean `head`"), "{help}");
        let (_, help) = parse("expose = \"8080\"");
        assert!(
            help.contains("`expose` takes a list") && help.contains("[8080]"),
            "{help}"
        );
        let (_, help) = parse("tags = { sha = \"yes\" }");
        assert!(help.contains("`sha`"), "{help}");
    }

    #[test]
    fn misspelt_sections_are_located() {
        let text = "[package]\nname = \"a\"\n[package.metadata.dockr]\nimage = \"x\"\n";
        let src = ManifestSource::parse("Cargo.toml", text.into()).unwrap();
        let err = src.misspelt_section("package").unwrap();
        assert!(err.message.contains("dockr"), "{}", err.message);
        assert!(err.span.is_some());
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
