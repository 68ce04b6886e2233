//! [`RedisStoreBuilder`]: the settings of a [`RedisStore`] and what `build` connects.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

#[cfg(doc)]
use super::RedisConfigError;
use super::feed::{MAX_FEED_WAIT, RedisFeed};
use super::options::RedisOptions;
use super::reply::{bounded, map_err};
use super::tls::{self, TlsSettings};
use super::{Inner, Keys, RedisStore};
use crate::store::StoreError;

/// Configures and connects a [`RedisStore`]; from [`RedisStore::builder`].
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), tower_session_jwt::StoreError> {
/// use std::time::Duration;
/// use tower_session_jwt::store::redis::RedisStore;
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("tsj:")
///     .connect_timeout(Duration::from_millis(500))
///     .response_timeout(Duration::from_millis(500))
///     .build()
///     .await?;
/// # let _ = store;
/// # Ok(())
/// # }
/// ```
#[must_use = "a builder does nothing until `build` is awaited"]
pub struct RedisStoreBuilder {
    pub(super) url: String,
    pub(super) options: RedisOptions,
    pub(super) tls: TlsSettings,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.options.prefix)
            .field("feed_retention", &self.options.retention)
            .field("connect_timeout", &self.options.connect_timeout)
            .field("response_timeout", &self.options.response_timeout)
            .field("tls", &self.tls)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `tsj:`). It becomes the keys' hash tag (`{tsj:}…`), so
    /// it may not contain `{` or `}`; give different services different prefixes.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.options.prefix = prefix.into();
        self
    }

    /// How long revocation events stay in the feed (default 15 minutes). It must be at least the
    /// session JWT lifetime plus leeway, or [`Sessions`](crate::Sessions) refuses the store.
    pub fn feed_retention(mut self, retention: Duration) -> Self {
        self.options.retention = retention;
        self
    }

    /// How long opening a connection may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer a command (default 1 s). A whole call, reconnection
    /// included, is bounded by the connect timeout plus this; a blocking feed read by its wait
    /// plus both.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.options.response_timeout = timeout;
        self
    }

    /// Trusts the CA certificates in `pem` (one or more PEM `CERTIFICATE` blocks) for a
    /// `rediss://` URL, instead of the system's trust store. The server's certificate must be
    /// signed by one of them and name the URL's host.
    ///
    /// Without this, a `rediss://` connection trusts the operating system's CA certificates
    /// (what a managed Redis with a public certificate needs).
    #[cfg(feature = "redis-tls")]
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.tls.ca_pem = Some(pem.into());
        self
    }

    /// Presents a client certificate (`cert_pem`: the certificate, then any intermediates) and
    /// its private key (`key_pem`: PKCS#8, PKCS#1 or SEC1) to a Redis that demands mutual TLS
    /// (`tls-auth-clients yes`). The key is zeroed from memory when the builder is dropped and is
    /// never printed.
    #[cfg(feature = "redis-tls")]
    pub fn tls_client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> Self {
        self.tls.client_identity = Some((cert_pem.into(), zeroize::Zeroizing::new(key_pem.into())));
        self
    }

    /// Connects: opens the command connection and the feed connection, and creates the feed
    /// stream if it does not exist yet.
    ///
    /// Fails with [`StoreError::Unavailable`] when Redis cannot be reached in time, and with
    /// [`StoreError::Backend`] for a malformed URL or key prefix, or a Redis older than 7.0.
    /// Misconfigured TLS is a [`StoreError::Backend`] whose source is a [`RedisConfigError`]: a
    /// `rediss://` URL without the `redis-tls` feature, TLS settings for a plain `redis://` URL,
    /// an unreadable PEM, or a handshake refused over a certificate (a server certificate that
    /// the configured CA did not sign, a client certificate the server refused).
    pub async fn build(self) -> Result<RedisStore, StoreError> {
        self.options.check_prefix()?;
        let options = &self.options;
        let client = tls::client(&self.url, &self.tls)?;
        let config = |response_timeout: Duration| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(options.connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(250))
        };
        let commands =
            ConnectionManager::new_with_config(client.clone(), config(options.response_timeout));
        let feed = ConnectionManager::new_with_config(
            client,
            config(MAX_FEED_WAIT + options.response_timeout),
        );
        let (conn, feed_conn) = bounded(options.connect_bound(), async {
            tokio::try_join!(commands, feed).map_err(map_err)
        })
        .await
        .map_err(|e| match tls::classify_connect_error(e) {
            StoreError::Unavailable(e) => {
                StoreError::Unavailable(format!("could not connect to Redis: {e}").into())
            }
            other => other,
        })?;
        let keys = Keys::new(&options.prefix);
        let op_timeout = options.op_timeout();
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn,
                op_timeout,
                feed: Arc::new(RedisFeed {
                    conn: feed_conn,
                    key: keys.feed.clone(),
                    retention: options.retention,
                    op_timeout,
                }),
                keys,
            }),
        };
        store.ensure_feed().await?;
        Ok(store)
    }
}
