//! Revocations racing authentications: once `revoke` has returned, no request for that session
//! authenticates, on the JWT path or the opaque path, with the caches warm.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use tower_session_jwt::{MemoryStore, NewSession, Sessions};

async fn race(sessions: Sessions, verifier: Sessions, rounds: usize) {
    for _ in 0..rounds {
        let created = sessions.create("racer", NewSession::new()).await.unwrap();
        // Warm both caches so a stale entry would be the failure mode.
        verifier
            .authenticate_jwt(created.jwt.expose())
            .await
            .unwrap();
        verifier
            .authenticate_token(created.token.expose())
            .await
            .unwrap();

        let done = Arc::new(AtomicBool::new(false));
        let violations = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (verifier, done, violations) = (verifier.clone(), done.clone(), violations.clone());
            let jwt = created.jwt.expose().to_owned();
            let token = created.token.expose().to_owned();
            tasks.push(tokio::spawn(async move {
                for _ in 0..50 {
                    let after_revoke = done.load(Ordering::SeqCst);
                    let ok = if i % 2 == 0 {
                        verifier.authenticate_jwt(&jwt).await.is_ok()
                    } else {
                        verifier.authenticate_token(&token).await.is_ok()
                    };
                    if after_revoke && ok {
                        violations.fetch_add(1, Ordering::SeqCst);
                    }
                    tokio::task::yield_now().await;
                }
            }));
        }
        tokio::task::yield_now().await;
        sessions.revoke(&created.session.session_id).await.unwrap();
        done.store(true, Ordering::SeqCst);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(
            violations.load(Ordering::SeqCst),
            0,
            "authenticated after revoke returned"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_instance_revocation_wins_every_race() {
    let store = MemoryStore::new();
    let sessions = Sessions::builder()
        .store(store)
        .signing_key(tower_session_jwt::SigningKey::ed25519_pem(common::ED_PEM).unwrap())
        .build()
        .unwrap();
    sessions.ready().await;
    race(sessions.clone(), sessions, 30).await;
}

/// Two instances on one clock mint byte-identical JWTs for the same session (EdDSA signatures
/// are deterministic). When instance B verifies A's copy while minting its own, the JWT must
/// stay "minted here" on B: a verification finishing after the mint must not overwrite that,
/// or the JWT falls off B's fast path for as long as it lives (seen as a flaky two-instance
/// test).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verifying_a_twin_never_unmarks_a_jwt_minted_here() {
    use tower_session_jwt::clock::ManualClock;
    use tower_session_jwt::sessions::{AuthPath, CredentialSource, Credentials};
    // A frozen clock: every JWT is issued in the feed horizon's second, so only "minted here"
    // can put it on the fast path.
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let instance = || common::builder(&clock, store.clone()).build().unwrap();
    let (a, b) = (instance(), instance());
    a.ready().await;
    b.ready().await;
    let mut off_fast_path = 0;
    for _ in 0..200 {
        let created = a.create("twin", NewSession::new()).await.unwrap();
        let twin = created.jwt.expose().to_owned();
        let token = created.token.expose().to_owned();
        // B verifies A's JWT while it mints its own for the same session, same second.
        let verify = {
            let (b, twin) = (b.clone(), twin.clone());
            tokio::spawn(async move { b.authenticate_jwt(&twin).await.is_ok() })
        };
        let mint = {
            let (b, token) = (b.clone(), token.clone());
            tokio::spawn(async move {
                let credentials = Credentials::new().with_token(&token, CredentialSource::Cookie);
                b.authenticate(&credentials).await.unwrap().jwt.unwrap()
            })
        };
        let minted = mint.await.unwrap();
        assert!(verify.await.unwrap());
        assert_eq!(
            minted.expose(),
            twin,
            "the two instances minted different JWTs"
        );
        let credentials = Credentials::new()
            .with_jwt(minted.expose(), CredentialSource::Cookie)
            .with_token(&token, CredentialSource::Cookie);
        if b.authenticate(&credentials).await.unwrap().path != AuthPath::Jwt {
            off_fast_path += 1;
        }
    }
    assert_eq!(off_fast_path, 0, "JWTs minted on B left B's fast path");
}
