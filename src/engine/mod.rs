//! The engine: [`Sessions`] creates, authenticates, changes, lists and revokes sessions. It takes
//! and returns plain Rust values; reading requests and writing responses is `crate::http`'s.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | [`Sessions`]: its state, getting, listing and extending sessions |
//! | `create.rs` | creating a session, and the size check of every JWT handed out |
//! | `revoke.rs` | revoking sessions (by id, token, JWT, user), and what a logout revokes |
//! | `config.rs` | [`SessionsBuilder`] and the settings it produces |
//! | `build.rs` | [`SessionsBuilder::build`] |
//! | `credentials.rs` | the credentials a request presented, each with its source |
//! | `authenticate.rs` | the one authentication path: credentials in, an outcome out |
//! | `caches.rs` | the verification cache and the token cache |
//! | `lifecycle.rs` | changing a live session: claims, factors, rotation, extension |
//! | `mint.rs` | the mint gate: every JWT handed out, and who may have one |
//! | `device.rs`, `dbsc_config.rs` | device binding (DBSC): registration, refresh, challenges |
//! | `revocation/` | the local revocation list and the follower of the store's feed |
//! | `breaker.rs`, `dyn_store.rs` | the circuit breaker and timing around every store call |
//! | `health.rs` | readiness |
//! | `error.rs` | [`AuthError`] and [`SessionError`] |
//! | `metrics.rs` | the metrics the engine records |

mod authenticate;
pub(crate) mod breaker;
mod build;
mod caches;
pub(crate) mod config;
mod create;
pub(crate) mod credentials;
mod dbsc_config;
mod device;
mod device_proof;
pub(crate) mod dyn_store;
pub(crate) mod error;
mod health;
mod jwt_key;
mod lifecycle;
pub(crate) mod metrics;
mod mint;
pub(crate) mod revocation;
mod revoke;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

use crate::data::clock::SharedClock;
use crate::data::events::{EventHook, SessionEvent, SessionEventKind};
use crate::data::session::{Session, SessionId};
use crate::jwt::JwtCodec;
use crate::store::{
    PageRequest, RevocationFeed, SessionPage, SessionUpdate, StoreError, UpdateOutcome,
};
use config::Settings;
use dyn_store::DynStore;
pub use revocation::RevocationList;
use revocation::{Revocations, Trust, feed_wait, follow};

pub(crate) use authenticate::Step;
pub use authenticate::{AuthPath, Authenticated, Refreshed};
pub use breaker::CircuitBreaker;
pub use config::{
    ConfigError, CookieConfig, DEFAULT_FEED_STALENESS, DEFAULT_ISSUER, DEFAULT_JWT_TTL,
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, DEFAULT_SESSION_TTL, MAX_FEED_STALENESS, MAX_LEEWAY,
    MIN_FEED_STALENESS, SessionsBuilder,
};
#[cfg(test)]
pub(crate) use create::jwt_cookie_len;
pub use create::{Created, MAX_COOKIE_LEN};
pub use credentials::{CredentialSource, Credentials};
pub use dbsc_config::{DbscConfig, MAX_CHALLENGE_TTL};
pub use error::{AuthError, SessionError};
pub use health::Health;
pub use lifecycle::{Changed, SessionChange};
pub(crate) use revoke::Presented;

/// The session manager: one per application, cheap to clone (an `Arc`).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .issuer("https://app.example")
///     .audience("app")
///     .jwt_ttl(Duration::from_secs(300))
///     .session_ttl(Duration::from_secs(7 * 86_400))
///     .sliding(true)
///     .build()
///     .unwrap();
///
/// // Login: a session, its opaque token and a session JWT.
/// let created = sessions.create("user-1", NewSession::new()).await.unwrap();
///
/// // Most requests: the JWT, verified locally with no store call.
/// let session = sessions.authenticate_jwt(created.jwt.expose()).await.unwrap();
/// assert_eq!(session.user_id, "user-1");
///
/// // JWT missing or expired: the opaque token, through the store, with a fresh JWT.
/// let fresh = sessions.authenticate_token(created.token.expose()).await.unwrap();
/// assert_eq!(fresh.session.session_id, created.session.session_id);
///
/// // Revocation: both credentials fail at once.
/// sessions.revoke(&created.session.session_id).await.unwrap();
/// assert!(sessions.authenticate_jwt(created.jwt.expose()).await.is_err());
/// assert!(sessions.authenticate_token(created.token.expose()).await.is_err());
/// # });
/// ```
#[derive(Clone)]
pub struct Sessions {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn DynStore>,
    /// Whether other processes use the store too ([`SessionStore::is_shared`]).
    ///
    /// [`SessionStore::is_shared`]: crate::SessionStore::is_shared
    shared_store: bool,
    codec: JwtCodec,
    settings: Settings,
    clock: SharedClock,
    /// The revocation list and whether it is complete enough to trust (shared with the task
    /// that follows the store's feed).
    revocations: Arc<Revocations>,
    /// Opaque-token lookups: token hash → session, checked against the revocation list and the
    /// clock on every hit.
    token_cache: Option<caches::TokenCache>,
    /// Verified JWTs: the whole token string (compared in full on a hit, so no collision can
    /// stand in for verification) → the session it carries and its `iat` and `exp`.
    jwt_cache: Option<caches::JwtCache>,
    /// When the caches were last swept of entries past use.
    sweep: caches::Sweep,
    /// Handles of the per-request metrics, registered at build.
    metrics: crate::engine::metrics::RequestMetrics,
    /// Where [`SessionEvent`]s go.
    events: Option<EventHook>,
    /// Bumped whenever the cached token lookups of a session are dropped (a device binding): a
    /// token lookup that began before does not put its older record back in the cache.
    lookups_forgotten: std::sync::atomic::AtomicU64,
}

