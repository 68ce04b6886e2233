//! Configuration, validated once when [`Sessions`](crate::Sessions) is built.
//!
//! This module only describes and checks settings; building the manager from them is
//! [`SessionsBuilder::build`], implemented beside [`Sessions`](crate::Sessions).

use std::sync::Arc;
use std::time::Duration;

use super::dyn_store::DynStore;
use crate::data::clock::{Clock, SharedClock, SystemClock};
use crate::jwt::{SigningKey, VerificationKey};
use crate::store::SessionStore;

/// Default lifetime of a session JWT: 5 minutes, as Stytch.
pub const DEFAULT_JWT_TTL: Duration = Duration::from_secs(300);
/// Default lifetime of a session: 7 days.
pub const DEFAULT_SESSION_TTL: Duration = Duration::from_secs(7 * 86_400);
/// Default clock-skew allowance for `exp`, `nbf` and `iat`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(5);
/// Largest leeway accepted by the builder.
pub const MAX_LEEWAY: Duration = Duration::from_secs(60);
/// Default bound on a presented JWT's length, in bytes.
pub const DEFAULT_MAX_TOKEN_LEN: usize = 8 * 1024;
/// Default [staleness bound](SessionsBuilder::feed_staleness) of the revocation feed: the JWT
/// fast path is trusted only while the last caught-up feed read was sent at most this long ago.
pub const DEFAULT_FEED_STALENESS: Duration = Duration::from_secs(1);
/// Shortest [staleness bound](SessionsBuilder::feed_staleness) accepted.
pub const MIN_FEED_STALENESS: Duration = Duration::from_millis(100);
/// Longest [staleness bound](SessionsBuilder::feed_staleness) accepted (and never beyond the JWT
/// lifetime).
pub const MAX_FEED_STALENESS: Duration = Duration::from_secs(30);
/// Default issuer and audience when none is configured.
pub const DEFAULT_ISSUER: &str = "tower-session-jwt";

