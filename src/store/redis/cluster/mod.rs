//! The Redis Cluster store (feature `redis-cluster`): sessions spread over the cluster's
//! shards, with a partitioned revocation feed.
//!
//! [`RedisStore`](super::RedisStore) keeps every key of a deployment under one hash tag, so on a
//! cluster all sessions live on one shard. [`RedisClusterStore`] splits them into `N`
//! *partitions* (default 16), each with a hash tag of its own, `{P<k>}` for the key prefix `P`
//! (default `tsj:`) and `k` in `0..N`, so the partitions land on different slots and so on
//! different masters.
//!
//! # What goes where
//!
//! A user's partition is `SHA-256(user id) mod N` (the first 8 bytes, big-endian). Everything the
//! atomic writes need sits there, with exactly the key layout, the Lua scripts and the guarantees
//! of [`RedisStore`](super::RedisStore) (see [its documentation](super)), under the tag
//! `{P<k>}` instead of `{P}`:
//!
//! | key | type | content | expiry |
//! |---|---|---|---|
//! | `{P<k>}s:<session id>` | hash | the session record, as in `RedisStore` | session's remaining lifetime |
//! | `{P<k>}u:<user id, base64url>` | sorted set | the user's expiry index | the user's last expiry |
//! | `{P<k>}us:<user id, base64url>` | sorted set | the user's listing index | the user's last expiry |
//! | `{P<k>}revocations` | stream | the revocation events of partition `k`'s users | none; trimmed to the feed retention |
//!
//! So `create` with its session limit, `update` (the version compare-and-swap, and its feed
//! event), `revoke` and `revoke_all` each stay one script on one slot, atomic with their feed
//! event, as on a single node.
//!
//! The store is handed only a token hash by `find_by_token`, and only a session id by `get` and
//! `revoke`, so two small indexes find the partition, each in the partition that what it is
//! looked up by picks:
//!
//! | key | type | content | expiry |
//! |---|---|---|---|
//! | `{P<t>}tok:<token hash, base64url>`, `t` = the token hash's first 8 bytes mod `N` | string | `<k>:<session id>` | at least the session's remaining lifetime |
//! | `{P<i>}sid:<session id>`, `i` = `SHA-256(session id) mod N` | string | `<k>` | at least the session's remaining lifetime |
//!
//! These index keys live on other slots than the record, so no script can write them with it.
//! They are therefore only *pointers*, and the record has the last word:
//!
//! * A lookup follows the pointer and returns the session only if the record exists, is live, is
//!   the session named, and (by token) holds the token hash presented. A pointer left behind (a
//!   crash between two writes, a rotated token, a revoked session) leads nowhere, and can never
//!   bring a session back or lead to another one.
//! * They are written *before* the record (`create`), or before the compare-and-swap (`update`,
//!   the new token's key and the session id key), by a small script: a missing key is set, an
//!   existing one only ever gets a later expiry (`PEXPIRE … GT`), so an index never expires before its live
//!   session. Writing them first means a crash leaves at worst a pointer to nothing; writing the
//!   record first could leave a session that no token finds but that listings show. A key that
//!   already points at another session is a duplicate token or id: the call fails, as
//!   `RedisStore` fails.
//! * After an update the record's previous token key is deleted (rotation) or its expiry pushed
//!   to the session's (sliding expiry); revocation leaves the pointers to expire with the
//!   session's lifetime. Deleting them is cleanup, not correctness.
//! * `revoke` of an id whose index key is missing (an id never issued, or an index key lost to
//!   eviction under memory pressure) tries every partition, so a live session is always revoked.
//!
//! A lookup by token or id costs two round trips (pointer, then record), as does `revoke`;
//! `list_by_user` and `revoke_all` one; `update` three (the pointers, concurrently; the script;
//! the token pointer's expiry, or the rotated-away token's key).
//!
//! `N` is fixed for the life of the data: changing it moves users to other partitions, whose
//! sessions the store would then not find. Changing it is a migration (sign everyone out, or
//! copy the keys over).
//!
//! # The revocation feed
//!
//! Each partition has its own stream, in the partition's slot, so each event is appended in the
//! script that makes the change (the contract's atomicity). [`SessionStore::revocation_feed`]
//! reads all `N` streams (one checked read each, concurrently, see [`RedisStore`'s
//! feed](super#the-revocation-feed)) and merges them:
//!
//! * **Cursor**: one string that holds a stream id per partition (`c1:<id0>,<id1>,…`, `-` for a
//!   partition not read from yet). A cursor that is not of this form, or was made for another
//!   number of partitions, is lost ([`StoreError::FeedCursorLost`]).
//! * **Order**: within a partition (so for every session and user) exactly the append order.
//!   Across partitions, events are merged by the stream id's time (the master's clock), then the
//!   event's own time (the application's clock, which orders one instance's revocations within
//!   a millisecond), then the partition. The merge never hands out an event of one partition
//!   ahead of an event of another partition that has not been read yet (it stops where a
//!   partition's batch ends), so every reader sees the same sequence; revocations on different
//!   masters whose clocks disagree may come in an order that the clocks, not the calls, decide.
//!   Applying revocations does not depend on their order (a revoked session stays revoked, a
//!   user's cut-off only moves later), so nothing depends on the order across partitions.
//! * **Caught up** only when every partition's read was caught up and every event read was
//!   handed out; **lost** when any partition's cursor is; the **horizon** is the latest of the
//!   partitions' horizons (every partition knows everything after it).
//! * **Waiting**: a blocking `XREAD` may name streams of one slot only, and a blocked read
//!   stalls its connection, so a caught-up read with a wait polls instead: it reads all
//!   partitions again every [`RedisClusterStoreBuilder::feed_poll_interval`] (default 100 ms)
//!   until an event arrives or the wait is over. A revocation therefore reaches other instances
//!   within the poll interval plus a round trip; each instance costs the cluster `N` small
//!   scripts per interval (160 per second with the defaults).
//!
//! # Connections, redirections and failover
//!
//! Commands go through one [`ClusterConnection`] (one multiplexed connection per node), which
//! follows `MOVED` and `ASK` redirections, refreshes its slot map when they or a connection
//! error say the cluster changed, and so finds a promoted replica after a master fails over.
//! Timeouts are as for [`RedisStore`](super::RedisStore): an unreachable or stalled node yields
//! [`StoreError::Unavailable`] within about two seconds, never a hang; calls succeed again once
//! the cluster has promoted a replica (about the cluster's `cluster-node-timeout` plus an
//! election). As on a single node, replication is asynchronous: a revocation acknowledged by a
//! master that dies before its replica received it is lost with the deletion itself.

