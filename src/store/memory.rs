use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use time::OffsetDateTime;

use super::{
    BoxFuture, CreateOutcome, FeedBatch, FeedCursor, PageRequest, RevocationFeed, SessionLimit,
    SessionPage, SessionRecord, SessionStore, SessionUpdate, StoreError, UpdateOutcome, started_ms,
};
use crate::data::clock::{Clock, SharedClock, SystemClock};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;

/// The embedded, in-process store: the default for a single instance.
///
/// Concurrent (one read-write lock; reads share it). Expired sessions are never returned, and
/// every write first drops the sessions that have expired (found through an expiry index, so the
/// cost is proportional to what expires), so memory stays bounded by live sessions.
///
/// Clones share the same sessions and the same in-process revocation feed, so several
/// [`Sessions`](crate::Sessions) over clones of one store see each other's revocations. Sessions
/// do not survive a restart and are not shared between processes: use `RedisStore` for several
/// instances.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
///
/// let store = MemoryStore::new();
/// let sessions = Sessions::builder()
///     .store(store.clone())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// sessions.create("user-1", NewSession::new()).await.unwrap();
/// assert_eq!(store.len(), 1);
/// # });
/// ```
#[derive(Clone)]
pub struct MemoryStore {
    inner: Arc<Inner>,
}

struct Inner {
    clock: SharedClock,
    state: RwLock<State>,
    feed: Arc<MemoryFeed>,
}

/// Default retention of the in-process revocation feed.
pub const MEMORY_FEED_RETENTION: Duration = Duration::from_secs(3600);

/// Most events one feed read returns.
const FEED_BATCH: usize = 1000;

/// The in-process revocation log: sequence-numbered events kept for the retention.
struct MemoryFeed {
    clock: SharedClock,
    retention: Duration,
    /// When the log was made: nothing revoked before it is known (the feed's horizon).
    created: OffsetDateTime,
    log: Mutex<FeedLog>,
    notify: tokio::sync::Notify,
}

#[derive(Default)]
struct FeedLog {
    next: u64,
    /// The sequence number after the last event trimmed: cursors before it have lost events.
    trimmed_to: u64,
    events: VecDeque<(u64, OffsetDateTime, RevocationEvent)>,
}

impl MemoryFeed {
    fn lock(&self) -> std::sync::MutexGuard<'_, FeedLog> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn publish(&self, event: RevocationEvent) {
        let now = self.clock.now();
        let mut log = self.lock();
        let horizon = now - self.retention;
        while let Some((seq, _, _)) = log.events.front().filter(|(_, at, _)| *at < horizon) {
            log.trimmed_to = seq + 1;
            log.events.pop_front();
        }
        let seq = log.next;
        log.next += 1;
        log.events.push_back((seq, now, event));
        drop(log);
        self.notify.notify_waiters();
    }

    /// Up to [`FEED_BATCH`] events after `after`, or `None` when `after` has lost events.
    fn after(&self, after: Option<u64>) -> Result<FeedBatch, StoreError> {
        let log = self.lock();
        let start = match after {
            None => 0,
            // A cursor this log never issued (another process's) or one whose successors were
            // trimmed has missed events.
            Some(a) if a >= log.next || a + 1 < log.trimmed_to => {
                return Err(StoreError::FeedCursorLost);
            }
            // Sequence numbers ascend, so the unread tail is found by binary search rather than
            // by scanning the whole retained hour on every read.
            Some(a) => log.events.partition_point(|(seq, _, _)| *seq <= a),
        };
        let events: Vec<_> = log
            .events
            .range(start..)
            .take(FEED_BATCH)
            .map(|(seq, _, event)| (FeedCursor(seq.to_string()), event.clone()))
            .collect();
        let caught_up = start + events.len() == log.events.len();
        let horizon = self.created.max(self.clock.now() - self.retention);
        Ok(FeedBatch::new(events, caught_up, horizon))
    }
}

