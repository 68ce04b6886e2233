//! The revocation feed of a [`RedisStore`](super::RedisStore): the stream `{P}revocations`, read
//! on its own connection (a blocked `XREAD` would stall every command queued behind it). Its
//! cursors are stream entry ids.
//!
//! * **Catching up** is one script ([`FEED_READ`]): it checks the cursor (below) and returns up
//!   to [`FEED_BATCH`] entries after it (`XRANGE`, one more to learn whether anything follows).
//!   The batch is `caught_up` exactly when nothing retained follows it. Only a caught-up read
//!   with a `wait` then blocks (`XREAD BLOCK`, at most 30 s) after its cursor, with the same
//!   script pipelined behind it (one round trip), so every event handed out comes from a
//!   checked read.
//! * **No silent gaps.** A cursor is lost ([`StoreError::FeedCursorLost`]) when an entry after
//!   it was deleted: it is older than the stream's `max-deleted-entry-id`. Redis raises that id
//!   on `XDEL` but not when trimming, so the append scripts trim exactly (`XTRIM MINID`, to
//!   entries younger than the retention, on Redis' clock) and record the newest entry trimmed
//!   there (`XSETID … MAXDELETEDID`). A cursor is also lost when the stream is missing or has not
//!   reached it (Redis restarted empty, was flushed, or failed over to a replica that lagged).
//!   A cursor that is no stream id at all was not issued here: lost too.
//! * **Stream creation.** `RedisStoreBuilder::build` creates the stream if it is missing, and so
//!   does every append, empty and with `max-deleted-entry-id` at its creation id. A missing
//!   stream therefore means lost data, and a cursor from a stream that was lost and recreated
//!   since is older than the new stream's `max-deleted-entry-id`.
//! * **Horizon.** Every entry younger than the retention is kept, and every entry after
//!   `max-deleted-entry-id`; the horizon is the later of the two instants (a stream created a
//!   minute ago knows a minute), or now when the stream is missing: nothing before it is known.
//!   The age of `max-deleted-entry-id` is taken on Redis' clock, so skew does not shift it.
//!
//! Not detected: trimming by anything but this store (`XTRIM` by hand, or by an earlier version
//! of this crate, which trimmed approximately without recording it), and revocations lost in a
//! failover when the new primary has since appended past the reader's cursor (asynchronous
//! replication loses the revoked session's deletion then too).

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::{ErrorKind, RedisError, ServerErrorKind, Value};
use time::OffsetDateTime;

use super::reply::{array_of, bounded, bytes_of, corrupt, int_of, map_err};
use super::scripts::FEED_READ;
use crate::store::RevocationEvent;
use crate::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, StoreError};

/// Longest a feed read blocks; longer waits are cut to this.
pub(super) const MAX_FEED_WAIT: Duration = Duration::from_secs(30);
/// Most feed events returned by one read.
pub(super) const FEED_BATCH: usize = 1000;

/// The revocation feed of a [`RedisStore`](super::RedisStore).
pub(super) struct RedisFeed {
    /// Dedicated: a blocked `XREAD` would stall every command queued behind it.
    pub(super) conn: ConnectionManager,
    pub(super) key: String,
    pub(super) retention: Duration,
    /// Bound on one non-blocking call, reconnection included.
    pub(super) op_timeout: Duration,
}

/// A stream entry id, `<ms>-<seq>`, ordered as Redis orders them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct StreamId {
    pub(super) ms: u64,
    seq: u64,
}

impl StreamId {
    pub(super) const ZERO: Self = Self { ms: 0, seq: 0 };

    /// Parses a complete id; `None` for anything else (`$`, `1`, `1-2-3`, overflow).
    pub(super) fn parse(text: &str) -> Option<Self> {
        let (ms, seq) = text.split_once('-')?;
        let part = |p: &str| {
            (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .then(|| p.parse::<u64>().ok())
                .flatten()
        };
        Some(Self {
            ms: part(ms)?,
            seq: part(seq)?,
        })
    }
}

impl fmt::Display for StreamId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.seq)
    }
}

/// What the catch-up script saw.
pub(super) struct Snapshot {
    /// The entries after the cursor, at most [`FEED_BATCH`].
    pub(super) events: Vec<(FeedCursor, RevocationEvent)>,
    /// Whether no retained entry followed them.
    pub(super) caught_up: bool,
    /// Where a blocking read resumes when `events` is empty.
    pub(super) block_after: StreamId,
    pub(super) horizon: OffsetDateTime,
}

