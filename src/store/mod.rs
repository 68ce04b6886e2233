//! Where sessions live: the [`SessionStore`] trait and its implementations.
//!
//! A store keeps sessions indexed three ways: by the SHA-256 of the opaque token (how requests
//! find them), by session id (how revocation and listing name them), and by user (how "all my
//! devices" and "sign out everywhere" find them). It never sees a token itself.
//!
//! The trait is deliberately small and depends on nothing HTTP: a store crate needs only this
//! module. Run [`conformance`] against your implementation (feature `test-util`).

mod breaker;
#[cfg(feature = "test-util")]
pub mod conformance;
mod feed;
mod memory;
mod page;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sqlx_common;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis-cluster")]
pub use self::redis::{RedisClusterStore, RedisClusterStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{SqliteStore, SqliteStoreBuilder};
pub use breaker::CircuitBreaker;
pub(crate) use breaker::{Breaker, Guarded};
pub use feed::{FeedBatch, FeedCursor, RevocationFeed};
pub use memory::MemoryStore;
pub use page::{
    CreateOutcome, InvalidCursor, PageCursor, PageRequest, SessionLimit, SessionPage,
    SessionUpdate, UpdateOutcome, WhenFull, sort_for_listing, started_ms,
};

use crate::session::{Session, SessionId};
use crate::token::TokenHash;

/// A boxed error from a store's backend.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store failed. This is never read as "no session": it answers `503 Service Unavailable`
/// (fail closed) at the HTTP layer.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The backend could not be reached or did not answer in time (`503`).
    #[error("session store unavailable: {0}")]
    Unavailable(#[source] BoxError),
    /// The backend answered with an error (`503`).
    #[error("session store error: {0}")]
    Backend(#[source] BoxError),
    /// A stored record could not be decoded (`503`).
    #[error("corrupt session record: {0}")]
    Corrupt(#[source] BoxError),
    /// A revocation feed reader's cursor is older than what the feed retains: events after it
    /// may be gone. The reader must start over from the oldest retained event and distrust its
    /// JWT fast path until it has caught up again (see [`RevocationFeed`]). `503` if surfaced.
    #[error("revocation feed cursor fell out of the retention")]
    FeedCursorLost,
    /// The store failed repeatedly and the engine's [circuit breaker](CircuitBreaker) is open:
    /// the call was not made. `503`; one probe call at a time finds out when the store is back.
    #[error("session store unavailable: failing fast after repeated failures")]
    CircuitOpen,
}

impl StoreError {
    /// Whether the store could not be reached or did not answer in time: a retry later may
    /// succeed, and nothing was learned about the session. True for
    /// [`Unavailable`](Self::Unavailable) (refused or reset connections, I/O errors, a call that
    /// timed out, a pool with no connection to give, a database locked past its busy timeout, a
    /// server shutting down or read-only after a failover) and [`CircuitOpen`](Self::CircuitOpen);
    /// false for errors the store answered with ([`Backend`](Self::Backend),
    /// [`Corrupt`](Self::Corrupt), [`FeedCursorLost`](Self::FeedCursorLost)).
    ///
    /// Only these errors count towards opening the engine's [circuit breaker](CircuitBreaker):
    /// a store that answers, even with an error, is reachable. A store of your own reports a
    /// lost connection or its own timeout as `Unavailable`, and anything else as another kind.
    ///
    /// ```
    /// use tower_session_jwt::StoreError;
    ///
    /// assert!(StoreError::Unavailable("connection refused".into()).is_unavailable());
    /// assert!(!StoreError::Backend("duplicate token".into()).is_unavailable());
    /// ```
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable(_) | Self::CircuitOpen)
    }
}

/// A session as handed to [`SessionStore::create`]: the session and the hash of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// The session.
    pub session: Session,
    /// SHA-256 of the session's opaque token.
    pub token_hash: TokenHash,
}

