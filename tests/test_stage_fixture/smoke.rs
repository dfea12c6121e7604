//! Runs inside the container: the service answers on SERVICE_HOST:SERVICE_PORT.

use std::io::{Read, Write};
use std::net::TcpStream;

fn status(path: &str) -> u16 {
    let host = std::env::var("SERVICE_HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port = std::env::var("SERVICE_PORT").unwrap_or_else(|_| "8080".into());
    let mut s = TcpStream::connect(format!("{host}:{port}")).expect("connect to the service");
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    s.read_to_string(&mut response).unwrap();
    response.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn health_endpoint_answers_inside_the_container() {
    assert_eq!(status("/healthz"), 200);
}

#[test]
fn unknown_paths_are_not_found() {
    assert_eq!(status("/nope"), 404);
}
