//! The [`SessionStore`] operations of a [`SqliteStore`]: each write one `BEGIN IMMEDIATE`
//! transaction with its feed events (see the [module docs](super) for the atomicity).

use std::sync::Arc;

use sqlx::Row;
use sqlx::sqlite::SqliteRow;
use time::OffsetDateTime;

use super::error::{corrupt, decode_session, encode_json, is_unique_violation, map_err};
use super::feed::append;
use super::{SqliteStore, unix_ms};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;
use crate::store::sqlx_common::duplicate;
use crate::store::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome, started_ms,
};

/// How many live sessions a user holds, for the session limit. Live to the millisecond: a
/// session in its last millisecond neither counts nor is listed (it is gone in a moment).
const COUNT_LIVE: &str = "SELECT count(*) FROM tsj_sessions WHERE user_id = ?1 AND expires_ms > ?2";

/// Deletes the user's `?3` oldest live sessions (by `started_ms`, then id) and names them.
const EVICT_OLDEST: &str = "DELETE FROM tsj_sessions WHERE rowid IN (
         SELECT rowid FROM tsj_sessions WHERE user_id = ?1 AND expires_ms > ?2
         ORDER BY started_ms, session_id LIMIT ?3
     ) RETURNING session_id, started_ms";

/// The first page of a user's live sessions, newest first, with one row more than the page
/// (it only says that another page follows). Walks `tsj_sessions_user_started` in its order and
/// stops at the limit.
const LIST_FIRST: &str = "SELECT started_ms, session FROM tsj_sessions
     WHERE user_id = ?1 AND expires_ms > ?2
     ORDER BY started_ms DESC, session_id DESC LIMIT ?3";

/// A page after the cursor `(?3, ?4)`: `started_ms <= ?3` starts the index range at the
/// cursor's millisecond, and the rest drops the sessions of that millisecond that were already
/// listed, so no page reads what came before it.
const LIST_AFTER: &str = "SELECT started_ms, session FROM tsj_sessions
     WHERE user_id = ?1 AND expires_ms > ?2
       AND started_ms <= ?3 AND (started_ms < ?3 OR session_id < ?4)
     ORDER BY started_ms DESC, session_id DESC LIMIT ?5";

/// Inserts a new session row; a duplicate id or token hash is an error, never an overwrite.
async fn insert<'e>(
    executor: impl sqlx::SqliteExecutor<'e>,
    session: &Session,
    token_hash: &TokenHash,
    json: String,
) -> Result<(), StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO tsj_sessions (session_id, token_hash, user_id, expires_ms, started_ms, session)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .bind(session.session_id.as_str())
    .bind(token_hash.as_bytes().as_slice())
    .bind(&session.user_id)
    .bind(unix_ms(session.expires_at))
    .bind(started_ms(session))
    .bind(json)
    .execute(executor)
    .await;
    match inserted {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(duplicate()),
        Err(e) => Err(map_err(e)),
    }
}

/// A session id read from a row's `session_id` column.
fn id_column(row: &SqliteRow, index: usize) -> Result<SessionId, StoreError> {
    let text: &str = row.try_get(index).map_err(map_err)?;
    SessionId::parse(text).map_err(|_| corrupt("malformed session id in a session row"))
}