impl RevocationFeed for MemoryFeed {
    fn retention(&self) -> Duration {
        self.retention
    }

    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async move {
            let after = match after {
                Some(cursor) => Some(
                    cursor
                        .0
                        .parse::<u64>()
                        .map_err(|_| StoreError::FeedCursorLost)?,
                ),
                None => None,
            };
            // Register for wake-ups before looking, so an event published in between is not
            // missed.
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let batch = self.after(after)?;
            if !batch.events.is_empty() || wait.is_zero() {
                return Ok(batch);
            }
            let _ = tokio::time::timeout(wait, notified).await;
            self.after(after)
        })
    }
}

#[derive(Default)]
struct State {
    by_id: HashMap<SessionId, Entry>,
    by_token: HashMap<TokenHash, SessionId>,
    /// Per user, `(started_ms, id)` ascending: the listing reads it backwards.
    by_user: HashMap<String, BTreeSet<(i64, SessionId)>>,
    expiry: BTreeSet<(OffsetDateTime, SessionId)>,
}

struct Entry {
    session: Session,
    token_hash: TokenHash,
}

impl State {
    fn remove(&mut self, id: &SessionId) -> Option<Session> {
        let entry = self.by_id.remove(id)?;
        self.by_token.remove(&entry.token_hash);
        self.expiry.remove(&(entry.session.expires_at, id.clone()));
        if let Some(ids) = self.by_user.get_mut(&entry.session.user_id) {
            ids.remove(&(started_ms(&entry.session), id.clone()));
            if ids.is_empty() {
                self.by_user.remove(&entry.session.user_id);
            }
        }
        Some(entry.session)
    }

    fn purge_expired(&mut self, now: OffsetDateTime) -> usize {
        let mut purged = 0;
        while let Some((at, id)) = self.expiry.first().cloned() {
            if at > now {
                break;
            }
            self.remove(&id);
            purged += 1;
        }
        purged
    }

    fn live(&self, id: &SessionId, now: OffsetDateTime) -> Option<&Session> {
        self.by_id
            .get(id)
            .map(|e| &e.session)
            .filter(|s| s.is_live_at(now))
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("sessions", &self.len())
            .finish()
    }
}

impl MemoryStore {
    /// An empty store on the system clock.
    pub fn new() -> Self {
        Self::with_clock(SystemClock)
    }

    /// An empty store that reads time from `clock` (use the same clock as
    /// [`SessionsBuilder::clock`](crate::SessionsBuilder::clock)).
    pub fn with_clock(clock: impl Clock) -> Self {
        let clock: SharedClock = Arc::new(clock);
        Self {
            inner: Arc::new(Inner {
                feed: Arc::new(MemoryFeed {
                    created: clock.now(),
                    clock: clock.clone(),
                    retention: MEMORY_FEED_RETENTION,
                    log: Mutex::default(),
                    notify: tokio::sync::Notify::new(),
                }),
                clock,
                state: RwLock::new(State::default()),
            }),
        }
    }

    /// How many sessions are held, including expired ones not yet purged.
    pub fn len(&self) -> usize {
        self.read().by_id.len()
    }

