//! The PostgreSQL store (feature `postgres`): sessions shared by every instance, with a
//! cluster-wide revocation feed.
//!
//! # Schema
//!
//! Everything lives in one schema (default `tower_session_jwt`), created and migrated by the
//! store itself:
//!
//! | table | columns | indexes |
//! |---|---|---|
//! | `sessions` | `id text` (the session id), `token_hash bytea` (SHA-256 of the opaque token), `user_id text`, `expires_at timestamptz`, `session json` (the [`Session`] as JSON), `started_ms bigint` (`started_at` in Unix milliseconds, the listing's sort key), `version bigint` (the record's version) | primary key `id`, unique `token_hash`, `(user_id, started_ms DESC, id COLLATE "C" DESC)`, `expires_at` |
//! | `revocations` | `id bigint` (identity), `created_at timestamptz`, `event json` (a [`RevocationEvent`]) | primary key `id`, `created_at` |
//! | `feed_state` | one row: `epoch bigint` (random, names this log), `trimmed_through bigint` (highest id trimmed), `trimmed_until timestamptz` (newest `created_at` trimmed), `created_at timestamptz` (when the log was made) | |
//! | `schema_migrations` | `version integer`, `description text`, `applied_at timestamptz` | primary key `version` |
//!
//! The session is kept as `json`, not `jsonb`: it is stored verbatim (what is read back is
//! exactly what was written) and is never queried inside; the columns beside it carry what
//! queries need.
//!
//! # Migrations
//!
//! The schema's history is embedded and versioned. On start the store reads the recorded
//! version; when it is behind, one transaction takes an advisory lock derived from the schema
//! name, creates the schema if missing, and applies the missing steps, recording each in
//! `schema_migrations`. Instances that start together therefore migrate one after the other, and
//! all but the first find nothing left to do. A schema recorded at a version newer than this build
//! knows is refused ([`StoreError::Backend`]) rather than guessed at. A schema created
//! beforehand by an administrator is used as it is (the store then needs no right to create
//! schemas, only to create tables in it).
//!
//! # Sessions
//!
//! Every lookup judges expiry on the application's clock (its "now" is a query parameter) in SQL,
//! and again on the decoded session, so an expired session is never returned whatever the
//! database's clock says. `find_by_token`, `get` and `list_by_user` are one `SELECT` each: **one
//! round trip per opaque-token lookup**. A listing page walks the index on `(user_id,
//! started_ms DESC, id COLLATE "C" DESC)` from its cursor and stops one row past the page, so it
//! costs the same however many sessions the user holds; ids compare byte-wise there (`"C"`),
//! as the listing's order and its cursors do, whatever the database's collation.
//!
//! `create` refuses an existing id or token hash (`ON CONFLICT DO NOTHING`, then an error).
//! Without a [`SessionLimit`] it is one `INSERT`. With one, it runs a `READ COMMITTED`
//! transaction that first takes a transaction-scoped advisory lock on the user (two 32-bit keys,
//! from the schema and the user id: a key space apart from the feed's and the migrations'
//! one-key locks), then reads the user's live sessions in a statement of its own (so from a
//! snapshot taken once the lock is held: it sees every creation committed before), and then, in
//! one statement, deletes the oldest ones the limit evicts, inserts the new session and appends a
//! revocation per eviction (under the feed lock, as below), or stores nothing. Logins of one user
//! on several instances thus take turns, and none exceeds the limit; logins of different users
//! do not wait for each other.
//!
//! `update` is one statement: a compare-and-swap that rewrites a live row of the same user and
//! start only if its `version` column is the one the update starts from (with the new token hash,
//! if any), and appends the event refusing older JWTs (if asked) as `revoke` appends its own. When
//! it writes nothing, a second `SELECT` tells a stale update from a gone session. It never brings
//! back a revoked or expired session. Reads check that the record's version is its column's.
//! Expired rows are deleted in the background, in bounded batches.
//!
//! # The revocation feed, and why commit order needs a lock
//!
//! `revoke` and `revoke_all` are each **one statement**, so one transaction, committed when it
//! ends, and one round trip: `DELETE` the session rows, append the [`RevocationEvent`]s to
//! `revocations` (for `revoke_all`, one per live session deleted and the user's), `NOTIFY` the
//! feed's channel. A reader that sees the deletion can see the event,
//! and the other way round. `revoke_all` with an exception (one event per session deleted, made
//! from the ids the deletion answers) and a `create` that evicts are transactions of two
//! statements or more: their events are committed with their deletions all the same, but they
//! hold the feed lock one round trip longer (until their `COMMIT` arrives).
//!
//! Readers page through `revocations` by id: "the events after the last id I read". Ids from a
//! sequence are allocated when a transaction inserts, but become visible when it commits, and
//! transactions do not commit in the order they allocated: a transaction holding id 7 may
//! commit after one holding id 8. A reader that read 8 then resumes "after 8" and never sees 7.
//! So appends are **serialised**: each takes a transaction-scoped advisory lock
//! (`pg_advisory_xact_lock`, key [`PostgresStore::feed_lock_key`], derived from the schema name)
//! before the id is allocated, and holds it until its transaction ends. In the statement, the
//! `INSERT` reads its one row from the step that takes the lock, so the row, and with it the id
//! (the column's default), exists only once the lock is held. The next append cannot allocate an
//! id before this one has committed or rolled back, so ids become visible in the order they were
//! allocated, and "after the last id read" misses nothing. (A transaction's locks are released
//! only after its commit is visible to other transactions.) The lock is taken after the
//! `DELETE`, as the last step before the commit, so it is held for about the commit's WAL flush.
//! Ids may have gaps (an append rolled back), which readers do not mind. The tests hold the lock
//! in a slow transaction while instances revoke concurrently, and check that a blocked revocation
//! has not taken an id and that a reader sees every event once, in order.
//!
//! [`SessionStore::revocation_feed`] reads the table: `read(after, wait)` returns up to 1000
//! events after the cursor (`<epoch>:<id>`) in one statement, which also reads the trim state in
//! the same snapshot. `caught_up` is true when nothing follows the batch; the `horizon` is the
//! latest of now minus the retention, the trim edge (just after the newest event ever trimmed,
//! which another instance with a shorter retention may have moved forward) and when the log was
//! made (a recreated schema knows nothing of revocations before it).
//!
//! Waiting readers are woken by `LISTEN` / `NOTIFY`: a dedicated connection listens on the feed's
//! channel, and the revoking transaction sends the notification, delivered when it commits.
//! Notifications are lossy (a listener that reconnects misses what was sent meanwhile; the
//! listener wakes readers on every reconnection), so the table stays the truth and a waiting
//! reader reads it again every [`PostgresStoreBuilder::poll_interval`] (default 1 s) at the
//! latest, and at the end of every read's wait (a quarter of the
//! [staleness bound](crate::SessionsBuilder::feed_staleness), 250 ms by default), whichever
//! comes first. **Latency bound:** with the listener connected, a revocation reaches another
//! instance within one notification and one read (a few milliseconds on a local network);
//! whatever happens to notifications, within the shorter of the two plus one read.
//!
//! Events are kept for [`PostgresStoreBuilder::feed_retention`] (default 15 minutes): every
//! instance trims the oldest events in the background, in bounded batches, and records in
//! `feed_state`, in the same statement, how far it trimmed. A reader whose cursor is older than
//! that edge gets [`StoreError::FeedCursorLost`], as does one whose cursor names another log
//! (another epoch: the schema was recreated) or an id the log never issued; it never silently
//! skips. An event that cannot be decoded is [`StoreError::Corrupt`], never skipped.
//!
//! Event times (`before`, `created_at`) come from the application's clock, like the sessions'
//! `started_at`, so that `revoke_all` cuts off the sessions started before it; the sessions it
//! deletes are also named one by one, so that one started on an instance whose clock runs ahead
//! is refused too.
//!
//! # Connections, timeouts and errors
//!
//! Queries go through a [`PgPool`] (yours with [`PostgresStore::from_pool`], or one the store
//! opens with [`PostgresStoreBuilder::pool_size`] connections). The feed has connections of its
//! own, opened with the same settings: one that listens, and up to two that read, so that a pool
//! exhausted by the application, or by revocations queued behind a slow one, does not stall it.
//!
//! Pools the store opens do not test connections before handing them out (that would cost a
//! round trip per lookup): a read that meets a connection broken since its last use (the server
//! restarted) retries on another one; a write reports [`StoreError::Unavailable`] and the next
//! one gets a fresh connection. Their connections carry the
//! [statement timeout](PostgresStoreBuilder::statement_timeout), which also bounds how long a
//! revocation waits for the feed lock. Since appends are serialised, the cluster appends one
//! revocation per commit (per WAL flush) at a time: several hundred per second on an ordinary
//! disk, plenty for logouts, slow for revoking a hundred thousand sessions at once.
//!
//! Every call is bounded as a whole by the connect timeout plus the statement timeout (3 s by
//! default), so an unreachable or stalled server yields an error, never a hang. Pool timeouts,
//! I/O errors, refused connections, a server shutting down or in recovery, statement timeouts and
//! serialization or lock failures are [`StoreError::Unavailable`]; other database errors are
//! [`StoreError::Backend`]; a row that cannot be decoded, or that does not match its columns, is
//! [`StoreError::Corrupt`].

