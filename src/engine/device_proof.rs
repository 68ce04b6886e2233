//! Device-binding changes and the witness of a verified proof: the only code that checks a
//! device proof against a stored session, and the only maker of [`ProofVerified`], which the
//! mint gate asks for before it gives a bound session a JWT.

use super::Sessions;
use crate::data::device::DeviceChallenge;
use crate::data::session::{Session, SessionId};
use crate::engine::error::SessionError;
use crate::proof::{Proof, ProofError};

/// A change to a session's device binding (DBSC), made through [`Sessions::change`] so that it
/// is atomic, single use and retried like any other change.
#[derive(Debug, Clone)]
pub(super) enum DeviceOp {
    /// Registration: the proof's own key (already verified) becomes the session's.
    Bind(Proof),
    /// Refresh: the proof must verify with the session's key.
    Refresh(Proof),
    /// The binding is removed.
    Unbind,
}

impl Sessions {
    /// Applies a device-binding change to `next` (a copy of the stored record, version already
    /// raised): checks the proof against the record as stored now and consumes its challenge,
    /// handing out the next one. Returns the witness of a verified proof, which entitles the
    /// change to a JWT at the mint gate (an unbinding has none).
    pub(super) fn apply_device(
        &self,
        op: &DeviceOp,
        next: &mut Session,
        now: time::OffsetDateTime,
    ) -> Result<Option<ProofVerified>, SessionError> {
        let ttl = self.dbsc_config().challenge_ttl;
        match op {
            DeviceOp::Bind(proof) => {
                let key = proof.verify_own_key()?.clone();
                let id = next.session_id.as_str();
                let binding = next.device_binding.get_or_insert_with(Default::default);
                if binding.key.is_some() {
                    return Err(ProofError::AlreadyBound.into());
                }
                binding
                    .challenge
                    .as_ref()
                    .ok_or(ProofError::UnknownChallenge)?
                    .check(proof, now, ttl)?;
                if proof.authorization() != Some(id) || subject_is_another(proof, id) {
                    return Err(ProofError::WrongAuthorization.into());
                }
                binding.key = Some(key);
                binding.bound_at = Some(now);
                binding.challenge = Some(DeviceChallenge::generate(now)?);
            }
            DeviceOp::Refresh(proof) => {
                let binding = next.device_binding.as_mut().ok_or(ProofError::NotBound)?;
                let key = binding.key.as_ref().ok_or(ProofError::NotBound)?;
                proof.verify_with(key)?;
                if subject_is_another(proof, next.session_id.as_str()) {
                    return Err(ProofError::WrongAuthorization.into());
                }
                binding
                    .challenge
                    .as_ref()
                    .ok_or(ProofError::UnknownChallenge)?
                    .check(proof, now, ttl)?;
                binding.challenge = Some(DeviceChallenge::generate(now)?);
                // The refresh is the bound session's activity: it slides like a token refresh.
                if self.inner.settings.sliding {
                    next.expires_at =
                        self.extended_expiry(next, now + self.inner.settings.session_ttl);
                }
            }
            DeviceOp::Unbind => {
                next.device_binding = None;
                return Ok(None);
            }
        }
        Ok(Some(ProofVerified {
            session_id: next.session_id.clone(),
            version: next.version,
        }))
    }
}

/// Witness that a device proof verified for one record of one session: made only by
/// [`Sessions::apply_device`] once the proof checked out against the record as stored, and
/// honoured by the mint gate for that record alone (same session, same version).
#[derive(Debug)]
pub(super) struct ProofVerified {
    session_id: SessionId,
    version: u64,
}

impl ProofVerified {
    /// Whether this proof stands for `session` as it is about to be stored.
    pub(super) fn covers(&self, session: &Session) -> bool {
        self.session_id == session.session_id && self.version == session.version
    }
}

/// Whether a proof's `sub` (optional in the draft) names another session than `id`.
fn subject_is_another(proof: &Proof, id: &str) -> bool {
    proof.subject().is_some_and(|s| s != id)
}
