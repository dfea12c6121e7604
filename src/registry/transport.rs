//! How the registry client reaches a registry host, the way the docker CLI and the engine do:
//! HTTPS trusting the system roots plus `/etc/docker/certs.d/<host[:port]>/` (`*.crt` CAs,
//! `*.cert` + `*.key` client certificate pairs); for registries the engine treats as insecure
//! (its `insecure-registries`, `127.0.0.0/8`, `localhost`), HTTPS without certificate
//! verification first and plain HTTP after it, as the engine does.
//!
//! One HTTP stack (hyper + rustls with the `ring` provider, the one bollard already links) serves
//! every registry; each host gets its own connection pool because its trust differs.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use crate::error::{Error, Result};

/// Where the engine (and so the docker CLI) looks for a registry's CA and client certificates.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// How long one request (headers and body) may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// The registries the engine reaches without verified TLS: `insecure-registries` CIDRs and
/// hosts from the engine's `/info`, plus loopback (`127.0.0.0/8`, `::1`, `localhost`).
///
/// A host name is matched by name only, never resolved: a name that merely resolves to a
/// loopback address still gets verified HTTPS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InsecureRegistries {
    cidrs: Vec<(IpAddr, u8)>,
    hosts: Vec<String>,
}

impl InsecureRegistries {
    /// From the engine's `RegistryConfig`: `InsecureRegistryCIDRs` and the `IndexConfigs` whose
    /// `Secure` is false (unparsable CIDRs are ignored).
    pub fn new(cidrs: &[String], hosts: &[String]) -> Self {
        InsecureRegistries {
            cidrs: cidrs.iter().filter_map(|c| parse_cidr(c)).collect(),
            hosts: hosts.to_vec(),
        }
    }

    /// Whether `host` (`name[:port]`, as in an image name) is insecure.
    pub fn contains(&self, host: &str) -> bool {
        if self.hosts.iter().any(|h| h == host) {
            return true;
        }
        let name = host_name(host);
        if name == "localhost" || self.hosts.iter().any(|h| h == name) {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || self.cidrs.iter().any(|c| in_cidr(ip, *c)),
            Err(_) => false,
        }
    }
}

/// `name` of `name:port`, `[::1]:5000` -> `::1`.
fn host_name(host: &str) -> &str {
    match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(rest),
        None => match host.rsplit_once(':') {
            Some((n, p)) if p.parse::<u16>().is_ok() && !n.contains(':') => n,
            _ => host,
        },
    }
}

fn parse_cidr(text: &str) -> Option<(IpAddr, u8)> {
    let (ip, bits) = text.split_once('/')?;
    let ip: IpAddr = ip.parse().ok()?;
    let bits: u8 = bits.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    (bits <= max).then_some((ip, bits))
}

fn in_cidr(ip: IpAddr, (net, bits): (IpAddr, u8)) -> bool {
    let (a, b, len) = match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u128::from(u32::from(a)), u128::from(u32::from(b)), 32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    if bits == 0 {
        return true;
    }
    let shift = len - u32::from(bits);
    (a >> shift) == (b >> shift)
}

/// One answer, body read in full.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The HTTP client of one registry host, with that host's TLS trust.
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    /// A client for `host` trusting the system roots and `certs_d/<host>/`; with `insecure`,
    /// server certificates are not verified (the engine's behaviour for insecure registries).
    pub fn for_host(host: &str, insecure: bool, certs_d: &Path) -> Result<Self> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let dir = certs_d.join(host);
        let files = CertsDir::read(&dir)?;
        let builder = ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::step("push", format!("TLS setup for registry {host}: {e}")))?;
        let builder = if insecure {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
        } else {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            for ca in files.cas {
                roots.add(ca).map_err(|e| {
                    Error::usage(
                        format!("a CA certificate in `{}` is not usable: {e}", dir.display()),
                        Some("put the registry's CA there as PEM (`ca.crt`)".to_owned()),
                    )
                })?;
            }
            builder.with_root_certificates(roots)
        };
        let config = match files.client {
            Some((chain, key)) => builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::usage(
                    format!(
                        "the client certificate in `{}` is not usable: {e}",
                        dir.display()
                    ),
                    Some("`client.cert` and `client.key` must be a matching PEM pair".to_owned()),
                )
            })?,
            None => builder.with_no_client_auth(),
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(config)
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Http { client })
    }

    /// Sends `request` and reads the whole answer; `Err` is the transport's reason on one line.
    pub async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> std::result::Result<Response, String> {
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| crate::error::innermost(&e))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| crate::error::innermost(&e))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        };
        match tokio::time::timeout(TIMEOUT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!("no answer within {}s", TIMEOUT.as_secs())),
        }
    }
}

