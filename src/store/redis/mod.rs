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
//! | `{P}s:<session id>` | hash | `session` (the [`Session`] as JSON), `token` (token hash, base64url), `user` (user key), `exp` (`expires_at`, Unix ms), `start` (`started_at`, Unix ms), `ver` (the record's version; absent in records stored before versions, meaning 0) | session's remaining lifetime |
//! | `{P}u:<user id, base64url>` | sorted set | the user's session ids, scored by `expires_at` (Unix ms): the expiry index | the user's last expiry |
//! | `{P}us:<user id, base64url>` | sorted set | the same ids, scored by `started_at` (Unix ms, [`started_ms`](super::started_ms)): the listing index | the user's last expiry |
//! | `{P}revocations` | stream | one entry per revocation, field `event` = [`RevocationEvent`](crate::store::RevocationEvent) as JSON | none; trimmed to the feed retention, created by [`RedisStoreBuilder::build`] |
//!
//! Session ids are validated (`[A-Za-z0-9_-]{1,64}`) and token hashes are base64url, so both go
//! into keys as they are; user ids are arbitrary UTF-8, so they are base64url-encoded, which keeps
//! every key unambiguous whatever the user id contains.
//!
//! Expiry is judged on the application's clock, the one that sets a session's `expires_at`: keys
//! get a relative TTL (`PX` / `PEXPIRE`) of `expires_at - now`, expired ids leave both user
//! indexes (found by `ZRANGEBYSCORE -inf <now>` on the expiry index) on every write to them and
//! on every listing, and every session read back is checked against `expires_at` again, so an
//! expired session is never returned even if Redis has not evicted it yet. Skew between the
//! application and Redis clocks therefore does not matter.
//!
//! # Atomicity, and why one hash tag
//!
//! Every write is one Lua script, so it is atomic:
//!
//! * `create` refuses an existing id or token (nothing is overwritten) and enforces the
//!   [`SessionLimit`] on the user's live sessions in the same script: the script gets the limit
//!   and the policy, counts, and revokes the oldest (by `started_at` to the millisecond, then
//!   id: the front of the listing index) or stores nothing, so concurrent logins on any number
//!   of instances cannot exceed it. Each session evicted is deleted like a revocation, with its
//!   event in the stream. Ids in the expiry index whose record is gone (evicted by Redis under
//!   memory pressure, deleted by hand) are dropped before they could count, which costs one
//!   `EXISTS` per session of the user, and only when the user is at the limit.
//! * `update` is a compare-and-swap on the record's version (`ver`): it writes only when the
//!   stored version is the one the update follows, and only while the session is live (an
//!   update racing a revocation or an expiry can never bring the session back). A token
//!   rotation deletes the old token key in the same script, and an update that refuses older
//!   JWTs appends its event to the stream there too. It refuses to move a session to another
//!   user or start, which would leave the indexes wrong.
//! * `revoke` / `revoke_all` delete the session keys, the index entries *and* append to the
//!   revocation stream in the same script, so no instance can see a revocation without its feed
//!   event or the other way round. `revoke_all` publishes one session event per session
//!   revoked and, without a session to keep, the user event too (with one, the user event
//!   would cut off the kept one).
//!
//! Events a script makes for sessions it picks itself (evictions, revoking all but one) are the
//! same JSON as every other event: the application encodes one around a placeholder id and the
//! script puts each id in its place.
//!
//! A script may only touch keys of one hash slot on Redis Cluster. A session is reached three
//! ways (token hash, session id, user), and a revocation must also write the one feed stream, so
//! no finer hash tag (per user, per session) can keep these scripts in one slot. Every key of a
//! store therefore shares the hash tag `{P}`: the store runs unchanged on Cluster (no `CROSSSLOT`)
//! and lives on one shard. Scripts reach keys derived from what they read (the session keys listed
//! in a user's index, the token key named in a session); these are in the same slot as the
//! declared keys. Stores with different prefixes land on different slots. To spread sessions
//! over a cluster's shards instead, use `RedisClusterStore` (feature `redis-cluster`), which
//! runs these same scripts under one hash tag per partition of the users.
//!
//! Reads take one round trip each: `get` is one `HGET`; `find_by_token` and `list_by_user` are
//! one script each (token → id → session; index → sessions), never one request per session.
//! `find_by_token` only reads; `list_by_user` also purges expired ids and repairs the listing
//! index (below), so it needs the primary.
//!
//! # Listing
//!
//! The listing pages the listing index newest first with `ZRANGE … BYSCORE REV LIMIT`, from the
//! cursor's millisecond down, skipping the ids at that millisecond that are not below the
//! cursor's id (Redis returns members of equal score in reverse byte order under `REV`, which is
//! the listing's id order). It reads one page of ids and records (plus one, to know whether
//! another page follows), whatever the number of sessions the user holds; the expiry index alone
//! could only be read whole and sorted. Every record listed is checked against its index score,
//! so pages can neither skip nor repeat a session unnoticed.
//!
//! Sessions stored before the listing index existed (by an earlier version of this crate) are
//! only in the expiry index, and so are sessions that an instance still running that version
//! creates during a rolling upgrade. Rather than a migration step, the scripts that read the
//! listing index (`list_by_user`, and `create` when it must find the oldest) compare the two
//! indexes' sizes first, which is O(1); when they differ they rebuild the listing index from the
//! expiry index in the same script, scoring each missing id by the record's `start` field or,
//! for a record stored before that field, by the `started_at` parsed from its JSON. That costs
//! one pass over the user's sessions, once per user after the upgrade (and again for each user
//! an instance of the earlier version has since written to). A record whose start cannot be read
//! makes the listing fail as [`StoreError::Corrupt`] rather than hide it. Records stored before
//! versions have no `ver` field and are version 0, as their JSON says. One case goes unnoticed:
//! while instances of both versions run, an earlier-version instance that creates and revokes
//! the same number of a user's sessions between two listings leaves the index sizes equal, so
//! its new session stays unlisted until the index sizes next differ; it is still found by token
//! and id, and revoked by `revoke_all`.
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
//! sessions created just after the revocation. Another instance's clock may be ahead too, and
//! a session it started just before the revocation would pass the cut-off: `revoke_all` names
//! each session it deletes in its own event as well, which holds whatever the clocks.
//!
//! # TLS
//!
//! With the feature `redis-tls`, a `rediss://` URL connects over TLS (rustls, with the aws-lc-rs
//! crypto provider that also signs JWTs; it is installed as rustls' process default unless the
//! application installed one first). The server's certificate is checked against the CA given to
//! [`RedisStoreBuilder::tls_ca_pem`], or else the operating system's trust store; mutual TLS
//! takes [`RedisStoreBuilder::tls_client_identity`]. No CA list is compiled in. A `rediss://` URL
//! without the feature, or TLS settings with a `redis://` URL, is a [`RedisConfigError`] rather
//! than a silent plain-text connection.
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