/// Storage for sessions.
///
/// Implementations must be safe to call concurrently and must never return a session whose
/// `expires_at` has passed (judged by the system clock, or by a clock the store is given; the
/// conformance suite uses the system clock). The manager checks again, but a store should also
/// let expired sessions go so that its memory is bounded by live sessions.
///
/// Three operations must be atomic, even across processes sharing the store: `create` with its
/// [`SessionLimit`], `update` with its version check (and its token change and feed event), and
/// each revocation with its feed event. [`conformance`] checks each of them.
///
/// # Example
///
/// A complete (if simple) store; `examples/custom_store.rs` has a fuller one.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use tower_session_jwt::store::{
///     CreateOutcome, PageRequest, SessionLimit, SessionPage, SessionRecord, SessionStore,
///     SessionUpdate, StoreError, UpdateOutcome, sort_for_listing,
/// };
/// use tower_session_jwt::{Session, SessionId, TokenHash};
///
/// #[derive(Default)]
/// struct VecStore(Mutex<Vec<SessionRecord>>);
///
/// fn live(r: &SessionRecord) -> bool {
///     r.session.is_live_at(time::OffsetDateTime::now_utc())
/// }
///
/// impl SessionStore for VecStore {
///     async fn create(&self, record: SessionRecord, limit: SessionLimit)
///         -> Result<CreateOutcome, StoreError> {
///         let mut records = self.0.lock().unwrap();
///         records.retain(live);
///         let mut mine: Vec<Session> = records.iter()
///             .filter(|r| r.session.user_id == record.session.user_id)
///             .map(|r| r.session.clone()).collect();
///         let Ok(evict) = limit.to_evict(mine.len()) else { return Ok(CreateOutcome::LimitReached) };
///         sort_for_listing(&mut mine);
///         let evicted: Vec<SessionId> = mine.iter().rev().take(evict)
///             .map(|s| s.session_id.clone()).collect();
///         records.retain(|r| !evicted.contains(&r.session.session_id));
///         records.push(record);
///         Ok(CreateOutcome::Created { evicted })
///     }
///     async fn find_by_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
///         let records = self.0.lock().unwrap();
///         Ok(records.iter().find(|r| live(r) && r.token_hash == *hash).map(|r| r.session.clone()))
///     }
///     async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
///         let records = self.0.lock().unwrap();
///         Ok(records.iter().find(|r| live(r) && r.session.session_id == *id)
///             .map(|r| r.session.clone()))
///     }
///     async fn list_by_user(&self, user_id: &str, page: &PageRequest)
///         -> Result<SessionPage, StoreError> {
///         let records = self.0.lock().unwrap();
///         let mut mine: Vec<Session> = records.iter()
///             .filter(|r| live(r) && r.session.user_id == user_id)
///             .filter(|r| page.after.as_ref().is_none_or(|c| c.precedes(&r.session)))
///             .map(|r| r.session.clone()).collect();
///         sort_for_listing(&mut mine);
///         mine.truncate(page.limit as usize + 1);
///         Ok(SessionPage::from_sorted(mine, page.limit))
///     }
///     async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
///         let mut records = self.0.lock().unwrap();
///         let Some(r) = records.iter_mut()
///             .find(|r| live(r) && r.session.session_id == update.session.session_id)
///         else { return Ok(UpdateOutcome::Gone) };
///         if r.session.version + 1 != update.session.version {
///             return Ok(UpdateOutcome::Stale);
///         }
///         r.session = update.session.clone();
///         if let Some(hash) = update.token_hash { r.token_hash = hash; }
///         Ok(UpdateOutcome::Updated) // (no feed here: see `revocation_feed`)
///     }
///     async fn revoke(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
///         let mut records = self.0.lock().unwrap();
///         let found = records.iter().position(|r| r.session.session_id == *id);
///         Ok(found.map(|i| records.remove(i)).filter(live).map(|r| r.session))
///     }
///     async fn revoke_all(&self, user_id: &str, except: Option<&SessionId>)
///         -> Result<Vec<SessionId>, StoreError> {
///         let mut records = self.0.lock().unwrap();
///         let mut gone = Vec::new();
///         records.retain(|r| {
///             let hit = r.session.user_id == user_id && Some(&r.session.session_id) != except;
///             if hit && live(r) { gone.push(r.session.session_id.clone()); }
///             !hit
///         });
///         Ok(gone)
///     }
///     fn is_shared(&self) -> bool { false } // lives in this process only
/// }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(
/// #     tower_session_jwt::store::conformance::run_all(&VecStore::default()));
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session (its id and token hash are fresh random values), keeping the user
    /// within `limit`: when the user already holds `max` live sessions, either the oldest are
    /// revoked in the same atomic step (each recorded in the feed, as by [`revoke`]) or nothing
    /// is stored ([`CreateOutcome::LimitReached`]), as [`SessionLimit::to_evict`] says.
    ///
    /// [`revoke`]: Self::revoke
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send;

    /// The live session whose token hashes to `token_hash`.
    fn find_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// The live session with this id.
    fn get(
        &self,
        session_id: &SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// A page of a user's live sessions, newest first (`started_at` descending to the
    /// millisecond, then session id descending), starting after `page.after`; at most
    /// `page.limit` sessions, with a cursor when more follow. The cost should follow the page,
    /// not the number of sessions the user holds.
    fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<SessionPage, StoreError>> + Send;

    /// Replaces a live session's record if, and only if, the stored record's `version` is
    /// `update.session.version - 1`; with `update.token_hash`, the session is found by the new
    /// hash only; with `update.refuse_older_jwts`, a
    /// [`RevocationEvent::jwts_refused`](crate::RevocationEvent::jwts_refused) for the new
    /// version goes to the feed in the same atomic step. An update must never bring a revoked
    /// or expired session back ([`UpdateOutcome::Gone`]).
    fn update(
        &self,
        update: &SessionUpdate,
    ) -> impl Future<Output = Result<UpdateOutcome, StoreError>> + Send;

    /// Deletes a session and returns it, or `None` if there was no live session with that id.
    fn revoke(
        &self,
        session_id: &SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Deletes every session of a user, or every one but `except` ("sign out my other
    /// devices"), and returns the ids of the live ones deleted. The feed gets one
    /// [`RevocationEvent::session_revoked`](crate::RevocationEvent::session_revoked) per live
    /// session deleted and, without `except`, one
    /// [`RevocationEvent::user_revoked`](crate::RevocationEvent::user_revoked) as well (it also
    /// covers sessions being created elsewhere at that moment). The user event alone is not
    /// enough: its cut-off is read from one clock and each `started_at` from the clock of the
    /// instance that created the session, so a session started on an instance whose clock runs
    /// ahead would pass it.
    fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> impl Future<Output = Result<Vec<SessionId>, StoreError>> + Send;

    /// The store's revocation feed, shared by every instance that uses the store, or `None`.
    ///
    /// A store with a feed records every revocation (`revoke`, `revoke_all`, sessions evicted
    /// by `create`) and every `update` that refuses older JWTs in it, atomically with the
    /// change, and keeps the [feed contract](RevocationFeed). Each
    /// [`Sessions`](crate::Sessions) reads it in the background, so that JWTs of sessions
    /// revoked or changed on another instance fail here too.
    ///
    /// A [shared](Self::is_shared) store without a feed is refused by
    /// [`SessionsBuilder::build`](crate::SessionsBuilder::build) unless the application accepts
    /// what that costs: a revoked session's JWT would stay valid on every other instance until it
    /// expires (see
    /// [`tolerate_revoked_jwts_elsewhere`](crate::SessionsBuilder::tolerate_revoked_jwts_elsewhere)).
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        None
    }

    /// Whether other processes may use this store too (default `true`).
    ///
    /// A shared store gets no token cache by default: a revocation made elsewhere must make the
    /// opaque token fail here at once, which only a store lookup guarantees. Only a store whose
    /// every user lives in this process (like [`MemoryStore`]) should answer `false`.
    fn is_shared(&self) -> bool {
        true
    }
}

/// A shared store is a store: keep an `Arc` for your own use (metrics, administration) and hand
/// a clone to [`Sessions`](crate::Sessions).
impl<S: SessionStore> SessionStore for Arc<S> {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> impl Future<Output = Result<CreateOutcome, StoreError>> + Send {
        S::create(self, record, limit)
    }
    fn find_by_token(
        &self,
        token_hash: &TokenHash,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        S::find_by_token(self, token_hash)
    }
    fn get(
        &self,
        session_id: &SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        S::get(self, session_id)
    }
    fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> impl Future<Output = Result<SessionPage, StoreError>> + Send {
        S::list_by_user(self, user_id, page)
    }
    fn update(
        &self,
        update: &SessionUpdate,
    ) -> impl Future<Output = Result<UpdateOutcome, StoreError>> + Send {
        S::update(self, update)
    }
    fn revoke(
        &self,
        session_id: &SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send {
        S::revoke(self, session_id)
    }
    fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> impl Future<Output = Result<Vec<SessionId>, StoreError>> + Send {
        S::revoke_all(self, user_id, except)
    }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        S::revocation_feed(self)
    }
    fn is_shared(&self) -> bool {
        S::is_shared(self)
    }
}

/// A boxed, sendable future (the return type of [`RevocationFeed::read`]).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Object-safe form of [`SessionStore`], so [`Sessions`](crate::Sessions) is not generic over
/// its store. Boxing costs one allocation per store call, which only the slow path makes.
pub(crate) trait DynStore: Send + Sync + 'static {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> BoxFuture<'_, Result<CreateOutcome, StoreError>>;
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
        page: &'a PageRequest,
    ) -> BoxFuture<'a, Result<SessionPage, StoreError>>;
    fn update<'a>(
        &'a self,
        update: &'a SessionUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, StoreError>>;
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>>;
    fn is_shared(&self) -> bool;
}

