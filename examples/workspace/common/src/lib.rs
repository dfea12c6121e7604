//! The HTTP/1.1 server shared by the example services, with no dependencies.
//!
//! Every service binary calls [`main`] with its name, version and default port and gets:
//!
//! - `<svc>` / `<svc> serve`: listens on `0.0.0.0:$PORT` and serves `GET /healthz` (`ok`),
//!   `GET /version` (JSON with the version and `$SHA`) and `GET /`. SIGTERM and SIGINT stop it
//!   cleanly with exit code 0.
//! - `<svc> health`: asks `127.0.0.1:$PORT/healthz`, exits 0 when healthy (an exec-form
//!   `HEALTHCHECK` that works on `scratch`).
//! - `<svc> --version`: prints the version.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Who is serving.
#[derive(Debug, Clone, Copy)]
pub struct Service {
    /// Binary name, used in messages and the greeting.
    pub name: &'static str,
    /// Version reported by `--version` and `/version`.
    pub version: &'static str,
    /// Port used when `$PORT` is not set.
    pub default_port: u16,
}

/// Runs the command line of a service.
pub fn main(service: Service) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let port = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(service.default_port);
    let usage = format!("usage: {} [serve | health | --version]", service.name);
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        [] | ["serve"] => match serve(service, port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{}: {e}", service.name);
                ExitCode::FAILURE
            }
        },
        ["health"] => match health(port) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("unhealthy: {e}");
                ExitCode::FAILURE
            }
        },
        ["--version" | "-V" | "version"] => {
            println!("{} {}", service.name, service.version);
            ExitCode::SUCCESS
        }
        ["--help" | "-h" | "help"] => {
            println!("{usage}");
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("{usage}");
            ExitCode::from(2)
        }
    }
}

/// Set by the signal handler; the accept loop polls it.
static STOP: AtomicBool = AtomicBool::new(false);

const SIGINT: i32 = 2;
const SIGTERM: i32 = 15;

unsafe extern "C" {
    /// libc's `signal(2)`; the handler is passed as an address.
    fn signal(signum: i32, handler: usize) -> usize;
}

extern "C" fn on_signal(_: i32) {
    // Only an atomic store: async-signal-safe.
    STOP.store(true, Ordering::SeqCst);
}

/// Serves until SIGTERM or SIGINT.
pub fn serve(service: Service, port: u16) -> io::Result<()> {
    // SAFETY: installs a handler that only stores to an atomic.
    unsafe {
        signal(SIGTERM, on_signal as extern "C" fn(i32) as usize);
        signal(SIGINT, on_signal as extern "C" fn(i32) as usize);
    }
    let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::UNSPECIFIED, port)))?;
    listener.set_nonblocking(true)?;
    println!("listening on {}", listener.local_addr()?);
    io::stdout().flush()?;
    while !STOP.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                std::thread::spawn(move || {
                    let _ = handle(service, stream);
                });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    println!("shutting down");
    Ok(())
}

/// Reads one request and answers it; the connection is closed afterwards.
fn handle(service: Service, stream: TcpStream) -> io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut request_line = String::new();
    reader.read_line(&mut request_line)?;
    // Skip the headers; the routes take no body.
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let sha = std::env::var("SHA").unwrap_or_default();
    let (status, content_type, body) = respond(service, method, path, &sha);
    let mut out = &stream;
    write!(
        out,
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )?;
    out.flush()
}

/// Routes a request: `(status line, content type, body)`.
pub fn respond(
    service: Service,
    method: &str,
    path: &str,
    sha: &str,
) -> (&'static str, &'static str, String) {
    match (method, path) {
        ("GET", "/healthz") => ("200 OK", "text/plain", "ok\n".to_string()),
        ("GET", "/version") => (
            "200 OK",
            "application/json",
            format!(
                "{{\"version\": \"{}\", \"sha\": \"{}\"}}\n",
                json_escape(service.version),
                json_escape(sha)
            ),
        ),
        ("GET", "/") => (
            "200 OK",
            "text/plain",
            format!("Hello from {} {}!\n", service.name, service.version),
        ),
        ("GET", _) => ("404 Not Found", "text/plain", "not found\n".to_string()),
        _ => (
            "405 Method Not Allowed",
            "text/plain",
            "method not allowed\n".to_string(),
        ),
    }
}

/// Escapes a string for a JSON string literal.
fn json_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// Succeeds when `127.0.0.1:port/healthz` answers 200.
pub fn health(port: u16) -> io::Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.lines().next().unwrap_or_default();
    if status.split_whitespace().nth(1) == Some("200") {
        Ok(())
    } else {
        Err(io::Error::other(format!("/healthz answered `{status}`")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SVC: Service = Service {
        name: "orders",
        version: "1.4.2",
        default_port: 8080,
    };

    #[test]
    fn healthz_is_ok() {
        assert_eq!(respond(SVC, "GET", "/healthz", "").2, "ok\n");
    }

    #[test]
    fn version_reports_version_and_sha() {
        let body = respond(SVC, "GET", "/version", "0123abc").2;
        assert_eq!(body, "{\"version\": \"1.4.2\", \"sha\": \"0123abc\"}\n");
    }

    #[test]
    fn root_greets_by_name() {
        assert_eq!(respond(SVC, "GET", "/", "").2, "Hello from orders 1.4.2!\n");
    }
}