mod builder;
mod error;
mod feed;
mod schema;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgRow;
use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;

pub use self::builder::PostgresStoreBuilder;
use self::builder::Source;
use self::error::{bounded, connection_broke, corrupt, map_err};
use self::feed::PostgresFeed;
use self::schema::Sql;
use super::feed::{encode_event, session_event_parts};
use super::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome, started_ms,
};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;

/// A [`SessionStore`] in PostgreSQL, shared by every instance of a service, with a revocation
/// feed. See the [module docs](self) for the schema, the commit-order guarantee and the feed.
///
/// Clones share the same pool and feed. `Debug` output shows the schema and timeouts, never the
/// connection URL.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_session_jwt::{NewSession, Sessions, SigningKey};
/// use tower_session_jwt::store::postgres::PostgresStore;
///
/// let store = PostgresStore::builder("postgres://app@db.internal/app")
///     .schema("sessions")
///     .pool_size(16)
///     .feed_retention(Duration::from_secs(15 * 60))
///     .build()
///     .await?;
/// let sessions = Sessions::builder()
///     .store(store)
///     .signing_key(SigningKey::generate_ed25519()?)
///     .build()?;
/// let login = sessions.create("user-1", NewSession::new()).await?;
/// // Revoking here makes the session's JWT fail on every instance using the same database.
/// sessions.revoke(&login.session.session_id).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct PostgresStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: PgPool,
    sql: Arc<Sql>,
    /// Bound on one call, waiting for a connection included.
    op_timeout: Duration,
    /// How many times a read may retry after meeting a broken connection.
    read_retries: u32,
    feed: Arc<PostgresFeed>,
}