/// Runs a store call, recording its duration under `op`.
async fn timed<T>(op: &'static str, call: impl Future<Output = T>) -> T {
    let started = std::time::Instant::now();
    let result = call.await;
    crate::metrics::store_call(op, started.elapsed());
    result
}

impl<S: SessionStore> DynStore for S {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> BoxFuture<'_, Result<CreateOutcome, StoreError>> {
        Box::pin(timed("create", SessionStore::create(self, record, limit)))
    }
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed(
            "find_by_token",
            SessionStore::find_by_token(self, token_hash),
        ))
    }
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed("get", SessionStore::get(self, id)))
    }
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
        page: &'a PageRequest,
    ) -> BoxFuture<'a, Result<SessionPage, StoreError>> {
        Box::pin(timed(
            "list_by_user",
            SessionStore::list_by_user(self, user_id, page),
        ))
    }
    fn update<'a>(
        &'a self,
        update: &'a SessionUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, StoreError>> {
        Box::pin(timed("update", SessionStore::update(self, update)))
    }
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(timed("revoke", SessionStore::revoke(self, id)))
    }
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(timed(
            "revoke_all",
            SessionStore::revoke_all(self, user_id, except),
        ))
    }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        SessionStore::revocation_feed(self)
    }
    fn is_shared(&self) -> bool {
        SessionStore::is_shared(self)
    }
}
