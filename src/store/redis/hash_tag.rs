//! The keys under one hash tag and the scripts that run on them: what [`RedisStore`] does with
//! its single tag `{P}`, and what [`RedisClusterStore`] does in each partition `{P<k>}`.
//!
//! Both stores call the same scripts with the same key layout; they differ in where the token
//! index lives. [`RedisStore`] keeps it under the tag, so the scripts write and delete token keys
//! in the same atomic step. [`RedisClusterStore`] keeps a token key in the partition its token
//! hash picks, which is usually another slot, so there the scripts leave token keys alone (an
//! empty token key prefix tells them) and the store writes them around the script.
//!
//! [`RedisStore`]: super::RedisStore
//! [`RedisClusterStore`]: super::RedisClusterStore

use std::time::Duration;

use redis::Value;
use redis::aio::ConnectionLike;
use time::OffsetDateTime;

use super::reply::{array_of, bounded, bytes_of, corrupt, decode_session, int_of, map_err};
use super::scripts::{CREATE, ENSURE_FEED, LIST_BY_USER, REVOKE, REVOKE_ALL, UPDATE};
use super::{
    Keys, encode_event, encode_session, retention_ms, score_of, session_event_parts, session_id_of,
    ttl_ms, unix_ms,
};
use crate::data::session::{Session, SessionId};
#[cfg(feature = "redis-cluster")]
use crate::data::token::TokenHash;
use crate::store::RevocationEvent;
use crate::store::{
    CreateOutcome, PageRequest, SessionLimit, SessionPage, SessionRecord, SessionUpdate,
    StoreError, UpdateOutcome, WhenFull, started_ms,
};

/// Where a store keeps the keys that find a session by its token hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum TokenIndex {
    /// Under the same hash tag: the scripts maintain it atomically.
    InTag,
    /// Elsewhere (another slot): the scripts leave it alone.
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    Elsewhere,
}

/// One hash tag's keys, and how to run the store's scripts on them.
pub(super) struct HashTag<'a> {
    pub(super) keys: &'a Keys,
    pub(super) token_index: TokenIndex,
    pub(super) retention: Duration,
    /// Bound on one call, reconnection included.
    pub(super) op_timeout: Duration,
}

/// What an update did, and (with the token index kept elsewhere) the token hash, base64url,
/// that the record held before it: the key the caller must refresh or delete.
pub(super) struct Updated {
    pub(super) outcome: UpdateOutcome,
    #[cfg_attr(not(feature = "redis-cluster"), allow(dead_code))]
    pub(super) previous_token: Option<String>,
}

