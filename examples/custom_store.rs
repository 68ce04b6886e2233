//! A hand-written [`SessionStore`]: one `Mutex` over a `BTreeMap` of sessions and its own
//! indexes (by token hash, by user in listing order, by expiry). It does not wrap `MemoryStore`.
//!
//! The lock makes the three operations the trait needs atomic easy: creation within the
//! per-user [`SessionLimit`], the versioned compare-and-swap `update`, and revocations.
//!
//! ```text
//! cargo run --example custom_store
//! ```
//!
//! The store passes the crate's public conformance suite; `tests/examples_hyper_custom.rs`
//! includes this file and runs `tower_session_jwt::store::conformance::run_all` on it
//! (`cargo test --features conformance --test examples_hyper_custom`).
//!
//! Being in-process, this store serves a single instance. A shared store (a database) would
//! also want a revocation feed; see the end of `main`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard};

use time::OffsetDateTime;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::{
    CreateOutcome, PageRequest, SessionLimit, SessionPage, SessionRecord, SessionUpdate,
    UpdateOutcome, started_ms,
};
use tower_session_jwt::token::TokenHash;
use tower_session_jwt::{NewSession, Session, Sessions, SigningKey};
use tower_session_jwt::{SessionStore, StoreError};

/// Sessions in a `BTreeMap` keyed by id, with three secondary indexes kept in step.
///
/// Every method takes the lock once and never holds it across an `.await`, so each operation
/// is atomic and the store is safe to share between tasks. Expired sessions are filtered out of
/// every answer and purged (from the front of the expiry index) on every write, so memory is
/// bounded by live sessions.
#[derive(Debug, Default)]
pub struct CustomStore {
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    by_id: BTreeMap<SessionId, (Session, TokenHash)>,
    by_token: HashMap<TokenHash, SessionId>,
    /// Per user, `(started_ms, id)` ascending: oldest first for the limit, read backwards for
    /// the listing (newest first).
    by_user: HashMap<String, BTreeSet<(i64, SessionId)>>,
    by_expiry: BTreeSet<(OffsetDateTime, SessionId)>,
}

impl Tables {
    fn insert(&mut self, session: Session, token_hash: TokenHash) {
        let id = session.session_id.clone();
        self.by_token.insert(token_hash, id.clone());
        let user = self.by_user.entry(session.user_id.clone()).or_default();
        user.insert((started_ms(&session), id.clone()));
        self.by_expiry.insert((session.expires_at, id.clone()));
        self.by_id.insert(id, (session, token_hash));
    }

    /// Removes a session from every index and returns it (live or not).
    fn remove(&mut self, id: &SessionId) -> Option<(Session, TokenHash)> {
        let (session, token_hash) = self.by_id.remove(id)?;
        self.by_token.remove(&token_hash);
        if let Some(ids) = self.by_user.get_mut(&session.user_id) {
            ids.remove(&(started_ms(&session), id.clone()));
            if ids.is_empty() {
                self.by_user.remove(&session.user_id);
            }
        }
        self.by_expiry.remove(&(session.expires_at, id.clone()));
        Some((session, token_hash))
    }

    /// Drops every session whose `expires_at` is at or before `now`.
    fn purge_expired(&mut self, now: OffsetDateTime) {
        while let Some((expires_at, id)) = self.by_expiry.first().cloned() {
            if expires_at > now {
                break;
            }
            self.remove(&id);
        }
    }

    fn live(&self, id: &SessionId, now: OffsetDateTime) -> Option<&Session> {
        let (session, _) = self.by_id.get(id)?;
        session.is_live_at(now).then_some(session)
    }
}

impl CustomStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        // A panic while holding the lock cannot leave the indexes half-updated in a way that
        // matters more than failing every later call would, so recover the guard.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The store judges expiry by the system clock, like the conformance suite.
fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

