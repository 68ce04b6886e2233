//! What the store interface passes besides sessions: the per-user session limit, listing pages
//! and conditional updates.

use std::fmt;

use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;

/// How many live sessions one user may hold, and what creating one more does.
///
/// Enforced by the store, atomically with the creation, so that concurrent logins on several
/// instances cannot exceed it.
///
/// # Example
///
/// ```
/// use tower_session_jwt::store::{SessionLimit, WhenFull};
///
/// let limit = SessionLimit::new(10, WhenFull::Refuse);
/// assert_eq!(limit.max(), Some(10));
/// assert_eq!(SessionLimit::default(), SessionLimit::new(100, WhenFull::RevokeOldest));
/// assert_eq!(SessionLimit::unlimited().max(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimit {
    max: Option<u32>,
    when_full: WhenFull,
}

/// What creating a session beyond the [`SessionLimit`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WhenFull {
    /// Revoke the user's oldest sessions (by `started_at`) to make room (the default).
    #[default]
    RevokeOldest,
    /// Refuse the new session; the login fails with
    /// [`SessionError::SessionLimitReached`](crate::SessionError::SessionLimitReached).
    Refuse,
}

impl SessionLimit {
    /// The default limit: 100 live sessions per user, the oldest revoked beyond it.
    pub const DEFAULT_MAX: u32 = 100;

    /// At most `max` live sessions per user (at least 1).
    pub fn new(max: u32, when_full: WhenFull) -> Self {
        Self {
            max: Some(max.max(1)),
            when_full,
        }
    }

    /// No limit: every login adds a session.
    pub fn unlimited() -> Self {
        Self {
            max: None,
            when_full: WhenFull::RevokeOldest,
        }
    }

    /// The limit, or `None` for none.
    pub fn max(&self) -> Option<u32> {
        self.max
    }

    /// What creating a session beyond the limit does.
    pub fn when_full(&self) -> WhenFull {
        self.when_full
    }

    /// For a store: given `live` sessions of the user before the creation, how many of the
    /// oldest to revoke (`Ok`), or `Err(())` when the creation must be refused.
    #[allow(clippy::result_unit_err)]
    pub fn to_evict(&self, live: usize) -> Result<usize, ()> {
        let Some(max) = self.max else { return Ok(0) };
        let max = max as usize;
        if live < max {
            return Ok(0);
        }
        match self.when_full {
            WhenFull::RevokeOldest => Ok(live + 1 - max),
            WhenFull::Refuse => Err(()),
        }
    }
}

impl Default for SessionLimit {
    fn default() -> Self {
        Self::new(Self::DEFAULT_MAX, WhenFull::RevokeOldest)
    }
}

/// What [`SessionStore::create`](super::SessionStore::create) did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CreateOutcome {
    /// The session was stored; `evicted` are the user's oldest sessions revoked to stay within
    /// the limit (each recorded in the revocation feed, as by `revoke`).
    Created {
        /// The sessions revoked to make room, oldest first.
        evicted: Vec<SessionId>,
    },
    /// The user is at the limit and it refuses new sessions: nothing was stored.
    LimitReached,
}

/// Where a listing page starts: just after this session in the listing's order (newest first:
/// `started_at` descending to the millisecond, then session id descending).
///
/// Shown to clients as text (`Display`/`FromStr`): `<started_at in Unix ms>.<session id>`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PageCursor {
    /// The last listed session's `started_at`, in Unix milliseconds.
    pub started_ms: i64,
    /// The last listed session's id.
    pub session_id: SessionId,
}

/// Why a string is not a page cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed page cursor")]
pub struct InvalidCursor;

impl PageCursor {
    /// The cursor just after `session`.
    pub fn after(session: &Session) -> Self {
        Self {
            started_ms: started_ms(session),
            session_id: session.session_id.clone(),
        }
    }

    /// Whether `session` comes after this cursor in the listing's order.
    pub fn precedes(&self, session: &Session) -> bool {
        let ms = started_ms(session);
        ms < self.started_ms || (ms == self.started_ms && session.session_id < self.session_id)
    }
}

