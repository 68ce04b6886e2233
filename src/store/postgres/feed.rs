//! The revocation feed of a [`PostgresStore`](super::PostgresStore): the table `revocations`,
//! woken by `LISTEN` / `NOTIFY`, polled as a floor, trimmed by age.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{PgPool, Row as _};
use time::OffsetDateTime;
use tokio::sync::Notify;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use super::error::{bounded, connection_broke, corrupt, map_err};
use super::micros;
use super::schema::Sql;
use crate::store::RevocationEvent;
use crate::store::sqlx_common::in_batches;
use crate::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, StoreError};

/// Most events one read returns.
pub(super) const FEED_BATCH: usize = 1000;
/// Longest a read waits for news; longer waits are cut to this.
const MAX_FEED_WAIT: Duration = Duration::from_secs(30);
/// How many times a read may retry after meeting a broken connection (the reader pool's size).
pub(super) const READ_RETRIES: u32 = 2;
/// Most rows one trimming or purging statement deletes.
const MAINTENANCE_BATCH: i64 = 1000;
/// Most statements one maintenance round runs per table.
const MAINTENANCE_ROUNDS: usize = 20;

/// Aborts the feed's background tasks when the feed goes away.
struct Tasks(Vec<AbortHandle>);

impl Drop for Tasks {
    fn drop(&mut self) {
        for task in &self.0 {
            task.abort();
        }
    }
}

/// The feed; see the module docs of the store.
pub(super) struct PostgresFeed {
    pool: PgPool,
    sql: Arc<Sql>,
    pub(super) retention: Duration,
    poll_interval: Duration,
    op_timeout: Duration,
    /// Woken by every notification on the feed's channel, and whenever the listener
    /// (re)connects (notifications sent meanwhile are lost).
    wake: Arc<Notify>,
    _tasks: Tasks,
}

/// What the feed needs to run; from the store's builder.
pub(super) struct FeedConfig {
    /// The store's pool, for trimming and purging.
    pub(super) pool: PgPool,
    /// The feed's own small pool, for reads: a store pool exhausted by the application (or by
    /// revocations queued behind a slow one) does not stall the feed.
    pub(super) reader_pool: PgPool,
    /// The pool of one connection that `LISTEN`s.
    pub(super) listener_pool: PgPool,
    pub(super) sql: Arc<Sql>,
    pub(super) retention: Duration,
    pub(super) poll_interval: Duration,
    pub(super) op_timeout: Duration,
    pub(super) maintenance_every: Duration,
}

impl PostgresFeed {
    /// Starts the listener and the maintenance task (trimming and purging), both stopped when
    /// the feed is dropped.
    pub(super) fn start(config: FeedConfig) -> Self {
        let wake = Arc::new(Notify::new());
        let listener = tokio::spawn(listen(
            config.listener_pool,
            config.sql.channel.clone(),
            wake.clone(),
        ));
        let maintenance = tokio::spawn(maintain(
            config.pool,
            config.sql.clone(),
            config.retention,
            config.op_timeout,
            config.maintenance_every,
        ));
        Self {
            pool: config.reader_pool,
            sql: config.sql,
            retention: config.retention,
            poll_interval: config.poll_interval,
            op_timeout: config.op_timeout,
            wake,
            _tasks: Tasks(vec![listener.abort_handle(), maintenance.abort_handle()]),
        }
    }

