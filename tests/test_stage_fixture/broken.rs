//! Runs inside the container and fails: /missing is not served.

use std::io::{Read, Write};
use std::net::TcpStream;

#[test]
fn missing_endpoint_answers() {
    let port = std::env::var("SERVICE_PORT").unwrap_or_else(|_| "8080".into());
    let mut s = TcpStream::connect(format!("127.0.0.1:{port}")).expect("connect to the service");
    write!(s, "GET /missing HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "expected 200 from /missing, got: {response}");
}