mod builder;
#[cfg(feature = "redis-cluster")]
pub mod cluster;
mod feed;
mod hash_tag;
mod options;
mod reply;
mod scripts;
mod tls;

pub use self::builder::RedisStoreBuilder;
pub use self::tls::RedisConfigError;

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use redis::aio::ConnectionManager;
use redis::{RedisError, Value};
use time::OffsetDateTime;

use self::feed::RedisFeed;
use self::hash_tag::{HashTag, TokenIndex};
use self::options::RedisOptions;
use self::reply::{array_of, bounded, bytes_of, corrupt, decode_session, map_err};
use self::scripts::FIND_BY_TOKEN;
use self::tls::TlsSettings;
use super::feed::{encode_event, session_event_parts};
use super::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome,
};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;

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
/// use tower_session_jwt::{NewSession, Sessions, SigningKey};
/// use tower_session_jwt::store::redis::RedisStore;
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
    /// `{P}us:`
    started: String,
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
            started: format!("{base}us:"),
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

    fn started(&self, user_id: &str) -> String {
        format!("{}{}", self.started, Self::user_key(user_id))
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
    /// `redis://user:password@host:6379/2`, or with the `redis-tls` feature
    /// `rediss://host:6380` (TLS, trusting the system's CA certificates; see
    /// [`RedisStoreBuilder::tls_ca_pem`] for a CA of your own).
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).build().await
    }

    /// A builder for a store on `url`; see [`RedisStoreBuilder`].
    pub fn builder(url: &str) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.to_owned(),
            options: RedisOptions::default(),
            tls: TlsSettings::default(),
        }
    }

    /// The hash tag that begins every key of this store, e.g. `{tsj:}`.
    pub fn key_base(&self) -> &str {
        &self.inner.keys.base
    }

    /// Creates the feed stream if it is missing, so that a missing stream means lost data, and
    /// checks that Redis reports what gap detection needs (Redis 7.0 or later).
    async fn ensure_feed(&self) -> Result<(), StoreError> {
        self.tag().ensure_feed(&mut self.conn()).await
    }

    /// The store's one hash tag, with the token index under it.
    fn tag(&self) -> HashTag<'_> {
        HashTag {
            keys: &self.inner.keys,
            token_index: TokenIndex::InTag,
            retention: self.inner.feed.retention,
            op_timeout: self.inner.op_timeout,
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
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        self.tag()
            .create(&mut self.conn(), &record, limit, self.now())
            .await
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
        self.tag()
            .get(&mut self.conn(), session_id, self.now())
            .await
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        self.tag()
            .list_by_user(&mut self.conn(), user_id, page, self.now())
            .await
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let updated = self
            .tag()
            .update(&mut self.conn(), update, self.now())
            .await?;
        Ok(updated.outcome)
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.tag()
            .revoke(&mut self.conn(), session_id, self.now())
            .await
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.tag()
            .revoke_all(&mut self.conn(), user_id, except, self.now())
            .await
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }
}