mod builder;
mod feed;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::try_join_all;
use redis::Value;
use redis::cluster_async::ClusterConnection;
use time::OffsetDateTime;

pub use self::builder::RedisClusterStoreBuilder;
use self::feed::ClusterFeed;
use super::hash_tag::{HashTag, TokenIndex};
use super::options::RedisOptions;
use super::reply::{bounded, bytes_of, corrupt, int_of, map_err};
use super::scripts::KEEP_INDEX;
use super::{Keys, ttl_ms};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome,
};

/// Default number of partitions.
const DEFAULT_PARTITIONS: u16 = 16;
/// Most partitions a store may have.
const MAX_PARTITIONS: u16 = 1024;
/// Default interval at which a waiting feed read polls the partitions.
const DEFAULT_FEED_POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A [`SessionStore`] in a Redis Cluster: sessions spread over the shards by user, with a
/// partitioned revocation feed.
///
/// Clones share the same connection. `Debug` output shows the key prefix, the partition count
/// and the timeouts, never the node URLs (which may hold a password).
///
/// See the [module documentation](self) for the key layout, how the atomic writes stay on one
/// slot, and how the feed's partitions are read and merged. In short: a user's sessions, indexes
/// and revocation events share one of `N` hash tags, so every write is one script on one slot as
/// with [`RedisStore`](super::RedisStore); a session is found by token or id through a small
/// pointer key that the record always confirms.
///
/// # Failures
///
/// As [`RedisStore`](super::RedisStore): every call is bounded in time (about 2 s by default),
/// an unreachable node or a cluster without a master for a slot is [`StoreError::Unavailable`],
/// and the connection finds the cluster's new layout on its own after a failover.
///
/// # Example
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use tower_session_jwt::{NewSession, Sessions, SigningKey};
/// use tower_session_jwt::store::redis::cluster::RedisClusterStore;
///
/// let store = RedisClusterStore::builder([
///     "redis://127.0.0.1:7000",
///     "redis://127.0.0.1:7001",
///     "redis://127.0.0.1:7002",
/// ])
/// .key_prefix("myapp:sessions:")
/// .build()
/// .await?;
/// let sessions = Sessions::builder()
///     .store(store)
///     .signing_key(SigningKey::generate_ed25519()?)
///     .build()?;
/// let login = sessions.create("user-1", NewSession::new()).await?;
/// // Revoking here makes the session's JWT fail on every instance reading the same cluster.
/// sessions.revoke(&login.session.session_id).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct RedisClusterStore {
    inner: Arc<Inner>,
}

