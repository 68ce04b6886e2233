//! Configuring and opening a [`SqliteStore`].

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::BoxFuture;
use sqlx::pool::PoolConnectionMetadata;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteConnection, SqlitePoolOptions, SqliteSynchronous,
    SqliteTransactionManager,
};
use sqlx::{Connection, SqlitePool, TransactionManager};
use time::OffsetDateTime;
use tokio::sync::Notify;

use super::error::{is_busy, map_err};
use super::feed::SqliteFeed;
use super::{Inner, SqliteStore, schema, unix_ms};
use crate::store::StoreError;
use crate::store::sqlx_common::{DEFAULT_FEED_RETENTION, in_batches};

/// Default interval between feed polls while a reader waits: short enough that an older JWT
/// fails in another process within tens of milliseconds, while an idle instance's polls (one
/// read transaction on the primary key each) stay a small fraction of a core.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_millis(20);
/// Default interval between background purges.
const DEFAULT_PURGE_INTERVAL: Duration = Duration::from_secs(60);
/// Default rows removed per purge transaction.
const DEFAULT_PURGE_BATCH: u32 = 500;
/// Default time a statement waits for another connection's lock.
const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(2);
/// Default pool size.
const DEFAULT_MAX_CONNECTIONS: u32 = 4;
/// Most purge transactions one background pass runs, per table.
const MAX_BATCHES_PER_PASS: usize = 64;

/// Where the database is.
#[derive(Clone)]
enum Target {
    Path(PathBuf),
    Url(String),
}

/// Configures and opens a [`SqliteStore`]; from [`SqliteStore::builder`] or
/// [`SqliteStore::builder_url`].
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use tower_session_jwt::store::sqlite::SqliteStore;
///
/// let path = std::env::temp_dir().join(format!("tsj-doc-builder-{}.db", std::process::id()));
/// let store = SqliteStore::builder(&path)
///     .max_connections(8)
///     .busy_timeout(Duration::from_secs(1))
///     .feed_retention(Duration::from_secs(30 * 60))
///     .poll_interval(Duration::from_millis(100))
///     .build()
///     .await
///     .unwrap();
/// # drop(store);
/// # for suffix in ["", "-wal", "-shm"] {
/// #     let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
/// # }
/// # });
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
#[derive(Clone)]
pub struct SqliteStoreBuilder {
    target: Target,
    max_connections: u32,
    busy_timeout: Duration,
    retention: Duration,
    poll_interval: Duration,
    purge_interval: Duration,
    purge_batch: u32,
    full_sync: bool,
}

impl fmt::Debug for SqliteStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("SqliteStoreBuilder");
        match &self.target {
            Target::Path(path) => d.field("path", path),
            // A URL may carry options that are nobody's business in a log.
            Target::Url(_) => d.field("url", &"<redacted>"),
        };
        d.field("max_connections", &self.max_connections)
            .field("busy_timeout", &self.busy_timeout)
            .field("feed_retention", &self.retention)
            .field("poll_interval", &self.poll_interval)
            .field("purge_interval", &self.purge_interval)
            .field("purge_batch", &self.purge_batch)
            .field("full_sync", &self.full_sync)
            .finish()
    }
}

impl SqliteStoreBuilder {
    pub(super) fn new_path(path: &Path) -> Self {
        Self::new(Target::Path(path.to_owned()))
    }

    pub(super) fn new_url(url: &str) -> Self {
        Self::new(Target::Url(url.to_owned()))
    }

    fn new(target: Target) -> Self {
        Self {
            target,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
            retention: DEFAULT_FEED_RETENTION,
            poll_interval: DEFAULT_POLL_INTERVAL,
            purge_interval: DEFAULT_PURGE_INTERVAL,
            purge_batch: DEFAULT_PURGE_BATCH,
            full_sync: false,
        }
    }

    /// How many connections the pool keeps at most (default 4, at least 1). SQLite lets any
    /// number of readers work at once but one writer at a time. An in-memory database always
    /// gets exactly one connection (each connection would otherwise see its own database).
    pub fn max_connections(mut self, n: u32) -> Self {
        self.max_connections = n.max(1);
        self
    }

    /// How long a statement waits for a lock held by another connection or process (default
    /// 2 s), and how long a call waits for a free connection. Past it the call fails with
    /// [`StoreError::Unavailable`].
    pub fn busy_timeout(mut self, timeout: Duration) -> Self {
        self.busy_timeout = timeout;
        self
    }

