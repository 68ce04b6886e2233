//! [`Sessions`]: create, authenticate, extend, list and revoke sessions.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

use crate::clock::SharedClock;
use crate::config::{SessionsBuilder, Settings};
use crate::error::{AuthError, SessionError};
use crate::jwt::{Expiry, JwtCodec, SessionJwt};
use crate::revocation::{RevocationEvent, RevocationList};
use crate::session::{MAX_USER_ID_LEN, NewSession, Session, SessionId, validate_custom_claims};
use crate::store::{DynStore, FeedCursor, RevocationFeed, SessionRecord, StoreError};
use crate::token::{SessionToken, TokenHash, is_token_shaped};

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
    codec: JwtCodec,
    settings: Settings,
    clock: SharedClock,
    revocations: RevocationList,
    /// Opaque-token lookups: token hash → session, checked against the revocation list and the
    /// clock on every hit.
    token_cache: Option<moka::sync::Cache<TokenHash, CachedLookup>>,
    /// Verified JWTs: the whole token string (compared in full on a hit, so no collision can
    /// stand in for verification) → the session it carries and its `exp`.
    jwt_cache: Option<moka::sync::Cache<Arc<str>, CachedJwt>>,
    /// Whether this instance currently knows every recent revocation (see [`FeedStatus`]).
    feed: Option<FeedStatus>,
}

/// How long a feed read may block before returning empty.
const FEED_WAIT: Duration = Duration::from_secs(1);
/// How old the last successful feed read may be while the JWT fast path is still trusted.
const FEED_STALE_AFTER: Duration = Duration::from_secs(3);

/// The invariant of DESIGN §4, as state: the fast path is trusted only while the feed reader
/// has caught up and read successfully within [`FEED_STALE_AFTER`].
struct FeedStatus {
    epoch: Instant,
    /// Milliseconds since `epoch` of the last successful read; `u64::MAX` while out of sync.
    last_ok_ms: AtomicU64,
    /// Woken when the status leaves "out of sync", for [`Sessions::ready`].
    synced_notify: tokio::sync::Notify,
}

impl FeedStatus {
    fn trusted(&self) -> bool {
        let last = self.last_ok_ms.load(Ordering::Acquire);
        last != u64::MAX
            && (self.epoch.elapsed().as_millis() as u64).saturating_sub(last)
                <= FEED_STALE_AFTER.as_millis() as u64
    }

    fn mark_ok(&self) {
        let now = self.epoch.elapsed().as_millis() as u64;
        if self.last_ok_ms.swap(now, Ordering::AcqRel) == u64::MAX {
            self.synced_notify.notify_waiters();
        }
    }

    fn mark_lost(&self) {
        self.last_ok_ms.store(u64::MAX, Ordering::Release);
    }
}

/// Outcome of the local part of JWT authentication.
pub(crate) enum JwtCheck {
    /// Verified and trusted without the store.
    Trusted(Arc<Session>),
    /// Verified, but this instance may have missed a revocation: confirm in the store.
    Confirm(Session),
}

#[derive(Clone)]
struct CachedJwt {
    session: Arc<Session>,
    /// The JWT's `exp`, Unix seconds.
    expires_at: i64,
}

#[derive(Clone)]
struct CachedLookup {
    session: Arc<Session>,
    /// When the store last confirmed the session; the entry is trusted for one JWT lifetime
    /// from then.
    fetched_at: OffsetDateTime,
    /// The JWT last minted for this token, reused while it has half its lifetime left, so a
    /// client that only sends the opaque token does not cost a signature per request.
    jwt: Option<SessionJwt>,
}

/// Entry counts of the manager's caches, from [`Sessions::cache_sizes`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    /// Verified JWTs remembered.
    pub verified_jwts: u64,
    /// Opaque-token lookups remembered.
    pub token_lookups: u64,
}

/// A newly created session and its two credentials.
#[derive(Debug, Clone)]
pub struct CreatedSession {
    /// The session record.
    pub session: Session,
    /// The opaque session token (the revocable credential). Shown to the client once.
    pub token: SessionToken,
    /// A session JWT for the fast path.
    pub jwt: SessionJwt,
}

/// A session confirmed against the store, with a freshly minted JWT for it.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The live session.
    pub session: Arc<Session>,
    /// A new session JWT to hand back to the client.
    pub jwt: SessionJwt,
}