impl HashTag<'_> {
    /// The token key prefix the scripts get: empty when they must leave token keys alone.
    fn token_prefix(&self) -> &str {
        match self.token_index {
            TokenIndex::InTag => &self.keys.token,
            TokenIndex::Elsewhere => "",
        }
    }

    async fn invoke(
        &self,
        conn: &mut impl ConnectionLike,
        call: &redis::ScriptInvocation<'_>,
    ) -> Result<Value, StoreError> {
        bounded(self.op_timeout, async {
            call.invoke_async(conn).await.map_err(map_err)
        })
        .await
    }

    /// Creates the feed stream if it is missing, and checks that Redis reports what gap
    /// detection needs (Redis 7.0 or later).
    pub(super) async fn ensure_feed(
        &self,
        conn: &mut impl ConnectionLike,
    ) -> Result<(), StoreError> {
        let mut call = ENSURE_FEED.prepare_invoke();
        call.key(&self.keys.feed);
        match int_of(&self.invoke(conn, &call).await?)? {
            1 => Ok(()),
            _ => Err(StoreError::Backend(
                "the revocation feed needs Redis 7.0 or later (max-deleted-entry-id)".into(),
            )),
        }
    }

    /// [`CREATE`]: the record, the user's indexes, the limit and its evictions' events (and the
    /// token key, when it lives under this tag).
    pub(super) async fn create(
        &self,
        conn: &mut impl ConnectionLike,
        record: &SessionRecord,
        limit: SessionLimit,
        now: OffsetDateTime,
    ) -> Result<CreateOutcome, StoreError> {
        let SessionRecord {
            session,
            token_hash,
        } = record;
        let json = encode_session(session)?;
        let keys = self.keys;
        let (event_head, event_tail) = session_event_parts(now)?;
        let policy = match limit.when_full() {
            WhenFull::RevokeOldest => "evict",
            WhenFull::Refuse => "refuse",
        };
        let session_key = keys.session(&session.session_id);
        let mut call = CREATE.prepare_invoke();
        match self.token_index {
            TokenIndex::InTag => call.key(keys.token(token_hash)),
            // Every declared key must be in the script's slot; the script ignores this one.
            TokenIndex::Elsewhere => call.key(&session_key),
        };
        call.key(&session_key)
            .key(keys.user(&session.user_id))
            .key(keys.started(&session.user_id))
            .key(&keys.feed)
            .arg(session.session_id.as_str())
            .arg(token_hash.to_base64url())
            .arg(json)
            .arg(ttl_ms(session.expires_at, now))
            .arg(unix_ms(session.expires_at))
            .arg(unix_ms(now))
            .arg(Keys::user_key(&session.user_id))
            .arg(started_ms(session))
            .arg(session.version)
            .arg(limit.max().map(|max| max.to_string()).unwrap_or_default())
            .arg(policy)
            .arg(&keys.session)
            .arg(self.token_prefix())
            .arg(event_head)
            .arg(event_tail)
            .arg(retention_ms(self.retention));
        let reply = self.invoke(conn, &call).await?;
        let mut reply = array_of(reply)?.into_iter();
        let status = reply
            .next()
            .ok_or_else(|| corrupt("empty reply to create"))?;
        match int_of(&status)? {
            1 => Ok(CreateOutcome::Created {
                evicted: reply
                    .map(|id| session_id_of(&id))
                    .collect::<Result<_, _>>()?,
            }),
            // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
            // replacing the old session would hand its owner's session to someone else.
            0 => Err(StoreError::Backend("duplicate session id or token".into())),
            2 => Ok(CreateOutcome::LimitReached),
            3 => Err(corrupt(
                "a session of the user has no readable start, so the oldest cannot be found",
            )),
            other => Err(corrupt(format!("unexpected create reply {other}"))),
        }
    }

    /// The live session under this tag with this id (one `HGET`).
    pub(super) async fn get(
        &self,
        conn: &mut impl ConnectionLike,
        session_id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let key = self.keys.session(session_id);
        let reply: Value = bounded(self.op_timeout, async {
            redis::cmd("HGET")
                .arg(key)
                .arg("session")
                .query_async(conn)
                .await
                .map_err(map_err)
        })
        .await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        let session = decode_session(&reply, |s| s.session_id == *session_id)?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    /// The live session under this tag with this id, if its record holds `token_hash` (one
    /// `HMGET`): a token key kept elsewhere may be stale, and the record has the last word.
    #[cfg(feature = "redis-cluster")]
    pub(super) async fn get_with_token(
        &self,
        conn: &mut impl ConnectionLike,
        session_id: &SessionId,
        token_hash: &TokenHash,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let key = self.keys.session(session_id);
        let reply: Value = bounded(self.op_timeout, async {
            redis::cmd("HMGET")
                .arg(key)
                .arg("session")
                .arg("token")
                .query_async(conn)
                .await
                .map_err(map_err)
        })
        .await?;
        let mut fields = array_of(reply)?.into_iter();
        let (Some(session), token) = (fields.next(), fields.next()) else {
            return Err(corrupt("malformed session record reply"));
        };
        if session == Value::Nil {
            return Ok(None);
        }
        if token.as_ref().and_then(bytes_of) != Some(token_hash.to_base64url().as_bytes()) {
            // The token was rotated away (or the key is a leftover): not this token's session.
            return Ok(None);
        }
        let session = decode_session(&session, |s| s.session_id == *session_id)?;
        Ok(Some(session).filter(|s| s.is_live_at(now)))
    }

    /// [`LIST_BY_USER`]: one page of a user's live sessions.
    pub(super) async fn list_by_user(
        &self,
        conn: &mut impl ConnectionLike,
        user_id: &str,
        page: &PageRequest,
        now: OffsetDateTime,
    ) -> Result<SessionPage, StoreError> {
        let keys = self.keys;
        let mut call = LIST_BY_USER.prepare_invoke();
        call.key(keys.user(user_id))
            .key(keys.started(user_id))
            .arg(unix_ms(now))
            .arg(&keys.session)
            .arg(u64::from(page.limit) + 1);
        match &page.after {
            Some(cursor) => call.arg(cursor.started_ms).arg(cursor.session_id.as_str()),
            None => call.arg("").arg(""),
        };
        let reply = self.invoke(conn, &call).await?;
        let mut reply = array_of(reply)?.into_iter();
        let status = reply
            .next()
            .ok_or_else(|| corrupt("empty reply to list_by_user"))?;
        match int_of(&status)? {
            1 => {}
            0 => {
                return Err(corrupt(
                    "a session of the user has no readable start, so it cannot be listed",
                ));
            }
            _ => return Err(corrupt("a session of the user has no expiry")),
        }
        let mut sessions = Vec::new();
        while let Some(item) = reply.next() {
            let score = reply
                .next()
                .ok_or_else(|| corrupt("listing reply without a score"))?;
            let session = decode_session(&item, |s| s.user_id == user_id)?;
            // The page's order and its cursor come from the index score and the record's
            // `started_at` respectively: they must agree, or pages would skip or repeat.
            if score_of(&score)? != started_ms(&session) {
                return Err(corrupt("listing index out of step with a session's start"));
            }
            // The script judged expiry by the record's `exp` field against `now` in whole
            // milliseconds, which never keeps a session that has expired by `now`; a record
            // whose JSON says otherwise disagrees with itself. (Dropping it here instead would
            // shorten the page and could lose the cursor to the next one.)
            if !session.is_live_at(now) {
                return Err(corrupt("session record's expiry out of step with its JSON"));
            }
            sessions.push(session);
        }
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    /// [`UPDATE`]: the compare-and-swap on the version, with its event.
    pub(super) async fn update(
        &self,
        conn: &mut impl ConnectionLike,
        update: &SessionUpdate,
        now: OffsetDateTime,
    ) -> Result<Updated, StoreError> {
        let session = &update.session;
        let done = |outcome| Updated {
            outcome,
            previous_token: None,
        };
        // A version-0 record follows nothing: no stored version can precede it.
        let Some(expected) = session.version.checked_sub(1) else {
            return Ok(done(UpdateOutcome::Stale));
        };
        let json = encode_session(session)?;
        let keys = self.keys;
        let event = if update.refuse_older_jwts {
            encode_event(&RevocationEvent::jwts_refused(
                session.session_id.clone(),
                now,
                session.version,
            ))?
        } else {
            String::new()
        };
        let mut call = UPDATE.prepare_invoke();
        call.key(keys.session(&session.session_id))
            .key(keys.user(&session.user_id))
            .key(keys.started(&session.user_id))
            .key(&keys.feed);
        if let (Some(hash), TokenIndex::InTag) = (&update.token_hash, self.token_index) {
            call.key(keys.token(hash));
        }
        call.arg(session.session_id.as_str())
            .arg(json)
            .arg(ttl_ms(session.expires_at, now))
            .arg(unix_ms(session.expires_at))
            .arg(unix_ms(now))
            .arg(self.token_prefix())
            .arg(Keys::user_key(&session.user_id))
            .arg(started_ms(session))
            .arg(expected.to_string())
            .arg(session.version.to_string())
            .arg(
                update
                    .token_hash
                    .map(|h| h.to_base64url())
                    .unwrap_or_default(),
            )
            .arg(event)
            .arg(retention_ms(self.retention));
        let reply = self.invoke(conn, &call).await?;
        if let (Value::Array(parts), TokenIndex::Elsewhere) = (&reply, self.token_index) {
            let previous = match parts.as_slice() {
                [status, token] if int_of(status)? == 1 => bytes_of(token)
                    .and_then(|b| std::str::from_utf8(b).ok())
                    .map(str::to_owned),
                _ => None,
            };
            return match previous {
                Some(token) => Ok(Updated {
                    outcome: UpdateOutcome::Updated,
                    previous_token: Some(token),
                }),
                None => Err(corrupt("malformed update reply")),
            };
        }
        match int_of(&reply)? {
            1 if self.token_index == TokenIndex::InTag => Ok(done(UpdateOutcome::Updated)),
            0 => Ok(done(UpdateOutcome::Gone)),
            2 => Ok(done(UpdateOutcome::Stale)),
            -1 => Err(StoreError::Backend(
                "an update may not move a session to another user or start".into(),
            )),
            -2 => Err(corrupt(
                "session record lacks its token, expiry or start, or has a malformed version",
            )),
            -3 => Err(StoreError::Backend("duplicate token".into())),
            other => Err(corrupt(format!("unexpected update reply {other}"))),
        }
    }

    /// [`REVOKE`]: deletes the session and publishes its event.
    pub(super) async fn revoke(
        &self,
        conn: &mut impl ConnectionLike,
        session_id: &SessionId,
        now: OffsetDateTime,
    ) -> Result<Option<Session>, StoreError> {
        let keys = self.keys;
        let event = encode_event(&RevocationEvent::session_revoked(session_id.clone(), now))?;
        let mut call = REVOKE.prepare_invoke();
        call.key(keys.session(session_id))
            .key(&keys.feed)
            .arg(session_id.as_str())
            .arg(unix_ms(now))
            .arg(event)
            .arg(self.token_prefix())
            .arg(&keys.user)
            .arg(retention_ms(self.retention))
            .arg(&keys.started);
        let reply = self.invoke(conn, &call).await?;
        if reply == Value::Nil {
            return Ok(None);
        }
        // The session is gone from Redis and its event published either way; a record that
        // cannot be decoded is still reported, so the caller does not believe nothing happened.
        let session = decode_session(&reply, |s| s.session_id == *session_id)?;
        Ok(Some(session))
    }

    /// [`REVOKE_ALL`]: deletes a user's sessions (all, or all but one) and publishes the events.
    pub(super) async fn revoke_all(
        &self,
        conn: &mut impl ConnectionLike,
        user_id: &str,
        except: Option<&SessionId>,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionId>, StoreError> {
        let keys = self.keys;
        let user_event = match except {
            None => encode_event(&RevocationEvent::user_revoked(user_id, now))?,
            Some(_) => String::new(),
        };
        let (event_head, event_tail) = session_event_parts(now)?;
        let mut call = REVOKE_ALL.prepare_invoke();
        call.key(keys.user(user_id))
            .key(keys.started(user_id))
            .key(&keys.feed)
            .arg(unix_ms(now))
            .arg(user_event)
            .arg(&keys.session)
            .arg(self.token_prefix())
            .arg(retention_ms(self.retention))
            .arg(except.map(SessionId::as_str).unwrap_or_default())
            .arg(event_head)
            .arg(event_tail);
        let reply = self.invoke(conn, &call).await?;
        array_of(reply)?.iter().map(session_id_of).collect()
    }
}
