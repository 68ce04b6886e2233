//! The session record.
//!
//! Field names follow Stytch's session object (`session_id`, `user_id`, `started_at`,
//! `last_accessed_at`, `expires_at`, `attributes`, `custom_claims`), so JSON written by this crate
//! reads like a Stytch session to clients that already know one.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest accepted session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 64;
/// Largest accepted custom claims object, serialized as JSON, in bytes.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 4096;
/// Longest recorded user agent, in bytes; longer ones are cut at a character boundary.
pub const MAX_USER_AGENT_LEN: usize = 512;
/// Longest recorded IP address text, in bytes.
pub const MAX_IP_ADDRESS_LEN: usize = 64;

/// Claim names custom claims may not take: every name the session JWT writes at its top level
/// (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `sid`, `session`, `amr`, `auth_time`), the
/// session's own `version` (a verifier must never read an application's claim as the session
/// version a JWT was minted for), and the registered names whose meaning a verifier may act on
/// (RFC 7519 `jti`, RFC 7800 `cnf`, RFC 8693 `act` and `scope`, OpenID Connect `acr`, `azp`,
/// `nonce`). A custom claim of one of these names is refused with
/// [`CustomClaimsError::Reserved`], by [`create`](crate::Sessions::create) and every change.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "session",
    "cnf",
    "act",
    "scope",
    "acr",
    "amr",
    "auth_time",
    "azp",
    "nonce",
    "version",
];

/// Why a user id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUserId {
    /// Empty, or longer than [`MAX_USER_ID_LEN`] bytes.
    #[error("user id must be 1 to {MAX_USER_ID_LEN} bytes")]
    Length,
    /// Holds a control character (NUL, newline, …) or an invisible formatting character
    /// (bidirectional overrides and isolates, zero-width characters), which could make one id
    /// look like another in a listing or a log.
    #[error("user id contains a control or invisible formatting character")]
    Character,
}

/// Checks a user id: 1 to [`MAX_USER_ID_LEN`] bytes, no control characters and no invisible
/// formatting characters (Unicode `Cc` and `Cf`: NUL, bidi overrides, zero-width joiners).
///
/// # Example
///
/// ```
/// use tower_session_jwt::session::{InvalidUserId, validate_user_id};
///
/// assert!(validate_user_id("alice@example.com").is_ok());
/// assert_eq!(validate_user_id("admin\u{202e}txt"), Err(InvalidUserId::Character));
/// assert_eq!(validate_user_id(""), Err(InvalidUserId::Length));
/// ```
pub fn validate_user_id(user_id: &str) -> Result<(), InvalidUserId> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(InvalidUserId::Length);
    }
    if user_id.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(InvalidUserId::Character);
    }
    Ok(())
}

/// Unicode general category `Cf` (format), the invisible characters that reorder or join text.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}'
        | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// A session's identifier: 128 random bits as base64url, e.g. `session-2xK…`.
///
/// Not a secret: it appears in session JWTs and in session listings, and it is how a user names a
/// session to revoke. Parsing bounds its length and alphabet, so an id taken from a URL is safe to
/// hand to any store.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

/// Why a string is not a session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed session id")]
pub struct InvalidSessionId;

impl SessionId {
    /// A fresh random session id.
    pub fn generate() -> Result<Self, crate::data::token::TokenError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| crate::data::token::TokenError::Rng)?;
        Ok(Self(format!("session-{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// Checks a presented id: 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        if !text.is_empty()
            && text.len() <= MAX_SESSION_ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidSessionId)
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a session was created from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionAttributes {
    /// The client's IP address as seen at login (empty when unknown).
    #[serde(default)]
    pub ip_address: String,
    /// The client's `User-Agent` at login (empty when unknown).
    #[serde(default)]
    pub user_agent: String,
}

impl SessionAttributes {
    /// Attributes from an IP address and a user agent, bounded in length: an over-long user agent
    /// is cut at a character boundary, an over-long IP address is dropped.
    pub fn new(ip_address: impl Into<String>, user_agent: impl Into<String>) -> Self {
        let mut ip_address = ip_address.into();
        if ip_address.len() > MAX_IP_ADDRESS_LEN {
            ip_address.clear();
        }
        let mut user_agent = user_agent.into();
        if user_agent.len() > MAX_USER_AGENT_LEN {
            let mut cut = MAX_USER_AGENT_LEN;
            while !user_agent.is_char_boundary(cut) {
                cut -= 1;
            }
            user_agent.truncate(cut);
        }
        Self {
            ip_address,
            user_agent,
        }
    }
}

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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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

/// Most distinct authentication factors one session records.
pub const MAX_FACTORS: usize = 8;
/// Longest factor type or delivery method, in bytes.
pub const MAX_FACTOR_NAME_LEN: usize = 32;

/// One way the user proved who they are in a session (Stytch's authentication factor).
///
/// # Example
///
/// ```
/// use tower_session_jwt::session::AuthenticationFactor;
///
/// let otp = AuthenticationFactor::new("otp", "sms", time::OffsetDateTime::now_utc()).unwrap();
/// assert_eq!(otp.factor_type, "otp");
/// assert!(AuthenticationFactor::new("pass word", "x", time::OffsetDateTime::now_utc()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationFactor {
    /// What kind of factor: `password`, `otp`, `totp`, `magic_link`, `webauthn`, `oauth`, …
    #[serde(rename = "type")]
    pub factor_type: String,
    /// How it was delivered or held: `knowledge`, `sms`, `email`, `authenticator_app`, …
    pub delivery_method: String,
    /// When the user last authenticated with it (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub last_authenticated_at: OffsetDateTime,
}

/// Why an authentication factor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidFactor {
    /// The type or the delivery method is empty, longer than [`MAX_FACTOR_NAME_LEN`] bytes, or
    /// not made of lowercase ASCII letters, digits and `_`.
    #[error(
        "a factor's type and delivery method are 1 to {MAX_FACTOR_NAME_LEN} characters of a-z, 0-9 and _"
    )]
    Name,
    /// The session already records [`MAX_FACTORS`] distinct factors.
    #[error("a session records at most {MAX_FACTORS} distinct authentication factors")]
    TooMany,
}

