//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tower_session_jwt::store::{
    CreateOutcome, PageRequest, SessionLimit, SessionPage, SessionRecord, SessionStore,
    SessionUpdate, StoreError, UpdateOutcome,
};
use tower_session_jwt::{
    ManualClock, MemoryStore, Session, SessionId, Sessions, SessionsBuilder, SigningKey, TokenHash,
};

pub const ED_PEM: &[u8] = include_bytes!("../keys/ed25519.pem");

pub fn builder(clock: &ManualClock, store: impl SessionStore) -> SessionsBuilder {
    Sessions::builder()
        .store(store)
        .signing_key(SigningKey::ed25519_pem(ED_PEM).unwrap())
        .issuer("https://app.example")
        .audience("app")
        .jwt_ttl(Duration::from_secs(300))
        .session_ttl(Duration::from_secs(3600))
        .clock(clock.clone())
}

/// A manager on a manual clock over a MemoryStore on the same clock.
pub fn manual() -> (Sessions, ManualClock, MemoryStore) {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let sessions = builder(&clock, store.clone()).build().unwrap();
    (sessions, clock, store)
}

/// A store that can be switched to fail every call, wrapping a MemoryStore.
#[derive(Clone)]
pub struct FlakyStore {
    pub inner: MemoryStore,
    pub down: Arc<AtomicBool>,
    /// Counts calls, to prove the JWT path makes none.
    pub calls: Arc<std::sync::atomic::AtomicUsize>,
}

impl FlakyStore {
    pub fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            down: Arc::default(),
            calls: Arc::default(),
        }
    }
    pub fn set_down(&self, down: bool) {
        self.down.store(down, Ordering::SeqCst);
    }
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
    fn check(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            Err(StoreError::Unavailable("store is down (test)".into()))
        } else {
            Ok(())
        }
    }
}

impl SessionStore for FlakyStore {
    async fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> Result<CreateOutcome, StoreError> {
        self.check()?;
        self.inner.create(record, limit).await
    }
    async fn find_by_token(&self, h: &TokenHash) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.find_by_token(h).await
    }
    async fn get(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.get(id).await
    }
    async fn list_by_user(
        &self,
        user_id: &str,
        page: &PageRequest,
    ) -> Result<SessionPage, StoreError> {
        self.check()?;
        self.inner.list_by_user(user_id, page).await
    }
    async fn update(&self, update: &SessionUpdate) -> Result<UpdateOutcome, StoreError> {
        self.check()?;
        self.inner.update(update).await
    }
    async fn revoke(&self, id: &SessionId) -> Result<Option<Session>, StoreError> {
        self.check()?;
        self.inner.revoke(id).await
    }
    async fn revoke_all(
        &self,
        user_id: &str,
        except: Option<&SessionId>,
    ) -> Result<Vec<SessionId>, StoreError> {
        self.check()?;
        self.inner.revoke_all(user_id, except).await
    }
    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}