impl SessionStore for SqliteStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = encode_json(&session, "session")?;
        if limit.max().is_none() {
            // Nothing to count: one INSERT is atomic on its own.
            insert(self.pool(), &session, &token_hash, json).await?;
            return Ok(CreateOutcome::Created {
                evicted: Vec::new(),
            });
        }
        // The write lock, taken up front, makes the count, the evictions and the insert one
        // step for every connection and process on the file: two logins of one user cannot
        // both see room for one more.
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let now_ms = unix_ms(now);
        let live: i64 = sqlx::query_scalar(COUNT_LIVE)
            .bind(&session.user_id)
            .bind(now_ms)
            .fetch_one(&mut *tx)
            .await
            .map_err(map_err)?;
        let live = usize::try_from(live).map_err(|_| corrupt("negative session count"))?;
        let Ok(evict) = limit.to_evict(live) else {
            return Ok(CreateOutcome::LimitReached);
        };
        let mut evicted = Vec::with_capacity(evict);
        if evict > 0 {
            let rows = sqlx::query(EVICT_OLDEST)
                .bind(&session.user_id)
                .bind(now_ms)
                .bind(i64::try_from(evict).unwrap_or(i64::MAX))
                .fetch_all(&mut *tx)
                .await
                .map_err(map_err)?;
            for row in &rows {
                let started: i64 = row.try_get(1).map_err(map_err)?;
                evicted.push((started, id_column(row, 0)?));
            }
            // RETURNING comes in no particular order; callers get the oldest first.
            evicted.sort();
        }
        let evicted: Vec<SessionId> = evicted.into_iter().map(|(_, id)| id).collect();
        insert(&mut *tx, &session, &token_hash, json).await?;
        for id in &evicted {
            append(
                &mut tx,
                &RevocationEvent::session_revoked(id.clone(), now),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if !evicted.is_empty() {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(CreateOutcome::Created { evicted })
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = sqlx::query(
            "SELECT session_id, session FROM tsj_sessions
             WHERE token_hash = ?1 AND expires_ms >= ?2",
        )
        .bind(token_hash.as_bytes().as_slice())
        .bind(unix_ms(now))
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let id: &str = row.try_get(0).map_err(map_err)?;
        let session = decode_session(row.try_get(1).map_err(map_err)?, |s| {
            s.session_id.as_str() == id
        })?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let json: Option<String> = sqlx::query_scalar(
            "SELECT session FROM tsj_sessions WHERE session_id = ?1 AND expires_ms >= ?2",
        )
        .bind(session_id.as_str())
        .bind(unix_ms(now))
        .fetch_optional(self.pool())
        .await
        .map_err(map_err)?;
        let Some(json) = json else { return Ok(None) };
        let session = decode_session(&json, |s| s.session_id == *session_id)?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let now = OffsetDateTime::now_utc();
        let fetch = i64::from(page.limit) + 1;
        let query = match &page.after {
            None => sqlx::query(LIST_FIRST)
                .bind(user_id)
                .bind(unix_ms(now))
                .bind(fetch),
            Some(cursor) => sqlx::query(LIST_AFTER)
                .bind(user_id)
                .bind(unix_ms(now))
                .bind(cursor.started_ms)
                .bind(cursor.session_id.as_str())
                .bind(fetch),
        };
        let rows = query.fetch_all(self.pool()).await.map_err(map_err)?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in &rows {
            let started: i64 = row.try_get(0).map_err(map_err)?;
            // A record whose start disagrees with its sort key would be listed out of order
            // and break the cursor taken from it.
            let session = decode_session(row.try_get(1).map_err(map_err)?, |s| {
                s.user_id == user_id && started_ms(s) == started
            })?;
            // Always true (`expires_ms > now` in ms), checked on the exact time all the same.
            if session.is_live_at(now) {
                sessions.push(session);
            }
        }
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let session = &update.session;
        let json = encode_json(session, "session")?;
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let stored: Option<String> =
            sqlx::query_scalar("SELECT session FROM tsj_sessions WHERE session_id = ?1")
                .bind(session.session_id.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(map_err)?;
        let Some(stored) = stored else {
            return Ok(UpdateOutcome::Gone);
        };
        let stored = decode_session(&stored, |s| s.session_id == session.session_id)?;
        if !stored.is_live_at(now) {
            return Ok(UpdateOutcome::Gone);
        }
        // The start is the listing's sort key, stored beside the record: it stays put too.
        if stored.user_id != session.user_id || started_ms(&stored) != started_ms(session) {
            return Err(StoreError::Backend(
                "an update may not move a session to another user or start".into(),
            ));
        }
        // The version is read and rewritten under the write lock: of two updates from one
        // version, the second finds the first's and is stale.
        if stored.version.checked_add(1) != Some(session.version) {
            return Ok(UpdateOutcome::Stale);
        }
        let written = sqlx::query(
            "UPDATE tsj_sessions
             SET expires_ms = ?2, session = ?3, token_hash = coalesce(?4, token_hash)
             WHERE session_id = ?1",
        )
        .bind(session.session_id.as_str())
        .bind(unix_ms(session.expires_at))
        .bind(json)
        .bind(update.token_hash.as_ref().map(|h| h.as_bytes().as_slice()))
        .execute(&mut *tx)
        .await;
        match written {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Backend("duplicate token".into()));
            }
            Err(e) => return Err(map_err(e)),
        }
        if update.refuse_older_jwts {
            append(
                &mut tx,
                &RevocationEvent::jwts_refused(session.session_id.clone(), now, session.version),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if update.refuse_older_jwts {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(UpdateOutcome::Updated)
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let row = sqlx::query(
            "DELETE FROM tsj_sessions WHERE session_id = ?1 RETURNING expires_ms, session",
        )
        .bind(session_id.as_str())
        .fetch_optional(&mut *tx)
        .await
        .map_err(map_err)?;
        let Some(row) = row else { return Ok(None) };
        let expires_ms: i64 = row.try_get(0).map_err(map_err)?;
        let json: String = row.try_get(1).map_err(map_err)?;
        let session = decode_session(&json, |s| s.session_id == *session_id);
        // A record that cannot be decoded is still deleted and published (by its column, when
        // it may be live), and then reported, so the caller does not believe nothing happened.
        let live = match &session {
            Ok(session) => session.is_live_at(now),
            Err(_) => expires_ms >= unix_ms(now),
        };
        if live {
            append(
                &mut tx,
                &RevocationEvent::session_revoked(session_id.clone(), now),
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(map_err)?;
        if live {
            self.inner.feed.appended.notify_waiters();
        }
        Ok(Some(session?).filter(|_| live))
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.revoke_sessions_of(user_id, except).await
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }

    /// `true` for a database file (other processes may open it), `false` for an in-memory
    /// database, which no other process can reach.
    fn is_shared(&self) -> bool {
        !self.inner.in_memory
    }
}

impl SqliteStore {
    /// `revoke_all`: every session of the user (but `keep`) in one transaction, each live one
    /// with its own session event, and without `keep` one user event as well. The session
    /// events make the revocation exact whatever clock set each `started_at` (a session created
    /// on an instance whose clock runs ahead starts after the user event's cut-off); the user
    /// event cuts off sessions being created elsewhere at this moment (with `keep` it would cut
    /// off the kept session's JWTs too).
    async fn revoke_sessions_of(
        &self,
        user_id: &str,
        keep: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = OffsetDateTime::now_utc();
        let rows = sqlx::query(
            "DELETE FROM tsj_sessions WHERE user_id = ?1 AND (?2 IS NULL OR session_id <> ?2)
             RETURNING session_id, expires_ms, session",
        )
        .bind(user_id)
        .bind(keep.map(SessionId::as_str))
        .fetch_all(&mut *tx)
        .await
        .map_err(map_err)?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut damaged = None;
        for row in &rows {
            let id = id_column(row, 0)?;
            let expires_ms: i64 = row.try_get(1).map_err(map_err)?;
            let json: &str = row.try_get(2).map_err(map_err)?;
            // As in `revoke`: a record that cannot be decoded is deleted and published by its
            // columns, and reported once the revocation is committed.
            let live = match decode_session(json, |s| s.session_id == id && s.user_id == user_id) {
                Ok(session) => session.is_live_at(now),
                Err(e) => {
                    damaged.get_or_insert(e);
                    expires_ms >= unix_ms(now)
                }
            };
            if live {
                append(
                    &mut tx,
                    &RevocationEvent::session_revoked(id.clone(), now),
                    now,
                )
                .await?;
                ids.push(id);
            }
        }
        if keep.is_none() {
            // Published even when nothing was live: a session being created elsewhere at this
            // moment must still be cut off.
            append(&mut tx, &RevocationEvent::user_revoked(user_id, now), now).await?;
        }
        tx.commit().await.map_err(map_err)?;
        if keep.is_none() || !ids.is_empty() {
            self.inner.feed.appended.notify_waiters();
        }
        match damaged {
            Some(error) => Err(error),
            None => Ok(ids),
        }
    }
}
