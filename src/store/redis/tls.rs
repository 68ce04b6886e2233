//! Choosing the Redis client: plain TCP for `redis://`, rustls for `rediss://` (feature
//! `redis-tls`) with the CA and client identity the builder was given.
//!
//! The certificates are parsed here, before anything connects, so that a malformed PEM is a
//! configuration error at [`build`](super::RedisStoreBuilder::build) and not a connection
//! failure that would look like an outage.

use std::fmt;

use redis::Client;

use super::reply::map_err;
use crate::store::StoreError;

/// A Redis store was configured in a way that cannot work. It reaches the caller of
/// [`RedisStoreBuilder::build`](super::RedisStoreBuilder::build) as the source of a
/// [`StoreError::Backend`] (`503` if it were ever surfaced by a request), from which it can be
/// downcast:
///
/// ```
/// use tower_session_jwt::StoreError;
/// use tower_session_jwt::store::redis::RedisConfigError;
///
/// fn is_tls_misconfiguration(error: &StoreError) -> bool {
///     match error {
///         StoreError::Backend(source) => source.downcast_ref::<RedisConfigError>().is_some(),
///         _ => false,
///     }
/// }
/// # let _ = is_tls_misconfiguration;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RedisConfigError {
    /// The URL is `rediss://` (TLS) but this build lacks the crate feature `redis-tls`.
    #[error("a rediss:// (TLS) URL needs the `redis-tls` feature of tower-session-jwt")]
    TlsFeatureDisabled,
    /// A CA or client identity was given for a URL that is not `rediss://`: the connection would
    /// silently go unencrypted.
    #[error("TLS settings were given but the Redis URL is not rediss://")]
    TlsSettingsWithoutRediss,
    /// A PEM given to the builder holds nothing usable of what it should.
    #[error("invalid {what}: {reason}")]
    InvalidPem {
        /// Which PEM: `CA certificate`, `client certificate` or `client key`.
        what: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The TLS handshake failed on a certificate: the server's is not signed by the configured
    /// CA, names another host or has expired, or the server refused the client's (or wanted one
    /// and got none). Retrying cannot help; the configuration or the certificates must change.
    #[error("TLS handshake with Redis refused: {0}")]
    TlsHandshake(String),
}

/// The TLS settings of a builder: a CA to trust instead of the system's, and a client identity
/// for mutual TLS. Key material is zeroed when dropped and never printed.
#[derive(Default, Clone)]
pub(super) struct TlsSettings {
    #[cfg(feature = "redis-tls")]
    pub(super) ca_pem: Option<Vec<u8>>,
    #[cfg(feature = "redis-tls")]
    pub(super) client_identity: Option<(Vec<u8>, zeroize::Zeroizing<Vec<u8>>)>,
}

impl TlsSettings {
    fn is_empty(&self) -> bool {
        #[cfg(feature = "redis-tls")]
        {
            self.ca_pem.is_none() && self.client_identity.is_none()
        }
        #[cfg(not(feature = "redis-tls"))]
        {
            true
        }
    }
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut out = f.debug_struct("TlsSettings");
        #[cfg(feature = "redis-tls")]
        out.field("ca_pem", &self.ca_pem.as_ref().map(|_| "<set>"))
            .field(
                "client_identity",
                &self.client_identity.as_ref().map(|_| "<redacted>"),
            );
        out.finish()
    }
}

/// Whether `url` asks for TLS (`rediss://`, in any case).
fn is_tls_url(url: &str) -> bool {
    url.get(..9)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("rediss://"))
}

/// The client for `url`, with TLS when the URL asks for it.
pub(super) fn client(url: &str, tls: &TlsSettings) -> Result<Client, StoreError> {
    let config = |e: RedisConfigError| StoreError::Backend(Box::new(e));
    if !is_tls_url(url) {
        if !tls.is_empty() {
            return Err(config(RedisConfigError::TlsSettingsWithoutRediss));
        }
        return Client::open(url).map_err(map_err);
    }
    #[cfg(not(feature = "redis-tls"))]
    {
        Err(config(RedisConfigError::TlsFeatureDisabled))
    }
    #[cfg(feature = "redis-tls")]
    {
        rustls_client(url, tls).map_err(|e| match e {
            Ok(e) => config(e),
            Err(e) => e,
        })
    }
}

