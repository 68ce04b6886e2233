//! The Redis store (feature `redis`): sessions shared by every instance, with a cluster-wide
//! revocation feed.
//!
//! # Data model and key layout
//!
//! With the key prefix `P` (default `tsj:`), every key of a store begins with the hash tag
//! `{P}`:
//!
//! | key | type | content | expiry |
//! |---|---|---|---|
//! | `{P}tok:<token hash, base64url>` | string | the session id | session's remaining lifetime |
//! | `{P}s:<session id>` | hash | `session` (the [`Session`] as JSON), `token` (token hash, base64url), `user` (user key), `exp` (`expires_at`, Unix ms) | session's remaining lifetime |
//! | `{P}u:<user id, base64url>` | sorted set | the user's session ids, scored by `expires_at` (Unix ms) | the user's last expiry |
//! | `{P}revocations` | stream | one entry per revocation, field `event` = [`RevocationEvent`] as JSON | none; trimmed to the feed retention, created by [`RedisStoreBuilder::build`] |
//!
//! Session ids are validated (`[A-Za-z0-9_-]{1,64}`) and token hashes are base64url, so both go
//! into keys as they are; user ids are arbitrary UTF-8, so they are base64url-encoded, which keeps
//! every key unambiguous whatever the user id contains.
//!
//! Expiry is judged on the application's clock, the one that sets a session's `expires_at`: keys
//! get a relative TTL (`PX` / `PEXPIRE`) of `expires_at - now`, the index is trimmed with
//! `ZREMRANGEBYSCORE -inf <now>` on every write to it, and every session read back is checked
//! against `expires_at` again, so an expired session is never returned even if Redis has not
//! evicted it yet. Skew between the application and Redis clocks therefore does not matter.
//!
//! # Atomicity, and why one hash tag
//!
//! Every write is one Lua script, so it is atomic: `create` refuses an existing id or token
//! (nothing is overwritten), `update` only touches a session that still exists (an update racing
//! a revocation can never bring the session back), and `revoke` / `revoke_all` delete the session
//! keys, the index entry *and* append to the revocation stream in the same script, so no instance
//! can see a revocation without its feed event or the other way round.
//!
//! A script may only touch keys of one hash slot on Redis Cluster. A session is reached three
//! ways (token hash, session id, user), and a revocation must also write the one feed stream, so
//! no finer hash tag (per user, per session) can keep these scripts in one slot. Every key of a
//! store therefore shares the hash tag `{P}`: the store runs unchanged on Cluster (no `CROSSSLOT`)
//! and lives on one shard. Scripts reach keys derived from what they read (the session keys listed
//! in a user's index, the token key named in a session); these are in the same slot as the
//! declared keys. Stores with different prefixes land on different slots.
//!
//! Reads take one round trip each: `get` is one `HGET`; `find_by_token` and `list_by_user` are
//! one read-only script each (token → id → session; index → sessions), never one request per
//! session.
//!
//! # The revocation feed
//!
//! [`SessionStore::revocation_feed`] reads the stream `{P}revocations` and keeps the [feed
//! contract](RevocationFeed); its cursors are stream entry ids. A read catches up through one
//! script that checks the cursor and returns up to 1000 entries after it, `caught_up` exactly
//! when nothing retained follows them; only a caught-up read with a `wait` blocks (`XREAD BLOCK`,
//! at most 30 s). A cursor is lost ([`StoreError::FeedCursorLost`]) when an entry after it was
//! trimmed or deleted (it is older than the stream's `max-deleted-entry-id`, which the store's
//! exact trimming to the retention, default 15 minutes, keeps up to date), or when the stream is
//! missing or has not reached it: Redis lost data. [`RedisStoreBuilder::build`] and every append
//! create a missing stream, so that a missing stream means lost data. The horizon is the later of
//! the retention edge and the last deletion, or now when the stream is missing. Gap detection
//! needs Redis 7.0 or later. An entry that cannot be decoded is an error
//! ([`StoreError::Corrupt`]), never skipped: a reader that skipped it could accept a revoked JWT.
//! Reads through one store share its feed connection (a service runs one reader).
//!
//! Event times (`at`, `before`) come from the application's clock, not Redis': a user's
//! sessions get their `started_at` from the application's clock, and `revoke_all` means "every
//! session started before now". Taking `before` from that same clock, right before the script
//! runs, guarantees on this instance that sessions started earlier are cut off and sessions
//! started afterwards are not; Redis' clock could be ahead of the application's and cut off
//! sessions created just after the revocation.
//!
//! # Connections, timeouts and errors
//!
//! Commands go through a [`ConnectionManager`] (one multiplexed connection, reconnected
//! automatically after an I/O error). The feed's blocking reads use a second, dedicated
//! `ConnectionManager`, since a blocked `XREAD` would stall every command queued behind it on a
//! shared connection. Connecting times out after [`RedisStoreBuilder::connect_timeout`] (default
//! 1 s), an answer after [`RedisStoreBuilder::response_timeout`] (default 1 s; for the feed, the
//! block time plus that), and every call is additionally bounded as a whole, reconnection
//! included, so a dead or unreachable Redis yields an error within about two seconds and never a
//! hang. I/O errors, timeouts and "try later" replies (`LOADING`, `READONLY`, `CLUSTERDOWN`, …)
//! are [`StoreError::Unavailable`]; other error replies are [`StoreError::Backend`]; a record or
//! reply that cannot be decoded is [`StoreError::Corrupt`].

