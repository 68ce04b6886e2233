//! Self-authenticating session tokens: a token this service did not mint is refused before the
//! store is asked, key rotation keeps earlier tokens working, and untagged tokens from before
//! the keys have a migration window.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{FlakyStore, builder};
use http::{Request, StatusCode};
use tower::ServiceExt;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::layer::CurrentSession;
use tower_session_jwt::sessions::CookieConfig;
use tower_session_jwt::token::{SessionToken, TAGGED_TOKEN_LEN, TOKEN_LEN, TokenKey};
use tower_session_jwt::{AuthError, MemoryStore, NewSession, SessionLayer, Sessions};

fn key(id: u8, byte: u8) -> TokenKey {
    TokenKey::new(id, &[byte; 32]).unwrap()
}

fn counted(clock: &ManualClock) -> FlakyStore {
    FlakyStore::new(MemoryStore::with_clock(clock.clone()))
}

#[tokio::test]
async fn forged_tokens_are_refused_without_a_store_call() {
    let clock = ManualClock::starting_now();
    let store = counted(&clock);
    let sessions = builder(&clock, store.clone())
        .token_key(key(1, 1))
        .token_cache_capacity(0)
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    assert_eq!(created.token.expose().len(), TAGGED_TOKEN_LEN);

    let before = store.calls();
    let stranger = key(1, 2);
    let forged = [
        // Random untagged tokens: what a guesser sends by default.
        SessionToken::generate().unwrap(),
        // The right shape, the right key id, a tag made with another secret.
        SessionToken::generate_tagged(&stranger).unwrap(),
        SessionToken::generate_tagged(&key(9, 1)).unwrap(),
    ];
    for token in &forged {
        let refused = sessions.authenticate_token(token.expose()).await;
        assert!(
            matches!(refused, Err(AuthError::ForgedToken)),
            "{refused:?}"
        );
        assert_eq!(sessions.revoke_token(token.expose()).await.unwrap(), None);
    }
    // One character changed in a genuine token breaks its tag.
    let mut altered = created.token.expose().as_bytes().to_vec();
    altered[10] = if altered[10] == b'x' { b'y' } else { b'x' };
    let altered = String::from_utf8(altered).unwrap();
    assert!(matches!(
        sessions.authenticate_token(&altered).await,
        Err(AuthError::ForgedToken)
    ));
    assert_eq!(store.calls(), before, "no store call for any forged token");

    // The genuine token still goes to the store and works.
    let ok = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_eq!(ok.session.session_id, created.session.session_id);
    assert!(store.calls() > before);
    assert_eq!(AuthError::ForgedToken.reason(), "forged_token");
    assert_eq!(AuthError::ForgedToken.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_rotation_keeps_tokens_of_the_previous_key() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let before = builder(&clock, store.clone())
        .token_key(key(1, 1))
        .build()
        .unwrap();
    let old = before.create("alice", NewSession::new()).await.unwrap();
    assert!(key(1, 1).verifies(old.token.expose()));

    // New key current, old key kept: both sessions work, new tokens carry the new key.
    let rotated = builder(&clock, store.clone())
        .token_key(key(2, 2))
        .previous_token_key(key(1, 1))
        .build()
        .unwrap();
    let new = rotated.create("bob", NewSession::new()).await.unwrap();
    assert!(key(2, 2).verifies(new.token.expose()));
    for token in [&old.token, &new.token] {
        rotated.authenticate_token(token.expose()).await.unwrap();
    }
    // Rotating a session's token mints it under the current key.
    let changed = rotated.rotate(&old.session.session_id).await.unwrap();
    let fresh = changed.token.expect("rotation hands out a new token");
    assert!(key(2, 2).verifies(fresh.expose()));

    // Once the previous key is dropped, its tokens are refused before the store.
    let done = builder(&clock, store).token_key(key(2, 2)).build().unwrap();
    let bob = done.create("bob", NewSession::new()).await.unwrap();
    assert!(matches!(
        done.authenticate_token(old.token.expose()).await,
        Err(AuthError::ForgedToken)
    ));
    done.authenticate_token(bob.token.expose()).await.unwrap();
    done.authenticate_token(fresh.expose()).await.unwrap();
}

#[tokio::test]
async fn untagged_tokens_work_until_the_migration_window_closes() {
    let clock = ManualClock::starting_now();
    let store = counted(&clock);
    // Sessions from before the upgrade: untagged tokens.
    let legacy = builder(&clock, store.clone()).build().unwrap();
    let old = legacy.create("alice", NewSession::new()).await.unwrap();
    assert_eq!(old.token.expose().len(), TOKEN_LEN);

    let upgraded = builder(&clock, store.clone())
        .token_key(key(1, 1))
        .token_cache_capacity(0)
        .accept_untagged_tokens_until(
            tower_session_jwt::clock::Clock::now(&clock) + Duration::from_secs(60),
        )
        .build()
        .unwrap();
    upgraded
        .authenticate_token(old.token.expose())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(61));
    let calls = store.calls();
    assert!(matches!(
        upgraded.authenticate_token(old.token.expose()).await,
        Err(AuthError::ForgedToken)
    ));
    assert_eq!(store.calls(), calls);
    // A store-side revoke by session id still reaches it (the window only filters tokens).
    upgraded.revoke(&old.session.session_id).await.unwrap();
}

#[tokio::test]
async fn the_layer_answers_401_to_forged_cookies_and_bearers() {
    let clock = ManualClock::starting_now();
    let store = counted(&clock);
    let sessions: Sessions = builder(&clock, store.clone())
        .token_key(key(7, 7))
        .token_cache_capacity(0)
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = Router::new()
        .route(
            "/me",
            get(|session: CurrentSession| async move { session.user_id.clone() }),
        )
        .layer(SessionLayer::new(sessions.clone()));
    let forged = SessionToken::generate_tagged(&key(7, 8)).unwrap();
    let calls = store.calls();
    for request in [
        Request::get("/me")
            .header(
                "cookie",
                format!(
                    "{}={}",
                    CookieConfig::default().token_name(),
                    forged.expose()
                ),
            )
            .body(Body::empty())
            .unwrap(),
        Request::get("/me")
            .header("authorization", format!("Bearer {}", forged.expose()))
            .body(Body::empty())
            .unwrap(),
    ] {
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    assert_eq!(store.calls(), calls, "the layer asked the store nothing");
    let response = app
        .oneshot(
            Request::get("/me")
                .header(
                    "authorization",
                    format!("Bearer {}", created.token.expose()),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
