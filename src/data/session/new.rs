//! What to record in a new session besides its user.

use serde::Serialize;
use serde_json::{Map, Value};

use super::claims::claims_object;
use super::{AuthenticationFactor, CustomClaimsError, SessionAttributes, validate_custom_claims};

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
///     .custom_claims(serde_json::json!({"role": "admin"}));
/// # let _ = new;
/// ```
#[derive(Debug, Clone)]
pub struct NewSession {
    pub(crate) attributes: SessionAttributes,
    pub(crate) factor: Option<AuthenticationFactor>,
    /// The claims as a JSON object, or why they are not one: reported by `create` and `login`,
    /// so that the builder stays infallible.
    pub(crate) custom_claims: Result<Map<String, Value>, CustomClaimsError>,
    pub(crate) ttl: Option<std::time::Duration>,
    pub(crate) peer_addr: Option<std::net::SocketAddr>,
    /// Store a registration challenge for device binding (set by `login::login`).
    pub(crate) offer_device: bool,
}

impl Default for NewSession {
    fn default() -> Self {
        Self {
            attributes: SessionAttributes::default(),
            factor: None,
            custom_claims: Ok(Map::new()),
            ttl: None,
            peer_addr: None,
            offer_device: false,
        }
    }
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

    /// Claims copied into every session JWT: anything that serializes to a JSON object (a
    /// `serde_json::json!({..})`, a map, a struct deriving `Serialize`), at most
    /// [`MAX_CUSTOM_CLAIMS_BYTES`](crate::session::MAX_CUSTOM_CLAIMS_BYTES) as JSON, without
    /// [reserved names](crate::session::RESERVED_CLAIMS).
    ///
    /// Claims that break a rule are refused by [`Sessions::create`](crate::Sessions::create)
    /// and [`Sessions::login`](crate::Sessions::login) with
    /// [`SessionError::InvalidCustomClaims`](crate::SessionError::InvalidCustomClaims):
    /// [`CustomClaimsError::NotAnObject`] when they serialize to something else than an
    /// object.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use serde::Serialize;
    /// use tower_session_jwt::session::CustomClaimsError;
    /// use tower_session_jwt::{MemoryStore, NewSession, SessionError, Sessions, SigningKey};
    ///
    /// #[derive(Serialize)]
    /// struct Claims<'a> {
    ///     role: &'a str,
    ///     org_id: u64,
    /// }
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let typed = NewSession::new().custom_claims(Claims { role: "admin", org_id: 7 });
    /// let created = sessions.create("alice", typed).await.unwrap();
    /// assert_eq!(created.session.custom_claims["org_id"], 7);
    ///
    /// let untyped = NewSession::new().custom_claims(serde_json::json!({"role": "viewer"}));
    /// assert!(sessions.create("bob", untyped).await.is_ok());
    ///
    /// let not_an_object = NewSession::new().custom_claims(["admin"]);
    /// assert!(matches!(
    ///     sessions.create("carol", not_an_object).await,
    ///     Err(SessionError::InvalidCustomClaims(CustomClaimsError::NotAnObject { .. }))
    /// ));
    /// # });
    /// ```
    pub fn custom_claims(mut self, claims: impl Serialize) -> Self {
        self.custom_claims = claims_object(claims);
        self
    }

    /// The custom claims, checked: a JSON object within the limits.
    pub(crate) fn check_claims(&self) -> Result<(), CustomClaimsError> {
        match &self.custom_claims {
            Ok(claims) => validate_custom_claims(claims),
            Err(e) => Err(e.clone()),
        }
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