impl AuthenticationFactor {
    /// A factor authenticated at `at`. Both names are 1 to 32 characters of `a-z`, `0-9`, `_`.
    pub fn new(
        factor_type: impl Into<String>,
        delivery_method: impl Into<String>,
        at: OffsetDateTime,
    ) -> Result<Self, InvalidFactor> {
        let factor = Self {
            factor_type: factor_type.into(),
            delivery_method: delivery_method.into(),
            last_authenticated_at: at,
        };
        factor.validate()?;
        Ok(factor)
    }

    /// A factor of `factor_type` with the delivery method usual for it (`password` →
    /// `knowledge`, `otp`/`totp` → `authenticator_app`, `sms_otp` → `sms`, `email_otp` and
    /// `magic_link` → `email`, `webauthn`/`passkey` → `webauthn_registration`, `oauth` →
    /// `oauth`, anything else → its own type), authenticated at `at`.
    pub fn of_type(factor_type: &str, at: OffsetDateTime) -> Result<Self, InvalidFactor> {
        let delivery = match factor_type {
            "password" => "knowledge",
            "otp" | "totp" => "authenticator_app",
            "sms_otp" => "sms",
            "email_otp" | "magic_link" => "email",
            "webauthn" | "passkey" => "webauthn_registration",
            other => other,
        };
        Self::new(factor_type, delivery, at)
    }

    /// Checks the names (see [`InvalidFactor::Name`]).
    pub fn validate(&self) -> Result<(), InvalidFactor> {
        let ok = |name: &str| {
            !name.is_empty()
                && name.len() <= MAX_FACTOR_NAME_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        };
        if ok(&self.factor_type) && ok(&self.delivery_method) {
            Ok(())
        } else {
            Err(InvalidFactor::Name)
        }
    }

    /// RFC 8176 values for this factor.
    fn amr_values(&self) -> Vec<&str> {
        let by_type = match self.factor_type.as_str() {
            "password" => "pwd",
            "otp" | "totp" | "sms_otp" | "email_otp" => "otp",
            "webauthn" | "passkey" => "hwk",
            other => other,
        };
        let mut values = vec![by_type];
        match self.delivery_method.as_str() {
            "sms" => values.push("sms"),
            "voice" => values.push("tel"),
            _ => {}
        }
        values
    }
}

/// Why a set of custom claims was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomClaimsError {
    /// A custom claim took a name the session JWT uses itself.
    #[error("custom claim `{0}` is reserved")]
    Reserved(String),
    /// The claims are larger than [`MAX_CUSTOM_CLAIMS_BYTES`] as JSON.
    #[error("custom claims are {size} bytes as JSON; the limit is {max}")]
    TooLarge {
        /// Size of the claims as JSON.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks custom claims against the reserved names and the size cap.
pub fn validate_custom_claims(claims: &Map<String, Value>) -> Result<(), CustomClaimsError> {
    if let Some(name) = claims
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(CustomClaimsError::Reserved(name.clone()));
    }
    let size = serde_json::to_vec(claims)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(CustomClaimsError::TooLarge {
            size,
            max: MAX_CUSTOM_CLAIMS_BYTES,
        });
    }
    Ok(())
}

/// What to record in a new session besides its user.
///
/// # Example
///
/// ```
/// use tower_session_jwt::NewSession;
/// use tower_session_jwt::session::SessionAttributes;
///
/// let new = NewSession::new()
///     .attributes(SessionAttributes::new("203.0.113.7", "curl/8.5"))
///     .custom_claims(serde_json::json!({"role": "admin"}).as_object().unwrap().clone());
/// # let _ = new;
/// ```
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub(crate) attributes: SessionAttributes,
    pub(crate) factor: Option<AuthenticationFactor>,
    pub(crate) custom_claims: Map<String, Value>,
    pub(crate) ttl: Option<std::time::Duration>,
    pub(crate) peer_addr: Option<std::net::SocketAddr>,
    /// Store a registration challenge for device binding (set by `login::login`).
    pub(crate) offer_device: bool,
}