mod feed;
mod reply;
mod scripts;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, RedisError, Value};
use time::OffsetDateTime;

use self::feed::{MAX_FEED_WAIT, RedisFeed};
use self::reply::{array_of, bounded, bytes_of, corrupt, decode_session, int_of, map_err};
use self::scripts::{CREATE, ENSURE_FEED, FIND_BY_TOKEN, LIST_BY_USER, REVOKE, REVOKE_ALL, UPDATE};
use super::{RevocationFeed, SessionRecord, SessionStore, StoreError};
use crate::revocation::RevocationEvent;
use crate::session::{Session, SessionId};
use crate::token::TokenHash;

/// Default key prefix.
const DEFAULT_PREFIX: &str = "tsj:";
/// Default retention of the revocation feed.
const DEFAULT_FEED_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Default time allowed to open a connection.
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// Default time allowed for an answer.
const DEFAULT_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);

/// A [`SessionStore`] in Redis, shared by every instance of a service, with a revocation feed.
///
/// Clones share the same connections. `Debug` output shows the key prefix and timeouts, never
/// the URL (which may hold a password).
///
/// See the [module documentation](self) for the data model, the atomicity of every write and
/// the revocation feed. In short: session keys expire with the session, writes are Lua scripts,
/// all keys of a store share one hash tag (one Cluster shard, no cross-slot errors), and
/// `revoke` / `revoke_all` append their event to a stream in the same script. The stream keeps
/// events for [`RedisStoreBuilder::feed_retention`] (default 15 minutes); event times come from
/// the application's clock, the one that sets `started_at`.
///
/// # Failures
///
/// Every call is bounded in time (by default about 2 s, reconnection included): an unreachable or
/// stalled Redis is [`StoreError::Unavailable`], an error reply [`StoreError::Backend`], an
/// undecodable record [`StoreError::Corrupt`]. The connections reconnect on their own once
/// Redis is back.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use tower_session_jwt::{NewSession, RedisStore, Sessions, SigningKey};
///
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("myapp:sessions:")
///     .feed_retention(Duration::from_secs(15 * 60))
///     .build()
///     .await?;
/// let sessions = Sessions::builder()
///     .store(store)
///     .signing_key(SigningKey::generate_ed25519()?)
///     .build()?;
/// let login = sessions.create("user-1", NewSession::new()).await?;
/// // Revoking here makes the session's JWT fail on every instance reading the same Redis.
/// sessions.revoke(&login.session.session_id).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ConnectionManager,
    keys: Keys,
    /// Bound on one call, reconnection included.
    op_timeout: Duration,
    feed: Arc<RedisFeed>,
}

/// Key names; see the module docs.
#[derive(Debug, Clone)]
struct Keys {
    /// `{P}`
    base: String,
    /// `{P}tok:`
    token: String,
    /// `{P}s:`
    session: String,
    /// `{P}u:`
    user: String,
    /// `{P}revocations`
    feed: String,
}