impl SessionStore for CustomStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        let mut tables = self.lock();
        tables.purge_expired(now());
        let user = &record.session.user_id;
        let held = tables.by_user.get(user).map_or(0, BTreeSet::len);
        let Ok(evict) = limit.to_evict(held) else {
            return Ok(CreateOutcome::LimitReached);
        };
        let oldest: Vec<SessionId> = tables
            .by_user
            .get(user)
            .into_iter()
            .flatten()
            .take(evict)
            .map(|(_, id)| id.clone())
            .collect();
        for id in &oldest {
            tables.remove(id);
        }
        tables.insert(record.session, record.token_hash);
        Ok(CreateOutcome::Created { evicted: oldest })
    }

    async fn find_by_token(&self, token_hash: &TokenHash) -> Result<Option<Session>, StoreError> {
        let tables = self.lock();
        let Some(id) = tables.by_token.get(token_hash) else {
            return Ok(None);
        };
        Ok(tables.live(id, now()).cloned())
    }

    async fn get(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        Ok(self.lock().live(session_id, now()).cloned())
    }

    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        let tables = self.lock();
        let now = now();
        let Some(ids) = tables.by_user.get(user_id) else {
            return Ok(SessionPage::from_sorted(Vec::new(), page.limit));
        };
        // Newest first, strictly after the cursor: everything below it, read backwards.
        let below: Vec<&(i64, SessionId)> = match &page.after {
            Some(cursor) => ids
                .range(..(cursor.started_ms, cursor.session_id.clone()))
                .rev()
                .collect(),
            None => ids.iter().rev().collect(),
        };
        let sessions = below
            .into_iter()
            .filter_map(|(_, id)| tables.live(id, now).cloned())
            .take(page.limit as usize + 1)
            .collect();
        Ok(SessionPage::from_sorted(sessions, page.limit))
    }

    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        let mut tables = self.lock();
        let now = now();
        tables.purge_expired(now);
        let session = &update.session;
        // Only a live session is replaced: a revoked or expired one is gone from `by_id` (or is
        // not live) and stays gone.
        let Some(stored) = tables.live(&session.session_id, now) else {
            return Ok(UpdateOutcome::Gone);
        };
        if stored.user_id != session.user_id || started_ms(stored) != started_ms(session) {
            return Err(StoreError::Backend(
                "an update may not move a session to another user or start".into(),
            ));
        }
        // Compare-and-swap: someone else's change since the caller read the session wins, and
        // the caller reads it again.
        if stored.version + 1 != session.version {
            return Ok(UpdateOutcome::Stale);
        }
        let (_, old_hash) = tables
            .remove(&session.session_id)
            .expect("checked live above, under the same lock");
        tables.insert(session.clone(), update.token_hash.unwrap_or(old_hash));
        // With a feed, `update.refuse_older_jwts` would be recorded in it here; this store has
        // none (see `is_shared`).
        Ok(UpdateOutcome::Updated)
    }

    async fn revoke(&self, session_id: &SessionId) -> Result<Option<Session>, StoreError> {
        let mut tables = self.lock();
        let now = now();
        let removed = tables.remove(session_id).map(|(session, _)| session);
        tables.purge_expired(now);
        Ok(removed.filter(|session| session.is_live_at(now)))
    }

    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        let mut tables = self.lock();
        let now = now();
        let ids = tables.by_user.get(user_id).cloned().unwrap_or_default();
        let revoked = ids
            .into_iter()
            .filter(|(_, id)| Some(id) != except)
            .filter_map(|(_, id)| tables.remove(&id))
            .filter(|(session, _)| session.is_live_at(now))
            .map(|(session, _)| session.session_id)
            .collect();
        tables.purge_expired(now);
        Ok(revoked)
    }

    // `revocation_feed` keeps the trait's default, `None`: see the end of `main`.

    /// Every user of this store lives in this process. A store shared by several processes
    /// (the trait's default) needs a revocation feed, or `build()` refuses it.
    fn is_shared(&self) -> bool {
        false
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let store = CustomStore::new();
    // No feed: this store does not share revocations between instances.
    let has_feed = SessionStore::revocation_feed(&store).is_some();

    let sessions = Sessions::builder()
        .store(store)
        .signing_key(SigningKey::generate_ed25519()?)
        .issuer("https://app.example")
        .audience("app")
        .build()?;

    let created = sessions.create("user-42", NewSession::new()).await?;
    println!(
        "created   {} for {}",
        created.session.session_id, created.session.user_id
    );

    let by_jwt = sessions.authenticate_jwt(created.jwt.expose()).await?;
    println!(
        "jwt       ok: user {} (checked locally, no store call)",
        by_jwt.user_id
    );
    let by_token = sessions.authenticate_token(created.token.expose()).await?;
    println!(
        "token     ok: user {} (confirmed in the store)",
        by_token.session.user_id
    );
    println!(
        "listed    {} session(s) for user-42",
        sessions.list("user-42").await?.len()
    );

    let revoked = sessions.revoke(&created.session.session_id).await?;
    println!("revoked   {}", revoked.is_some());
    let jwt_after = sessions.authenticate_jwt(created.jwt.expose()).await;
    let token_after = sessions.authenticate_token(created.token.expose()).await;
    println!(
        "jwt       after revoke: {:?}",
        jwt_after.map(|s| s.user_id.clone())
    );
    println!(
        "token     after revoke: {:?}",
        token_after.map(|a| a.session.user_id.clone())
    );

    // The revocation feed is optional for a store used by one process, as here: `revoke` reaches
    // the store and this instance's revocation list, which is every instance there is. A store
    // shared by several processes needs a feed (see `RevocationFeed`); without one, `build()`
    // refuses it unless `.tolerate_revoked_jwts_elsewhere()` accepts that a revoked session's
    // JWT stays valid on the other instances until it expires. JWTs issued before this instance
    // started (by an earlier process with the same key) are confirmed in the store.
    println!(
        "feed      {}; fast path trusted: {}",
        if has_feed { "present" } else { "none" },
        sessions.fast_path_trusted()
    );
    Ok(())
}