struct Inner {
    conn: ClusterConnection,
    /// The keys of each partition, by partition number.
    partitions: Vec<Keys>,
    retention: Duration,
    /// Bound on one call, redirections and reconnection included.
    op_timeout: Duration,
    feed: Arc<ClusterFeed>,
}

impl fmt::Debug for RedisClusterStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisClusterStore")
            .field("keys", &format_args!("{}*", self.inner.partitions[0].base))
            .field("partitions", &self.inner.partitions.len())
            .field("feed_retention", &self.inner.retention)
            .field("op_timeout", &self.inner.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisClusterStore {
    /// Connects with the default settings (key prefix `tsj:`, 16 partitions, feed retention 15
    /// minutes, 1 s timeouts) through the seed nodes `urls` (any nodes of the cluster, such as
    /// `redis://127.0.0.1:7000`; the rest are discovered).
    pub async fn connect<I, S>(urls: I) -> Result<Self, StoreError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Self::builder(urls).build().await
    }

    /// A builder for a store on the cluster that the seed nodes `urls` belong to; see
    /// [`RedisClusterStoreBuilder`].
    pub fn builder<I, S>(urls: I) -> RedisClusterStoreBuilder
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        RedisClusterStoreBuilder {
            urls: urls.into_iter().map(|u| u.as_ref().to_owned()).collect(),
            options: RedisOptions::default(),
            partitions: DEFAULT_PARTITIONS,
            poll_interval: DEFAULT_FEED_POLL_INTERVAL,
        }
    }

    /// The number of partitions.
    pub fn partitions(&self) -> usize {
        self.inner.partitions.len()
    }

    /// The hash tag that begins every key of partition `k` (e.g. `{tsj:3}`), or `None` past the
    /// last partition.
    pub fn partition_tag(&self, k: usize) -> Option<&str> {
        self.inner.partitions.get(k).map(|keys| keys.base.as_str())
    }

    /// The partition that holds a user's sessions, indexes and revocation events.
    pub fn partition_of_user(&self, user_id: &str) -> usize {
        partition_of(
            aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, user_id.as_bytes()).as_ref(),
            self.partitions(),
        )
    }

    fn tag(&self, k: usize) -> HashTag<'_> {
        HashTag {
            keys: &self.inner.partitions[k],
            token_index: TokenIndex::Elsewhere,
            retention: self.inner.retention,
            op_timeout: self.inner.op_timeout,
        }
    }

    fn conn(&self) -> ClusterConnection {
        self.inner.conn.clone()
    }

    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    /// The token key of `hash`: in the partition the hash itself picks.
    fn token_key(&self, hash: &TokenHash) -> String {
        let t = partition_of(hash.as_bytes(), self.partitions());
        self.inner.partitions[t].token(hash)
    }

    /// The session id key of `id`: in the partition the id's hash picks.
    fn session_id_key(&self, id: &SessionId) -> String {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, id.as_str().as_bytes());
        let i = partition_of(digest.as_ref(), self.partitions());
        format!("{}sid:{}", self.inner.partitions[i].base, id.as_str())
    }

    /// [`KEEP_INDEX`] on one index key: `Ok(false)` when it points at another session.
    async fn keep_index(&self, key: &str, value: &str, ttl_ms: i64) -> Result<bool, StoreError> {
        let mut call = KEEP_INDEX.prepare_invoke();
        call.key(key).arg(value).arg(ttl_ms);
        let mut conn = self.conn();
        let reply: Value = bounded(self.inner.op_timeout, async {
            call.invoke_async(&mut conn).await.map_err(map_err)
        })
        .await?;
        Ok(int_of(&reply)? == 1)
    }

    /// The value of an index key, or `None`.
    async fn read_index(&self, key: &str) -> Result<Option<String>, StoreError> {
        let mut conn = self.conn();
        let reply: Value = bounded(self.inner.op_timeout, async {
            redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(map_err)
        })
        .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        bytes_of(&reply)
            .and_then(|b| std::str::from_utf8(b).ok())
            .map(|s| Some(s.to_owned()))
            .ok_or_else(|| corrupt("an index key holds no string"))
    }

    /// Deletes index keys that no longer lead anywhere. Cleanup only: a pointer left behind
    /// leads to no session (the record decides), and expires with the session's lifetime.
    async fn drop_index(&self, keys: &[String]) {
        let mut conn = self.conn();
        for key in keys {
            let deleted: Result<Result<i64, StoreError>, _> =
                tokio::time::timeout(self.inner.op_timeout, async {
                    redis::cmd("DEL")
                        .arg(key)
                        .query_async(&mut conn)
                        .await
                        .map_err(map_err)
                })
                .await;
            if !matches!(deleted, Ok(Ok(_))) {
                tracing::debug!("could not delete a stale session index key; it will expire");
            }
        }
    }

    /// The partition a session id key names.
    fn partition_named(&self, value: &str) -> Result<usize, StoreError> {
        value
            .parse::<usize>()
            .ok()
            .filter(|&k| k < self.partitions() && !value.starts_with('+'))
            .ok_or_else(|| corrupt("a session index key names no partition"))
    }

    /// The partition of the session with this id, from its id key.
    async fn partition_of_session(&self, id: &SessionId) -> Result<Option<usize>, StoreError> {
        match self.read_index(&self.session_id_key(id)).await? {
            Some(value) => Ok(Some(self.partition_named(&value)?)),
            None => Ok(None),
        }
    }
}

