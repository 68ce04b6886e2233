//! The revocation feed contract: how every instance learns of every revocation.

use std::time::Duration;

use time::OffsetDateTime;

use super::{BoxFuture, StoreError};
use serde::{Deserialize, Serialize};

use crate::data::session::SessionId;

/// A position in a revocation feed, opaque to everyone but the feed that issued it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FeedCursor(pub String);

/// What one [`RevocationFeed::read`] returns.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct FeedBatch {
    /// The events after the cursor read from, oldest first, each with its own cursor.
    pub events: Vec<(FeedCursor, RevocationEvent)>,
    /// Whether nothing retained follows this batch: when the read was answered, the feed held no
    /// event after the last one returned (after the cursor read from, for an empty batch).
    /// A batch cut short by a size limit is **not** caught up.
    pub caught_up: bool,
    /// The feed's horizon: every revocation made at or after this instant is in the feed (or
    /// was, before this reader read it). An event older than that may have been trimmed, so a
    /// reader that starts from the beginning knows nothing before the horizon, and must confirm
    /// in the store any JWT issued before it. For a stream trimmed to its retention, it is the
    /// retention edge (now minus the retention); for an in-process log, when the log was made.
    pub horizon: OffsetDateTime,
}

impl FeedBatch {
    /// A batch of `events`; `caught_up` and `horizon` as documented on the fields.
    pub fn new(
        events: Vec<(FeedCursor, RevocationEvent)>,
        caught_up: bool,
        horizon: OffsetDateTime,
    ) -> Self {
        Self {
            events,
            caught_up,
            horizon,
        }
    }
}

/// A replayable, totally ordered log of revocations, kept for at least
/// [`retention`](Self::retention).
///
/// # The contract
///
/// Every [`Sessions`](crate::Sessions) follows its store's feed from a background task and
/// trusts the JWT fast path (and a token cache over a shared store) **only while caught up and
/// fresh**: its last read reported [`caught_up`](FeedBatch::caught_up) and was sent at most the
/// [staleness bound](crate::SessionsBuilder::feed_staleness) ago (1 s by default); reads are
/// asked to wait at most a quarter of it. Everything else falls back to the store, so a feed
/// that breaks this contract can let a revoked JWT through. A feed must therefore guarantee:
///
/// 1. **Total order, replay from any cursor.** `read(None, _)` starts at the oldest retained
///    event; `read(Some(c), _)` returns the events after `c`, in the order they were appended,
///    and never an event twice or out of order. Two readers see the same sequence.
/// 2. **Honest catching up.** A read may return fewer events than are retained (a batch limit),
///    but then says `caught_up: false`; the reader reads again at once, without waiting.
///    `caught_up: true` means no event was retained after the batch when the read was answered.
/// 3. **No silent gaps.** A cursor whose successors may have been trimmed (it fell out of the
///    retention, or the log was lost) is answered with [`StoreError::FeedCursorLost`], never
///    with the events that happen to remain. The reader then starts over from `None`.
/// 4. **Atomic with the change it reports.** The event is appended in the same script or
///    transaction that deletes the session (or changes it), so a reader that sees the store
///    change can also see the event, and the other way round. Events appended by transactions
///    that commit out of order must still be read in commit order, with no event skipped
///    (serialise appends if the cursor is a sequence number allocated before commit).
/// 5. **Retention of at least one JWT lifetime.** [`retention`](Self::retention) is at least
///    the JWT TTL plus leeway (the builder refuses a shorter one), so that an instance that
///    replays the feed knows every revocation that concerns a JWT still valid.
/// 6. **Bounded waiting.** With `wait > 0` and nothing to return, a read may wait up to `wait`
///    for news, then returns an empty, caught-up batch. A read that fails returns an error: the
///    reader retries from the same cursor and distrusts its fast path meanwhile.
///
/// The events are [`RevocationEvent`]s: "JWTs of session S issued up to T are refused" (with
/// `ended`, the session was deleted and every JWT of it is refused) and "sessions of user U
/// started up to T are revoked". The public conformance suite (`store::conformance`, feature
/// `test-util`) checks every point it can observe through the trait.
pub trait RevocationFeed: Send + Sync + 'static {
    /// How long events stay readable.
    fn retention(&self) -> Duration;

    /// The events after `after` (with `None`: from the oldest retained one); see the contract
    /// above. When there are none, waits up to `wait` for new ones.
    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>>;
}

