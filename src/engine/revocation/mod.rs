//! The local revocation list: what makes outstanding JWTs fail at once.
//!
//! A session JWT is verified without the store, so revoking a session in the store alone would
//! leave its JWT valid until `exp`. The revocation list remembers, for as long as any JWT minted
//! before the revocation can still be valid (JWT TTL + leeway), which session ids were revoked and,
//! per user, the instant before which every session was revoked (`revoke_all`). Every session the
//! fast path (or the token cache) is about to accept is checked against it.
//!
//! Memory is bounded by recent revocations, not by sessions: entries older than the retention are
//! purged as new ones arrive. Entries are never evicted for space: forgetting a revocation early
//! would let a revoked JWT through.

mod follower;

pub(crate) use follower::{Revocations, Trust, feed_wait, follow};

use std::collections::HashMap;
use std::sync::RwLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use time::OffsetDateTime;

use crate::data::clock::SharedClock;
use crate::data::session::{Session, SessionId};
use crate::store::RevocationEvent;

/// Recently revoked sessions and users; see the module docs.
pub struct RevocationList {
    clock: SharedClock,
    retention: Duration,
    sessions: RwLock<HashMap<SessionId, SessionCutoff>>,
    users: RwLock<HashMap<String, UserCutoff>>,
    /// Entries in both maps; lets the common case (nothing revoked) skip the locks.
    entries: AtomicUsize,
    /// Entry count after the last purge; the next purge waits until it has doubled.
    purge_mark: AtomicUsize,
}

#[derive(Clone, Copy)]
struct SessionCutoff {
    /// JWTs minted for a session version below this are refused.
    min_version: u64,
    /// The session is gone: every JWT of it is refused.
    ended: bool,
    recorded: OffsetDateTime,
}

#[derive(Clone, Copy)]
struct UserCutoff {
    before: OffsetDateTime,
    recorded: OffsetDateTime,
}

impl std::fmt::Debug for RevocationList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationList")
            .field("entries", &self.len())
            .field("retention", &self.retention)
            .finish()
    }
}

impl RevocationList {
    /// An empty list that keeps entries for `retention` (the JWT TTL plus leeway).
    /// The time on the engine's clock.
    pub(crate) fn now(&self) -> time::OffsetDateTime {
        self.clock.now()
    }

    pub(crate) fn new(clock: SharedClock, retention: Duration) -> Self {
        Self {
            clock,
            retention,
            sessions: RwLock::default(),
            users: RwLock::default(),
            entries: AtomicUsize::new(0),
            purge_mark: AtomicUsize::new(64),
        }
    }