/// `N` from the first 8 bytes of a hash, big-endian.
fn partition_of(hash: &[u8], partitions: usize) -> usize {
    let mut first = [0u8; 8];
    for (to, from) in first.iter_mut().zip(hash) {
        *to = *from;
    }
    // `partitions` is at most MAX_PARTITIONS, so both conversions are exact.
    (u64::from_be_bytes(first) % partitions.max(1) as u64) as usize
}

/// The value of a token key: the session's partition and id.
fn token_entry(partition: usize, id: &SessionId) -> String {
    format!("{partition}:{}", id.as_str())
}

impl SessionStore for RedisClusterStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let session = &record.session;
        let now = self.now();
        let p = self.partition_of_user(&session.user_id);
        let ttl = ttl_ms(session.expires_at, now);
        let index = [
            self.token_key(&record.token_hash),
            self.session_id_key(&session.session_id),
        ];
        if ttl > 0 {
            // The pointers first: a crash after them leaves pointers to nothing, which lookups
            // ignore and which expire; the other order could leave a session no token finds.
            let (entry, partition) = (token_entry(p, &session.session_id), p.to_string());
            let (token, id) = tokio::try_join!(
                self.keep_index(&index[0], &entry, ttl),
                self.keep_index(&index[1], &partition, ttl),
            )?;
            if !token || !id {
                // Ids and token hashes are 128/256 random bits; a collision means a broken RNG.
                return Err(StoreError::Backend("duplicate session id or token".into()));
            }
        }
        let outcome = self
            .tag(p)
            .create(&mut self.conn(), &record, limit, now)
            .await?;
        if outcome == CreateOutcome::LimitReached {
            self.drop_index(&index).await;
        }
        Ok(outcome)
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let Some(entry) = self.read_index(&self.token_key(token_hash)).await? else {
            return Ok(None);
        };
        let (p, id) = entry
            .split_once(':')
            .and_then(|(p, id)| Some((self.partition_named(p).ok()?, SessionId::parse(id).ok()?)))
            .ok_or_else(|| corrupt("malformed token index entry"))?;
        self.tag(p)
            .get_with_token(&mut self.conn(), &id, token_hash, self.now())
            .await
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let Some(p) = self.partition_of_session(session_id).await? else {
            return Ok(None);
        };
        self.tag(p)
            .get(&mut self.conn(), session_id, self.now())
            .await
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        self.tag(self.partition_of_user(user_id))
            .list_by_user(&mut self.conn(), user_id, page, self.now())
            .await
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let session = &update.session;
        if session.version == 0 {
            return Ok(UpdateOutcome::Stale);
        }
        let now = self.now();
        let p = self.partition_of_user(&session.user_id);
        let ttl = ttl_ms(session.expires_at, now);
        let entry = token_entry(p, &session.session_id);
        let new_token_key = update.token_hash.as_ref().map(|h| self.token_key(h));
        if ttl > 0 {
            // Before the compare-and-swap, so no index can expire before the record does; an
            // update that then fails leaves them longer-lived than needed, which is harmless.
            let (id_key, partition) = (self.session_id_key(&session.session_id), p.to_string());
            let new_token = async {
                match &new_token_key {
                    Some(key) => self.keep_index(key, &entry, ttl).await,
                    None => Ok(true),
                }
            };
            let (id_kept, token_kept) =
                tokio::try_join!(self.keep_index(&id_key, &partition, ttl), new_token)?;
            if !id_kept {
                return Err(StoreError::Backend(
                    "an update may not move a session to another user".into(),
                ));
            }
            if !token_kept {
                return Err(StoreError::Backend("duplicate token".into()));
            }
        }
        let updated = self.tag(p).update(&mut self.conn(), update, now).await?;
        match (updated.outcome, updated.previous_token, new_token_key) {
            (UpdateOutcome::Updated, Some(previous), new_key) => {
                let previous_key = URL_SAFE_NO_PAD
                    .decode(&previous)
                    .ok()
                    .and_then(|bytes| <[u8; 32]>::try_from(bytes).ok())
                    .map(|bytes| self.token_key(&TokenHash::from_bytes(bytes)))
                    .ok_or_else(|| corrupt("a session record holds a malformed token hash"))?;
                match new_key {
                    Some(new_key) if new_key != previous_key => {
                        self.drop_index(&[previous_key]).await;
                    }
                    // Sliding expiry: the token key must live as long as the session.
                    _ if ttl > 0 => {
                        self.keep_index(&previous_key, &entry, ttl).await?;
                    }
                    _ => {}
                }
                Ok(UpdateOutcome::Updated)
            }
            (outcome, _, new_key) => {
                if let Some(new_key) = new_key
                    && outcome != UpdateOutcome::Updated
                {
                    self.drop_index(&[new_key]).await;
                }
                Ok(outcome)
            }
        }
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = self.now();
        if let Some(p) = self.partition_of_session(session_id).await? {
            return self.tag(p).revoke(&mut self.conn(), session_id, now).await;
        }
        // No pointer: an unknown id, or a pointer lost (evicted). Only the session's own
        // partition can hold its record, so trying them all revokes it wherever it is.
        let found =
            try_join_all((0..self.partitions()).map(|k| async move {
                self.tag(k).revoke(&mut self.conn(), session_id, now).await
            }))
            .await?;
        Ok(found.into_iter().flatten().next())
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.tag(self.partition_of_user(user_id))
            .revoke_all(&mut self.conn(), user_id, except, self.now())
            .await
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_follow_the_first_eight_bytes() {
        let mut hash = [0u8; 32];
        hash[7] = 17;
        assert_eq!(partition_of(&hash, 16), 1);
        assert_eq!(partition_of(&hash, 1), 0);
        // A short input (never passed) is no reason to panic.
        assert_eq!(partition_of(&[1], 16), 0);
        let spread: std::collections::HashSet<usize> = (0..200u32)
            .map(|i| {
                let d = aws_lc_rs::digest::digest(
                    &aws_lc_rs::digest::SHA256,
                    format!("user-{i}").as_bytes(),
                );
                partition_of(d.as_ref(), 16)
            })
            .collect();
        assert_eq!(spread.len(), 16, "200 users reach every partition");
    }
}
