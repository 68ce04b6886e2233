//! The Redis revocation feed under the conditions of the "trusted after the first batch" bug:
//! a new instance facing a backlog of several batches, a reader cut off while revocations
//! pile up, a feed that delivers slowly, and cursors that lost events (trimmed, deleted, or a
//! stream that Redis lost).
//!
//! Without a reachable Redis these tests print a note and pass, unless `CI=true`, where they fail.
#![cfg(all(feature = "redis", feature = "conformance"))]

mod common;
mod redis_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis_common::{TestStore, redis_url, unique_prefix};
use time::OffsetDateTime;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::sessions::Created;
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::conformance::record;
use tower_session_jwt::store::redis::RedisStore;
use tower_session_jwt::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed, SessionLimit};
use tower_session_jwt::{AuthError, NewSession, Sessions, SigningKey};
use tower_session_jwt::{SessionStore, StoreError};

const HOUR: Duration = Duration::from_secs(3600);
/// More than three feed batches (1,000 events each).
const BACKLOG: usize = 3500;
/// How many of the most recently revoked sessions' JWTs are hammered: the last batch's.
const TARGETS: usize = 200;

fn instance(store: impl SessionStore) -> Sessions {
    Sessions::builder()
        .store(store)
        .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
        .issuer("https://app.example")
        .audience("app")
        .build()
        .unwrap()
}

/// Creates `n` sessions on `sessions` (100 at a time).
async fn logins(sessions: &Sessions, n: usize) -> Vec<Created> {
    let mut out = Vec::with_capacity(n);
    for start in (0..n).step_by(100) {
        let batch = (start..n.min(start + 100))
            .map(|i| sessions.create(format!("backlog-user-{}", i % 50), NewSession::new()));
        for created in join_all(batch).await {
            out.push(created.expect("create"));
        }
    }
    out
}

/// Revokes every session in `created`, 100 at a time, chunk after chunk.
async fn revoke_all_of(sessions: &Sessions, created: &[Created]) {
    for chunk in created.chunks(100) {
        let revoked = join_all(chunk.iter().map(|c| sessions.revoke(&c.session.session_id))).await;
        assert!(revoked.into_iter().all(|r| r.unwrap().is_some()));
    }
}

/// The JWTs of the last [`TARGETS`] sessions of `created`.
fn last_jwts(created: &[Created]) -> Arc<Vec<String>> {
    Arc::new(
        created[created.len() - TARGETS..]
            .iter()
            .map(|c| c.jwt.expose().to_owned())
            .collect(),
    )
}

#[derive(Debug, Default)]
struct Tally {
    attempts: usize,
    accepted: usize,
    revoked: usize,
    unknown: usize,
    other: usize,
}

/// Concurrent tasks authenticating revoked JWTs on an instance, and a watcher that records
/// whether the instance ever trusted its fast path before knowing `expected` revocations.
struct Hammer {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<Tally>>,
    watcher: JoinHandle<(usize, Option<Duration>)>,
}

impl Hammer {
    fn start(sessions: &Sessions, jwts: Arc<Vec<String>>, tasks: usize, expected: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let tasks = (0..tasks)
            .map(|task| {
                let (sessions, jwts, stop) = (sessions.clone(), jwts.clone(), stop.clone());
                tokio::spawn(async move {
                    let mut tally = Tally::default();
                    let mut i = task * 7;
                    while !stop.load(Ordering::Relaxed) {
                        let jwt = &jwts[i % jwts.len()];
                        i += 1;
                        tally.attempts += 1;
                        match sessions.authenticate_jwt(jwt).await {
                            Ok(_) => tally.accepted += 1,
                            Err(AuthError::Revoked) => tally.revoked += 1,
                            Err(AuthError::UnknownSession) => tally.unknown += 1,
                            Err(_) => tally.other += 1,
                        }
                        if i % 8 == 0 {
                            tokio::task::yield_now().await;
                        }
                    }
                    tally
                })
            })
            .collect();
        let watcher = {
            let (sessions, stop) = (sessions.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut early, mut first_trusted) = (0, None);
                while !stop.load(Ordering::Relaxed) {
                    // The list only grows here, so a count read after "trusted" that is short
                    // means the instance trusted its fast path with revocations unapplied.
                    if sessions.fast_path_trusted() {
                        first_trusted.get_or_insert(started.elapsed());
                        if sessions.revocations().len() < expected {
                            early += 1;
                        }
                    }
                    tokio::task::yield_now().await;
                }
                (early, first_trusted)
            })
        };
        Self {
            stop,
            tasks,
            watcher,
        }
    }

    /// Stops; returns the summed tally, how often the fast path was trusted too early, and when
    /// it was first trusted.
    async fn finish(self) -> (Tally, usize, Option<Duration>) {
        self.stop.store(true, Ordering::Relaxed);
        let mut sum = Tally::default();
        for task in self.tasks {
            let t = task.await.unwrap();
            sum.attempts += t.attempts;
            sum.accepted += t.accepted;
            sum.revoked += t.revoked;
            sum.unknown += t.unknown;
            sum.other += t.other;
        }
        let (early, first) = self.watcher.await.unwrap();
        (sum, early, first)
    }
}

