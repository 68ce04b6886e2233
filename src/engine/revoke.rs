//! Revoking sessions: one by id, token or JWT, all of a user's, all but the current one, and
//! what a logout revokes.

use time::OffsetDateTime;

use super::Sessions;
use super::credentials::CredentialKind;
use super::error::{AuthError, SessionError};
use crate::data::events::{RevokeReason, RevokedBy, SessionEventKind};
use crate::data::session::{Session, SessionId};
use crate::data::token::{Inadmissible, TokenHash};
use crate::store::{RevocationEvent, StoreError};

/// Most values of each credential a logout looks at (each costs a signature check or a store
/// lookup).
const MAX_CREDENTIALS_PER_KIND: usize = 4;

/// Every session credential value a request presented, cookies and header alike, each once
/// and at most [`MAX_CREDENTIALS_PER_KIND`] of each kind: what a logout revokes.
#[derive(Debug, Default)]
pub(crate) struct Presented<'a> {
    tokens: Vec<&'a str>,
    jwts: Vec<&'a str>,
}

impl<'a> Presented<'a> {
    /// Adds one presented value.
    pub(crate) fn add(&mut self, kind: CredentialKind, value: &'a str) {
        let list = match kind {
            CredentialKind::Jwt => &mut self.jwts,
            CredentialKind::Token => &mut self.tokens,
        };
        if list.len() < MAX_CREDENTIALS_PER_KIND && !list.contains(&value) {
            list.push(value);
        }
    }
}

impl Sessions {
    /// A logout: revokes `current` (the request's session, if any) and every session that a
    /// genuine credential of the request names (every presented opaque token, and every
    /// presented JWT, expired or not); with `everywhere`, every session of `current`'s user
    /// first. Unusable credentials revoke nothing; only a store failure is an error.
    pub(crate) async fn logout(
        &self,
        current: Option<&Session>,
        presented: &Presented<'_>,
        everywhere: bool,
    ) -> Result<(), SessionError> {
        if everywhere && let Some(current) = current {
            self.revoke_all_by(&current.user_id, RevokedBy::User)
                .await?;
        }
        let (by, reason) = (RevokedBy::Itself, RevokeReason::Logout);
        if let Some(current) = current {
            self.revoke_by(&current.session_id, by, reason).await?;
        }
        for token in &presented.tokens {
            self.revoke_token_by(token, by, reason).await?;
        }
        for jwt in &presented.jwts {
            match self.jwt_session_id(jwt) {
                Some(id) if current.is_none_or(|c| c.session_id != id) => {
                    self.revoke_by(&id, by, reason).await?;
                }
                _ => {}
            }
        }
        Ok(())
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
    pub(super) fn note_revoked(
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
}
