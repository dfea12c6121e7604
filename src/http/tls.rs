//! The TLS side of the HTTP stack: rustls with the `ring` provider (the one bollard already
//! links), trusting the system roots plus the extra CAs a caller names (a registry's
//! `certs.d` directory), optionally with a client certificate; or, for hosts the engine treats
//! as insecure, no server verification at all.

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// What a TLS client trusts and presents.
#[derive(Debug, Default)]
pub struct Trust {
    /// CA certificates trusted besides the system roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// A client certificate chain and its key.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// `false`: server certificates are not verified (only for hosts the engine treats as
    /// insecure).
    pub verify: bool,
}

/// Why a TLS configuration cannot be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsError {
    /// An extra CA certificate is not usable as a trust anchor.
    Ca(String),
    /// The client certificate and key do not make a usable pair.
    ClientCert(String),
    /// The TLS library refused the protocol setup.
    Setup(String),
}

/// The crypto provider every TLS connection uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A client configuration for `trust`.
pub fn client_config(trust: Trust) -> Result<ClientConfig, TlsError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let builder = if trust.verify {
        let mut roots = RootCertStore::empty();
        roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
        for ca in trust.extra_roots {
            roots.add(ca).map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        builder.with_root_certificates(roots)
    } else {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
    };
    match trust.client {
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| TlsError::ClientCert(e.to_string())),
        None => Ok(builder.with_no_client_auth()),
    }
}

/// Accepts any server certificate: only for hosts the engine treats as insecure.
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
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
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
