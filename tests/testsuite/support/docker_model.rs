//! An independent model of how Docker's classic builder reads a Dockerfile, written from moby's
//! sources (buildkit `frontend/dockerfile/parser/parser.go`, `line_parsers.go` and
//! `shell/lex.go`), to check what our escaping produces without trusting our own lint parser.
//! Covers what generated files use: lines and continuations, comments, `LABEL`/`ENV`/`ARG`
//! word parsing and expansion, exec-form JSON.

use std::collections::BTreeMap;

/// What a Dockerfile gives the image, as far as the tests look.
#[derive(Debug, Default)]
pub struct ImageConfig {
    pub labels: BTreeMap<String, String>,
    pub env: BTreeMap<String, String>,
    pub cmd: Option<Vec<String>>,
    pub instructions: Vec<String>,
}

/// bufio.Scanner's MaxScanTokenSize: longer lines are an error.
const MAX_LINE: usize = 64 * 1024;

fn is_space(c: char) -> bool {
    // Go's unicode.IsSpace.
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{85}' | '\u{a0}'
    ) || (c > '\u{ff}' && c.is_whitespace())
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches(is_space).starts_with('#')
}

/// `\\[ \t]*$`: the escape character, optional blanks, end of line.
fn trim_continuation(line: &str) -> (String, bool) {
    let trimmed = line.trim_end_matches([' ', '\t']);
    match trimmed.strip_suffix('\\') {
        Some(rest) => (rest.to_owned(), false),
        None => (line.to_owned(), true),
    }
}