/// A session's `started_at` in Unix milliseconds (rounded down), the listing's sort key.
pub fn started_ms(session: &Session) -> i64 {
    (session.started_at.unix_timestamp_nanos() / 1_000_000) as i64
}

impl fmt::Display for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.started_ms, self.session_id)
    }
}

impl fmt::Debug for PageCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PageCursor({self})")
    }
}

impl std::str::FromStr for PageCursor {
    type Err = InvalidCursor;
    fn from_str(text: &str) -> Result<Self, InvalidCursor> {
        let (ms, id) = text.split_once('.').ok_or(InvalidCursor)?;
        if ms.is_empty() || ms.len() > 16 || !ms.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InvalidCursor);
        }
        Ok(Self {
            started_ms: ms.parse().map_err(|_| InvalidCursor)?,
            session_id: SessionId::parse(id).map_err(|_| InvalidCursor)?,
        })
    }
}

/// One page of a listing request: at most `limit` sessions, after `after`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Most sessions to return (at least 1; [`Sessions`](crate::Sessions) caps it at
    /// [`PageRequest::MAX_LIMIT`]).
    pub limit: u32,
    /// Start after this session; `None` for the first page.
    pub after: Option<PageCursor>,
}

impl PageRequest {
    /// The default page length.
    pub const DEFAULT_LIMIT: u32 = 50;
    /// The longest page [`Sessions`](crate::Sessions) asks a store for.
    pub const MAX_LIMIT: u32 = 200;

    /// The first page of `limit` sessions.
    pub fn first(limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: None,
        }
    }

    /// The page of `limit` sessions after `cursor`.
    pub fn after(cursor: PageCursor, limit: u32) -> Self {
        Self {
            limit: limit.clamp(1, Self::MAX_LIMIT),
            after: Some(cursor),
        }
    }
}

impl Default for PageRequest {
    fn default() -> Self {
        Self::first(Self::DEFAULT_LIMIT)
    }
}

/// A page of a user's live sessions, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionPage {
    /// The sessions, in the listing's order.
    pub sessions: Vec<Session>,
    /// Where the next page starts; `None` when this page is the last.
    pub next: Option<PageCursor>,
}

impl SessionPage {
    /// A page from up to `limit + 1` sessions in the listing's order: the extra one, if there,
    /// only says another page exists.
    pub fn from_sorted(mut sessions: Vec<Session>, limit: u32) -> Self {
        let limit = limit as usize;
        let more = sessions.len() > limit;
        sessions.truncate(limit);
        let next = if more {
            sessions.last().map(PageCursor::after)
        } else {
            None
        };
        Self { sessions, next }
    }
}

/// Sorts sessions into the listing's order (newest first); see [`PageCursor`].
pub fn sort_for_listing(sessions: &mut [Session]) {
    sessions.sort_by(|a, b| {
        started_ms(b)
            .cmp(&started_ms(a))
            .then_with(|| b.session_id.cmp(&a.session_id))
    });
}

/// A change to a live session for [`SessionStore::update`](super::SessionStore::update).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUpdate {
    /// The new record: same id and user, `version` exactly one more than the stored record's.
    pub session: Session,
    /// A new token hash (a rotation: the old token stops finding the session), or `None`.
    pub token_hash: Option<TokenHash>,
    /// Refuse every JWT minted for an earlier version of the session: the store records
    /// [`RevocationEvent::jwts_refused`](crate::store::RevocationEvent::jwts_refused) in its feed, in
    /// the same transaction as the update.
    pub refuse_older_jwts: bool,
}

/// What [`SessionStore::update`](super::SessionStore::update) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum UpdateOutcome {
    /// The record was replaced.
    Updated,
    /// The stored record's version is not `session.version - 1`: someone else changed it
    /// first. Nothing was written; read it again and redo the change.
    Stale,
    /// No live session has that id (revoked, expired or never created). Nothing was written.
    Gone,
}
