//! A registry's certificates as the engine and the docker CLI read them:
//! `/etc/docker/certs.d/<host[:port]>/`, where `*.crt` are CA certificates to trust and `X.cert`
//! with `X.key` is a client certificate pair.

use std::path::{Path, PathBuf};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::error::{Error, Result};

/// Where the engine (and so the docker CLI) looks for a registry's CA and client certificates.
pub const CERTS_D: &str = "/etc/docker/certs.d";

/// What `<certs.d>/<host>/` holds.
#[derive(Debug, Default)]
pub struct CertsDir {
    /// The directory read.
    pub dir: PathBuf,
    /// The certificates of every `*.crt`, in file-name order.
    pub cas: Vec<CertificateDer<'static>>,
    /// A client certificate chain and its key (`X.cert` + `X.key`).
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
}

impl CertsDir {
    /// `certs_d/<host>/` (`host` as in image names, with its port); a missing directory holds
    /// nothing.
    pub fn for_host(certs_d: &Path, host: &str) -> Result<Self> {
        Self::read(&certs_d.join(host))
    }

    /// `*.crt` are CAs; `X.cert` with `X.key` is a client pair (as the docker CLI reads them).
    pub fn read(dir: &Path) -> Result<Self> {
        let mut found = CertsDir {
            dir: dir.to_owned(),
            ..CertsDir::default()
        };
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

#[cfg(test)]
mod tests {
    use super::*;

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