/// Why [`SessionsBuilder::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No store was given.
    #[error("a session store is required: call .store(..)")]
    MissingStore,
    /// No signing key was given.
    #[error("a signing key is required: call .signing_key(..)")]
    MissingSigningKey,
    /// Two keys share a `kid`.
    #[error("two keys share the key id {0:?}")]
    DuplicateKeyId(String),
    /// The JWT TTL is zero or longer than the session TTL.
    #[error("the JWT TTL must be at least one second and no longer than the session TTL")]
    InvalidJwtTtl,
    /// The session TTL is shorter than a second or beyond the maximum lifetime.
    #[error("the session TTL must be at least one second and within the maximum lifetime")]
    InvalidSessionTtl,
    /// The leeway exceeds [`MAX_LEEWAY`].
    #[error("the leeway must be at most {MAX_LEEWAY:?}")]
    LeewayTooLarge,
    /// An empty issuer or audience.
    #[error("issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
    /// The maximum token length cannot hold a session JWT minted with this configuration
    /// (`min`: the length of the smallest one), or exceeds 65,536 bytes.
    #[error("the maximum token length must be between {min} and 65536 bytes")]
    InvalidMaxTokenLen {
        /// Length of the smallest session JWT this configuration mints.
        min: usize,
    },
    /// A trusted origin is not `scheme://host[:port]` with an `http` or `https` scheme.
    #[error("invalid trusted origin {0:?}: expected scheme://host[:port]")]
    InvalidOrigin(String),
    /// The store is shared by several processes but has no revocation feed, so a session revoked
    /// on one instance would stay usable through its JWT on the others. Give the store a feed,
    /// or accept that cost with
    /// [`SessionsBuilder::tolerate_revoked_jwts_elsewhere`].
    #[error(
        "the store is shared but has no revocation feed: JWTs of sessions revoked elsewhere would \
         stay valid here until they expire; use a store with a feed, or opt in with \
         .tolerate_revoked_jwts_elsewhere()"
    )]
    SharedStoreWithoutFeed,
    /// The store's revocation feed forgets events sooner than a JWT can live.
    #[error("the revocation feed keeps events for {retention:?}; at least {needed:?} is needed")]
    FeedRetentionTooShort {
        /// The feed's retention.
        retention: Duration,
        /// JWT TTL plus leeway plus a second.
        needed: Duration,
    },
    /// The store has a revocation feed, which is read by a background task, but `build` was
    /// called outside a Tokio runtime.
    #[error("build() must be called inside a Tokio runtime when the store has a revocation feed")]
    NoRuntime,
    /// [`SessionsBuilder::feed_outage_grace`] is longer than the JWT lifetime.
    #[error("the feed outage grace ({grace:?}) may not exceed the JWT lifetime ({jwt_ttl:?})")]
    GraceTooLong {
        /// The grace asked for.
        grace: Duration,
        /// The JWT lifetime.
        jwt_ttl: Duration,
    },
    /// [`SessionsBuilder::feed_staleness`] is shorter than [`MIN_FEED_STALENESS`], longer than
    /// [`MAX_FEED_STALENESS`], or longer than the JWT lifetime.
    #[error(
        "the feed staleness bound ({staleness:?}) must be between {MIN_FEED_STALENESS:?} and \
         {MAX_FEED_STALENESS:?}, and no longer than the JWT lifetime ({jwt_ttl:?})"
    )]
    InvalidFeedStaleness {
        /// The bound asked for.
        staleness: Duration,
        /// The JWT lifetime.
        jwt_ttl: Duration,
    },
    /// The [trusted client IP header](SessionsBuilder::trusted_client_ip_header) is not a valid
    /// header name (RFC 9110 `token`).
    #[error("invalid client IP header name {0:?}")]
    InvalidClientIpHeader(String),
    /// A cookie setting is not valid (name, domain or prefix rules).
    #[error("invalid cookie configuration: {0}")]
    InvalidCookie(String),
    /// A [device binding](crate::sessions::DbscConfig) setting is not valid (paths, challenge
    /// lifetime), or the cookies it binds are not `Secure` (DBSC works over HTTPS only).
    #[error("invalid device binding configuration: {0}")]
    InvalidDeviceBinding(String),
}

/// Names and attributes of the two session cookies.
///
/// Defaults: `session_token` and `session_jwt` (Stytch's names), `HttpOnly`, `Secure`,
/// `SameSite=Lax`, `Path=/`, no `Domain`, `Max-Age` = the session's remaining lifetime.
///
/// # Example
///
/// ```
/// use tower_session_jwt::sessions::CookieConfig;
///
/// let cookies = CookieConfig::default().host_prefix(true);
/// assert_eq!(cookies.token_name(), "__Host-session_token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CookieConfig {
    token_name: String,
    jwt_name: String,
    domain: Option<String>,
    secure: bool,
    host_prefix: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            token_name: "session_token".into(),
            jwt_name: "session_jwt".into(),
            domain: None,
            secure: true,
            host_prefix: false,
        }
    }
}

impl CookieConfig {
    /// Cookie names for the opaque token and the JWT (before any `__Host-` prefix).
    pub fn names(mut self, token: impl Into<String>, jwt: impl Into<String>) -> Self {
        self.token_name = token.into();
        self.jwt_name = jwt.into();
        self
    }

