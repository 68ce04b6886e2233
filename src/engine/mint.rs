//! The mint gate: the one place a session JWT is signed for a caller, and so the one place the
//! rules about who may have one are held. Every path that hands out a JWT comes through
//! [`Sessions::mint`]: a login ([`Grant::Creation`]), the opaque token ([`Grant::Token`]), a
//! change the application makes ([`Grant::Change`]) and a verified device proof
//! ([`Grant::DeviceProof`]).
//!
//! The rule held here: **a session bound to a device key gets a JWT only for a verified proof
//! of that key.** A copied token or a copied JWT of a bound session therefore never turns into
//! a JWT that outlives the one copied, whatever path asks (a claims change, a step-up, a
//! rotation, an extension, or anything an application builds on
//! [`change`](Sessions::change)).

use std::sync::Arc;
use std::time::Duration;

use time::OffsetDateTime;

use super::Sessions;
use super::caches::CachedJwt;
use super::device_proof::ProofVerified;
use super::jwt_key::JwtKey;
use crate::data::session::Session;
use crate::engine::error::{AuthError, SessionError};
use crate::jwt::{SessionJwt, SignError};
use crate::proof::ProofError;

/// What entitles a caller to a JWT at the [mint gate](Sessions::mint).
#[derive(Debug)]
pub(super) enum Grant<'a> {
    /// The session was created by this call; nothing is bound to it yet.
    Creation,
    /// The session's opaque token was confirmed in the store.
    Token,
    /// The application changed the session (claims, factors, token, lifetime, unbinding).
    /// Unbinding a bound session is such a change: it mints nothing either (the token mints
    /// again afterwards, on its own path).
    Change {
        /// The record as it was before the change.
        before: &'a Session,
    },
    /// A device proof was verified against this very record (DBSC registration or refresh).
    DeviceProof(ProofVerified),
}

/// Why the mint gate handed out no JWT.
#[derive(Debug)]
pub(super) enum MintRefused {
    /// The session is bound to a device key and the caller brought no proof of it.
    DeviceProofRequired,
    /// Signing failed.
    Sign(SignError),
}

impl From<MintRefused> for AuthError {
    fn from(refused: MintRefused) -> Self {
        match refused {
            MintRefused::DeviceProofRequired => AuthError::DeviceBound,
            MintRefused::Sign(e) => AuthError::Signing(e),
        }
    }
}

impl From<MintRefused> for SessionError {
    fn from(refused: MintRefused) -> Self {
        match refused {
            MintRefused::DeviceProofRequired => ProofError::ProofRequired.into(),
            MintRefused::Sign(e) => SessionError::Signing(e),
        }
    }
}

impl Sessions {
    /// The mint gate: a JWT for `session` (as stored after this call's change) at `now`, if
    /// `grant` entitles the caller to one.
    ///
    /// The JWT is remembered as verified and minted here, so that its first use costs no
    /// signature check and is trusted even within the revocation horizon's second.
    pub(super) fn mint(
        &self,
        session: &Session,
        now: OffsetDateTime,
        grant: Grant<'_>,
    ) -> Result<SessionJwt, MintRefused> {
        let bound = match grant {
            Grant::Creation | Grant::Token => session.is_device_bound(),
            Grant::Change { before } => before.is_device_bound() || session.is_device_bound(),
            // The proof covers the record it was verified against, and nothing else.
            Grant::DeviceProof(verified) => !verified.covers(session),
        };
        if bound {
            return Err(MintRefused::DeviceProofRequired);
        }
        let jwt = self
            .inner
            .codec
            .mint(session, now)
            .map_err(MintRefused::Sign)?;
        // A JWT is cached when it is first presented (verified once), so memory goes to the
        // JWTs clients use, not to every JWT minted (an API login that keeps the opaque token,
        // a refresh nobody picks up). The exception is a JWT issued in or before the second of
        // the revocation feed's horizon: there `iat` cannot tell that it postdates what this
        // instance knows of revocations, and only the "minted here" mark keeps it off the
        // store.
        let trust = &self.inner.revocations.trust;
        if let Some(cache) = &self.inner.jwt_cache
            && !trust.after_horizon(now.unix_timestamp())
        {
            self.sweep_if_due(now);
            let minted = CachedJwt {
                // What the JWT carries, as another instance reads it: no attributes, no device
                // binding, times to the second.
                session: Arc::new(crate::jwt::as_minted(session)),
                issued_at: now.unix_timestamp(),
                expires_at: jwt.expires_at().unix_timestamp(),
                minted_in: Some(trust.generation()),
            };
            // Replaces an entry the verification path may have put there for the same bytes:
            // this instance minted them.
            cache.insert(JwtKey::shared(jwt.shared()), minted);
        }
        Ok(jwt)
    }

    /// Checks that the JWT `session` would get fits the configured size and a cookie, without
    /// handing one out: a change to a bound session is measured here, and its JWT is minted
    /// later, for the device's proof.
    pub(super) fn check_jwt_fits(
        &self,
        session: &Session,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<(), SessionError> {
        let measured = self.inner.codec.mint(session, now)?;
        self.check_jwt_size(&measured, ttl)
    }
}