/// The rustls client; `Err(Ok(_))` is a configuration error, `Err(Err(_))` one from redis.
#[cfg(feature = "redis-tls")]
fn rustls_client(
    url: &str,
    tls: &TlsSettings,
) -> Result<Client, Result<RedisConfigError, StoreError>> {
    use redis::{ClientTlsConfig, TlsCertificates};
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let invalid =
        |what: &'static str, reason: String| Ok(RedisConfigError::InvalidPem { what, reason });
    let certificates = |what: &'static str, pem: &[u8]| {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| invalid(what, e.to_string()))?;
        if certs.is_empty() {
            return Err(invalid(what, "no CERTIFICATE block".to_owned()));
        }
        Ok(())
    };
    if let Some(ca) = &tls.ca_pem {
        certificates("CA certificate", ca)?;
    }
    if let Some((cert, key)) = &tls.client_identity {
        certificates("client certificate", cert)?;
        PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid("client key", e.to_string()))?;
    }
    install_crypto_provider();
    let certs = TlsCertificates {
        client_tls: tls
            .client_identity
            .as_ref()
            .map(|(cert, key)| ClientTlsConfig {
                client_cert: cert.clone(),
                client_key: key.to_vec(),
            }),
        root_cert: tls.ca_pem.clone(),
    };
    Client::build_with_tls(url, certs).map_err(|e| Err(map_err(e)))
}

/// rustls needs a process-wide crypto provider when more than one could be compiled in (another
/// dependency may enable `ring`); without one, building a TLS client panics. Installs aws-lc-rs,
/// the provider this crate uses for JWTs, unless the application has installed one already.
#[cfg(feature = "redis-tls")]
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another installer is fine: some provider is then installed.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    }
}

/// A connection error that a certificate caused, as [`RedisConfigError::TlsHandshake`]; other
/// errors pass through.
pub(super) fn classify_connect_error(error: StoreError) -> StoreError {
    #[cfg(feature = "redis-tls")]
    if let StoreError::Unavailable(source) | StoreError::Backend(source) = &error
        && let Some(reason) = certificate_failure(source.as_ref())
    {
        return StoreError::Backend(Box::new(RedisConfigError::TlsHandshake(reason)));
    }
    error
}

/// The rustls certificate error somewhere in `error`'s chain, if any.
#[cfg(feature = "redis-tls")]
fn certificate_failure(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    use rustls::{AlertDescription, Error as TlsError};

    // redis keeps an I/O error behind an `Arc<dyn Error>`, and an I/O error's `source` skips the
    // error it wraps, so both are opened by hand.
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    fn io_inner<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e TlsError> {
        let io = match e.downcast_ref::<Shared>() {
            Some(shared) => shared.downcast_ref::<std::io::Error>(),
            None => e.downcast_ref::<std::io::Error>(),
        };
        io.and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<TlsError>())
    }
    let mut next = Some(error);
    while let Some(e) = next {
        let tls = e.downcast_ref::<TlsError>().or_else(|| io_inner(e));
        if let Some(
            e @ (TlsError::InvalidCertificate(_)
            | TlsError::NoCertificatesPresented
            | TlsError::AlertReceived(
                AlertDescription::BadCertificate
                | AlertDescription::UnknownCA
                | AlertDescription::CertificateRequired
                | AlertDescription::CertificateUnknown
                | AlertDescription::CertificateExpired
                | AlertDescription::CertificateRevoked
                | AlertDescription::UnsupportedCertificate
                | AlertDescription::HandshakeFailure,
            )),
        ) = tls
        {
            return Some(e.to_string());
        }
        next = e.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_urls_are_recognised_in_any_case() {
        assert!(is_tls_url("rediss://127.0.0.1:6380"));
        assert!(is_tls_url("REDISS://h"));
        assert!(!is_tls_url("redis://127.0.0.1"));
        assert!(!is_tls_url("rediss:/"));
        assert!(!is_tls_url("ré"));
    }

    #[cfg(not(feature = "redis-tls"))]
    #[test]
    fn a_tls_url_without_the_feature_is_a_configuration_error() {
        let error = client("rediss://127.0.0.1:6380", &TlsSettings::default()).unwrap_err();
        let StoreError::Backend(source) = error else {
            panic!("{error:?}")
        };
        assert_eq!(
            source.downcast_ref::<RedisConfigError>(),
            Some(&RedisConfigError::TlsFeatureDisabled)
        );
    }
}
