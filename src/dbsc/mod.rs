//! Device-bound sessions: [Device Bound Session Credentials][dbsc] (DBSC), server side.
//!
//! A bearer cookie works for whoever copies it. With DBSC the browser keeps a private key that
//! no page can read, and proves possession of it whenever the short-lived cookie is refreshed.
//! This crate's model already is "long-lived credential + short-lived JWT cookie re-minted by
//! the server", so the JWT cookie becomes the *bound* credential:
//!
//! 1. With [`SessionsBuilder::device_binding`](crate::SessionsBuilder::device_binding), a
//!    [login](crate::Sessions::login) offers registration (`Secure-Session-Registration`, with a
//!    challenge stored on the new session).
//! 2. The browser posts a signed proof to the [`registration`] handler, which verifies it
//!    (ES256 or RS256, our challenge, recent, single use), stores the public key on the
//!    session, and answers with the session config and a fresh JWT cookie.
//! 3. **From then on the opaque token alone re-mints nothing**: the layer's store fallback
//!    refuses a bound session ([`AuthError::DeviceBound`](crate::AuthError::DeviceBound)).
//!    Before the JWT cookie expires, the browser asks the [`refresh`] handler for a new one,
//!    proving possession of its key over a challenge this server issued. Copied cookies
//!    therefore stop working within one JWT lifetime.
//!
//! Sessions of browsers without DBSC, and API clients, are never bound and keep the usual
//! behaviour. Binding, refresh and unbinding are [session events](crate::SessionEventKind);
//! revocation ends a bound session at once like any other.
//!
//! Challenges live on the session record in the store, so a challenge is single use across
//! every instance: consuming it is the store's compare-and-swap update.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use axum::{Router, routing::post_service};
//! use tower_session_jwt::dbsc::{self, DbscConfig};
//! use tower_session_jwt::{MemoryStore, SessionLayer, Sessions, SigningKey};
//!
//! let sessions = Sessions::builder()
//!     .store(MemoryStore::new())
//!     .signing_key(SigningKey::generate_ed25519().unwrap())
//!     .device_binding(DbscConfig::new()) // registration at /dbsc/register, refresh at /dbsc/refresh
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new()
//!     // ... the application's routes ...
//!     .layer(SessionLayer::new(sessions.clone()))
//!     // Outside the layer: a bound browser comes here exactly when the layer would refuse
//!     // its token alone.
//!     .route("/dbsc/register", post_service(dbsc::registration(&sessions)))
//!     .route("/dbsc/refresh", post_service(dbsc::refresh(&sessions)));
//! # let _ = app; });
//! ```
//!
//! [dbsc]: https://w3c.github.io/webappsec-dbsc/

mod handler;
mod proof;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

pub use handler::{DbscHandler, refresh, registration};
pub(crate) use proof::unquote;
pub use proof::{DeviceAlgorithm, DeviceKey, MAX_PROOF_LEN, PROOF_TYPE, Proof, ProofError};

use crate::config::ConfigError;
use crate::session::SessionId;

/// The response header that offers registration.
pub const REGISTRATION_HEADER: &str = "secure-session-registration";
/// The request header that carries a proof.
pub const RESPONSE_HEADER: &str = "secure-session-response";
/// The response header that hands the browser a challenge to sign.
pub const CHALLENGE_HEADER: &str = "secure-session-challenge";
/// The request header naming the session a refresh is for.
pub const SESSION_ID_HEADER: &str = "sec-secure-session-id";

/// Longest [challenge lifetime](DbscConfig::challenge_ttl) accepted: one day.
pub const MAX_CHALLENGE_TTL: Duration = Duration::from_secs(86_400);

/// Device binding settings: where the browser registers and refreshes, how long a challenge
/// lives, which algorithms are offered and which paths the bound cookie is not needed for.
///
/// Keep the [JWT lifetime](crate::SessionsBuilder::jwt_ttl) well above two minutes (the default
/// five is fine): Chromium refreshes a bound cookie proactively from two minutes before it
/// expires, so with a shorter JWT nearly every request waits for a refresh, and Chromium's
/// refresh quota soon stops them.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_session_jwt::dbsc::DbscConfig;
///
/// let config = DbscConfig::new()
///     .registration_path("/auth/dbsc/start")
///     .refresh_path("/auth/dbsc/refresh")
///     .challenge_ttl(Duration::from_secs(600))
///     .exclude_path("/static");
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct DbscConfig {
    pub(crate) registration_path: String,
    pub(crate) refresh_path: String,
    pub(crate) challenge_ttl: Duration,
    pub(crate) algorithms: Vec<DeviceAlgorithm>,
    pub(crate) excluded_paths: Vec<String>,
}

impl Default for DbscConfig {
    fn default() -> Self {
        Self {
            registration_path: "/dbsc/register".into(),
            refresh_path: "/dbsc/refresh".into(),
            challenge_ttl: Duration::from_secs(600),
            algorithms: vec![DeviceAlgorithm::ES256, DeviceAlgorithm::RS256],
            excluded_paths: Vec::new(),
        }
    }
}

