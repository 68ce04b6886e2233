//! A stalled link to the store (open, carrying nothing) must not keep a JWT revoked elsewhere
//! trusted for longer than the feed's staleness bound (`SessionsBuilder::feed_staleness`,
//! default 1 s), on every engine with a feed.
//!
//! Two instances share the store: A talks to the engine directly, B through a TCP proxy that the
//! test starts and then switches to hold every byte without closing anything. A revokes a
//! session B has been accepting on its fast path; B is then asked for the revoked JWT again and
//! again. B may accept it only until the bound has passed since its last caught-up feed read
//! (so at most the bound after the revocation; the test allows one feed read more and a small
//! margin), and must refuse it after that (`503`: the store is unreachable, or `401`), not
//! accept it. SQLite has no network link: there the test holds B's feed reads themselves.
//!
//! Without a server these tests print a note and pass, unless `CI=true`, where they fail.
#![cfg(feature = "conformance")]

mod common;
#[cfg(feature = "postgres")]
mod postgres_common;
#[cfg(feature = "redis-cluster")]
mod redis_cluster_common;
#[cfg(feature = "redis")]
mod redis_common;
#[cfg(feature = "sqlite")]
mod sqlite_common;
mod stall_proxy;

use std::time::{Duration, Instant};

use tower_session_jwt::sessions::CircuitBreaker;
use tower_session_jwt::{AuthError, NewSession, SessionStore, Sessions, SessionsBuilder};

use stall_proxy::Switch;

/// The documented default staleness bound.
const BOUND: Duration = Duration::from_secs(1);
/// Scheduling and round trips on a loaded test machine.
const MARGIN: Duration = Duration::from_millis(250);

/// B's configuration: the shared test instance's, with a circuit breaker that opens quickly.
fn instance_b(store: impl SessionStore) -> SessionsBuilder {
    common::instance_builder(store).circuit_breaker(CircuitBreaker {
        failures: 3,
        probe_after: Duration::from_millis(500),
    })
}

/// What B answered for the revoked JWT after the revocation, and when.
struct Window {
    /// From the revocation's completion to the end of the last call that accepted the JWT.
    accepted_for: Duration,
    accepted: usize,
    refused: usize,
}