fn retention_ms(retention: Duration) -> i64 {
    i64::try_from(retention.as_millis()).unwrap_or(i64::MAX)
}

fn encode_session(session: &Session) -> Result<String, StoreError> {
    serde_json::to_string(session)
        .map_err(|e| StoreError::Backend(format!("cannot encode session: {e}").into()))
}

/// A session id in a script's reply (taken from a user's index).
fn session_id_of(value: &Value) -> Result<SessionId, StoreError> {
    bytes_of(value)
        .and_then(|b| std::str::from_utf8(b).ok())
        .and_then(|s| SessionId::parse(s).ok())
        .ok_or_else(|| corrupt("malformed session id in a user's index"))
}

/// A listing index score (Unix ms, as Redis prints a double) as an integer.
fn score_of(value: &Value) -> Result<i64, StoreError> {
    let text = bytes_of(value)
        .and_then(|b| std::str::from_utf8(b).ok())
        .ok_or_else(|| corrupt("listing score is not a string"))?;
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    match text.parse::<f64>() {
        // Scores are whole milliseconds, well inside the range where doubles are exact.
        Ok(ms) if ms.fract() == 0.0 && ms.abs() < 9.0e15 => Ok(ms as i64),
        _ => Err(corrupt(format!("malformed listing score {text:?}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::RevocationEvent;

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
        // No user's expiry index can be taken for a listing index, or the other way round.
        assert_eq!(
            keys.started("a:b"),
            format!("{{tsj:}}us:{}", URL_SAFE_NO_PAD.encode("a:b"))
        );
        for user in ["", "s", "s:x", "\u{fb}", "us:x"] {
            assert!(!keys.user(user).starts_with(&keys.started), "{user:?}");
            assert!(!keys.started(user).starts_with(&keys.user), "{user:?}");
        }
    }

    #[test]
    fn a_script_made_event_is_the_event_the_application_would_encode() {
        let at = OffsetDateTime::now_utc();
        let id = SessionId::generate().unwrap();
        let (head, tail) = session_event_parts(at).unwrap();
        let json = format!("{head}\"{}\"{tail}", id.as_str());
        assert_eq!(
            json,
            encode_event(&RevocationEvent::session_revoked(id.clone(), at)).unwrap()
        );
        let event: RevocationEvent = serde_json::from_str(&json).unwrap();
        assert_eq!(event, RevocationEvent::session_revoked(id, at));
    }

    #[test]
    fn listing_scores_are_whole_milliseconds() {
        let text = |t: &str| Value::BulkString(t.as_bytes().to_vec());
        assert_eq!(score_of(&text("1700000000123")).unwrap(), 1_700_000_000_123);
        assert_eq!(score_of(&text("-5")).unwrap(), -5);
        assert_eq!(score_of(&text("1.7e12")).unwrap(), 1_700_000_000_000);
        for bad in ["1.5", "inf", "nan", "", "12abc"] {
            assert!(score_of(&text(bad)).is_err(), "{bad}");
        }
        assert!(score_of(&Value::Int(3)).is_err());
    }

    #[test]
    fn ttl_rounds_up_and_goes_non_positive_when_past() {
        let now = OffsetDateTime::now_utc();
        assert_eq!(ttl_ms(now + Duration::from_micros(1), now), 1);
        assert_eq!(ttl_ms(now + Duration::from_secs(2), now), 2000);
        assert!(ttl_ms(now - Duration::from_secs(2), now) <= 0);
    }
}
