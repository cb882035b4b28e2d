//! Client-certificate checks, run by rustls during the handshake: a client that fails
//! gets no TLS session at all.
//!
//! Two independent checks, either or both configured:
//! - CA: the certificate chains to `tls.client_ca` (webpki: signature chain, validity
//!   period, client-auth key usage);
//! - fingerprint: the certificate's SHA-256 is in the allow-list (`tls.allowed_fingerprints`,
//!   `tls.known_clients`, `[[access.clients]].fingerprints`).
//!
//! With both, a certificate must pass BOTH: the CA vouches for who issued it, the list
//! narrows it to known machines. A fingerprint-only certificate (typically self-signed)
//! must still be within its validity period. In every mode the client proves it holds the
//! certificate's private key: the handshake signature is verified with the provider's
//! algorithms.

use std::collections::HashSet;
use std::sync::Arc;

use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{CertificateError, DigitallySignedStruct, DistinguishedName, SignatureScheme};
use rustls_pki_types::{CertificateDer, UnixTime};

use crate::identity::fingerprint::{self, Fingerprint};

/// The `ClientCertVerifier` keyguard installs when client authentication is configured.
#[derive(Debug)]
pub struct ClientVerifier {
    /// webpki verification against `tls.client_ca`, if configured.
    ca: Option<Arc<dyn ClientCertVerifier>>,
    /// The fingerprint allow-list, if configured (possibly empty: then nobody passes).
    allowed: Option<HashSet<Fingerprint>>,
    /// Signature algorithms of the crypto provider, for the handshake signature.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientVerifier {
    /// A verifier with the given checks; at least one of `ca` and `allowed` should be set.
    pub fn new(
        ca: Option<Arc<dyn ClientCertVerifier>>,
        allowed: Option<HashSet<Fingerprint>>,
        algorithms: WebPkiSupportedAlgorithms,
    ) -> Self {
        Self {
            ca,
            allowed,
            algorithms,
        }
    }
}

impl ClientCertVerifier for ClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        // Hints only help clients with several certificates pick one; pinned
        // certificates have no issuer worth hinting.
        self.ca.as_ref().map_or(&[], |ca| ca.root_hint_subjects())
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if let Some(ca) = &self.ca {
            ca.verify_client_cert(end_entity, intermediates, now)?;
        }
        if let Some(allowed) = &self.allowed {
            if !allowed.contains(&fingerprint::of_der(end_entity)) {
                return Err(CertificateError::ApplicationVerificationFailure.into());
            }
            if self.ca.is_none() {
                check_validity(end_entity, now)?;
            }
        }
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Refuses a certificate outside its validity period. (Chain-verified certificates get
/// this from webpki; pinned ones need it here.)
fn check_validity(der: &CertificateDer<'_>, now: UnixTime) -> Result<(), CertificateError> {
    let (_, cert) =
        x509_parser::parse_x509_certificate(der).map_err(|_| CertificateError::BadEncoding)?;
    let validity = cert.validity();
    let now = i64::try_from(now.as_secs()).unwrap_or(i64::MAX);
    if now < validity.not_before.timestamp() {
        return Err(CertificateError::NotValidYet);
    }
    if now > validity.not_after.timestamp() {
        return Err(CertificateError::Expired);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rcgen::{CertificateParams, KeyPair};
    use std::time::Duration;

    fn self_signed(not_before: i64, not_after: i64) -> CertificateDer<'static> {
        let mut params = CertificateParams::new(vec!["client".into()]).unwrap();
        params.not_before = rcgen::date_time_ymd(1970, 1, 1) + time_offset(not_before);
        params.not_after = rcgen::date_time_ymd(1970, 1, 1) + time_offset(not_after);
        let key = KeyPair::generate().unwrap();
        params.self_signed(&key).unwrap().der().clone()
    }

    fn time_offset(secs: i64) -> Duration {
        Duration::from_secs(u64::try_from(secs).unwrap())
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(Duration::from_secs(secs))
    }

    fn pinned(certs: &[&CertificateDer<'_>]) -> ClientVerifier {
        let allowed = certs.iter().map(|c| fingerprint::of_der(c)).collect();
        ClientVerifier::new(
            None,
            Some(allowed),
            rustls::crypto::ring::default_provider().signature_verification_algorithms,
        )
    }

    const DAY: i64 = 86_400;

    #[test]
    fn pinned_certificate_passes_within_its_validity_period() {
        let cert = self_signed(1000 * DAY, 2000 * DAY);
        let verifier = pinned(&[&cert]);
        let now = at(1500 * 86_400);
        assert!(verifier.verify_client_cert(&cert, &[], now).is_ok());
    }

    #[test]
    fn unlisted_certificate_is_refused() {
        let listed = self_signed(1000 * DAY, 2000 * DAY);
        let other = self_signed(1000 * DAY, 2000 * DAY);
        let verifier = pinned(&[&listed]);
        let err = verifier
            .verify_client_cert(&other, &[], at(1500 * 86_400))
            .err();
        assert_eq!(
            err,
            Some(rustls::Error::InvalidCertificate(
                CertificateError::ApplicationVerificationFailure
            ))
        );
    }

    #[test]
    fn pinned_certificate_outside_its_validity_period_is_refused() {
        let cert = self_signed(1000 * DAY, 2000 * DAY);
        let verifier = pinned(&[&cert]);
        assert_eq!(
            verifier
                .verify_client_cert(&cert, &[], at(2001 * 86_400))
                .err(),
            Some(rustls::Error::InvalidCertificate(CertificateError::Expired))
        );
        assert_eq!(
            verifier
                .verify_client_cert(&cert, &[], at(999 * 86_400))
                .err(),
            Some(rustls::Error::InvalidCertificate(
                CertificateError::NotValidYet
            ))
        );
    }

    #[test]
    fn empty_allow_list_refuses_everyone() {
        let cert = self_signed(1000 * DAY, 2000 * DAY);
        let verifier = pinned(&[]);
        assert!(verifier
            .verify_client_cert(&cert, &[], at(1500 * 86_400))
            .is_err());
    }

    #[test]
    fn client_authentication_is_mandatory() {
        let verifier = pinned(&[]);
        assert!(verifier.offer_client_auth());
        assert!(verifier.client_auth_mandatory());
        assert!(!verifier.supported_verify_schemes().is_empty());
    }
}