    /// Whether no session is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Drops every expired session now and returns how many were dropped. Writes do this on
    /// their own; call it to reclaim memory in a store that sees no writes.
    pub fn purge_expired(&self) -> usize {
        let now = self.inner.clock.now();
        self.write().purge_expired(now)
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // The state is only mutated in small steps that cannot panic half-way; a poisoned lock
        // still holds consistent data.
        self.inner.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.inner.state.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes the write lock with expired sessions already purged.
    fn write_purged(&self) -> (RwLockWriteGuard<'_, State>, OffsetDateTime) {
        let now = self.inner.clock.now();
        let mut state = self.write();
        state.purge_expired(now);
        (state, now)
    }
}

impl SessionStore for MemoryStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let (mut state, now) = self.write_purged();
        let id = record.session.session_id.clone();
        // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
        // replacing the old session would hand its owner's session to someone else.
        if state.by_id.contains_key(&id) || state.by_token.contains_key(&record.token_hash) {
            return Err(StoreError::Backend("duplicate session id or token".into()));
        }
        let user = &record.session.user_id;
        let live = state.by_user.get(user).map_or(0, BTreeSet::len);
        let Ok(evict) = limit.to_evict(live) else {
            return Ok(CreateOutcome::LimitReached);
        };
        // Oldest first: the front of the (started_ms, id) order.
        let evicted: Vec<SessionId> = state
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .take(evict)
            .map(|(_, id)| id.clone())
            .collect();
        for gone in &evicted {
            state.remove(gone);
        }
        state.expiry.insert((record.session.expires_at, id.clone()));
        state
            .by_user
            .entry(user.clone())
            .or_default()
            .insert((started_ms(&record.session), id.clone()));
        state.by_token.insert(record.token_hash, id.clone());
        state.by_id.insert(
            id,
            Entry {
                session: record.session,
                token_hash: record.token_hash,
            },
        );
        drop(state);
        for gone in &evicted {
            self.inner
                .feed
                .publish(RevocationEvent::session_revoked(gone.clone(), now));
        }
        Ok(CreateOutcome::Created { evicted })
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let now = self.inner.clock.now();
        let state = self.read();
        Ok(state
            .by_token
            .get(token_hash)
            .and_then(|id| state.live(id, now))
            .cloned())
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.inner.clock.now();
        Ok(self.read().live(session_id, now).cloned())
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let now = self.inner.clock.now();
        let state = self.read();
        let Some(ids) = state.by_user.get(user_id) else {
            return Ok(SessionPage::from_sorted(Vec::new(), page.limit));
        };
        let newest_first: Box<dyn Iterator<Item = &(i64, SessionId)>> = match &page.after {
            Some(cursor) => Box::new(
                ids.range(..(cursor.started_ms, cursor.session_id.clone()))
                    .rev(),
            ),
            None => Box::new(ids.iter().rev()),
        };
        let sessions = newest_first
            .filter_map(|(_, id)| state.live(id, now).cloned())
            .take(page.limit as usize + 1)
            .collect();
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let (mut state, now) = self.write_purged();
        let state = &mut *state;
        let session = &update.session;
        let Some(entry) = state.by_id.get_mut(&session.session_id) else {
            return Ok(UpdateOutcome::Gone);
        };
        if entry.session.user_id != session.user_id
            || started_ms(&entry.session) != started_ms(session)
        {
            return Err(StoreError::Backend(
                "an update may not move a session to another user or start".into(),
            ));
        }
        if entry.session.version.checked_add(1) != Some(session.version) {
            return Ok(UpdateOutcome::Stale);
        }
        if let Some(hash) = update.token_hash {
            if state.by_token.contains_key(&hash) {
                return Err(StoreError::Backend("duplicate token".into()));
            }
            state.by_token.remove(&entry.token_hash);
            state.by_token.insert(hash, session.session_id.clone());
            entry.token_hash = hash;
        }
        state
            .expiry
            .remove(&(entry.session.expires_at, session.session_id.clone()));
        state
            .expiry
            .insert((session.expires_at, session.session_id.clone()));
        entry.session = session.clone();
        if update.refuse_older_jwts {
            self.inner.feed.publish(RevocationEvent::jwts_refused(
                session.session_id.clone(),
                now,
                session.version,
            ));
        }
        Ok(UpdateOutcome::Updated)
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let (mut state, now) = self.write_purged();
        let revoked = state.remove(session_id);
        drop(state);
        if revoked.is_some() {
            self.inner
                .feed
                .publish(RevocationEvent::session_revoked(session_id.clone(), now));
        }
        Ok(revoked)
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let (mut state, now) = self.write_purged();
        let ids: Vec<SessionId> = state
            .by_user
            .get(user_id)
            .map(|ids| {
                ids.iter()
                    .map(|(_, id)| id.clone())
                    .filter(|id| Some(id) != except)
                    .collect()
            })
            .unwrap_or_default();
        for id in &ids {
            state.remove(id);
        }
        drop(state);
        // Each session by id: the user event's cut-off is this clock's, and a session started
        // on an instance whose clock runs ahead would pass it.
        for id in &ids {
            self.inner
                .feed
                .publish(RevocationEvent::session_revoked(id.clone(), now));
        }
        if except.is_none() {
            // Published even when nothing was live: a session being created elsewhere at this
            // moment must still be cut off.
            self.inner
                .feed
                .publish(RevocationEvent::user_revoked(user_id, now));
        }
        Ok(ids)
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }

    fn is_shared(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::clock::ManualClock;
    use crate::data::token::SessionToken;
    use std::time::Duration;

    fn record(user: &str, now: OffsetDateTime, ttl: Duration) -> SessionRecord {
        SessionRecord {
            session: Session::new(SessionId::generate().unwrap(), user, now, now + ttl),
            token_hash: SessionToken::generate().unwrap().hash(),
        }
    }

    #[tokio::test]
    async fn expired_sessions_are_hidden_then_evicted() {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::with_clock(clock.clone());
        let now = clock.now();
        let short = record("u", now, Duration::from_secs(60));
        let long = record("u", now, Duration::from_secs(3600));
        store
            .create(short.clone(), SessionLimit::unlimited())
            .await
            .unwrap();
        store
            .create(long.clone(), SessionLimit::unlimited())
            .await
            .unwrap();
        clock.advance(Duration::from_secs(61));

        assert_eq!(store.find_by_token(&short.token_hash).await.unwrap(), None);
        assert_eq!(store.get(&short.session.session_id).await.unwrap(), None);
        assert_eq!(
            store
                .list_by_user("u", &PageRequest::default())
                .await
                .unwrap()
                .sessions,
            vec![long.session.clone()]
        );
        assert_eq!(store.len(), 2, "reads do not purge");

        // Any write purges what has expired.
        store
            .create(
                record("other", clock.now(), Duration::from_secs(60)),
                SessionLimit::unlimited(),
            )
            .await
            .unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.read().by_token.len(), 2);
        assert_eq!(store.read().expiry.len(), 2);
    }

    #[tokio::test]
    async fn memory_is_bounded_by_live_sessions() {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::with_clock(clock.clone());
        for _ in 0..1000 {
            store
                .create(
                    record("churn", clock.now(), Duration::from_secs(10)),
                    SessionLimit::unlimited(),
                )
                .await
                .unwrap();
            clock.advance(Duration::from_millis(100));
        }
        // Only sessions younger than 10 s (100 of them) may remain.
        assert!(store.len() <= 101, "{} sessions held", store.len());
        clock.advance(Duration::from_secs(11));
        let held = store.len();
        assert_eq!(store.purge_expired(), held);
        assert!(store.is_empty());
        assert!(store.read().by_user.is_empty());
    }

    #[tokio::test]
    async fn update_slides_the_expiry_index() {
        let clock = ManualClock::starting_now();
        let store = MemoryStore::with_clock(clock.clone());
        let mut rec = record("u", clock.now(), Duration::from_secs(60));
        store
            .create(rec.clone(), SessionLimit::unlimited())
            .await
            .unwrap();
        rec.session.expires_at += Duration::from_secs(600);
        rec.session.version += 1;
        let update = SessionUpdate {
            session: rec.session.clone(),
            token_hash: None,
            refuse_older_jwts: false,
        };
        assert_eq!(store.update(&update).await.unwrap(), UpdateOutcome::Updated);
        clock.advance(Duration::from_secs(120));
        assert_eq!(store.purge_expired(), 0);
        assert_eq!(
            store.find_by_token(&rec.token_hash).await.unwrap(),
            Some(rec.session)
        );
    }
}
