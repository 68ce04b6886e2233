//! The SQLite store (feature `sqlite`): sessions in one database file that survives restarts
//! and that several processes on one host may share, with a revocation feed.
//!
//! # Schema
//!
//! The store creates and migrates its tables itself when it opens a database (see
//! [migrations](#migrations)); every name begins with `tsj_`, so the file may hold an
//! application's own tables too.
//!
//! | table | columns | notes |
//! |---|---|---|
//! | `tsj_sessions` | `session_id` TEXT primary key, `token_hash` BLOB unique (the SHA-256 of the token, 32 bytes), `user_id` TEXT, `expires_ms` INTEGER indexed (`expires_at`, Unix ms), `session` TEXT (the [`Session`] as JSON), `started_ms` INTEGER (`started_at`, Unix ms, the listing's sort key) | one row per session; index `(user_id, started_ms DESC, session_id DESC)` |
//! | `tsj_revocations` | `id` INTEGER PRIMARY KEY AUTOINCREMENT, `created_ms` INTEGER (Unix ms), `event` TEXT (a [`RevocationEvent`] as JSON) | the revocation feed |
//! | `tsj_feed_meta` | `epoch` TEXT (a random name of this feed), `started_ms`, `trimmed_id`, `trimmed_ms` | one row: when the feed began and how far it was trimmed |
//! | `tsj_schema_version` | `version`, `applied_ms` | the migrations applied |
//!
//! The database runs in WAL mode (readers never block the writer nor each other) with a busy
//! timeout (a writer waits for another process's write lock instead of failing at once) and
//! `synchronous = NORMAL` (see [`SqliteStoreBuilder::full_sync`] for what that risks). Opening
//! a file switches it to WAL; SQLite refuses that switch at once, without waiting, while another
//! process is opening the file too, so the store retries it for up to the busy timeout, and
//! processes that start together all open. A file
//! shared by several processes must live on a local file system of their common host: WAL needs
//! shared memory, which network file systems do not provide. An in-memory database
//! (`sqlite::memory:`) is private to its store, uses one connection and is not
//! [shared](SessionStore::is_shared).
//!
//! # Migrations
//!
//! The schema is a list of numbered SQL migrations compiled into the crate. Opening a database
//! applies those it lacks, recorded in `tsj_schema_version`, in one `BEGIN IMMEDIATE`
//! transaction: processes that start together apply each exactly once, and a database migrated
//! further than this version of the crate knows is refused with [`StoreError::Backend`].
//!
//! # Atomicity
//!
//! SQLite has one writer at a time. Every write that reads before it writes (`create` with a
//! session limit, `update`, `revoke`, `revoke_all`, trimming) begins with `BEGIN IMMEDIATE`, which takes the write lock
//! up front (waiting up to the busy timeout), so no other connection or process can change the
//! rows in between, and no transaction can fail half-way for having read a stale snapshot.
//!
//! * `create` counts the user's live sessions, deletes the oldest ones the [`SessionLimit`]
//!   evicts (appending a revocation event for each) or stores nothing, and inserts, in one
//!   transaction: concurrent logins of one user, in any process, take turns, so none of them
//!   sees room that another has just taken. Without a limit it is one `INSERT`. A duplicate
//!   session id or token hash is refused, never overwritten.
//! * `update` reads the row, checks that it is still live, belongs to the same user and is at
//!   the version the update starts from, rewrites it (with the new token hash, if any) and
//!   appends the event that refuses older JWTs (if asked), in one transaction: of two updates from
//!   one version, the second finds the first's version and is [`UpdateOutcome::Stale`]; an update
//!   racing a revocation either happens before it (and is revoked with it) or finds nothing, so
//!   it never brings a revoked session back.
//! * `revoke` / `revoke_all` delete the rows **and** append their events to `tsj_revocations` in
//!   one transaction (one session event per live session deleted and, without an exception, one
//!   user event): no reader, in any process, sees the deletion without the event or the event
//!   without the deletion.
//!
//! `list_by_user` reads one page: the user's live sessions after the cursor, newest first by
//! `(started_ms, session_id)`, walked in the order of the index on `(user_id, started_ms DESC,
//! session_id DESC)` and stopped one row past the page, so a page costs the same whatever the
//! number of sessions the user holds.
//!
//! Expiry is judged on the system clock, the one that sets a session's `expires_at`: a row
//! whose `expires_ms` has passed is never read back, and every session read is checked against
//! its exact `expires_at` again. Event times (`before`) are taken from the same clock once the
//! write lock is held, so a `revoke_all` cuts off every session committed before it.
//!
//! # The revocation feed
//!
//! [`SessionStore::revocation_feed`] reads `tsj_revocations` and keeps the [feed
//! contract](RevocationFeed):
//!
//! 1. **Order.** Appends hold the one write lock, so ids are allocated in commit order and a
//!    reader that sees an id sees every smaller one. A read returns up to 1000 events after its
//!    cursor in id order, from one snapshot of the file.
//! 2. **Caught up** exactly when no event follows the batch in that snapshot.
//! 3. **No silent gaps.** Trimming deletes the oldest events in id order and records the highest
//!    id it deleted, in the same transaction; a cursor below it is answered with
//!    [`StoreError::FeedCursorLost`]. Cursors are `<epoch>:<id>`, the epoch a random name given
//!    to the feed with its database: a cursor from another database (the file was replaced), or
//!    beyond the highest id the database ever issued (it was restored from an older copy), is
//!    lost too.
//! 4. **Atomic** with the deletion it reports (above).
//! 5. **Retention**: events are kept at least [`SqliteStoreBuilder::feed_retention`] (default
//!    15 minutes); the background purge trims older ones. The horizon is the latest of now minus
//!    the retention, the instant the feed began and the latest event trimmed (by any process,
//!    whatever its retention).
//! 6. **Bounded waiting.** A read with nothing to return polls the table every
//!    [`SqliteStoreBuilder::poll_interval`] (default 20 ms) until its wait (at most 30 s)
//!    elapses. A revocation made through the same store, or a clone, wakes its readers at once.
//!    Each poll is one read transaction of two searches on primary keys (the bookkeeping row,
//!    then the events after the cursor).
//!
//! **Staleness bound.** A revocation made in *another* process reaches this process's JWT
//! checks at most one poll interval (plus one small read) after it commits; one made through
//! this store reaches them at once. The opaque token of a revoked session fails everywhere as
//! soon as the revocation commits, since it is looked up in the file on every request.
//!
//! # Purging
//!
//! A background task (every [`SqliteStoreBuilder::purge_interval`], default 60 s) deletes
//! expired sessions and trims the feed in transactions of at most
//! [`SqliteStoreBuilder::purge_batch`] rows (default 500), so that it never holds the write lock
//! for long. [`SqliteStore::purge_expired`] and [`SqliteStore::trim_feed`] run one such
//! transaction on demand.
//!
//! # Errors
//!
//! No connection within the busy timeout, an I/O failure, or a database still locked after the
//! busy timeout is [`StoreError::Unavailable`]; other database errors are
//! [`StoreError::Backend`]; a damaged file, a row or an event that cannot be decoded is
//! [`StoreError::Corrupt`] (never skipped, never a panic).