/// How often a change is retried when another instance changed the session in between.
const MAX_UPDATE_ATTEMPTS: usize = 8;
const CONTENDED: &str = "the session kept changing under concurrent updates";

/// Entry counts of the manager's caches, from [`Sessions::cache_sizes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// Verified JWTs remembered.
    pub verified_jwts: u64,
    /// Opaque-token lookups remembered.
    pub token_lookups: u64,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("signing_kid", &self.inner.codec.signing_key().kid())
            .field("settings", &self.inner.settings)
            .field("revocations", &self.inner.revocations.list)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Starts a configuration; see [`SessionsBuilder`].
    pub fn builder() -> SessionsBuilder {
        SessionsBuilder::default()
    }

    pub(crate) fn start(
        store: Arc<dyn DynStore>,
        codec: JwtCodec,
        settings: Settings,
        clock: SharedClock,
        feed: Option<Arc<dyn RevocationFeed>>,
        retention: Duration,
        events: Option<EventHook>,
    ) -> Self {
        let capacity = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let token_cache = (settings.token_cache_capacity > 0).then(|| {
            Arc::new(quick_cache::sync::Cache::new(capacity(
                settings.token_cache_capacity,
            )))
        });
        let jwt_cache = (settings.verification_cache_capacity > 0).then(|| {
            Arc::new(quick_cache::sync::Cache::new(capacity(
                settings.verification_cache_capacity,
            )))
        });
        let sweep = caches::Sweep::new(clock.now(), settings.jwt_ttl);
        let trust = match feed {
            Some(_) => Trust::with_feed(settings.feed_staleness, settings.feed_outage_grace),
            None => Trust::without_feed(clock.now()),
        };
        let revocations = Arc::new(Revocations {
            list: RevocationList::new(clock.clone(), retention),
            trust,
        });
        revocations.trust.report();
        if let Some(feed) = feed {
            tokio::spawn(follow(
                Arc::downgrade(&revocations),
                feed,
                feed_wait(settings.feed_staleness),
            ));
        }
        Self {
            inner: Arc::new(Inner {
                shared_store: store.is_shared(),
                store,
                codec,
                revocations,
                settings,
                clock,
                token_cache,
                jwt_cache,
                sweep,
                events,
                metrics: crate::engine::metrics::RequestMetrics::register(),
                lookups_forgotten: Default::default(),
            }),
        }
    }

    /// Waits until this instance has caught up with the store's revocation feed, so that the
    /// JWT fast path is trusted (returns at once for a store without a feed). Until then, and
    /// whenever the feed is behind or disconnected, JWTs are confirmed in the store instead.
    pub async fn ready(&self) {
        self.inner.revocations.trust.ready().await;
    }

    /// Whether the JWT fast path is trusted right now: always for a store without a feed; with
    /// a feed, only while this instance has caught up with it (its last read, sent at most the
    /// [staleness bound](SessionsBuilder::feed_staleness) ago, 1 s by default, left nothing
    /// unread). Even then, a JWT issued before the feed's horizon (by
    /// an earlier process, say) is confirmed in the store.
    pub fn fast_path_trusted(&self) -> bool {
        self.inner.revocations.trust.caught_up()
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    pub(crate) fn emit(&self, session: &Session, kind: SessionEventKind) {
        if self.inner.events.is_some() {
            self.emit_for(session.session_id.clone(), &session.user_id, kind);
        }
    }

    pub(crate) fn emit_for(&self, session_id: SessionId, user_id: &str, kind: SessionEventKind) {
        if let Some(hook) = &self.inner.events {
            hook(&SessionEvent {
                at: self.now(),
                session_id,
                user_id: user_id.to_owned(),
                kind,
            });
        }
    }

    /// Extends a live session to `now + session_ttl` (capped by the maximum lifetime), whether
    /// or not sliding expiry is on. Returns `None` if the session does not exist. See
    /// [`extend_for`](Self::extend_for) for another duration.
    pub async fn extend(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        let Some(session) = self.inner.store.get(session_id).await? else {
            return Ok(None);
        };
        if self.revocation_list().is_revoked(&session) {
            return Ok(None);
        }
        self.touch(&session, now, true).await
    }

    /// `session`'s expiry moved to `until`, never earlier than it is and never past the
    /// maximum lifetime.
    fn extended_expiry(&self, session: &Session, until: OffsetDateTime) -> OffsetDateTime {
        let until = match self.inner.settings.max_lifetime {
            Some(max) => until.min(session.started_at + max),
            None => until,
        };
        session.expires_at.max(session.on_grid(until))
    }

    fn touch_due(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.last_accessed_at >= self.inner.settings.jwt_ttl
    }

    /// Writes `last_accessed_at = now` and, when `slide`, the extended expiry (an `Extended`
    /// event when it moved). `None` when the session is gone (the store refuses to recreate
    /// it). When the record changed since
    /// `session` was read (a claims change on another instance, say), the stored record is read
    /// again and touched instead, so a touch never overwrites a newer change.
    async fn touch(
        &self,
        session: &Session,
        now: OffsetDateTime,
        slide: bool,
    ) -> Result<Option<Session>, StoreError> {
        let mut base = session.clone();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let mut updated = base.clone();
            updated.last_accessed_at = updated.on_grid(now);
            updated.version += 1;
            if slide {
                updated.expires_at =
                    self.extended_expiry(&updated, now + self.inner.settings.session_ttl);
            }
            let update = SessionUpdate {
                session: updated,
                token_hash: None,
                refuse_older_jwts: false,
            };
            match self.inner.store.update(&update).await? {
                UpdateOutcome::Updated => {
                    let updated = update.session;
                    if updated.expires_at != base.expires_at {
                        self.emit(
                            &updated,
                            SessionEventKind::Extended {
                                expires_at: updated.expires_at,
                            },
                        );
                    }
                    return Ok(Some(updated));
                }
                UpdateOutcome::Stale => match self.inner.store.get(&session.session_id).await? {
                    Some(current) => base = current,
                    None => return Ok(None),
                },
                _ => return Ok(None),
            }
        }
        Err(StoreError::Backend(CONTENDED.into()))
    }

    /// The live session with this id, if it exists and is not revoked.
    pub async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self
            .inner
            .store
            .get(session_id)
            .await?
            .filter(|s| s.is_live_at(self.now()) && !self.revocation_list().is_revoked(s)))
    }

    /// A user's newest live sessions: the first page of [`list_page`](Self::list_page), at
    /// most [`PageRequest::DEFAULT_LIMIT`] (50).
    pub async fn list(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        Ok(self
            .list_page(user_id, &PageRequest::default())
            .await?
            .sessions)
    }

    /// A page of a user's live sessions, newest first, with the cursor of the next page. The
    /// page length is capped at [`PageRequest::MAX_LIMIT`].
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::store::PageRequest;
    /// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// for _ in 0..3 {
    ///     sessions.create("alice", NewSession::new()).await.unwrap();
    /// }
    /// let first = sessions.list_page("alice", &PageRequest::first(2)).await.unwrap();
    /// assert_eq!(first.sessions.len(), 2);
    /// let cursor = first.next.expect("a second page");
    /// let rest = sessions.list_page("alice", &PageRequest::after(cursor, 2)).await.unwrap();
    /// assert_eq!(rest.sessions.len(), 1);
    /// assert!(rest.next.is_none());
    /// # });
    /// ```
    pub async fn list_page(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let page = PageRequest {
            limit: page.limit.clamp(1, PageRequest::MAX_LIMIT),
            after: page.after.clone(),
        };
        let now = self.now();
        let mut found = self.inner.store.list_by_user(user_id, &page).await?;
        found
            .sessions
            .retain(|s| s.is_live_at(now) && !self.revocation_list().is_revoked(s));
        Ok(found)
    }

    /// The public keys that verify session JWTs, as a JWKS document
    /// (serve it at `/.well-known/jwks.json`).
    pub fn jwks(&self) -> JwkSet {
        self.inner.codec.jwks()
    }

    /// How many entries the verification cache and the token cache hold.
    pub fn cache_sizes(&self) -> CacheSizes {
        fn entries<K, V>(cache: &Option<Arc<quick_cache::sync::Cache<K, V>>>) -> u64
        where
            K: std::hash::Hash + Eq,
            V: Clone,
        {
            cache.as_ref().map_or(0, |c| c.len() as u64)
        }
        CacheSizes {
            verified_jwts: entries(&self.inner.jwt_cache),
            token_lookups: entries(&self.inner.token_cache),
        }
    }

    /// The local revocation list.
    pub fn revocations(&self) -> &RevocationList {
        self.revocation_list()
    }

    pub(crate) fn metrics(&self) -> &crate::engine::metrics::RequestMetrics {
        &self.inner.metrics
    }

    /// A store lookup by id (the health check's probe).
    pub(crate) async fn store_get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.inner.store.get(id).await
    }

    fn revocation_list(&self) -> &RevocationList {
        &self.inner.revocations.list
    }

    /// Lifetime of minted JWTs.
    pub fn jwt_ttl(&self) -> Duration {
        self.inner.settings.jwt_ttl
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The clock this manager reads.
    pub fn clock(&self) -> &dyn crate::data::clock::Clock {
        &*self.inner.clock
    }
}
