//! The one way a value from Cargo.toml or the command line gets into a Dockerfile.
//!
//! Docker reads `LABEL`/`ENV` values in two passes (moby/buildkit `frontend/dockerfile`):
//!
//! 1. the parser splits the file into physical lines at `\n` (a line ending in `\` continues on
//!    the next one, `#` at the start of a line is a comment, a line may hold at most 64 KiB), then
//!    splits the arguments into words at Unicode white space outside quotes (`parseWords`), and
//!    `LABEL`/`ENV` split each word at its first `=`;
//! 2. the shell lexer (`shell/lex.go`, `ProcessWord`) removes quotes and escapes and expands
//!    `$name`/`${name}`. Inside double quotes a backslash escapes only `"`, `$` and `\`; every
//!    other character, including `\r`, tabs, NUL and any Unicode, is taken literally.
//!
//! So [`word`] writes a value as a double-quoted word with exactly `"`, `$` and `\` escaped (or
//! bare when it is made only of characters no pass treats specially). The result holds no line
//! break, never ends a line with `\` and never starts a line, so it can neither continue nor start
//! an instruction.
//!
//! The one thing a Dockerfile line cannot hold is a line feed (and more than 64 KiB): for such a
//! value [`word`] answers `None` and the caller passes the value as a build argument instead
//! (`ARG` + `"${NAME}"`, whose expansion is never parsed again), see `render`. Characters are never
//! dropped or replaced.
//!
//! Exec-form arrays (`CMD`, `ENTRYPOINT`, `HEALTHCHECK`, `RUN`) are JSON and are written by
//! [`exec_form`]; Docker does not expand variables in them.

/// Longest value written inline; longer ones go through a build argument (lines are limited to
/// 64 KiB by the parser's scanner, and an escaped value can double in size).
pub const MAX_INLINE: usize = 16 * 1024;

/// Characters a bare word may hold: none of them is special to either pass.
fn is_plain_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | ':' | '@' | '+' | ',' | '-' | '%')
}

/// Whether `value` can be written bare: plain characters, and not starting like a flag (`--x`)
/// or anything else a parser could take for syntax.
pub fn is_plain(value: &str) -> bool {
    value
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '/' || c == '.')
        && value.chars().all(is_plain_char)
}

/// `value` as one Dockerfile word that Docker's `LABEL`/`ENV`/`STOPSIGNAL` reading turns back into
/// exactly `value`; `None` when no word can (a line feed, or longer than [`MAX_INLINE`]).
pub fn word(value: &str) -> Option<String> {
    if value.contains('\n') || value.len() > MAX_INLINE {
        return None;
    }
    if is_plain(value) {
        return Some(value.to_owned());
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        if matches!(c, '"' | '$' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    Some(out)
}

/// An exec-form JSON array (`["/usr/local/bin/orders", "--version"]`), on one line.
pub fn exec_form(args: &[String]) -> String {
    let items: Vec<String> = args
        .iter()
        .map(|a| serde_json::to_string(a).expect("strings serialize"))
        .collect();
    format!("[{}]", items.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_stay_bare_and_others_are_quoted() {
        assert_eq!(word("1.4.2").unwrap(), "1.4.2");
        assert_eq!(word("").unwrap(), "\"\"");
        assert_eq!(word("a b").unwrap(), "\"a b\"");
        assert_eq!(word("--flag").unwrap(), "\"--flag\"");
        assert_eq!(word("#x").unwrap(), "\"#x\"");
        assert_eq!(word(r#"a"$\"#).unwrap(), r#""a\"\$\\""#);
        assert_eq!(word("a\nb"), None);
        assert_eq!(word("\r\t\0é").unwrap(), "\"\r\t\0é\"");
    }

    #[test]
    fn exec_form_is_one_json_line() {
        let args = vec!["/bin/x".to_string(), "a\nb \"c\"".to_string()];
        assert_eq!(exec_form(&args), r#"["/bin/x", "a\nb \"c\""]"#);
    }
}