impl fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresStore")
            .field("schema", &self.inner.sql.schema)
            .field("feed_retention", &self.inner.feed.retention)
            .field("op_timeout", &self.inner.op_timeout)
            .finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects with the default settings (schema `tower_session_jwt`, pool of 10, feed
    /// retention 15 minutes, 1 s connect and 2 s statement timeouts) and migrates the schema.
    /// `url` is a PostgreSQL URL such as `postgres://user:password@host:5432/database`.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }

    /// A store over a pool of yours, with the default settings; migrates the schema. The
    /// pool's own settings apply (size, timeouts, `test_before_acquire`: leave it off to keep
    /// lookups at one round trip).
    pub async fn from_pool(pool: PgPool) -> Result<Self, StoreError> {
        Self::builder_with_pool(pool).build().await
    }

    /// A builder for a store on `url`; see [`PostgresStoreBuilder`].
    pub fn builder(url: &str) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(Source::Url(url.to_owned()))
    }

    /// A builder for a store over a pool of yours; see [`PostgresStoreBuilder`].
    pub fn builder_with_pool(pool: PgPool) -> PostgresStoreBuilder {
        PostgresStoreBuilder::new(Source::Pool(pool))
    }

    /// The schema holding the store's tables.
    pub fn schema(&self) -> &str {
        &self.inner.sql.schema
    }

    /// The pool the store queries through (for metrics or administration).
    pub fn pool(&self) -> &PgPool {
        &self.inner.pool
    }

    /// The key of the transaction-scoped advisory lock that serialises appends to this store's
    /// feed (see the [module docs](self)). Anything else that appends to the `revocations` table
    /// must take it (`SELECT pg_advisory_xact_lock(key)`) before inserting, in the same
    /// transaction, or readers may skip its events.
    pub fn feed_lock_key(&self) -> i64 {
        self.inner.sql.feed_lock_key
    }

    /// Trims feed events older than the retention now and returns how many were deleted (at
    /// most 20 000 per call). The store does this in the background on its own.
    pub async fn trim_feed(&self) -> Result<u64, StoreError> {
        let inner = &self.inner;
        feed::trim(
            &inner.pool,
            &inner.sql,
            inner.feed.retention,
            inner.op_timeout,
        )
        .await
    }

    /// Deletes expired sessions now and returns how many were deleted (at most 20 000 per
    /// call). The store does this in the background on its own.
    pub async fn purge_expired(&self) -> Result<u64, StoreError> {
        feed::purge_expired(&self.inner.pool, &self.inner.sql, self.inner.op_timeout).await
    }

    /// Runs a read, retrying when it meets a connection that broke since its last use.
    async fn read<T, F, Fut>(&self, mut attempt: F) -> Result<T, StoreError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, sqlx::Error>>,
    {
        bounded(self.inner.op_timeout, async {
            let mut retries = 0;
            loop {
                match attempt().await {
                    Ok(value) => return Ok(value),
                    Err(e) if retries < self.inner.read_retries && connection_broke(&e) => {
                        retries += 1;
                    }
                    Err(e) => return Err(map_err(e)),
                }
            }
        })
        .await
    }
}

