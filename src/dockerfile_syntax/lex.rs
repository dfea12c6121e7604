//! The words of an instruction, as BuildKit reads them: its word splitter (`parseWords`), its
//! flag reader (`extractBuilderFlags`) and its shell lexer (`ProcessWord`: quotes, the escape
//! character and `$VAR`/`${VAR}`/`${VAR:-default}`/`${VAR:+alt}` expansion).

/// One leading `--name[=value]` flag of an instruction (`COPY --from=builder`), unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// The name without its dashes (`from`).
    pub name: String,
    /// The value after `=`, when there is one.
    pub value: Option<String>,
}

/// Words split at white space outside quotes, quotes and escapes kept (BuildKit's `parseWords`,
/// which `ENV`, `LABEL` and `ARG` use). `escape` is the file's escape character.
pub fn words(args: &str, escape: char) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut blank_ok = false;
    let mut chars = args.chars().peekable();
    while let Some(c) = chars.next() {
        match quote {
            None if c.is_whitespace() => {
                if blank_ok || !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                blank_ok = false;
            }
            None => {
                if c == '"' || c == '\'' {
                    quote = Some(c);
                    blank_ok = true;
                }
                if c == escape {
                    // An escape at the very end is dropped; otherwise it stays with what it
                    // escapes (even a quote), for the lexer to read.
                    let Some(n) = chars.next() else { break };
                    word.push(c);
                    word.push(n);
                    continue;
                }
                word.push(c);
            }
            Some(q) => {
                if c == q {
                    quote = None;
                }
                if c == escape && q != '\'' {
                    let Some(n) = chars.next() else {
                        quote = None;
                        continue;
                    };
                    word.push(c);
                    word.push(n);
                    continue;
                }
                word.push(c);
            }
        }
    }
    if blank_ok || !word.is_empty() {
        words.push(word);
    }
    words
}

/// Words split at runs of white space, nothing else (BuildKit's `parseStringsWhitespaceDelimited`,
/// which `FROM`, `EXPOSE` and the shell form of `COPY`/`ADD`/`VOLUME` use).
pub fn fields(args: &str) -> Vec<String> {
    args.split(is_space)
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// The white space that separates a keyword from its arguments (Go's `[\t\v\f\r ]`).
pub(super) fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{b}' | '\u{c}' | '\r')
}

/// The leading `--flag[=value]` words of `args` (BuildKit's `extractBuilderFlags`: quotes and
/// `\` escapes inside a flag are removed; a lone `--` ends the flags), and the rest.
pub(super) fn extract_flags(args: &str) -> (Vec<Flag>, &str) {
    let mut flags = Vec::new();
    let mut rest = args;
    loop {
        let trimmed = rest.trim_start();
        if !trimmed.starts_with("--") {
            return (flags, trimmed);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        let mut end = trimmed.len();
        let mut chars = trimmed.char_indices();
        while let Some((i, c)) = chars.next() {
            match quote {
                None if c.is_whitespace() => {
                    end = i;
                    break;
                }
                None if c == '\'' || c == '"' => quote = Some(c),
                Some(q) if c == q => quote = None,
                _ if c == '\\' => {
                    if let Some((_, n)) = chars.next() {
                        word.push(n);
                    }
                }
                _ => word.push(c),
            }
        }
        rest = &trimmed[end..];
        if word == "--" {
            return (flags, rest.trim_start());
        }
        let body = &word[2..];
        flags.push(match body.split_once('=') {
            Some((name, value)) => Flag {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            },
            None => Flag {
                name: body.to_owned(),
                value: None,
            },
        });
    }
}

/// What a variable holds where a word is expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Var {
    /// Set to this value.
    Set(String),
    /// Not set: expands to nothing.
    Unset,
    /// Set or not, by something this reader cannot see (the base image's `ENV`, a build
    /// argument not given here, the platform).
    Unknown,
}

/// Why a word has no value here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// It depends on a variable whose value is [`Var::Unknown`].
    Unknown(String),
    /// The builder would refuse it (an unterminated quote, `${` without `}`, `${X:?}` of an
    /// unset `X`, a substitution it does not know).
    Syntax(String),
}