mod builder;
mod error;
mod feed;
mod schema;
mod sessions;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::SqlitePool;
use time::OffsetDateTime;

pub use self::builder::SqliteStoreBuilder;
use self::error::map_err;
use self::feed::SqliteFeed;
use super::StoreError;
#[cfg(doc)]
use super::{RevocationFeed, SessionLimit, SessionStore, UpdateOutcome};
#[cfg(doc)]
use crate::{data::session::Session, store::RevocationEvent};

/// A [`SessionStore`] in an SQLite database, with a revocation feed; see the [module
/// documentation](self) for the schema, the atomicity of every write and the feed.
///
/// Sessions survive a restart, and several processes on one host may open the same file:
/// revocations reach every one of them through the feed within one
/// [poll interval](SqliteStoreBuilder::poll_interval) (default 20 ms). Clones share the same
/// connection pool and feed.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::{NewSession, Sessions, SigningKey};
/// use tower_session_jwt::store::sqlite::SqliteStore;
///
/// // A file path in production (`SqliteStore::open("sessions.db")`); in memory here.
/// let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
/// let sessions = Sessions::builder()
///     .store(store.clone())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let login = sessions.create("user-1", NewSession::new()).await.unwrap();
/// sessions.authenticate_token(login.token.expose()).await.unwrap();
///
/// sessions.revoke(&login.session.session_id).await.unwrap();
/// assert!(sessions.authenticate_token(login.token.expose()).await.is_err());
/// assert!(sessions.authenticate_jwt(login.jwt.expose()).await.is_err());
/// # });
/// ```
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: SqlitePool,
    feed: Arc<SqliteFeed>,
    purge_batch: u32,
    in_memory: bool,
    path: Option<PathBuf>,
}