/// Unix microseconds of `t`, rounded down (the resolution of `timestamptz`).
pub(super) fn micros(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos().div_euclid(1000)).unwrap_or(if t.year() > 0 {
        i64::MAX
    } else {
        i64::MIN
    })
}

fn encode(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session)
        .map_err(|e| StoreError::Backend(format!("cannot encode session: {e}").into()))
}

/// A session's version as its `bigint` column.
fn version_column(session: &Session) -> Result<i64, StoreError> {
    i64::try_from(session.version)
        .map_err(|_| StoreError::Backend("session version beyond the column's range".into()))
}

/// Checks the events a statement says it appended.
fn appended(published: i64, expected: usize) -> Result<(), StoreError> {
    if usize::try_from(published).ok() == Some(expected) {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!("revocation recorded {published} feed events, not {expected}").into(),
        ))
    }
}

/// Parses the session ids of rows.
fn parse_ids(ids: Vec<String>) -> Result<Vec<SessionId>, StoreError> {
    ids.into_iter()
        .map(|id| {
            SessionId::parse(&id).map_err(|_| corrupt(format!("malformed session id {id:?}")))
        })
        .collect()
}

/// Decodes an `(id, user_id, session, version, ...)` row, checking that the JSON is the row's
/// session: a record whose version disagrees with its column would make every update of it
/// stale.
fn decode(row: &PgRow) -> Result<Session, StoreError> {
    let id: String = row.try_get(0).map_err(map_err)?;
    let user_id: String = row.try_get(1).map_err(map_err)?;
    let json: String = row.try_get(2).map_err(map_err)?;
    let version: i64 = row.try_get(3).map_err(map_err)?;
    let session: Session = serde_json::from_str(&json).map_err(|e| {
        StoreError::Corrupt(format!("undecodable session record {id:?}: {e}").into())
    })?;
    if session.session_id.as_str() != id
        || session.user_id != user_id
        || u64::try_from(version).ok() != Some(session.version)
    {
        return Err(corrupt(format!(
            "session record {id:?} does not match its row"
        )));
    }
    Ok(session)
}

/// The live sessions among decoded rows (expiry checked again on the exact `expires_at`).
fn live(rows: &[PgRow], now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
    let mut sessions = Vec::with_capacity(rows.len());
    for row in rows {
        let session = decode(row)?;
        if session.is_live_at(now) {
            sessions.push(session);
        }
    }
    Ok(sessions)
}

