//! The settings the Redis and Redis Cluster builders share, with their defaults and the bounds
//! that follow from them.

use std::time::Duration;

use crate::store::StoreError;

/// Default key prefix.
const DEFAULT_PREFIX: &str = "tsj:";
/// Default retention of the revocation feed.
const DEFAULT_FEED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Default time allowed to open a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time allowed for an answer.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// What both builders configure: the key prefix, the feed's retention and the timeouts. Each
/// builder's setters write here; their docs stay with the builders, which word them for a single
/// node or a cluster.
#[derive(Debug, Clone)]
pub(super) struct RedisOptions {
    pub(super) prefix: String,
    pub(super) retention: Duration,
    pub(super) connect_timeout: Duration,
    pub(super) response_timeout: Duration,
}

impl Default for RedisOptions {
    fn default() -> Self {
        Self {
            prefix: DEFAULT_PREFIX.to_owned(),
            retention: DEFAULT_FEED_RETENTION,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }
}

impl RedisOptions {
    /// Refuses a prefix that would break the keys' hash tag.
    pub(super) fn check_prefix(&self) -> Result<(), StoreError> {
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::Backend(
                "the Redis key prefix may not contain `{` or `}`".into(),
            ));
        }
        Ok(())
    }

    /// The bound on one call, reconnection included.
    pub(super) fn op_timeout(&self) -> Duration {
        self.connect_timeout + self.response_timeout
    }

    /// The bound on connecting: two connection attempts (one retry) plus the handshake.
    pub(super) fn connect_bound(&self) -> Duration {
        2 * self.connect_timeout + self.response_timeout
    }
}
