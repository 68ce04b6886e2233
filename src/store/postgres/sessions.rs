//! The [`SessionStore`] operations of a [`PostgresStore`]: one statement each where it can be,
//! a detached transaction where it cannot (see the [module docs](super)).

use std::sync::Arc;

use sqlx::Row as _;
use time::OffsetDateTime;

use super::error::{bounded, corrupt, map_err};
use super::rows::{appended, decode, encode, live, parse_ids, version_column};
use super::{PostgresStore, micros};
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;
use crate::store::feed::{encode_event, session_event_parts};
use crate::store::sqlx_common::{duplicate, is_unique_violation};
use crate::store::{
    CreateOutcome, PageRequest, RevocationFeed, SessionLimit, SessionPage, SessionRecord,
    SessionStore, SessionUpdate, StoreError, UpdateOutcome, started_ms,
};

impl SessionStore for PostgresStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = encode(&session)?;
        let version = version_column(&session)?;
        if limit.max().is_none() {
            // Nothing to count: one INSERT is atomic on its own.
            let done = bounded(self.inner.op_timeout, async {
                sqlx::query(&self.inner.sql.create)
                    .bind(session.session_id.as_str())
                    .bind(&token_hash.as_bytes()[..])
                    .bind(&session.user_id)
                    .bind(micros(session.expires_at))
                    .bind(started_ms(&session))
                    .bind(version)
                    .bind(json)
                    .execute(self.pool())
                    .await
                    .map_err(map_err)
            })
            .await?;
            if done.rows_affected() != 1 {
                return Err(duplicate());
            }
            return Ok(CreateOutcome::Created {
                evicted: Vec::new(),
            });
        }
        let store = self.clone();
        run_detached(async move {
            let sql = &store.inner.sql;
            let now = OffsetDateTime::now_utc();
            let (space, key) = sql.user_lock(&session.user_id);
            bounded(store.inner.op_timeout, async {
                // READ COMMITTED whatever the pool's default: the count must come from a snapshot
                // taken once the user's lock is held.
                let mut tx = store
                    .pool()
                    .begin_with("BEGIN ISOLATION LEVEL READ COMMITTED")
                    .await
                    .map_err(map_err)?;
                sqlx::query(&sql.lock_user)
                    .bind(space)
                    .bind(key)
                    .execute(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let live: Vec<String> = sqlx::query_scalar(&sql.live_ids_oldest_first)
                    .bind(&session.user_id)
                    .bind(micros(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let Ok(evict) = limit.to_evict(live.len()) else {
                    return Ok(CreateOutcome::LimitReached);
                };
                let victims: Vec<String> = live.into_iter().take(evict).collect();
                let events = victims
                    .iter()
                    .map(|id| {
                        let id = SessionId::parse(id)
                            .map_err(|_| corrupt(format!("malformed session id {id:?}")))?;
                        encode_event(&RevocationEvent::session_revoked(id, now))
                    })
                    .collect::<Result<Vec<String>, StoreError>>()?;
                let row = sqlx::query(&sql.create_evicting)
                    .bind(session.session_id.as_str())
                    .bind(&token_hash.as_bytes()[..])
                    .bind(&session.user_id)
                    .bind(micros(session.expires_at))
                    .bind(started_ms(&session))
                    .bind(version)
                    .bind(json)
                    .bind(&victims)
                    .bind(&events)
                    .bind(sql.feed_lock_key)
                    .bind(micros(now))
                    .bind(&sql.channel)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let inserted: i64 = row.try_get(0).map_err(map_err)?;
                if inserted != 1 {
                    return Err(duplicate());
                }
                let deleted: Vec<String> = row.try_get(3).map_err(map_err)?;
                appended(row.try_get(1).map_err(map_err)?, deleted.len())?;
                tx.commit().await.map_err(map_err)?;
                // Oldest first; a victim revoked meanwhile by someone else is theirs to report.
                let evicted = victims
                    .into_iter()
                    .filter(|id| deleted.contains(id))
                    .collect();
                Ok(CreateOutcome::Created {
                    evicted: parse_ids(evicted)?,
                })
            })
            .await
        })
        .await
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = self
            .read(|| {
                sqlx::query(&self.inner.sql.find_by_token)
                    .bind(&token_hash.as_bytes()[..])
                    .bind(micros(now))
                    .fetch_optional(self.pool())
            })
            .await?;
        Ok(live(row.as_slice(), now)?.pop())
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let row = self
            .read(|| {
                sqlx::query(&self.inner.sql.get)
                    .bind(session_id.as_str())
                    .bind(micros(now))
                    .fetch_optional(self.pool())
            })
            .await?;
        Ok(live(row.as_slice(), now)?.pop())
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        let fetch = i64::from(page.limit) + 1;
        let rows = self
            .read(|| match &page.after {
                None => sqlx::query(&sql.list_first)
                    .bind(user_id)
                    .bind(micros(now))
                    .bind(fetch)
                    .fetch_all(self.pool()),
                Some(cursor) => sqlx::query(&sql.list_after)
                    .bind(user_id)
                    .bind(micros(now))
                    .bind(cursor.started_ms)
                    .bind(cursor.session_id.as_str())
                    .bind(fetch)
                    .fetch_all(self.pool()),
            })
            .await?;
        let mut sessions = Vec::with_capacity(rows.len());
        for row in &rows {
            let session = decode(row)?;
            let started: i64 = row.try_get(4).map_err(map_err)?;
            // A record whose start disagrees with its sort key would be listed out of order and
            // break the cursor taken from it.
            if session.user_id != user_id || started_ms(&session) != started {
                return Err(corrupt(format!(
                    "session record {:?} does not match its row",
                    session.session_id.as_str()
                )));
            }
            // Rows are live by `expires_at` to the microsecond; checked on the exact time too.
            if session.is_live_at(now) {
                sessions.push(session);
            }
        }
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let session = &update.session;
        let json = encode(session)?;
        let version = version_column(session)?;
        let sql = &self.inner.sql;
        let now = OffsetDateTime::now_utc();
        let event = if update.refuse_older_jwts {
            Some(encode_event(&RevocationEvent::jwts_refused(
                session.session_id.clone(),
                now,
                session.version,
            ))?)
        } else {
            None
        };
        let now = micros(now);
        bounded(self.inner.op_timeout, async {
            let written = sqlx::query(&sql.update)
                .bind(session.session_id.as_str())
                .bind(&session.user_id)
                .bind(json)
                .bind(micros(session.expires_at))
                .bind(now)
                .bind(version)
                .bind(update.token_hash.as_ref().map(|h| &h.as_bytes()[..]))
                .bind(started_ms(session))
                .bind(sql.feed_lock_key)
                .bind(update.refuse_older_jwts)
                .bind(event)
                .bind(&sql.channel)
                .fetch_one(self.pool())
                .await;
            let row = match written {
                Ok(row) => row,
                Err(e) if is_unique_violation(&e) => {
                    return Err(StoreError::Backend("duplicate token".into()));
                }
                Err(e) => return Err(map_err(e)),
            };
            let updated: i64 = row.try_get(0).map_err(map_err)?;
            if updated == 1 {
                appended(
                    row.try_get(1).map_err(map_err)?,
                    usize::from(update.refuse_older_jwts),
                )?;
                return Ok(UpdateOutcome::Updated);
            }
            // Nothing written: gone (revoked, expired, never there), moved to another user or
            // start (refused), or at another version (stale).
            let stored = sqlx::query(&sql.live_row_of)
                .bind(session.session_id.as_str())
                .bind(now)
                .fetch_optional(self.pool())
                .await
                .map_err(map_err)?;
            let Some(stored) = stored else {
                return Ok(UpdateOutcome::Gone);
            };
            let owner: String = stored.try_get(0).map_err(map_err)?;
            let started: i64 = stored.try_get(1).map_err(map_err)?;
            if owner != session.user_id || started != started_ms(session) {
                return Err(StoreError::Backend(
                    "an update may not move a session to another user or start".into(),
                ));
            }
            Ok(UpdateOutcome::Stale)
        })
        .await
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        let event = encode_event(&RevocationEvent::session_revoked(session_id.clone(), now))?;
        let row = bounded(self.inner.op_timeout, async {
            sqlx::query(&sql.revoke)
                .bind(session_id.as_str())
                .bind(micros(now))
                .bind(sql.feed_lock_key)
                .bind(event)
                .bind(&sql.channel)
                .fetch_optional(self.pool())
                .await
                .map_err(map_err)
        })
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let live: bool = row.try_get(4).map_err(map_err)?;
        let published: i64 = row.try_get(5).map_err(map_err)?;
        if !live {
            return Ok(None);
        }
        appended(published, 1)?;
        // The row is gone and its event published either way; a record that cannot be decoded
        // is still reported, so the caller does not believe nothing happened.
        decode(&row).map(Some)
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        match except {
            None => self.revoke_user(user_id).await,
            Some(keep) => self.revoke_others(user_id, keep).await,
        }
    }

    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        Some(self.inner.feed.clone())
    }
}