impl SessionStore for PostgresStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = encode(&session)?;
        let version = version_column(&session)?;
        if limit.max().is_none() {
            // Nothing to count: one INSERT is atomic on its own.
            let done = bounded(self.inner.op_timeout, async {
                sqlx::query(&self.inner.sql.create)
                    .bind(session.session_id.as_str())
                    .bind(&token_hash.as_bytes()[..])
                    .bind(&session.user_id)
                    .bind(micros(session.expires_at))
                    .bind(started_ms(&session))
                    .bind(version)
                    .bind(json)
                    .execute(self.pool())
                    .await
                    .map_err(map_err)
            })
            .await?;
            if done.rows_affected() != 1 {
                return Err(duplicate());
            }
            return Ok(CreateOutcome::Created {
                evicted: Vec::new(),
            });
        }
        let store = self.clone();
        run_detached(async move {
            let sql = &store.inner.sql;
            let now = OffsetDateTime::now_utc();
            let (space, key) = sql.user_lock(&session.user_id);
            bounded(store.inner.op_timeout, async {
                // READ COMMITTED whatever the pool's default: the count must come from a snapshot
                // taken once the user's lock is held.
                let mut tx = store
                    .pool()
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map_err(map_err)?;
                sqlx::query(&sql.lock_user)
                    .bind(space)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let live: Vec<String> = sqlx::query_scalar(&sql.live_ids_oldest_first)
                    .bind(&session.user_id)
                    .bind(micros(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Ok(evict) = limit.to_evict(live.len()) else {
                    return Ok(CreateOutcome::LimitReached);
                };
                let victims: Vec<String> = live.into_iter().take(evict).collect();
                let events = victims
                    .iter()
                    .map(|id| {
                        let id = SessionId::parse(id)
                            .map_err(|_| corrupt(format!("malformed session id {id:?}")))?;
                        encode_event(&RevocationEvent::session_revoked(id, now))
                    })
                    .collect::<Result<Vec<String>, StoreError>>()?;
                let row = sqlx::query(&sql.create_evicting)
                    .bind(session.session_id.as_str())
                    .bind(&token_hash.as_bytes()[..])
                    .bind(&session.user_id)
                    .bind(micros(session.expires_at))
                    .bind(started_ms(&session))
                    .bind(version)
                    .bind(json)
                    .bind(&victims)
                    .bind(&events)
                    .bind(sql.feed_lock_key)
                    .bind(micros(now))
                    .bind(&sql.channel)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let inserted: i64 = row.try_get(0).map_err(map_err)?;
                if inserted != 1 {
                    return Err(duplicate());
                }
                let deleted: Vec<String> = row.try_get(3).map_err(map_err)?;
                appended(row.try_get(1).map_err(map_err)?, deleted.len())?;
                tx.commit().await.map_err(map_err)?;
                // Oldest first; a victim revoked meanwhile by someone else is theirs to report.
                let evicted = victims
                    .into_iter()
                    .filter(|id| deleted.contains(id))
                    .collect();
                Ok(CreateOutcome::Created {
                    evicted: parse_ids(evicted)?,
                })
            })
            .await
        })
        .await
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = self
            .read(|| {
                sqlx::query(&self.inner.sql.find_by_token)
                    .bind(&token_hash.as_bytes()[..])
                    .bind(micros(now))
                    .fetch_optional(self.pool())
            })
            .await?;
        Ok(live(row.as_slice(), now)?.pop())
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = self
            .read(|| {
                sqlx::query(&self.inner.sql.get)
                    .bind(session_id.as_str())
                    .bind(micros(now))
                    .fetch_optional(self.pool())
            })
            .await?;
        Ok(live(row.as_slice(), now)?.pop())
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        let fetch = i64::from(page.limit) + 1;
        let rows = self
            .read(|| match &page.after {
                None => sqlx::query(&sql.list_first)
                    .bind(user_id)
                    .bind(micros(now))
                    .bind(fetch)
                    .fetch_all(self.pool()),
                Some(cursor) => sqlx::query(&sql.list_after)
                    .bind(user_id)
                    .bind(micros(now))
                    .bind(cursor.started_ms)
                    .bind(cursor.session_id.as_str())
                    .bind(fetch)
                    .fetch_all(self.pool()),
            })
            .await?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in &rows {
            let session = decode(row)?;
            let started: i64 = row.try_get(4).map_err(map_err)?;
            // A record whose start disagrees with its sort key would be listed out of order and
            // break the cursor taken from it.
            if session.user_id != user_id || started_ms(&session) != started {
                return Err(corrupt(format!(
                    "session record {:?} does not match its row",
                    session.session_id.as_str()
                )));
            }
            // Rows are live by `expires_at` to the microsecond; checked on the exact time too.
            if session.is_live_at(now) {
                sessions.push(session);
            }
        }
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let session = &update.session;
        let json = encode(session)?;
        let version = version_column(session)?;
        let sql = &self.inner.sql;
        let now = OffsetDateTime::now_utc();
        let event = if update.refuse_older_jwts {
            Some(encode_event(&RevocationEvent::jwts_refused(
                session.session_id.clone(),
                now,
                session.version,
            ))?)
        } else {
            None
        };
        let now = micros(now);
        bounded(self.inner.op_timeout, async {
            let written = sqlx::query(&sql.update)
                .bind(session.session_id.as_str())
                .bind(&session.user_id)
                .bind(json)
                .bind(micros(session.expires_at))
                .bind(now)
                .bind(version)
                .bind(update.token_hash.as_ref().map(|h| &h.as_bytes()[..]))
                .bind(started_ms(session))
                .bind(sql.feed_lock_key)
                .bind(update.refuse_older_jwts)
                .bind(event)
                .bind(&sql.channel)
                .fetch_one(self.pool())
                .await;
            let row = match written {
                Ok(row) => row,
                Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                    return Err(StoreError::Backend("duplicate token".into()));
                }
                Err(e) => return Err(map_err(e)),
            };
            let updated: i64 = row.try_get(0).map_err(map_err)?;
            if updated == 1 {
                appended(
                    row.try_get(1).map_err(map_err)?,
                    usize::from(update.refuse_older_jwts),
                )?;
                return Ok(UpdateOutcome::Updated);
            }
            // Nothing written: gone (revoked, expired, never there), moved to another user or
            // start (refused), or at another version (stale).
            let stored = sqlx::query(&sql.live_row_of)
                .bind(session.session_id.as_str())
                .bind(now)
                .fetch_optional(self.pool())
                .await
                .map_err(map_err)?;
            let Some(stored) = stored else {
                return Ok(UpdateOutcome::Gone);
            };
            let owner: String = stored.try_get(0).map_err(map_err)?;
            let started: i64 = stored.try_get(1).map_err(map_err)?;
            if owner != session.user_id || started != started_ms(session) {
                return Err(StoreError::Backend(
                    "an update may not move a session to another user or start".into(),
                ));
            }
            Ok(UpdateOutcome::Stale)
        })
        .await
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        let event = encode_event(&RevocationEvent::session_revoked(session_id.clone(), now))?;
        let row = bounded(self.inner.op_timeout, async {
            sqlx::query(&sql.revoke)
                .bind(session_id.as_str())
                .bind(micros(now))
                .bind(sql.feed_lock_key)
                .bind(event)
                .bind(&sql.channel)
                .fetch_optional(self.pool())
                .await
                .map_err(map_err)
        })
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let live: bool = row.try_get(4).map_err(map_err)?;
        let published: i64 = row.try_get(5).map_err(map_err)?;
        if !live {
            return Ok(None);
        }
        appended(published, 1)?;
        // The row is gone and its event published either way; a record that cannot be decoded
        // is still reported, so the caller does not believe nothing happened.
        decode(&row).map(Some)
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        match except {
            None => self.revoke_user(user_id).await,
            Some(keep) => self.revoke_others(user_id, keep).await,
        }
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }
}

