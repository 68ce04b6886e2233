//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod device;
pub mod forward;
pub mod logs;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::{
    AuthError, MemoryStore, NewSession, Sessions, SessionsBuilder, SigningKey,
};
use tower_session_jwt::{SessionStore, StoreError};

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
    /// When set, the next `update` says so on the first channel and waits for the second: a
    /// test makes another change land between a read and its write.
    pub update_gate: Arc<std::sync::Mutex<Option<UpdateGate>>>,
    /// The same for the next `find_by_token`: a test lands a change while a token lookup is
    /// in flight.
    pub find_gate: Arc<std::sync::Mutex<Option<UpdateGate>>>,
}

/// See [`FlakyStore::pause_next_update`].
pub type UpdateGate = (
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

impl FlakyStore {
    pub fn new(inner: MemoryStore) -> Self {
        Self {
            inner,
            down: Arc::default(),
            calls: Arc::default(),
            update_gate: Arc::default(),
            find_gate: Arc::default(),
        }
    }
    /// Pauses the next `update` before it writes: the first receiver hears when it got there,
    /// the second sender lets it go on.
    pub fn pause_next_update(
        &self,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        pause_next(&self.update_gate)
    }
    /// Pauses the next `find_by_token` after it read the record, before it answers (as
    /// [`pause_next_update`](Self::pause_next_update)).
    pub fn pause_next_find(
        &self,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        pause_next(&self.find_gate)
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

/// Arms `gate` for the next call that passes it.
fn pause_next(
    gate: &std::sync::Mutex<Option<UpdateGate>>,
) -> (
    tokio::sync::oneshot::Receiver<()>,
    tokio::sync::oneshot::Sender<()>,
) {
    let (reached_tx, reached_rx) = tokio::sync::oneshot::channel();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel();
    *gate.lock().unwrap() = Some((reached_tx, go_rx));
    (reached_rx, go_tx)
}

/// Waits at `gate` when it is armed: says so, then waits to be let go.
async fn pass(gate: &std::sync::Mutex<Option<UpdateGate>>) {
    let armed = gate.lock().unwrap().take();
    if let Some((reached, go)) = armed {
        let _ = reached.send(());
        let _ = go.await;
    }
}

forward::forward_session_store! {
    impl SessionStore for FlakyStore => |this| this.inner;
    every call { this.check()?; }
    find_by_token after { pass(&this.find_gate).await; }
    update before { pass(&this.update_gate).await; }
    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}

/// An instance of a shared deployment: the common key, issuer and audience, on the system clock.
pub fn instance(store: impl SessionStore) -> Sessions {
    instance_builder(store).build().unwrap()
}

/// [`instance`]'s configuration, for a test that adds to it.
pub fn instance_builder(store: impl SessionStore) -> SessionsBuilder {
    Sessions::builder()
        .store(store)
        .signing_key(SigningKey::ed25519_pem(ED_PEM).unwrap())
        .issuer("https://app.example")
        .audience("app")
}

/// Waits until `check` holds, returning how long it took; fails after `limit`.
pub async fn until(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < limit,
            "condition not met within {limit:?}"
        );
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    start.elapsed()
}

/// The multi-instance revocation scenario every shared store passes: `a` and `b` share a store
/// with a feed, and `late` starts a third instance on it after the revocations.
pub async fn revocation_reaches_every_instance(
    a: &Sessions,
    b: &Sessions,
    late: impl AsyncFnOnce() -> Sessions,
) {
    a.ready().await;
    b.ready().await;

    // A session created on A authenticates on B, both ways.
    let s = a.create("alice", NewSession::new()).await.unwrap();
    b.authenticate_jwt(s.jwt.expose()).await.unwrap();
    b.authenticate_token(s.token.expose()).await.unwrap();

    // Revoke on A: the token fails on B at once, the JWT within the feed's latency.
    a.revoke(&s.session.session_id).await.unwrap();
    assert!(b.authenticate_token(s.token.expose()).await.is_err());
    until(Duration::from_secs(2), async || {
        matches!(
            b.authenticate_jwt(s.jwt.expose()).await,
            Err(AuthError::Revoked)
        )
    })
    .await;

    // revoke_all on A reaches B, for every session of that user only.
    let x1 = a.create("bob", NewSession::new()).await.unwrap();
    let x2 = b.create("bob", NewSession::new()).await.unwrap();
    let other = b.create("carol", NewSession::new()).await.unwrap();
    b.authenticate_jwt(x1.jwt.expose()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2)).await;
    a.revoke_all("bob").await.unwrap();
    for x in [&x1, &x2] {
        assert!(b.authenticate_token(x.token.expose()).await.is_err());
        until(Duration::from_secs(2), async || {
            b.authenticate_jwt(x.jwt.expose()).await.is_err()
        })
        .await;
    }
    b.authenticate_jwt(other.jwt.expose()).await.unwrap();

    // An instance started after the revocations refuses the revoked JWTs, before its feed has
    // caught up (it confirms in the store) and after (it replays the retained revocations).
    let c = late().await;
    for jwt in [s.jwt.expose(), x1.jwt.expose(), x2.jwt.expose()] {
        assert!(c.authenticate_jwt(jwt).await.is_err());
    }
    c.ready().await;
    for jwt in [s.jwt.expose(), x1.jwt.expose(), x2.jwt.expose()] {
        assert!(matches!(
            c.authenticate_jwt(jwt).await,
            Err(AuthError::Revoked)
        ));
    }
    c.authenticate_jwt(other.jwt.expose()).await.unwrap();
}