    /// A `Domain` attribute, to share the cookies with subdomains.
    ///
    /// # ⚠️ Warning: wider exposure
    ///
    /// Every host under the domain receives the session cookies, and any of them can set
    /// cookies that shadow yours. Leave it unset unless subdomains must share the session.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether cookies carry `Secure` (default `true`).
    ///
    /// # ⚠️ Warning: credentials in clear text
    ///
    /// Without `Secure`, browsers send the session cookies over plain HTTP. Turn it off only for
    /// local development on `http://localhost`.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Prefix both names with `__Host-` (requires `Secure`, no `Domain`, `Path=/`): browsers
    /// then refuse such cookies from subdomains or insecure origins, and cookies without the
    /// prefix are ignored.
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = on;
        self
    }

    /// The opaque token cookie's full name.
    pub fn token_name(&self) -> String {
        self.full(&self.token_name)
    }

    /// The JWT cookie's full name.
    pub fn jwt_name(&self) -> String {
        self.full(&self.jwt_name)
    }

    fn full(&self, name: &str) -> String {
        if self.host_prefix {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }

    pub(crate) fn cookie_domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let token_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !token_ok(&self.token_name) || !token_ok(&self.jwt_name) {
            return Err(ConfigError::InvalidCookie(
                "names must be [A-Za-z0-9._-]+".into(),
            ));
        }
        if self.token_name == self.jwt_name {
            return Err(ConfigError::InvalidCookie(
                "the two names must differ".into(),
            ));
        }
        if self.host_prefix && (!self.secure || self.domain.is_some()) {
            return Err(ConfigError::InvalidCookie(
                "__Host- cookies must be Secure and have no Domain".into(),
            ));
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty()
                || !domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')))
        {
            return Err(ConfigError::InvalidCookie("invalid domain".into()));
        }
        Ok(())
    }
}

/// Builds [`Sessions`](crate::Sessions); see [`Sessions::builder`](crate::Sessions::builder).
#[must_use]
pub struct SessionsBuilder {
    pub(crate) store: Option<Arc<dyn DynStore>>,
    pub(crate) signing_key: Option<SigningKey>,
    pub(crate) verification_keys: Vec<VerificationKey>,
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) jwt_ttl: Duration,
    pub(crate) session_ttl: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) sliding: bool,
    pub(crate) session_limit: crate::store::SessionLimit,
    pub(crate) events: Option<crate::data::events::EventHook>,
    pub(crate) leeway: Duration,
    pub(crate) max_token_len: usize,
    pub(crate) token_cache_capacity: Option<u64>,
    pub(crate) verification_cache_capacity: u64,
    pub(crate) clock: SharedClock,
    pub(crate) cookies: CookieConfig,
    pub(crate) client_ip_header: Option<String>,
    pub(crate) trusted_origins: Vec<String>,
    pub(crate) tolerate_feedless: bool,
    pub(crate) tokens: crate::data::token::TokenPolicy,
    pub(crate) breaker: Option<crate::engine::CircuitBreaker>,
    pub(crate) feed_outage_grace: Duration,
    pub(crate) feed_staleness: Duration,
    pub(crate) device_binding: Option<crate::engine::DbscConfig>,
    pub(crate) keep_sessions_on_login: bool,
}

impl Default for SessionsBuilder {
    fn default() -> Self {
        Self {
            store: None,
            signing_key: None,
            verification_keys: Vec::new(),
            issuer: DEFAULT_ISSUER.into(),
            audience: DEFAULT_ISSUER.into(),
            jwt_ttl: DEFAULT_JWT_TTL,
            session_ttl: DEFAULT_SESSION_TTL,
            max_lifetime: None,
            sliding: false,
            session_limit: Default::default(),
            events: None,
            leeway: DEFAULT_LEEWAY,
            max_token_len: DEFAULT_MAX_TOKEN_LEN,
            token_cache_capacity: None,
            verification_cache_capacity: 100_000,
            clock: Arc::new(SystemClock),
            cookies: CookieConfig::default(),
            client_ip_header: None,
            trusted_origins: Vec::new(),
            tolerate_feedless: false,
            tokens: Default::default(),
            breaker: Some(Default::default()),
            feed_outage_grace: Duration::ZERO,
            feed_staleness: DEFAULT_FEED_STALENESS,
            device_binding: None,
            keep_sessions_on_login: false,
        }
    }
}

