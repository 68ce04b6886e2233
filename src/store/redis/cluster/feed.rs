//! The revocation feed of a [`RedisClusterStore`](super::RedisClusterStore): one stream per
//! partition, each read as [`RedisStore`](super::super::RedisStore) reads its one stream, merged
//! into one sequence with one composite cursor. See the [store's documentation](super) for the
//! order, the cursor and why waiting polls.

use std::collections::VecDeque;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::cluster_async::ClusterConnection;
use time::OffsetDateTime;
use tokio::time::Instant;

use super::super::feed::{MAX_FEED_WAIT, Snapshot, StreamId, checked_read};
use super::super::reply::corrupt;
use crate::store::RevocationEvent;
use crate::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, StoreError};

/// The version tag that begins every cursor of this feed.
const CURSOR_TAG: &str = "c1:";

/// The feed of a [`RedisClusterStore`](super::RedisClusterStore).
pub(super) struct ClusterFeed {
    pub(super) conn: ClusterConnection,
    /// Partition `k`'s stream at index `k`.
    pub(super) streams: Vec<String>,
    pub(super) retention: Duration,
    /// Bound on one read of one partition.
    pub(super) op_timeout: Duration,
    pub(super) poll_interval: Duration,
}

/// A position in every partition: the last stream id read there, or `None` before the first.
type Positions = Vec<Option<StreamId>>;

/// Parses a cursor this feed issued for `partitions` partitions; anything else is lost.
fn parse_cursor(cursor: &FeedCursor, partitions: usize) -> Result<Positions, StoreError> {
    let ids = cursor
        .0
        .strip_prefix(CURSOR_TAG)
        .ok_or(StoreError::FeedCursorLost)?;
    let positions: Positions = ids
        .split(',')
        .map(|id| match id {
            "-" => Ok(None),
            id => StreamId::parse(id)
                .map(Some)
                .ok_or(StoreError::FeedCursorLost),
        })
        .collect::<Result<_, _>>()?;
    if positions.len() != partitions {
        return Err(StoreError::FeedCursorLost);
    }
    Ok(positions)
}

fn format_cursor(positions: &[Option<StreamId>]) -> FeedCursor {
    let mut text = String::with_capacity(CURSOR_TAG.len() + positions.len() * 16);
    text.push_str(CURSOR_TAG);
    for (i, position) in positions.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        match position {
            Some(id) => text.push_str(&id.to_string()),
            None => text.push('-'),
        }
    }
    FeedCursor(text)
}

/// When an event says it was made: the tie-break between partitions within a millisecond.
fn made_at(event: &RevocationEvent) -> OffsetDateTime {
    match event {
        RevocationEvent::Session { before, .. } | RevocationEvent::User { before, .. } => *before,
    }
}

/// Merges the partitions' reads (from `from`) into one batch; see the store's documentation.
///
/// It is a k-way merge of the partitions' sequences by (stream id time, event time, partition),
/// which keeps each partition's own order, and it stops as soon as a partition whose read was cut
/// short by the batch size has nothing left to offer: its next event, unread, might come first.
/// So the merged sequence does not depend on where batches end, and two readers see the same.
fn merge(from: &[Option<StreamId>], reads: Vec<Snapshot>) -> Result<FeedBatch, StoreError> {
    let horizon = reads
        .iter()
        .map(|read| read.horizon)
        .max()
        .unwrap_or_else(OffsetDateTime::now_utc);
    let cut_short: Vec<bool> = reads.iter().map(|read| !read.caught_up).collect();
    let mut queues: Vec<VecDeque<(StreamId, RevocationEvent)>> = reads
        .into_iter()
        .map(|read| {
            read.events
                .into_iter()
                .map(|(cursor, event)| {
                    StreamId::parse(&cursor.0)
                        .map(|id| (id, event))
                        .ok_or_else(|| corrupt("feed entry without a stream id"))
                })
                .collect()
        })
        .collect::<Result<_, _>>()?;
    let mut positions = from.to_vec();
    let mut events = Vec::new();
    loop {
        if queues
            .iter()
            .zip(&cut_short)
            .any(|(queue, &cut)| cut && queue.is_empty())
        {
            break;
        }
        let next = queues
            .iter()
            .enumerate()
            .filter_map(|(k, queue)| {
                let (id, event) = queue.front()?;
                Some(((id.ms, made_at(event), k), k))
            })
            .min_by_key(|(key, _)| *key)
            .map(|(_, k)| k);
        let Some(k) = next else { break };
        let Some((id, event)) = queues[k].pop_front() else {
            break;
        };
        positions[k] = Some(id);
        events.push((format_cursor(&positions), event));
    }
    let caught_up = !cut_short.iter().any(|&cut| cut) && queues.iter().all(VecDeque::is_empty);
    Ok(FeedBatch::new(events, caught_up, horizon))
}

