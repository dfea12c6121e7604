//! The tests' HTTP client: hyper 1 with hyper-util's client, over TLS with hyper-rustls (the
//! crates of the product's own stack, but none of its code in `src/http`, so what the tests check
//! is not seen through the code under test). One request per connection, the body read in full
//! (de-chunked by hyper, nothing for `HEAD`), under a deadline; plus base64 from the base64 crate.

use std::collections::BTreeMap;
use std::io;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use super::engine::block_on;

/// A response, body read in full.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Headers, names lower-cased.
    pub headers: BTreeMap<String, String>,
    /// Body, lossily decoded.
    pub body: String,
}

impl HttpResponse {
    /// A header by (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
    }
}

/// Where a request goes.
#[derive(Debug, Clone)]
pub struct Endpoint {
    /// `host:port` the connection is made to.
    connect: String,
    /// The `Host` header.
    host: String,
    /// Over TLS: the client configuration and the server name to verify.
    tls: Option<(rustls::ClientConfig, String)>,
}

impl Endpoint {
    /// Plain HTTP to `addr` (`host:port`), `Host: addr`.
    pub fn plain(addr: &str) -> Self {
        Endpoint {
            connect: addr.to_owned(),
            host: addr.to_owned(),
            tls: None,
        }
    }

    /// HTTPS to `connect` (`host:port`) for `host` (`Host` header, e.g. `name:port`), verifying
    /// the server's certificate for `server_name` with `config`.
    pub fn tls(connect: &str, host: &str, server_name: &str, config: rustls::ClientConfig) -> Self {
        Endpoint {
            connect: connect.to_owned(),
            host: host.to_owned(),
            tls: Some((config, server_name.to_owned())),
        }
    }
}

/// `METHOD path` to `addr` (`host:port`) over plain HTTP; 5 s deadline.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<HttpResponse> {
    send(
        &Endpoint::plain(addr),
        method,
        path,
        headers,
        &[],
        Duration::from_secs(5),
    )
}

/// `METHOD path` with `headers` and `body` to `endpoint`, on a fresh connection, within
/// `deadline`. Callable from synchronous tests and from inside a runtime alike.
pub fn send(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    deadline: Duration,
) -> io::Result<HttpResponse> {
    let run = || block_on(exchange(endpoint, method, path, headers, body, deadline));
    if tokio::runtime::Handle::try_current().is_ok() {
        // A runtime cannot start inside another: the exchange gets a thread of its own.
        std::thread::scope(|s| s.spawn(run).join().expect("the HTTP exchange panicked"))
    } else {
        run()
    }
}

async fn exchange(
    endpoint: &Endpoint,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    deadline: Duration,
) -> io::Result<HttpResponse> {
    let scheme = if endpoint.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("{scheme}://{}{path}", endpoint.connect))
        .header(http::header::HOST, &endpoint.host);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(Full::new(Bytes::copy_from_slice(body)))
        .map_err(io::Error::other)?;
    let answer = async {
        let response = match &endpoint.tls {
            None => {
                Client::builder(TokioExecutor::new())
                    .build(HttpConnector::new())
                    .request(request)
                    .await
            }
            Some((config, server_name)) => {
                let connector = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_tls_config(config.clone())
                    .https_only()
                    .with_server_name_resolver(hyper_rustls::FixedServerNameResolver::new(
                        rustls_pki_types::ServerName::try_from(server_name.clone())
                            .map_err(io::Error::other)?,
                    ))
                    .enable_http1()
                    .build();
                Client::builder(TokioExecutor::new())
                    .build(connector)
                    .request(request)
                    .await
            }
        }
        .map_err(io::Error::other)?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(io::Error::other)?.to_bytes();
        Ok::<_, io::Error>((parts, body))
    };
    let (parts, body) = tokio::time::timeout(deadline, answer).await.map_err(|_| {
        io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no answer to {method} {path} within {deadline:?}"),
        )
    })??;
    Ok(HttpResponse {
        status: parts.status.as_u16(),
        headers: parts
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// Standard base64 with padding (for Basic auth and Docker config `auth`).
pub fn base64(input: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(input)
}
