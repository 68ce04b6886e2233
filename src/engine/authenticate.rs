//! The one authentication path: the request's credentials (each with where it came from) in,
//! an [`Authenticated`] outcome or a typed refusal out. The layer only does HTTP around it.
//!
//! 1. A JWT is verified once (the verification cache spares repeats) and checked against the
//!    revocation list. Accepted and trusted (the feed is caught up and the JWT was issued after
//!    its horizon): done, **no store call**.
//! 2. Accepted but not trusted: the session is confirmed in the store by id.
//! 3. Otherwise, or when the opaque token came from another source than the JWT (a header
//!    beside a cookie): the opaque token decides, through the store (and the token cache), and
//!    a fresh JWT is minted. A genuine JWT (even expired or revoked) that names another session
//!    than the token is a conflict: a token tossed into the cookie jar must not take over.
//! 4. Credentials that came from cookies get a fresh JWT back (and word that the token cookie
//!    must be set again when the session's expiry moved); a request that used `Authorization`
//!    gets nothing. Turning that into cookies is the HTTP edge's.

use std::sync::Arc;

use time::OffsetDateTime;

use super::Sessions;
use super::caches::{CachedJwt, CachedLookup, remember_verified};
use super::credentials::{CredentialKind, CredentialSource, Credentials};
use super::jwt_key::JwtRef;
use super::mint::Grant;
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::engine::error::AuthError;
use crate::jwt::{Expiry, JwtError, SessionJwt};
use crate::store::BoxFuture;

/// Which path authenticated a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum AuthPath {
    /// The session JWT, verified locally, with no store call.
    Jwt,
    /// The session JWT, confirmed in the store (the instance was not caught up with the
    /// revocation feed, or the JWT predates its horizon).
    JwtConfirmed,
    /// The opaque token, looked up in the store (or the token cache); a fresh JWT was minted.
    Store,
}

impl AuthPath {
    /// A short stable name for logs and metrics: `jwt`, `jwt_confirmed` or `store`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthPath::Jwt => "jwt",
            AuthPath::JwtConfirmed => "jwt_confirmed",
            AuthPath::Store => "store",
        }
    }
}

/// What [`Sessions::authenticate`] found: the session, how, and what to hand back.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Authenticated {
    /// The live session.
    pub session: Arc<Session>,
    /// How it was authenticated.
    pub path: AuthPath,
    /// The JWT a cookie client gets back when the store path minted (or reused) one. `None` on
    /// the JWT paths and for `Authorization` clients, who get nothing back (call
    /// [`Sessions::authenticate_token`] for a JWT).
    pub jwt: Option<SessionJwt>,
    /// Whether the token cookie must be set again beside [`jwt`](Self::jwt): this
    /// authentication moved the session's expiry (sliding), and the cookie's `Max-Age` follows
    /// it. Only ever `true` with a `jwt`.
    pub resend_token: bool,
}

impl Authenticated {
    fn jwt_path(session: Arc<Session>, path: AuthPath) -> Self {
        Self {
            session,
            path,
            jwt: None,
            resend_token: false,
        }
    }
}

/// A session confirmed in the store by its opaque token, with a JWT for it
/// ([`Sessions::authenticate_token`]).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Refreshed {
    /// The live session.
    pub session: Arc<Session>,
    /// A session JWT for it: freshly minted, or the last one minted for this token while it
    /// has at least half its lifetime left.
    pub jwt: SessionJwt,
    /// Whether this authentication moved the session's expiry (sliding), so that a token held
    /// in a cookie must be set again for its `Max-Age` to follow.
    pub extended: bool,
}

