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

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sqlx::sqlite::SqliteRow;
use sqlx::{Row, SqlitePool};
use time::OffsetDateTime;

pub use self::builder::SqliteStoreBuilder;
use self::error::{corrupt, decode_session, encode_json, is_unique_violation, map_err};
use self::feed::{SqliteFeed, append};
use super::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome, started_ms,
};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;

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

/// How many live sessions a user holds, for the session limit. Live to the millisecond: a
/// session in its last millisecond neither counts nor is listed (it is gone in a moment).
const COUNT_LIVE: &str = "SELECT count(*) FROM tsj_sessions WHERE user_id = ?1 AND expires_ms > ?2";

/// Deletes the user's `?3` oldest live sessions (by `started_ms`, then id) and names them.
const EVICT_OLDEST: &str = "DELETE FROM tsj_sessions WHERE rowid IN (
         SELECT rowid FROM tsj_sessions WHERE user_id = ?1 AND expires_ms > ?2
         ORDER BY started_ms, session_id LIMIT ?3
     ) RETURNING session_id, started_ms";

/// The first page of a user's live sessions, newest first, with one row more than the page
/// (it only says that another page follows). Walks `tsj_sessions_user_started` in its order and
/// stops at the limit.
const LIST_FIRST: &str = "SELECT started_ms, session FROM tsj_sessions
     WHERE user_id = ?1 AND expires_ms > ?2
     ORDER BY started_ms DESC, session_id DESC LIMIT ?3";

/// A page after the cursor `(?3, ?4)`: `started_ms <= ?3` starts the index range at the
/// cursor's millisecond, and the rest drops the sessions of that millisecond that were already
/// listed, so no page reads what came before it.
const LIST_AFTER: &str = "SELECT started_ms, session FROM tsj_sessions
     WHERE user_id = ?1 AND expires_ms > ?2
       AND started_ms <= ?3 AND (started_ms < ?3 OR session_id < ?4)
     ORDER BY started_ms DESC, session_id DESC LIMIT ?5";

/// Inserts a new session row; a duplicate id or token hash is an error, never an overwrite.
async fn insert<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    session: &Session,
    token_hash: &TokenHash,
    json: String,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO tsj_sessions (session_id, token_hash, user_id, expires_ms, started_ms, session)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(session.session_id.as_str())
    .bind(token_hash.as_bytes().as_slice())
    .bind(&session.user_id)
    .bind(unix_ms(session.expires_at))
    .bind(started_ms(session))
    .bind(json)
    .execute(executor)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
        // replacing the old session would hand its owner's session to someone else.
        Err(e) if is_unique_violation(&e) => {
            Err(StoreError::Backend("duplicate session id or token".into()))
        }
        Err(e) => Err(map_err(e)),
    }
}

/// A session id read from a row's `session_id` column.
fn id_column(row: &SqliteRow, index: usize) -> Result<SessionId, StoreError> {
    let text: &str = row.try_get(index).map_err(map_err)?;
    SessionId::parse(text).map_err(|_| corrupt("malformed session id in a session row"))
}