impl DbscConfig {
    /// Registration at `/dbsc/register`, refresh at `/dbsc/refresh`, challenges valid for 10
    /// minutes, ES256 and RS256 offered, the bound cookie required on every path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the browser posts its registration (default `/dbsc/register`; same site, so a
    /// path). Mount [`registration`] there.
    pub fn registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = path.into();
        self
    }

    /// Where the browser asks for a fresh JWT cookie (default `/dbsc/refresh`). Mount
    /// [`refresh`] there.
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// How long a challenge stays usable (default 10 minutes, one second to one day). The
    /// challenge handed out with each refresh is used at the next one, a little under a JWT
    /// lifetime later: keep this above the JWT TTL to spare the browser a round trip.
    pub fn challenge_ttl(mut self, ttl: Duration) -> Self {
        self.challenge_ttl = ttl;
        self
    }

    /// Offer RS256 besides ES256 (default on). ES256 is always offered: Chromium's software
    /// keys sign nothing else.
    pub fn rs256(mut self, on: bool) -> Self {
        self.algorithms.retain(|a| *a == DeviceAlgorithm::ES256);
        if on {
            self.algorithms.push(DeviceAlgorithm::RS256);
        }
        self
    }

    /// A path prefix whose requests the browser sends without waiting for a fresh bound cookie
    /// (static assets, say). May be called several times.
    ///
    /// Exclude the login route: a browser refreshes a bound cookie close to expiry beside any
    /// request in scope, and a refresh of the older session beside a login post can land that
    /// session's JWT over the new login's cookies (the next request then carries credentials of
    /// two sessions and is refused as conflicting). Outside the scope, the older binding
    /// refreshes only after the login answered, and is refused then.
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        self.excluded_paths.push(path.into());
        self
    }

    /// The algorithms offered.
    pub fn algorithms(&self) -> &[DeviceAlgorithm] {
        &self.algorithms
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let path_ok = |p: &str| {
            p.starts_with('/')
                && p.len() <= 256
                && p.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b';' | b','))
        };
        if !path_ok(&self.registration_path) || !path_ok(&self.refresh_path) {
            return Err(ConfigError::InvalidDeviceBinding(
                "registration and refresh paths must be absolute paths without quotes, \
                 semicolons or commas"
                    .into(),
            ));
        }
        if self.registration_path == self.refresh_path {
            return Err(ConfigError::InvalidDeviceBinding(
                "the registration and refresh paths must differ".into(),
            ));
        }
        if !self.excluded_paths.iter().all(|p| path_ok(p)) {
            return Err(ConfigError::InvalidDeviceBinding(
                "excluded paths must be absolute paths".into(),
            ));
        }
        if self.challenge_ttl < Duration::from_secs(1) || self.challenge_ttl > MAX_CHALLENGE_TTL {
            return Err(ConfigError::InvalidDeviceBinding(
                "the challenge lifetime must be between one second and one day".into(),
            ));
        }
        Ok(())
    }
}

/// A session's device binding: the key it is bound to, once registered, and the challenge the
/// next proof must sign.
///
/// A session offered registration carries a binding with a challenge and no key until the
/// browser registers; [`Session::is_device_bound`](crate::Session::is_device_bound) tells
/// whether it is bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBinding {
    /// The device's public key, once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<DeviceKey>,
    /// When the key was registered (RFC 3339 in JSON).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub bound_at: Option<OffsetDateTime>,
    /// The challenge the next proof must sign: single use, valid for the configured challenge
    /// lifetime. Not a secret (signing it needs the device's key), but of no use to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<DeviceChallenge>,
}

/// A challenge issued for a session's next DBSC proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceChallenge {
    /// The challenge: 128 random bits, base64url.
    pub value: String,
    /// When it was issued (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

impl DeviceChallenge {
    /// A fresh random challenge issued at `now`.
    pub(crate) fn generate(now: OffsetDateTime) -> Result<Self, crate::TokenError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| crate::TokenError::Rng)?;
        Ok(Self {
            value: URL_SAFE_NO_PAD.encode(bytes),
            issued_at: now,
        })
    }

    /// Whether it is still usable at `now`.
    pub(crate) fn is_fresh(&self, now: OffsetDateTime, ttl: Duration) -> bool {
        now >= self.issued_at - time::Duration::seconds(5) && now - self.issued_at <= ttl
    }

    /// Checks that `proof` signs this challenge, in time. Compares in constant time.
    pub(crate) fn check(
        &self,
        proof: &Proof,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<(), ProofError> {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            proof.challenge().as_bytes(),
            self.value.as_bytes(),
        )
        .map_err(|_| ProofError::UnknownChallenge)?;
        if !self.is_fresh(now, ttl) {
            return Err(ProofError::ExpiredChallenge);
        }
        // A proof's own `iat`, when it has one: within the lifetime, a minute of skew allowed.
        if let Some(iat) = proof.issued_at() {
            let age = now.unix_timestamp().saturating_sub(iat);
            let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
            if !(-60..=ttl).contains(&age) {
                return Err(ProofError::ExpiredChallenge);
            }
        }
        Ok(())
    }
}

/// `Secure-Session-Registration` offering registration for `session_id` with `challenge`.
pub(crate) fn registration_offer(
    config: &DbscConfig,
    session_id: &SessionId,
    challenge: &str,
) -> HeaderValue {
    let algorithms: Vec<&str> = config.algorithms.iter().map(|a| a.as_str()).collect();
    let value = format!(
        r#"({});path="{}";challenge="{}";authorization="{}""#,
        algorithms.join(" "),
        config.registration_path,
        challenge,
        session_id
    );
    // Paths are validated at build time; challenges and ids are base64url.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Secure-Session-Challenge: "<challenge>";id="<session id>"`.
pub(crate) fn challenge_header(session_id: &SessionId, challenge: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(r#""{challenge}";id="{session_id}""#))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}
