//! The builder's settings for store failures and revocation trust: the circuit breaker, the
//! revocation feed's staleness bound and outage grace, stores without a feed.

use std::time::Duration;

use super::SessionsBuilder;
#[cfg(doc)]
use super::{ConfigError, DEFAULT_FEED_STALENESS, MAX_FEED_STALENESS, MIN_FEED_STALENESS};
#[cfg(doc)]
use crate::store::SessionStore;

/// Store failures and revocation trust.
impl SessionsBuilder {
    /// The store's circuit breaker (on by default, [`CircuitBreaker::default`](crate::sessions::CircuitBreaker::default)): after a few
    /// consecutive failed calls, store calls answer
    /// [`StoreError::CircuitOpen`](crate::StoreError::CircuitOpen) (`503`) at once instead of
    /// each waiting for the store's timeout, and one probe call at a time finds out when the
    /// store is back, which closes the circuit by itself. A stalled store then costs one
    /// timeout per probe period, not one per request. Only calls that could not reach the
    /// store ([`StoreError::is_unavailable`](crate::StoreError::is_unavailable)) count as
    /// failures; a call cancelled before it finished (a client that hung up) counts as nothing.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_session_jwt::sessions::CircuitBreaker;
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .circuit_breaker(CircuitBreaker { failures: 5, probe_after: Duration::from_millis(500) })
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn circuit_breaker(mut self, breaker: crate::engine::CircuitBreaker) -> Self {
        self.breaker = Some(breaker);
        self
    }

    /// Turns the circuit breaker off: every store call waits for the store's own answer or
    /// timeout.
    pub fn without_circuit_breaker(mut self) -> Self {
        self.breaker = None;
        self
    }

    /// **Opt-in bounded staleness** (off by default): while the revocation feed is unreachable,
    /// keep trusting JWTs issued before the last successful feed read for up to `grace` after
    /// that read, instead of confirming every JWT in the (equally unreachable) store. At most
    /// the JWT lifetime ([`ConfigError::GraceTooLong`] otherwise).
    ///
    /// This keeps signed-in users working through a store failover of up to `grace`. **The
    /// risk, exactly:** a revocation made on another instance while this one cannot read the
    /// feed is not seen here until the feed is back, or until `grace` has passed since the last
    /// read, whichever comes first; for that long the revoked session's JWTs (issued before the
    /// last read) are accepted here. Revocations made on this instance are applied at once, as
    /// always. JWTs issued after the last read are not covered, nor is anything while the feed
    /// is known to hold unread events (a backlog, a lost cursor): those are confirmed in the
    /// store, as without a grace.
    pub fn feed_outage_grace(mut self, grace: Duration) -> Self {
        self.feed_outage_grace = grace;
        self
    }

    /// The revocation feed's **staleness bound** (default 1 s, [`DEFAULT_FEED_STALENESS`]): the
    /// JWT fast path (and a token cache over a shared store) is trusted only while this
    /// instance's last caught-up read of the store's revocation feed was sent at most this long
    /// ago. Past it, every JWT is confirmed in the store, which refuses a revoked session (or,
    /// if the store is unreachable too, answers `503`).
    ///
    /// This is how long a JWT revoked on another instance can still be accepted here when the
    /// link to the store stalls without failing (a connection that stays open but carries
    /// nothing): at most the bound after the revocation. The feed is read with a wait of a
    /// quarter of the bound, so an idle, healthy feed stays fresh without traffic and
    /// [`Sessions::ready`](crate::Sessions::ready) and the fast path stay trusted; a shorter
    /// bound costs more feed reads (four per bound per instance while idle). Between
    /// [`MIN_FEED_STALENESS`] and [`MAX_FEED_STALENESS`], and no longer than the
    /// [JWT lifetime](Self::jwt_ttl), or [`build`](Self::build) fails with
    /// [`ConfigError::InvalidFeedStaleness`]. Stores without a feed ignore it.
    ///
    /// The opt-in [`feed_outage_grace`](Self::feed_outage_grace) is a separate, longer
    /// allowance for an unreachable feed; without it, this bound is the whole window.
    ///
    /// ```
    /// use std::time::Duration;
    /// use tower_session_jwt::{Sessions, SigningKey};
    /// use tower_session_jwt::store::sqlite::SqliteStore;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// # let dir = std::env::temp_dir().join(format!("tsj-doc-staleness-{}.db", std::process::id()));
    /// let sessions = Sessions::builder()
    ///     .store(SqliteStore::open(&dir).await.unwrap())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     // A JWT revoked elsewhere is refused here within 500 ms, whatever the link does.
    ///     .feed_staleness(Duration::from_millis(500))
    ///     .build()
    ///     .unwrap();
    /// sessions.ready().await;
    /// assert!(sessions.fast_path_trusted());
    /// # drop(sessions);
    /// # for suffix in ["", "-wal", "-shm"] { let _ = std::fs::remove_file(format!("{}{suffix}", dir.display())); }
    /// # });
    /// ```
    pub fn feed_staleness(mut self, bound: Duration) -> Self {
        self.feed_staleness = bound;
        self
    }

    /// Accepts a [shared](SessionStore::is_shared) store that has no revocation feed.
    ///
    /// # ⚠️ Warning: revoked sessions live on elsewhere
    ///
    /// Without a feed, a revocation reaches only the instance that made it. On every other
    /// instance the revoked session's JWTs stay valid until they expire (up to the
    /// [JWT TTL](Self::jwt_ttl)), and a token cache (if you enable one) keeps serving the revoked
    /// token for as long. The opaque token itself still fails at once everywhere (the store no
    /// longer has it). Without this call, [`build`](Self::build) refuses such a store with
    /// [`ConfigError::SharedStoreWithoutFeed`].
    pub fn tolerate_revoked_jwts_elsewhere(mut self) -> Self {
        self.tolerate_feedless = true;
        self
    }
}
