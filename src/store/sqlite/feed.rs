//! The revocation feed of a [`SqliteStore`](super::SqliteStore): the table `tsj_revocations`,
//! read by polling, with the bookkeeping row of `tsj_feed_meta`.
//!
//! * **Order.** Every append runs in a `BEGIN IMMEDIATE` transaction, and SQLite lets one
//!   writer at a time hold the file, so ids (`INTEGER PRIMARY KEY AUTOINCREMENT`) are allocated
//!   in commit order: a reader that sees id `n` also sees every id below it.
//! * **Cursors** are `<epoch>:<id>`. The epoch is a random name given to the feed when its
//!   database was created; a cursor naming another epoch was issued by another database (the
//!   file was replaced) and is lost. So is a cursor beyond the highest id the database ever
//!   issued (`sqlite_sequence`): the file was restored from an older copy.
//! * **Trimming** deletes the oldest events, in id order, while they are older than the
//!   retention, at most a batch per transaction, and records the highest id and the latest time
//!   trimmed in the same transaction. A cursor below the highest trimmed id has lost events.
//! * **Horizon**: the latest of the retention edge (now minus the retention), the instant the
//!   feed began, and just after the latest event trimmed (another process may trim with a
//!   shorter retention).
//! * **Waiting** polls every `poll_interval` with one small statement, the highest id issued
//!   (`sqlite_sequence`), and reads again once it moved; the read at the end of the wait is a
//!   whole one. A revocation made through the same store (or a clone) wakes its readers at once.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use sqlx::{ConnectOptions, Row, SqliteConnection, SqlitePool};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::error::{corrupt, map_err};
use super::unix_ms;
use crate::store::RevocationEvent;
use crate::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, StoreError};

/// Most events one read returns.
pub(super) const FEED_BATCH: usize = 1000;
/// Longest a read waits; longer waits are cut to this.
pub(super) const MAX_FEED_WAIT: Duration = Duration::from_secs(30);
/// The bookkeeping row, and the highest id ever issued: searches on primary keys (and the
/// one-row-per-table `sqlite_sequence`), so a poll costs the same however long the feed is.
const READ_META: &str = "SELECT epoch, started_ms, trimmed_id, trimmed_ms,
        (SELECT seq FROM sqlite_sequence WHERE name = 'tsj_revocations')
 FROM tsj_feed_meta WHERE singleton = 1";
/// The highest id ever issued: what a waiting reader polls, one small statement, to learn
/// whether anything was appended since its last read.
const READ_ISSUED: &str = "SELECT seq FROM sqlite_sequence WHERE name = 'tsj_revocations'";
/// The events after a cursor: a range search on the primary key (the rowid), in its order.
const READ_EVENTS: &str =
    "SELECT id, event FROM tsj_revocations WHERE id > ?1 ORDER BY id LIMIT ?2";

/// The revocation feed of a [`SqliteStore`](super::SqliteStore); see the module docs.
pub(super) struct SqliteFeed {
    pub(super) pool: SqlitePool,
    pub(super) retention: Duration,
    pub(super) poll_interval: Duration,
    /// Woken after every append through this store.
    pub(super) appended: Arc<Notify>,
    /// The connection a waiting reader polls on, opened on first use (`None` again after an
    /// error): outside the pool, a poll is one statement on a connection at hand, with no
    /// acquire and no ping, which is what keeps a 20 ms poll cheap. `None` for an in-memory
    /// database, whose every connection would be a database of its own: the pool is polled.
    pub(super) poller: Option<tokio::sync::Mutex<Option<SqliteConnection>>>,
}

impl fmt::Debug for SqliteFeed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteFeed")
            .field("retention", &self.retention)
            .field("poll_interval", &self.poll_interval)
            .finish_non_exhaustive()
    }
}

/// A parsed cursor: the feed's epoch and an event id.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    epoch: String,
    id: i64,
}

impl Cursor {
    fn format(epoch: &str, id: i64) -> FeedCursor {
        FeedCursor(format!("{epoch}:{id}"))
    }

    /// `None` for anything this feed cannot have issued.
    fn parse(text: &str) -> Option<Self> {
        let (epoch, id) = text.split_once(':')?;
        let id_ok = !id.is_empty() && id.bytes().all(|b| b.is_ascii_digit());
        let epoch_ok = !epoch.is_empty() && epoch.bytes().all(|b| b.is_ascii_hexdigit());
        if !(id_ok && epoch_ok) {
            return None;
        }
        Some(Self {
            epoch: epoch.to_owned(),
            id: id.parse().ok()?,
        })
    }
}

/// The feed's bookkeeping, as one read transaction saw it.
struct Meta {
    epoch: String,
    started_ms: i64,
    trimmed_id: i64,
    trimmed_ms: i64,
    /// The highest id ever issued.
    issued: i64,
}

