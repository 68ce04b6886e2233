//! The session record.
//!
//! Field names follow Stytch's session object (`session_id`, `user_id`, `started_at`,
//! `last_accessed_at`, `expires_at`, `attributes`, `custom_claims`), so JSON written by this crate
//! reads like a Stytch session to clients that already know one.

mod attributes;
mod claims;
mod factors;
mod ids;
mod new;
mod times;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use attributes::{MAX_IP_ADDRESS_LEN, MAX_USER_AGENT_LEN, SessionAttributes};
pub(crate) use claims::claims_object;
pub use claims::{
    CustomClaimsError, MAX_CUSTOM_CLAIMS_BYTES, RESERVED_CLAIMS, validate_custom_claims,
};
pub use factors::{AuthenticationFactor, InvalidFactor, MAX_FACTOR_NAME_LEN, MAX_FACTORS};
pub(crate) use factors::{default_delivery, is_factor_name};
pub use ids::{
    InvalidSessionId, InvalidUserId, MAX_SESSION_ID_LEN, MAX_USER_ID_LEN, SessionId,
    validate_user_id,
};
pub use new::NewSession;
pub(crate) use times::to_millisecond;

/// A server-side session.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let created = sessions.create("user-1", NewSession::new()).await.unwrap();
/// let json = serde_json::to_value(&created.session).unwrap();
/// assert_eq!(json["user_id"], "user-1");
/// assert!(json["session_id"].as_str().unwrap().starts_with("session-"));
/// # });
/// ```
///
/// The record is `#[non_exhaustive]`: outside this crate, build one with [`Session::new`] and
/// the `with_*` setters (a store rebuilding a session from its row, a test), and match it with
/// `Session { session_id, .. }`. Its fields stay public for reading and changing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Session {
    /// The session's identifier.
    pub session_id: SessionId,
    /// The user the session belongs to.
    pub user_id: String,
    /// When the session was created (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub started_at: OffsetDateTime,
    /// When the session was last confirmed against the store (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub last_accessed_at: OffsetDateTime,
    /// When the session stops being valid (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub expires_at: OffsetDateTime,
    /// Where the session was created from.
    #[serde(default)]
    pub attributes: SessionAttributes,
    /// Application claims copied into every session JWT.
    #[serde(default)]
    pub custom_claims: Map<String, Value>,
    /// How the user proved who they are in this session, one entry per factor (Stytch's
    /// `authentication_factors`): recorded at login, added to by step-up.
    #[serde(default)]
    pub authentication_factors: Vec<AuthenticationFactor>,
    /// Counts changes to the record: every store update writes `version + 1`, and a store
    /// refuses an update whose base version is not the stored one, so two instances changing
    /// one session cannot overwrite each other. JWTs carry the version they were minted for,
    /// which is how a claims change or a token rotation refuses older JWTs.
    #[serde(default)]
    pub version: u64,
    /// JWTs minted for a version below this one are refused: set by a change that refuses
    /// older JWTs (a claims change, a rotation), so that an instance confirming a JWT in the
    /// store, rather than trusting its revocation list, refuses them too.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub jwts_from_version: u64,
    /// The device key the session is bound to ([DBSC](crate::dbsc)), or the registration
    /// offered at login; `None` for a session never offered binding (boxed: most sessions
    /// carry none, and the record stays small in memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_binding: Option<Box<crate::data::device::DeviceBinding>>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A session as its client may see it: every field of [`Session`] except the pending device
/// binding challenge, and the binding itself only once a device key is bound.
///
/// Answer clients with this, never with the [`Session`] itself: `Session` serialises as the
/// stores keep it, challenge included, and a pending challenge shown to whoever holds a copied
/// token or JWT would let them register a key of their own (before the browser does) or answer
/// the next proof's challenge out of turn. Serialises like `Session` otherwise, with the same
/// field names; [`Deref`](std::ops::Deref)s to the session for reading.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let created = sessions.create("user-1", NewSession::new()).await.unwrap();
/// let json = serde_json::to_value(created.session.public_view()).unwrap();
/// assert_eq!(json["user_id"], "user-1");
/// assert!(json.get("device_binding").is_none());
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct ClientSession(Session);

impl From<Session> for ClientSession {
    fn from(mut session: Session) -> Self {
        // Only a bound key is the client's business; an offer (a challenge, no key) is not.
        if let Some(binding) = session.device_binding.as_mut() {
            binding.challenge = None;
            if binding.key.is_none() {
                session.device_binding = None;
            }
        }
        Self(session)
    }
}

impl From<&Session> for ClientSession {
    fn from(session: &Session) -> Self {
        session.clone().into()
    }
}

impl std::ops::Deref for ClientSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

