//! The schema and its migrations, applied by the store itself when it opens a database.
//!
//! Each migration is a batch of SQL statements; its number is its position in [`MIGRATIONS`]
//! plus one. `tsj_schema_version` records every migration applied. Opening a database applies
//! the missing ones in one `BEGIN IMMEDIATE` transaction, so processes that open the same file
//! at once apply each migration exactly once, and a failure leaves the schema as it was. A
//! database already migrated further than this crate knows is refused rather than misread.
//!
//! Migrations are append-only: a released migration is never edited, a change is a new one.

use sqlx::{Executor as _, SqlitePool};

use super::error::map_err;
use crate::store::StoreError;

/// The migrations, oldest first; see the [module documentation](self).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: sessions, the revocation feed, and the feed's bookkeeping.
    r#"
    CREATE TABLE tsj_sessions (
        session_id TEXT PRIMARY KEY NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        user_id    TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        session    TEXT NOT NULL
    );
    CREATE INDEX tsj_sessions_user ON tsj_sessions (user_id);
    CREATE INDEX tsj_sessions_expiry ON tsj_sessions (expires_ms);

    CREATE TABLE tsj_revocations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        created_ms INTEGER NOT NULL,
        event      TEXT NOT NULL
    );

    CREATE TABLE tsj_feed_meta (
        singleton  INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        epoch      TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        trimmed_id INTEGER NOT NULL,
        trimmed_ms INTEGER NOT NULL
    );
    "#,
    // 2: the listing's sort key, `started_at` in Unix milliseconds (rounded down, as
    // `store::started_ms` computes it), and the index that pages a user's sessions newest first
    // by (started_ms, session_id) and serves every other by-user query, so the plain user index
    // goes. Existing rows get their key from the `started_at` of their JSON, which the crate
    // always writes as RFC 3339 (`YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)`): whole seconds
    // through `strftime` (exact, offset applied) and milliseconds from the first three digits of
    // the fraction, since SQLite's date functions round to the nearest millisecond rather than
    // down. A row whose JSON is not such a record keeps 0: it cannot be read anyway, and the
    // store reports it as corrupt when a listing reaches it.
    r#"
    ALTER TABLE tsj_sessions ADD COLUMN started_ms INTEGER NOT NULL DEFAULT 0;

    UPDATE tsj_sessions SET started_ms = parsed.ms
    FROM (
        SELECT rid,
               CAST(strftime('%s', substr(t, 1, 19) || tz) AS INTEGER) * 1000
               + CAST(substr(substr(rest, 1, length(rest) - length(tz)) || '000', 1, 3)
                      AS INTEGER) AS ms
        FROM (
            SELECT rid, t, rest, ltrim(rest, '0123456789') AS tz
            FROM (
                SELECT rid, t,
                       CASE WHEN substr(t, 20, 1) = '.' THEN substr(t, 21)
                            ELSE substr(t, 20) END AS rest
                FROM (
                    SELECT rowid AS rid,
                           CASE WHEN json_valid(session)
                                THEN json_extract(session, '$.started_at') END AS t
                    FROM tsj_sessions
                )
                WHERE typeof(t) = 'text'
                  AND t GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9]*'
            )
        )
    ) AS parsed
    WHERE tsj_sessions.rowid = parsed.rid AND parsed.ms IS NOT NULL;

    CREATE INDEX tsj_sessions_user_started
        ON tsj_sessions (user_id, started_ms DESC, session_id DESC);
    DROP INDEX tsj_sessions_user;
    "#,
];

/// Brings the database's schema up to date; see the [module documentation](self).
///
/// `epoch` and `now_ms` seed the feed's bookkeeping row if the database has none yet: a random
/// name for this feed (a cursor from another database names another epoch) and when it began.
pub(super) async fn migrate(pool: &SqlitePool, epoch: &str, now_ms: i64) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    // Through `Executor::execute` rather than `RawSql::execute`, whose lifetimes make the
    // future of `SqliteStore::open` not `Send` (it could not be spawned).
    tx.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS tsj_schema_version (
            version    INTEGER PRIMARY KEY NOT NULL,
            applied_ms INTEGER NOT NULL
        )",
    ))
    .await
    .map_err(map_err)?;
    let current: Option<i64> = sqlx::query_scalar("SELECT max(version) FROM tsj_schema_version")
        .fetch_one(&mut *tx)
        .await
        .map_err(map_err)?;
    let current = usize::try_from(current.unwrap_or(0))
        .map_err(|_| StoreError::Corrupt("negative schema version".into()))?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(
            format!(
                "the database's session schema is at version {current}, newer than this version \
                 of tower-session-jwt knows ({})",
                MIGRATIONS.len()
            )
            .into(),
        ));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute(sqlx::raw_sql(sql)).await.map_err(map_err)?;
        sqlx::query("INSERT INTO tsj_schema_version (version, applied_ms) VALUES (?1, ?2)")
            .bind(index as i64 + 1)
            .bind(now_ms)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
    }
    sqlx::query(
        "INSERT OR IGNORE INTO tsj_feed_meta (singleton, epoch, started_ms, trimmed_id, trimmed_ms)
         VALUES (1, ?1, ?2, 0, 0)",
    )
    .bind(epoch)
    .bind(now_ms)
    .execute(&mut *tx)
    .await
    .map_err(map_err)?;
    tx.commit().await.map_err(map_err)
}