impl Keys {
    fn new(prefix: &str) -> Self {
        let base = format!("{{{prefix}}}");
        Self {
            token: format!("{base}tok:"),
            session: format!("{base}s:"),
            user: format!("{base}u:"),
            feed: format!("{base}revocations"),
            base,
        }
    }

    fn token(&self, hash: &TokenHash) -> String {
        format!("{}{}", self.token, hash.to_base64url())
    }

    fn session(&self, id: &SessionId) -> String {
        format!("{}{}", self.session, id.as_str())
    }

    fn user_key(user_id: &str) -> String {
        URL_SAFE_NO_PAD.encode(user_id.as_bytes())
    }

    fn user(&self, user_id: &str) -> String {
        format!("{}{}", self.user, Self::user_key(user_id))
    }
}

/// Configures and connects a [`RedisStore`]; from [`RedisStore::builder`].
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), tower_session_jwt::store::StoreError> {
/// use std::time::Duration;
/// use tower_session_jwt::RedisStore;
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
    url: String,
    prefix: String,
    retention: Duration,
    connect_timeout: Duration,
    response_timeout: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &"<redacted>")
            .field("key_prefix", &self.prefix)
            .field("feed_retention", &self.retention)
            .field("connect_timeout", &self.connect_timeout)
            .field("response_timeout", &self.response_timeout)
            .finish()
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key (default `tsj:`). It becomes the keys' hash tag (`{tsj:}…`), so
    /// it may not contain `{` or `}`; give different services different prefixes.
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// How long revocation events stay in the feed (default 15 minutes). It must be at least the
    /// session JWT lifetime plus leeway, or [`Sessions`](crate::Sessions) refuses the store.
    pub fn feed_retention(mut self, retention: Duration) -> Self {
        self.retention = retention;
        self
    }

    /// How long opening a connection may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long Redis may take to answer a command (default 1 s). A whole call, reconnection
    /// included, is bounded by the connect timeout plus this; a blocking feed read by its wait
    /// plus both.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// Connects: opens the command connection and the feed connection, and creates the feed
    /// stream if it does not exist yet.
    ///
    /// Fails with [`StoreError::Unavailable`] when Redis cannot be reached in time, and with
    /// [`StoreError::Backend`] for a malformed URL or key prefix, or a Redis older than 7.0.
    pub async fn build(self) -> Result<RedisStore, StoreError> {
        if self.prefix.contains(['{', '}']) {
            return Err(StoreError::Backend(
                "the Redis key prefix may not contain `{` or `}`".into(),
            ));
        }
        let client = Client::open(self.url.as_str()).map_err(map_err)?;
        let config = |response_timeout: Duration| {
            ConnectionManagerConfig::new()
                .set_connection_timeout(Some(self.connect_timeout))
                .set_response_timeout(Some(response_timeout))
                .set_number_of_retries(1)
                .set_min_delay(Duration::from_millis(50))
                .set_max_delay(Duration::from_millis(250))
        };
        let commands =
            ConnectionManager::new_with_config(client.clone(), config(self.response_timeout));
        let feed = ConnectionManager::new_with_config(
            client,
            config(MAX_FEED_WAIT + self.response_timeout),
        );
        // Two connection attempts (one retry) plus the handshake.
        let connect_bound = 2 * self.connect_timeout + self.response_timeout;
        let (conn, feed_conn) = bounded(connect_bound, async {
            tokio::try_join!(commands, feed).map_err(map_err)
        })
        .await
        .map_err(|e| match e {
            StoreError::Unavailable(e) => {
                StoreError::Unavailable(format!("could not connect to Redis: {e}").into())
            }
            other => other,
        })?;
        let keys = Keys::new(&self.prefix);
        let op_timeout = self.connect_timeout + self.response_timeout;
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn,
                op_timeout,
                feed: Arc::new(RedisFeed {
                    conn: feed_conn,
                    key: keys.feed.clone(),
                    retention: self.retention,
                    op_timeout,
                }),
                keys,
            }),
        };
        store.ensure_feed().await?;
        Ok(store)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("keys", &format_args!("{}*", self.inner.keys.base))
            .field("feed_retention", &self.inner.feed.retention)
            .field("op_timeout", &self.inner.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// Connects with the default settings (key prefix `tsj:`, feed retention 15 minutes, 1 s
    /// timeouts). `url` is a Redis URL such as `redis://127.0.0.1:6379/0` or
    /// `redis://user:password@host:6379/2`. (`rediss://`, TLS, would need a TLS feature of the
    /// `redis` crate, which this crate does not enable.)
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }

    /// A builder for a store on `url`; see [`RedisStoreBuilder`].
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            prefix: DEFAULT_PREFIX.to_owned(),
            retention: DEFAULT_FEED_RETENTION,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            response_timeout: DEFAULT_RESPONSE_TIMEOUT,
        }
    }

    /// The hash tag that begins every key of this store, e.g. `{tsj:}`.
    pub fn key_base(&self) -> &str {
        &self.inner.keys.base
    }

    /// Creates the feed stream if it is missing, so that a missing stream means lost data, and
    /// checks that Redis reports what gap detection needs (Redis 7.0 or later).
    async fn ensure_feed(&self) -> Result<(), StoreError> {
        let mut call = ENSURE_FEED.prepare_invoke();
        call.key(&self.inner.keys.feed);
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        match int_of(&reply)? {
            1 => Ok(()),
            _ => Err(StoreError::Backend(
                "the revocation feed needs Redis 7.0 or later (max-deleted-entry-id)".into(),
            )),
        }
    }

    /// Runs one Redis call, bounded by the operation timeout.
    async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        bounded(self.inner.op_timeout, async { call.await.map_err(map_err) }).await
    }

    fn conn(&self) -> ConnectionManager {
        self.inner.conn.clone()
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Unix milliseconds of `t` (saturating; far outside any session's range).
fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// Milliseconds from `now` until `expires_at`, rounded up; zero or less when already past.
fn ttl_ms(expires_at: OffsetDateTime, now: OffsetDateTime) -> i64 {
    let nanos = (expires_at - now).whole_nanoseconds();
    let ms = nanos / 1_000_000 + i128::from(nanos % 1_000_000 > 0);
    i64::try_from(ms).unwrap_or(if ms > 0 { i64::MAX } else { 0 })
}

impl SessionStore for RedisStore {
    async fn create(&self, record: SessionRecord) -> Result<(), StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = serde_json::to_string(&session)
            .map_err(|e| StoreError::Backend(format!("cannot encode session: {e}").into()))?;
        let keys = &self.inner.keys;
        let now = self.now();
        let mut call = CREATE.prepare_invoke();
        call.key(keys.token(&token_hash))
            .key(keys.session(&session.session_id))
            .key(keys.user(&session.user_id))
            .arg(session.session_id.as_str())
            .arg(token_hash.to_base64url())
            .arg(json)
            .arg(ttl_ms(session.expires_at, now))
            .arg(unix_ms(session.expires_at))
            .arg(unix_ms(now))
            .arg(Keys::user_key(&session.user_id));
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        match int_of(&reply)? {
            1 => Ok(()),
            // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
            // replacing the old session would hand its owner's session to someone else.
            _ => Err(StoreError::Backend("duplicate session id or token".into())),
        }
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let keys = &self.inner.keys;
        let mut call = FIND_BY_TOKEN.prepare_invoke();
        call.key(keys.token(token_hash)).arg(&keys.session);
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        let mut fields = array_of(reply)?.into_iter();
        let (Some(session), token) = (fields.next(), fields.next()) else {
            return Ok(None);
        };
        let stored_token = token.as_ref().and_then(bytes_of);
        if stored_token != Some(token_hash.to_base64url().as_bytes()) {
            return Err(corrupt("token index points at another session"));
        }
        let session = decode_session(&session, |_| true)?;
        Ok(Some(session).filter(|s| s.is_live_at(self.now())))
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let key = self.inner.keys.session(session_id);
        let mut conn = self.conn();
        let reply: Value = self
            .run(
                redis::cmd("HGET")
                    .arg(key)
                    .arg("session")
                    .query_async(&mut conn),
            )
            .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let session = decode_session(&reply, |s| s.session_id == *session_id)?;
        Ok(Some(session).filter(|s| s.is_live_at(self.now())))
    }

    async fn list_by_user(&self, user_id: &str) -> Result<Vec<Session>, StoreError> {
        let keys = &self.inner.keys;
        let now = self.now();
        let mut call = LIST_BY_USER.prepare_invoke();
        call.key(keys.user(user_id))
            .arg(unix_ms(now))
            .arg(&keys.session);
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        let mut sessions = Vec::new();
        for item in array_of(reply)? {
            let session = decode_session(&item, |s| s.user_id == user_id)?;
            if session.is_live_at(now) {
                sessions.push(session);
            }
        }
        Ok(sessions)
    }

    async fn update(&self, session: &Session) -> Result<bool, StoreError> {
        let json = serde_json::to_string(session)
            .map_err(|e| StoreError::Backend(format!("cannot encode session: {e}").into()))?;
        let keys = &self.inner.keys;
        let now = self.now();
        let mut call = UPDATE.prepare_invoke();
        call.key(keys.session(&session.session_id))
            .key(keys.user(&session.user_id))
            .arg(session.session_id.as_str())
            .arg(json)
            .arg(ttl_ms(session.expires_at, now))
            .arg(unix_ms(session.expires_at))
            .arg(unix_ms(now))
            .arg(&keys.token)
            .arg(Keys::user_key(&session.user_id));
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        match int_of(&reply)? {
            1 => Ok(true),
            0 => Ok(false),
            -1 => Err(StoreError::Backend(
                "update may not move a session to another user".into(),
            )),
            -2 => Err(corrupt("session record lacks its token or expiry")),
            other => Err(corrupt(format!("unexpected update reply {other}"))),
        }
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let keys = &self.inner.keys;
        let now = self.now();
        let event = RevocationEvent::session_revoked(session_id.clone(), now);
        let event = serde_json::to_string(&event)
            .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}").into()))?;
        let mut call = REVOKE.prepare_invoke();
        call.key(keys.session(session_id))
            .key(&keys.feed)
            .arg(session_id.as_str())
            .arg(unix_ms(now))
            .arg(event)
            .arg(&keys.token)
            .arg(&keys.user)
            .arg(retention_ms(self.inner.feed.retention));
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        // The session is gone from Redis and its event published either way; a record that
        // cannot be decoded is still reported, so the caller does not believe nothing happened.
        let session = decode_session(&reply, |s| s.session_id == *session_id)?;
        Ok(Some(session))
    }

    async fn revoke_all(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
        let keys = &self.inner.keys;
        let now = self.now();
        let event = RevocationEvent::User {
            user_id: user_id.to_owned(),
            before: now,
        };
        let event = serde_json::to_string(&event)
            .map_err(|e| StoreError::Backend(format!("cannot encode event: {e}").into()))?;
        let mut call = REVOKE_ALL.prepare_invoke();
        call.key(keys.user(user_id))
            .key(&keys.feed)
            .arg(unix_ms(now))
            .arg(event)
            .arg(&keys.session)
            .arg(&keys.token)
            .arg(retention_ms(self.inner.feed.retention));
        let mut conn = self.conn();
        let reply: Value = self.run(call.invoke_async(&mut conn)).await?;
        array_of(reply)?
            .iter()
            .map(|id| {
                bytes_of(id)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .and_then(|s| SessionId::parse(s).ok())
                    .ok_or_else(|| corrupt("malformed session id in a user's index"))
            })
            .collect()
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }
}

fn retention_ms(retention: Duration) -> i64 {
    i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unambiguous_and_share_a_hash_tag() {
        let keys = Keys::new("tsj:");
        assert_eq!(
            keys.user("a:b"),
            format!("{{tsj:}}u:{}", URL_SAFE_NO_PAD.encode("a:b"))
        );
        assert_ne!(keys.user("a\nb"), keys.user("a"));
        let id = SessionId::parse("session-x").unwrap();
        assert_eq!(keys.session(&id), "{tsj:}s:session-x");
        assert!(keys.feed.starts_with("{tsj:}"));
    }

    #[test]
    fn ttl_rounds_up_and_goes_non_positive_when_past() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(ttl_ms(now + Duration::from_micros(1), now), 1);
        assert_eq!(ttl_ms(now + Duration::from_secs(2), now), 2000);
        assert!(ttl_ms(now - Duration::from_secs(2), now) <= 0);
    }
}
