//! Configuration, validated once when [`Sessions`](crate::Sessions) is built.
//!
//! This module only describes and checks settings; building the manager from them is
//! [`SessionsBuilder::build`], implemented beside [`Sessions`](crate::Sessions).
//!
//! | file | concern |
//! |---|---|
//! | `config.rs` | the defaults and limits, [`SessionsBuilder`] with its keys, lifetimes, limits, caches and clock, and the settings it produces |
//! | `config/browser.rs` | the builder's settings for requests and browsers: cookies, client address, origins, logins, device binding |
//! | `config/revocation.rs` | the builder's settings for store failures and revocation trust |
//! | `config/tokens.rs` | the builder's settings for opaque token keys |
//! | `config/cookies.rs` | [`CookieConfig`] |
//! | `config/error.rs` | [`ConfigError`] |

use std::sync::Arc;
use std::time::Duration;

use super::dyn_store::DynStore;
use crate::data::clock::{Clock, SharedClock, SystemClock};
use crate::jwt::{SigningKey, VerificationKey};
use crate::store::SessionStore;

mod browser;
mod cookies;
mod error;
mod revocation;
mod tokens;

pub use cookies::CookieConfig;
pub use error::ConfigError;

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