impl SessionStore for SqliteStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = encode_json(&session, "session")?;
        if limit.max().is_none() {
            // Nothing to count: one INSERT is atomic on its own.
            insert(self.pool(), &session, &token_hash, json).await?;
            return Ok(CreateOutcome::Created {
                evicted: Vec::new(),
            });
        }
        // The write lock, taken up front, makes the count, the evictions and the insert one
        // step for every connection and process on the file: two logins of one user cannot
        // both see room for one more.
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let now_ms = unix_ms(now);
        let live: i64 = sqlx::query_scalar(COUNT_LIVE)
            .bind(&session.user_id)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let live = usize::try_from(live).map_err(|_| corrupt("negative session count"))?;
        let Ok(evict) = limit.to_evict(live) else {
            return Ok(CreateOutcome::LimitReached);
        };
        let mut evicted = Vec::with_capacity(evict);
        if evict > 0 {
            let rows = sqlx::query(EVICT_OLDEST)
                .bind(&session.user_id)
                .bind(now_ms)
                .bind(i64::try_from(evict).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
            for row in &rows {
                let started: i64 = row.try_get(1).map_err(map_err)?;
                evicted.push((started, id_column(row, 0)?));
            }
            // RETURNING comes in no particular order; callers get the oldest first.
            evicted.sort();
        }
        let evicted: Vec<SessionId> = evicted.into_iter().map(|(_, id)| id).collect();
        insert(&mut *tx, &session, &token_hash, json).await?;
        for id in &evicted {
            append(
                &mut tx,
                &RevocationEvent::session_revoked(id.clone(), now),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if !evicted.is_empty() {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(CreateOutcome::Created { evicted })
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = sqlx::query(
            "SELECT session_id, session FROM tsj_sessions
             WHERE token_hash = ?1 AND expires_ms >= ?2",
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(unix_ms(now))
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let id: &str = row.try_get(0).map_err(map_err)?;
        let session = decode_session(row.try_get(1).map_err(map_err)?, |s| {
            s.session_id.as_str() == id
        })?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let json: Option<String> = sqlx::query_scalar(
            "SELECT session FROM tsj_sessions WHERE session_id = ?1 AND expires_ms >= ?2",
        )
        .bind(session_id.as_str())
        .bind(unix_ms(now))
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        let Some(json) = json else { return Ok(None) };
        let session = decode_session(&json, |s| s.session_id == *session_id)?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let now = OffsetDateTime::now_utc();
        let fetch = i64::from(page.limit) + 1;
        let query = match &page.after {
            None => sqlx::query(LIST_FIRST)
                .bind(user_id)
                .bind(unix_ms(now))
                .bind(fetch),
            Some(cursor) => sqlx::query(LIST_AFTER)
                .bind(user_id)
                .bind(unix_ms(now))
                .bind(cursor.started_ms)
                .bind(cursor.session_id.as_str())
                .bind(fetch),
        };
        let rows = query.fetch_all(self.pool()).await.map_err(map_err)?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in &rows {
            let started: i64 = row.try_get(0).map_err(map_err)?;
            // A record whose start disagrees with its sort key would be listed out of order
            // and break the cursor taken from it.
            let session = decode_session(row.try_get(1).map_err(map_err)?, |s| {
                s.user_id == user_id && started_ms(s) == started
            })?;
            // Always true (`expires_ms > now` in ms), checked on the exact time all the same.
            if session.is_live_at(now) {
                sessions.push(session);
            }
        }
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let session = &update.session;
        let json = encode_json(session, "session")?;
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT session FROM tsj_sessions WHERE session_id = ?1")
                .bind(session.session_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(stored) = stored else {
            return Ok(UpdateOutcome::Gone);
        };
        let stored = decode_session(&stored, |s| s.session_id == session.session_id)?;
        if !stored.is_live_at(now) {
            return Ok(UpdateOutcome::Gone);
        }
        // The start is the listing's sort key, stored beside the record: it stays put too.
        if stored.user_id != session.user_id || started_ms(&stored) != started_ms(session) {
            return Err(StoreError::Backend(
                "an update may not move a session to another user or start".into(),
            ));
        }
        // The version is read and rewritten under the write lock: of two updates from one
        // version, the second finds the first's and is stale.
        if stored.version.checked_add(1) != Some(session.version) {
            return Ok(UpdateOutcome::Stale);
        }
        let written = sqlx::query(
            "UPDATE tsj_sessions
             SET expires_ms = ?2, session = ?3, token_hash = coalesce(?4, token_hash)
             WHERE session_id = ?1",
        )
        .bind(session.session_id.as_str())
        .bind(unix_ms(session.expires_at))
        .bind(json)
        .bind(update.token_hash.as_ref().map(|h| h.as_bytes().as_slice()))
        .execute(&mut *tx)
        .await;
        match written {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Backend("duplicate token".into()));
            }
            Err(e) => return Err(map_err(e)),
        }
        if update.refuse_older_jwts {
            append(
                &mut tx,
                &RevocationEvent::jwts_refused(session.session_id.clone(), now, session.version),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if update.refuse_older_jwts {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(UpdateOutcome::Updated)
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let row = sqlx::query(
            "DELETE FROM tsj_sessions WHERE session_id = ?1 RETURNING expires_ms, session",
        )
        .bind(session_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let expires_ms: i64 = row.try_get(0).map_err(map_err)?;
        let json: String = row.try_get(1).map_err(map_err)?;
        let session = decode_session(&json, |s| s.session_id == *session_id);
        // A record that cannot be decoded is still deleted and published (by its column, when
        // it may be live), and then reported, so the caller does not believe nothing happened.
        let live = match &session {
            Ok(session) => session.is_live_at(now),
            Err(_) => expires_ms >= unix_ms(now),
        };
        if live {
            append(
                &mut tx,
                &RevocationEvent::session_revoked(session_id.clone(), now),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if live {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(Some(session?).filter(|_| live))
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.revoke_sessions_of(user_id, except).await
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }

    /// `true` for a database file (other processes may open it), `false` for an in-memory
    /// database, which no other process can reach.
    fn is_shared(&self) -> bool {
        !self.inner.in_memory
    }
}

impl SqliteStore {
    /// `revoke_all`: every session of the user (but `keep`) in one transaction, each live one
    /// with its own session event, and without `keep` one user event as well. The session
    /// events make the revocation exact whatever clock set each `started_at` (a session created
    /// on an instance whose clock runs ahead starts after the user event's cut-off); the user
    /// event cuts off sessions being created elsewhere at this moment (with `keep` it would cut
    /// off the kept session's JWTs too).
    async fn revoke_sessions_of(
        &self,
        user_id: &str,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let rows = sqlx::query(
            "DELETE FROM tsj_sessions WHERE user_id = ?1 AND (?2 IS NULL OR session_id <> ?2)
             RETURNING session_id, expires_ms, session",
        )
        .bind(user_id)
        .bind(keep.map(SessionId::as_str))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut damaged = None;
        for row in &rows {
            let id = id_column(row, 0)?;
            let expires_ms: i64 = row.try_get(1).map_err(map_err)?;
            let json: &str = row.try_get(2).map_err(map_err)?;
            // As in `revoke`: a record that cannot be decoded is deleted and published by its
            // columns, and reported once the revocation is committed.
            let live = match decode_session(json, |s| s.session_id == id && s.user_id == user_id) {
                Ok(session) => session.is_live_at(now),
                Err(e) => {
                    damaged.get_or_insert(e);
                    expires_ms >= unix_ms(now)
                }
            };
            if live {
                append(
                    &mut tx,
                    &RevocationEvent::session_revoked(id.clone(), now),
                    now,
                )
                .await?;
                ids.push(id);
            }
        }
        if keep.is_none() {
            // Published even when nothing was live: a session being created elsewhere at this
            // moment must still be cut off.
            append(&mut tx, &RevocationEvent::user_revoked(user_id, now), now).await?;
        }
        tx.commit().await.map_err(map_err)?;
        if keep.is_none() || !ids.is_empty() {
            self.inner.feed.appended.notify_waiters();
        }
        match damaged {
            Some(error) => Err(error),
            None => Ok(ids),
        }
    }
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
