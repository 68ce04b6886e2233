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
mod rows;
mod schema;
mod sessions;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use time::OffsetDateTime;

pub use self::builder::PostgresStoreBuilder;
use self::builder::Source;
use self::error::{bounded, connection_broke, map_err};
use self::feed::PostgresFeed;
use self::schema::Sql;
use super::StoreError;
#[cfg(doc)]
use super::{RevocationFeed, SessionLimit, SessionStore};
#[cfg(doc)]
use crate::{data::session::Session, store::RevocationEvent};

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
