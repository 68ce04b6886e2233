//! Where sessions live: the [`SessionStore`] trait and its implementations.
//!
//! A store keeps sessions indexed three ways: by the SHA-256 of the opaque token (how requests
//! find them), by session id (how revocation and listing name them), and by user (how "all my
//! devices" and "sign out everywhere" find them). It never sees a token itself.
//!
//! The trait is deliberately small and depends on nothing HTTP: a store crate needs only this
//! module. Run [`conformance`] against your implementation (feature `test-util`).

#[cfg(feature = "test-util")]
pub mod conformance;
mod feed;
mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(feature = "sqlite")]
pub mod sqlite;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

#[cfg(feature = "postgres")]
pub use self::postgres::{PostgresStore, PostgresStoreBuilder};
#[cfg(feature = "redis")]
pub use self::redis::{RedisStore, RedisStoreBuilder};
#[cfg(feature = "sqlite")]
pub use self::sqlite::{SqliteStore, SqliteStoreBuilder};
pub use feed::{FeedBatch, FeedCursor, RevocationFeed};
pub use memory::MemoryStore;

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
/// conformance suite uses the system clock) (the manager checks again, but a store should also let expired
/// sessions go so that its memory is bounded by live sessions).
///
/// # Example
///
/// A complete (if simple) store; `examples/custom_store.rs` has a fuller one.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use tower_session_jwt::store::{SessionRecord, SessionStore, StoreError};
/// use tower_session_jwt::{Session, SessionId, TokenHash};
///
/// #[derive(Default)]
/// struct VecStore(Mutex<Vec<SessionRecord>>);
///
/// impl VecStore {
///     fn live(&self, keep: impl Fn(&SessionRecord) -> bool) -> Vec<Session> {
///         let now = time::OffsetDateTime::now_utc();
///         let records = self.0.lock().unwrap();
///         records.iter().filter(|r| r.session.is_live_at(now) && keep(r))
///             .map(|r| r.session.clone()).collect()
///     }
/// }
///
/// impl SessionStore for VecStore {
///     async fn create(&self, record: SessionRecord) -> Result<(), StoreError> {
///         self.0.lock().unwrap().push(record);
///         Ok(())
///     }
///     async fn find_by_token(&self, hash: &TokenHash) -> Result<Option<Session>, StoreError> {
///         Ok(self.live(|r| r.token_hash == *hash).pop())
///     }
///     async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
///         Ok(self.live(|r| r.session.session_id == *id).pop())
///     }
///     async fn list_by_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
///         Ok(self.live(|r| r.session.user_id == user_id))
///     }
///     async fn update(&self, session: &Session) -> Result<bool, StoreError> {
///         let mut records = self.0.lock().unwrap();
///         let now = time::OffsetDateTime::now_utc();
///         match records.iter_mut().find(|r| r.session.session_id == session.session_id
///             && r.session.is_live_at(now)) {
///             Some(r) => { r.session = session.clone(); Ok(true) }
///             None => Ok(false),
///         }
///     }
///     async fn revoke(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
///         let now = time::OffsetDateTime::now_utc();
///         let mut records = self.0.lock().unwrap();
///         let found = records.iter().position(|r| r.session.session_id == *id);
///         Ok(found.map(|i| records.remove(i).session).filter(|s| s.is_live_at(now)))
///     }
///     async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
///         let now = time::OffsetDateTime::now_utc();
///         let mut records = self.0.lock().unwrap();
///         let mut gone = Vec::new();
///         records.retain(|r| {
///             let mine = r.session.user_id == user_id;
///             if mine && r.session.is_live_at(now) { gone.push(r.session.session_id.clone()); }
///             !mine
///         });
///         Ok(gone)
///     }
/// }
/// ```
pub trait SessionStore: Send + Sync + 'static {
    /// Stores a new session. Its id and token hash are fresh random values.
    fn create(&self, record: SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send;

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

    /// All live sessions of a user, in any order.
    fn list_by_user(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send;

    /// Replaces a live session's record (same id; new `last_accessed_at` / `expires_at`).
    ///
    /// Returns `false`, and stores nothing, when the session no longer exists: an update must
    /// never bring a revoked or expired session back.
    fn update(&self, session: &Session) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Deletes a session and returns it, or `None` if there was no live session with that id.
    fn revoke(
        &self,
        session_id: &SessionId,
    ) -> impl Future<Output = Result<Option<Session>, StoreError>> + Send;

    /// Deletes every session of a user and returns the ids of the live ones deleted.
    fn revoke_all(
        &self,
        user_id: &str,
    ) -> impl Future<Output = Result<Vec<SessionId>, StoreError>> + Send;

    /// The store's revocation feed, shared by every instance that uses the store, or `None`.
    ///
    /// A store with a feed records every `revoke` and `revoke_all` in it, atomically with the
    /// deletion, and keeps the [feed contract](RevocationFeed). Each
    /// [`Sessions`](crate::Sessions) reads it in the background, so that JWTs of sessions revoked
    /// on another instance fail here too.
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
    fn create(&self, record: SessionRecord) -> impl Future<Output = Result<(), StoreError>> + Send {
        S::create(self, record)
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
    ) -> impl Future<Output = Result<Vec<Session>, StoreError>> + Send {
        S::list_by_user(self, user_id)
    }
    fn update(&self, session: &Session) -> impl Future<Output = Result<bool, StoreError>> + Send {
        S::update(self, session)
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
    ) -> impl Future<Output = Result<Vec<SessionId>, StoreError>> + Send {
        S::revoke_all(self, user_id)
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
    fn create(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), StoreError>>;
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>>;
    fn update<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<bool, StoreError>>;
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>>;
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>>;
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>>;
    fn is_shared(&self) -> bool;
}

impl<S: SessionStore> DynStore for S {
    fn create(&self, record: SessionRecord) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(SessionStore::create(self, record))
    }
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(SessionStore::find_by_token(self, token_hash))
    }
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(SessionStore::get(self, id))
    }
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<Session>, StoreError>> {
        Box::pin(SessionStore::list_by_user(self, user_id))
    }
    fn update<'a>(&'a self, session: &'a Session) -> BoxFuture<'a, Result<bool, StoreError>> {
        Box::pin(SessionStore::update(self, session))
    }
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(SessionStore::revoke(self, id))
    }
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(SessionStore::revoke_all(self, user_id))
    }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        SessionStore::revocation_feed(self)
    }
    fn is_shared(&self) -> bool {
        SessionStore::is_shared(self)
    }
}
