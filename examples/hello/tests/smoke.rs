//! Smoke tests against a running `hello` service.
//!
//! They talk to `$SERVICE_ADDR` (default `127.0.0.1:8080`), so they need a running service: inside
//! the release's test container (`cargo docker-release` copies this test binary in and runs it next
//! to the service) or next to `cargo run` on the host.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

fn addr() -> String {
    std::env::var("SERVICE_ADDR").unwrap_or_else(|_| "127.0.0.1:8080".to_string())
}

/// `(status code, body)` of `GET path`.
fn get(path: &str) -> (u16, String) {
    let addr = addr();
    let mut stream = TcpStream::connect(&addr)
        .unwrap_or_else(|e| panic!("no hello service at {addr} (set SERVICE_ADDR): {e}"));
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nhost: {addr}\r\nconnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("an HTTP response with headers");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status code");
    (status, body.to_string())
}

#[test]
fn healthz_answers_ok() {
    assert_eq!(get("/healthz"), (200, "ok\n".to_string()));
}

#[test]
fn version_reports_the_crate_version() {
    let (status, body) = get("/version");
    assert_eq!(status, 200);
    let expected = format!("\"version\": \"{}\"", env!("CARGO_PKG_VERSION"));
    assert!(body.contains(&expected), "{body}");
    assert!(body.contains("\"sha\": \""), "{body}");
}

#[test]
fn root_greets() {
    let (status, body) = get("/");
    assert_eq!(status, 200);
    assert!(body.starts_with("Hello"), "{body}");
}
