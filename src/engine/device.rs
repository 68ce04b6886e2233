//! Device binding (DBSC) on the engine: registration, refresh, challenges and unbinding, each a
//! [`Sessions::change`] (atomic, single use across instances) or a small compare-and-swap of
//! its own.

use std::sync::OnceLock;

use super::device_proof::DeviceOp;
use super::{CONTENDED, Changed, MAX_UPDATE_ATTEMPTS, SessionChange, Sessions};
use crate::data::device::DeviceChallenge;
use crate::data::session::SessionId;
use crate::engine::DbscConfig;
use crate::engine::error::SessionError;
use crate::proof::Proof;
use crate::proof::ProofError;
use crate::store::{SessionUpdate, StoreError, UpdateOutcome};

impl Sessions {
    /// The device binding settings: the configured ones, or the defaults for an instance that
    /// does not offer binding (it still refreshes and unbinds sessions bound elsewhere).
    pub(crate) fn dbsc_config(&self) -> &DbscConfig {
        static DEFAULT: OnceLock<DbscConfig> = OnceLock::new();
        self.inner
            .settings
            .device_binding
            .as_ref()
            .unwrap_or_else(|| DEFAULT.get_or_init(DbscConfig::default))
    }

    /// The live, unrevoked session an opaque token names, bound or not, straight from the
    /// store: the DBSC endpoints find their session this way (the token path refuses bound
    /// sessions).
    pub(crate) async fn session_for_token(
        &self,
        token: &str,
    ) -> Result<Option<crate::data::session::Session>, crate::engine::error::AuthError> {
        let now = self.now();
        if self.admit_token(token, now).is_err() {
            return Ok(None);
        }
        let hash = crate::data::token::TokenHash::of(token);
        Ok(self
            .inner
            .store
            .find_by_token(&hash)
            .await?
            .filter(|s| s.is_live_at(now) && !self.revocation_list().is_revoked(s)))
    }

    /// Whether this instance offers device binding ([`SessionsBuilder::device_binding`](crate::SessionsBuilder::device_binding)).
    pub fn device_binding_offered(&self) -> bool {
        self.inner.settings.device_binding.is_some()
    }

    /// Binds a session to the device key in a DBSC registration `proof` (a compact JWS, as
    /// sent in `Secure-Session-Response`): the proof must verify with the key it carries, sign
    /// the challenge offered at login (unused, within the challenge lifetime) and name the
    /// session in its `authorization`. JWTs minted before the binding expire on their own (at
    /// most one JWT lifetime: refusing them would sign out the registering browser, whose next
    /// request may already carry its login's JWT); the opaque token stops minting at once. The
    /// returned [`Changed`] holds the fresh JWT (always `Some`: the proof entitles the session
    /// to it) and its cookie (which lives as long as the JWT: the browser refreshes it through
    /// DBSC).
    ///
    /// [`dbsc::registration`](crate::dbsc::registration) calls this; call it yourself to serve
    /// registration from a handler of your own.
    ///
    /// # Errors
    ///
    /// [`SessionError::DeviceProof`] for a refused proof (already bound included),
    /// [`SessionError::UnknownSession`], [`SessionError::Store`].
    pub async fn bind_device(
        &self,
        session_id: &SessionId,
        proof: &str,
    ) -> Result<Changed, SessionError> {
        self.prove(session_id, proof, DeviceOp::Bind).await
    }

