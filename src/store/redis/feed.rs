//! The revocation feed of a [`RedisStore`](super::RedisStore): the stream `{P}revocations`, read
//! on its own connection.

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionManager;
use time::OffsetDateTime;

use super::reply::{array_of, bounded, bytes_of, corrupt, map_err, server_error};
use crate::revocation::RevocationEvent;
use crate::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, StoreError};

/// Longest a feed read blocks; longer waits are cut to this.
pub(super) const MAX_FEED_WAIT: Duration = Duration::from_secs(30);
/// Most feed events returned by one read.
const FEED_BATCH: usize = 1000;

/// The revocation feed of a [`RedisStore`](super::RedisStore).
pub(super) struct RedisFeed {
    pub(super) conn: ConnectionManager,
    pub(super) key: String,
    pub(super) retention: Duration,
    pub(super) op_timeout: Duration,
}

impl RedisFeed {
    async fn read_events(
        &self,
        after: Option<&FeedCursor>,
        wait: Duration,
    ) -> Result<Vec<(FeedCursor, RevocationEvent)>, StoreError> {
        let wait = wait.min(MAX_FEED_WAIT);
        let block_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX);
        let mut conn = self.conn.clone();
        let from = match after {
            Some(cursor) => {
                if !is_stream_id(&cursor.0) {
                    return Err(corrupt(format!("bad feed cursor {:?}", cursor.0)));
                }
                cursor.0.clone()
            }
            None => {
                let reply: Value = bounded(self.op_timeout, async {
                    redis::cmd("XRANGE")
                        .arg(&self.key)
                        .arg("-")
                        .arg("+")
                        .arg("COUNT")
                        .arg(FEED_BATCH)
                        .query_async(&mut conn)
                        .await
                        .map_err(map_err)
                })
                .await?;
                let events = decode_entries(reply)?;
                if !events.is_empty() || block_ms == 0 {
                    return Ok(events);
                }
                // The stream was empty: anything after the very first id is new.
                "0-0".to_owned()
            }
        };
        let mut cmd = redis::cmd("XREAD");
        cmd.arg("COUNT").arg(FEED_BATCH);
        if block_ms > 0 {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS").arg(&self.key).arg(from);
        let reply: Value = bounded(wait + self.op_timeout, async {
            cmd.query_async(&mut conn).await.map_err(map_err)
        })
        .await?;
        decode_xread(reply)
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
        Box::pin(async move {
            let events = self.read_events(after, wait).await?;
            let caught_up = events.len() < FEED_BATCH;
            let horizon = OffsetDateTime::now_utc() - self.retention;
            Ok(FeedBatch::new(events, caught_up, horizon))
        })
    }
}

/// Whether `text` is a complete stream id (`<ms>-<seq>`).
fn is_stream_id(text: &str) -> bool {
    let Some((ms, seq)) = text.split_once('-') else {
        return false;
    };
    [ms, seq].iter().all(|part| {
        !part.is_empty() && part.len() <= 20 && part.bytes().all(|b| b.is_ascii_digit())
    })
}

/// Decodes an `XREAD` reply: nil (timed out), or per stream `[key, entries]` (RESP2) or a map
/// from key to entries (RESP3). Only one stream is read.
fn decode_xread(reply: Value) -> Result<Vec<(FeedCursor, RevocationEvent)>, StoreError> {
    if let Some(e) = server_error(&reply) {
        return Err(e);
    }
    let streams: Vec<(Value, Value)> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Map(pairs) => pairs,
        Value::Array(items) => items
            .into_iter()
            .map(|stream| {
                let mut parts = array_of(stream)?.into_iter();
                match (parts.next(), parts.next()) {
                    (Some(key), Some(entries)) => Ok((key, entries)),
                    _ => Err(corrupt("malformed XREAD reply")),
                }
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(corrupt("malformed XREAD reply")),
    };
    let mut events = Vec::new();
    for (_, entries) in streams {
        events.extend(decode_entries(entries)?);
    }
    Ok(events)
}

/// Decodes stream entries `[[id, [field, value, …]], …]` into events.
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
                .filter(|s| is_stream_id(s))
                .ok_or_else(|| corrupt("malformed stream entry id"))?
                .to_owned();
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
            Ok((FeedCursor(id), event))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_checked() {
        assert!(is_stream_id("1700000000000-0"));
        for bad in ["", "-", "1-", "-1", "1-2-3", "$", "a-1", "0-0 extra"] {
            assert!(!is_stream_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn odd_replies_are_errors_not_panics() {
        for reply in [
            Value::Int(3),
            Value::Okay,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Nil, Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                Value::Nil,
                Value::Array(vec![Value::Array(vec![Value::BulkString(b"1-0".to_vec())])]),
            ])]),
            Value::Map(vec![(Value::Nil, Value::Int(1))]),
        ] {
            assert!(decode_xread(reply.clone()).is_err(), "{reply:?}");
        }
        assert!(decode_xread(Value::Nil).unwrap().is_empty());
    }
}
