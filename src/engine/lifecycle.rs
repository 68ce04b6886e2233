//! Changing a live session: custom claims, authentication factors (step-up), token rotation
//! and extension, through one mechanism, [`Sessions::change`].
//!
//! A change reads the session, applies itself to a copy with the version one higher, and asks
//! the store to write it only if nobody changed the session in between (retrying on a newer
//! record). A change that could raise or lower what the session may do (claims, a rotated
//! token) also refuses every JWT minted for an earlier version, in the same store step: the
//! store's revocation feed carries that to every instance, and this instance applies it at once.
//! A client that still holds the opaque token is re-minted a JWT with the new state on its next
//! request; a client that holds only an old JWT gets `401`.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::device_proof::DeviceOp;
use super::mint::{Grant, MintRefused};
use super::{CONTENDED, MAX_UPDATE_ATTEMPTS, Sessions};
use crate::data::events::SessionEventKind;
use crate::data::session::claims_object;
use crate::data::session::{
    AuthenticationFactor, CustomClaimsError, Session, SessionId, validate_custom_claims,
};
use crate::data::token::SessionToken;
use crate::engine::error::SessionError;
use crate::jwt::SessionJwt;
use crate::store::RevocationEvent;
use crate::store::{SessionUpdate, StoreError, UpdateOutcome};

/// A change to a live session for [`Sessions::change`]. Build it from the parts you need.
///
/// # Example
///
/// ```
/// use serde_json::json;
/// use tower_session_jwt::session::AuthenticationFactor;
/// use tower_session_jwt::sessions::SessionChange;
///
/// // Merge claims (a `null` value deletes a key), as Stytch's `session_custom_claims`.
/// let promote = SessionChange::new()
///     .claims(json!({"role": "admin", "trial": null}))
///     .rotate_token(); // a privilege change: renew the token too
///
/// // Step-up: a factor just verified; rotates the token unless told otherwise.
/// let otp = AuthenticationFactor::of_type("otp", time::OffsetDateTime::now_utc()).unwrap();
/// let step_up = SessionChange::new().factor(otp);
/// # let _ = (promote, step_up);
/// ```
#[derive(Debug, Clone, Default)]
#[must_use]
pub struct SessionChange {
    /// The patch as a JSON object, or why it is not one: reported by `change`, so that the
    /// builder stays infallible.
    claims: Option<Result<Map<String, Value>, CustomClaimsError>>,
    factor: Option<AuthenticationFactor>,
    rotate: Option<bool>,
    extend_for: Option<Duration>,
    pub(super) device: Option<DeviceOp>,
}

impl SessionChange {
    /// A change that changes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Merges `patch` into the custom claims: each key is set, or deleted when its value is
    /// `null`. Reserved names and the size cap apply to the result. Older JWTs are refused.
    ///
    /// `patch` is anything that serializes to a JSON object: a `serde_json::json!({..})`, a
    /// map, a struct deriving `Serialize` (a field that is `None` serializes as `null`, so it
    /// deletes its key; skip it with `#[serde(skip_serializing_if = "Option::is_none")]` to
    /// leave the key alone). [`Sessions::change`] refuses a patch that serializes to anything
    /// else with [`SessionError::InvalidCustomClaims`] and
    /// [`CustomClaimsError::NotAnObject`].
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use serde::Serialize;
    /// use tower_session_jwt::session::CustomClaimsError;
    /// use tower_session_jwt::sessions::SessionChange;
    /// use tower_session_jwt::{MemoryStore, NewSession, SessionError, Sessions, SigningKey};
    ///
    /// #[derive(Serialize)]
    /// struct Promotion {
    ///     role: &'static str,
    ///     trial: Option<bool>, // `None`: the `trial` claim is deleted
    /// }
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let new = NewSession::new().custom_claims(serde_json::json!({"role": "viewer", "trial": true}));
    /// let id = sessions.create("alice", new).await.unwrap().session.session_id;
    ///
    /// let promote = SessionChange::new().claims(Promotion { role: "admin", trial: None });
    /// let changed = sessions.change(&id, promote).await.unwrap();
    /// assert_eq!(changed.session.custom_claims["role"], "admin");
    /// assert!(!changed.session.custom_claims.contains_key("trial"));
    ///
    /// let not_an_object = SessionChange::new().claims("admin");
    /// assert!(matches!(
    ///     sessions.change(&id, not_an_object).await,
    ///     Err(SessionError::InvalidCustomClaims(CustomClaimsError::NotAnObject { found: "a string" }))
    /// ));
    /// # });
    /// ```
    pub fn claims(mut self, patch: impl Serialize) -> Self {
        self.claims = Some(claims_object(patch));
        self
    }

