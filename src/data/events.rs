//! Session events for audit logs: what changed, to which session, by whom and why.
//!
//! [`SessionsBuilder::on_event`](crate::SessionsBuilder::on_event) receives one
//! [`SessionEvent`] for every change this instance makes. Events carry session ids, user ids,
//! factor and claim *names* and reasons, never a token, a JWT or a claim's value, so they are
//! safe to log as they are.

use std::sync::Arc;

use serde::Serialize;
use time::OffsetDateTime;

use crate::data::session::SessionId;

/// The hook events go to.
pub(crate) type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync>;

/// One change to a session, for an audit log.
///
/// Serializes as a flat JSON object: `{"event": "revoked", "at": …, "session_id": …,
/// "user_id": …, "by": "user", "reason": "signed_out_elsewhere"}`.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::{Arc, Mutex};
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
/// use tower_session_jwt::events::{SessionEvent, SessionEventKind};
///
/// let log = Arc::new(Mutex::new(Vec::new()));
/// let sink = log.clone();
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .on_event(move |event: &SessionEvent| sink.lock().unwrap().push(event.clone()))
///     .build()
///     .unwrap();
/// let created = sessions.create("alice", NewSession::new()).await.unwrap();
/// sessions.revoke(&created.session.session_id).await.unwrap();
/// let log = log.lock().unwrap();
/// assert!(matches!(log[0].kind, SessionEventKind::Created { .. }));
/// assert!(matches!(log[1].kind, SessionEventKind::Revoked { .. }));
/// # });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionEvent {
    /// When it happened (the manager's clock).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The session.
    pub session_id: SessionId,
    /// Its user.
    pub user_id: String,
    /// What happened.
    #[serde(flatten)]
    pub kind: SessionEventKind,
}

/// What happened to a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum SessionEventKind {
    /// A login created the session.
    Created {
        /// The factor recorded at login (its type), if any.
        factor: Option<String>,
    },
    /// The opaque token was confirmed in the store and a fresh JWT minted (the store path).
    Refreshed,
    /// The session's expiry moved later.
    Extended {
        /// The new expiry.
        #[serde(with = "time::serde::rfc3339")]
        expires_at: OffsetDateTime,
    },
    /// Custom claims were set or removed.
    ClaimsChanged {
        /// The names of the claims set or removed (never their values).
        keys: Vec<String>,
    },
    /// The user authenticated again with a factor (step-up).
    FactorAdded {
        /// The factor's type.
        factor: String,
        /// Its delivery method.
        delivery_method: String,
    },
    /// The opaque token was replaced; the old one no longer works.
    Rotated,
    /// The session was bound to a device key (DBSC registration); JWTs minted before were
    /// refused.
    DeviceBound {
        /// The key's algorithm (`ES256` or `RS256`).
        algorithm: String,
        /// The key's RFC 7638 thumbprint.
        key_thumbprint: String,
    },
    /// The device proved possession of its key and got a fresh JWT (DBSC refresh).
    DeviceRefreshed,
    /// The session's device binding was removed.
    DeviceUnbound,
    /// The session was revoked.
    Revoked {
        /// Who revoked it.
        by: RevokedBy,
        /// Why.
        reason: RevokeReason,
    },
}

/// Who revoked a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevokedBy {
    /// The session itself: its holder signed out.
    #[serde(rename = "self")]
    Itself,
    /// Its user, from another session ("sign out that device", "sign out other devices").
    User,
    /// The application (an administrator, a password reset: a direct call of
    /// [`Sessions::revoke`](crate::Sessions::revoke) and friends).
    Application,
    /// The crate, enforcing the per-user [session limit](crate::store::SessionLimit).
    Limit,
}

/// Why a session was revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum RevokeReason {
    /// Logout.
    Logout,
    /// Its user revoked this one session from elsewhere.
    RevokedByUser,
    /// Its user signed out every other device.
    SignedOutOthers,
    /// Every session of the user was revoked ("sign out everywhere").
    SignedOutEverywhere,
    /// The application revoked it.
    Revoked,
    /// The user's newest login exceeded the session limit; the oldest session made room.
    SessionLimit,
    /// A login in the same browser replaced the session's cookies (with
    /// [`RevokedBy::Itself`]); see
    /// [`SessionsBuilder::keep_sessions_on_login`](crate::SessionsBuilder::keep_sessions_on_login).
    ReplacedByLogin,
}
