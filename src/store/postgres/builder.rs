//! [`PostgresStoreBuilder`]: the store's settings, its pools, and what `build` sets up.

use std::fmt;
use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

use super::feed::{self, FeedConfig, PostgresFeed};
use super::schema::{self, DEFAULT_SCHEMA, Sql, valid_schema_name};
use super::{Inner, PostgresStore};
use crate::store::StoreError;
use crate::store::sqlx_common::DEFAULT_FEED_RETENTION;

/// Default bound on opening a connection or waiting for a free one.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default server-side bound on one statement.
const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(2);
/// Default floor of the feed: a waiting reader reads the table at least this often.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest poll interval accepted; shorter ones are raised to it.
const MIN_POLL_INTERVAL: Duration = Duration::from_millis(10);
/// Default size of a pool the store opens.
const DEFAULT_POOL_SIZE: u32 = 10;

/// Where the store gets its connections.
pub(super) enum Source {
    Url(String),
    Pool(PgPool),
}

/// Configures a [`PostgresStore`]; from [`PostgresStore::builder`] or
/// [`PostgresStore::builder_with_pool`].
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), tower_session_jwt::StoreError> {
/// use std::time::Duration;
/// use tower_session_jwt::store::postgres::PostgresStore;
///
/// let store = PostgresStore::builder("postgres://app@127.0.0.1/app")
///     .connect_timeout(Duration::from_millis(500))
///     .statement_timeout(Duration::from_secs(1))
///     .poll_interval(Duration::from_millis(500))
///     .build()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct PostgresStoreBuilder {
    source: Source,
    pool_size: u32,
    connect_timeout: Duration,
    statement_timeout: Duration,
    schema: String,
    retention: Duration,
    poll_interval: Duration,
}

impl fmt::Debug for PostgresStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match self.source {
            Source::Url(_) => "url <redacted>",
            Source::Pool(_) => "pool",
        };
        f.debug_struct("PostgresStoreBuilder")
            .field("source", &source)
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("schema", &self.schema)
            .field("feed_retention", &self.retention)
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl PostgresStoreBuilder {
    pub(super) fn new(source: Source) -> Self {
        Self {
            source,
            pool_size: DEFAULT_POOL_SIZE,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            schema: DEFAULT_SCHEMA.to_owned(),
            retention: DEFAULT_FEED_RETENTION,
            poll_interval: DEFAULT_POLL_INTERVAL,
        }
    }

    /// Most connections of the pool the store opens (default 10; at least 1). The feed has up
    /// to three more of its own (one listening, two reading). Ignored with a pool of yours.
    pub fn pool_size(mut self, size: u32) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long opening a connection, or waiting for a free one, may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long one statement may run on the server (default 2 s), set as `statement_timeout`
    /// on the connections the store opens (a pool of yours keeps its own settings). Every call
    /// is also bounded on the client by the connect timeout plus this.
    pub fn statement_timeout(mut self, timeout: Duration) -> Self {
        self.statement_timeout = timeout;
        self
    }

    /// The schema of the store's tables (default `tower_session_jwt`): a lowercase identifier
    /// (`[a-z_][a-z0-9_]*`, at most 63 bytes). Stores with different schemas are independent,
    /// feeds included.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = schema.into();
        self
    }

    /// How long revocation events stay in the feed (default 15 minutes). It must be at least the
    /// session JWT lifetime plus leeway, or [`Sessions`](crate::Sessions) refuses the store.
    pub fn feed_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How often a waiting feed reader reads the table even without a notification (default
    /// 1 s; at least 10 ms): the feed's latency bound when notifications are lost. A read never
    /// waits longer than the [`Sessions`](crate::Sessions) reading it asks (a quarter of its
    /// [staleness bound](crate::SessionsBuilder::feed_staleness), 250 ms by default), so that
    /// bounds the interval too.
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(MIN_POLL_INTERVAL);
        self
    }

    /// Connects, migrates the schema, and starts the feed's listener and the background
    /// trimming (stopped when the store and its feed are dropped). Needs a Tokio runtime.
    ///
    /// Fails with [`StoreError::Unavailable`] when the server cannot be reached in time, and with
    /// [`StoreError::Backend`] for a malformed URL, schema name or retention, or a migration the
    /// database refuses.
    pub async fn build(self) -> Result<PostgresStore, StoreError> {
        if !valid_schema_name(&self.schema) {
            return Err(StoreError::Backend(
                format!(
                    "invalid schema name {:?}: use [a-z_][a-z0-9_]*, at most 63 bytes",
                    self.schema
                )
                .into(),
            ));
        }
        if self.retention.is_zero() {
            return Err(StoreError::Backend(
                "the feed retention must be positive".into(),
            ));
        }
        let op_timeout = self.connect_timeout + self.statement_timeout;
        let pool = match self.source {
            Source::Url(url) => {
                let options = PgConnectOptions::from_str(&url).map_err(|e| {
                    StoreError::Backend(format!("invalid PostgreSQL URL: {e}").into())
                })?;
                let options =
                    options.options([("statement_timeout", millis(self.statement_timeout))]);
                PgPoolOptions::new()
                    .max_connections(self.pool_size)
                    .acquire_timeout(self.connect_timeout)
                    .test_before_acquire(false)
                    .connect_lazy_with(options)
            }
            Source::Pool(pool) => pool,
        };
        // The feed's connections, apart from the store's pool: one that listens, and a small
        // pool for reads.
        let side_pool = |size: u32| {
            PgPoolOptions::new()
                .max_connections(size)
                .acquire_timeout(self.connect_timeout)
                .test_before_acquire(false)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_lazy_with((*pool.connect_options()).clone())
        };
        let listener_pool = side_pool(1);
        let reader_pool = side_pool(feed::READ_RETRIES);
        let sql = Arc::new(Sql::new(&self.schema));
        schema::migrate(&pool, &sql, op_timeout)
            .await
            .map_err(|e| match e {
                StoreError::Unavailable(e) => {
                    StoreError::Unavailable(format!("could not connect to PostgreSQL: {e}").into())
                }
                other => other,
            })?;
        let feed = PostgresFeed::start(FeedConfig {
            pool: pool.clone(),
            reader_pool,
            listener_pool,
            sql: sql.clone(),
            retention: self.retention,
            poll_interval: self.poll_interval,
            op_timeout,
            maintenance_every: (self.retention / 4)
                .clamp(Duration::from_secs(1), Duration::from_secs(60)),
        });
        Ok(PostgresStore {
            inner: Arc::new(Inner {
                read_retries: pool.options().get_max_connections(),
                pool,
                sql,
                op_timeout,
                feed: Arc::new(feed),
            }),
        })
    }
}

fn millis(d: Duration) -> String {
    format!("{}ms", d.as_millis().max(1))
}