    /// Refreshes a bound session: `proof` must verify with the session's device key and sign
    /// the challenge last issued for it (unused, within the challenge lifetime). The challenge
    /// is consumed and the next one issued (`changed.session.device_binding.challenge`); with
    /// sliding expiry the session is extended. The returned [`Changed`] holds a fresh JWT
    /// (always `Some`: a verified proof is the one thing that mints for a bound session) and its
    /// cookie.
    ///
    /// [`dbsc::refresh`](crate::dbsc::refresh) calls this.
    ///
    /// # Errors
    ///
    /// [`SessionError::DeviceProof`]: [`ProofError::is_challenge`] tells whether a fresh
    /// challenge ([`device_challenge`](Self::device_challenge)) can put it right;
    /// [`SessionError::UnknownSession`], [`SessionError::Store`].
    pub async fn refresh_device(
        &self,
        session_id: &SessionId,
        proof: &str,
    ) -> Result<Changed, SessionError> {
        self.prove(session_id, proof, DeviceOp::Refresh).await
    }

    /// Parses `proof` with the offered algorithms and applies it as `op` through
    /// [`change`](Self::change).
    async fn prove(
        &self,
        session_id: &SessionId,
        proof: &str,
        op: fn(Proof) -> DeviceOp,
    ) -> Result<Changed, SessionError> {
        let proof = Proof::parse(proof, self.dbsc_config().algorithms())?;
        self.change(session_id, device_change(op(proof))).await
    }

    /// A challenge for the next proof of a bound session: the pending one while it has at
    /// least half its lifetime left (no store write), else a new one, stored atomically.
    ///
    /// # Errors
    ///
    /// [`ProofError::NotBound`] (as [`SessionError::DeviceProof`]) for a session without a
    /// device key, [`SessionError::UnknownSession`], [`SessionError::Store`].
    pub async fn device_challenge(&self, session_id: &SessionId) -> Result<String, SessionError> {
        let ttl = self.dbsc_config().challenge_ttl;
        for _ in 0..MAX_UPDATE_ATTEMPTS {
            let Some(current) = self.get(session_id).await? else {
                return Err(SessionError::UnknownSession);
            };
            let now = self.now();
            let binding = current
                .device_binding
                .as_ref()
                .filter(|b| b.key.is_some())
                .ok_or(ProofError::NotBound)?;
            if let Some(pending) = &binding.challenge
                && pending.is_fresh(now + ttl / 2, ttl)
                && pending.is_fresh(now, ttl)
            {
                return Ok(pending.value.clone());
            }
            let challenge = DeviceChallenge::generate(now)?;
            let mut next = current.clone();
            next.version += 1;
            if let Some(binding) = next.device_binding.as_mut() {
                binding.challenge = Some(challenge.clone());
            }
            let update = SessionUpdate {
                session: next,
                token_hash: None,
                refuse_older_jwts: false,
            };
            match self.inner.store.update(&update).await? {
                UpdateOutcome::Updated => return Ok(challenge.value),
                UpdateOutcome::Stale => continue,
                _ => return Err(SessionError::UnknownSession),
            }
        }
        Err(SessionError::Store(StoreError::Backend(CONTENDED.into())))
    }

    /// Removes a session's device binding: its opaque token re-mints JWTs again, and its JWT
    /// cookie lives as long as the session again. Harmless on an unbound session.
    ///
    /// Unbinding a bound session is a change without the device's proof, so like every such
    /// change it hands out no JWT (`Changed::jwt` is `None`) and refuses the older ones; the
    /// browser's token cookie mints the next JWT on its next request.
    ///
    /// # ⚠️ Warning: this gives a copied token its power back
    ///
    /// Never let the session's own credentials alone authorise an unbinding (a "stop binding
    /// this device" route behind the session layer, say): whoever copied the cookies would
    /// unbind first and then use the token for the session's whole lifetime. Ask for a fresh
    /// factor, or leave unbinding to an administrator.
    ///
    /// # Errors
    ///
    /// [`SessionError::UnknownSession`], [`SessionError::Store`].
    pub async fn unbind_device(&self, session_id: &SessionId) -> Result<Changed, SessionError> {
        self.change(session_id, device_change(DeviceOp::Unbind))
            .await
    }
}

fn device_change(op: DeviceOp) -> SessionChange {
    let mut change = SessionChange::new().keep_token();
    change.device = Some(op);
    change
}