    /// Records that the user just authenticated with `factor` (step-up); its
    /// `last_authenticated_at` is set to now. Rotates the token unless
    /// [`keep_token`](Self::keep_token) is called.
    pub fn factor(mut self, factor: AuthenticationFactor) -> Self {
        self.factor = Some(factor);
        self
    }

    /// Issues a new opaque token for the session (session-fixation defence on a privilege
    /// change): the old token fails at once, older JWTs are refused.
    pub fn rotate_token(mut self) -> Self {
        self.rotate = Some(true);
        self
    }

    /// Keeps the token even though a factor is added.
    pub fn keep_token(mut self) -> Self {
        self.rotate = Some(false);
        self
    }

    /// Extends the session to `now + duration` (Stytch's `session_duration_minutes`), never
    /// shortening it and never past the configured maximum lifetime.
    ///
    /// On a session bound to a device ([DBSC](crate::dbsc)) this, like every change without
    /// the device's proof, refuses the older JWTs and mints none: the browser refreshes through
    /// DBSC, which slides the expiry by itself. Do not extend bound sessions on every request.
    pub fn extend_for(mut self, duration: Duration) -> Self {
        self.extend_for = Some(duration);
        self
    }

    fn rotates(&self) -> bool {
        self.rotate.unwrap_or(self.factor.is_some())
    }
}

/// A changed session and its new credentials ([`Sessions::change`]).
///
/// Plain data: hand it to a browser with
/// [`SessionCookies::set`](crate::cookies::SessionCookies::set), which writes the token cookie
/// when the token was rotated, then the JWT cookie (or its removal when the JWT was
/// [withheld](Self::jwt_withheld)), and only for a client that sent its credentials as
/// cookies.
///
/// The server never keeps a token, so an extension without rotation cannot set the token
/// cookie again with its later `Max-Age`: extend with
/// [`rotate_token`](SessionChange::rotate_token) when the browser's token cookie must follow.
///
/// `Debug` shows the session, never the credentials.
#[non_exhaustive]
pub struct Changed {
    /// The session as stored now.
    pub session: Session,
    /// The new opaque token when the change rotated it.
    pub token: Option<SessionToken>,
    /// A JWT minted for the changed session; `None` when the session is bound to a device
    /// ([DBSC](crate::dbsc)) and the change carried no proof of its key (see
    /// [`jwt_withheld`](Self::jwt_withheld)).
    pub jwt: Option<SessionJwt>,
}

impl std::fmt::Debug for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Changed")
            .field("session", &self.session)
            .field("rotated", &self.token.is_some())
            .finish_non_exhaustive()
    }
}

impl Changed {
    /// Whether the JWT was withheld: the session is bound to a device ([DBSC](crate::dbsc))
    /// and the change carried no proof of its key. Then every JWT minted before is refused, and
    /// the browser's JWT cookie must be removed, so that it refreshes the JWT with its device
    /// key before its next request. A bound session gets a new JWT only that way, so a copied
    /// JWT cannot be stretched through a change.
    pub fn jwt_withheld(&self) -> bool {
        self.jwt.is_none()
    }

    /// When the change was made (the session's `last_accessed_at`): cookie lifetimes count
    /// from it.
    pub(crate) fn at(&self) -> time::OffsetDateTime {
        self.session.last_accessed_at
    }
}