    /// How long revocation events stay in the feed (default 15 minutes). It must be at least the
    /// session JWT lifetime plus leeway, or [`Sessions`](crate::Sessions) refuses the store.
    pub fn feed_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often a waiting feed reader looks for events appended by other processes (default
    /// 20 ms, at least 1 ms). This adds up to one interval to how long a revocation made in
    /// another process takes to reach this one's JWT checks; revocations made through this
    /// store, or a clone of it, wake its readers at once. Each poll is one small read (a search
    /// on the primary key), so a longer interval mostly saves idle CPU. A read never waits
    /// longer than the [`Sessions`](crate::Sessions) reading it asks (a quarter of its
    /// [staleness bound](crate::SessionsBuilder::feed_staleness)), so that bounds the interval
    /// too.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How often the background task removes expired sessions and trims the feed (default
    /// 60 s). `Duration::ZERO` turns it off: call [`SqliteStore::purge_expired`] and
    /// [`SqliteStore::trim_feed`] yourself then. Expired sessions are never returned either way;
    /// purging only reclaims their space.
    pub fn purge_interval(mut self, interval: Duration) -> Self {
        self.purge_interval = interval;
        self
    }

    /// How many rows one purge transaction removes at most (default 500, at least 1), so that
    /// a purge never holds the write lock for long. A background pass runs at most 64 such
    /// transactions per table, yielding between them.
    pub fn purge_batch(mut self, rows: u32) -> Self {
        self.purge_batch = rows.max(1);
        self
    }

    /// Whether every commit waits until the file is synced to disk (`PRAGMA synchronous =
    /// FULL`; default off: `NORMAL`). With `NORMAL` in WAL mode a commit survives a crash of the
    /// process but the last commits before a power loss or an operating system crash may be
    /// lost, a revocation among them: its session would be live again after the reboot.
    pub fn full_sync(mut self, on: bool) -> Self {
        self.full_sync = on;
        self
    }

    fn connect_options(&self) -> Result<(SqliteConnectOptions, bool), StoreError> {
        let (options, in_memory) = match &self.target {
            Target::Path(path) => (
                SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true),
                false,
            ),
            Target::Url(url) => {
                if !url.starts_with("sqlite:") {
                    return Err(StoreError::Backend(
                        "an SQLite URL begins with `sqlite:`".into(),
                    ));
                }
                let options = SqliteConnectOptions::from_str(url).map_err(|e| {
                    // The message of a parse error may quote the URL.
                    StoreError::Backend(format!("malformed SQLite URL ({})", error_kind(&e)).into())
                })?;
                let in_memory = url.contains(":memory:") || url.contains("mode=memory");
                (options, in_memory)
            }
        };
        let synchronous = if self.full_sync {
            SqliteSynchronous::Full
        } else {
            SqliteSynchronous::Normal
        };
        // No `journal_mode` here: sqlx would set it on every new connection, and switching a
        // new file to WAL fails at once, without waiting, while another process is opening it
        // too. `build` switches it once, retrying (see `enable_wal`); WAL then stays in the file.
        let options = options
            .busy_timeout(self.busy_timeout)
            .synchronous(synchronous);
        Ok((options, in_memory))
    }

    /// Opens the database (creating the file for [`SqliteStore::builder`]), brings its schema
    /// up to date and starts the background purge. Needs a Tokio runtime.
    ///
    /// Fails with [`StoreError::Unavailable`] when the file cannot be opened or stays locked
    /// past the busy timeout, and with [`StoreError::Backend`] for a malformed URL or a schema
    /// newer than this crate knows.
    pub async fn build(self) -> Result<SqliteStore, StoreError> {
        let (options, in_memory) = self.connect_options()?;
        let mut pool = SqlitePoolOptions::new()
            .max_connections(if in_memory { 1 } else { self.max_connections })
            .acquire_timeout(self.busy_timeout.max(Duration::from_millis(100)))
            .after_release(end_left_over_transaction);
        if in_memory {
            // An in-memory database lives as long as one connection to it: keep that one.
            pool = pool
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
        }
        let pool = pool.connect_with(options).await.map_err(map_err)?;
        if !in_memory {
            enable_wal(&pool, self.busy_timeout).await?;
        }
        let now = OffsetDateTime::now_utc();
        schema::migrate(&pool, &new_epoch()?, unix_ms(now)).await?;
        let store = SqliteStore {
            inner: Arc::new(Inner {
                feed: Arc::new(SqliteFeed {
                    pool: pool.clone(),
                    retention: self.retention,
                    poll_interval: self.poll_interval,
                    appended: Arc::new(Notify::new()),
                    poller: (!in_memory).then(Default::default),
                }),
                pool,
                purge_batch: self.purge_batch,
                in_memory,
                path: match &self.target {
                    Target::Path(path) => Some(path.clone()),
                    Target::Url(_) => None,
                },
            }),
        };
        if !self.purge_interval.is_zero() {
            tokio::spawn(purge_in_background(
                Arc::downgrade(&store.inner),
                self.purge_interval,
            ));
        }
        Ok(store)
    }
}

