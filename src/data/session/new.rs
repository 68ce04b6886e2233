//! What to record in a new session besides its user.

use serde_json::{Map, Value};

use super::{AuthenticationFactor, SessionAttributes};

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
    /// Store a registration challenge for device binding (set by `Sessions::login`).
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

    /// The client's address, for [`Sessions::login`](crate::Sessions::login) to record when no
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