/// The catch-up step on the stream `key`: gap check and range read in one script ([`FEED_READ`]),
/// bounded by `op_timeout`. Shared by the single-node feed and each partition of the Cluster one.
pub(super) async fn checked_read(
    conn: &mut impl ConnectionLike,
    key: &str,
    after: Option<StreamId>,
    retention: Duration,
    op_timeout: Duration,
) -> Result<Snapshot, StoreError> {
    let mut call = FEED_READ.prepare_invoke();
    call.key(key)
        .arg(after.map(|id| id.to_string()).unwrap_or_default())
        .arg(FEED_BATCH + 1);
    let reply: Value = bounded(op_timeout, async {
        call.invoke_async(conn).await.map_err(map_err)
    })
    .await?;
    decode_read(reply, after, retention, OffsetDateTime::now_utc())
}

impl RedisFeed {
    /// The catch-up step: gap check and range read in one script.
    async fn checked_read(&self, after: Option<StreamId>) -> Result<Snapshot, StoreError> {
        let mut conn = self.conn.clone();
        checked_read(&mut conn, &self.key, after, self.retention, self.op_timeout).await
    }

    /// Blocks until an entry after `block_after` exists or `wait` has passed, then reads from
    /// `after` through [`FEED_READ`], in one round trip: the script is pipelined behind the
    /// `XREAD`, and Redis runs a connection's commands in order, so it runs once the `XREAD`
    /// returns. Nothing is taken from the `XREAD` reply itself: the stream may have been lost
    /// and recreated while it blocked, which only the script can tell.
    async fn wait_then_read(
        &self,
        after: Option<StreamId>,
        block_after: StreamId,
        wait: Duration,
    ) -> Result<Snapshot, StoreError> {
        let block_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
        let mut pipe = redis::pipe();
        pipe.cmd("XREAD")
            .arg("COUNT")
            .arg(1)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(&self.key)
            .arg(block_after.to_string())
            .ignore()
            .cmd("EVALSHA")
            .arg(FEED_READ.get_hash())
            .arg(1)
            .arg(&self.key)
            .arg(after.map(|id| id.to_string()).unwrap_or_default())
            .arg(FEED_BATCH + 1);
        let mut conn = self.conn.clone();
        let replies = bounded(wait + self.op_timeout, async {
            Ok::<_, StoreError>(pipe.query_async::<Vec<Value>>(&mut conn).await)
        })
        .await?;
        let no_script = |e: &RedisError| e.kind() == ErrorKind::Server(ServerErrorKind::NoScript);
        let reply = match replies {
            Ok(mut replies) if replies.len() == 1 => replies.remove(0),
            Ok(_) => return Err(corrupt("malformed feed read reply")),
            // Redis forgot its scripts (it restarted): the checked read loads it again.
            Err(e) if no_script(&e) => return self.checked_read(after).await,
            Err(e) => return Err(map_err(e)),
        };
        decode_read(reply, after, self.retention, OffsetDateTime::now_utc())
    }

    async fn read_batch(
        &self,
        after: Option<&FeedCursor>,
        wait: Duration,
    ) -> Result<FeedBatch, StoreError> {
        // A cursor this feed cannot have issued names no position in it: start over.
        let after = match after {
            Some(cursor) => Some(StreamId::parse(&cursor.0).ok_or(StoreError::FeedCursorLost)?),
            None => None,
        };
        let first = self.checked_read(after).await?;
        let wait = wait.min(MAX_FEED_WAIT);
        if !first.events.is_empty() || !first.caught_up || wait.is_zero() {
            return Ok(first.into_batch());
        }
        Ok(self
            .wait_then_read(after, first.block_after, wait)
            .await?
            .into_batch())
    }
}

impl Snapshot {
    fn into_batch(self) -> FeedBatch {
        FeedBatch::new(self.events, self.caught_up, self.horizon)
    }
}

impl RevocationFeed for RedisFeed {
    fn retention(&self) -> Duration {
        self.retention
    }

    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(self.read_batch(after, wait))
    }
}

