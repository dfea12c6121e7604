//! `--timings` (cargo's flag and convention): every service's phases on one timeline, as
//! spans in the JSON report and as an HTML page under `<target>/docker-release-timings/`
//! (`docker-release-timing.html`, and a copy named by the run's start time), no script needed.

use std::fmt::Write;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Serialize;

use super::ReleaseReport;
use crate::error::{Error, Result};

/// One phase of one service: `cargo`, `image`, `test`, a check (`check: ready: …`), `tag`,
/// `push`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Span {
    /// What ran.
    pub phase: String,
    /// Milliseconds after the release started.
    pub start_ms: u64,
    /// How long it took.
    pub duration_ms: u64,
}

impl Span {
    /// `phase` from `started` (an instant after `origin`) for `duration_ms`.
    pub fn at(
        phase: impl Into<String>,
        origin: std::time::Instant,
        started: std::time::Instant,
        duration_ms: u64,
    ) -> Span {
        Span {
            phase: phase.into(),
            start_ms: started.saturating_duration_since(origin).as_millis() as u64,
            duration_ms,
        }
    }
}

/// The colour of a phase's bar.
fn colour(phase: &str) -> &'static str {
    match phase.split(':').next().unwrap_or(phase) {
        "cargo" => "#e3a05b",
        "image" => "#6c9bd2",
        "test" => "#b9d6a3",
        "check" => "#6fae5a",
        "tag" => "#c792d8",
        "push" => "#d0605e",
        _ => "#aaaaaa",
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The HTML page of `report`'s spans.
pub fn html(report: &ReleaseReport) -> String {
    let services: Vec<(String, &[Span])> = report
        .services
        .iter()
        .map(|s| {
            (
                format!("{} {}", s.package, s.version),
                s.timings.spans.as_slice(),
            )
        })
        .collect();
    page(&report.started, report.duration_ms, &services)
}

/// The page: a bar per span of each service on one time axis, and a table.
fn page(started: &str, duration_ms: u64, services: &[(String, &[Span])]) -> String {
    let total = duration_ms.max(1) as f64;
    let width = 1000.0;
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>cargo docker-release timings</title>\
         <style>body{{font-family:sans-serif;margin:2em}}td,th{{padding:2px 8px;text-align:left}}\
         td.n{{text-align:right}}</style></head><body>\n<h1>cargo docker-release timings</h1>\n\
         <p>Started {}, {:.1} s, {} service(s).</p>\n",
        escape(started),
        total / 1000.0,
        services.len()
    );
    for (name, spans) in services {
        let rows = spans.len().max(1);
        let _ = write!(
            out,
            "<h2>{}</h2>\n<svg width=\"{}\" height=\"{}\" xmlns=\"http://www.w3.org/2000/svg\">\n",
            escape(name),
            width + 320.0,
            rows * 18 + 4
        );
        for (row, span) in spans.iter().enumerate() {
            let x = span.start_ms as f64 / total * width;
            let w = (span.duration_ms as f64 / total * width).max(1.0);
            let y = row * 18 + 2;
            let _ = writeln!(
                out,
                "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"14\" fill=\"{}\"><title>{} {} ms</title></rect>\
                 <text x=\"{:.1}\" y=\"{}\" font-size=\"11\">{} ({} ms)</text>",
                colour(&span.phase),
                escape(&span.phase),
                span.duration_ms,
                x + w + 4.0,
                y + 11,
                escape(&span.phase),
                span.duration_ms
            );
        }
        out.push_str(
            "</svg>\n<table><tr><th>phase</th><th>start (ms)</th><th>duration (ms)</th></tr>\n",
        );
        for span in spans.iter() {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                escape(&span.phase),
                span.start_ms,
                span.duration_ms
            );
        }
        out.push_str("</table>\n");
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes the page to `<target_dir>/docker-release-timings/`: `docker-release-timing.html` and
/// `docker-release-timing-<start>.html`. Returns the dated path.
pub fn write(target_dir: &Utf8Path, report: &ReleaseReport) -> Result<Utf8PathBuf> {
    let dir = target_dir.join("docker-release-timings");
    std::fs::create_dir_all(&dir).map_err(|e| Error::io(format!("creating `{dir}`"), e))?;
    let stamp: String = report
        .started
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let page = html(report);
    let dated = dir.join(format!("docker-release-timing-{stamp}.html"));
    for path in [dir.join("docker-release-timing.html"), dated.clone()] {
        std::fs::write(&path, &page).map_err(|e| Error::io(format!("writing `{path}`"), e))?;
    }
    Ok(dated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phase_is_a_bar_and_a_row_and_names_are_escaped() {
        let spans = [
            Span {
                phase: "cargo".into(),
                start_ms: 0,
                duration_ms: 1000,
            },
            Span {
                phase: "check: http GET /a?b&c".into(),
                start_ms: 1000,
                duration_ms: 500,
            },
        ];
        let page = page(
            "2026-12-07T00:00:00Z",
            2000,
            &[("<svc> 1.0.0".into(), &spans)],
        );
        assert!(page.contains("&lt;svc&gt; 1.0.0"), "{page}");
        assert!(
            page.contains("check: http GET /a?b&amp;c (500 ms)"),
            "{page}"
        );
        assert!(
            page.contains("width=\"500.0\""),
            "cargo: half the run: {page}"
        );
        assert!(
            page.contains("x=\"500.0\" y=\"20\" width=\"250.0\""),
            "{page}"
        );
        assert_eq!(page.matches("<rect").count(), 2);
    }
}