/// The first step of authentication: decided at once (the JWT fast path, or a refusal), or a
/// store call to await.
pub(crate) enum Step {
    Done(Result<Authenticated, AuthError>),
    Store(BoxFuture<'static, Result<Authenticated, AuthError>>),
}

/// What the local check of a JWT concluded.
enum JwtStatus {
    /// Verified, live and not revoked; `trusted` when no store call is needed.
    Accepted {
        session: Arc<Session>,
        trusted: bool,
    },
    /// Refused; `named` is the session a genuine (if expired or revoked) JWT names.
    Refused {
        named: Option<SessionId>,
        error: AuthError,
    },
}

impl Sessions {
    /// Authenticates a request's credentials: the one path behind the layer, the extractors
    /// and the handlers. At most one signature is verified.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
    /// use tower_session_jwt::sessions::{AuthPath, CredentialSource, Credentials};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// sessions.ready().await; // caught up with the store's revocation feed
    /// let created = sessions.create("user-1", NewSession::new()).await.unwrap();
    ///
    /// // A browser: both cookies. The JWT decides, locally.
    /// let cookies = Credentials::new()
    ///     .with_jwt(created.jwt.expose(), CredentialSource::Cookie)
    ///     .with_token(created.token.expose(), CredentialSource::Cookie);
    /// let outcome = sessions.authenticate(&cookies).await.unwrap();
    /// assert_eq!(outcome.path, AuthPath::Jwt);
    ///
    /// // An API client with the opaque token: the store, and nothing handed back.
    /// let bearer = Credentials::new().with_token(created.token.expose(), CredentialSource::Header);
    /// let outcome = sessions.authenticate(&bearer).await.unwrap();
    /// assert_eq!(outcome.path, AuthPath::Store);
    /// assert!(outcome.jwt.is_none() && !outcome.resend_token); // no JWT minted for nothing
    /// # });
    /// ```
    pub async fn authenticate(
        &self,
        credentials: &Credentials<'_>,
    ) -> Result<Authenticated, AuthError> {
        let (outcome, decided_at) = match self.begin(credentials) {
            Step::Done(outcome) => (outcome, "none"),
            Step::Store(future) => (future.await, "store"),
        };
        self.metrics().request(&outcome, decided_at);
        outcome
    }

    /// Authenticates a session JWT alone: signature, pinned header, claims, lifetime and the
    /// revocation list, all checked locally; no store call while the instance is caught up with
    /// the revocation feed ([`fast_path_trusted`](Self::fast_path_trusted)), otherwise the
    /// session is confirmed in the store by id.
    pub async fn authenticate_jwt(&self, jwt: &str) -> Result<Arc<Session>, AuthError> {
        let credentials = Credentials::new().with_jwt(jwt, CredentialSource::Header);
        Ok(self.authenticate(&credentials).await?.session)
    }

    /// Confirms an opaque session token against the store (through the token cache) and returns
    /// its session with a JWT for it.
    ///
    /// At most once per JWT lifetime per session this also writes `last_accessed_at` (and, with
    /// sliding expiry, the new `expires_at`) to the store.
    pub async fn authenticate_token(&self, token: &str) -> Result<Refreshed, AuthError> {
        let (session, jwt, extended) = self.refresh_by_token(token, true).await?;
        let jwt = match jwt {
            Some(jwt) => jwt,
            None => self.mint(&session, self.now(), Grant::Token)?,
        };
        Ok(Refreshed {
            session,
            jwt,
            extended,
        })
    }

    /// The first step of [`authenticate`](Self::authenticate), taken synchronously so that the
    /// layer's fast path never awaits.
    pub(crate) fn begin(&self, credentials: &Credentials<'_>) -> Step {
        let now = self.now();
        if let Some((kind, value)) = credentials.header {
            // The client chose this credential for this request: it decides, and nothing goes
            // back as a cookie. Ambient cookies beside it are ignored, unless a genuine one
            // names another session: then the request is ambiguous and refused. (A cookie token
            // is looked up only beside a header token, which goes to the store anyway.)
            let cookie_names = credentials
                .cookie_jwt
                .filter(|jwt| Some(*jwt) != (kind == CredentialKind::Jwt).then_some(value))
                .and_then(|jwt| self.jwt_session_id(jwt));
            return match kind {
                CredentialKind::Jwt => match self.check_jwt(value, now) {
                    JwtStatus::Accepted { session, .. }
                        if cookie_names.is_some_and(|id| id != session.session_id) =>
                    {
                        Step::Done(Err(AuthError::ConflictingCredentials))
                    }
                    JwtStatus::Accepted { session, trusted } => {
                        self.jwt_step(session, trusted, None)
                    }
                    JwtStatus::Refused { error, .. } => Step::Done(Err(error)),
                },
                CredentialKind::Token => {
                    let other = credentials.cookie_token.filter(|t| *t != value);
                    self.token_step(value, CredentialSource::Header, cookie_names, other, now)
                }
            };
        }
        // The browser's cookie pair: the JWT decides while it is accepted; otherwise the token
        // does, and a genuine JWT beside it must name the same session (a token tossed into
        // the jar must not take over when the JWT stops being usable).
        let status = credentials.cookie_jwt.map(|jwt| self.check_jwt(jwt, now));
        let named = match status {
            Some(JwtStatus::Accepted { session, trusted }) => {
                return self.jwt_step(session, trusted, credentials.cookie_token);
            }
            Some(JwtStatus::Refused { error, .. }) if credentials.cookie_token.is_none() => {
                return Step::Done(Err(error));
            }
            Some(JwtStatus::Refused { named, .. }) => named,
            None => None,
        };
        match credentials.cookie_token {
            Some(token) => self.token_step(token, CredentialSource::Cookie, named, None, now),
            None => Step::Done(Err(AuthError::MissingCredentials)),
        }
    }