/// Rolls back a transaction a connection comes back to the pool inside of, before the pool hands
/// it out again. A call cancelled while its `BEGIN IMMEDIATE` was under way (its client went
/// away) can leave the connection inside a transaction nothing will end, holding the file's
/// write lock: every other writer would then wait out the busy timeout and fail, and the next
/// user of the connection could not begin. A transaction dropped the usual way has its rollback
/// queued already, and the first rollback here finds it done. Costs one atomic read otherwise.
fn end_left_over_transaction(
    conn: &mut SqliteConnection,
    _: PoolConnectionMetadata,
) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(async move {
        // Each rollback ends one level; the store never nests, so one or two do it. A
        // connection that stays inside a transaction is closed, which ends it too.
        for _ in 0..2 {
            if !conn.is_in_transaction() {
                return Ok(true);
            }
            SqliteTransactionManager::rollback(conn).await?;
        }
        Ok(!conn.is_in_transaction())
    })
}

/// Longest pause between two attempts to switch the file to WAL.
const MAX_WAL_PAUSE: Duration = Duration::from_millis(50);

/// Puts the database file in WAL mode (a no-op once it is), retrying for up to `patience`
/// while another connection holds it.
///
/// Changing the journal mode needs the file to itself, and SQLite reports `SQLITE_BUSY` at once
/// rather than waiting through the busy timeout, so processes that open a new file together
/// would otherwise fail at random. The mode is recorded in the file: connections opened later
/// use WAL without asking.
async fn enable_wal(pool: &SqlitePool, patience: Duration) -> Result<(), StoreError> {
    let deadline = tokio::time::Instant::now() + patience.max(Duration::from_millis(100));
    let mut pause = Duration::from_millis(1);
    loop {
        match sqlx::query_scalar::<_, String>("PRAGMA journal_mode = WAL")
            .fetch_one(pool)
            .await
        {
            Ok(mode) => {
                if !mode.eq_ignore_ascii_case("wal") {
                    // The file system offers no shared memory (a network file system, say):
                    // the store still works, with readers and the writer blocking each other.
                    tracing::warn!(%mode, "the SQLite session database could not use WAL");
                }
                return Ok(());
            }
            Err(error) if is_busy(&error) && tokio::time::Instant::now() + pause < deadline => {
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(MAX_WAL_PAUSE);
            }
            Err(error) => return Err(map_err(error)),
        }
    }
}

/// The kind of an sqlx error, without its message.
fn error_kind(error: &sqlx::Error) -> &'static str {
    match error {
        sqlx::Error::Configuration(_) => "configuration",
        _ => "invalid",
    }
}

/// A random name for a new feed (16 hex digits).
fn new_epoch() -> Result<String, StoreError> {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).map_err(|e| {
        StoreError::Backend(format!("no randomness for the feed epoch: {e}").into())
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Every `interval`, until the store is dropped: removes expired sessions, then trims the feed,
/// each in bounded transactions (see [`SqliteStoreBuilder::purge_batch`]).
async fn purge_in_background(inner: Weak<Inner>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let store = SqliteStore { inner };
        let batch = u64::from(store.inner.purge_batch);
        let purged = in_batches(MAX_BATCHES_PER_PASS, batch, || store.purge_expired()).await;
        if let Err(error) = purged {
            tracing::warn!(%error, "purging expired sessions failed");
        }
        let trimmed = in_batches(MAX_BATCHES_PER_PASS, batch, || store.trim_feed()).await;
        if let Err(error) = trimmed {
            tracing::warn!(%error, "trimming the revocation feed failed");
        }
    }
}
