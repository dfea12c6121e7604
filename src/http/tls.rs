//! The TLS side of the HTTP stack: rustls with the `ring` provider (the one bollard already
//! links), trusting the system roots plus the extra CAs a caller names (a registry's
//! `certs.d` directory), optionally with a client certificate; or, for hosts the engine treats
//! as insecure, no server verification at all.
//!
//! A trusted certificate may also be the server's own certificate, as Docker's documented
//! self-signed recipe makes it (`openssl req -x509 … -addext subjectAltName=DNS:host`, the same
//! file served and copied to `certs.d/<host:port>/ca.crt`). The engine (Go's `crypto/x509`)
//! accepts such a certificate as its own chain; webpki refuses a CA certificate as an end entity
//! (`CaUsedAsEndEntity`). [`ExtraRootsVerifier`] accepts an end-entity certificate that is
//! byte-identical to one of the extra roots, still checking its name and validity period (and
//! rustls still checks the handshake signature with its key); every other certificate goes to
//! webpki unchanged.

use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::ParsedCertificate;
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, OtherError, RootCertStore,
    SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

use super::x509;

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
        for ca in &trust.extra_roots {
            roots
                .add(ca.clone())
                .map_err(|e| TlsError::Ca(e.to_string()))?;
        }
        let roots = Arc::new(roots);
        match WebPkiServerVerifier::builder_with_provider(roots.clone(), provider.clone()).build() {
            Ok(webpki) => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(ExtraRootsVerifier {
                    extra_roots: trust.extra_roots,
                    webpki,
                    provider,
                })),
            // No root at all (no system roots, no certs.d): nothing verifies, as before.
            Err(_) => builder.with_root_certificates(roots),
        }
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

/// webpki, plus the extra roots as end-entity certificates of their own (see the module doc).
#[derive(Debug)]
pub struct ExtraRootsVerifier {
    extra_roots: Vec<CertificateDer<'static>>,
    webpki: Arc<WebPkiServerVerifier>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for ExtraRootsVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self
            .extra_roots
            .iter()
            .any(|root| root.as_ref() == end_entity.as_ref())
        {
            return verify_trusted_end_entity(end_entity, server_name, now);
        }
        let verdict = self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        );
        match verdict {
            // A self-signed certificate nobody trusts: webpki finds no issuer, or (when it is a
            // CA certificate, as `openssl req -x509` makes it) refuses it before looking.
            Err(rustls::Error::InvalidCertificate(ref e))
                if unknown_issuer(e)
                    && intermediates.is_empty()
                    && x509::fields(end_entity).is_some_and(|f| f.self_issued()) =>
            {
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(SelfSignedUntrusted)),
                )))
            }
            other => other,
        }
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
            &self.provider.signature_verification_algorithms,
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
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }

    fn root_hint_subjects(&self) -> Option<&[rustls::DistinguishedName]> {
        self.webpki.root_hint_subjects()
    }
}

/// webpki's verdicts for a certificate whose issuer is not trusted.
fn unknown_issuer(e: &CertificateError) -> bool {
    match e {
        CertificateError::UnknownIssuer => true,
        CertificateError::Other(other) => matches!(
            other.0.downcast_ref::<webpki::Error>(),
            Some(webpki::Error::CaUsedAsEndEntity)
        ),
        _ => false,
    }
}

/// A server certificate that is itself a trusted root: valid for `server_name` (its
/// subjectAltName) and at `now`.
fn verify_trusted_end_entity(
    end_entity: &CertificateDer<'_>,
    server_name: &ServerName<'_>,
    now: UnixTime,
) -> Result<ServerCertVerified, rustls::Error> {
    let parsed = ParsedCertificate::try_from(end_entity)?;
    rustls::client::verify_server_name(&parsed, server_name)?;
    let fields = x509::fields(end_entity).ok_or(rustls::Error::InvalidCertificate(
        CertificateError::BadEncoding,
    ))?;
    let time = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    let unix =
        |secs: i64| UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs.max(0) as u64));
    if time < fields.not_before {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidYetContext {
                time: now,
                not_before: unix(fields.not_before),
            },
        ));
    }
    if time > fields.not_after {
        return Err(rustls::Error::InvalidCertificate(
            CertificateError::ExpiredContext {
                time: now,
                not_after: unix(fields.not_after),
            },
        ));
    }
    Ok(ServerCertVerified::assertion())
}

/// A self-signed server certificate that nothing trusts.
#[derive(Debug)]
pub struct SelfSignedUntrusted;

impl std::fmt::Display for SelfSignedUntrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(
            "the server's certificate is self-signed and not trusted (no system root, not in certs.d)",
        )
    }
}

impl std::error::Error for SelfSignedUntrusted {}