    /// The opaque-token step at `now`: the store (or the token cache) decides; `named` is the
    /// session a genuine JWT beside the token names, `other` a second token (a cookie beside a
    /// header) that must not name another live session. Cookie clients get cookies back.
    fn token_step(
        &self,
        token: &str,
        source: CredentialSource,
        named: Option<SessionId>,
        other: Option<&str>,
        now: OffsetDateTime,
    ) -> Step {
        if let Err(refused) = self.admit_token(token, now) {
            return Step::Done(Err(refused));
        }
        let other = other
            .filter(|t| self.admit_token(t, now).is_ok())
            .map(TokenHash::of);
        // Only a cookie client gets a JWT back; minting one for a header client would be a
        // signature for nothing.
        let want_jwt = source == CredentialSource::Cookie;
        let hash = TokenHash::of(token);
        let hit = self.cache_get(&hash, now);
        // A token-cache hit that needs no store call is answered at once, like the JWT fast
        // path (a second token beside it must be looked up, so that waits for the store).
        if other.is_none()
            && let Some((session, jwt)) = hit
                .as_ref()
                .and_then(|hit| self.settled_hit(hit, now, want_jwt))
        {
            if named.is_some_and(|id| id != session.session_id) {
                return Step::Done(Err(AuthError::ConflictingCredentials));
            }
            return Step::Done(Ok(Self::store_outcome(session, jwt, false)));
        }
        let sessions = self.clone();
        Step::Store(Box::pin(async move {
            let (session, jwt, extended) = sessions.refresh(hash, now, hit, want_jwt).await?;
            let jwt = jwt.filter(|_| want_jwt);
            if named.is_some_and(|id| id != session.session_id) {
                return Err(AuthError::ConflictingCredentials);
            }
            if let Some(other) = other
                && let Some(found) = sessions.inner.store.find_by_token(&other).await?
                && found.session_id != session.session_id
            {
                return Err(AuthError::ConflictingCredentials);
            }
            // The token cookie goes again only when the session's expiry moved, so that its
            // Max-Age follows it.
            Ok(Self::store_outcome(session, jwt, extended))
        }))
    }

    /// The token path's outcome: `session`, and for a cookie client (one given a `jwt`) that
    /// JWT, with word to set the token cookie again when the expiry moved.
    fn store_outcome(
        session: Arc<Session>,
        jwt: Option<SessionJwt>,
        extended: bool,
    ) -> Authenticated {
        Authenticated {
            session,
            path: AuthPath::Store,
            resend_token: extended && jwt.is_some(),
            jwt,
        }
    }

    /// An accepted JWT's outcome: done at once when trusted, else confirmed in the store. When
    /// the store refuses it (its session changed since it was minted: a claims change or a
    /// rotation this instance has not heard of yet) and the browser sent its token cookie
    /// beside it, the token decides, as it would once the feed delivers the change.
    fn jwt_step(&self, session: Arc<Session>, trusted: bool, cookie_token: Option<&str>) -> Step {
        if trusted {
            return Step::Done(Ok(Authenticated::jwt_path(session, AuthPath::Jwt)));
        }
        let sessions = self.clone();
        let cookie_token = cookie_token.map(str::to_owned);
        Step::Store(Box::pin(async move {
            let named = session.session_id.clone();
            match sessions.confirm(session).await {
                Ok(session) => Ok(Authenticated::jwt_path(session, AuthPath::JwtConfirmed)),
                Err(AuthError::Revoked) if cookie_token.is_some() => {
                    let token = cookie_token.as_deref().unwrap_or_default();
                    match sessions.token_step(
                        token,
                        CredentialSource::Cookie,
                        Some(named),
                        None,
                        sessions.now(),
                    ) {
                        Step::Done(outcome) => outcome,
                        Step::Store(future) => future.await,
                    }
                }
                Err(error) => Err(error),
            }
        }))
    }

