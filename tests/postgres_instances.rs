//! Several instances over one PostgreSQL: sessions, revocations and outages across instances.
#![cfg(all(feature = "postgres", feature = "conformance"))]

mod common;
mod postgres_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{instance, until};
use futures_util::future::join_all;
use http::{Request, StatusCode};
use postgres_common::{Server, TestStore, builder, free_port, unavailable};
use tower::ServiceExt;
use tower_session_jwt::sessions::Created;
use tower_session_jwt::{AuthError, NewSession, Session, SessionLayer, Sessions};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_reaches_every_instance() {
    let Some(t) = TestStore::new("instances").await else {
        return;
    };
    let a = instance(t.another().await);
    let b = instance(t.another().await);
    common::revocation_reaches_every_instance(&a, &b, async || instance(t.another().await)).await;
}

/// Measures how long a revocation on A takes to make the JWT fail on B (printed; run with
/// `--nocapture` to see the figures).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feed_latency_across_instances() {
    let Some(t) = TestStore::new("latency").await else {
        return;
    };
    let a = instance(t.another().await);
    let b = instance(t.another().await);
    a.ready().await;
    b.ready().await;
    let mut samples = Vec::new();
    let mut revoke_times = Vec::new();
    for _ in 0..100 {
        let s = a.create("dana", NewSession::new()).await.unwrap();
        b.authenticate_jwt(s.jwt.expose()).await.unwrap();
        let start = Instant::now();
        a.revoke(&s.session.session_id).await.unwrap();
        revoke_times.push(start.elapsed());
        while b.authenticate_jwt(s.jwt.expose()).await.is_ok() {
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "feed never delivered"
            );
            tokio::task::yield_now().await;
        }
        samples.push(start.elapsed());
    }
    samples.sort();
    revoke_times.sort();
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "feed latency over {} revocations (from the revoke call on A until the JWT fails on B): \
         p50 {p50:?}, p99 {p99:?}; of which the revoke call itself (its commit included): p50 \
         {:?}, p99 {:?}",
        samples.len(),
        revoke_times[revoke_times.len() / 2],
        revoke_times[revoke_times.len() * 99 / 100],
    );
    assert!(p99 < Duration::from_millis(500), "p99 {p99:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_race_revocations_after_the_feed_delivers() {
    let Some(t) = TestStore::new("race").await else {
        return;
    };
    let a = instance(t.another().await);
    let b = instance(t.another().await);
    a.ready().await;
    b.ready().await;
    for _ in 0..20 {
        let s = a.create("erin", NewSession::new()).await.unwrap();
        b.authenticate_jwt(s.jwt.expose()).await.unwrap();
        let jwt = s.jwt.expose().to_owned();
        let token = s.token.expose().to_owned();
        let hammer = {
            let b = b.clone();
            tokio::spawn(async move {
                for _ in 0..200 {
                    let _ = b.authenticate_jwt(&jwt).await;
                    let _ = b.authenticate_token(&token).await;
                }
            })
        };
        a.revoke(&s.session.session_id).await.unwrap();
        // The token fails on B at once; once B's JWT check has failed once (the feed delivered),
        // it never succeeds again.
        assert!(b.authenticate_token(s.token.expose()).await.is_err());
        // Revoked: the revocation list has it, so the feed delivered. (An earlier refusal can
        // come from the store, while B confirms JWTs there because it is between feed reads;
        // that one does not promise the fast path has heard yet.)
        let mut first = None;
        until(Duration::from_secs(2), async || {
            match b.authenticate_jwt(s.jwt.expose()).await {
                Err(AuthError::Revoked) => {
                    first = Some(AuthError::Revoked);
                    true
                }
                _ => false,
            }
        })
        .await;
        for _ in 0..50 {
            let again = b.authenticate_jwt(s.jwt.expose()).await;
            assert!(
                again.is_err(),
                "accepted again after it failed with {first:?} (fast path trusted: {})",
                b.fast_path_trusted()
            );
            tokio::task::yield_now().await;
        }
        hammer.await.unwrap();
    }
}

