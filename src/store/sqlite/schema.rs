//! The schema and its migrations, applied by the store itself when it opens a database.
//!
//! Each migration is a batch of SQL statements; its number is its position in [`MIGRATIONS`]
//! plus one. `tsj_schema_version` records every migration applied. Opening a database applies
//! the missing ones in one `BEGIN IMMEDIATE` transaction, so processes that open the same file
//! at once apply each migration exactly once, and a failure leaves the schema as it was. A
//! database already migrated further than this crate knows is refused rather than misread.
//!
//! Migrations are append-only: a released migration is never edited, a change is a new one.

use sqlx::SqlitePool;

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
];

/// Brings the database's schema up to date; see the [module documentation](self).
///
/// `epoch` and `now_ms` seed the feed's bookkeeping row if the database has none yet: a random
/// name for this feed (a cursor from another database names another epoch) and when it began.
pub(super) async fn migrate(pool: &SqlitePool, epoch: &str, now_ms: i64) -> Result<(), StoreError> {
    let mut tx = pool.begin_with("BEGIN IMMEDIATE").await.map_err(map_err)?;
    sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS tsj_schema_version (
            version    INTEGER PRIMARY KEY NOT NULL,
            applied_ms INTEGER NOT NULL
        )",
    )
    .execute(&mut *tx)
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
        sqlx::raw_sql(sql)
            .execute(&mut *tx)
            .await
            .map_err(map_err)?;
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
