//! fixture-svc: a tiny std-only HTTP service for the test-stage tests.
//!
//! `serve` (default) listens on $PORT (8080); `health` asks it for /healthz; `--version` prints the
//! version. FIXTURE_MODE: `crash` exits at start, `never-healthy` fails every health check,
//! `ignore-term` does not handle SIGTERM. FIXTURE_DELAY_MS delays listening.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

unsafe extern "C" {
    fn signal(sig: i32, handler: usize) -> usize;
    fn _exit(code: i32) -> !;
}

extern "C" fn on_term(_: i32) {
    unsafe { _exit(0) }
}

fn main() {
    let mode = std::env::var("FIXTURE_MODE").unwrap_or_default();
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(8080);
    let arg = std::env::args().nth(1);
    match arg.as_deref() {
        Some("--version") => println!("fixture-svc {}", env!("CARGO_PKG_VERSION")),
        Some("health") => {
            if mode == "never-healthy" {
                eprintln!("health: database unreachable (FIXTURE_MODE=never-healthy)");
                std::process::exit(1);
            }
            match get(port, "/healthz") {
                Some(200) => println!("healthy"),
                other => {
                    eprintln!("health: /healthz answered {other:?}");
                    std::process::exit(1);
                }
            }
        }
        Some("serve") | None => serve(port, &mode),
        Some(other) => {
            eprintln!("unknown command `{other}`");
            std::process::exit(2);
        }
    }
}

fn serve(port: u16, mode: &str) {
    if mode == "crash" {
        eprintln!("fatal: cannot open database: connection refused");
        std::process::exit(3);
    }
    if mode != "ignore-term" {
        unsafe {
            signal(15, on_term as *const () as usize);
            signal(2, on_term as *const () as usize);
        }
    }
    if let Some(ms) = std::env::var("FIXTURE_DELAY_MS").ok().and_then(|d| d.parse().ok()) {
        std::thread::sleep(Duration::from_millis(ms));
    }
    let listener = TcpListener::bind(("0.0.0.0", port)).expect("bind");
    println!("listening on 0.0.0.0:{port}");
    for stream in listener.incoming().flatten() {
        std::thread::spawn(move || handle(stream));
    }
}

fn handle(mut stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let request = String::from_utf8_lossy(&buf);
    let path = request.split_whitespace().nth(1).unwrap_or("/");
    let (status, body) = match path {
        "/healthz" => ("200 OK", "ok\n".to_string()),
        "/version" => (
            "200 OK",
            format!(
                "{{\"sha\":\"{}\",\"version\":\"{}\"}}\n",
                std::env::var("SHA").unwrap_or_default(),
                env!("CARGO_PKG_VERSION")
            ),
        ),
        _ => ("404 Not Found", "not found\n".to_string()),
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Status of GET `path` on the local service.
pub fn get(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut response = String::new();
    s.read_to_string(&mut response).ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}