impl NewSession {
    /// A session with no attributes and no custom claims.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records where the session was created from.
    pub fn attributes(mut self, attributes: SessionAttributes) -> Self {
        self.attributes = attributes;
        self
    }

    /// The factor the user signed in with, recorded as the session's first authentication
    /// factor (its `last_authenticated_at` is set to the creation time).
    ///
    /// ```
    /// use tower_session_jwt::NewSession;
    /// use tower_session_jwt::session::AuthenticationFactor;
    ///
    /// let factor = AuthenticationFactor::of_type("password", time::OffsetDateTime::now_utc()).unwrap();
    /// let new = NewSession::new().factor(factor);
    /// # let _ = new;
    /// ```
    pub fn factor(mut self, factor: AuthenticationFactor) -> Self {
        self.factor = Some(factor);
        self
    }

    /// Claims copied into every session JWT (at most 4 KiB, no reserved names).
    pub fn custom_claims(mut self, claims: Map<String, Value>) -> Self {
        self.custom_claims = claims;
        self
    }

    /// The client's address, for [`login::login`](crate::login::login) to record when no
    /// trusted proxy header is configured.
    pub fn peer_addr(mut self, addr: std::net::SocketAddr) -> Self {
        self.peer_addr = Some(addr);
        self
    }

    /// A lifetime for this session instead of the configured session TTL.
    pub fn ttl(mut self, ttl: std::time::Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_ids_are_bounded() {
        let id = SessionId::generate().unwrap();
        assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "a b",
            "../etc",
            "x".repeat(65).as_str(),
            "sess\u{e9}",
            "a\nb",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_value::<SessionId>(json!("bad id")).is_err());
    }

    #[test]
    fn user_ids_refuse_control_and_invisible_characters() {
        for bad in [
            "",
            "a\0b",
            "line\nbreak",
            "rtl\u{202e}gpj.exe",
            "iso\u{2067}x",
            "zw\u{200b}j",
        ] {
            assert!(validate_user_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_user_id(&"x".repeat(MAX_USER_ID_LEN + 1)).is_err());
        for good in ["alice", "Zoë", "user@example.com", "用户", "a b"] {
            assert!(validate_user_id(good).is_ok(), "{good:?}");
        }
    }

    #[test]
    fn reserved_claims_are_refused() {
        for name in RESERVED_CLAIMS {
            let claims = json!({ *name: 1 }).as_object().unwrap().clone();
            assert_eq!(
                validate_custom_claims(&claims),
                Err(CustomClaimsError::Reserved((*name).to_owned()))
            );
        }
        let ok = json!({"role": "admin", "org": {"id": 7}});
        assert!(validate_custom_claims(ok.as_object().unwrap()).is_ok());
    }

    #[test]
    fn oversized_claims_are_refused() {
        let claims = json!({"blob": "x".repeat(MAX_CUSTOM_CLAIMS_BYTES)});
        assert!(matches!(
            validate_custom_claims(claims.as_object().unwrap()),
            Err(CustomClaimsError::TooLarge { .. })
        ));
    }

    #[test]
    fn factors_give_amr_and_auth_time_and_are_bounded() {
        let t0 = time::macros::datetime!(2026-01-01 00:00 UTC);
        let mut s = Session {
            session_id: SessionId::parse("session-f").unwrap(),
            user_id: "u".into(),
            started_at: t0,
            last_accessed_at: t0,
            expires_at: t0 + std::time::Duration::from_secs(3600),
            attributes: SessionAttributes::default(),
            custom_claims: Map::new(),
            authentication_factors: Vec::new(),
            version: 0,
            jwts_from_version: 0,
            device_binding: None,
        };
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
    fn attributes_are_bounded() {
        let ua = "é".repeat(400); // 800 bytes
        let attrs = SessionAttributes::new("x".repeat(100), ua);
        assert!(attrs.ip_address.is_empty());
        assert!(attrs.user_agent.len() <= MAX_USER_AGENT_LEN);
        assert!(attrs.user_agent.chars().all(|c| c == 'é'));
    }

    #[test]
    fn session_json_uses_stytch_field_names() {
        let s = Session {
            session_id: SessionId::parse("session-abc").unwrap(),
            user_id: "user-1".into(),
            started_at: time::macros::datetime!(2026-01-01 00:00 UTC),
            last_accessed_at: time::macros::datetime!(2026-01-01 00:01 UTC),
            expires_at: time::macros::datetime!(2026-01-08 00:00 UTC),
            attributes: SessionAttributes::new("203.0.113.7", "curl"),
            custom_claims: Map::new(),
            authentication_factors: vec![
                AuthenticationFactor::of_type("otp", time::macros::datetime!(2026-01-01 00:01 UTC))
                    .unwrap(),
            ],
            version: 3,
            jwts_from_version: 2,
            device_binding: None,
        };
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