impl SqliteFeed {
    /// One read: checks the cursor and returns up to [`FEED_BATCH`] events after it, in one
    /// read transaction (one snapshot of the file), with the highest id issued then.
    async fn read_once(&self, after: Option<&Cursor>) -> Result<(FeedBatch, i64), StoreError> {
        let mut tx = self.pool.begin().await.map_err(map_err)?;
        let row = sqlx::query(READ_META)
            .fetch_optional(&mut *tx)
            .await
            .map_err(map_err)?
            .ok_or_else(|| corrupt("the revocation feed's bookkeeping row is missing"))?;
        let meta = Meta {
            epoch: row.try_get(0).map_err(map_err)?,
            started_ms: row.try_get(1).map_err(map_err)?,
            trimmed_id: row.try_get(2).map_err(map_err)?,
            trimmed_ms: row.try_get(3).map_err(map_err)?,
            issued: row
                .try_get::<Option<i64>, _>(4)
                .map_err(map_err)?
                .unwrap_or(0),
        };
        // Lost: issued by another database, behind what was trimmed, or beyond anything this
        // database ever issued.
        let lost =
            |c: &Cursor| c.epoch != meta.epoch || c.id < meta.trimmed_id || c.id > meta.issued;
        if after.is_some_and(lost) {
            return Err(StoreError::FeedCursorLost);
        }
        let rows = sqlx::query(READ_EVENTS)
            .bind(after.map_or(0, |c| c.id))
            .bind(FEED_BATCH as i64 + 1)
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;

        let caught_up = rows.len() <= FEED_BATCH;
        let mut events = Vec::with_capacity(rows.len().min(FEED_BATCH));
        for row in rows.into_iter().take(FEED_BATCH) {
            let id: i64 = row.try_get(0).map_err(map_err)?;
            let json: &str = row.try_get(1).map_err(map_err)?;
            // An event that cannot be decoded is an error, never skipped: a reader that skipped
            // it could accept a revoked JWT.
            let event: RevocationEvent = serde_json::from_str(json).map_err(|e| {
                StoreError::Corrupt(format!("undecodable feed event {id}: {e}").into())
            })?;
            events.push((Cursor::format(&meta.epoch, id), event));
        }
        let issued = meta.issued;
        Ok((
            FeedBatch::new(events, caught_up, self.horizon(&meta)),
            issued,
        ))
    }

    /// See the module docs.
    fn horizon(&self, meta: &Meta) -> OffsetDateTime {
        let now = OffsetDateTime::now_utc();
        let edge = time::Duration::try_from(self.retention)
            .ok()
            .and_then(|r| now.checked_sub(r))
            .map_or(OffsetDateTime::UNIX_EPOCH, |t| {
                t.max(OffsetDateTime::UNIX_EPOCH)
            });
        let known_from_ms = meta
            .started_ms
            .max(meta.trimmed_ms.saturating_add(1))
            .max(0);
        let known_from =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(known_from_ms) * 1_000_000)
                .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        // Never in the future, whatever a clock step left in the bookkeeping.
        edge.max(known_from).min(now)
    }

    async fn read_batch(
        &self,
        after: Option<&FeedCursor>,
        wait: Duration,
    ) -> Result<FeedBatch, StoreError> {
        let after = match after {
            Some(cursor) => Some(Cursor::parse(&cursor.0).ok_or(StoreError::FeedCursorLost)?),
            None => None,
        };
        let deadline = Instant::now() + wait.min(MAX_FEED_WAIT);
        loop {
            // Registered before looking, so an append in between is not missed.
            let appended = self.appended.notified();
            tokio::pin!(appended);
            appended.as_mut().enable();
            let (batch, issued) = self.read_once(after.as_ref()).await?;
            if !batch.events.is_empty() || !batch.caught_up || Instant::now() >= deadline {
                return Ok(batch);
            }
            // Nothing yet. Until the deadline, poll only the highest id issued (one small
            // statement rather than the whole read), and read again once it moved: an append by
            // another process. An append through this store wakes the reader at once. The read
            // at the deadline is a whole one, so what a batch says never rests on the poll.
            loop {
                let now = Instant::now();
                if now >= deadline {
                    break;
                }
                let nap = self.poll_interval.min(deadline - now);
                tokio::select! {
                    () = &mut appended => break,
                    () = tokio::time::sleep(nap) => {}
                }
                // A poll that fails leads to the whole read, which reports what is wrong.
                if Instant::now() < deadline && self.issued().await.map_or(true, |n| n != issued) {
                    break;
                }
            }
        }
    }

    /// The highest id ever issued (`0` before the first event).
    async fn issued(&self) -> Result<i64, StoreError> {
        let query = sqlx::query_scalar::<_, i64>(READ_ISSUED);
        let Some(poller) = &self.poller else {
            let seq = query.fetch_optional(&self.pool).await.map_err(map_err)?;
            return Ok(seq.unwrap_or(0));
        };
        let mut poller = poller.lock().await;
        let conn = match &mut *poller {
            Some(conn) => conn,
            empty => empty.insert(
                self.pool
                    .connect_options()
                    .connect()
                    .await
                    .map_err(map_err)?,
            ),
        };
        match query.fetch_optional(conn).await {
            Ok(seq) => Ok(seq.unwrap_or(0)),
            Err(e) => {
                *poller = None;
                Err(map_err(e))
            }
        }
    }

    /// One bounded trimming pass: deletes, in one transaction, the oldest events while they
    /// are older than the retention, at most `batch` of them, and records what it deleted.
    /// Returns how many it deleted.
    pub(super) async fn trim(&self, batch: u32) -> Result<u64, StoreError> {
        let mut tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(map_err)?;
        let now = OffsetDateTime::now_utc();
        let retention_ms = i64::try_from(self.retention.as_millis()).unwrap_or(i64::MAX);
        let edge_ms = unix_ms(now).saturating_sub(retention_ms);
        let head = sqlx::query("SELECT id, created_ms FROM tsj_revocations ORDER BY id LIMIT ?1")
            .bind(i64::from(batch))
            .fetch_all(&mut *tx)
            .await
            .map_err(map_err)?;
        // Only a prefix goes, so that everything after the highest trimmed id is retained,
        // and only events older than the edge, so that every younger one is.
        let mut last: Option<(i64, i64)> = None;
        let mut count = 0u64;
        for row in &head {
            let id: i64 = row.try_get(0).map_err(map_err)?;
            let created_ms: i64 = row.try_get(1).map_err(map_err)?;
            if created_ms >= edge_ms {
                break;
            }
            let latest = last.map_or(created_ms, |(_, at)| at.max(created_ms));
            last = Some((id, latest));
            count += 1;
        }
        let Some((last_id, latest_ms)) = last else {
            return Ok(0);
        };
        sqlx::query("DELETE FROM tsj_revocations WHERE id <= ?1")
            .bind(last_id)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
        sqlx::query(
            "UPDATE tsj_feed_meta SET trimmed_id = max(trimmed_id, ?1),
                                      trimmed_ms = max(trimmed_ms, ?2)
             WHERE singleton = 1",
        )
        .bind(last_id)
        .bind(latest_ms)
        .execute(&mut *tx)
        .await
        .map_err(map_err)?;
        tx.commit().await.map_err(map_err)?;
        Ok(count)
    }
}

