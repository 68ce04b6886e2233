//! The engine: [`Sessions`] creates, authenticates, changes, lists and revokes sessions. It takes
//! and returns plain Rust values; reading requests and writing responses is `crate::http`'s.
//!
//! | file | concern |
//! |---|---|
//! | `mod.rs` | [`Sessions`]: creating, listing and revoking sessions |
//! | `config.rs` | [`SessionsBuilder`] and the settings it produces |
//! | `build.rs` | [`SessionsBuilder::build`] |
//! | `credentials.rs` | the credentials a request presented, each with its source |
//! | `authenticate.rs` | the one authentication path: credentials in, an outcome out |
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
pub(crate) mod config;
pub(crate) mod credentials;
mod dbsc_config;
mod device;
pub(crate) mod dyn_store;
pub(crate) mod error;
mod health;
mod jwt_key;
mod lifecycle;
pub(crate) mod metrics;
mod mint;
pub(crate) mod revocation;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

use crate::data::clock::SharedClock;
use crate::data::events::{EventHook, RevokeReason, RevokedBy, SessionEvent, SessionEventKind};
use crate::data::session::{
    NewSession, Session, SessionId, validate_custom_claims, validate_user_id,
};
use crate::data::token::{Inadmissible, SessionToken, TokenHash};
use crate::http::cookies::{MAX_COOKIE_LEN, jwt_cookie};
use crate::jwt::{JwtCodec, SessionJwt};
use crate::store::RevocationEvent;
use crate::store::{
    CreateOutcome, PageRequest, RevocationFeed, SessionPage, SessionRecord, SessionUpdate,
    StoreError, UpdateOutcome,
};
use config::Settings;
use dyn_store::DynStore;
pub use revocation::RevocationList;
use revocation::{Revocations, Trust, feed_wait, follow};

pub(crate) use authenticate::Step;
pub use authenticate::{AuthPath, Authenticated, RefreshedSession};
use authenticate::{CachedJwt, CachedLookup};
pub use breaker::CircuitBreaker;
pub use config::{
    ConfigError, CookieConfig, DEFAULT_FEED_STALENESS, DEFAULT_ISSUER, DEFAULT_JWT_TTL,
    DEFAULT_LEEWAY, DEFAULT_MAX_TOKEN_LEN, DEFAULT_SESSION_TTL, MAX_FEED_STALENESS, MAX_LEEWAY,
    MIN_FEED_STALENESS, SessionsBuilder,
};
pub use credentials::{CredentialSource, Credentials};
pub use dbsc_config::{DbscConfig, MAX_CHALLENGE_TTL};
pub use error::{AuthError, SessionError};
pub use health::Health;
pub use lifecycle::{Changed, SessionChange};

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
    token_cache: Option<moka::sync::Cache<TokenHash, CachedLookup>>,
    /// Verified JWTs: the whole token string (compared in full on a hit, so no collision can
    /// stand in for verification) → the session it carries and its `iat` and `exp`.
    jwt_cache: Option<moka::sync::Cache<jwt_key::JwtKey, CachedJwt>>,
    /// Handles of the per-request metrics, registered at build.
    metrics: crate::engine::metrics::Hot,
    /// Where [`SessionEvent`]s go.
    events: Option<EventHook>,
    /// Bumped whenever the cached token lookups of a session are dropped (a device binding): a
    /// token lookup that began before does not put its older record back in the cache.
    lookups_forgotten: std::sync::atomic::AtomicU64,
}

/// How often a change is retried when another instance changed the session in between.
const MAX_UPDATE_ATTEMPTS: usize = 8;
const CONTENDED: &str = "the session kept changing under concurrent updates";

