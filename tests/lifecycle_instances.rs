//! The session lifecycle across two instances over each shared store (Redis, PostgreSQL): a
//! claims change, a rotation, "sign out other devices" and the session cap made on instance A
//! hold on instance B, the old token at once and the old JWT within the feed's latency, while a
//! browser-like client on B keeps working.
#![cfg(all(feature = "conformance", any(feature = "redis", feature = "postgres")))]

mod common;
#[cfg(feature = "postgres")]
mod postgres_common;
#[cfg(feature = "redis")]
mod redis_common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::until;
use futures_util::future::join_all;
use serde_json::json;
use tower_session_jwt::SessionStore;
use tower_session_jwt::session::AuthenticationFactor;
use tower_session_jwt::sessions::{AuthPath, CredentialSource, Credentials};
use tower_session_jwt::store::{SessionLimit, WhenFull};
use tower_session_jwt::{AuthError, NewSession, Sessions};

const FEED_LATENCY_LIMIT: Duration = Duration::from_secs(3);

fn instance(store: impl SessionStore, limit: SessionLimit) -> Sessions {
    common::instance_builder(store)
        .session_limit(limit)
        .build()
        .unwrap()
}

/// Everything the issue asks of two instances, over stores `a` and `b` of one shared backend.
async fn lifecycle_across_instances(a: Sessions, b: Sessions) {
    a.ready().await;
    b.ready().await;

    // --- A claims change on A, while a browser (both cookies) keeps using B.
    let created = a
        .create(
            "alice",
            NewSession::new().custom_claims(json!({"role": "viewer"})),
        )
        .await
        .unwrap();
    let id = created.session.session_id.clone();
    assert_eq!(
        b.authenticate_jwt(created.jwt.expose())
            .await
            .unwrap()
            .custom_claims["role"],
        "viewer"
    );
    let changed_flag = Arc::new(AtomicBool::new(false));
    let browser = {
        let (b, jwt, token, changed_flag) = (
            b.clone(),
            created.jwt.expose().to_owned(),
            created.token.expose().to_owned(),
            changed_flag.clone(),
        );
        tokio::spawn(async move {
            let mut jwt = jwt;
            let started = Instant::now();
            let mut saw_admin_at = None;
            loop {
                let credentials = Credentials::new()
                    .with_jwt(&jwt, CredentialSource::Cookie)
                    .with_token(&token, CredentialSource::Cookie);
                let outcome = b
                    .authenticate(&credentials)
                    .await
                    .expect("the browser is never signed out by a claims change");
                let role = outcome.session.custom_claims["role"]
                    .as_str()
                    .unwrap()
                    .to_owned();
                if let Some(fresh) = outcome.jwt {
                    jwt = fresh.expose().to_owned(); // the browser keeps the cookie it is given
                }
                match (role.as_str(), saw_admin_at) {
                    ("admin", None) => saw_admin_at = Some(started.elapsed()),
                    ("viewer", Some(_)) => panic!("the old claims came back after the new ones"),
                    ("viewer", None) if changed_flag.load(Ordering::Acquire) => {}
                    _ => {}
                }
                if let Some(at) = saw_admin_at
                    && started.elapsed() > at + Duration::from_millis(200)
                {
                    // The browser's JWT cookie, minted for the new claims, is accepted on the
                    // fast path whenever B is caught up with the feed (under load B can be
                    // between reads for a moment, and then confirms JWTs in the store).
                    let credentials = Credentials::new()
                        .with_jwt(&jwt, CredentialSource::Cookie)
                        .with_token(&token, CredentialSource::Cookie);
                    let settled = Instant::now();
                    loop {
                        b.ready().await;
                        let last = b.authenticate(&credentials).await.expect("still signed in");
                        assert_eq!(last.session.custom_claims["role"], "admin");
                        if last.path == AuthPath::Jwt || settled.elapsed() > FEED_LATENCY_LIMIT {
                            return (last.path, b.fast_path_trusted());
                        }
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "the new claims never arrived"
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let changed = a
        .update_claims(&id, json!({"role": "admin"}))
        .await
        .unwrap();
    changed_flag.store(true, Ordering::Release);
    // The old JWT alone is refused on B within the feed's latency.
    let latency = until(FEED_LATENCY_LIMIT, async || {
        matches!(
            b.authenticate_jwt(created.jwt.expose()).await,
            Err(AuthError::Revoked)
        )
    })
    .await;
    eprintln!("claims change reached B's fast path in {latency:?}");
    // The JWT the change handed out works on B, with the new claims.
    assert_eq!(
        b.authenticate_jwt(changed.jwt.as_ref().unwrap().expose())
            .await
            .unwrap()
            .custom_claims["role"],
        "admin"
    );
    // The browser ends on the fast path again, with a JWT minted for the new claims.
    let (path, trusted) = browser.await.unwrap();
    assert_eq!(
        path,
        AuthPath::Jwt,
        "the browser's new JWT stayed off the fast path (B's fast path trusted: {trusted})"
    );
    // The token alone: the new claims on B at once.
    assert_eq!(
        b.authenticate_token(created.token.expose())
            .await
            .unwrap()
            .session
            .custom_claims["role"],
        "admin"
    );

    // --- A step-up (rotation) on A: B refuses the old token at once, the old JWT soon.
    let otp = AuthenticationFactor::of_type("otp", time::OffsetDateTime::now_utc()).unwrap();
    let stepped = a.step_up(&id, otp).await.unwrap();
    let new_token = stepped.token.as_ref().unwrap();
    assert!(
        b.authenticate_token(created.token.expose()).await.is_err(),
        "the rotated-out token must fail on B at once"
    );
    let via_b = b.authenticate_token(new_token.expose()).await.unwrap();
    assert_eq!(
        via_b
            .session
            .authentication_factors
            .last()
            .unwrap()
            .factor_type,
        "otp"
    );
    let guard =
        tower_session_jwt::step_up::RecentAuth::new(&b, Duration::from_secs(60)).of_types(["otp"]);
    assert!(guard.check(&via_b.session).is_ok());
    until(FEED_LATENCY_LIMIT, async || {
        b.authenticate_jwt(changed.jwt.as_ref().unwrap().expose())
            .await
            .is_err()
    })
    .await;
    assert!(
        b.authenticate_jwt(stepped.jwt.as_ref().unwrap().expose())
            .await
            .is_ok()
    );

    // --- Sign out other devices on A: exactly the current session stays, on B too.
    let others: Vec<_> = join_all((0..3).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.create("alice", NewSession::new()).await.unwrap() }
    }))
    .await;
    for other in &others {
        b.authenticate_jwt(other.jwt.expose()).await.unwrap(); // cached as verified on B
    }
    a.revoke_others(&stepped.session).await.unwrap();
    for other in &others {
        assert!(b.authenticate_token(other.token.expose()).await.is_err());
        until(FEED_LATENCY_LIMIT, async || {
            matches!(
                b.authenticate_jwt(other.jwt.expose()).await,
                Err(AuthError::Revoked)
            )
        })
        .await;
    }
    assert!(b.authenticate_token(new_token.expose()).await.is_ok());
    assert!(
        b.authenticate_jwt(stepped.jwt.as_ref().unwrap().expose())
            .await
            .is_ok()
    );
    let listed = b.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, id);
}

/// Concurrent logins of one user spread over two instances never exceed the cap.
async fn cap_across_instances(a: Sessions, b: Sessions, cap: usize) {
    a.ready().await;
    b.ready().await;
    let results = join_all((0..40).map(|i| {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        async move { s.create("crowd", NewSession::new()).await }
    }))
    .await;
    let created: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let live = a.list("crowd").await.unwrap();
    assert_eq!(live.len(), cap, "{} live sessions", live.len());
    // Every evicted session's JWT is refused on the other instance too.
    let live_ids: Vec<_> = live.iter().map(|s| s.session_id.clone()).collect();
    for gone in created
        .iter()
        .filter(|c| !live_ids.contains(&c.session.session_id))
    {
        assert!(a.authenticate_token(gone.token.expose()).await.is_err());
        for s in [&a, &b] {
            until(FEED_LATENCY_LIMIT, async || {
                s.authenticate_jwt(gone.jwt.expose()).await.is_err()
            })
            .await;
        }
    }
}

/// The two checks over one backend: `$common::TestStore` gives two stores on shared data.
macro_rules! across_instances {
    ($module:ident, $common:ident) => {
        mod $module {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lifecycle() {
                let Some(t) = $common::TestStore::new("lifecycle").await else {
                    return;
                };
                let limit = SessionLimit::default();
                lifecycle_across_instances(
                    instance(t.another().await, limit),
                    instance(t.another().await, limit),
                )
                .await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn cap_holds() {
                let Some(t) = $common::TestStore::new("lifecycle_cap").await else {
                    return;
                };
                let limit = SessionLimit::new(5, WhenFull::RevokeOldest);
                cap_across_instances(
                    instance(t.another().await, limit),
                    instance(t.another().await, limit),
                    5,
                )
                .await;
            }
        }
    };
}

#[cfg(feature = "redis")]
across_instances!(redis, redis_common);
#[cfg(feature = "postgres")]
across_instances!(postgres, postgres_common);