/// A TLS failure on one line a user can act on: rustls's own text, but for a certificate
/// that no trusted CA signed, or a self-signed one nobody trusts.
pub fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(CertificateError::Other(other)) => {
            match other.0.downcast_ref::<SelfSignedUntrusted>() {
                Some(s) => s.to_string(),
                None => format!("invalid peer certificate: {}", other.0),
            }
        }
        rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer) => {
            "the server's certificate is not signed by a trusted CA (UnknownIssuer)".to_owned()
        }
        other => other.to_string(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    /// Two certificates made by Docker's self-signed recipe (`openssl req -newkey rsa:2048
    /// -nodes -sha256 -keyout domain.key -addext "subjectAltName = DNS:myregistry.test" -x509
    /// -days 36500 -subj /CN=myregistry.test`): CA:TRUE, valid 2026-12-07 to 2126-11-13.
    const DOCKER_RECIPE: &str = "-----BEGIN CERTIFICATE-----\n\
MIIDMzCCAhugAwIBAgIULGRZoRFn4R/MAVIlT4C+nMXhQtcwDQYJKoZIhvcNAQEL\n\
BQAwGjEYMBYGA1UEAwwPbXlyZWdpc3RyeS50ZXN0MCAXDTI2MTIwNzEyMTAzN1oY\n\
DzIxMjYxMTEzMTIxMDM3WjAaMRgwFgYDVQQDDA9teXJlZ2lzdHJ5LnRlc3QwggEi\n\
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCfguqy5ZQPJ6mWRcy+M87oU9pT\n\
eG+1gWR8W1XNErqRWISxE197hnDkEcIvhbayi3gSpMmnpbe+uVGyRvzIsGsJPg38\n\
uOrBvb1KwGpYNtkEbYzuRsIKPLcRyBKMss3NL4Lq1HgK3lZ5bJDpczPrWtX3UZC5\n\
mQdbX5QASKqtU8wpu03e7U4csMkP1HObbfxpLc9PdnPfravvfDQZjHj00Ca2ALuG\n\
LZ0za/Twfkthg/zhY/1w0qaApV3fOhi/NaOxnh/zwy+MxCvc37W3z8IwHYrWL4z9\n\
LDyqJT72w+ksHTDSe2R0ZIiWAflILPkJSp4k7wkXYnwdCHojhOLSVmqccJ7RAgMB\n\
AAGjbzBtMB0GA1UdDgQWBBTR30+gbRyRCVLPXFT8mg+kdhqfVzAfBgNVHSMEGDAW\n\
gBTR30+gbRyRCVLPXFT8mg+kdhqfVzAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQT\n\
MBGCD215cmVnaXN0cnkudGVzdDANBgkqhkiG9w0BAQsFAAOCAQEAO/4O3OSBzDKy\n\
LOd7xg2cdTpMxNpzGEN7ThUrjpq8Sta3FbdCDvOuU9oSaqGusWArbIRNNNkiWI5d\n\
waH23iMeNcZk2CjXGJvKzOG2RFE3DeUmbLcotFTRcttvU2yCS7iCqx8MesbERvtK\n\
p2jN4GV6AHZB/3ATOTAX1trcj2EO1rV/veLRbQlDe23HuDruTBcKMij6gJeMGXYZ\n\
MNQFknd1YjgoR1V9Lf+PTr6yFghOB5+m43ic/D6T5GszVz3QLWioklSUp3h7rExV\n\
wmjciqdvW93cefuB90jFQG2GxWeE+46+y8Xn/Oy3VLEmkt/wmOVVdtQh42A5dR9C\n\
xaR+CE+q5A==\n\
-----END CERTIFICATE-----";
    const ANOTHER: &str = "-----BEGIN CERTIFICATE-----\n\
MIIDMzCCAhugAwIBAgIUJu/5K5hq8WNWQL7OS+tTudpMYqIwDQYJKoZIhvcNAQEL\n\
BQAwGjEYMBYGA1UEAwwPbXlyZWdpc3RyeS50ZXN0MCAXDTI2MTIwNzEyMTAzN1oY\n\
DzIxMjYxMTEzMTIxMDM3WjAaMRgwFgYDVQQDDA9teXJlZ2lzdHJ5LnRlc3QwggEi\n\
MA0GCSqGSIb3DQEBAQUAA4IBDwAwggEKAoIBAQCsfOqne5BPJgcBxMRsWJhaT1Sq\n\
2AEDYz+xn2NsXr7MLfsUpqWiKHwjrWDtYyq4p6hMOVpLmWz42i1/ohsb0dC8+doM\n\
fw0uYezIM2fXuD6bfM+PzAHAij2ZgLHbJDw9lrXaspZD6CRnubXL8A56Tu8jWiZS\n\
l1z9RSr4tNcty8EAKcEto1tOaqG6xV9RweASBSWDVdQk7nM6cJbNZ2TzMszGvYLs\n\
x46NXx1cTySQWzyym66mYhBNubb6srDWFGemC/3Zd3/EJ/MqFTaj5ChFJFkglCG8\n\
qk7slnohsALWjWfWJxhhYjTrZR6vkfufCJgcUhpNDuI2h0M7W6CFl+bcRlBTAgMB\n\
AAGjbzBtMB0GA1UdDgQWBBQfsRLAoCfe4grAHJzNLp7hhYYMiTAfBgNVHSMEGDAW\n\
gBQfsRLAoCfe4grAHJzNLp7hhYYMiTAPBgNVHRMBAf8EBTADAQH/MBoGA1UdEQQT\n\
MBGCD215cmVnaXN0cnkudGVzdDANBgkqhkiG9w0BAQsFAAOCAQEAcBcnftXq+/pu\n\
KZKlBHV22CzpoDaEmTVEU8YNmR4mRyNAS+Kf5q1YbhngcEKAo/fUcQXz+pUsI9ox\n\
iT2QEqAzh78u427QJ+YQcKGijDVaaAxg3YxzmGxrudJ1doXpBXpwnRrui1IfAOVW\n\
N/paYS8X4yQjoyL9o1yhqZErMHPMVwcKCjkd7eDH+ZoxuDLQDUc+SqdqRUDoNyCk\n\
3O1LCW/CPKEzFJNCwP4AXQqkVvor3gmgoftsBEOULCy9lXWEuAURZ2Suc1MfIQw2\n\
HtKba7+vGBaW4JzS9Yu3ZRhIWmsy09ipnxddZvAdI4a+z6nZjPIrkyDy1ueLlLpc\n\
6uZ4hkVlNw==\n\
-----END CERTIFICATE-----";

    fn cert(pem: &str) -> CertificateDer<'static> {
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }

    fn verifier(extra: &[&str]) -> ExtraRootsVerifier {
        let provider = provider();
        let mut roots = RootCertStore::empty();
        let extra_roots: Vec<_> = extra.iter().map(|p| cert(p)).collect();
        for c in &extra_roots {
            roots.add(c.clone()).unwrap();
        }
        ExtraRootsVerifier {
            extra_roots,
            webpki: WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .unwrap(),
            provider,
        }
    }

    fn at(year_2100: bool) -> UnixTime {
        // 2100-01-01, or 2025-01-01 (before the certificates' notBefore).
        let secs = if year_2100 {
            4_102_444_800
        } else {
            1_735_689_600
        };
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    fn name(n: &str) -> ServerName<'static> {
        ServerName::try_from(n.to_owned()).unwrap()
    }

    #[test]
    fn webpki_alone_refuses_a_trusted_self_signed_certificate() {
        let v = verifier(&[DOCKER_RECIPE]);
        let e = v
            .webpki
            .verify_server_cert(
                &cert(DOCKER_RECIPE),
                &[],
                &name("myregistry.test"),
                &[],
                at(true),
            )
            .unwrap_err();
        assert!(format!("{e}").contains("CaUsedAsEndEntity"), "{e}");
    }

    #[test]
    fn a_trusted_self_signed_certificate_is_accepted_for_its_name_and_period_only() {
        let v = verifier(&[DOCKER_RECIPE]);
        let ee = cert(DOCKER_RECIPE);
        v.verify_server_cert(&ee, &[], &name("myregistry.test"), &[], at(true))
            .unwrap();
        let e = v
            .verify_server_cert(&ee, &[], &name("other.test"), &[], at(true))
            .unwrap_err();
        assert!(
            e.to_string().contains("not valid for name \"other.test\""),
            "{e}"
        );
        let e = v
            .verify_server_cert(&ee, &[], &name("myregistry.test"), &[], at(false))
            .unwrap_err();
        assert!(e.to_string().contains("not valid yet"), "{e}");
        let after = UnixTime::since_unix_epoch(std::time::Duration::from_secs(5_000_000_000));
        let e = v
            .verify_server_cert(&ee, &[], &name("myregistry.test"), &[], after)
            .unwrap_err();
        assert!(e.to_string().contains("certificate expired"), "{e}");
    }

    #[test]
    fn an_untrusted_self_signed_certificate_is_refused_and_named() {
        let v = verifier(&[DOCKER_RECIPE]);
        let e = v
            .verify_server_cert(&cert(ANOTHER), &[], &name("myregistry.test"), &[], at(true))
            .unwrap_err();
        assert_eq!(
            describe(&e),
            "the server's certificate is self-signed and not trusted (no system root, not in certs.d)"
        );
        let plain = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        assert!(describe(&plain).contains("not signed by a trusted CA"));
    }
}
