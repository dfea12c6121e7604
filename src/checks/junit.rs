//! The JUnit XML report of the test stage (one `<testsuite>`, one `<testcase>` per check), as CI
//! systems read it. Hand-written: the format is small, and escaping is the only subtle part.

use super::TestReport;

/// Renders `report` as JUnit XML; `suite` names the test suite (e.g. the package).
pub fn render(suite: &str, report: &TestReport) -> String {
    let failures = report.checks.iter().filter(|c| !c.passed).count();
    let total: u64 = report.checks.iter().map(|c| c.duration_ms).sum();
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    xml.push_str(&format!(
        "<testsuites name=\"cargo-docker-release\" tests=\"{}\" failures=\"{failures}\" time=\"{}\">\n",
        report.checks.len(),
        secs(total)
    ));
    xml.push_str(&format!(
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{}\">\n",
        escape(suite),
        report.checks.len(),
        secs(total)
    ));
    for check in &report.checks {
        xml.push_str(&format!(
            "    <testcase name=\"{}\" classname=\"{}.{}\" time=\"{}\"",
            escape(&check.name),
            escape(suite),
            escape(&check.kind),
            secs(check.duration_ms)
        ));
        if check.passed && check.output.is_empty() {
            xml.push_str("/>\n");
            continue;
        }
        xml.push_str(">\n");
        if !check.passed {
            let first = check.output.lines().next().unwrap_or("failed");
            xml.push_str(&format!(
                "      <failure message=\"{}\" type=\"{}\">{}</failure>\n",
                escape(first),
                escape(&check.kind),
                escape(&check.output)
            ));
        } else {
            xml.push_str(&format!(
                "      <system-out>{}</system-out>\n",
                escape(&check.output)
            ));
        }
        xml.push_str("    </testcase>\n");
    }
    xml.push_str("  </testsuite>\n</testsuites>\n");
    xml
}

fn secs(ms: u64) -> String {
    format!("{:.3}", ms as f64 / 1000.0)
}

/// Escapes text for XML content and attributes; drops characters XML 1.0 cannot carry.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\t' | '\r' => out.push_str(&format!("&#{};", c as u32)),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::CheckResult;

    #[test]
    fn escapes_everything_that_could_break_the_document() {
        assert_eq!(
            escape("a<b>&\"c'\u{1b}[0m\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;\u{FFFD}[0m&#10;"
        );
    }

    #[test]
    fn lists_every_check_and_marks_failures() {
        let check = |name: &str, passed| CheckResult {
            name: name.into(),
            kind: "exec".into(),
            passed,
            started_ms: 0,
            duration_ms: 1500,
            output: if passed {
                String::new()
            } else {
                "exit 1\n<oops>".into()
            },
            started: None,
        };
        let report = TestReport {
            checks: vec![check("ok", true), check("bad", false)],
            ..Default::default()
        };
        let xml = render("orders", &report);
        assert!(xml.contains("tests=\"2\" failures=\"1\""));
        assert!(xml.contains("<testcase name=\"ok\" classname=\"orders.exec\" time=\"1.500\"/>"));
        assert!(xml.contains(
            "<failure message=\"exit 1\" type=\"exec\">exit 1&#10;&lt;oops&gt;</failure>"
        ));
    }
}