/// A revocation event as the engines' feeds store it (JSON).
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn encode_event(event: &RevocationEvent) -> Result<String, StoreError> {
    serde_json::to_string(event)
        .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}").into()))
}

/// A valid session id that stands in for the ids a script or statement learns only as it runs.
#[cfg(any(feature = "redis", feature = "postgres"))]
const EVENT_ID_PLACEHOLDER: &str = "tsj-event-session-id";

/// The JSON of `RevocationEvent::session_revoked(<id>, at)` around its quoted session id, so a
/// script or a statement can publish the revocation of sessions it picks itself (evictions,
/// revoking all of a user's sessions or all but one) in exactly the encoding every other event
/// has.
#[cfg(any(feature = "redis", feature = "postgres"))]
pub(crate) fn session_event_parts(at: OffsetDateTime) -> Result<(String, String), StoreError> {
    let placeholder = crate::data::session::SessionId::parse(EVENT_ID_PLACEHOLDER)
        .map_err(|_| StoreError::Backend("invalid event placeholder".into()))?;
    let json = encode_event(&RevocationEvent::session_revoked(placeholder, at))?;
    let (head, tail) = json
        .split_once(&format!("\"{EVENT_ID_PLACEHOLDER}\""))
        .ok_or_else(|| StoreError::Backend("session id missing from an encoded event".into()))?;
    Ok((head.to_owned(), tail.to_owned()))
}

/// One revocation, as applied locally and carried by a store's revocation feed.
///
/// One general event per scope: "JWTs of this session minted for a version below `version`
/// are refused" (a claims change, a new factor or a token rotation: the session lives on, its
/// newer JWTs are accepted) and, with `ended`, "this session is gone" (a revocation: every JWT
/// of it is refused, whatever its version); and "every session of this user started up to
/// `before` is revoked".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RevocationEvent {
    /// JWTs of one session minted for a version below `version` are refused; with `ended`,
    /// the session was deleted and all of its JWTs are refused.
    Session {
        /// The session.
        session_id: SessionId,
        /// When the change was made. Named `at` in events written by earlier versions.
        #[serde(with = "time::serde::rfc3339", alias = "at")]
        before: OffsetDateTime,
        /// JWTs minted for an earlier version of the session ([`Session::version`](crate::Session::version)) are
        /// refused. `0` (and absent) refuses none by version.
        #[serde(default, skip_serializing_if = "is_zero")]
        version: u64,
        /// Whether the session itself was deleted (revoked). Absent in earlier events, which
        /// were all revocations.
        #[serde(default = "revoked_by_default")]
        ended: bool,
    },
    /// Every session of a user that started at or before `before` was revoked.
    User {
        /// The user.
        user_id: String,
        /// Sessions started before this instant are revoked.
        #[serde(with = "time::serde::rfc3339")]
        before: OffsetDateTime,
    },
}

fn revoked_by_default() -> bool {
    true
}

fn is_zero(version: &u64) -> bool {
    *version == 0
}

impl RevocationEvent {
    /// The event that revokes (ends) one session at `at`.
    pub fn session_revoked(session_id: SessionId, at: OffsetDateTime) -> Self {
        Self::Session {
            session_id,
            before: at,
            version: 0,
            ended: true,
        }
    }

    /// The event that refuses the JWTs of a live session minted for a version below `version`
    /// (the session itself stays; JWTs minted for `version` and later are accepted), made at
    /// `at`.
    pub fn jwts_refused(session_id: SessionId, at: OffsetDateTime, version: u64) -> Self {
        Self::Session {
            session_id,
            before: at,
            version,
            ended: false,
        }
    }

    /// The event that revokes every session of `user_id` started up to `before`.
    pub fn user_revoked(user_id: impl Into<String>, before: OffsetDateTime) -> Self {
        Self::User {
            user_id: user_id.into(),
            before,
        }
    }
}