/// Logical lines (instructions), as `Parse` builds them.
pub fn logical_lines(text: &str) -> Result<Vec<String>, String> {
    // bufio.ScanLines: split at \n, drop one \r before it; no empty final token.
    let mut physical: Vec<&str> = text.split('\n').collect();
    if physical.last() == Some(&"") {
        physical.pop();
    }
    let physical: Vec<&str> = physical
        .into_iter()
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    if physical.iter().any(|l| l.len() >= MAX_LINE) {
        return Err("dockerfile line greater than max allowed size".into());
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < physical.len() {
        let mut raw = physical[i];
        if i == 0 {
            raw = raw.strip_prefix('\u{feff}').unwrap_or(raw);
        }
        i += 1;
        let processed = if is_comment(raw) {
            ""
        } else {
            raw.trim_start_matches(is_space)
        };
        let (mut line, mut end) = trim_continuation(processed);
        if end && line.is_empty() {
            continue;
        }
        while !end && i < physical.len() {
            let next = physical[i];
            i += 1;
            if is_comment(next) {
                continue;
            }
            if next.trim_start_matches(is_space).is_empty() {
                continue;
            }
            let (cont, e) = trim_continuation(next);
            line.push_str(&cont);
            end = e;
        }
        out.push(line);
    }
    Ok(out)
}

/// `splitCommand`: the keyword and the rest.
fn split_command(line: &str) -> (String, String) {
    let ws = |c: char| matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ');
    let line = line.trim_matches(is_space);
    match line.find(ws) {
        Some(i) => (
            line[..i].to_ascii_uppercase(),
            line[i..].trim_start_matches(ws).to_owned(),
        ),
        None => (line.to_ascii_uppercase(), String::new()),
    }
}

/// `parseWords`: split at white space outside quotes; quotes and escapes kept.
fn parse_words(rest: &str) -> Vec<String> {
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut pos = 0;
    while pos < chars.len() {
        let mut ch = chars[pos];
        if quote.is_none() && !in_word {
            if is_space(ch) {
                pos += 1;
                continue;
            }
            in_word = true;
        }
        match quote {
            None => {
                if is_space(ch) {
                    in_word = false;
                    if blank_ok || !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                    blank_ok = false;
                    pos += 1;
                    continue;
                }
                if ch == '\'' || ch == '"' {
                    quote = Some(ch);
                    blank_ok = true;
                }
                if ch == '\\' {
                    if pos + 1 == chars.len() {
                        pos += 1;
                        continue;
                    }
                    word.push(ch);
                    pos += 1;
                    ch = chars[pos];
                }
                word.push(ch);
            }
            Some(q) => {
                if ch == q {
                    quote = None;
                }
                if ch == '\\' && q != '\'' {
                    if pos + 1 == chars.len() {
                        quote = None;
                        pos += 1;
                        continue;
                    }
                    pos += 1;
                    word.push(ch);
                    ch = chars[pos];
                }
                word.push(ch);
            }
        }
        pos += 1;
    }
    if (in_word || quote.is_some()) && (blank_ok || !word.is_empty()) {
        words.push(word);
    }
    words
}

/// `ProcessWord`: quotes, escapes and `$name`/`${name}` expansion.
pub fn process_word(word: &str, vars: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut chars: Vec<char> = word.chars().collect();
    // text/scanner skips a byte-order mark at the very start.
    if chars.first() == Some(&'\u{feff}') {
        chars.remove(0);
    }
    let mut out = String::new();
    let mut i = 0;
    let dollar = |i: &mut usize, out: &mut String| -> Result<(), String> {
        *i += 1;
        if chars.get(*i) == Some(&'{') {
            *i += 1;
            let start = *i;
            while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                *i += 1;
            }
            let name: String = chars[start..*i].iter().collect();
            if chars.get(*i) != Some(&'}') || name.is_empty() {
                return Err(format!("unsupported substitution in {word:?}"));
            }
            *i += 1;
            out.push_str(&vars(&name).unwrap_or_default());
            return Ok(());
        }
        let start = *i;
        match chars.get(*i) {
            Some(c) if c.is_numeric() => {
                while *i < chars.len() && chars[*i].is_numeric() {
                    *i += 1;
                }
            }
            Some('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0') => *i += 1,
            _ => {
                while *i < chars.len() && (chars[*i].is_alphanumeric() || chars[*i] == '_') {
                    *i += 1;
                }
            }
        }
        let name: String = chars[start..*i].iter().collect();
        if name.is_empty() {
            out.push('$');
        } else {
            out.push_str(&vars(&name).unwrap_or_default());
        }
        Ok(())
    };
    while i < chars.len() {
        match chars[i] {
            '$' => dollar(&mut i, &mut out)?,
            '\'' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated single quote".into()),
                        Some('\'') => break,
                        Some(c) => out.push(*c),
                    }
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unterminated double quote".into()),
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('$') => dollar(&mut i, &mut out)?,
                        Some('\\') => {
                            i += 1;
                            match chars.get(i) {
                                None => {}
                                Some(c @ ('"' | '$' | '\\')) => {
                                    out.push(*c);
                                    i += 1;
                                }
                                Some(_) => out.push('\\'),
                            }
                        }
                        Some(c) => {
                            out.push(*c);
                            i += 1;
                        }
                    }
                }
            }
            '\\' => {
                i += 1;
                if let Some(c) = chars.get(i) {
                    out.push(*c);
                    i += 1;
                }
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Strips leading `--flag` words (`extractBuilderFlags`).
fn strip_flags(rest: &str) -> &str {
    let mut rest = rest;
    while rest.starts_with("--") {
        let end = rest.find(is_space).unwrap_or(rest.len());
        rest = rest[end..].trim_start_matches(is_space);
    }
    rest
}

/// Reads `text` as Docker does, with `build_args` given to `docker build`.
pub fn evaluate(text: &str, build_args: &BTreeMap<String, String>) -> Result<ImageConfig, String> {
    let mut config = ImageConfig::default();
    let mut args: BTreeMap<String, String> = BTreeMap::new();
    for line in logical_lines(text)? {
        let (keyword, rest) = split_command(&line);
        config.instructions.push(keyword.clone());
        let env = config.env.clone();
        let scope = args.clone();
        let vars = move |name: &str| env.get(name).or_else(|| scope.get(name)).cloned();
        match keyword.as_str() {
            "FROM" => {
                args.clear();
            }
            "ARG" => {
                for word in parse_words(&rest) {
                    let (name, default) = match word.split_once('=') {
                        Some((n, d)) => (n.to_owned(), Some(process_word(d, &vars)?)),
                        None => (word.clone(), None),
                    };
                    let value = build_args
                        .get(&name)
                        .cloned()
                        .or(default)
                        .unwrap_or_default();
                    args.insert(name, value);
                }
            }
            "LABEL" | "ENV" => {
                let words = parse_words(&rest);
                if words.is_empty() || !words[0].contains('=') {
                    return Err(format!("old-style {keyword} or no `=` in {line:?}"));
                }
                for word in words {
                    let (k, v) = word
                        .split_once('=')
                        .ok_or_else(|| format!("can't find = in {word:?}"))?;
                    let key = process_word(k, &vars)?;
                    let value = process_word(v, &vars)?;
                    if keyword == "LABEL" {
                        config.labels.insert(key, value);
                    } else {
                        config.env.insert(key, value);
                    }
                }
            }
            "CMD" => {
                let json = rest.trim_start_matches(is_space);
                if !json.starts_with('[') {
                    return Err(format!("shell-form CMD {line:?}"));
                }
                let cmd: Vec<String> =
                    serde_json::from_str(json).map_err(|e| format!("CMD is not JSON: {e}"))?;
                config.cmd = Some(cmd);
            }
            "HEALTHCHECK" | "COPY" => {
                let _ = strip_flags(&rest);
            }
            _ => {}
        }
    }
    Ok(config)
}

#[test]
fn the_model_reads_docker_examples() {
    let text = "# c\nFROM scratch\nLABEL a=\"x \\\" \\$y \\\\ \\z\" \\\n  # skipped\n  b='s $q' c=\\$d\nENV E=1 \\\n    F=\"${E}2\"\n";
    let config = evaluate(text, &BTreeMap::new()).unwrap();
    assert_eq!(config.labels["a"], "x \" $y \\ \\z");
    assert_eq!(config.labels["b"], "s $q");
    assert_eq!(config.labels["c"], "$d");
    assert_eq!(
        config.env["F"], "2",
        "expansion uses the env before the instruction"
    );
    assert_eq!(config.instructions, ["FROM", "LABEL", "ENV"]);
}