/// Room left in a JWT cookie for what changes between mints (fractional seconds of the
/// timestamps, a longer `Max-Age`).
const COOKIE_SIZE_MARGIN: usize = 48;

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
                events,
                metrics: crate::engine::metrics::Hot::register(),
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

    /// Creates a session for `user_id` and returns it with its token and a JWT.
    ///
    /// The session is stored before anything is returned: if the store fails, no credential is
    /// handed out. The user is kept within the [session limit](SessionsBuilder::session_limit):
    /// the oldest sessions are revoked to make room, or the login is refused with
    /// [`SessionError::SessionLimitReached`], as configured.
    pub async fn create(
        &self,
        user_id: impl Into<String>,
        new: NewSession,
    ) -> Result<CreatedSession, SessionError> {
        let user_id = user_id.into();
        validate_user_id(&user_id)?;
        let custom_claims = new.custom_claims?;
        validate_custom_claims(&custom_claims)?;
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
        let mut session = Session::new(SessionId::generate()?, user_id, now, now + ttl)
            .with_attributes(new.attributes)
            .with_custom_claims(custom_claims)
            .with_device_binding(match new.offer_device {
                true => Some(crate::data::device::DeviceBinding {
                    challenge: Some(crate::data::device::DeviceChallenge::generate(now)?),
                    ..Default::default()
                }),
                false => None,
            });
        let factor = match new.factor {
            Some(mut factor) => {
                factor.validate()?;
                factor.last_authenticated_at = now;
                let name = factor.factor_type.clone();
                session.record_factor(factor)?;
                Some(name)
            }
            None => None,
        };
        // Minted and measured before anything is stored: a session whose JWT no browser would
        // keep is refused rather than left to the store path on every request.
        let jwt = self
            .mint(&session, now, mint::Grant::Creation)
            .map_err(SessionError::from)?;
        self.check_jwt_size(&jwt, ttl)?;
        let token = self.inner.settings.tokens.generate()?;
        let token_hash = token.hash();
        let outcome = self
            .inner
            .store
            .create(
                SessionRecord {
                    session: session.clone(),
                    token_hash,
                },
                self.inner.settings.session_limit,
            )
            .await?;
        let evicted = match outcome {
            CreateOutcome::Created { evicted } => evicted,
            CreateOutcome::LimitReached => return Err(SessionError::SessionLimitReached),
        };
        self.emit(&session, SessionEventKind::Created { factor });
        if !evicted.is_empty() {
            crate::engine::metrics::revocation("limit");
        }
        self.note_revoked(
            &evicted,
            &session.user_id,
            now,
            RevokedBy::Limit,
            RevokeReason::SessionLimit,
        );
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

    /// Refuses a JWT longer than `max_token_len` (it would not verify) or whose cookie would not
    /// fit in [`MAX_COOKIE_LEN`] bytes (browsers drop it silently).
    fn check_jwt_size(&self, jwt: &SessionJwt, ttl: Duration) -> Result<(), SessionError> {
        let max_token = self.inner.codec.max_len();
        if jwt.expose().len() > max_token {
            return Err(SessionError::JwtTooLarge {
                size: jwt.expose().len(),
                max: max_token,
            });
        }
        let longest_max_age = self.inner.settings.max_lifetime.unwrap_or(ttl).max(ttl);
        let cookie = jwt_cookie(
            &self.inner.settings,
            jwt.expose(),
            time::Duration::try_from(longest_max_age).unwrap_or(time::Duration::MAX),
        );
        let size = cookie.len() + COOKIE_SIZE_MARGIN;
        if size > MAX_COOKIE_LEN {
            return Err(SessionError::JwtTooLarge {
                size,
                max: MAX_COOKIE_LEN,
            });
        }
        Ok(())
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
        session.expires_at.max(until)
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
            updated.last_accessed_at = now;
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

    /// Revokes a session by id. Its token fails at once, and so does every JWT minted for it.
    /// Returns the session if it was live.
    pub async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.revoke_by(session_id, RevokedBy::Application, RevokeReason::Revoked)
            .await
    }

    pub(crate) async fn revoke_by(
        &self,
        session_id: &SessionId,
        by: RevokedBy,
        reason: RevokeReason,
    ) -> Result<Option<Session>, StoreError> {
        crate::engine::metrics::revocation("session");
        // Locally first: even if the store call fails, this instance already refuses the JWT.
        self.revocation_list()
            .apply(&RevocationEvent::session_revoked(
                session_id.clone(),
                self.now(),
            ));
        let revoked = self.inner.store.revoke(session_id).await?;
        if let Some(session) = &revoked {
            self.emit(session, SessionEventKind::Revoked { by, reason });
        }
        Ok(revoked)
    }

    /// Revokes `session_id` only if it belongs to `user_id` (a user revoking one of their
    /// sessions from another). Returns `None`, revoking nothing, when it does not exist or
    /// belongs to someone else (answer both with `404`).
    pub async fn revoke_for_user(
        &self,
        user_id: &str,
        session_id: &SessionId,
    ) -> Result<Option<Session>, StoreError> {
        match self.inner.store.get(session_id).await? {
            Some(s) if s.user_id == user_id => {
                self.revoke_by(session_id, RevokedBy::User, RevokeReason::RevokedByUser)
                    .await
            }
            _ => Ok(None),
        }
    }

    /// Revokes the session an opaque token belongs to. A malformed or unknown token revokes
    /// nothing and returns `None`.
    pub async fn revoke_token(&self, token: &str) -> Result<Option<Session>, StoreError> {
        self.revoke_token_by(token, RevokedBy::Application, RevokeReason::Revoked)
            .await
    }

    pub(crate) async fn revoke_token_by(
        &self,
        token: &str,
        by: RevokedBy,
        reason: RevokeReason,
    ) -> Result<Option<Session>, StoreError> {
        // A token not minted here names no session: nothing to ask the store.
        if self.admit_token(token, self.now()).is_err() {
            return Ok(None);
        }
        let hash = TokenHash::of(token);
        self.cache_invalidate(&hash);
        match self.inner.store.find_by_token(&hash).await? {
            Some(session) => self.revoke_by(&session.session_id, by, reason).await,
            None => Ok(None),
        }
    }

    /// Whether a presented token may go to the store at `now` (see [`crate::token::TokenKey`]):
    /// refused tokens cost no store call.
    pub(crate) fn admit_token(&self, token: &str, now: OffsetDateTime) -> Result<(), AuthError> {
        self.inner
            .settings
            .tokens
            .admit(token, now)
            .map_err(|why| match why {
                Inadmissible::Malformed => AuthError::MalformedToken,
                Inadmissible::Forged => AuthError::ForgedToken,
            })
    }

    /// Revokes the session a JWT names. The JWT must be genuine (signature, header, issuer,
    /// audience) but may have expired: an expired JWT still names its session.
    pub async fn revoke_jwt(&self, jwt: &str) -> Result<Option<Session>, AuthError> {
        self.revoke_jwt_by(jwt, RevokedBy::Application, RevokeReason::Revoked)
            .await
    }

    pub(crate) async fn revoke_jwt_by(
        &self,
        jwt: &str,
        by: RevokedBy,
        reason: RevokeReason,
    ) -> Result<Option<Session>, AuthError> {
        let verified = self
            .inner
            .codec
            .verify(jwt, self.now(), crate::jwt::Expiry::Ignore)?;
        Ok(self
            .revoke_by(&verified.session.session_id, by, reason)
            .await?)
    }

    /// Revokes every session of a user ("sign out everywhere"); returns how many were live.
    pub async fn revoke_all(&self, user_id: &str) -> Result<usize, StoreError> {
        self.revoke_all_by(user_id, RevokedBy::Application).await
    }

    pub(crate) async fn revoke_all_by(
        &self,
        user_id: &str,
        by: RevokedBy,
    ) -> Result<usize, StoreError> {
        crate::engine::metrics::revocation("user");
        self.revocation_list()
            .apply(&RevocationEvent::user_revoked(user_id, self.now()));
        let revoked = self.inner.store.revoke_all(user_id, None).await?;
        // The cutoff covers sessions created concurrently; the ids (here, and in the store's
        // feed for every other instance) make the revocation exact even for sessions started in
        // the same clock tick as the cutoff, or on an instance whose clock runs ahead.
        let at = self.now();
        self.note_revoked(&revoked, user_id, at, by, RevokeReason::SignedOutEverywhere);
        Ok(revoked.len())
    }

    /// Revokes every session of `current`'s user except `current` itself ("sign out my other
    /// devices"); returns the ids revoked. Their tokens fail at once and their JWTs as soon as
    /// each instance reads the revocation feed; `current` stays signed in.
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
    /// let laptop = sessions.create("alice", NewSession::new()).await.unwrap();
    /// let phone = sessions.create("alice", NewSession::new()).await.unwrap();
    /// let gone = sessions.revoke_others(&laptop.session).await.unwrap();
    /// assert_eq!(gone, vec![phone.session.session_id.clone()]);
    /// assert!(sessions.authenticate_jwt(phone.jwt.expose()).await.is_err());
    /// assert!(sessions.authenticate_jwt(laptop.jwt.expose()).await.is_ok());
    /// # });
    /// ```
    pub async fn revoke_others(&self, current: &Session) -> Result<Vec<SessionId>, StoreError> {
        crate::engine::metrics::revocation("others");
        let revoked = self
            .inner
            .store
            .revoke_all(&current.user_id, Some(&current.session_id))
            .await?;
        let at = self.now();
        self.note_revoked(
            &revoked,
            &current.user_id,
            at,
            RevokedBy::User,
            RevokeReason::SignedOutOthers,
        );
        Ok(revoked)
    }

    /// Records sessions of `user_id` that the store revoked in one step (an eviction, a
    /// revoke-all): this instance refuses their JWTs at once, and each gets its event.
    fn note_revoked(
        &self,
        revoked: &[SessionId],
        user_id: &str,
        at: OffsetDateTime,
        by: RevokedBy,
        reason: RevokeReason,
    ) {
        for session_id in revoked {
            self.revocation_list()
                .apply(&RevocationEvent::session_revoked(session_id.clone(), at));
            self.emit_for(
                session_id.clone(),
                user_id,
                SessionEventKind::Revoked { by, reason },
            );
        }
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
        self.revocation_list()
    }

    pub(crate) fn metrics(&self) -> &crate::engine::metrics::Hot {
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