    /// How many revocations are remembered.
    pub fn len(&self) -> usize {
        self.entries.load(Ordering::Acquire)
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Records a revocation.
    pub fn apply(&self, event: &RevocationEvent) {
        let now = self.clock.now();
        match event {
            RevocationEvent::Session {
                session_id,
                version,
                ended,
                ..
            } => {
                let mut map = write(&self.sessions);
                let cutoff = SessionCutoff {
                    min_version: *version,
                    ended: *ended,
                    recorded: now,
                };
                match map.get_mut(session_id) {
                    Some(existing) => {
                        existing.min_version = existing.min_version.max(cutoff.min_version);
                        existing.ended |= cutoff.ended;
                        existing.recorded = now;
                    }
                    None => {
                        map.insert(session_id.clone(), cutoff);
                        self.entries.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
            RevocationEvent::User { user_id, before } => {
                let mut map = write(&self.users);
                let cutoff = UserCutoff {
                    before: *before,
                    recorded: now,
                };
                match map.get_mut(user_id) {
                    Some(existing) => {
                        existing.before = existing.before.max(*before);
                        existing.recorded = now;
                    }
                    None => {
                        map.insert(user_id.clone(), cutoff);
                        self.entries.fetch_add(1, Ordering::AcqRel);
                    }
                }
            }
        }
        if self.len() >= self.purge_mark.load(Ordering::Acquire) {
            self.purge();
        }
    }

    /// Whether `session` was revoked: it ended, or it started before its user's cutoff. A
    /// session whose older JWTs were only refused (a claims change) is not revoked.
    pub fn is_revoked(&self, session: &Session) -> bool {
        self.refuses(session, false)
    }

    /// Whether a JWT carrying `session` (as minted: its id, user, start and
    /// [`version`](Session::version)) is refused: the session is revoked, or JWTs of its
    /// version were refused by a later change. Also tells whether a cached copy of a session is
    /// older than a change made since.
    pub fn refuses_jwt(&self, session: &Session) -> bool {
        self.refuses(session, true)
    }

    fn refuses(&self, session: &Session, by_version: bool) -> bool {
        if self.is_empty() {
            return false;
        }
        if let Some(cutoff) = read(&self.sessions).get(&session.session_id)
            && (cutoff.ended || (by_version && session.version < cutoff.min_version))
        {
            return true;
        }
        read(&self.users)
            .get(&session.user_id)
            // Inclusive: a session started in the same clock tick as the revocation is treated
            // as revoked (failing closed; its user signs in again).
            .is_some_and(|cutoff| session.started_at <= cutoff.before)
    }

    /// Drops entries older than the retention; returns how many were dropped.
    pub fn purge(&self) -> usize {
        let horizon = self.clock.now() - self.retention;
        let mut dropped = 0;
        {
            let mut map = write(&self.sessions);
            let before = map.len();
            map.retain(|_, cutoff| cutoff.recorded > horizon);
            dropped += before - map.len();
        }
        {
            let mut map = write(&self.users);
            let before = map.len();
            map.retain(|_, cutoff| cutoff.recorded > horizon);
            dropped += before - map.len();
        }
        let left = self.entries.fetch_sub(dropped, Ordering::AcqRel) - dropped;
        self.purge_mark.store((left * 2).max(64), Ordering::Release);
        dropped
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::clock::{Clock, ManualClock};
    use std::sync::Arc;

    fn session(user: &str, started_at: OffsetDateTime) -> Session {
        Session::new(
            SessionId::generate().unwrap(),
            user,
            started_at,
            started_at + Duration::from_secs(3600),
        )
    }

    #[test]
    fn revoked_session_and_user_cutoff() {
        let clock = ManualClock::starting_now();
        let list = RevocationList::new(Arc::new(clock.clone()), Duration::from_secs(305));
        let t0 = clock.now();
        let a = session("alice", t0);
        let b = session("bob", t0);
        assert!(!list.is_revoked(&a));
        list.apply(&RevocationEvent::session_revoked(a.session_id.clone(), t0));
        assert!(list.is_revoked(&a));
        assert!(!list.is_revoked(&b));

        clock.advance(Duration::from_secs(1));
        list.apply(&RevocationEvent::User {
            user_id: "bob".into(),
            before: clock.now(),
        });
        assert!(list.is_revoked(&b));
        // A session started in the cutoff's tick is revoked; one started after it is not.
        assert!(list.is_revoked(&session("bob", clock.now())));
        assert!(!list.is_revoked(&session("bob", clock.now() + Duration::from_millis(1))));
        assert!(!list.is_revoked(&session("carol", t0)));
    }

    #[test]
    fn refused_jwts_leave_the_session_and_newer_jwts_alone() {
        let clock = ManualClock::starting_now();
        let list = RevocationList::new(Arc::new(clock.clone()), Duration::from_secs(305));
        let mut a = session("alice", clock.now());
        a.version = 3;
        list.apply(&RevocationEvent::jwts_refused(
            a.session_id.clone(),
            clock.now(),
            4,
        ));
        assert!(!list.is_revoked(&a), "the session itself lives on");
        assert!(list.refuses_jwt(&a), "a JWT of version 3 is refused");
        let newer = Session {
            version: 4,
            ..a.clone()
        };
        assert!(
            !list.refuses_jwt(&newer),
            "one minted for the new version is not"
        );
        // An older event arriving late does not lower the cutoff.
        list.apply(&RevocationEvent::jwts_refused(
            a.session_id.clone(),
            clock.now(),
            2,
        ));
        assert!(list.refuses_jwt(&a));
        // A later revocation of the same session ends it, whatever the JWT's version.
        list.apply(&RevocationEvent::session_revoked(
            a.session_id.clone(),
            clock.now(),
        ));
        assert!(list.is_revoked(&a));
        assert!(list.refuses_jwt(&newer));
        assert_eq!(list.len(), 1);
    }

    #[test]
    fn events_of_earlier_versions_still_decode() {
        let old = r#"{"kind":"session","session_id":"session-x","at":"2026-01-01T00:00:00Z"}"#;
        let event: RevocationEvent = serde_json::from_str(old).unwrap();
        assert_eq!(
            event,
            RevocationEvent::session_revoked(
                SessionId::parse("session-x").unwrap(),
                time::macros::datetime!(2026-01-01 00:00 UTC)
            )
        );
    }

    #[test]
    fn entries_expire_after_retention_only() {
        let clock = ManualClock::starting_now();
        let list = RevocationList::new(Arc::new(clock.clone()), Duration::from_secs(305));
        let a = session("alice", clock.now());
        list.apply(&RevocationEvent::session_revoked(
            a.session_id.clone(),
            clock.now(),
        ));
        clock.advance(Duration::from_secs(304));
        assert_eq!(list.purge(), 0);
        assert!(list.is_revoked(&a));
        clock.advance(Duration::from_secs(2));
        assert_eq!(list.purge(), 1);
        assert!(list.is_empty());
    }

    #[test]
    fn memory_is_bounded_by_recent_revocations() {
        let clock = ManualClock::starting_now();
        let list = RevocationList::new(Arc::new(clock.clone()), Duration::from_secs(10));
        for _ in 0..10_000 {
            list.apply(&RevocationEvent::session_revoked(
                SessionId::generate().unwrap(),
                clock.now(),
            ));
            clock.advance(Duration::from_millis(10));
        }
        // 10 s of retention at 100 revocations per second, with purges amortised by doubling.
        assert!(list.len() <= 2 * 1001 + 64, "{} entries", list.len());
    }
}