impl fmt::Debug for Sessions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sessions")
            .field("signing_kid", &self.inner.codec.signing_key().kid())
            .field("settings", &self.inner.settings)
            .field("revocations", &self.inner.revocations)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// Starts a configuration; see [`SessionsBuilder`].
    pub fn builder() -> SessionsBuilder {
        SessionsBuilder::default()
    }

    pub(crate) fn from_parts(
        store: Arc<dyn DynStore>,
        codec: JwtCodec,
        settings: Settings,
        clock: SharedClock,
    ) -> Result<Self, crate::ConfigError> {
        let retention = settings.jwt_ttl + settings.leeway + Duration::from_secs(1);
        let token_cache = (settings.token_cache_capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.token_cache_capacity)
                .time_to_live(settings.jwt_ttl)
                .build()
        });
        let jwt_cache = (settings.verification_cache_capacity > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(settings.verification_cache_capacity)
                .time_to_live(settings.jwt_ttl + settings.leeway)
                .build()
        });
        let feed = store.revocation_feed();
        if let Some(feed) = &feed {
            if feed.retention() < retention {
                return Err(crate::ConfigError::FeedRetentionTooShort {
                    retention: feed.retention(),
                    needed: retention,
                });
            }
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(crate::ConfigError::NoRuntime);
            }
        }
        let sessions = Self {
            inner: Arc::new(Inner {
                store,
                codec,
                revocations: RevocationList::new(clock.clone(), retention),
                settings,
                clock,
                token_cache,
                jwt_cache,
                feed: feed.as_ref().map(|_| FeedStatus {
                    epoch: Instant::now(),
                    last_ok_ms: AtomicU64::new(u64::MAX),
                    synced_notify: tokio::sync::Notify::new(),
                }),
            }),
        };
        if let Some(feed) = feed {
            tokio::spawn(follow_feed(Arc::downgrade(&sessions.inner), feed));
        }
        Ok(sessions)
    }

    /// Waits until this instance has caught up with the store's revocation feed, so that the
    /// JWT fast path is trusted (returns at once for a store without a feed). Until then, and
    /// whenever the feed is disconnected, JWTs are confirmed in the store instead.
    pub async fn ready(&self) {
        let Some(feed) = &self.inner.feed else {
            return;
        };
        loop {
            let notified = feed.synced_notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if feed.trusted() {
                return;
            }
            notified.await;
        }
    }

    /// Whether the JWT fast path is trusted right now: always for a store without a feed; with
    /// a feed, only while this instance knows every recent revocation.
    pub fn fast_path_trusted(&self) -> bool {
        self.inner.feed.as_ref().is_none_or(FeedStatus::trusted)
    }

    fn now(&self) -> OffsetDateTime {
        self.inner.clock.now()
    }

    /// Creates a session for `user_id` and returns it with its token and a JWT.
    ///
    /// The session is stored before anything is returned: if the store fails, no credential is
    /// handed out.
    pub async fn create(
        &self,
        user_id: impl Into<String>,
        new: NewSession,
    ) -> Result<CreatedSession, SessionError> {
        let user_id = user_id.into();
        if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
            return Err(SessionError::InvalidUserId);
        }
        validate_custom_claims(&new.custom_claims)?;
        let ttl = new.ttl.unwrap_or(self.inner.settings.session_ttl);
        if ttl < Duration::from_secs(1)
            || self
                .inner
                .settings
                .max_lifetime
                .is_some_and(|max| ttl > max)
        {
            return Err(SessionError::InvalidTtl);
        }
        let now = self.now();
        let session = Session {
            session_id: SessionId::generate()?,
            user_id,
            started_at: now,
            last_accessed_at: now,
            expires_at: now + ttl,
            attributes: new.attributes,
            custom_claims: new.custom_claims,
        };
        let token = SessionToken::generate()?;
        let token_hash = token.hash();
        self.inner
            .store
            .create(SessionRecord {
                session: session.clone(),
                token_hash,
            })
            .await?;
        let jwt = self.inner.codec.mint(&session, now)?;
        self.cache_insert(
            token_hash,
            Arc::new(session.clone()),
            now,
            Some(jwt.clone()),
        );
        Ok(CreatedSession {
            session,
            token,
            jwt,
        })
    }

    /// Authenticates a session JWT: signature, pinned header, claims, lifetime and the revocation
    /// list, all checked locally. No store call is made while the instance knows every recent
    /// revocation ([`fast_path_trusted`](Self::fast_path_trusted)); otherwise the session is
    /// confirmed in the store by id.
    pub async fn authenticate_jwt(&self, jwt: &str) -> Result<Arc<Session>, AuthError> {
        match self.check_jwt(jwt)? {
            JwtCheck::Trusted(session) => Ok(session),
            JwtCheck::Confirm(session) => self.confirm(session).await,
        }
    }

    /// The local part of [`authenticate_jwt`](Self::authenticate_jwt).
    pub(crate) fn check_jwt(&self, jwt: &str) -> Result<JwtCheck, AuthError> {
        let now = self.now();
        let session = match self.jwt_cache_get(jwt, now)? {
            Some(session) => session,
            None => {
                let verified = self.inner.codec.verify(jwt, now, Expiry::Enforce)?;
                let session = Arc::new(verified.session);
                if let Some(cache) = &self.inner.jwt_cache {
                    cache.insert(
                        Arc::from(jwt),
                        CachedJwt {
                            session: session.clone(),
                            expires_at: verified.expires_at,
                        },
                    );
                }
                session
            }
        };
        if !session.is_live_at(now) {
            return Err(AuthError::InvalidJwt(crate::JwtError::Expired));
        }
        if self.inner.revocations.is_revoked(&session) {
            return Err(AuthError::Revoked);
        }
        if self.fast_path_trusted() {
            Ok(JwtCheck::Trusted(session))
        } else {
            Ok(JwtCheck::Confirm((*session).clone()))
        }
    }

    /// A previously verified JWT's session, if the token is cached and has not expired.
    fn jwt_cache_get(
        &self,
        jwt: &str,
        now: OffsetDateTime,
    ) -> Result<Option<Arc<Session>>, AuthError> {
        let Some(hit) = self.inner.jwt_cache.as_ref().and_then(|c| c.get(jwt)) else {
            return Ok(None);
        };
        if now.unix_timestamp() >= hit.expires_at + self.inner.codec.leeway_secs() {
            return Err(AuthError::InvalidJwt(crate::JwtError::Expired));
        }
        Ok(Some(hit.session))
    }

    /// The session id a genuine JWT names, expired or not (`None` for anything not minted by a
    /// configured key).
    pub(crate) fn jwt_session_id(&self, jwt: &str) -> Option<SessionId> {
        self.inner
            .codec
            .verify(jwt, self.now(), Expiry::Ignore)
            .ok()
            .map(|v| v.session.session_id)
    }

    /// Confirms a verified JWT's session in the store: it must still exist for the same user.
    pub(crate) async fn confirm(&self, session: Session) -> Result<Arc<Session>, AuthError> {
        match self.inner.store.get(&session.session_id).await? {
            Some(stored) if stored.user_id == session.user_id && stored.is_live_at(self.now()) => {
                if self.inner.revocations.is_revoked(&stored) {
                    return Err(AuthError::Revoked);
                }
                Ok(Arc::new(session))
            }
            _ => Err(AuthError::UnknownSession),
        }
    }

    /// Confirms an opaque session token against the store (through the token cache) and mints a
    /// fresh JWT for it.
    ///
    /// At most once per JWT lifetime per session this also writes `last_accessed_at` (and, with
    /// sliding expiry, the new `expires_at`) to the store.
    pub async fn authenticate_token(&self, token: &str) -> Result<Authenticated, AuthError> {
        if !is_token_shaped(token) {
            return Err(AuthError::MalformedToken);
        }
        let hash = TokenHash::of(token);
        let now = self.now();
        let (mut session, mut fetched_at, cached_jwt) = match self.cache_get(&hash, now) {
            Some(hit) => (hit.session, hit.fetched_at, hit.jwt),
            None => {
                let found = self.inner.store.find_by_token(&hash).await?;
                (Arc::new(found.ok_or(AuthError::UnknownSession)?), now, None)
            }
        };
        if !session.is_live_at(now) {
            self.cache_invalidate(&hash);
            return Err(AuthError::UnknownSession);
        }
        // Checked after the lookup: a revoke that finished while the lookup was in flight is
        // seen here, because revoke records the id locally before it touches the store. Only a
        // session that passed this check is cached, stamped with the time the lookup began.
        if self.inner.revocations.is_revoked(&session) {
            self.cache_invalidate(&hash);
            return Err(AuthError::Revoked);
        }
        let mut reusable = cached_jwt;
        if self.touch_due(&session, now) {
            match self
                .touch(&session, now, self.inner.settings.sliding)
                .await?
            {
                Some(updated) => {
                    session = Arc::new(updated);
                    fetched_at = now;
                    reusable = None;
                }
                None => {
                    self.cache_invalidate(&hash);
                    return Err(AuthError::UnknownSession);
                }
            }
        }
        let half_life = self.inner.settings.jwt_ttl / 2;
        let jwt = match reusable.filter(|jwt| jwt.expires_at() - now >= half_life) {
            Some(jwt) => jwt,
            None => {
                let jwt = self.inner.codec.mint(&session, now)?;
                self.cache_insert(hash, session.clone(), fetched_at, Some(jwt.clone()));
                jwt
            }
        };
        Ok(Authenticated { session, jwt })
    }

    /// Extends a live session to `now + session_ttl` (capped by the maximum lifetime), whether
    /// or not sliding expiry is on. Returns `None` if the session does not exist.
    pub async fn extend(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        let Some(session) = self.inner.store.get(session_id).await? else {
            return Ok(None);
        };
        if self.inner.revocations.is_revoked(&session) {
            return Ok(None);
        }
        self.touch(&session, now, true).await
    }

    fn touch_due(&self, session: &Session, now: OffsetDateTime) -> bool {
        now - session.last_accessed_at >= self.inner.settings.jwt_ttl
    }

    /// Writes `last_accessed_at = now` and, when `slide`, the extended expiry. `None` when the
    /// session is gone (the store refuses to recreate it).
    async fn touch(
        &self,
        session: &Session,
        now: OffsetDateTime,
        slide: bool,
    ) -> Result<Option<Session>, StoreError> {
        let mut updated = session.clone();
        updated.last_accessed_at = now;
        if slide {
            let mut expires_at = now + self.inner.settings.session_ttl;
            if let Some(max) = self.inner.settings.max_lifetime {
                expires_at = expires_at.min(session.started_at + max);
            }
            updated.expires_at = updated.expires_at.max(expires_at);
        }
        Ok(self.inner.store.update(&updated).await?.then_some(updated))
    }

    /// The live session with this id, if it exists and is not revoked.
    pub async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self
            .inner
            .store
            .get(session_id)
            .await?
            .filter(|s| s.is_live_at(self.now()) && !self.inner.revocations.is_revoked(s)))
    }

    /// A user's live sessions, newest first.
    pub async fn list(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let now = self.now();
        let mut sessions: Vec<Session> = self
            .inner
            .store
            .list_by_user(user_id)
            .await?
            .into_iter()
            .filter(|s| s.is_live_at(now) && !self.inner.revocations.is_revoked(s))
            .collect();
        sessions.sort_by_key(|s| std::cmp::Reverse(s.started_at));
        Ok(sessions)
    }

    /// Revokes a session by id. Its token fails at once, and so does every JWT minted for it.
    /// Returns the session if it was live.
    pub async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        // Locally first: even if the store call fails, this instance already refuses the JWT.
        self.inner
            .revocations
            .apply(&RevocationEvent::session_revoked(
                session_id.clone(),
                self.now(),
            ));
        self.inner.store.revoke(session_id).await
    }

    /// Revokes `session_id` only if it belongs to `user_id`. Returns `None`, revoking nothing,
    /// when it does not exist or belongs to someone else (answer both with `404`).
    pub async fn revoke_for_user(
        &self,
        user_id: &str,
        session_id: &SessionId,
    ) -> Result<Option<Session>, StoreError> {
        match self.inner.store.get(session_id).await? {
            Some(s) if s.user_id == user_id => self.revoke(session_id).await,
            _ => Ok(None),
        }
    }

    /// Revokes the session an opaque token belongs to. A malformed or unknown token revokes
    /// nothing and returns `None`.
    pub async fn revoke_token(&self, token: &str) -> Result<Option<Session>, StoreError> {
        if !is_token_shaped(token) {
            return Ok(None);
        }
        let hash = TokenHash::of(token);
        self.cache_invalidate(&hash);
        match self.inner.store.find_by_token(&hash).await? {
            Some(session) => self.revoke(&session.session_id).await,
            None => Ok(None),
        }
    }

    /// Revokes the session a JWT names. The JWT must be genuine (signature, header, issuer,
    /// audience) but may have expired: an expired JWT still names its session.
    pub async fn revoke_jwt(&self, jwt: &str) -> Result<Option<Session>, AuthError> {
        let verified = self.inner.codec.verify(jwt, self.now(), Expiry::Ignore)?;
        Ok(self.revoke(&verified.session.session_id).await?)
    }

    /// Revokes every session of a user ("sign out everywhere"); returns how many were live.
    pub async fn revoke_all(&self, user_id: &str) -> Result<usize, StoreError> {
        self.inner
            .revocations
            .apply(&RevocationEvent::user_revoked(user_id, self.now()));
        let revoked = self.inner.store.revoke_all(user_id).await?;
        // The cutoff covers sessions created concurrently; the ids make the revocation exact
        // even for sessions started in the same clock tick as the cutoff.
        let at = self.now();
        for session_id in &revoked {
            self.inner
                .revocations
                .apply(&RevocationEvent::session_revoked(session_id.clone(), at));
        }
        Ok(revoked.len())
    }

    /// The public keys that verify session JWTs, as a JWKS document
    /// (serve it at `/.well-known/jwks.json`).
    pub fn jwks(&self) -> JwkSet {
        self.inner.codec.jwks()
    }

    /// How many entries the verification cache and the token cache hold (approximate: the
    /// caches apply writes in batches).
    pub fn cache_sizes(&self) -> CacheSizes {
        fn entries<K, V>(cache: &Option<moka::sync::Cache<K, V>>) -> u64
        where
            K: std::hash::Hash + Eq + Send + Sync + 'static,
            V: Clone + Send + Sync + 'static,
        {
            cache.as_ref().map_or(0, |c| {
                c.run_pending_tasks();
                c.entry_count()
            })
        }
        CacheSizes {
            verified_jwts: entries(&self.inner.jwt_cache),
            token_lookups: entries(&self.inner.token_cache),
        }
    }

    /// The local revocation list.
    pub fn revocations(&self) -> &RevocationList {
        &self.inner.revocations
    }

    /// Lifetime of minted JWTs.
    pub fn jwt_ttl(&self) -> Duration {
        self.inner.settings.jwt_ttl
    }

    pub(crate) fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The clock this manager reads.
    pub fn clock(&self) -> &dyn crate::Clock {
        &*self.inner.clock
    }

    fn cache_get(&self, hash: &TokenHash, now: OffsetDateTime) -> Option<CachedLookup> {
        let hit = self.inner.token_cache.as_ref()?.get(hash)?;
        // moka's own TTL runs on real time; freshness is judged on the injected clock too.
        (now - hit.fetched_at < self.inner.settings.jwt_ttl).then_some(hit)
    }

    fn cache_insert(
        &self,
        hash: TokenHash,
        session: Arc<Session>,
        fetched_at: OffsetDateTime,
        jwt: Option<SessionJwt>,
    ) {
        if let Some(cache) = &self.inner.token_cache {
            cache.insert(
                hash,
                CachedLookup {
                    session,
                    fetched_at,
                    jwt,
                },
            );
        }
    }

    fn cache_invalidate(&self, hash: &TokenHash) {
        if let Some(cache) = &self.inner.token_cache {
            cache.invalidate(hash);
        }
    }
}