/// The scenario; returns the window. `stall` holds B's link, `heal` lets it go.
async fn revoked_elsewhere_while_stalled(
    engine: &str,
    a: &Sessions,
    b: &Sessions,
    bound: Duration,
    stall: impl FnOnce(),
    heal: impl FnOnce(),
) -> Window {
    for (name, sessions) in [("A", a), ("B", b)] {
        tokio::time::timeout(Duration::from_secs(10), sessions.ready())
            .await
            .unwrap_or_else(|_| panic!("{engine}: {name} never caught up with the feed"));
    }
    // A JWT issued in the second of B's feed horizon is confirmed in the store even when B is
    // caught up; one issued after it is accepted on the fast path, which is what is at stake.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let alice = a.create("alice", NewSession::new()).await.unwrap();
    b.authenticate_jwt(alice.jwt.expose()).await.unwrap();
    // An idle feed stays fresh: B trusts its fast path without any traffic for longer than the
    // bound.
    // One feed read: the wait the follower gives a read, a quarter of the bound.
    let one_read = bound / 4;
    tokio::time::sleep(bound + one_read).await;
    assert!(b.fast_path_trusted(), "{engine}: an idle feed went stale");

    stall();
    a.revoke(&alice.session.session_id).await.unwrap();
    let revoked = Instant::now();

    let mut window = Window {
        accepted_for: Duration::ZERO,
        accepted: 0,
        refused: 0,
    };
    while revoked.elapsed() < bound + Duration::from_secs(3) {
        // Past the window B asks the stalled store, which must end in an answer (its
        // timeouts, then the open circuit), never in a hang.
        let answer = tokio::time::timeout(
            Duration::from_secs(10),
            b.authenticate_jwt(alice.jwt.expose()),
        )
        .await
        .unwrap_or_else(|_| panic!("{engine}: B hung on the stalled link"));
        match answer {
            Ok(_) => {
                assert_eq!(
                    window.refused, 0,
                    "{engine}: B accepted the revoked JWT again after refusing it"
                );
                window.accepted += 1;
                window.accepted_for = revoked.elapsed();
            }
            Err(AuthError::Store(_) | AuthError::Revoked | AuthError::UnknownSession) => {
                window.refused += 1
            }
            Err(other) => panic!("{engine}: unexpected answer {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    eprintln!(
        "{engine}: B accepted the JWT revoked on A for {:?} after the revocation ({} calls), \
         then refused it ({} calls); bound {bound:?}",
        window.accepted_for, window.accepted, window.refused
    );
    assert!(
        window.accepted_for <= bound + one_read + MARGIN,
        "{engine}: the revoked JWT was accepted for {:?}, beyond the bound of {bound:?}",
        window.accepted_for
    );
    assert!(window.refused > 0, "{engine}: B never refused the JWT");
    assert!(
        !b.fast_path_trusted(),
        "{engine}: B still trusts a stalled feed"
    );

    // Once the link carries bytes again, B learns of the revocation and says so.
    heal();
    common::until(Duration::from_secs(15), async || {
        matches!(
            b.authenticate_jwt(alice.jwt.expose()).await,
            Err(AuthError::Revoked)
        )
    })
    .await;
    window
}

#[cfg(feature = "redis")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_stalled_link() {
    use tower_session_jwt::store::redis::RedisStore;
    let Some(direct) = redis_common::TestStore::new("stalled-link").await else {
        return;
    };
    let upstream: u16 = direct.url.rsplit(':').next().unwrap().parse().unwrap();
    let (proxy, switch) = stall_proxy::StallProxy::start(upstream).await;
    let a = common::instance(direct.another().await);
    // The store's default timeouts: the bound must hold whatever they are.
    let b_store = RedisStore::builder(&proxy.url("redis"))
        .key_prefix(&direct.prefix)
        .build()
        .await
        .expect("B's store, through the proxy");
    let b = instance_b(b_store).build().unwrap();
    revoked_elsewhere_while_stalled("Redis", &a, &b, BOUND, || switch.stall(), || switch.heal())
        .await;
}

#[cfg(feature = "postgres")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stalled_link() {
    let Some(direct) = postgres_common::TestStore::new("stalled_link").await else {
        return;
    };
    let upstream = url_port(&direct.url).unwrap_or(5432);
    let (proxy, switch) = stall_proxy::StallProxy::start(upstream).await;
    let a = common::instance(direct.another().await);
    let through = direct
        .url
        .replacen(&format!(":{upstream}/"), &format!(":{}/", proxy.port), 1);
    assert_ne!(
        through, direct.url,
        "B must reach PostgreSQL through the proxy"
    );
    let b_store = postgres_common::builder(&through, &direct.schema)
        .build()
        .await
        .expect("B's store, through the proxy");
    let b = instance_b(b_store).build().unwrap();
    revoked_elsewhere_while_stalled(
        "PostgreSQL",
        &a,
        &b,
        BOUND,
        || switch.stall(),
        || switch.heal(),
    )
    .await;
}

/// The port of a `scheme://user@host:port/db` URL.
#[cfg(feature = "postgres")]
fn url_port(url: &str) -> Option<u16> {
    let authority = url.split("://").nth(1)?.split('/').next()?;
    authority.rsplit(':').next()?.parse().ok()
}

#[cfg(feature = "redis-cluster")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cluster_stalled_link() {
    use stall_proxy::StallProxy;
    use tower_session_jwt::store::redis::cluster::RedisClusterStore;

    // Every node announces a proxy's port, so every client reaches every node through the
    // proxies; A's connections are opened while the switch exempts new ones, B's after.
    let switch = Switch::default();
    let mut proxies = Vec::new();
    for _ in 0..6 {
        proxies.push(StallProxy::start_on(&switch, 0).await);
    }
    let proxies = std::sync::Arc::new(proxies);
    let started = tokio::task::spawn_blocking({
        let proxies = proxies.clone();
        move || {
            let mut next = 0;
            redis_cluster_common::Cluster::start_announcing("stall", 3, 2000, &mut |port| {
                let proxy = &proxies[next];
                next += 1;
                proxy.set_upstream(port);
                Some(proxy.port)
            })
        }
    })
    .await
    .unwrap();
    let cluster = match started {
        Ok(cluster) => cluster,
        Err(why) => {
            redis_cluster_common::unavailable("redis_cluster_stalled_link", &why);
            return;
        }
    };
    let seeds: Vec<String> = proxies.iter().map(|p| p.url("redis")).collect();
    let store = |seeds: Vec<String>| {
        RedisClusterStore::builder(seeds)
            .key_prefix("tsj-stall:")
            .build()
    };
    switch.exempt_new(true);
    let a = common::instance(store(seeds.clone()).await.expect("A's store"));
    // A's feed reads every partition, so A holds a connection to every master once caught up.
    tokio::time::timeout(Duration::from_secs(10), a.ready())
        .await
        .expect("A caught up");
    switch.exempt_new(false);
    let b = instance_b(store(seeds).await.expect("B's store"))
        .build()
        .unwrap();
    revoked_elsewhere_while_stalled(
        "Redis Cluster",
        &a,
        &b,
        BOUND,
        || switch.stall(),
        || switch.heal(),
    )
    .await;
    drop(cluster);
}

