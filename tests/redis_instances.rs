//! Several instances over one Redis: sessions, revocations and outages across instances.
#![cfg(all(feature = "redis", feature = "conformance"))]

mod common;
mod redis_common;

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{instance, until};
use http::{Request, StatusCode};
use redis_common::{Server, TestStore, free_port, unavailable};
use tower::ServiceExt;
use tower_session_jwt::store::redis::RedisStore;
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
    for _ in 0..100 {
        let s = a.create("dana", NewSession::new()).await.unwrap();
        b.authenticate_jwt(s.jwt.expose()).await.unwrap();
        let start = Instant::now();
        a.revoke(&s.session.session_id).await.unwrap();
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
    let p50 = samples[samples.len() / 2];
    let p99 = samples[samples.len() * 99 / 100];
    println!(
        "feed latency over {} revocations: p50 {p50:?}, p99 {p99:?}",
        samples.len()
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
        // Revoked: the revocation list has it (an earlier refusal can come from the store,
        // while B is between feed reads, and promises nothing about the fast path).
        until(Duration::from_secs(2), async || {
            matches!(
                b.authenticate_jwt(s.jwt.expose()).await,
                Err(AuthError::Revoked)
            )
        })
        .await;
        for _ in 0..50 {
            assert!(b.authenticate_jwt(s.jwt.expose()).await.is_err());
            tokio::task::yield_now().await;
        }
        hammer.await.unwrap();
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_closed_and_recovers_without_a_restart() {
    let port = free_port();
    let mut server = match Server::start(port) {
        Ok(server) => server,
        Err(e) => return unavailable("outage", &format!("cannot start redis-server: {e}")),
    };
    Server::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let connect = async || RedisStore::builder(&url).build().await.unwrap();
    let a = instance(connect().await);
    let b = instance(connect().await);
    a.ready().await;
    b.ready().await;
    let live = a.create("frank", NewSession::new()).await.unwrap();
    let revoked = a.create("frank", NewSession::new()).await.unwrap();
    a.revoke(&revoked.session.session_id).await.unwrap();
    let app_b = app(&b);
    let token =
        |c: &tower_session_jwt::sessions::Created| format!("session_token={}", c.token.expose());
    let jwt = |c: &tower_session_jwt::sessions::Created| format!("session_jwt={}", c.jwt.expose());
    until(Duration::from_secs(2), async || {
        status(&app_b, &jwt(&revoked)).await == StatusCode::UNAUTHORIZED
    })
    .await;
    assert_eq!(status(&app_b, &token(&live)).await, StatusCode::OK);

    server.kill();
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
    while outage.elapsed() < Duration::from_secs(5) {
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

    // Redis comes back (empty: it keeps nothing on disk). The instances recover on their own:
    // old sessions are gone (401, never 200), new logins work on A and authenticate on B.
    let _server = Server::start(port).expect("restart redis-server");
    Server::wait_ready(port).await;
    until(Duration::from_secs(10), async || b.fast_path_trusted()).await;
    for cookie in [jwt(&revoked), token(&revoked), token(&live)] {
        assert_eq!(status(&app_b, &cookie).await, StatusCode::UNAUTHORIZED);
    }
    // A's command connection reconnects on its next use; the first call may still see the
    // broken connection, so allow a few attempts.
    let mut fresh = None;
    until(Duration::from_secs(5), async || {
        fresh = a.create("frank", NewSession::new()).await.ok();
        fresh.is_some()
    })
    .await;
    let fresh = fresh.unwrap();
    assert_eq!(status(&app_b, &token(&fresh)).await, StatusCode::OK);
    assert_eq!(status(&app_b, &jwt(&fresh)).await, StatusCode::OK);
}