/// `word` with its quotes and escapes removed and its variables expanded by `lookup`, as
/// BuildKit's shell lexer does.
pub fn expand(
    word: &str,
    escape: char,
    lookup: &dyn Fn(&str) -> Var,
) -> Result<String, Unresolved> {
    let mut lexer = Lexer::new(word, escape, Some(lookup));
    let text = lexer.stop_on(None)?;
    match (lexer.error.take(), text.unknown) {
        (Some(e), _) => Err(Unresolved::Syntax(e)),
        (None, Some(name)) => Err(Unresolved::Unknown(name)),
        (None, None) => Ok(text.text),
    }
}

/// `word` with its quotes and escapes removed and its variables left as written.
pub fn unquote(word: &str, escape: char) -> String {
    let mut lexer = Lexer::new(word, escape, None);
    lexer.stop_on(None).map(|t| t.text).unwrap_or_default()
}

/// Expanded text, and the first unknown variable it depends on.
#[derive(Debug, Default)]
struct Text {
    text: String,
    unknown: Option<String>,
}

impl Text {
    fn push(&mut self, other: Text) {
        self.text.push_str(&other.text);
        if self.unknown.is_none() {
            self.unknown = other.unknown;
        }
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    at: usize,
    escape: char,
    /// `None`: variables are kept as written.
    lookup: Option<&'a dyn Fn(&str) -> Var>,
    /// The first syntax error; the lexer goes on to the end of the word.
    error: Option<String>,
}

impl<'a> Lexer<'a> {
    fn new(word: &str, escape: char, lookup: Option<&'a dyn Fn(&str) -> Var>) -> Self {
        Lexer {
            chars: word.chars().collect(),
            at: 0,
            escape,
            lookup,
            error: None,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.at).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.at += 1;
        }
        c
    }

    fn fail(&mut self, message: impl Into<String>) {
        if self.error.is_none() {
            self.error = Some(message.into());
        }
    }