#[cfg(feature = "sqlite")]
mod sqlite {
    //! SQLite has no network link: B's feed reads go to the file. What can still stall is the
    //! read itself (a file system that blocks, a starved reader); the test holds B's feed
    //! reads, and their answers, while B's other store calls reach the file as usual.

    use std::sync::Arc;
    use std::time::Duration;

    use tokio::sync::watch;
    use tower_session_jwt::store::sqlite::SqliteStore;
    use tower_session_jwt::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed};
    use tower_session_jwt::{SessionStore, StoreError};

    use super::sqlite_common::TempDb;

    /// A feed whose reads are held, before and after they reach the file, while stalled.
    struct HeldFeed {
        inner: Arc<dyn RevocationFeed>,
        stalled: watch::Receiver<bool>,
    }

    impl RevocationFeed for HeldFeed {
        fn retention(&self) -> Duration {
            self.inner.retention()
        }

        fn read<'a>(
            &'a self,
            after: Option<&'a FeedCursor>,
            wait: Duration,
        ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
            Box::pin(async move {
                let mut gate = self.stalled.clone();
                let _ = gate.wait_for(|stalled| !*stalled).await;
                let batch = self.inner.read(after, wait).await;
                let _ = gate.wait_for(|stalled| !*stalled).await;
                batch
            })
        }
    }

    /// The SQLite store with its feed held by the switch.
    struct Held {
        store: SqliteStore,
        feed: Arc<HeldFeed>,
    }

    crate::common::forward::forward_session_store! {
        impl SessionStore for Held => |this| this.store;
        fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
            Some(self.feed.clone())
        }
        fn is_shared(&self) -> bool {
            self.store.is_shared()
        }
    }

    /// The scenario with B's feed reads held; `bound` configured on B unless `None` (the
    /// default).
    async fn stalled_feed_read(bound: Option<Duration>) {
        let db = TempDb::new("stalled-feed");
        let a = super::common::instance(db.store().await);
        let store = db.store().await;
        let (switch, stalled) = watch::channel(false);
        let feed = Arc::new(HeldFeed {
            inner: store
                .revocation_feed()
                .expect("the SQLite store has a feed"),
            stalled,
        });
        let mut b = super::instance_b(Held { store, feed });
        if let Some(bound) = bound {
            b = b.feed_staleness(bound);
        }
        let b = b.build().unwrap();
        super::revoked_elsewhere_while_stalled(
            "SQLite",
            &a,
            &b,
            bound.unwrap_or(super::BOUND),
            || {
                switch.send_replace(true);
            },
            || {
                switch.send_replace(false);
            },
        )
        .await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_stalled_feed_read() {
        stalled_feed_read(None).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_stalled_feed_read_with_a_shorter_bound() {
        stalled_feed_read(Some(Duration::from_millis(400))).await;
    }
}

#[tokio::test]
async fn the_staleness_bound_is_validated() {
    use tower_session_jwt::sessions::{MAX_FEED_STALENESS, MIN_FEED_STALENESS};
    use tower_session_jwt::{ConfigError, MemoryStore};
    let build = |bound: Duration, jwt_ttl: Duration| {
        common::instance_builder(MemoryStore::new())
            .jwt_ttl(jwt_ttl)
            .feed_staleness(bound)
            .build()
    };
    let five_minutes = Duration::from_secs(300);
    for (bound, jwt_ttl) in [
        (Duration::ZERO, five_minutes),
        (MIN_FEED_STALENESS - Duration::from_millis(1), five_minutes),
        (MAX_FEED_STALENESS + Duration::from_millis(1), five_minutes),
        (Duration::from_secs(3600), five_minutes),
        // Never longer than a JWT lives.
        (Duration::from_secs(11), Duration::from_secs(10)),
    ] {
        let refused = build(bound, jwt_ttl).map(|_| ());
        assert_eq!(
            refused,
            Err(ConfigError::InvalidFeedStaleness {
                staleness: bound,
                jwt_ttl
            }),
            "{bound:?}"
        );
    }
    for bound in [MIN_FEED_STALENESS, BOUND, MAX_FEED_STALENESS] {
        build(bound, five_minutes).unwrap();
    }
}
