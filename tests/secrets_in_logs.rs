//! No log line carries a token, a JWT or key material, whatever path a request takes.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::Request;
use tower::ServiceExt;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::{MemoryStore, NewSession, Session, SessionLayer};

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let captured = common::logs::capture();

    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let sessions = common::builder(&clock, store).build().unwrap();
    sessions.ready().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let pem = tower_session_jwt::SigningKey::ed25519_pem(common::ED_PEM).unwrap();
    let app = Router::new()
        .route("/me", get(|s: Session| async move { s.user_id }))
        .layer(SessionLayer::new(sessions.clone()));

    let jwt = created.jwt.expose().to_owned();
    let token = created.token.expose().to_owned();
    let requests = [
        format!("session_jwt={jwt}"),
        format!("session_token={token}"),
        format!("session_jwt={jwt}x"),
        format!("session_token={token}; session_jwt={jwt}"),
        format!("session_jwt={jwt}; session_jwt={jwt}y"),
    ];
    for cookie in &requests {
        let request = Request::get("/me")
            .header("cookie", cookie)
            .body(Body::empty())
            .unwrap();
        app.clone().oneshot(request).await.unwrap();
        clock.advance(Duration::from_secs(200));
    }
    sessions.revoke_token(&token).await.unwrap();

    let logs = captured.text();
    assert!(
        logs.contains("session authentication"),
        "nothing was logged: {logs}"
    );
    assert!(!logs.contains(&token), "token in logs");
    for segment in jwt.split('.') {
        assert!(!logs.contains(segment), "JWT segment in logs: {logs}");
    }
    let key_pem = pem.to_pkcs8_pem().unwrap();
    let key_body = key_pem.lines().nth(1).unwrap();
    assert!(!logs.contains(key_body), "key material in logs");
    assert!(!logs.contains(&created.token.hash().to_base64url()));
}