/// Reads the store's revocation feed for as long as the manager lives, applying every event to
/// the revocation list, and keeps [`FeedStatus`] honest about whether anything may be missing.
async fn follow_feed(manager: Weak<Inner>, feed: Arc<dyn RevocationFeed>) {
    let mut cursor: Option<FeedCursor> = None;
    let mut backoff = Duration::from_millis(100);
    // The first read only catches up with what is retained; it need not wait for news.
    let mut wait = Duration::ZERO;
    loop {
        let started = Instant::now();
        let result = feed.read(cursor.as_ref(), wait).await;
        let polled_without_waiting = wait.is_zero();
        wait = FEED_WAIT;
        let Some(inner) = manager.upgrade() else {
            return;
        };
        let status = inner.feed.as_ref().expect("feed status exists with a feed");
        match result {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                let empty = batch.events.is_empty();
                for (at, event) in batch.events {
                    inner.revocations.apply(&event);
                    cursor = Some(at);
                }
                if batch.caught_up {
                    status.mark_ok();
                } else {
                    status.mark_lost();
                    wait = Duration::ZERO;
                }
                drop(inner);
                if empty && !polled_without_waiting && started.elapsed() < FEED_WAIT / 4 {
                    // A feed that answers "nothing" without waiting must not be polled hot.
                    tokio::time::sleep(FEED_WAIT / 4).await;
                }
            }
            Err(StoreError::FeedCursorLost) => {
                status.mark_lost();
                drop(inner);
                tracing::warn!(
                    "revocation feed cursor fell out of the retention; replaying the feed"
                );
                cursor = None;
                wait = Duration::ZERO;
            }
            Err(error) => {
                status.mark_lost();
                drop(inner);
                tracing::warn!(%error, "revocation feed read failed; confirming JWTs in the store until it recovers");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