impl Sessions {
    /// Applies `change` to a live session, atomically and once, however many instances change
    /// it at the same time.
    ///
    /// The session is read, changed in a copy with the next version, and written only if
    /// nobody changed it in between (else read again). A change to the claims or the token also
    /// refuses every JWT minted for an earlier version, in the same store step: at once here,
    /// through the revocation feed on every other instance. A client holding the opaque token
    /// is re-minted a JWT with the new state on its next request; a client holding only an old
    /// JWT gets `401`.
    ///
    /// # Errors
    ///
    /// [`SessionError::UnknownSession`] when the session is gone; the claim, factor, lifetime
    /// and JWT-size errors of [`create`](Self::create); [`SessionError::Store`].
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use serde_json::json;
    /// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
    /// use tower_session_jwt::sessions::SessionChange;
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let created = sessions.create("alice", NewSession::new()).await.unwrap();
    /// let id = &created.session.session_id;
    ///
    /// let patch = json!({"role": "admin"});
    /// let changed = sessions.change(id, SessionChange::new().claims(patch)).await.unwrap();
    /// assert_eq!(changed.session.custom_claims["role"], "admin");
    ///
    /// // The JWT minted before the change is refused; the token still works and re-mints.
    /// assert!(sessions.authenticate_jwt(created.jwt.expose()).await.is_err());
    /// let fresh = sessions.authenticate_token(created.token.expose()).await.unwrap();
    /// assert_eq!(fresh.session.custom_claims["role"], "admin");
    /// # });
    /// ```
    pub async fn change(
        &self,
        session_id: &SessionId,
        change: SessionChange,
    ) -> Result<Changed, SessionError> {
        if let Some(factor) = &change.factor {
            factor.validate()?;
        }
        if change
            .extend_for
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return Err(SessionError::InvalidTtl);
        }
        let rotate = change.rotates();
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some(current) = self.get(session_id).await? else {
                return Err(SessionError::UnknownSession);
            };
            let now = self.now();
            let mut next = current.clone();
            next.version += 1;
            next.last_accessed_at = next.on_grid(now);
            if let Some(patch) = &change.claims {
                let patch = patch.as_ref().map_err(Clone::clone)?;
                for (key, value) in patch {
                    if value.is_null() {
                        next.custom_claims.remove(key);
                    } else {
                        next.custom_claims.insert(key.clone(), value.clone());
                    }
                }
                validate_custom_claims(&next.custom_claims)?;
            }
            if let Some(factor) = &change.factor {
                let mut factor = factor.clone();
                factor.last_authenticated_at = next.on_grid(now);
                next.record_factor(factor)?;
            }
            if let Some(duration) = change.extend_for {
                next.expires_at = self.extended_expiry(&next, now + duration);
            }
            let proof = match &change.device {
                Some(op) => self.apply_device(op, &mut next, now)?,
                None => None,
            };
            let remaining = (next.expires_at - now)
                .try_into()
                .unwrap_or(Duration::from_secs(1));
            let grant = match proof {
                Some(verified) => Grant::DeviceProof(verified),
                None => Grant::Change { before: &current },
            };
            // The mint gate decides whether the changed session gets a JWT: a session bound to
            // a device gets one only for its device's proof. Withheld, it is still measured, so
            // that the refresh that mints it later cannot fail on its size.
            let jwt = match self.mint(&next, now, grant) {
                Ok(jwt) => {
                    self.check_jwt_size(&jwt, remaining)?;
                    Some(jwt)
                }
                Err(MintRefused::DeviceProofRequired) => {
                    self.check_jwt_fits(&next, now, remaining)?;
                    None
                }
                Err(MintRefused::Sign(e)) => return Err(e.into()),
            };
            // Claims and tokens decide what a JWT may do: older JWTs go. So do they when the
            // change got no JWT (a bound session without its device's proof): a copied JWT must
            // not outlive the change, and the browser refreshes through its device key. A
            // factor added without rotation or an extension otherwise leaves older JWTs as they
            // were (less). Binding a device leaves them too: they expire within one JWT
            // lifetime, and refusing them would sign out the very browser that registers, whose
            // next request may already be on its way with the JWT of its login.
            let refuse = change.claims.is_some() || rotate || jwt.is_none();
            if refuse {
                next.jwts_from_version = next.version;
            }
            let token = if rotate {
                Some(self.inner.settings.tokens.generate()?)
            } else {
                None
            };
            let update = SessionUpdate {
                session: next,
                token_hash: token.as_ref().map(SessionToken::hash),
                refuse_older_jwts: refuse,
            };
            match self.inner.store.update(&update).await? {
                UpdateOutcome::Updated => {}
                UpdateOutcome::Stale => continue,
                _ => return Err(SessionError::UnknownSession),
            }
            let session = update.session;
            if matches!(change.device, Some(DeviceOp::Bind(_))) {
                // Token lookups cached here before the binding must not re-mint for the token.
                self.forget_cached_lookups(&session.session_id);
            }
            if refuse {
                crate::engine::metrics::revocation("jwts");
                // Here at once; elsewhere through the store's feed.
                self.revocation_list().apply(&RevocationEvent::jwts_refused(
                    session.session_id.clone(),
                    now,
                    session.version,
                ));
            }
            self.emit_changes(&current, &session, &change, rotate);
            return Ok(Changed {
                session,
                token,
                jwt,
            });
        }
        Err(SessionError::Store(StoreError::Backend(CONTENDED.into())))
    }

    /// Merges `patch` into a live session's custom claims (a `null` value deletes a key) and
    /// refuses every JWT minted before, here at once and on every instance through the feed.
    /// Shorthand for [`change`](Self::change) with [`SessionChange::claims`]: `patch` is
    /// anything that serializes to a JSON object.
    pub async fn update_claims(
        &self,
        session_id: &SessionId,
        patch: impl Serialize,
    ) -> Result<Changed, SessionError> {
        self.change(session_id, SessionChange::new().claims(patch))
            .await
    }

    /// Step-up: records `factor` as just authenticated and rotates the token. Shorthand for
    /// [`change`](Self::change) with [`SessionChange::factor`].
    pub async fn step_up(
        &self,
        session_id: &SessionId,
        factor: AuthenticationFactor,
    ) -> Result<Changed, SessionError> {
        self.change(session_id, SessionChange::new().factor(factor))
            .await
    }

    /// Issues a new opaque token for a live session: the old token fails at once everywhere,
    /// older JWTs are refused. Shorthand for [`change`](Self::change) with
    /// [`SessionChange::rotate_token`].
    pub async fn rotate(&self, session_id: &SessionId) -> Result<Changed, SessionError> {
        self.change(session_id, SessionChange::new().rotate_token())
            .await
    }

    /// Extends a live session to `now + duration` (never shorter, never past the maximum
    /// lifetime). Shorthand for [`change`](Self::change) with [`SessionChange::extend_for`].
    pub async fn extend_for(
        &self,
        session_id: &SessionId,
        duration: Duration,
    ) -> Result<Changed, SessionError> {
        self.change(session_id, SessionChange::new().extend_for(duration))
            .await
    }

    fn emit_changes(
        &self,
        before: &Session,
        after: &Session,
        change: &SessionChange,
        rotated: bool,
    ) {
        // A patch that is not an object never got this far.
        if let Some(Ok(patch)) = &change.claims {
            let mut keys: Vec<String> = patch.keys().cloned().collect();
            keys.sort();
            self.emit(after, SessionEventKind::ClaimsChanged { keys });
        }
        if let Some(factor) = &change.factor {
            self.emit(
                after,
                SessionEventKind::FactorAdded {
                    factor: factor.factor_type.clone(),
                    delivery_method: factor.delivery_method.clone(),
                },
            );
        }
        if rotated {
            self.emit(after, SessionEventKind::Rotated);
        }
        match (
            &change.device,
            after.device_binding.as_ref().and_then(|b| b.key.as_ref()),
        ) {
            (Some(DeviceOp::Bind(_)), Some(key)) => self.emit(
                after,
                SessionEventKind::DeviceBound {
                    algorithm: key.algorithm().as_str().to_owned(),
                    key_thumbprint: key.thumbprint(),
                },
            ),
            (Some(DeviceOp::Refresh(_)), _) => self.emit(after, SessionEventKind::DeviceRefreshed),
            (Some(DeviceOp::Unbind), _) if before.is_device_bound() => {
                self.emit(after, SessionEventKind::DeviceUnbound)
            }
            _ => {}
        }
        if after.expires_at != before.expires_at {
            self.emit(
                after,
                SessionEventKind::Extended {
                    expires_at: after.expires_at,
                },
            );
        }
    }
}