impl PostgresStore {
    /// `revoke_all` without an exception: one statement deletes every session of the user and
    /// appends a session event for each live one and one user event. The session events make
    /// the revocation exact whatever clock set each `started_at` (a session created on an
    /// instance whose clock runs ahead starts after the user event's cut-off); the user event
    /// cuts off sessions being created elsewhere at this moment.
    async fn revoke_user(&self, user_id: &str) -> Result<Vec<SessionId>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let sql = &self.inner.sql;
        // Published even when nothing was live: a session being created elsewhere at this
        // moment must still be cut off.
        let event = encode_event(&RevocationEvent::user_revoked(user_id, now))?;
        let (event_head, event_tail) = session_event_parts(now)?;
        let row = bounded(self.inner.op_timeout, async {
            sqlx::query(&sql.revoke_all)
                .bind(user_id)
                .bind(micros(now))
                .bind(sql.feed_lock_key)
                .bind(event)
                .bind(&sql.channel)
                .bind(event_head)
                .bind(event_tail)
                .fetch_one(self.pool())
                .await
                .map_err(map_err)
        })
        .await?;
        let published: i64 = row.try_get(0).map_err(map_err)?;
        // Deleted all the same; an id that is not a session id got no event and is reported.
        let ids = parse_ids(row.try_get(1).map_err(map_err)?)?;
        appended(published, ids.len() + 1)?;
        Ok(ids)
    }

    /// `revoke_all` with an exception: one transaction deletes every other session of the user
    /// and appends one session event per live one deleted (a user event would cut off the kept
    /// session's JWTs too). The events are made here, from the ids the deletion answers, so
    /// this takes two statements where a revocation takes one.
    async fn revoke_others(
        &self,
        user_id: &str,
        keep: &SessionId,
    ) -> Result<Vec<SessionId>, StoreError> {
        let now = OffsetDateTime::now_utc();
        let store = self.clone();
        let (user_id, keep) = (user_id.to_owned(), keep.clone());
        run_detached(async move {
            let sql = &store.inner.sql;
            bounded(store.inner.op_timeout, async {
                let mut tx = store.pool().begin().await.map_err(map_err)?;
                let rows = sqlx::query(&sql.delete_others)
                    .bind(user_id)
                    .bind(keep.as_str())
                    .bind(micros(now))
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(map_err)?;
                let mut ids = Vec::with_capacity(rows.len());
                let mut malformed = None;
                for row in &rows {
                    let live: bool = row.try_get(1).map_err(map_err)?;
                    let id: String = row.try_get(0).map_err(map_err)?;
                    match SessionId::parse(&id) {
                        Ok(id) if live => ids.push(id),
                        Ok(_) => {}
                        // Deleted all the same (nothing can look it up by that id); reported once
                        // the others are revoked.
                        Err(_) => malformed = Some(corrupt(format!("malformed session id {id:?}"))),
                    }
                }
                if !ids.is_empty() {
                    let events = ids
                        .iter()
                        .map(|id| encode_event(&RevocationEvent::session_revoked(id.clone(), now)))
                        .collect::<Result<Vec<String>, StoreError>>()?;
                    let row = sqlx::query(&sql.append_events)
                        .bind(sql.feed_lock_key)
                        .bind(micros(now))
                        .bind(&events)
                        .bind(&sql.channel)
                        .fetch_one(&mut *tx)
                        .await
                        .map_err(map_err)?;
                    appended(row.try_get(0).map_err(map_err)?, events.len())?;
                }
                tx.commit().await.map_err(map_err)?;
                match malformed {
                    Some(error) => Err(error),
                    None => Ok(ids),
                }
            })
            .await
        })
        .await
    }
}

/// Runs a transaction to its end on a task of its own, so that the caller's cancellation (a
/// client that hangs up mid-request) cannot stop it inside `BEGIN`: sqlx 0.8 may then hand the
/// connection back to the pool inside a transaction it no longer tracks, and the statements
/// that next use it would sit uncommitted. (Single statements need no such care.)
async fn run_detached<T, F>(work: F) -> Result<T, StoreError>
where
    F: std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    T: Send + 'static,
{
    tokio::spawn(work).await.unwrap_or_else(|e| {
        Err(StoreError::Backend(
            format!("a PostgreSQL transaction task failed: {e}").into(),
        ))
    })
}
