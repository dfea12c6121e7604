//! The tool's one HTTP client stack (besides bollard's own): hyper 1 with hyper-util's pooled
//! client, HTTP/1.1, plain TCP or rustls ([`tls`]), every exchange under one deadline.
//!
//! - The registry client builds a [`Client`] per registry host with that host's trust
//!   (`Client::https`); it keeps the registry's semantics (auth, manifests) to itself.
//! - The test stage's readiness and HTTP checks call [`request`]: one plain-HTTP request to a
//!   published port on a fresh connection, the body read in full (de-chunked by hyper, nothing
//!   for `HEAD`), and a one-line reason when there is no answer (refused, closed, timed out).

pub mod tls;
mod x509;

use std::time::Duration;

use ::http::{HeaderMap, Method, Request, StatusCode};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as Pool;
use hyper_util::client::legacy::connect::{Connect, HttpConnector};
use hyper_util::rt::TokioExecutor;

/// The `User-Agent` of every request the tool makes.
pub const USER_AGENT: &str = concat!("cargo-docker-release/", env!("CARGO_PKG_VERSION"));

/// One answer, body read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// The whole body (de-chunked).
    pub body: Bytes,
}

impl Response {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// Why an exchange got no (complete) answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection: refused, unreachable, name not resolved, TLS handshake refused.
    Connect(String),
    /// The peer closed the connection before a response began.
    Closed,
    /// What came back is not HTTP.
    NotHttp(String),
    /// Reading or writing failed midway (reset, truncated body).
    Io(String),
    /// No complete answer within the deadline.
    Timeout(Duration),
}

impl std::fmt::Display for Failure {
    /// The most specific reason, on one line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(why) | Failure::NotHttp(why) | Failure::Io(why) => f.write_str(why),
            Failure::Closed => f.write_str("connection closed before message completed"),
            Failure::Timeout(t) => {
                write!(f, "no answer within {}", humantime::format_duration(*t))
            }
        }
    }
}

/// A pooled HTTP/1.1 client; `C` is plain TCP or TCP+TLS.
#[derive(Debug, Clone)]
pub struct Client<C = HttpsConnector<HttpConnector>> {
    pool: Pool<C, Full<Bytes>>,
    timeout: Duration,
}

impl Client {
    /// HTTPS with `tls` (and plain HTTP for `http://` URLs), connections kept for reuse; each
    /// exchange (connect, headers and body) must end within `timeout`.
    pub fn https(tls: rustls::ClientConfig, timeout: Duration) -> Self {
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(tcp(timeout));
        Client {
            pool: Pool::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            timeout,
        }
    }
}

impl Client<HttpConnector> {
    /// Plain HTTP, a fresh connection per request (`Connection: close`): what a probe of a
    /// service needs, since a kept connection would hide a service that stopped accepting.
    pub fn plain(timeout: Duration) -> Self {
        Client {
            pool: Pool::builder(TokioExecutor::new())
                .pool_max_idle_per_host(0)
                .build(tcp(timeout)),
            timeout,
        }
    }
}

/// The TCP connector: `http://` and `https://` alike (TLS wraps it), no Nagle, a connect
/// deadline.
fn tcp(timeout: Duration) -> HttpConnector {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(timeout));
    http
}

impl<C> Client<C>
where
    C: Connect + Clone + Send + Sync + 'static,
{
    /// Sends `request` and reads the whole answer within the client's deadline.
    pub async fn send(&self, request: Request<Full<Bytes>>) -> Result<Response, Failure> {
        let exchange = async {
            let response = self.pool.request(request).await.map_err(|e| classify(&e))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| Failure::Io(crate::error::innermost(&e)))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::Timeout(self.timeout)),
        }
    }
}

/// What a failed exchange amounts to, with its most specific cause.
fn classify(e: &hyper_util::client::legacy::Error) -> Failure {
    if let Some(tls) = tls_error(e) {
        return Failure::Connect(tls::describe(tls));
    }
    let why = crate::error::innermost(e);
    if e.is_connect() {
        return Failure::Connect(why);
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(h) = s.downcast_ref::<hyper::Error>() {
            if h.is_parse() {
                return Failure::NotHttp(why);
            }
            if h.is_incomplete_message() && std::error::Error::source(h).is_none() {
                return Failure::Closed;
            }
        }
        source = s.source();
    }
    Failure::Io(why)
}

/// The TLS error under `e`, if the handshake failed (rustls's error travels inside one or more
/// `io::Error`s, whose `source` skips it).
fn tls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut source: Option<&'a (dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        let mut inner = s;
        loop {
            if let Some(t) = inner.downcast_ref::<rustls::Error>() {
                return Some(t);
            }
            match inner
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
            {
                Some(wrapped) => inner = wrapped,
                None => break,
            }
        }
        source = s.source();
    }
    None
}