/// Validated settings shared by the manager and the layer.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub(crate) jwt_ttl: Duration,
    pub(crate) session_ttl: Duration,
    pub(crate) max_lifetime: Option<Duration>,
    pub(crate) sliding: bool,
    pub(crate) session_limit: crate::store::SessionLimit,
    pub(crate) leeway: Duration,
    pub(crate) token_cache_capacity: u64,
    pub(crate) verification_cache_capacity: u64,
    pub(crate) cookies: CookieConfig,
    /// Full cookie names, computed once.
    pub(crate) token_cookie: String,
    pub(crate) jwt_cookie: String,
    pub(crate) client_ip_header: Option<String>,
    /// Origins (`scheme://host[:port]`, lower case) allowed to post to the login and logout
    /// handlers besides the request's own.
    pub(crate) trusted_origins: Vec<String>,
    /// Token keys and the untagged-token window.
    pub(crate) tokens: crate::data::token::TokenPolicy,
    /// Bounded staleness while the feed is unreachable; zero is off.
    pub(crate) feed_outage_grace: Duration,
    /// How old the last caught-up feed read may be while the fast path is trusted.
    pub(crate) feed_staleness: Duration,
    /// Device binding (DBSC), when offered.
    pub(crate) device_binding: Option<crate::engine::DbscConfig>,
    /// Whether a login leaves the session whose cookies it replaces alive.
    pub(crate) keep_sessions_on_login: bool,
}

