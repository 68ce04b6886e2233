//! [`RedisClusterStoreBuilder`]: the settings of a [`RedisClusterStore`] and what `build`
//! connects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::cluster::ClusterClientBuilder;

use super::super::Keys;
use super::super::options::RedisOptions;
use super::super::reply::{bounded, map_err};
use super::feed::ClusterFeed;
use super::{Inner, MAX_PARTITIONS, RedisClusterStore};
use crate::store::StoreError;

/// Configures and connects a [`RedisClusterStore`]; from [`RedisClusterStore::builder`].
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), tower_session_jwt::StoreError> {
/// use std::time::Duration;
/// use tower_session_jwt::store::redis::cluster::RedisClusterStore;
///
/// let store = RedisClusterStore::builder(["redis://10.0.0.1:6379", "redis://10.0.0.2:6379"])
///     .key_prefix("tsj:")
///     .partitions(16)
///     .feed_poll_interval(Duration::from_millis(100))
///     .build()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RedisClusterStoreBuilder {
    pub(super) urls: Vec<String>,
    pub(super) options: RedisOptions,
    pub(super) partitions: u16,
    pub(super) poll_interval: Duration,
}

impl fmt::Debug for RedisClusterStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterStoreBuilder")
            .field("urls", &"<redacted>")
            .field("key_prefix", &self.options.prefix)
            .field("partitions", &self.partitions)
            .field("feed_retention", &self.options.retention)
            .field("connect_timeout", &self.options.connect_timeout)
            .field("response_timeout", &self.options.response_timeout)
            .field("feed_poll_interval", &self.poll_interval)
            .finish()
    }
}

impl RedisClusterStoreBuilder {
    /// The prefix of every key (default `tsj:`). Partition `k`'s keys begin with the hash tag
    /// `{<prefix><k>}`, so it may not contain `{` or `}`; give different services different
    /// prefixes (and no [`RedisStore`](crate::store::redis::RedisStore) on the same cluster a prefix equal to
    /// one of these tags).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.prefix = prefix.into();
        self
    }

    /// The number of partitions (default 16, at most 1024): how many hash tags, and so slots,
    /// the sessions and the feed are spread over. More partitions spread the load more evenly
    /// over the masters, and cost every instance more feed reads (one per partition per poll).
    ///
    /// # ⚠️ Warning: fixed for the life of the data
    ///
    /// Every instance must use the same number, and changing it is a migration: a user's
    /// partition follows from it, so with another number the store looks for existing sessions
    /// in the wrong place (they stop working, and `revoke_all` misses them).
    pub fn partitions(mut self, partitions: u16) -> Self {
        self.partitions = partitions;
        self
    }

    /// How long revocation events stay in the feed (default 15 minutes). It must be at least the
    /// session JWT lifetime plus leeway, or [`Sessions`](crate::Sessions) refuses the store.
    pub fn feed_retention(mut self, retention: Duration) -> Self {
        self.options.retention = retention;
        self
    }

    /// How long opening a connection to a node may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long a node may take to answer a command (default 1 s). A whole call, redirections
    /// and reconnection included, is bounded by the connect timeout plus this.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.options.response_timeout = timeout;
        self
    }

    /// How often a caught-up feed read that may wait looks at the partitions again (default
    /// 100 ms, at least 5 ms): the bound on how late a revocation reaches other instances, over
    /// one round trip. Each poll reads every partition once. A read never waits longer than the
    /// [`Sessions`](crate::Sessions) reading it asks (a quarter of its
    /// [staleness bound](crate::SessionsBuilder::feed_staleness), 250 ms by default), so a
    /// longer interval is cut to that.
    pub fn feed_poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Connects to the cluster through the seed nodes, and creates the partitions' feed
    /// streams where they do not exist yet.
    ///
    /// Fails with [`StoreError::Unavailable`] when the cluster cannot be reached in time, and
    /// with [`StoreError::Backend`] for malformed URLs, key prefix or partition count, or a
    /// Redis older than 7.0.
    pub async fn build(self) -> Result<RedisClusterStore, StoreError> {
        self.options.check_prefix()?;
        let options = &self.options;
        if self.partitions == 0 || self.partitions > MAX_PARTITIONS {
            return Err(StoreError::Backend(
                format!("the partition count must be 1 to {MAX_PARTITIONS}").into(),
            ));
        }
        if self.urls.is_empty() {
            return Err(StoreError::Backend(
                "a Redis Cluster store needs at least one seed node".into(),
            ));
        }
        let op_timeout = options.op_timeout();
        let client = ClusterClientBuilder::new(self.urls.iter().map(String::as_str))
            .connection_timeout(options.connect_timeout)
            .response_timeout(options.response_timeout)
            .overall_response_timeout(Some(op_timeout))
            .retries(4)
            .min_retry_wait(20)
            .max_retry_wait(250)
            .build()
            .map_err(map_err)?;
        let conn = bounded(options.connect_bound(), async {
            client.get_async_connection().await.map_err(map_err)
        })
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(e) => StoreError::Unavailable(
                format!("could not connect to the Redis Cluster: {e}").into(),
            ),
            other => other,
        })?;
        let partitions: Vec<Keys> = (0..self.partitions)
            .map(|k| Keys::new(&format!("{}{k}", options.prefix)))
            .collect();
        let feed = ClusterFeed {
            conn: conn.clone(),
            streams: partitions.iter().map(|keys| keys.feed.clone()).collect(),
            retention: options.retention,
            op_timeout,
            poll_interval: self.poll_interval.max(Duration::from_millis(5)),
        };
        let store = RedisClusterStore {
            inner: Arc::new(Inner {
                conn,
                partitions,
                retention: options.retention,
                op_timeout,
                feed: Arc::new(feed),
            }),
        };
        let store_ref = &store;
        try_join_all(
            (0..store.inner.partitions.len())
                .map(|k| async move { store_ref.tag(k).ensure_feed(&mut store_ref.conn()).await }),
        )
        .await?;
        Ok(store)
    }
}