/// A probe's answer: status and body (lossily decoded).
#[derive(Debug, Clone)]
pub struct TextResponse {
    /// Status code.
    pub status: u16,
    /// Body text (empty for `HEAD`).
    pub body: String,
}

/// Sends one plain-HTTP request to `host:port` on a fresh connection and reads the whole
/// response within `timeout`. `Err` says why on one line: `cannot connect to host:port: …`,
/// `the connection closed without a response`, `no response within 2s`, …
pub async fn request(
    host: &str,
    port: u16,
    method: &str,
    path: &str,
    body: Option<&str>,
    timeout: Duration,
) -> Result<TextResponse, String> {
    let authority = if host.contains(':') && !host.starts_with('[') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    };
    let path = if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|_| format!("`{method}` is not an HTTP method"))?;
    let request = Request::builder()
        .method(method)
        .uri(format!("http://{authority}{path}"))
        .header("User-Agent", USER_AGENT)
        .header("Accept", "*/*")
        .header("Connection", "close")
        .body(Full::new(Bytes::from(body.unwrap_or_default().to_owned())))
        .map_err(|e| format!("cannot send `{path}` to {authority}: {e}"))?;
    match Client::plain(timeout).send(request).await {
        Ok(r) => Ok(TextResponse {
            status: r.status.as_u16(),
            body: String::from_utf8_lossy(&r.body).into_owned(),
        }),
        Err(Failure::Connect(why)) => Err(format!("cannot connect to {authority}: {why}")),
        Err(Failure::Closed) => Err("the connection closed without a response".into()),
        Err(Failure::NotHttp(why)) => Err(format!("not an HTTP response: {why}")),
        Err(Failure::Io(why)) => Err(format!("cannot read the response: {why}")),
        Err(Failure::Timeout(t)) => Err(format!(
            "no response within {}",
            humantime::format_duration(t)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that answers every connection with `answer` (after reading the request head)
    /// and returns what it was sent.
    async fn serve(answer: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            s.write_all(answer).await.unwrap();
            s.shutdown().await.unwrap();
            got
        });
        (port, task)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn plain_and_chunked_bodies_are_read_whole() {
        let (port, sent) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok").await;
        let r = request("127.0.0.1", port, "GET", "/healthz", None, SECOND)
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, "ok"));
        let sent = String::from_utf8(sent.await.unwrap()).unwrap();
        assert!(sent.starts_with("GET /healthz HTTP/1.1\r\n"), "{sent}");
        assert!(
            sent.contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "{sent}"
        );

        let (port, _) = serve(
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .await;
        let r = request("127.0.0.1", port, "GET", "/x", None, SECOND)
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (404, "abcde"));
    }

    #[tokio::test]
    async fn head_reads_no_body_and_post_sends_its_body() {
        let (port, _) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n").await;
        let r = request("127.0.0.1", port, "HEAD", "/", None, SECOND)
            .await
            .unwrap();
        assert_eq!((r.status, r.body.as_str()), (200, ""));

        let (port, sent) = serve(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n").await;
        let r = request("127.0.0.1", port, "POST", "orders", Some("{}"), SECOND)
            .await
            .unwrap();
        assert_eq!(r.status, 201);
        let sent = String::from_utf8(sent.await.unwrap()).unwrap();
        assert!(sent.starts_with("POST /orders HTTP/1.1\r\n"), "{sent}");
        assert!(sent.contains("content-length: 2\r\n"), "{sent}");
    }

    #[tokio::test]
    async fn no_answer_is_one_clear_line() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let e = request("127.0.0.1", port, "GET", "/", None, SECOND)
            .await
            .unwrap_err();
        assert_eq!(
            e,
            format!("cannot connect to 127.0.0.1:{port}: connection refused")
        );

        let (port, _) = serve(b"").await;
        let e = request("127.0.0.1", port, "GET", "/", None, SECOND)
            .await
            .unwrap_err();
        assert_eq!(e, "the connection closed without a response");

        let (port, _) = serve(b"SSH-2.0-OpenSSH_9.2\r\n\r\n").await;
        let e = request("127.0.0.1", port, "GET", "/", None, SECOND)
            .await
            .unwrap_err();
        assert!(e.starts_with("not an HTTP response"), "{e}");

        // Accepts and never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let _keep = tokio::spawn(async move {
            let (s, _) = listener.accept().await.unwrap();
            tokio::time::sleep(Duration::from_secs(10)).await;
            drop(s);
        });
        let e = request(
            "127.0.0.1",
            port,
            "GET",
            "/",
            None,
            Duration::from_millis(200),
        )
        .await
        .unwrap_err();
        assert_eq!(e, "no response within 200ms");
    }
}