impl SessionsBuilder {
    /// The store sessions live in (required).
    pub fn store(mut self, store: impl SessionStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// The key that signs new session JWTs (required).
    pub fn signing_key(mut self, key: SigningKey) -> Self {
        self.signing_key = Some(key);
        self
    }

    /// A key that still verifies JWTs but signs none (a retired key during rotation). May be
    /// called several times.
    pub fn verification_key(mut self, key: VerificationKey) -> Self {
        self.verification_keys.push(key);
        self
    }

    /// The `iss` claim minted and required (default `"tower-session-jwt"`).
    pub fn issuer(mut self, issuer: impl Into<String>) -> Self {
        self.issuer = issuer.into();
        self
    }

    /// The `aud` claim minted and required (default `"tower-session-jwt"`).
    pub fn audience(mut self, audience: impl Into<String>) -> Self {
        self.audience = audience.into();
        self
    }

    /// Lifetime of a session JWT (default 5 minutes), whole seconds.
    ///
    /// # ⚠️ Warning: revocation latency on stores without a feed
    ///
    /// Revocation reaches other instances through the store's revocation feed; where a store has
    /// none, a revoked session's JWT stays valid on other instances for up to this long.
    pub fn jwt_ttl(mut self, ttl: Duration) -> Self {
        self.jwt_ttl = ttl;
        self
    }

    /// Lifetime of a session (default 7 days), whole seconds.
    pub fn session_ttl(mut self, ttl: Duration) -> Self {
        self.session_ttl = ttl;
        self
    }

    /// Whether activity extends a session to `now + session_ttl` (default `false`). The store is
    /// written at most once per JWT lifetime per session.
    pub fn sliding(mut self, sliding: bool) -> Self {
        self.sliding = sliding;
        self
    }

    /// How many live sessions one user may hold, and what a login beyond that does (default
    /// 100, the oldest revoked: [`SessionLimit::default`](crate::store::SessionLimit)). The
    /// store enforces it atomically with each creation, across instances.
    ///
    /// ```
    /// use tower_session_jwt::store::{SessionLimit, WhenFull};
    /// # use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    ///
    /// let sessions = Sessions::builder()
    ///     # .store(MemoryStore::new()).signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .session_limit(SessionLimit::new(5, WhenFull::Refuse))
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn session_limit(mut self, limit: crate::store::SessionLimit) -> Self {
        self.session_limit = limit;
        self
    }

    /// Calls `hook` with every [`SessionEvent`](crate::events::SessionEvent) this instance causes
    /// (created, refreshed, extended, claims changed, factor added, rotated, revoked), for an
    /// audit log. Events carry ids, names and reasons, never a credential. The hook runs on the
    /// request's task: keep it quick (hand the event to a channel for slow work).
    ///
    /// ```
    /// # use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     # .store(MemoryStore::new()).signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .on_event(|event| eprintln!("{}", serde_json::to_string(event).unwrap()))
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn on_event(
        mut self,
        hook: impl Fn(&crate::data::events::SessionEvent) + Send + Sync + 'static,
    ) -> Self {
        self.events = Some(std::sync::Arc::new(hook));
        self
    }

    /// An absolute cap on a session's life from `started_at`, however much sliding extends it.
    pub fn max_lifetime(mut self, max: Duration) -> Self {
        self.max_lifetime = Some(max);
        self
    }

    /// Clock-skew allowance for `exp`, `nbf` and `iat` (default 5 s, at most 60 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Longest JWT accepted, in bytes (default 8 KiB).
    pub fn max_token_len(mut self, len: usize) -> Self {
        self.max_token_len = len;
        self
    }

    /// How many opaque-token lookups to cache; `0` disables the cache. Default: 10 000 (about
    /// 1.3 KB each, with the session and its last JWT) for a
    /// store used by this process alone ([`MemoryStore`](crate::MemoryStore)), `0` for a shared
    /// store ([`SessionStore::is_shared`]).
    ///
    /// # ⚠️ Warning: revocation latency on shared stores
    ///
    /// With a cache over a shared store, a token revoked on another instance is refused here only
    /// once the revocation feed has delivered the revocation (like a JWT), not at once.
    pub fn token_cache_capacity(mut self, capacity: u64) -> Self {
        self.token_cache_capacity = Some(capacity);
        self
    }

    /// How many verified JWTs to remember (default 100 000; `0` disables the cache). A JWT seen
    /// before is not verified again until its `exp`; the revocation list is still checked on
    /// every use. Only JWTs that verified are admitted, so garbage cannot evict entries.
    pub fn verification_cache_capacity(mut self, capacity: u64) -> Self {
        self.verification_cache_capacity = capacity;
        self
    }

    /// The clock to read time from (default: the system clock).
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    /// Cookie names and attributes (see [`CookieConfig`]).
    pub fn cookies(mut self, cookies: CookieConfig) -> Self {
        self.cookies = cookies;
        self
    }

    /// Read the client IP recorded at login from this header (for example `x-forwarded-for`,
    /// whose rightmost entry is used, or `x-real-ip`) instead of the peer address.
    ///
    /// # ⚠️ Warning: spoofing
    ///
    /// Set this only behind a proxy that overwrites the header; otherwise clients choose the IP
    /// address their session shows.
    ///
    /// The name is matched case-insensitively; one that is not a valid header name fails
    /// [`build`](Self::build) with [`ConfigError::InvalidClientIpHeader`].
    pub fn trusted_client_ip_header(mut self, header: impl AsRef<str>) -> Self {
        self.client_ip_header = Some(header.as_ref().to_owned());
        self
    }

    /// Origins allowed to send state-changing requests (login, logout, revoke) besides the
    /// request's own, as `scheme://host[:port]` (for example a front end on another host, or the
    /// public origin when a proxy rewrites `Host`). When any is set, a request whose `Origin` is
    /// neither listed nor the request's own is refused with `403`.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .trusted_origins(["https://app.example", "https://admin.app.example:8443"])
    ///     .build()
    ///     .unwrap();
    /// # let _ = sessions; });
    /// ```
    pub fn trusted_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// The store's circuit breaker (on by default, [`CircuitBreaker::default`](crate::sessions::CircuitBreaker::default)): after a few
    /// consecutive failed calls, store calls answer
    /// [`StoreError::CircuitOpen`](crate::StoreError::CircuitOpen) (`503`) at once instead of
    /// each waiting for the store's timeout, and one probe call at a time finds out when the
    /// store is back, which closes the circuit by itself. A stalled store then costs one
    /// timeout per probe period, not one per request. Only calls that could not reach the
    /// store ([`StoreError::is_unavailable`](crate::StoreError::is_unavailable)) count as
    /// failures; a call cancelled before it finished (a client that hung up) counts as nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_session_jwt::sessions::CircuitBreaker;
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .circuit_breaker(CircuitBreaker { failures: 5, probe_after: Duration::from_millis(500) })
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn circuit_breaker(mut self, breaker: crate::engine::CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Turns the circuit breaker off: every store call waits for the store's own answer or
    /// timeout.
    pub fn without_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// **Opt-in bounded staleness** (off by default): while the revocation feed is unreachable,
    /// keep trusting JWTs issued before the last successful feed read for up to `grace` after
    /// that read, instead of confirming every JWT in the (equally unreachable) store. At most
    /// the JWT lifetime ([`ConfigError::GraceTooLong`] otherwise).
    ///
    /// This keeps signed-in users working through a store failover of up to `grace`. **The
    /// risk, exactly:** a revocation made on another instance while this one cannot read the
    /// feed is not seen here until the feed is back, or until `grace` has passed since the last
    /// read, whichever comes first; for that long the revoked session's JWTs (issued before the
    /// last read) are accepted here. Revocations made on this instance are applied at once, as
    /// always. JWTs issued after the last read are not covered, nor is anything while the feed
    /// is known to hold unread events (a backlog, a lost cursor): those are confirmed in the
    /// store, as without a grace.
    pub fn feed_outage_grace(mut self, grace: Duration) -> Self {
        self.feed_outage_grace = grace;
        self
    }

    /// The revocation feed's **staleness bound** (default 1 s, [`DEFAULT_FEED_STALENESS`]): the
    /// JWT fast path (and a token cache over a shared store) is trusted only while this
    /// instance's last caught-up read of the store's revocation feed was sent at most this long
    /// ago. Past it, every JWT is confirmed in the store, which refuses a revoked session (or,
    /// if the store is unreachable too, answers `503`).
    ///
    /// This is how long a JWT revoked on another instance can still be accepted here when the
    /// link to the store stalls without failing (a connection that stays open but carries
    /// nothing): at most the bound after the revocation. The feed is read with a wait of a
    /// quarter of the bound, so an idle, healthy feed stays fresh without traffic and
    /// [`Sessions::ready`](crate::Sessions::ready) and the fast path stay trusted; a shorter
    /// bound costs more feed reads (four per bound per instance while idle). Between
    /// [`MIN_FEED_STALENESS`] and [`MAX_FEED_STALENESS`], and no longer than the
    /// [JWT lifetime](Self::jwt_ttl), or [`build`](Self::build) fails with
    /// [`ConfigError::InvalidFeedStaleness`]. Stores without a feed ignore it.
    ///
    /// The opt-in [`feed_outage_grace`](Self::feed_outage_grace) is a separate, longer
    /// allowance for an unreachable feed; without it, this bound is the whole window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_session_jwt::{Sessions, SigningKey};
    /// use tower_session_jwt::store::sqlite::SqliteStore;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("tsj-doc-staleness-{}.db", std::process::id()));
    /// let sessions = Sessions::builder()
    ///     .store(SqliteStore::open(&dir).await.unwrap())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     // A JWT revoked elsewhere is refused here within 500 ms, whatever the link does.
    ///     .feed_staleness(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// sessions.ready().await;
    /// assert!(sessions.fast_path_trusted());
    /// # drop(sessions);
    /// # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", dir.display())); }
    /// # });
    /// ```
    pub fn feed_staleness(mut self, bound: Duration) -> Self {
        self.feed_staleness = bound;
        self
    }

    /// Tags every new session token with `key`, so that tokens this service did not mint are
    /// refused ([`AuthError::ForgedToken`](crate::AuthError::ForgedToken), `401`) before any
    /// store call: a flood of random or guessed tokens then costs one MAC each instead of one
    /// store round trip each. Every instance needs the same key, like the signing key.
    ///
    /// Once a key is configured, untagged tokens (those minted without one, by this or an
    /// earlier version) are refused too; give them a migration window with
    /// [`accept_untagged_tokens_until`](Self::accept_untagged_tokens_until). The [token
    /// module](crate::token::TokenKey) describes the format.
    ///
    /// ```
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// use tower_session_jwt::token::TokenKey;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .token_key(TokenKey::new(2, &[0x5a; 32]).unwrap())
    ///     .previous_token_key(TokenKey::new(1, &[0xa5; 32]).unwrap())
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn token_key(mut self, key: crate::data::token::TokenKey) -> Self {
        self.tokens.current = Some(key);
        self
    }

    /// A token key that no longer tags new tokens but still admits the tokens it tagged: keep
    /// it after a rotation until those sessions have ended. May be called several times.
    pub fn previous_token_key(mut self, key: crate::data::token::TokenKey) -> Self {
        self.tokens.previous.push(key);
        self
    }

    /// While token keys are configured, still admits untagged tokens (minted before the keys
    /// were) until `until`: the migration window. Set it to the upgrade's time plus the
    /// sessions' maximum lifetime; after it, untagged tokens are refused without a store call.
    /// Without token keys every well-formed token goes to the store and this has no effect.
    pub fn accept_untagged_tokens_until(mut self, until: time::OffsetDateTime) -> Self {
        self.tokens.untagged_until = Some(until);
        self
    }

    /// Accepts a [shared](SessionStore::is_shared) store that has no revocation feed.
    ///
    /// # ⚠️ Warning: revoked sessions live on elsewhere
    ///
    /// Without a feed, a revocation reaches only the instance that made it. On every other
    /// instance the revoked session's JWTs stay valid until they expire (up to the
    /// [JWT TTL](Self::jwt_ttl)), and a token cache (if you enable one) keeps serving the revoked
    /// token for as long. The opaque token itself still fails at once everywhere (the store no
    /// longer has it). Without this call, [`build`](Self::build) refuses such a store with
    /// [`ConfigError::SharedStoreWithoutFeed`].
    pub fn tolerate_revoked_jwts_elsewhere(mut self) -> Self {
        self.tolerate_feedless = true;
        self
    }

    /// Keeps the session a login replaces alive. By default
    /// [`Sessions::login`](crate::Sessions::login) (and so [`login::login`](crate::login::login))
    /// revokes the session that the request's
    /// cookies authenticate (the browser is about to get the new session's cookies, and the old
    /// session would otherwise stay usable by its token, and listed among the user's devices,
    /// for its whole lifetime, with no browser holding it).
    ///
    /// Call this when your application keeps several accounts per browser and switches between
    /// them itself (keeping each account's credentials apart from the session cookies): the
    /// older sessions then live on until they are signed out or expire.
    ///
    /// ```
    /// # use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     # .store(MemoryStore::new()).signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .keep_sessions_on_login()
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn keep_sessions_on_login(mut self) -> Self {
        self.keep_sessions_on_login = true;
        self
    }

    /// Offers browsers [device-bound sessions](crate::dbsc) (DBSC): [`login::login`](crate::login::login)
    /// adds a `Secure-Session-Registration` offer, and mount
    /// [`dbsc::registration`](crate::dbsc::registration) and
    /// [`dbsc::refresh`](crate::dbsc::refresh) at the configured paths. A session bound to a
    /// device key no longer re-mints JWTs from its opaque token alone. Needs `Secure` cookies.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::sessions::DbscConfig;
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .device_binding(DbscConfig::new())
    ///     .build()
    ///     .unwrap();
    /// assert!(sessions.device_binding_offered());
    /// # });
    /// ```
    pub fn device_binding(mut self, config: crate::engine::DbscConfig) -> Self {
        self.device_binding = Some(config);
        self
    }

    /// Checks every setting but the keys' and the store's; the manager checks those.
    pub(crate) fn settings(&self, shared_store: bool) -> Result<Settings, ConfigError> {
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(ConfigError::EmptyIssuerOrAudience);
        }
        if self.session_ttl < Duration::from_secs(1)
            || self.max_lifetime.is_some_and(|max| max < self.session_ttl)
        {
            return Err(ConfigError::InvalidSessionTtl);
        }
        if self.jwt_ttl < Duration::from_secs(1) || self.jwt_ttl > self.session_ttl {
            return Err(ConfigError::InvalidJwtTtl);
        }
        if self.leeway > MAX_LEEWAY {
            return Err(ConfigError::LeewayTooLarge);
        }
        if self.feed_outage_grace > self.jwt_ttl {
            return Err(ConfigError::GraceTooLong {
                grace: self.feed_outage_grace,
                jwt_ttl: self.jwt_ttl,
            });
        }
        if self.feed_staleness < MIN_FEED_STALENESS
            || self.feed_staleness > MAX_FEED_STALENESS.min(self.jwt_ttl)
        {
            return Err(ConfigError::InvalidFeedStaleness {
                staleness: self.feed_staleness,
                jwt_ttl: self.jwt_ttl,
            });
        }
        self.cookies.validate()?;
        if let Some(binding) = &self.device_binding {
            binding.validate()?;
            if self.jwt_ttl <= Duration::from_secs(120) {
                tracing::warn!(
                    jwt_ttl_secs = self.jwt_ttl.as_secs(),
                    "device binding with a JWT lifetime of two minutes or less: browsers \
                     refresh bound cookies from two minutes before they expire, so nearly \
                     every request will wait for a refresh"
                );
            }
            if !self.cookies.is_secure() {
                return Err(ConfigError::InvalidDeviceBinding(
                    "device binding needs Secure cookies (browsers offer DBSC over HTTPS only)"
                        .into(),
                ));
            }
        }
        let trusted_origins = self
            .trusted_origins
            .iter()
            .map(|o| normalize_origin(o).ok_or_else(|| ConfigError::InvalidOrigin(o.clone())))
            .collect::<Result<_, _>>()?;
        let client_ip_header = match &self.client_ip_header {
            Some(name) if is_header_name(name) => Some(name.to_ascii_lowercase()),
            Some(name) => return Err(ConfigError::InvalidClientIpHeader(name.clone())),
            None => None,
        };
        Ok(Settings {
            jwt_ttl: Duration::from_secs(self.jwt_ttl.as_secs()),
            session_ttl: self.session_ttl,
            max_lifetime: self.max_lifetime,
            sliding: self.sliding,
            session_limit: self.session_limit,
            leeway: self.leeway,
            token_cache_capacity: self.token_cache_capacity.unwrap_or(if shared_store {
                0
            } else {
                10_000
            }),
            verification_cache_capacity: self.verification_cache_capacity,
            token_cookie: self.cookies.token_name(),
            jwt_cookie: self.cookies.jwt_name(),
            cookies: self.cookies.clone(),
            client_ip_header,
            trusted_origins,
            tokens: self.tokens.clone(),
            feed_outage_grace: self.feed_outage_grace,
            feed_staleness: self.feed_staleness,
            device_binding: self.device_binding.clone(),
            keep_sessions_on_login: self.keep_sessions_on_login,
        })
    }
}

/// `scheme://host[:port]` in lower case, for `http` and `https` origins; `None` otherwise.
fn normalize_origin(origin: &str) -> Option<String> {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    let (scheme, authority) = origin.split_once("://")?;
    let host_ok = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'));
    (matches!(scheme, "http" | "https") && host_ok).then(|| without_default_port(&origin))
}

/// `scheme://host[:port]` without the scheme's default port (`:443` for https, `:80` for http),
/// so that `Host: app.example:443` and `Origin: https://app.example` agree.
pub(crate) fn without_default_port(origin: &str) -> String {
    for (scheme, port) in [("https://", ":443"), ("http://", ":80")] {
        if origin.starts_with(scheme)
            && let Some(stripped) = origin.strip_suffix(port)
        {
            return stripped.to_owned();
        }
    }
    origin.to_owned()
}

/// Whether `name` is a header name: an RFC 9110 `token` (letters, digits and
/// ``!#$%&'*+-.^_`|~``), not empty.
fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