    /// Up to `stop` (consumed) or the end (`processStopOn`).
    fn stop_on(&mut self, stop: Option<char>) -> Result<Text, Unresolved> {
        let mut out = Text::default();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                self.next();
                return Ok(out);
            }
            match c {
                '\'' => out.push(self.single_quoted()),
                '"' => {
                    let t = self.double_quoted()?;
                    out.push(t);
                }
                '$' => {
                    let t = self.dollar()?;
                    out.push(t);
                }
                _ => {
                    self.next();
                    let c = if c == self.escape {
                        match self.next() {
                            Some(n) => n,
                            None => break,
                        }
                    } else {
                        c
                    };
                    out.text.push(c);
                }
            }
        }
        if let Some(stop) = stop {
            self.fail(format!("missing `{stop}`"));
        }
        Ok(out)
    }

    fn single_quoted(&mut self) -> Text {
        self.next();
        let mut out = Text::default();
        loop {
            match self.next() {
                None => {
                    self.fail("unterminated single quote");
                    return out;
                }
                Some('\'') => return out,
                Some(c) => out.text.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<Text, Unresolved> {
        self.next();
        let mut out = Text::default();
        loop {
            match self.peek() {
                None => {
                    self.fail("unterminated double quote");
                    return Ok(out);
                }
                Some('"') => {
                    self.next();
                    return Ok(out);
                }
                Some('$') => {
                    let t = self.dollar()?;
                    out.push(t);
                }
                Some(c) => {
                    self.next();
                    if c == self.escape {
                        match self.peek() {
                            None => continue,
                            Some(n) if n == '"' || n == '$' || n == self.escape => {
                                self.next();
                                out.text.push(n);
                                continue;
                            }
                            // Every other escape is kept as written.
                            Some(_) => {}
                        }
                    }
                    out.text.push(c);
                }
            }
        }
    }

    /// A variable name (`processName`): digits, one special parameter, or letters, digits and
    /// `_`.
    fn name(&mut self) -> String {
        let mut name = String::new();
        match self.peek() {
            Some(c) if c.is_ascii_digit() => {
                while let Some(c) = self.peek().filter(char::is_ascii_digit) {
                    self.next();
                    name.push(c);
                }
                return name;
            }
            Some(c @ ('@' | '*' | '#' | '?' | '-' | '$' | '!' | '0')) => {
                self.next();
                name.push(c);
                return name;
            }
            _ => {}
        }
        while let Some(c) = self.peek().filter(|c| c.is_alphanumeric() || *c == '_') {
            self.next();
            name.push(c);
        }
        name
    }

    fn get(&self, name: &str) -> Var {
        match self.lookup {
            Some(lookup) => lookup(name),
            None => Var::Unset,
        }
    }

    /// `$NAME`, `${NAME}` and `${NAME<modifier>word}` (`processDollar`).
    fn dollar(&mut self) -> Result<Text, Unresolved> {
        let start = self.at;
        self.next();
        let mut out = self.dollar_value()?;
        if self.lookup.is_none() {
            out.text = self.chars[start..self.at].iter().collect();
            out.unknown = None;
        }
        Ok(out)
    }

    fn dollar_value(&mut self) -> Result<Text, Unresolved> {
        let known = |text: String| Text {
            text,
            unknown: None,
        };
        let unknown = |name: &str| Text {
            text: String::new(),
            unknown: Some(name.to_owned()),
        };
        let value_of = |var: Var, name: &str| match var {
            Var::Set(v) => known(v),
            Var::Unset => known(String::new()),
            Var::Unknown => unknown(name),
        };
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok(known("$".into()));
            }
            return Ok(value_of(self.get(&name), &name));
        }
        self.next();
        match self.peek() {
            None => {
                self.fail("missing `}`");
                return Ok(known(String::new()));
            }
            Some('{' | '}' | ':') => {
                self.fail("bad substitution");
                // Skip to the closing brace so that the rest of the word still reads.
                let _ = self.stop_on(Some('}'));
                return Ok(known(String::new()));
            }
            _ => {}
        }
        let name = self.name();
        let var = self.get(&name);
        let (colon, modifier) = match self.next() {
            Some('}') => return Ok(value_of(var, &name)),
            Some(':') => (true, self.next()),
            m @ Some('-' | '+' | '?') => (false, m),
            other => {
                self.fail(format!(
                    "unsupported substitution `{}` in `${{{name}...}}`",
                    other.map(String::from).unwrap_or_default()
                ));
                let _ = self.stop_on(Some('}'));
                return Ok(known(String::new()));
            }
        };
        let word = self.stop_on(Some('}'))?;
        if self.lookup.is_none() {
            return Ok(known(String::new()));
        }
        let (set, empty) = match &var {
            Var::Set(v) => (true, v.is_empty()),
            Var::Unset => (false, true),
            Var::Unknown => return Ok(unknown(&name)),
        };
        // With a colon, an empty value counts as unset.
        let present = if colon { set && !empty } else { set };
        Ok(match modifier {
            Some('-') if present => value_of(var, &name),
            Some('-') => word,
            Some('+') if present => word,
            Some('+') => known(String::new()),
            Some('?') if present => value_of(var, &name),
            Some('?') => {
                let message = if word.text.is_empty() {
                    "is not allowed to be unset".to_owned()
                } else {
                    word.text
                };
                return Err(Unresolved::Syntax(format!("{name}: {message}")));
            }
            other => {
                self.fail(format!(
                    "unsupported substitution `{}{}` in `${{{name}...}}`",
                    if colon { ":" } else { "" },
                    other.map(String::from).unwrap_or_default()
                ));
                known(String::new())
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Var {
        match name {
            "A" => Var::Set("alpha".into()),
            "EMPTY" => Var::Set(String::new()),
            "BASE" => Var::Unknown,
            _ => Var::Unset,
        }
    }

    fn ex(word: &str) -> Result<String, Unresolved> {
        expand(word, '\\', &env)
    }

    #[test]
    fn words_keep_quotes_and_split_outside_them() {
        assert_eq!(
            words(r#"a="x y" 'b c'=d e\ f "" g"#, '\\'),
            [r#"a="x y""#, "'b c'=d", r"e\ f", r#""""#, "g"]
        );
        // The escape character of the file, not always `\`.
        assert_eq!(words("a=`\" b c", '`'), ["a=`\"", "b", "c"]);
        assert_eq!(words(r#"k="v \" v" j=1"#, '\\'), [r#"k="v \" v""#, "j=1"]);
        assert_eq!(fields(" a\t b  c "), ["a", "b", "c"]);
    }

    #[test]
    fn flags_are_unquoted_and_end_at_the_first_other_word() {
        let (flags, rest) = extract_flags("--chmod=755 --from=\"b\" --link [\"x\", \"/x\"]");
        assert_eq!(
            flags,
            [
                Flag {
                    name: "chmod".into(),
                    value: Some("755".into())
                },
                Flag {
                    name: "from".into(),
                    value: Some("b".into())
                },
                Flag {
                    name: "link".into(),
                    value: None
                }
            ]
        );
        assert_eq!(rest, "[\"x\", \"/x\"]");
        let (flags, rest) = extract_flags("--mount=type=cache,target=/c -- --not-a-flag x");
        assert_eq!(flags[0].value.as_deref(), Some("type=cache,target=/c"));
        assert_eq!(rest, "--not-a-flag x");
        assert_eq!(extract_flags("a --b"), (vec![], "a --b"));
    }

    #[test]
    fn quotes_and_escapes_are_removed_as_the_builder_does() {
        assert_eq!(ex(r#""x \"q\" \\ \$y""#).unwrap(), r#"x "q" \ $y"#);
        // An unknown escape inside double quotes is kept; outside, it escapes the character.
        assert_eq!(ex(r#""line\nbreak""#).unwrap(), r"line\nbreak");
        assert_eq!(ex(r"line\nbreak").unwrap(), "linenbreak");
        assert_eq!(ex("'single $A \\'").unwrap(), "single $A \\");
        assert_eq!(ex(r"\$A").unwrap(), "$A");
        assert_eq!(expand("`$A", '`', &env).unwrap(), "$A");
        assert_eq!(unquote(r#""k k""#, '\\'), "k k");
        assert_eq!(unquote("\"$A ${B:-x}\"", '\\'), "$A ${B:-x}");
    }

    #[test]
    fn variables_expand_with_buildkits_modifiers() {
        for (word, want) in [
            ("$A", "alpha"),
            ("${A}", "alpha"),
            ("v-$A-${A}", "v-alpha-alpha"),
            ("$UNSET", ""),
            ("${UNSET:-d}", "d"),
            ("${EMPTY:-d}", "d"),
            ("${EMPTY-d}", ""),
            ("${UNSET-d}", "d"),
            ("${A:-d}", "alpha"),
            ("${A:+alt}", "alt"),
            ("${EMPTY:+alt}", ""),
            ("${EMPTY+alt}", "alt"),
            ("${UNSET:+alt}", ""),
            ("${UNSET:-${A}x}", "alphax"),
            ("${UNSET:-\"a b\"}", "a b"),
            // A default that is not taken may hold anything.
            ("${A:-$BASE}", "alpha"),
            ("$", "$"),
            ("$/x", "$/x"),
            ("a$1b", "ab"),
        ] {
            assert_eq!(ex(word).as_deref(), Ok(want), "{word}");
        }
        assert_eq!(ex("x$BASE"), Err(Unresolved::Unknown("BASE".into())));
        assert_eq!(ex("${BASE:-d}"), Err(Unresolved::Unknown("BASE".into())));
        assert_eq!(
            ex("${UNSET:-$BASE}"),
            Err(Unresolved::Unknown("BASE".into()))
        );
        for bad in [
            "${A",
            "${:x}",
            "${A%x}",
            "\"open",
            "${UNSET:?needed}",
            "${UNSET?}",
        ] {
            assert!(matches!(ex(bad), Err(Unresolved::Syntax(_))), "{bad}");
        }
    }
}