/// Decodes the catch-up script's reply (see [`FEED_READ`]) and judges the cursor.
///
/// A cursor has lost events when an entry after it was deleted (it is older than the stream's
/// `max-deleted-entry-id`, which trimming and stream creation maintain), when the stream is gone
/// (Redis lost its data), or when the stream never reached it (its last id is older, as after a
/// failover to a replica that lagged behind).
fn decode_read(
    reply: Value,
    after: Option<StreamId>,
    retention: Duration,
    now: OffsetDateTime,
) -> Result<Snapshot, StoreError> {
    let mut parts = array_of(reply)?.into_iter();
    let exists = parts.next().as_ref().map(int_of).transpose()?;
    let redis_now = parts.next().as_ref().map(int_of).transpose()?;
    let (Some(exists), Some(redis_now)) = (exists, redis_now) else {
        return Err(corrupt("malformed feed read reply"));
    };
    if exists == 0 {
        // Nothing is known before now: the stream the store made at connect time is gone.
        return match after {
            Some(_) => Err(StoreError::FeedCursorLost),
            None => Ok(Snapshot {
                events: Vec::new(),
                caught_up: true,
                block_after: StreamId::ZERO,
                horizon: now,
            }),
        };
    }
    let mut id_at = |what: &str| {
        parts
            .next()
            .as_ref()
            .and_then(bytes_of)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(StreamId::parse)
            .ok_or_else(|| corrupt(format!("feed stream reports no {what}")))
    };
    let last = id_at("last-generated-id")?;
    let deleted = id_at("max-deleted-entry-id")?;
    let entries = parts
        .next()
        .ok_or_else(|| corrupt("feed read reply lacks its entries"))?;
    if after.is_some_and(|cursor| cursor < deleted || cursor > last) {
        return Err(StoreError::FeedCursorLost);
    }
    let mut events = decode_entries(entries)?;
    let caught_up = events.len() <= FEED_BATCH;
    events.truncate(FEED_BATCH);
    // Every entry after `deleted` is retained; so is every entry younger than the retention.
    // Redis' clock dates `deleted`: only its age is used, so clock skew does not matter.
    let mut horizon = earlier(now, retention);
    if deleted != StreamId::ZERO {
        let age_ms = u64::try_from(redis_now)
            .unwrap_or(0)
            .saturating_sub(deleted.ms.saturating_add(1));
        horizon = horizon.max(earlier(now, Duration::from_millis(age_ms)));
    }
    let block_after = match (after, events.is_empty()) {
        (Some(cursor), true) => cursor,
        // Nothing retained to read from the start: anything after the last id is news.
        (None, true) => last,
        (_, false) => StreamId::ZERO,
    };
    Ok(Snapshot {
        events,
        caught_up,
        block_after,
        horizon,
    })
}

/// `now` minus `span`, saturating at the Unix epoch (a retention may be configured absurdly long).
fn earlier(now: OffsetDateTime, span: Duration) -> OffsetDateTime {
    time::Duration::try_from(span)
        .ok()
        .and_then(|span| now.checked_sub(span))
        .map_or(OffsetDateTime::UNIX_EPOCH, |t| {
            t.max(OffsetDateTime::UNIX_EPOCH)
        })
}