/// Checks a finished hammer: nothing accepted, never trusted early, trusted in the end.
fn judge(what: &str, tally: &Tally, early: usize, first_trusted: Option<Duration>) {
    println!("{what}: {tally:?}, first trusted after {first_trusted:?}");
    assert_eq!(
        tally.accepted, 0,
        "{what}: revoked JWTs accepted: {tally:?}"
    );
    assert_eq!(
        early, 0,
        "{what}: fast path trusted before the backlog was applied"
    );
    assert!(first_trusted.is_some(), "{what}: never trusted");
    assert!(tally.attempts > 0);
}

/// After `ready`, every target is refused from the revocation list alone.
async fn refused_locally(sessions: &Sessions, jwts: &[String]) {
    for jwt in jwts {
        assert!(
            matches!(
                sessions.authenticate_jwt(jwt).await,
                Err(AuthError::Revoked)
            ),
            "a revoked JWT was not refused as revoked once caught up"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_instance_refuses_a_backlog_of_revoked_jwts_from_the_start() {
    let Some(t) = TestStore::new("feed-backlog").await else {
        return;
    };
    let a = instance(t.another().await);
    let created = logins(&a, BACKLOG).await;
    let setup = Instant::now();
    revoke_all_of(&a, &created).await;
    println!("{BACKLOG} revocations made in {:?}", setup.elapsed());
    let jwts = last_jwts(&created);

    let store = t.another().await;
    let built = Instant::now();
    let b = instance(store);
    let hammer = Hammer::start(&b, jwts.clone(), 8, BACKLOG);
    assert!(!b.fast_path_trusted(), "trusted before reading the feed");
    tokio::time::timeout(Duration::from_secs(30), b.ready())
        .await
        .expect("caught up with the backlog");
    let ready_after = built.elapsed();
    assert!(
        b.revocations().len() >= BACKLOG,
        "ready with {} of {BACKLOG} revocations applied",
        b.revocations().len()
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tally, early, first) = hammer.finish().await;
    println!("new instance under load: ready after {ready_after:?}");
    judge("new instance", &tally, early, first);
    refused_locally(&b, &jwts).await;

    // The same backlog read by an instance nobody is hammering.
    let store = t.another().await;
    let built = Instant::now();
    let c = instance(store);
    c.ready().await;
    println!(
        "new instance, quiet: {} revocations applied, ready after {:?}",
        c.revocations().len(),
        built.elapsed()
    );
    assert!(c.revocations().len() >= BACKLOG);
    refused_locally(&c, &jwts).await;
}

/// A TCP proxy to Redis that can cut every connection through it and refuse new ones.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
    accept: JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, _) = tokio::sync::watch::channel(0u64);
        let accept = {
            let (up, cut) = (up.clone(), cut.clone());
            tokio::spawn(async move {
                while let Ok((mut client, _)) = listener.accept().await {
                    if !up.load(Ordering::SeqCst) {
                        continue; // dropped: the client sees the connection close
                    }
                    let mut cut = cut.subscribe();
                    let upstream = upstream.clone();
                    tokio::spawn(async move {
                        let Ok(mut server) = TcpStream::connect(&upstream).await else {
                            return;
                        };
                        tokio::select! {
                            _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                            _ = cut.changed() => {}
                        }
                    });
                }
            })
        };
        Self {
            port,
            up,
            cut,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|generation| *generation += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
        self.accept.abort();
    }
}

/// `host:port` of a `redis://[user:pass@]host:port[/db]` URL.
fn host_port(url: &str) -> &str {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    rest.split('/').next().unwrap_or(rest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnecting_reader_refuses_revoked_jwts_while_it_catches_up() {
    let Some(t) = TestStore::new("feed-reconnect").await else {
        return;
    };
    let url = redis_url();
    let upstream = host_port(&url).to_owned();
    let proxy = Proxy::start(upstream.clone()).await;
    let proxied_url = url.replacen(&upstream, &format!("127.0.0.1:{}", proxy.port), 1);
    let a = instance(t.another().await);
    let b = instance(
        RedisStore::builder(&proxied_url)
            .key_prefix(&t.prefix)
            .build()
            .await
            .expect("store through the proxy"),
    );
    a.ready().await;
    b.ready().await;
    let created = logins(&a, 2510).await;
    let jwts = last_jwts(&created);
    for jwt in jwts.iter().take(10) {
        b.authenticate_jwt(jwt).await.expect("live session");
    }
    // B reads a few revocations first, so that it resumes from a cursor.
    let (early, later) = created.split_at(10);
    revoke_all_of(&a, early).await;
    let started = Instant::now();
    while b.revocations().len() < early.len() {
        assert!(started.elapsed() < Duration::from_secs(5), "feed idle");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // B loses Redis; it stops trusting its fast path before anything is revoked (within the
    // feed's staleness bound, a revocation may go unnoticed by design).
    b.ready().await;
    proxy.cut();
    let cut_at = Instant::now();
    while b.fast_path_trusted() {
        assert!(cut_at.elapsed() < Duration::from_secs(10), "cut unnoticed");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    println!("cut noticed after {:?}", cut_at.elapsed());

    // More than two batches of revocations pile up while B is away.
    revoke_all_of(&a, later).await;
    let hammer = Hammer::start(&b, jwts.clone(), 8, created.len());
    tokio::time::sleep(Duration::from_millis(300)).await;
    proxy.restore();
    let restored = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), b.ready())
        .await
        .expect("caught up after reconnecting");
    println!("reconnected and caught up after {:?}", restored.elapsed());
    assert!(b.revocations().len() >= created.len());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tally, early, first) = hammer.finish().await;
    judge("reconnecting instance", &tally, early, first);
    refused_locally(&b, &jwts).await;
}

/// A store that delegates to Redis but whose feed sleeps before every read.
#[derive(Clone)]
struct SlowFeedStore {
    inner: RedisStore,
    delay: Duration,
    reads: Arc<AtomicUsize>,
}

struct SlowFeed {
    inner: Arc<dyn RevocationFeed>,
    delay: Duration,
    reads: Arc<AtomicUsize>,
}

impl RevocationFeed for SlowFeed {
    fn retention(&self) -> Duration {
        self.inner.retention()
    }

    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delay).await;
            self.reads.fetch_add(1, Ordering::SeqCst);
            self.inner.read(after, wait).await
        })
    }
}

