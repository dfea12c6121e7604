//! The build-context paths a Dockerfile's `COPY` and `ADD` instructions read: not the copies
//! `--from` another stage or image, not heredoc bodies (`COPY <<EOF /dst`), not URLs.

use std::ops::Range;

use super::lex::Unresolved;
use super::{BuildArgs, Dockerfile, heredoc_word};

/// One source of a `COPY`/`ADD` that reads the build context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContextSource {
    /// 1-based line of the instruction.
    pub line: usize,
    /// `COPY` or `ADD`.
    pub keyword: String,
    /// The source as written.
    pub written: String,
    /// The source unquoted and expanded where it stands.
    pub path: Result<String, Unresolved>,
    /// Bytes of `written` in the file (the instruction's first line when it cannot be found).
    pub span: Range<usize>,
}

/// Every context source of `text`, in order, expanded with `args`.
pub fn context_sources(text: &str, args: BuildArgs) -> Vec<ContextSource> {
    let df = Dockerfile::parse(text);
    let mut out = Vec::new();
    df.walk(args, |stage, ins, scope| {
        if stage.is_none()
            || !matches!(ins.keyword.as_str(), "COPY" | "ADD")
            || ins.flag("from").is_some()
        {
            return;
        }
        let mut paths = ins.paths();
        paths.pop(); // the destination
        let own = &text[ins.span.clone()];
        let mut searched = ins.keyword.len().min(own.len());
        for written in paths {
            if !ins.heredocs.is_empty() && heredoc_word(&written).is_some() {
                continue;
            }
            let path = scope.expand(&written);
            let url = |s: &str| s.contains("://") || s.starts_with("git@");
            if url(&written) || path.as_deref().is_ok_and(url) {
                continue;
            }
            let span = match own[searched..].find(written.as_str()) {
                Some(at) => {
                    let start = ins.span.start + searched + at;
                    searched += at + written.len();
                    start..start + written.len()
                }
                None => {
                    let first = own.find('\n').unwrap_or(own.len());
                    ins.span.start..ins.span.start + first
                }
            };
            out.push(ContextSource {
                line: ins.line,
                keyword: ins.keyword.clone(),
                written,
                path,
                span,
            });
        }
    });
    out
}

/// The context paths a Dockerfile's `COPY`/`ADD` instructions read, relative to the context
/// root (leading `/` and `./` dropped), sorted. A path with a wildcard, or with a variable whose
/// value the file does not tell (a build argument without a default), is cut before that
/// component: its directory is what it may read.
pub fn copied_sources(text: &str) -> Vec<String> {
    let escape = super::directives(text).escape;
    let mut sources: Vec<String> = context_sources(text, BuildArgs::Defaults)
        .into_iter()
        .map(|s| match s.path {
            Ok(path) => kept_components(&path, |part| part.contains(['*', '?', '['])),
            Err(_) => {
                let cut = kept_components(&s.written, |part| part.contains(['*', '?', '[', '$']));
                super::unquote(&cut, escape)
            }
        })
        .collect();
    sources.sort();
    sources.dedup();
    sources
}

/// The leading components of `path` up to the first that `stops`, without empty and `.` ones.
fn kept_components(path: &str, stops: impl Fn(&str) -> bool) -> String {
    let mut kept = Vec::new();
    for part in path.trim_start_matches('/').split('/') {
        if stops(part) {
            break;
        }
        if part.is_empty() || part == "." {
            continue;
        }
        kept.push(part);
    }
    kept.join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_skip_stage_copies_heredocs_and_urls() {
        let text = "ARG DIR=global\nFROM scratch\nARG DIR=assets\nARG LATER\nCOPY --from=builder /x /x\nCOPY [\"assets/logo.txt\", \"/logo.txt\"]\nADD --chown=1:1 conf/*.toml https://example.com/x.tgz /etc/\nCOPY <<EOF /etc/motd\nhello\nEOF\nCOPY $DIR/a.txt ${LATER}/b \"./q.txt\" /dst/\nADD git@github.com:a/b.git /src\n";
        let found = context_sources(text, BuildArgs::Defaults);
        let written: Vec<&str> = found.iter().map(|s| s.written.as_str()).collect();
        assert_eq!(
            written,
            [
                "assets/logo.txt",
                "conf/*.toml",
                "$DIR/a.txt",
                "${LATER}/b",
                "\"./q.txt\""
            ]
        );
        assert_eq!(found[2].path.as_deref(), Ok("assets/a.txt"));
        assert_eq!(found[2].line, 11);
        assert_eq!(&text[found[2].span.clone()], "$DIR/a.txt");
        assert!(found[3].path.is_err());
        assert_eq!(
            copied_sources(text),
            ["", "assets/a.txt", "assets/logo.txt", "conf", "q.txt"]
        );
    }

    #[test]
    fn sources_follow_the_escape_directive_and_continuations() {
        let text = "# escape=`\nFROM scratch\nCOPY a.txt `\n     b\\c.txt /dst/\n";
        let found = context_sources(text, BuildArgs::Defaults);
        let paths: Vec<&str> = found.iter().map(|s| s.path.as_deref().unwrap()).collect();
        assert_eq!(paths, ["a.txt", "b\\c.txt"]);
        assert_eq!(&text[found[1].span.clone()], "b\\c.txt");
    }
}
