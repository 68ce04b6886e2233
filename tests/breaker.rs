//! The store's circuit breaker against what clients can do to it: a call cancelled mid-flight
//! (a client that disconnects or resets its stream drops the request's future) is neither a
//! success nor a failure, and only a store that cannot be reached opens the circuit.

mod common;
mod sqlite_common;

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::sessions::CircuitBreaker;
use tower_session_jwt::store::SessionLimit;
use tower_session_jwt::{AuthError, MemoryStore, NewSession, SessionError, Sessions};
use tower_session_jwt::{SessionStore, StoreError};

/// The store answers.
const UP: u8 = 0;
/// Every call hangs until it is dropped: a slow store, or one whose callers give up first.
const HANGING: u8 = 1;
/// Every call sleeps a while before it answers.
const SLOW: u8 = 2;
/// The store cannot be reached: every call fails as [`StoreError::Unavailable`].
const DOWN: u8 = 3;
/// The store answers every call with an error of its own (a duplicate, say): it is reachable.
const REFUSING: u8 = 4;
/// The store answers every call with a record that cannot be decoded: it is reachable.
const CORRUPTING: u8 = 5;

/// A MemoryStore whose calls can be made to hang, sleep, or fail, and which counts the calls
/// that reached it.
#[derive(Clone, Default)]
struct Switch {
    inner: MemoryStore,
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicUsize>,
}

impl Switch {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    async fn enter(&self) -> Result<(), StoreError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        match self.mode.load(Ordering::SeqCst) {
            HANGING => std::future::pending().await,
            SLOW => {
                // Far slower than any caller waits, so that no scheduling delay on a loaded
                // machine lets a call finish before its caller's timeout.
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(())
            }
            DOWN => Err(StoreError::Unavailable("connection refused (test)".into())),
            REFUSING => Err(StoreError::Backend("duplicate token (test)".into())),
            CORRUPTING => Err(StoreError::Corrupt("undecodable record (test)".into())),
            _ => Ok(()),
        }
    }
}

common::forward::forward_session_store! {
    impl SessionStore for Switch => |this| this.inner;
    every call { this.enter().await?; }
    fn is_shared(&self) -> bool {
        false
    }
}

/// Three consecutive unreachable calls open the circuit for one second (the defaults, spelled
/// out so the tests do not depend on them).
fn sessions(store: &Switch, clock: &ManualClock) -> Sessions {
    common::builder(clock, store.clone())
        .circuit_breaker(CircuitBreaker {
            failures: 3,
            probe_after: Duration::from_secs(1),
        })
        .token_cache_capacity(0)
        .build()
        .unwrap()
}

fn an_id() -> SessionId {
    SessionId::generate().unwrap()
}

/// Polls `future` once: what a server does before the client goes away.
fn poll_once<F: Future>(future: std::pin::Pin<&mut F>) -> Poll<F::Output> {
    future.poll(&mut Context::from_waker(Waker::noop()))
}

/// Whether a store call through `sessions` is refused by an open circuit without reaching the
/// store.
async fn circuit_open(sessions: &Sessions, store: &Switch) -> bool {
    let before = store.calls();
    let refused = matches!(sessions.get(&an_id()).await, Err(StoreError::CircuitOpen));
    assert_eq!(
        store.calls() - before,
        usize::from(!refused),
        "a call reaches the store exactly when the circuit lets it"
    );
    refused
}

#[tokio::test]
async fn thousands_of_cancelled_calls_leave_the_circuit_closed() {
    let clock = ManualClock::starting_now();
    let store = Switch::default();
    let sessions = sessions(&store, &clock);
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let token = alice.token.expose().to_owned();
    store.set(HANGING);
    let before = store.calls();

    // One after another, each dropped once its store call is in flight: a readiness probe, a
    // lookup by id, a lookup by opaque token, a login.
    for i in 0..1000 {
        match i % 4 {
            0 => assert!(poll_once(pin!(sessions.health())).is_pending()),
            1 => assert!(poll_once(pin!(sessions.get(&an_id()))).is_pending()),
            2 => assert!(poll_once(pin!(sessions.authenticate_token(&token))).is_pending()),
            _ => assert!(poll_once(pin!(sessions.create("bob", NewSession::new()))).is_pending()),
        }
    }
    // Two thousand in flight at once, then all dropped, as when a load balancer closes its
    // connections.
    let ids: Vec<SessionId> = (0..2000).map(|_| an_id()).collect();
    let mut in_flight: Vec<_> = ids.iter().map(|id| Box::pin(sessions.get(id))).collect();
    for call in &mut in_flight {
        assert!(poll_once(call.as_mut()).is_pending());
    }
    drop(in_flight);
    assert_eq!(store.calls() - before, 3000, "every call reached the store");

    // Cancelled by a timeout, as a server's request timeout would, while the store answers
    // more slowly than the caller waits.
    store.set(SLOW);
    for _ in 0..200 {
        let gave_up = tokio::time::timeout(Duration::from_millis(1), sessions.get(&an_id())).await;
        assert!(
            gave_up.is_err(),
            "the call gave up, not refused at once: {gave_up:?}"
        );
    }

    store.set(UP);
    assert!(!circuit_open(&sessions, &store).await);
    assert!(sessions.health().await.ready());
    let refreshed = sessions.authenticate_token(&token).await.unwrap();
    assert_eq!(refreshed.session.user_id, "alice");
}