common::forward::forward_session_store! {
    impl SessionStore for SlowFeedStore => |this| this.inner;
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        let feed = SlowFeed {
            inner: self.inner.revocation_feed()?,
            delay: self.delay,
            reads: self.reads.clone(),
        };
        Some(Arc::new(feed))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_feed_keeps_the_fast_path_off_until_every_batch_is_read() {
    let Some(t) = TestStore::new("feed-slow").await else {
        return;
    };
    let a = instance(t.another().await);
    let created = logins(&a, BACKLOG).await;
    revoke_all_of(&a, &created).await;
    let jwts = last_jwts(&created);

    let delay = Duration::from_millis(250);
    let reads = Arc::new(AtomicUsize::new(0));
    let store = SlowFeedStore {
        inner: t.another().await,
        delay,
        reads: reads.clone(),
    };
    let built = Instant::now();
    let b = instance(store);
    let hammer = Hammer::start(&b, jwts.clone(), 8, BACKLOG);
    tokio::time::timeout(Duration::from_secs(30), b.ready())
        .await
        .expect("caught up through the slow feed");
    let ready_after = built.elapsed();
    let batches = BACKLOG.div_ceil(1000);
    println!(
        "slow feed: ready after {ready_after:?} and {} reads",
        reads.load(Ordering::SeqCst)
    );
    assert!(reads.load(Ordering::SeqCst) >= batches);
    assert!(ready_after >= delay * batches as u32);
    assert!(b.revocations().len() >= BACKLOG);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let (tally, early, first) = hammer.finish().await;
    judge("slow feed", &tally, early, first);
    refused_locally(&b, &jwts).await;
}

/// Creates a session and revokes it on `store`; returns its id and when it was revoked.
async fn revoke_one(store: &RedisStore) -> (SessionId, OffsetDateTime) {
    let rec = record("cursor-user", HOUR);
    store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .unwrap();
    let at = OffsetDateTime::now_utc();
    assert!(
        store
            .revoke(&rec.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
    (rec.session.session_id, at)
}

fn ids(batch: &FeedBatch) -> Vec<SessionId> {
    batch
        .events
        .iter()
        .map(|(_, event)| match event {
            RevocationEvent::Session { session_id, .. } => session_id.clone(),
            other => panic!("unexpected {other:?}"),
        })
        .collect()
}

fn last_cursor(batch: &FeedBatch) -> FeedCursor {
    batch.events.last().expect("an event").0.clone()
}

#[tokio::test]
async fn a_cursor_whose_successors_were_trimmed_is_lost() {
    let url = redis_url();
    let prefix = unique_prefix("feed-trim");
    let retention = Duration::from_millis(500);
    let store = match RedisStore::builder(&url)
        .key_prefix(&prefix)
        .feed_retention(retention)
        .build()
        .await
    {
        Ok(store) => store,
        Err(e) => {
            return redis_common::unavailable("trimmed cursor", &format!("no Redis: {e}"));
        }
    };
    let t = TestStore { store, prefix, url };
    let feed = t.store.revocation_feed().unwrap();

    let (s1, _) = revoke_one(&t.store).await;
    let first = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [s1]);
    let c1 = last_cursor(&first);
    let (s2, s2_at) = revoke_one(&t.store).await;
    let second = feed.read(Some(&c1), Duration::ZERO).await.unwrap();
    assert_eq!(ids(&second), [s2]);
    let c2 = last_cursor(&second);

    // s3's append trims s1 and s2, which are older than the retention by then.
    tokio::time::sleep(retention + Duration::from_millis(200)).await;
    let (s3, _) = revoke_one(&t.store).await;
    assert!(matches!(
        feed.read(Some(&c1), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    // c2 itself is gone, but nothing after it: no false alarm.
    let after_c2 = feed.read(Some(&c2), Duration::ZERO).await.unwrap();
    assert_eq!(ids(&after_c2), std::slice::from_ref(&s3));
    assert!(after_c2.caught_up);
    // Starting over: what is retained, and a horizon after the newest trimmed revocation.
    let restart = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&restart), [s3]);
    assert!(
        restart.horizon > s2_at,
        "horizon {} not after the trimmed revocation at {s2_at}",
        restart.horizon
    );
    // A blocking read also only hands out what a checked read returned.
    let quiet = feed
        .read(Some(&last_cursor(&restart)), Duration::from_millis(100))
        .await
        .unwrap();
    assert!(quiet.events.is_empty() && quiet.caught_up);
}

#[tokio::test]
async fn deleted_entries_and_a_lost_stream_lose_the_cursor() {
    let Some(t) = TestStore::new("feed-lost").await else {
        return;
    };
    let mut raw = t.raw().await;
    let key = format!("{}revocations", t.base());
    let feed = t.store.revocation_feed().unwrap();

    // `build` made the stream, empty; another store over the same keys leaves it alone.
    let exists: i64 = redis::cmd("EXISTS")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(exists, 1);
    let (s1, _) = revoke_one(&t.store).await;
    let (s2, _) = revoke_one(&t.store).await;
    let _again = t.another().await;
    let all = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&all), [s1, s2]);
    let (c1, c2) = (all.events[0].0.clone(), all.events[1].0.clone());

    // An entry deleted after a cursor (by hand): that cursor lost it, the next one did not.
    let (s3, _) = revoke_one(&t.store).await;
    let (s4, _) = revoke_one(&t.store).await;
    let tail = feed.read(Some(&c2), Duration::ZERO).await.unwrap();
    assert_eq!(ids(&tail), [s3, s4.clone()]);
    let c3 = tail.events[0].0.clone();
    let _: i64 = redis::cmd("XDEL")
        .arg(&key)
        .arg(&c3.0)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        feed.read(Some(&c2), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    assert_eq!(
        ids(&feed.read(Some(&c3), Duration::ZERO).await.unwrap()),
        [s4]
    );

    // Redis loses the stream (a restart without persistence, a flush).
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        feed.read(Some(&c1), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    let before = OffsetDateTime::now_utc();
    let empty = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(empty.events.is_empty() && empty.caught_up);
    assert!(
        empty.horizon >= before,
        "nothing before the loss is known, yet the horizon is {}",
        empty.horizon
    );

    // The next revocation recreates the stream; a cursor into the lost one stays lost.
    let (s5, _) = revoke_one(&t.store).await;
    assert!(matches!(
        feed.read(Some(&c3), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    let fresh = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&fresh), [s5]);
    assert!(
        fresh.horizon >= before,
        "the recreated stream knows nothing before its creation, horizon {}",
        fresh.horizon
    );

    // A cursor beyond the end of the stream was issued by a stream that is gone.
    assert!(matches!(
        feed.read(Some(&FeedCursor(format!("{}-0", u64::MAX))), Duration::ZERO)
            .await,
        Err(StoreError::FeedCursorLost)
    ));
}

#[tokio::test]
async fn a_blocked_reader_wakes_for_the_first_event_of_a_lost_stream() {
    let Some(t) = TestStore::new("feed-wake").await else {
        return;
    };
    let mut raw = t.raw().await;
    let key = format!("{}revocations", t.base());
    let _: i64 = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut raw)
        .await
        .unwrap();
    let feed = t.store.revocation_feed().unwrap();
    let revoker = {
        let store = t.store.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            revoke_one(&store).await.0
        })
    };
    let started = Instant::now();
    let mut got = Vec::new();
    while got.is_empty() {
        assert!(started.elapsed() < Duration::from_secs(5), "never woke");
        got = ids(&feed.read(None, Duration::from_secs(5)).await.unwrap());
    }
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(got, [revoker.await.unwrap()]);
}

#[tokio::test]
async fn a_blocked_read_survives_redis_forgetting_its_scripts() {
    let port = redis_common::free_port();
    let _server = match redis_common::Server::start(port) {
        Ok(server) => server,
        Err(e) => {
            return redis_common::unavailable("script flush", &format!("no redis-server: {e}"));
        }
    };
    redis_common::Server::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::connect(&url).await.unwrap();
    let feed = store.revocation_feed().unwrap();
    let (s1, _) = revoke_one(&store).await;
    let first = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(ids(&first), [s1]);

    // While the reader blocks, Redis drops its script cache and a revocation arrives.
    let revoker = {
        let (store, url) = (store.clone(), url.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let mut raw = redis::Client::open(url)
                .unwrap()
                .get_multiplexed_async_connection()
                .await
                .unwrap();
            let _: () = redis::cmd("SCRIPT")
                .arg("FLUSH")
                .query_async(&mut raw)
                .await
                .unwrap();
            revoke_one(&store).await.0
        })
    };
    let started = Instant::now();
    let woke = feed
        .read(Some(&last_cursor(&first)), Duration::from_secs(5))
        .await
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(ids(&woke), [revoker.await.unwrap()]);
    assert!(woke.caught_up);
}