    /// The local check of a JWT: one verification (or a verification-cache hit), lifetime, the
    /// revocation list, and whether the fast path may trust it.
    fn check_jwt(&self, jwt: &str, now: OffsetDateTime) -> JwtStatus {
        let inner = &self.inner;
        let leeway = inner.codec.leeway_secs();
        let unix_now = now.unix_timestamp();
        let cached = inner.jwt_cache.as_ref().and_then(|cache| {
            let hit = cache.get(&JwtRef(jwt));
            inner
                .metrics
                .cache(crate::engine::metrics::Cache::Jwt, hit.is_some());
            hit
        });
        let entry = match cached {
            Some(hit) => hit,
            None => match inner.codec.verify(jwt, now, Expiry::Ignore) {
                Ok(verified) => {
                    let entry = CachedJwt {
                        expires_at: verified.expires_at,
                        issued_at: verified.issued_at,
                        session: Arc::new(verified.session),
                        minted_in: None,
                    };
                    match &inner.jwt_cache {
                        Some(cache) if unix_now < entry.expires_at + leeway => {
                            self.sweep_if_due(now);
                            remember_verified(cache, jwt, entry)
                        }
                        _ => entry,
                    }
                }
                Err(error) => {
                    return JwtStatus::Refused {
                        named: None,
                        error: error.into(),
                    };
                }
            },
        };
        let refused = |error: AuthError| JwtStatus::Refused {
            named: Some(entry.session.session_id.clone()),
            error,
        };
        if unix_now >= entry.expires_at + leeway || !entry.session.is_live_at(now) {
            return refused(AuthError::InvalidJwt(JwtError::Expired));
        }
        let revocations = &inner.revocations;
        let trust = &revocations.trust;
        let minted_here = entry.minted_in == Some(trust.generation());
        // Trust first, then the list: the follower applies a batch to the list before it marks
        // the feed caught up, so a request that sees "caught up" also sees every revocation
        // applied before it. The other way round, a request could read the list just before a
        // backlog lands and the trust just after, and take a revoked JWT on the fast path.
        let trusted = trust.trusts(entry.issued_at, minted_here);
        if revocations.list.refuses_jwt(&entry.session) {
            return refused(AuthError::Revoked);
        }
        JwtStatus::Accepted {
            trusted,
            session: entry.session,
        }
    }

    /// The session a genuine JWT names, expired or not (`None` for anything not minted by a
    /// configured key). A JWT the layer just accepted is found in the verification cache.
    pub(crate) fn jwt_session_id(&self, jwt: &str) -> Option<SessionId> {
        if let Some(hit) = self
            .inner
            .jwt_cache
            .as_ref()
            .and_then(|c| c.get(&JwtRef(jwt)))
        {
            return Some(hit.session.session_id.clone());
        }
        self.inner
            .codec
            .verify(jwt, self.now(), Expiry::Ignore)
            .ok()
            .map(|v| v.session.session_id)
    }

    /// Confirms a verified JWT's session in the store: it must still exist for the same user.
    async fn confirm(&self, session: Arc<Session>) -> Result<Arc<Session>, AuthError> {
        match self.inner.store.get(&session.session_id).await? {
            Some(stored) if stored.user_id == session.user_id && stored.is_live_at(self.now()) => {
                if self.revocation_list().is_revoked(&stored)
                    || session.version < stored.jwts_from_version
                {
                    return Err(AuthError::Revoked);
                }
                Ok(session)
            }
            _ => Err(AuthError::UnknownSession),
        }
    }

    /// The opaque-token path: the token cache or the store, the revocation list, sliding
    /// expiry, and (with `want_jwt`) a JWT. Returns the session, the JWT, and whether the
    /// session's expiry moved.
    async fn refresh_by_token(
        &self,
        token: &str,
        want_jwt: bool,
    ) -> Result<(Arc<Session>, Option<SessionJwt>, bool), AuthError> {
        let now = self.now();
        self.admit_token(token, now)?;
        let hash = TokenHash::of(token);
        let hit = self.cache_get(&hash, now);
        self.refresh(hash, now, hit, want_jwt).await
    }

    /// A token-cache hit that needs nothing asynchronous: a live session that is not revoked,
    /// no touch due, and for a cookie client (`want_jwt`) a cached JWT that can go out again.
    /// Otherwise `None`, and [`refresh`](Self::refresh) decides with the same lookup.
    fn settled_hit(
        &self,
        hit: &CachedLookup,
        now: OffsetDateTime,
        want_jwt: bool,
    ) -> Option<(Arc<Session>, Option<SessionJwt>)> {
        let session = &hit.session;
        if !session.is_live_at(now)
            || self.revocation_list().is_revoked(session)
            || session.is_device_bound()
            || self.touch_due(session, now)
        {
            return None;
        }
        let jwt = if want_jwt {
            Some(self.reusable_jwt(hit.jwt.clone(), session, now)?)
        } else {
            None
        };
        Some((session.clone(), jwt))
    }

