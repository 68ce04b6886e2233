//! Creating a session ([`Sessions::create`]), and the size check every JWT handed out passes:
//! it must verify here and its cookie must fit in what browsers keep.

use std::sync::Arc;
use std::time::Duration;

use super::config::Settings;
use super::credentials::Credentials;
use super::error::{AuthError, SessionError};
use super::{Sessions, mint};
use crate::data::events::{RevokeReason, RevokedBy, SessionEventKind};
use crate::data::session::{
    NewSession, Session, SessionId, validate_custom_claims, validate_user_id,
};
use crate::data::token::SessionToken;
use crate::jwt::SessionJwt;
use crate::store::{CreateOutcome, SessionRecord, StoreError};

/// The largest `Set-Cookie` value browsers keep (RFC 6265 §6.1 asks for at least 4,096 bytes per
/// cookie, and that is what Chrome, Firefox and Safari keep; a larger one is dropped silently).
pub const MAX_COOKIE_LEN: usize = 4096;

/// Room left in a JWT cookie for what changes between mints (fractional seconds of the
/// timestamps, a longer `Max-Age`).
const COOKIE_SIZE_MARGIN: usize = 48;

/// A newly created session and its two credentials.
#[derive(Debug, Clone)]
pub struct Created {
    /// The session record.
    pub session: Session,
    /// The opaque session token (the revocable credential). Shown to the client once.
    pub token: SessionToken,
    /// A session JWT for the fast path.
    pub jwt: SessionJwt,
}