/// Decodes stream entries `[[id, [field, value, …]], …]` into events. An entry that cannot be
/// decoded is an error, never skipped: a reader that skipped it could accept a revoked JWT.
fn decode_entries(entries: Value) -> Result<Vec<(FeedCursor, RevocationEvent)>, StoreError> {
    array_of(entries)?
        .into_iter()
        .map(|entry| {
            let mut parts = array_of(entry)?.into_iter();
            let (Some(id), Some(fields)) = (parts.next(), parts.next()) else {
                return Err(corrupt("malformed stream entry"));
            };
            let id = bytes_of(&id)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(StreamId::parse)
                .ok_or_else(|| corrupt("malformed stream entry id"))?;
            let fields = match fields {
                // RESP3 may send an entry's fields as a map.
                Value::Map(pairs) => pairs.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                other => array_of(other)?,
            };
            let payload = fields
                .chunks(2)
                .find(|pair| pair.first().and_then(bytes_of) == Some(b"event".as_slice()))
                .and_then(|pair| pair.get(1))
                .and_then(bytes_of)
                .ok_or_else(|| corrupt(format!("feed entry {id} has no event")))?;
            let event: RevocationEvent = serde_json::from_slice(payload).map_err(|e| {
                StoreError::Corrupt(format!("undecodable feed entry {id}: {e}").into())
            })?;
            Ok((FeedCursor(id.to_string()), event))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn entry(id: &str, event: &RevocationEvent) -> Value {
        Value::Array(vec![
            bulk(id),
            Value::Array(vec![
                bulk("event"),
                bulk(&serde_json::to_string(event).unwrap()),
            ]),
        ])
    }

    fn reply(last: &str, deleted: &str, entries: Vec<Value>) -> Value {
        Value::Array(vec![
            Value::Int(1),
            Value::Int(1_000_000),
            bulk(last),
            bulk(deleted),
            Value::Array(entries),
        ])
    }

    fn id(text: &str) -> StreamId {
        StreamId::parse(text).unwrap()
    }

    #[test]
    fn stream_ids_parse_and_order_numerically() {
        assert_eq!(id("1700000000000-0").to_string(), "1700000000000-0");
        assert!(id("9-5") < id("10-0"));
        assert!(id("10-9") < id("10-10"));
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1-2-3",
            "$",
            "a-1",
            "0-0 extra",
            "+1-0",
            "99999999999999999999-0",
        ] {
            assert!(StreamId::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn cursors_behind_a_deletion_or_beyond_the_stream_are_lost() {
        let now = OffsetDateTime::now_utc();
        let hour = Duration::from_secs(3600);
        let read = |after: &str, last: &str, deleted: &str| {
            decode_read(reply(last, deleted, vec![]), Some(id(after)), hour, now)
        };
        assert!(matches!(
            read("5-0", "9-0", "6-0"),
            Err(StoreError::FeedCursorLost)
        ));
        assert!(matches!(
            read("10-0", "9-0", "0-0"),
            Err(StoreError::FeedCursorLost)
        ));
        // The deleted entry itself, or anything after it, lost nothing.
        assert!(read("6-0", "9-0", "6-0").unwrap().caught_up);
        assert!(read("9-0", "9-0", "6-0").unwrap().caught_up);
        // A missing stream: lost for a cursor, empty and caught up (known from now) for a start.
        let missing = || Value::Array(vec![Value::Int(0), Value::Int(1)]);
        assert!(matches!(
            decode_read(missing(), Some(id("1-0")), hour, now),
            Err(StoreError::FeedCursorLost)
        ));
        let fresh = decode_read(missing(), None, hour, now).unwrap();
        assert!(fresh.caught_up && fresh.events.is_empty());
        assert_eq!(fresh.horizon, now);
    }

    #[test]
    fn caught_up_only_when_nothing_follows_the_batch() {
        let now = OffsetDateTime::now_utc();
        let event = RevocationEvent::user_revoked("u", now);
        let entries = |n: usize| (0..n).map(|i| entry(&format!("5-{i}"), &event)).collect();
        let full = decode_read(
            reply("9-0", "0-0", entries(FEED_BATCH + 1)),
            None,
            Duration::ZERO,
            now,
        )
        .unwrap();
        assert_eq!(full.events.len(), FEED_BATCH);
        assert!(!full.caught_up);
        let exact = decode_read(
            reply("9-0", "0-0", entries(FEED_BATCH)),
            None,
            Duration::ZERO,
            now,
        )
        .unwrap();
        assert_eq!(exact.events.len(), FEED_BATCH);
        assert!(exact.caught_up);
    }

    #[test]
    fn horizon_is_the_later_of_retention_and_the_last_deletion() {
        let now = OffsetDateTime::now_utc();
        let retention = Duration::from_secs(600);
        let read = |deleted: &str| {
            decode_read(reply("999000-0", deleted, vec![]), None, retention, now).unwrap()
        };
        // Redis' clock says 1_000_000 ms: this deletion is 10 s old by that clock.
        assert_eq!(read("989999-0").horizon, now - Duration::from_secs(10));
        // Older than the retention, or none at all: the retention edge.
        assert_eq!(read("1-0").horizon, now - retention);
        let never = read("0-0");
        assert_eq!(never.horizon, now - retention);
        // An absurd retention is no reason to panic.
        let forever = decode_read(reply("1-0", "0-0", vec![]), None, Duration::MAX, now).unwrap();
        assert_eq!(forever.horizon, OffsetDateTime::UNIX_EPOCH);
        assert_eq!(never.block_after, id("999000-0"));
    }

    #[test]
    fn odd_replies_are_errors_not_panics() {
        let now = OffsetDateTime::now_utc();
        let event = RevocationEvent::user_revoked("u", now);
        let good = entry("1-0", &event);
        for bad in [
            Value::Int(3),
            Value::Okay,
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Int(1), Value::Int(5), Value::Nil]),
            reply("x", "0-0", vec![]),
            reply("1-0", "0-0", vec![Value::Int(1)]),
            reply("1-0", "0-0", vec![Value::Array(vec![bulk("1-0")])]),
            reply(
                "1-0",
                "0-0",
                vec![Value::Array(vec![bulk("$"), Value::Array(vec![])])],
            ),
            reply(
                "1-0",
                "0-0",
                vec![Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("other"), bulk("1")]),
                ])],
            ),
            reply(
                "1-0",
                "0-0",
                vec![Value::Array(vec![
                    bulk("1-0"),
                    Value::Array(vec![bulk("event"), bulk("{")]),
                ])],
            ),
            // One good entry does not excuse a bad one after it.
            reply(
                "2-0",
                "0-0",
                vec![good.clone(), Value::Array(vec![Value::Nil, Value::Nil])],
            ),
        ] {
            assert!(
                decode_read(bad.clone(), None, Duration::ZERO, now).is_err(),
                "{bad:?}"
            );
        }
        let ok = decode_read(reply("1-0", "0-0", vec![good]), None, Duration::ZERO, now).unwrap();
        assert_eq!(ok.events, vec![(FeedCursor("1-0".into()), event)]);
    }
}
