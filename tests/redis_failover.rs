//! A stalled Redis (the process stopped with SIGSTOP, as a master is during a failover) under
//! both availability settings: by default the circuit breaker fails fast once the store is
//! known to be down and JWTs are confirmed in the (unreachable) store, so requests answer `503`
//! at once; with the opt-in `feed_outage_grace`, JWTs issued before the last feed read keep
//! working for that long. Both recover by themselves when the server resumes.

mod redis_common;

use std::process::Command;
use std::time::{Duration, Instant};

use redis_common::{Server, free_port, unavailable, unique_prefix};
use tower_session_jwt::sessions::CircuitBreaker;
use tower_session_jwt::store::redis::RedisStore;
use tower_session_jwt::{AuthError, NewSession, Sessions, SigningKey, StoreError};

struct Stalled {
    server: Server,
    url: String,
}

impl Stalled {
    async fn start(test: &str) -> Option<Self> {
        let port = free_port();
        let server = match Server::start(port) {
            Ok(server) => server,
            Err(e) => {
                unavailable(test, &format!("cannot start redis-server: {e}"));
                return None;
            }
        };
        Server::wait_ready(port).await;
        Some(Self {
            server,
            url: format!("redis://127.0.0.1:{port}"),
        })
    }

    fn signal(&self, sig: &str) {
        let pid = self.server.child.id().to_string();
        let status = Command::new("kill").args([sig, &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {sig} {pid}");
    }
}

impl Drop for Stalled {
    fn drop(&mut self) {
        // A stopped process ignores SIGKILL's cleanup until continued on some systems.
        self.signal("-CONT");
    }
}

async fn instance(url: &str, prefix: &str, key: &SigningKey, grace: Duration) -> Sessions {
    let store = RedisStore::builder(url)
        .key_prefix(prefix)
        .response_timeout(Duration::from_millis(400))
        .connect_timeout(Duration::from_millis(400))
        .build()
        .await
        .expect("store on the private server");
    let sessions = Sessions::builder()
        .store(store)
        .signing_key(key.clone())
        .jwt_ttl(Duration::from_secs(60))
        .circuit_breaker(CircuitBreaker {
            failures: 3,
            probe_after: Duration::from_millis(500),
        })
        .feed_outage_grace(grace)
        .build()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(10), sessions.ready())
        .await
        .expect("caught up with the feed");
    sessions
}

/// Waits until a caught-up feed read was sent in a later second than the JWT's `iat`, so the
/// JWT counts as issued before the last read.
async fn past_a_feed_read(sessions: &Sessions) {
    tokio::time::sleep(Duration::from_millis(2200)).await;
    assert!(sessions.fast_path_trusted());
}

/// Until `check` holds, or panics after `within`.
async fn eventually<F: AsyncFnMut() -> bool>(within: Duration, what: &str, mut check: F) {
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "never: {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn circuit_open(result: &Result<std::sync::Arc<tower_session_jwt::Session>, AuthError>) -> bool {
    matches!(result, Err(AuthError::Store(StoreError::CircuitOpen)))
}

#[tokio::test]
async fn by_default_a_stall_fails_fast_then_recovers() {
    let Some(redis) = Stalled::start("stall, default settings").await else {
        return;
    };
    let key = SigningKey::generate_ed25519().unwrap();
    let a = instance(
        &redis.url,
        &unique_prefix("stall-off"),
        &key,
        Duration::ZERO,
    )
    .await;
    let alice = a.create("alice", NewSession::new()).await.unwrap();
    past_a_feed_read(&a).await;

    redis.signal("-STOP");
    // Once the feed is stale (the staleness bound, 1 s), JWTs are confirmed in the store, which
    // does not answer: the first calls time out, then the circuit opens and the rest fail
    // without a call.
    eventually(Duration::from_secs(15), "the circuit opens", async || {
        circuit_open(&a.authenticate_jwt(alice.jwt.expose()).await)
    })
    .await;
    assert!(!a.fast_path_trusted());
    for _ in 0..50 {
        let refused = a.authenticate_jwt(alice.jwt.expose()).await;
        assert!(circuit_open(&refused), "{refused:?}");
    }
    let token = a.authenticate_token(alice.token.expose()).await;
    assert!(
        matches!(token, Err(AuthError::Store(StoreError::CircuitOpen))),
        "{token:?}"
    );

    redis.signal("-CONT");
    // No restart, no rebuild: a probe finds the store and the feed catches up.
    eventually(
        Duration::from_secs(10),
        "requests succeed again",
        async || a.authenticate_jwt(alice.jwt.expose()).await.is_ok(),
    )
    .await;
    a.authenticate_token(alice.token.expose()).await.unwrap();
    // A revocation after the stall is seen everywhere, as before.
    a.revoke(&alice.session.session_id).await.unwrap();
    assert!(matches!(
        a.authenticate_jwt(alice.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
}

#[tokio::test]
async fn with_a_grace_jwts_issued_before_the_stall_keep_working_for_that_long() {
    let Some(redis) = Stalled::start("stall, with a grace").await else {
        return;
    };
    let key = SigningKey::generate_ed25519().unwrap();
    let prefix = unique_prefix("stall-grace");
    let grace = Duration::from_secs(6);
    let a = instance(&redis.url, &prefix, &key, grace).await;
    let b = instance(&redis.url, &prefix, &key, grace).await;
    // JWTs issued in the second of an instance's feed horizon are confirmed in the store even
    // when caught up (`iat` cannot tell which side of it they were minted on).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let alice = a.create("alice", NewSession::new()).await.unwrap();
    let bob = a.create("bob", NewSession::new()).await.unwrap();
    past_a_feed_read(&a).await;
    past_a_feed_read(&b).await;
    let stopped = Instant::now();

    redis.signal("-STOP");
    // Past the 1 s staleness bound the feed is untrusted, but within the grace the JWTs issued
    // before the last read still pass on both instances, with no store call.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert!(!a.fast_path_trusted());
    for (name, sessions) in [("a", &a), ("b", &b)] {
        let ok = sessions.authenticate_jwt(alice.jwt.expose()).await;
        assert_eq!(ok.expect(name).user_id, "alice");
    }
    // A revocation made on an instance during the outage is applied there at once, even though
    // the store cannot be told (this is the documented risk: the other instance, b, cannot
    // learn of it until the feed is back or the grace is over).
    let revoked = a.revoke(&bob.session.session_id).await;
    assert!(revoked.is_err(), "the store is stalled: {revoked:?}");
    assert!(matches!(
        a.authenticate_jwt(bob.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));

    // Once the grace has passed since the last read, JWTs are confirmed in the store again,
    // which fails fast.
    let until = grace + Duration::from_secs(1);
    tokio::time::sleep(until.saturating_sub(stopped.elapsed())).await;
    eventually(Duration::from_secs(10), "the grace ends", async || {
        matches!(
            a.authenticate_jwt(alice.jwt.expose()).await,
            Err(AuthError::Store(_))
        )
    })
    .await;

    redis.signal("-CONT");
    eventually(Duration::from_secs(10), "both recover", async || {
        a.authenticate_jwt(alice.jwt.expose()).await.is_ok()
            && b.authenticate_jwt(alice.jwt.expose()).await.is_ok()
    })
    .await;
}

#[tokio::test]
async fn a_grace_longer_than_the_jwt_is_refused() {
    let error = Sessions::builder()
        .store(tower_session_jwt::MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .jwt_ttl(Duration::from_secs(60))
        .feed_outage_grace(Duration::from_secs(61))
        .build()
        .unwrap_err();
    assert!(matches!(
        error,
        tower_session_jwt::ConfigError::GraceTooLong { .. }
    ));
}