/// A duplicate session id or token hash.
fn duplicate() -> StoreError {
    // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
    // replacing the old session would hand its owner's session to someone else.
    StoreError::Backend("duplicate session id or token".into())
}

impl PostgresStore {
    /// `revoke_all` without an exception: one statement deletes every session of the user and
    /// appends a session event for each live one and one user event. The session events make
    /// the revocation exact whatever clock set each `started_at` (a session created on an
    /// instance whose clock runs ahead starts after the user event's cut-off); the user event
    /// cuts off sessions being created elsewhere at this moment.
    async fn revoke_user(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        // Published even when nothing was live: a session being created elsewhere at this
        // moment must still be cut off.
        let event = encode_event(&RevocationEvent::user_revoked(user_id, now))?;
        let (event_head, event_tail) = session_event_parts(now)?;
        let row = bounded(self.inner.op_timeout, async {
            sqlx::query(&sql.revoke_all)
                .bind(user_id)
                .bind(micros(now))
                .bind(sql.feed_lock_key)
                .bind(event)
                .bind(&sql.channel)
                .bind(event_head)
                .bind(event_tail)
                .fetch_one(self.pool())
                .await
                .map_err(map_err)
        })
        .await?;
        let published: i64 = row.try_get(0).map_err(map_err)?;
        // Deleted all the same; an id that is not a session id got no event and is reported.
        let ids = parse_ids(row.try_get(1).map_err(map_err)?)?;
        appended(published, ids.len() + 1)?;
        Ok(ids)
    }