    /// One read of the table: the batch after `after` (an id of this feed's epoch), checked
    /// against the trim state read in the same snapshot.
    async fn read_once(&self, after: Option<(i64, i64)>) -> Result<FeedBatch, StoreError> {
        let from = after.map_or(0, |(_, id)| id);
        let rows = bounded(self.op_timeout, async {
            let mut retries = 0;
            loop {
                let result = sqlx::query(&self.sql.read_feed)
                    .bind(from)
                    .bind(FEED_BATCH as i64 + 1)
                    .fetch_all(&self.pool)
                    .await;
                match result {
                    Ok(rows) => return Ok(rows),
                    // A connection broken since its last use (the server restarted): another.
                    Err(e) if retries < READ_RETRIES && connection_broke(&e) => retries += 1,
                    Err(e) => return Err(map_err(e)),
                }
            }
        })
        .await?;
        let now = OffsetDateTime::now_utc();
        let Some(first) = rows.first() else {
            return Err(corrupt("the feed_state row is missing"));
        };
        let epoch: i64 = first.try_get(0).map_err(map_err)?;
        let trimmed_through: i64 = first.try_get(1).map_err(map_err)?;
        let complete_from: i64 = first.try_get(2).map_err(map_err)?;
        let issued: Option<i64> = first.try_get(3).map_err(map_err)?;
        if let Some((cursor_epoch, id)) = after {
            // Another feed's cursor (the schema was recreated), a cursor whose successors were
            // trimmed, or one this feed never issued (a restored backup): events may be missing.
            if cursor_epoch != epoch || id < trimmed_through || id > issued.unwrap_or(0) {
                return Err(StoreError::FeedCursorLost);
            }
        }
        let mut events = Vec::with_capacity(rows.len().min(FEED_BATCH));
        for row in &rows {
            let Some(id) = row.try_get::<Option<i64>, _>(4).map_err(map_err)? else {
                continue;
            };
            let text: Option<String> = row.try_get(5).map_err(map_err)?;
            let text = text.ok_or_else(|| corrupt(format!("feed event {id} is null")))?;
            let event: RevocationEvent = serde_json::from_str(&text).map_err(|e| {
                StoreError::Corrupt(format!("undecodable feed event {id}: {e}").into())
            })?;
            events.push((FeedCursor(format!("{epoch}:{id}")), event));
        }
        let caught_up = events.len() <= FEED_BATCH;
        events.truncate(FEED_BATCH);
        // Revocations older than the retention may be trimmed any time; those before the log
        // was made, or up to its newest trimmed event, are not in it.
        let complete_from =
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(complete_from) * 1000)
                .map_err(|e| corrupt(format!("feed state out of range: {e}")))?;
        let horizon = (now - self.retention).max(complete_from);
        Ok(FeedBatch::new(events, caught_up, horizon))
    }
}

/// Parses a cursor this feed issued: `<epoch>:<id>`. Anything else may come from another log.
fn parse_cursor(cursor: &FeedCursor) -> Result<(i64, i64), StoreError> {
    let (epoch, id) = cursor.0.split_once(':').ok_or(StoreError::FeedCursorLost)?;
    let epoch = epoch.parse().map_err(|_| StoreError::FeedCursorLost)?;
    let id: i64 = id.parse().map_err(|_| StoreError::FeedCursorLost)?;
    if id < 0 {
        return Err(StoreError::FeedCursorLost);
    }
    Ok((epoch, id))
}

impl RevocationFeed for PostgresFeed {
    fn retention(&self) -> Duration {
        self.retention
    }

    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async move {
            let after = after.map(parse_cursor).transpose()?;
            let deadline = Instant::now() + wait.min(MAX_FEED_WAIT);
            loop {
                // Register for wake-ups before looking, so that a notification arriving between
                // the read and the wait is not missed.
                let notified = self.wake.notified();
                tokio::pin!(notified);
                notified.as_mut().enable();
                let batch = self.read_once(after).await?;
                let now = Instant::now();
                if !batch.events.is_empty() || now >= deadline {
                    return Ok(batch);
                }
                // NOTIFY is lossy (a listener that reconnects misses what was sent meanwhile):
                // the table is the truth, read again at least every poll interval.
                let nap = self.poll_interval.min(deadline - now);
                let _ = tokio::time::timeout(nap, notified).await;
            }
        })
    }
}