/// Building a record: the required parts, then every other field. The setters take the value
/// as it is, unchecked: they rebuild a record (a store decoding a row, a test); the checks on
/// user ids, custom claims and factors apply where sessions are created and changed
/// ([`Sessions::create`](crate::Sessions::create), [`Sessions::change`](crate::Sessions::change)).
impl Session {
    /// A record of `user_id`'s session `session_id`, started at `started_at` (also its last
    /// access) and valid until `expires_at`, with no attributes, custom claims or
    /// authentication factors, at version 0 and without a device binding.
    ///
    /// # Example
    ///
    /// A store rebuilding a session from its row, every field:
    ///
    /// ```
    /// use time::macros::datetime;
    /// use tower_session_jwt::Session;
    /// use tower_session_jwt::session::{AuthenticationFactor, SessionAttributes, SessionId};
    ///
    /// let started = datetime!(2026-01-01 00:00 UTC);
    /// let claims = serde_json::json!({"role": "admin"});
    /// let session = Session::new(
    ///     SessionId::parse("session-abc").unwrap(),
    ///     "user-1",
    ///     started,
    ///     datetime!(2026-01-08 00:00 UTC),
    /// )
    /// .with_last_accessed_at(datetime!(2026-01-01 00:05 UTC))
    /// .with_attributes(SessionAttributes::new("203.0.113.7", "curl/8"))
    /// .with_custom_claims(claims.as_object().cloned().unwrap_or_default())
    /// .with_authentication_factors(vec![AuthenticationFactor::of_type("password", started).unwrap()])
    /// .with_version(3)
    /// .with_jwts_from_version(2)
    /// .with_device_binding(None);
    /// assert_eq!(session.user_id, "user-1");
    /// assert_eq!(session.amr(), ["pwd"]);
    /// assert!(session.is_live_at(started));
    /// ```
    pub fn new(
        session_id: SessionId,
        user_id: impl Into<String>,
        started_at: OffsetDateTime,
        expires_at: OffsetDateTime,
    ) -> Self {
        Self {
            session_id,
            user_id: user_id.into(),
            started_at,
            last_accessed_at: started_at,
            expires_at,
            attributes: SessionAttributes::default(),
            custom_claims: Map::new(),
            authentication_factors: Vec::new(),
            version: 0,
            jwts_from_version: 0,
            device_binding: None,
        }
    }

    /// Sets when the session was last confirmed against the store.
    pub fn with_last_accessed_at(mut self, at: OffsetDateTime) -> Self {
        self.last_accessed_at = at;
        self
    }

    /// Sets where the session was created from.
    pub fn with_attributes(mut self, attributes: SessionAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// Sets the custom claims, as they are (see [`validate_custom_claims`] for the checks
    /// sessions created and changed by the engine pass).
    pub fn with_custom_claims(mut self, claims: Map<String, Value>) -> Self {
        self.custom_claims = claims;
        self
    }

    /// Sets the authentication factors, as they are (see [`Session::record_factor`] to add one
    /// with its checks).
    pub fn with_authentication_factors(mut self, factors: Vec<AuthenticationFactor>) -> Self {
        self.authentication_factors = factors;
        self
    }

    /// Sets the record's version (see [`Session::version`]).
    pub fn with_version(mut self, version: u64) -> Self {
        self.version = version;
        self
    }

    /// Sets the version below which JWTs are refused (see [`Session::jwts_from_version`]).
    pub fn with_jwts_from_version(mut self, version: u64) -> Self {
        self.jwts_from_version = version;
        self
    }

    /// Sets the device binding, or removes it with `None`.
    pub fn with_device_binding(
        mut self,
        binding: Option<crate::data::device::DeviceBinding>,
    ) -> Self {
        self.device_binding = binding.map(Box::new);
        self
    }
}

impl Session {
    /// The session as its client may see it, without the pending device binding challenge:
    /// what every answer to a client should carry (see [`ClientSession`]).
    pub fn public_view(&self) -> ClientSession {
        ClientSession::from(self)
    }

    /// Whether the session is bound to a device key ([DBSC](crate::dbsc)): then its opaque
    /// token alone no longer re-mints a JWT; only a proof of the device's key does.
    pub fn is_device_bound(&self) -> bool {
        self.device_binding
            .as_ref()
            .is_some_and(|b| b.key.is_some())
    }

    /// Whether the session is still valid at `now`.
    pub fn is_live_at(&self, now: OffsetDateTime) -> bool {
        now < self.expires_at
    }

    /// When the user last authenticated in this session with any factor (the JWT's
    /// `auth_time`), or `None` if no factor was recorded.
    pub fn auth_time(&self) -> Option<OffsetDateTime> {
        self.authentication_factors
            .iter()
            .map(|f| f.last_authenticated_at)
            .max()
    }