    /// `revoke_all` with an exception: one transaction deletes every other session of the user
    /// and appends one session event per live one deleted (a user event would cut off the kept
    /// session's JWTs too). The events are made here, from the ids the deletion answers, so
    /// this takes two statements where a revocation takes one.
    async fn revoke_others(
        &self,
        user_id: &str,
        keep: &SessionId,
    ) -> Result<Vec<SessionId>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let store = self.clone();
        let (user_id, keep) = (user_id.to_owned(), keep.clone());
        run_detached(async move {
            let sql = &store.inner.sql;
            bounded(store.inner.op_timeout, async {
                let mut tx = store.pool().begin().await.map_err(map_err)?;
                let rows = sqlx::query(&sql.delete_others)
                    .bind(user_id)
                    .bind(keep.as_str())
                    .bind(micros(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut malformed = None;
                for row in &rows {
                    let live: bool = row.try_get(1).map_err(map_err)?;
                    let id: String = row.try_get(0).map_err(map_err)?;
                    match SessionId::parse(&id) {
                        Ok(id) if live => ids.push(id),
                        Ok(_) => {}
                        // Deleted all the same (nothing can look it up by that id); reported once
                        // the others are revoked.
                        Err(_) => malformed = Some(corrupt(format!("malformed session id {id:?}"))),
                    }
                }
                if !ids.is_empty() {
                    let events = ids
                        .iter()
                        .map(|id| encode_event(&RevocationEvent::session_revoked(id.clone(), now)))
                        .collect::<Result<Vec<String>, StoreError>>()?;
                    let row = sqlx::query(&sql.append_events)
                        .bind(sql.feed_lock_key)
                        .bind(micros(now))
                        .bind(&events)
                        .bind(&sql.channel)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    appended(row.try_get(0).map_err(map_err)?, events.len())?;
                }
                tx.commit().await.map_err(map_err)?;
                match malformed {
                    Some(error) => Err(error),
                    None => Ok(ids),
                }
            })
            .await
        })
        .await
    }
}

/// Runs a transaction to its end on a task of its own, so that the caller's cancellation (a
/// client that hangs up mid-request) cannot stop it inside `BEGIN`: sqlx 0.8 may then hand the
/// connection back to the pool inside a transaction it no longer tracks, and the statements
/// that next use it would sit uncommitted. (Single statements need no such care.)
async fn run_detached<T, F>(work: F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(work).await.unwrap_or_else(|e| {
        Err(StoreError::Backend(
            format!("a PostgreSQL transaction task failed: {e}").into(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn micros_round_down() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(micros(t), 1_700_000_000_123_456);
        let before = OffsetDateTime::from_unix_timestamp_nanos(-1).unwrap();
        assert_eq!(micros(before), -1);
    }
}