#[tokio::test]
async fn a_cancelled_probe_frees_the_probe_without_reopening() {
    let clock = ManualClock::starting_now();
    let store = Switch::default();
    let sessions = sessions(&store, &clock);
    sessions.ready().await;
    store.set(DOWN);
    for _ in 0..3 {
        assert!(matches!(
            sessions.get(&an_id()).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    assert!(circuit_open(&sessions, &store).await);
    clock.advance(Duration::from_secs(1));

    // Half-open: each call in turn is the one probe, and is cancelled.
    store.set(HANGING);
    for _ in 0..1000 {
        let before = store.calls();
        let id = an_id();
        let mut probe = pin!(sessions.get(&id));
        assert!(poll_once(probe.as_mut()).is_pending());
        assert_eq!(store.calls() - before, 1, "the probe reached the store");
        // While it runs, the others fail fast.
        assert!(matches!(
            poll_once(pin!(sessions.get(&an_id()))),
            Poll::Ready(Err(StoreError::CircuitOpen))
        ));
        assert_eq!(store.calls() - before, 1);
    }

    // The store answers the next probe, which closes the circuit.
    store.set(UP);
    assert!(sessions.get(&an_id()).await.unwrap().is_none());
    for _ in 0..5 {
        assert!(!circuit_open(&sessions, &store).await);
    }
}

#[tokio::test]
async fn an_outage_opens_the_circuit_and_recovery_closes_it() {
    let clock = ManualClock::starting_now();
    let store = Switch::default();
    let sessions = sessions(&store, &clock);
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let token = alice.token.expose().to_owned();

    store.set(DOWN);
    // A cancelled call between two failures neither counts nor resets the count.
    for _ in 0..2 {
        assert!(matches!(
            sessions.authenticate_token(&token).await,
            Err(AuthError::Store(StoreError::Unavailable(_)))
        ));
        store.set(HANGING);
        assert!(poll_once(pin!(sessions.get(&an_id()))).is_pending());
        store.set(DOWN);
    }
    assert!(!circuit_open(&sessions, &store).await, "two failures");
    // That was the third: now calls fail fast without reaching the store.
    for _ in 0..10 {
        assert!(circuit_open(&sessions, &store).await);
    }
    assert!(matches!(
        sessions.create("bob", NewSession::new()).await,
        Err(SessionError::Store(StoreError::CircuitOpen))
    ));
    assert!(!sessions.health().await.ready());

    // A probe that finds the store still down opens it for another period.
    clock.advance(Duration::from_secs(1));
    assert!(!circuit_open(&sessions, &store).await);
    clock.advance(Duration::from_millis(999));
    assert!(circuit_open(&sessions, &store).await);

    // The store is back: the first call after the period closes the circuit.
    store.set(UP);
    assert!(circuit_open(&sessions, &store).await);
    clock.advance(Duration::from_millis(1));
    assert!(sessions.health().await.ready());
    for _ in 0..5 {
        assert!(!circuit_open(&sessions, &store).await);
    }
    assert_eq!(
        sessions
            .authenticate_token(&token)
            .await
            .unwrap()
            .session
            .user_id,
        "alice"
    );
}

#[tokio::test]
async fn a_store_that_answers_with_errors_is_reachable() {
    let clock = ManualClock::starting_now();
    let store = Switch::default();
    let sessions = sessions(&store, &clock);
    sessions.ready().await;
    for mode in [REFUSING, CORRUPTING] {
        store.set(mode);
        for _ in 0..20 {
            let before = store.calls();
            assert!(matches!(
                sessions.get(&an_id()).await,
                Err(StoreError::Backend(_) | StoreError::Corrupt(_))
            ));
            assert_eq!(store.calls() - before, 1, "the call reached the store");
        }
    }
    store.set(UP);
    assert!(!circuit_open(&sessions, &store).await);
}

#[test]
fn only_unreachable_errors_say_unavailable() {
    assert!(StoreError::Unavailable("refused".into()).is_unavailable());
    assert!(StoreError::CircuitOpen.is_unavailable());
    assert!(!StoreError::Backend("duplicate token".into()).is_unavailable());
    assert!(!StoreError::Corrupt("bad record".into()).is_unavailable());
    assert!(!StoreError::FeedCursorLost.is_unavailable());
}

// ---------------------------------------------------------------------------------------------
// The engines: a cancelled call leaves the store as usable as it found it

/// A login cancelled at any point of its write transaction (after the store took the write
/// lock, say) must neither leave that lock held nor leave a pooled connection inside the
/// transaction: the next writer would wait out the busy timeout and fail as unreachable, and
/// any client could keep the store so, by aborting its own logins.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_sqlite_writes_leave_the_store_usable() {
    use tower_session_jwt::store::WhenFull;
    use tower_session_jwt::store::conformance::record;
    use tower_session_jwt::store::sqlite::SqliteStore;

    let db = sqlite_common::TempDb::new("cancelled-writes");
    // One connection, so a connection left inside a transaction is the next call's; a short
    // busy timeout, so a lock left held fails the next write quickly.
    let store = SqliteStore::builder(db.path())
        .max_connections(1)
        .busy_timeout(Duration::from_millis(500))
        .purge_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let limit = SessionLimit::new(1000, WhenFull::RevokeOldest);
    let user = "mallory";
    for i in 0..1500u64 {
        // Cancelled anywhere from before the call reaches the database to after it committed.
        let cut = Duration::from_micros((i * 7) % 1500);
        let _ = tokio::time::timeout(
            cut,
            store.create(record(user, Duration::from_secs(3600)), limit),
        )
        .await;
        if i % 100 == 99 {
            let rec = record(user, Duration::from_secs(3600));
            let id = rec.session.session_id.clone();
            store
                .create(rec, limit)
                .await
                .unwrap_or_else(|e| panic!("after {} cancelled logins: {e}", i + 1));
            assert!(store.revoke(&id).await.unwrap().is_some());
        }
    }
}