    /// The session's authentication methods as RFC 8176 `amr` values, without repeats:
    /// `pwd` for a password, `otp` for one-time codes, `sms`/`tel` by delivery, `hwk` for
    /// WebAuthn and passkeys, the factor's own type otherwise, and `mfa` once two kinds of
    /// factor were used.
    pub fn amr(&self) -> Vec<String> {
        let mut amr: Vec<String> = Vec::new();
        for factor in &self.authentication_factors {
            for value in factor.amr_values() {
                if !amr.iter().any(|v| v == value) {
                    amr.push(value.to_owned());
                }
            }
        }
        let kinds = {
            let mut types: Vec<&str> = self
                .authentication_factors
                .iter()
                .map(|f| f.factor_type.as_str())
                .collect();
            types.sort_unstable();
            types.dedup();
            types.len()
        };
        if kinds >= 2 {
            amr.push("mfa".to_owned());
        }
        amr
    }

    /// Records that the user just authenticated with `factor` (at `factor.last_authenticated_at`):
    /// an entry of the same type and delivery method is refreshed, otherwise it is added. Refuses
    /// more than [`MAX_FACTORS`] distinct factors.
    pub fn record_factor(&mut self, factor: AuthenticationFactor) -> Result<(), InvalidFactor> {
        factor.validate()?;
        let held = self.authentication_factors.len();
        match self.authentication_factors.iter_mut().find(|f| {
            f.factor_type == factor.factor_type && f.delivery_method == factor.delivery_method
        }) {
            Some(existing) => {
                existing.last_authenticated_at = existing
                    .last_authenticated_at
                    .max(factor.last_authenticated_at);
            }
            None if held >= MAX_FACTORS => return Err(InvalidFactor::TooMany),
            None => self.authentication_factors.push(factor),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factors_give_amr_and_auth_time_and_are_bounded() {
        let t0 = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut s = Session::new(
            SessionId::parse("session-f").unwrap(),
            "u",
            t0,
            t0 + std::time::Duration::from_secs(3600),
        );
        assert!(s.amr().is_empty());
        assert_eq!(s.auth_time(), None);
        s.record_factor(AuthenticationFactor::of_type("password", t0).unwrap())
            .unwrap();
        assert_eq!(s.amr(), ["pwd"]);
        let later = t0 + std::time::Duration::from_secs(60);
        s.record_factor(AuthenticationFactor::new("otp", "sms", later).unwrap())
            .unwrap();
        assert_eq!(s.amr(), ["pwd", "otp", "sms", "mfa"]);
        assert_eq!(s.auth_time(), Some(later));
        // The same factor again refreshes its time rather than adding an entry.
        let latest = later + std::time::Duration::from_secs(60);
        s.record_factor(AuthenticationFactor::of_type("password", latest).unwrap())
            .unwrap();
        assert_eq!(s.authentication_factors.len(), 2);
        assert_eq!(s.authentication_factors[0].last_authenticated_at, latest);
        for i in 0..6 {
            s.record_factor(AuthenticationFactor::new(format!("f{i}"), "x", t0).unwrap())
                .unwrap();
        }
        assert_eq!(
            s.record_factor(AuthenticationFactor::new("one_more", "x", t0).unwrap()),
            Err(InvalidFactor::TooMany)
        );
        for bad in ["", "OTP", "o t p", "é", &"x".repeat(33)] {
            assert_eq!(
                AuthenticationFactor::new(bad, "x", t0),
                Err(InvalidFactor::Name),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn session_json_uses_stytch_field_names() {
        let s = Session::new(
            SessionId::parse("session-abc").unwrap(),
            "user-1",
            time::macros::datetime!(2026-01-01 00:00 UTC),
            time::macros::datetime!(2026-01-08 00:00 UTC),
        )
        .with_last_accessed_at(time::macros::datetime!(2026-01-01 00:01 UTC))
        .with_attributes(SessionAttributes::new("203.0.113.7", "curl"))
        .with_authentication_factors(vec![
            AuthenticationFactor::of_type("otp", time::macros::datetime!(2026-01-01 00:01 UTC))
                .unwrap(),
        ])
        .with_version(3)
        .with_jwts_from_version(2);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["started_at"], "2026-01-01T00:00:00Z");
        assert_eq!(v["attributes"]["ip_address"], "203.0.113.7");
        assert_eq!(v["authentication_factors"][0]["type"], "otp");
        assert_eq!(
            v["authentication_factors"][0]["delivery_method"],
            "authenticator_app"
        );
        assert_eq!(
            v["authentication_factors"][0]["last_authenticated_at"],
            "2026-01-01T00:01:00Z"
        );
        assert_eq!(v["version"], 3);
        assert_eq!(serde_json::from_value::<Session>(v).unwrap(), s);
    }
}