/// What `/etc/docker/certs.d/<host>/` holds.
#[derive(Default)]
struct CertsDir {
    cas: Vec<CertificateDer<'static>>,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl CertsDir {
    /// `*.crt` are CAs; `X.cert` with `X.key` is a client pair (as the docker CLI reads them).
    fn read(dir: &Path) -> Result<Self> {
        let mut found = CertsDir::default();
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(found);
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        let unusable = |path: &Path, what: &str| {
            Error::usage(
                format!("`{}` is not a usable {what}", path.display()),
                Some("registry certificates there must be PEM files".to_owned()),
            )
        };
        for path in &paths {
            match path.extension().and_then(|e| e.to_str()) {
                Some("crt") => {
                    let certs: Vec<_> = CertificateDer::pem_file_iter(path)
                        .map_err(|_| unusable(path, "CA certificate"))?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| unusable(path, "CA certificate"))?;
                    found.cas.extend(certs);
                }
                Some("cert") => {
                    let key = path.with_extension("key");
                    if !key.is_file() {
                        return Err(Error::usage(
                            format!(
                                "client certificate `{}` has no key `{}`",
                                path.display(),
                                key.display()
                            ),
                            Some(
                                "put the matching key next to it, or remove the certificate"
                                    .to_owned(),
                            ),
                        ));
                    }
                    let chain: Vec<_> = CertificateDer::pem_file_iter(path)
                        .map_err(|_| unusable(path, "client certificate"))?
                        .collect::<std::result::Result<_, _>>()
                        .map_err(|_| unusable(path, "client certificate"))?;
                    let key = PrivateKeyDer::from_pem_file(&key)
                        .map_err(|_| unusable(&key, "client key"))?;
                    found.client = Some((chain, key));
                }
                _ => {}
            }
        }
        Ok(found)
    }
}

/// Accepts any server certificate: only for registries the engine treats as insecure.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> std::result::Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_the_engines_insecure_registries_are_insecure() {
        let none = InsecureRegistries::default();
        for host in [
            "127.0.0.1:5000",
            "127.1.2.3:5000",
            "localhost:5000",
            "localhost",
            "[::1]:5000",
        ] {
            assert!(none.contains(host), "{host}");
        }
        for host in ["ghcr.io", "10.0.0.1:5000", "registry.test:5000"] {
            assert!(!none.contains(host), "{host}");
        }
        let engine = InsecureRegistries::new(
            &["127.0.0.0/8".into(), "10.1.0.0/16".into(), "bad".into()],
            &["registry.test:5000".into(), "plain.test".into()],
        );
        assert!(engine.contains("10.1.200.3:5000"));
        assert!(!engine.contains("10.2.0.1:5000"));
        assert!(engine.contains("registry.test:5000"));
        assert!(!engine.contains("registry.test:6000"));
        assert!(engine.contains("plain.test:443"));
        assert!(!engine.contains("ghcr.io"));
    }

    #[test]
    fn a_missing_certs_dir_is_no_extra_trust() {
        let found = CertsDir::read(Path::new("/nonexistent/certs.d/r.test:5000")).unwrap();
        assert!(found.cas.is_empty() && found.client.is_none());
    }

    #[test]
    fn a_client_cert_without_its_key_is_a_usage_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("client.cert"), "x").unwrap();
        let e = CertsDir::read(dir.path()).err().unwrap();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("client.key"), "{e}");
    }
}
