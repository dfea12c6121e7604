//! Cargo's `license` field as an SPDX licence expression.
//!
//! Cargo accepts the old `MIT/Apache-2.0` style and lowercase operators; SPDX documents need a
//! valid expression of known identifiers, so both are normalised and anything else (an unknown
//! identifier, a `LicenseRef-` the document does not define, broken syntax) is no expression
//! (`NOASSERTION`).

/// The SPDX licence identifiers this module accepts (the ones crates use, from the SPDX list).
const LICENSES: &[&str] = &[
    "0BSD",
    "AFL-3.0",
    "AGPL-3.0",
    "AGPL-3.0-only",
    "AGPL-3.0-or-later",
    "Apache-1.1",
    "Apache-2.0",
    "Artistic-2.0",
    "BlueOak-1.0.0",
    "BSD-1-Clause",
    "BSD-2-Clause",
    "BSD-2-Clause-Patent",
    "BSD-3-Clause",
    "BSD-3-Clause-Clear",
    "BSD-4-Clause",
    "BSL-1.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-4.0",
    "CC0-1.0",
    "CDDL-1.0",
    "CECILL-2.1",
    "EPL-1.0",
    "EPL-2.0",
    "EUPL-1.2",
    "GPL-2.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "ISC",
    "LGPL-2.0",
    "LGPL-2.0-only",
    "LGPL-2.0-or-later",
    "LGPL-2.1",
    "LGPL-2.1-only",
    "LGPL-2.1-or-later",
    "LGPL-3.0",
    "LGPL-3.0-only",
    "LGPL-3.0-or-later",
    "MIT",
    "MIT-0",
    "MPL-1.1",
    "MPL-2.0",
    "MS-PL",
    "MulanPSL-2.0",
    "NCSA",
    "OFL-1.1",
    "OpenSSL",
    "PostgreSQL",
    "PSF-2.0",
    "Python-2.0",
    "Ruby",
    "Unicode-3.0",
    "Unicode-DFS-2016",
    "Unlicense",
    "UPL-1.0",
    "W3C",
    "WTFPL",
    "X11",
    "Zlib",
    "zlib-acknowledgement",
];

/// The SPDX licence exceptions accepted after `WITH`.
const EXCEPTIONS: &[&str] = &[
    "Autoconf-exception-3.0",
    "Bison-exception-2.2",
    "Classpath-exception-2.0",
    "GCC-exception-3.1",
    "LLVM-exception",
];

/// `license` as a valid SPDX expression of known identifiers, in canonical spelling (`or` →
/// `OR`, `mit` → `MIT`, `MIT/Apache-2.0` → `MIT OR Apache-2.0`), or `None`.
pub fn spdx_expression(license: &str) -> Option<String> {
    let tokens = tokenize(&license.replace('/', " OR "))?;
    let mut parser = Parser {
        tokens: &tokens,
        pos: 0,
        out: Vec::new(),
    };
    parser.expression()?;
    if parser.pos != tokens.len() {
        return None;
    }
    let mut text = String::new();
    for (i, t) in parser.out.iter().enumerate() {
        let glue = i > 0 && parser.out[i - 1] != "(" && t != ")";
        if glue {
            text.push(' ');
        }
        text.push_str(t);
    }
    Some(text)
}

fn tokenize(text: &str) -> Option<Vec<String>> {
    let mut tokens = Vec::new();
    let mut word = String::new();
    for c in text.chars() {
        match c {
            '(' | ')' => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
                tokens.push(c.to_string());
            }
            c if c.is_whitespace() => {
                if !word.is_empty() {
                    tokens.push(std::mem::take(&mut word));
                }
            }
            c if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+' => word.push(c),
            _ => return None,
        }
    }
    if !word.is_empty() {
        tokens.push(word);
    }
    Some(tokens)
}

struct Parser<'a> {
    tokens: &'a [String],
    pos: usize,
    out: Vec<String>,
}

impl Parser<'_> {
    fn peek_operator(&self, op: &str) -> bool {
        self.tokens
            .get(self.pos)
            .is_some_and(|t| t.eq_ignore_ascii_case(op))
    }

    fn expression(&mut self) -> Option<()> {
        self.conjunction()?;
        while self.peek_operator("OR") {
            self.pos += 1;
            self.out.push("OR".into());
            self.conjunction()?;
        }
        Some(())
    }

    fn conjunction(&mut self) -> Option<()> {
        self.term()?;
        while self.peek_operator("AND") {
            self.pos += 1;
            self.out.push("AND".into());
            self.term()?;
        }
        Some(())
    }

    fn term(&mut self) -> Option<()> {
        let token = self.tokens.get(self.pos)?;
        self.pos += 1;
        if token == "(" {
            self.out.push("(".into());
            self.expression()?;
            (self.tokens.get(self.pos)? == ")").then_some(())?;
            self.pos += 1;
            self.out.push(")".into());
            return Some(());
        }
        let (id, plus) = match token.strip_suffix('+') {
            Some(id) => (id, "+"),
            None => (token.as_str(), ""),
        };
        let known = LICENSES.iter().find(|l| l.eq_ignore_ascii_case(id))?;
        self.out.push(format!("{known}{plus}"));
        if self.peek_operator("WITH") {
            self.pos += 1;
            let exception = self.tokens.get(self.pos)?;
            let known = EXCEPTIONS
                .iter()
                .find(|e| e.eq_ignore_ascii_case(exception))?;
            self.pos += 1;
            self.out.push("WITH".into());
            self.out.push((*known).to_owned());
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::spdx_expression as expr;

    #[test]
    fn cargo_licences_become_spdx_expressions() {
        assert_eq!(expr("MIT/Apache-2.0").unwrap(), "MIT OR Apache-2.0");
        assert_eq!(expr("Apache-2.0 / MIT").unwrap(), "Apache-2.0 OR MIT");
        assert_eq!(expr("mit or apache-2.0").unwrap(), "MIT OR Apache-2.0");
        assert_eq!(
            expr("(MIT OR Apache-2.0) AND Unicode-3.0").unwrap(),
            "(MIT OR Apache-2.0) AND Unicode-3.0"
        );
        assert_eq!(
            expr("Apache-2.0 WITH LLVM-exception OR MIT").unwrap(),
            "Apache-2.0 WITH LLVM-exception OR MIT"
        );
        assert_eq!(expr("GPL-2.0+").unwrap(), "GPL-2.0+");
    }

    #[test]
    fn anything_else_is_no_expression() {
        for bad in [
            "",
            "Proprietary",
            "MIT OR",
            "(MIT",
            "MIT)",
            "MIT AND AND Zlib",
            "LicenseRef-Mine",
            "MIT WITH Foo-exception",
            "MIT, Apache-2.0",
            "WITH",
        ] {
            assert_eq!(expr(bad), None, "{bad:?}");
        }
    }
}