    /// A JWT minted earlier for `session` that may go out again: at least half its lifetime
    /// left, and not refused since.
    fn reusable_jwt(
        &self,
        jwt: Option<SessionJwt>,
        session: &Session,
        now: OffsetDateTime,
    ) -> Option<SessionJwt> {
        let half_life = self.inner.settings.jwt_ttl / 2;
        let list = self.revocation_list();
        jwt.filter(|jwt| jwt.expires_at() - now >= half_life && !list.refuses_jwt(session))
    }

    /// [`refresh_by_token`](Self::refresh_by_token) from the token's hash and its token-cache
    /// lookup (`hit`).
    async fn refresh(
        &self,
        hash: TokenHash,
        now: OffsetDateTime,
        hit: Option<CachedLookup>,
        want_jwt: bool,
    ) -> Result<(Arc<Session>, Option<SessionJwt>, bool), AuthError> {
        let forgotten = self.lookups_forgotten();
        let (mut session, mut fetched_at, cached_jwt, mut fetched) = match hit {
            Some(hit) => (hit.session, hit.fetched_at, hit.jwt, false),
            None => {
                let found = self.inner.store.find_by_token(&hash).await?;
                let found = found.ok_or(AuthError::UnknownSession)?;
                (Arc::new(found), now, None, true)
            }
        };
        if !session.is_live_at(now) {
            self.cache_invalidate(&hash);
            return Err(AuthError::UnknownSession);
        }
        // Checked after the lookup: a revoke that finished while the lookup was in flight is
        // seen here, because revoke records the id locally before it touches the store. Only a
        // session that passed this check is cached, stamped with the time the lookup began.
        self.token_may_mint(&session, &hash)?;
        let mut reusable = cached_jwt;
        let mut extended = false;
        if self.touch_due(&session, now) {
            match self
                .touch(&session, now, self.inner.settings.sliding)
                .await?
            {
                Some(updated) => {
                    // The touch re-reads the record by id when it changed meanwhile. A change
                    // that refused older JWTs (a rotation, a claims change, a device binding)
                    // may also have taken this token's power: ask the store about the token
                    // again rather than mint for the newer record on the older token's word.
                    let updated = if updated.jwts_from_version > session.version {
                        match self.inner.store.find_by_token(&hash).await? {
                            Some(current) if current.session_id == session.session_id => current,
                            _ => {
                                self.cache_invalidate(&hash);
                                return Err(AuthError::UnknownSession);
                            }
                        }
                    } else {
                        updated
                    };
                    self.token_may_mint(&updated, &hash)?;
                    extended = updated.expires_at != session.expires_at;
                    session = Arc::new(updated);
                    fetched_at = now;
                    fetched = true;
                    reusable = None;
                }
                None => {
                    self.cache_invalidate(&hash);
                    return Err(AuthError::UnknownSession);
                }
            }
        }
        let jwt = match self.reusable_jwt(reusable, &session, now) {
            Some(jwt) => Some(jwt),
            None if want_jwt => {
                let jwt = self.mint(&session, now, Grant::Token)?;
                self.emit(&session, crate::data::events::SessionEventKind::Refreshed);
                self.cache_insert_since(
                    forgotten,
                    hash,
                    session.clone(),
                    fetched_at,
                    Some(jwt.clone()),
                );
                Some(jwt)
            }
            None => {
                if fetched {
                    self.cache_insert_since(forgotten, hash, session.clone(), fetched_at, None);
                }
                None
            }
        };
        Ok((session, jwt, extended))
    }

    /// Whether the opaque token (hashed as `hash`) may still stand for `session`: not revoked,
    /// and not bound to a device key, whose sessions re-mint only through the device's proof
    /// (DBSC: a copied token cookie must not outlive the copied JWT). A refusal drops the
    /// token's cached lookup.
    fn token_may_mint(&self, session: &Session, hash: &TokenHash) -> Result<(), AuthError> {
        let refusal = if self.revocation_list().is_revoked(session) {
            AuthError::Revoked
        } else if session.is_device_bound() {
            AuthError::DeviceBound
        } else {
            return Ok(());
        };
        self.cache_invalidate(hash);
        Err(refusal)
    }
}