/// Keeps a connection `LISTEN`ing on the feed's channel and wakes readers on every notification.
/// Reconnects with backoff; every (re)connection wakes readers too, since notifications sent
/// while it was down are lost.
async fn listen(pool: PgPool, channel: String, wake: Arc<Notify>) {
    let mut backoff = Duration::from_millis(100);
    loop {
        match PgListener::connect_with(&pool).await {
            Ok(mut listener) => match listener.listen(&channel).await {
                Ok(()) => {
                    backoff = Duration::from_millis(100);
                    wake.notify_waiters();
                    loop {
                        match listener.try_recv().await {
                            Ok(Some(_)) => wake.notify_waiters(),
                            // The connection was lost (and re-established): wake readers, who
                            // will find in the table what the lost notifications announced.
                            Ok(None) => wake.notify_waiters(),
                            Err(error) => {
                                tracing::debug!(%error, "revocation feed listener lost its connection");
                                wake.notify_waiters();
                                break;
                            }
                        }
                    }
                }
                Err(error) => tracing::debug!(%error, "revocation feed LISTEN failed"),
            },
            Err(error) => tracing::debug!(%error, "revocation feed listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// Trims the feed and purges expired sessions, now and then every `every`.
async fn maintain(
    pool: PgPool,
    sql: Arc<Sql>,
    retention: Duration,
    op_timeout: Duration,
    every: Duration,
) {
    loop {
        if let Err(error) = trim(&pool, &sql, retention, op_timeout).await {
            tracing::debug!(%error, "revocation feed trimming failed; retrying later");
        }
        if let Err(error) = purge_expired(&pool, &sql, op_timeout).await {
            tracing::debug!(%error, "purging expired sessions failed; retrying later");
        }
        tokio::time::sleep(every).await;
    }
}

/// Deletes feed events older than `retention` (a prefix of the log, in bounded batches) and
/// records the trim edge in `feed_state` in the same statement. Returns how many were deleted.
pub(super) async fn trim(
    pool: &PgPool,
    sql: &Sql,
    retention: Duration,
    op_timeout: Duration,
) -> Result<u64, StoreError> {
    let edge = micros(OffsetDateTime::now_utc() - retention);
    batched(pool, &sql.trim_feed, edge, op_timeout).await
}

/// Deletes sessions that have expired (in bounded batches). Returns how many were deleted.
pub(super) async fn purge_expired(
    pool: &PgPool,
    sql: &Sql,
    op_timeout: Duration,
) -> Result<u64, StoreError> {
    let now = micros(OffsetDateTime::now_utc());
    batched(pool, &sql.purge_expired, now, op_timeout).await
}

/// Runs a deleting statement (`$1` a time, `$2` a batch size, answering the count deleted) until
/// it deletes less than a batch, at most [`MAINTENANCE_ROUNDS`] times.
async fn batched(
    pool: &PgPool,
    statement: &str,
    at: i64,
    op_timeout: Duration,
) -> Result<u64, StoreError> {
    in_batches(MAINTENANCE_ROUNDS, MAINTENANCE_BATCH as u64, || {
        bounded(op_timeout, async {
            let count: i64 = sqlx::query(statement)
                .bind(at)
                .bind(MAINTENANCE_BATCH)
                .fetch_one(pool)
                .await
                .map_err(map_err)?
                .try_get(0)
                .map_err(map_err)?;
            let deleted = u64::try_from(count).unwrap_or(0);
            Ok(deleted)
        })
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_are_checked() {
        assert_eq!(parse_cursor(&FeedCursor("12:34".into())).unwrap(), (12, 34));
        for bad in ["", "12", "12:", ":3", "a:1", "1:b", "1:-1", "1-0", "1:2:3"] {
            assert!(
                matches!(
                    parse_cursor(&FeedCursor(bad.into())),
                    Err(StoreError::FeedCursorLost)
                ),
                "{bad:?}"
            );
        }
    }
}