impl ClusterFeed {
    /// One checked read of every partition, concurrently, merged.
    async fn read_all(&self, from: &[Option<StreamId>]) -> Result<FeedBatch, StoreError> {
        let reads =
            try_join_all(self.streams.iter().zip(from).map(|(key, after)| {
                let mut conn = self.conn.clone();
                async move {
                    checked_read(&mut conn, key, *after, self.retention, self.op_timeout).await
                }
            }))
            .await?;
        merge(from, reads)
    }

    async fn read_batch(
        &self,
        after: Option<&FeedCursor>,
        wait: Duration,
    ) -> Result<FeedBatch, StoreError> {
        let from = match after {
            Some(cursor) => parse_cursor(cursor, self.streams.len())?,
            None => vec![None; self.streams.len()],
        };
        let deadline = Instant::now() + wait.min(MAX_FEED_WAIT);
        loop {
            let batch = self.read_all(&from).await?;
            let now = Instant::now();
            if !batch.events.is_empty() || !batch.caught_up || now >= deadline {
                return Ok(batch);
            }
            tokio::time::sleep(self.poll_interval.min(deadline - now)).await;
        }
    }
}

impl RevocationFeed for ClusterFeed {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::session::SessionId;

    fn id(text: &str) -> StreamId {
        StreamId::parse(text).unwrap()
    }

    fn read(
        events: &[(&str, RevocationEvent)],
        caught_up: bool,
        horizon: OffsetDateTime,
    ) -> Snapshot {
        Snapshot {
            events: events
                .iter()
                .map(|(id, e)| (FeedCursor((*id).to_owned()), e.clone()))
                .collect(),
            caught_up,
            block_after: StreamId::ZERO,
            horizon,
        }
    }

    #[test]
    fn cursors_round_trip_and_foreign_ones_are_lost() {
        let positions = vec![Some(id("5-1")), None, Some(id("7-0"))];
        let cursor = format_cursor(&positions);
        assert_eq!(cursor.0, "c1:5-1,-,7-0");
        assert_eq!(parse_cursor(&cursor, 3).unwrap(), positions);
        for bad in [
            "5-1",
            "c1:5-1,-",
            "c1:5-1,-,7-0,",
            "c2:5-1,-,7-0",
            "c1:x,-,7-0",
            "",
        ] {
            assert!(
                matches!(
                    parse_cursor(&FeedCursor(bad.into()), 3),
                    Err(StoreError::FeedCursorLost)
                ),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn merge_keeps_each_partition_in_order_and_orders_by_time() {
        let t = OffsetDateTime::now_utc();
        let ev = |s: &str, at: OffsetDateTime| {
            RevocationEvent::session_revoked(SessionId::parse(s).unwrap(), at)
        };
        let horizon = t - Duration::from_secs(60);
        // Same millisecond on both partitions: the events' own times decide.
        let a = read(
            &[
                ("10-0", ev("a1", t)),
                ("10-1", ev("a2", t + Duration::from_micros(300))),
            ],
            true,
            horizon,
        );
        let b = read(
            &[("10-0", ev("b1", t + Duration::from_micros(100)))],
            true,
            t,
        );
        let batch = merge(&[None, Some(id("9-0"))], vec![a, b]).unwrap();
        let order: Vec<String> = batch
            .events
            .iter()
            .map(|(_, e)| match e {
                RevocationEvent::Session { session_id, .. } => session_id.as_str().to_owned(),
                RevocationEvent::User { .. } => unreachable!(),
            })
            .collect();
        assert_eq!(order, ["a1", "b1", "a2"]);
        assert_eq!(batch.events[0].0.0, "c1:10-0,9-0");
        assert_eq!(batch.events[1].0.0, "c1:10-0,10-0");
        assert_eq!(batch.events[2].0.0, "c1:10-1,10-0");
        assert!(batch.caught_up);
        assert_eq!(batch.horizon, t, "the latest horizon of the partitions");
    }

    #[test]
    fn merge_stops_where_a_cut_short_partition_ends() {
        let t = OffsetDateTime::now_utc();
        let ev = |s: &str| RevocationEvent::session_revoked(SessionId::parse(s).unwrap(), t);
        let a = read(&[("10-0", ev("a1")), ("20-0", ev("a2"))], false, t);
        let b = read(&[("15-0", ev("b1")), ("30-0", ev("b2"))], true, t);
        let batch = merge(&[None, None], vec![a, b]).unwrap();
        assert_eq!(
            batch.events.len(),
            3,
            "b2 waits: a's next event may come first"
        );
        assert!(!batch.caught_up);
        let empty = merge(&[None, None], vec![read(&[], true, t), read(&[], true, t)]).unwrap();
        assert!(empty.caught_up && empty.events.is_empty());
    }
}