impl Sessions {
    /// Creates a session for `user_id` and returns it with its token and a JWT.
    ///
    /// The session is stored before anything is returned: if the store fails, no credential is
    /// handed out. The user is kept within the [session limit](super::SessionsBuilder::session_limit):
    /// the oldest sessions are revoked to make room, or the login is refused with
    /// [`SessionError::SessionLimitReached`], as configured.
    pub async fn create(
        &self,
        user_id: impl Into<String>,
        new: NewSession,
    ) -> Result<Created, SessionError> {
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
        // The session starts at a millisecond; its later times fall whole seconds after it (see
        // `Session::on_grid`), so that its JWT carries them exactly.
        let now = crate::data::session::to_millisecond(self.now());
        let whole_ttl = time::Duration::seconds(i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX));
        let mut session = Session::new(SessionId::generate()?, user_id, now, now + whole_ttl)
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
        Ok(Created {
            session,
            token,
            jwt,
        })
    }

    /// A login: creates a session for `user_id` (as [`create`](Self::create)) in place of the
    /// session that `replacing`'s cookies name, which is revoked first (a
    /// [`Revoked`](crate::events::SessionEventKind::Revoked) event with [`RevokedBy::Itself`]
    /// and [`RevokeReason::ReplacedByLogin`]): once the browser holds the new session's cookies
    /// nothing holds the old one, which would otherwise stay usable by its token, and listed
    /// among the user's devices, for its whole lifetime.
    ///
    /// Only a genuine session counts: one that the token cookie or the JWT cookie (even
    /// expired) of `replacing` names and that is still live, and only when both agree.
    /// Forged, malformed or stale cookies revoke nothing and do not stop the login; header
    /// credentials are never replaced (pass [`Credentials::new`] for a client whose cookies the
    /// answer will not replace). Applications that keep several accounts per browser opt out
    /// with [`keep_sessions_on_login`](crate::SessionsBuilder::keep_sessions_on_login).
    ///
    /// [`login::login`](crate::login::login) calls this for a request, with the cross-site
    /// check, the client's address and user agent, and the cookies.
    ///
    /// # Errors
    ///
    /// [`create`](Self::create)'s, and [`SessionError::Store`] when the store fails while
    /// revoking the replaced session (no new session is created, so the browser keeps its
    /// cookies and can retry).
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
    /// use tower_session_jwt::sessions::{CredentialSource, Credentials};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let first = sessions.create("alice", NewSession::new()).await.unwrap();
    /// let browser = Credentials::new().with_token(first.token.expose(), CredentialSource::Cookie);
    /// let second = sessions.login("bob", NewSession::new(), &browser).await.unwrap();
    /// assert!(sessions.get(&first.session.session_id).await.unwrap().is_none());
    /// assert!(sessions.get(&second.session.session_id).await.unwrap().is_some());
    /// # });
    /// ```
    pub async fn login(
        &self,
        user_id: impl Into<String>,
        new: NewSession,
        replacing: &Credentials<'_>,
    ) -> Result<Created, SessionError> {
        let user_id = user_id.into();
        // Checked before anything is revoked: a login refused for its input replaces nothing.
        validate_user_id(&user_id)?;
        new.check_claims()?;
        if !self.settings().keep_sessions_on_login {
            // Before the new session is stored, so that the replaced session does not count
            // against the user's session limit (a limit of one would otherwise refuse every
            // second login in a browser, or evict another device to make room).
            self.revoke_replaced(replacing).await?;
        }
        self.create(user_id, new).await
    }

    /// Revokes the session that the cookies genuinely name: the browser is about to get a new
    /// session's cookies in their place. A store failure is returned, not swallowed: the login
    /// then fails before anything is created (it needs the same store), rather than hand out a
    /// new session while the old one may live on unseen.
    async fn revoke_replaced(&self, cookies: &Credentials<'_>) -> Result<(), StoreError> {
        let by_token = match cookies.cookie_token {
            // A malformed, forged or unknown token names nothing (and a forged tagged one
            // costs no store call).
            Some(token) => match self.session_for_token(token).await {
                Ok(found) => found.map(|session| session.session_id),
                Err(AuthError::Store(e)) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        // Genuine (signed by a configured key) even if expired: the browser keeps its JWT
        // cookie as long as the token cookie. A forged one names nothing.
        let by_jwt = cookies.cookie_jwt.and_then(|jwt| self.jwt_session_id(jwt));
        // A token and a JWT naming different sessions: the same conflict.
        let replaced = match (by_token, by_jwt) {
            (Some(a), Some(b)) if a != b => return Ok(()),
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Ok(()),
        };
        self.revoke_by(&replaced, RevokedBy::Itself, RevokeReason::ReplacedByLogin)
            .await?;
        Ok(())
    }

    /// Refuses a JWT longer than `max_token_len` (it would not verify) or whose cookie would not
    /// fit in [`MAX_COOKIE_LEN`] bytes (browsers drop it silently).
    pub(super) fn check_jwt_size(
        &self,
        jwt: &SessionJwt,
        ttl: Duration,
    ) -> Result<(), SessionError> {
        let max_token = self.inner.codec.max_len();
        if jwt.expose().len() > max_token {
            return Err(SessionError::JwtTooLarge {
                size: jwt.expose().len(),
                max: max_token,
            });
        }
        let longest_max_age = self.inner.settings.max_lifetime.unwrap_or(ttl).max(ttl);
        let size = jwt_cookie_len(
            &self.inner.settings,
            jwt.expose().len(),
            time::Duration::try_from(longest_max_age).unwrap_or(time::Duration::MAX),
        ) + COOKIE_SIZE_MARGIN;
        if size > MAX_COOKIE_LEN {
            return Err(SessionError::JwtTooLarge {
                size,
                max: MAX_COOKIE_LEN,
            });
        }
        Ok(())
    }
}

/// The length of the `Set-Cookie` value that hands out a JWT of `jwt_len` bytes with
/// `max_age`, as the HTTP edge writes it (`name=value; HttpOnly; SameSite=Lax[; Secure];
/// Path=/[; Domain=…]; Max-Age=…`), counted without building it.
pub(crate) fn jwt_cookie_len(
    settings: &Settings,
    jwt_len: usize,
    max_age: time::Duration,
) -> usize {
    let cookies = &settings.cookies;
    let secure = if cookies.is_secure() {
        "; Secure".len()
    } else {
        0
    };
    // The `cookie` crate writes a domain without its leading dot.
    let domain = cookies.cookie_domain().map_or(0, |d| {
        "; Domain=".len() + d.strip_prefix('.').unwrap_or(d).len()
    });
    settings.jwt_cookie.len()
        + "=".len()
        + jwt_len
        + "; HttpOnly; SameSite=Lax".len()
        + secure
        + "; Path=/".len()
        + domain
        + "; Max-Age=".len()
        + max_age.whole_seconds().to_string().len()
}