/// An instance started after more revocations than one feed read returns refuses every one of
/// them: while it catches up (it confirms in the store) and afterwards (from its revocation
/// list), and it does not trust its fast path before it has read them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_refuses_a_backlog_of_several_batches() {
    const BACKLOG: usize = 2200;
    let Some(t) = TestStore::new("backlog").await else {
        return;
    };
    let a = instance(t.another().await);
    let mut created = Vec::with_capacity(BACKLOG);
    for start in (0..BACKLOG).step_by(50) {
        let logins = (start..BACKLOG.min(start + 50))
            .map(|i| a.create(format!("backlog-{}", i % 40), NewSession::new()));
        for login in join_all(logins).await {
            created.push(login.unwrap());
        }
    }
    let started = Instant::now();
    for chunk in created.chunks(50) {
        let revoked = join_all(chunk.iter().map(|c| a.revoke(&c.session.session_id))).await;
        assert!(revoked.into_iter().all(|r| r.unwrap().is_some()));
    }
    println!("{BACKLOG} revocations in {:?}", started.elapsed());
    let jwts: Arc<Vec<String>> = Arc::new(
        created[BACKLOG - 200..]
            .iter()
            .map(|c| c.jwt.expose().to_owned())
            .collect(),
    );

    let b = instance(t.another().await);
    let stop = Arc::new(AtomicBool::new(false));
    let hammers: Vec<_> = (0..4)
        .map(|task| {
            let (b, jwts, stop) = (b.clone(), jwts.clone(), stop.clone());
            tokio::spawn(async move {
                let (mut accepted, mut early) = (0, 0);
                let mut i = task * 7;
                while !stop.load(Ordering::Relaxed) {
                    if b.fast_path_trusted() && b.revocations().len() < BACKLOG {
                        early += 1;
                    }
                    if b.authenticate_jwt(&jwts[i % jwts.len()]).await.is_ok() {
                        accepted += 1;
                    }
                    i += 1;
                    tokio::task::yield_now().await;
                }
                (accepted, early)
            })
        })
        .collect();
    let built = Instant::now();
    tokio::time::timeout(Duration::from_secs(30), b.ready())
        .await
        .expect("caught up with the backlog");
    println!(
        "new instance caught up with {} revocations in {:?}",
        b.revocations().len(),
        built.elapsed()
    );
    assert!(b.revocations().len() >= BACKLOG);
    tokio::time::sleep(Duration::from_millis(100)).await;
    stop.store(true, Ordering::Relaxed);
    for hammer in hammers {
        let (accepted, early) = hammer.await.unwrap();
        assert_eq!(accepted, 0, "revoked JWTs accepted");
        assert_eq!(early, 0, "fast path trusted before the backlog was read");
    }
    for jwt in jwts.iter() {
        assert!(matches!(
            b.authenticate_jwt(jwt).await,
            Err(AuthError::Revoked)
        ));
    }
}

fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/me", get(|s: Session| async move { s.user_id }))
        .layer(SessionLayer::new(sessions.clone()))
}

async fn status(app: &Router, cookie: &str) -> StatusCode {
    let request = Request::get("/me")
        .header("cookie", cookie)
        .body(Body::empty())
        .unwrap();
    app.clone().oneshot(request).await.unwrap().status()
}

fn token(c: &Created) -> String {
    format!("session_token={}", c.token.expose())
}

fn jwt(c: &Created) -> String {
    format!("session_jwt={}", c.jwt.expose())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_closed_and_recovers_without_a_restart() {
    let server = match Server::start(free_port()) {
        Ok(server) => server,
        Err(e) => return unavailable("outage", &format!("cannot start PostgreSQL: {e}")),
    };
    server.wait_ready().await;
    let url = server.url();
    let connect = async || builder(&url, "outage").build().await.unwrap();
    let a = instance(connect().await);
    let b = instance(connect().await);
    a.ready().await;
    b.ready().await;
    let live = a.create("frank", NewSession::new()).await.unwrap();
    let revoked = a.create("frank", NewSession::new()).await.unwrap();
    a.revoke(&revoked.session.session_id).await.unwrap();
    let app_b = app(&b);
    until(Duration::from_secs(2), async || {
        status(&app_b, &jwt(&revoked)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(status(&app_b, &token(&live)).await, StatusCode::OK);

    // A fast shutdown: every session is terminated ("administrator command").
    server.stop(true);
    // Opaque-token requests answer 503 at once; the revoked session is never accepted; once
    // B's feed notices the outage, JWTs are confirmed in the (unreachable) store: 503 too.
    assert_eq!(
        status(&app_b, &token(&live)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert!(matches!(
        a.create("frank", NewSession::new()).await,
        Err(tower_session_jwt::SessionError::Store(_))
    ));
    let outage = Instant::now();
    while outage.elapsed() < Duration::from_secs(8) {
        for cookie in [jwt(&revoked), token(&revoked)] {
            assert_ne!(
                status(&app_b, &cookie).await,
                StatusCode::OK,
                "revoked session accepted"
            );
        }
        if !b.fast_path_trusted() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!b.fast_path_trusted(), "the feed outage went unnoticed");
    assert_eq!(
        status(&app_b, &jwt(&live)).await,
        StatusCode::SERVICE_UNAVAILABLE
    );

    // PostgreSQL comes back, with its data. The instances recover on their own: the revoked
    // session stays refused (401, never 200), the live one works again, and new logins work on
    // A and authenticate on B.
    server.start_again().expect("restart PostgreSQL");
    server.wait_ready().await;
    let recovered = until(Duration::from_secs(10), async || b.fast_path_trusted()).await;
    eprintln!("B trusted its feed again {recovered:?} after the server was back");
    for cookie in [jwt(&revoked), token(&revoked)] {
        assert_eq!(status(&app_b, &cookie).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(status(&app_b, &token(&live)).await, StatusCode::OK);
    assert_eq!(status(&app_b, &jwt(&live)).await, StatusCode::OK);
    // A's pool replaces its broken connections as it meets them; a write that meets one fails
    // (it is not retried), so allow a few attempts.
    let mut fresh = None;
    until(Duration::from_secs(5), async || {
        fresh = a.create("frank", NewSession::new()).await.ok();
        fresh.is_some()
    })
    .await;
    let fresh = fresh.unwrap();
    assert_eq!(status(&app_b, &token(&fresh)).await, StatusCode::OK);
    assert_eq!(status(&app_b, &jwt(&fresh)).await, StatusCode::OK);
    drop(server);
}