impl RevocationFeed for SqliteFeed {
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

/// Appends `event` inside the caller's transaction (which must have begun `IMMEDIATE`).
pub(super) async fn append(
    tx: &mut sqlx::SqliteConnection,
    event: &RevocationEvent,
    now: OffsetDateTime,
) -> Result<(), StoreError> {
    let json = super::error::encode_json(event, "revocation event")?;
    sqlx::query("INSERT INTO tsj_revocations (created_ms, event) VALUES (?1, ?2)")
        .bind(unix_ms(now))
        .bind(json)
        .execute(tx)
        .await
        .map_err(map_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each poll must stay one search per table, not a scan that grows with the feed: the
    /// default interval (20 ms) is affordable only because a poll is that cheap.
    #[tokio::test]
    async fn a_poll_searches_primary_keys_only() {
        let path = std::env::temp_dir().join(format!(
            "tsj-sqlite-plan-{}-{}.db",
            std::process::id(),
            crate::data::session::SessionId::generate()
                .unwrap()
                .as_str()
        ));
        let store = super::super::SqliteStore::open(&path).await.unwrap();
        let pool = &store.inner.feed.pool;
        let plan = |sql: &'static str| async move {
            let rows = sqlx::query(&format!("EXPLAIN QUERY PLAN {sql}"))
                .bind(0_i64)
                .bind(1001_i64)
                .fetch_all(pool)
                .await
                .unwrap();
            rows.iter()
                .map(|row| row.try_get::<String, _>(3).unwrap())
                .collect::<Vec<_>>()
        };
        let events = plan(READ_EVENTS).await;
        assert_eq!(
            events,
            ["SEARCH tsj_revocations USING INTEGER PRIMARY KEY (rowid>?)"],
            "no scan, no sort"
        );
        let meta = plan(READ_META).await;
        assert!(
            meta.iter()
                .any(|step| step == "SEARCH tsj_feed_meta USING INTEGER PRIMARY KEY (rowid=?)"),
            "{meta:?}"
        );
        // `sqlite_sequence` has one row per AUTOINCREMENT table (one here) and no index.
        assert!(
            meta.iter()
                .all(|step| !step.starts_with("SCAN") || step == "SCAN sqlite_sequence"),
            "{meta:?}"
        );
        drop(store);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
    }

    #[test]
    fn cursors_round_trip_and_odd_ones_are_refused() {
        let FeedCursor(text) = Cursor::format("00ff", 42);
        assert_eq!(
            Cursor::parse(&text),
            Some(Cursor {
                epoch: "00ff".into(),
                id: 42
            })
        );
        for bad in [
            "",
            ":",
            "ab:",
            ":1",
            "ab",
            "ab:1:2",
            "xy:1",
            "ab:-1",
            "ab:+1",
            "ab:1 ",
            "ab:99999999999999999999",
        ] {
            assert_eq!(Cursor::parse(bad), None, "{bad:?}");
        }
    }
}