impl fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .field("in_memory", &self.inner.in_memory)
            .field("feed", &self.inner.feed)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating it if needed) the database file at `path` with the default settings;
    /// see [`SqliteStoreBuilder`].
    pub async fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::builder(path).build().await
    }

    /// Opens the database named by an sqlx SQLite URL with the default settings, e.g.
    /// `sqlite://sessions.db?mode=rwc` (`mode=rwc` creates a missing file) or `sqlite::memory:`
    /// (a database private to this store, gone when it is dropped).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder_url(url).build().await
    }

    /// A builder for a store in the file at `path` (created if missing).
    pub fn builder(path: impl AsRef<Path>) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new_path(path.as_ref())
    }

    /// A builder for a store in the database named by an sqlx SQLite URL; see
    /// [`connect`](Self::connect).
    pub fn builder_url(url: &str) -> SqliteStoreBuilder {
        SqliteStoreBuilder::new_url(url)
    }

    /// Deletes expired sessions in one transaction of at most
    /// [`purge_batch`](SqliteStoreBuilder::purge_batch) rows, oldest expiry first, and returns
    /// how many it deleted. The background purge calls this; call it yourself when that is off.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        let now_ms = unix_ms(OffsetDateTime::now_utc());
        let done = sqlx::query(
            "DELETE FROM tsj_sessions WHERE rowid IN (
                 SELECT rowid FROM tsj_sessions WHERE expires_ms < ?1 ORDER BY expires_ms LIMIT ?2
             )",
        )
        .bind(now_ms)
        .bind(i64::from(self.inner.purge_batch))
        .execute(&self.inner.pool)
        .await
        .map_err(map_err)?;
        Ok(done.rows_affected())
    }

    /// Deletes feed events older than the retention in one transaction of at most
    /// [`purge_batch`](SqliteStoreBuilder::purge_batch) events, oldest first, records how far
    /// the feed was trimmed, and returns how many it deleted. The background purge calls this.
    pub async fn trim_feed(&self) -> Result<u64, StoreError> {
        self.inner.feed.trim(self.inner.purge_batch).await
    }

    fn pool(&self) -> &SqlitePool {
        &self.inner.pool
    }

    /// Begins a transaction holding the write lock.
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, StoreError> {
        self.pool()
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)
    }
}

/// Unix milliseconds of `t`, rounded down (saturating far outside any session's range).
pub(super) fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1_000_000)).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn unix_ms_rounds_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_500_999_999).unwrap();
        assert_eq!(unix_ms(t), 1_500);
        let before_epoch = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(unix_ms(before_epoch), -1);
        assert!(unix_ms(t + Duration::from_millis(1)) > unix_ms(t));
    }
}
