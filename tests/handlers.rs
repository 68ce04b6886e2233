//! Logout, logout everywhere and revoke-by-id handlers, as tower services behind the layer.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::{get, post_service};
use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_session_jwt::logout::{logout, logout_everywhere, revoke_session};
use tower_session_jwt::sessions::Created;
use tower_session_jwt::{NewSession, Session, SessionLayer, Sessions};

fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/me", get(|s: Session| async move { s.user_id }))
        .route(
            "/logout",
            post_service(logout(sessions).redirect_forms_to("/")),
        )
        .route("/logout/all", post_service(logout_everywhere(sessions)))
        .route(
            "/api/sessions/{session_id}/revoke",
            post_service(revoke_session(sessions)),
        )
        .layer(SessionLayer::new(sessions.clone()).optional())
}

fn cookies_of(c: &Created) -> String {
    format!(
        "session_token={}; session_jwt={}",
        c.token.expose(),
        c.jwt.expose()
    )
}

async fn call(
    app: &Router,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
) -> http::Response<Body> {
    let mut request = Request::builder()
        .method(method)
        .uri(uri)
        .header("host", "app.example");
    for (n, v) in headers {
        request = request.header(*n, *v);
    }
    app.clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

async fn status_with(app: &Router, cookie: &str) -> StatusCode {
    call(app, "GET", "/me", &[("cookie", cookie)])
        .await
        .status()
}

#[tokio::test]
async fn logout_strips_both_cookies_and_kills_both_credentials() {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = app(&sessions);
    let response = call(&app, "POST", "/logout", &[("cookie", &cookies_of(&alice))]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
    let stripped: Vec<&str> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(stripped.len(), 2);
    for (cookie, name) in stripped.iter().zip(["session_token=", "session_jwt="]) {
        assert!(cookie.starts_with(name), "{cookie}");
        for attr in [
            "Max-Age=0",
            "Path=/",
            "HttpOnly",
            "Secure",
            "SameSite=Lax",
            "Expires=Thu, 01 Jan 1970",
        ] {
            assert!(cookie.contains(attr), "{attr} missing in {cookie}");
        }
    }
    assert_eq!(
        status_with(&app, &format!("session_jwt={}", alice.jwt.expose())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        status_with(&app, &format!("session_token={}", alice.token.expose())).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_is_idempotent_with_any_credentials() {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = app(&sessions);
    let garbage = "session_token=garbage; session_jwt=a.b.c".to_string();
    let valid = cookies_of(&alice);
    for cookie in ["", garbage.as_str(), valid.as_str(), valid.as_str()] {
        let response = call(&app, "POST", "/logout", &[("cookie", cookie)]).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT, "{cookie}");
        assert_eq!(
            response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .count(),
            2
        );
    }
    // Form posts get a redirect so the page reloads.
    let response = call(
        &app,
        "POST",
        "/logout",
        &[("content-type", "application/x-www-form-urlencoded")],
    )
    .await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[header::LOCATION], "/");
}

#[tokio::test]
async fn logout_everywhere_revokes_only_that_user() {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let a1 = sessions.create("alice", NewSession::new()).await.unwrap();
    let a2 = sessions.create("alice", NewSession::new()).await.unwrap();
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let app = app(&sessions);
    let response = call(&app, "POST", "/logout/all", &[("cookie", &cookies_of(&a1))]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    for c in [&a1, &a2] {
        assert_eq!(
            status_with(&app, &format!("session_jwt={}", c.jwt.expose())).await,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            status_with(&app, &format!("session_token={}", c.token.expose())).await,
            StatusCode::UNAUTHORIZED
        );
    }
    assert_eq!(status_with(&app, &cookies_of(&bob)).await, StatusCode::OK);
}

#[tokio::test]
async fn revoke_by_id_is_limited_to_own_sessions() {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let a1 = sessions.create("alice", NewSession::new()).await.unwrap();
    let a2 = sessions.create("alice", NewSession::new()).await.unwrap();
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let app = app(&sessions);
    let uri = |c: &Created| format!("/api/sessions/{}/revoke", c.session.session_id);

    let response = call(&app, "POST", &uri(&bob), &[("cookie", &cookies_of(&a1))]).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(status_with(&app, &cookies_of(&bob)).await, StatusCode::OK);

    for bad in [
        "/api/sessions/not%20an%20id/revoke",
        "/api/sessions/session-nope/revoke",
    ] {
        let response = call(&app, "POST", bad, &[("cookie", &cookies_of(&a1))]).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{bad}");
    }

    // Revoking another device: no cookies stripped here, the other device is dead at once.
    let response = call(&app, "POST", &uri(&a2), &[("cookie", &cookies_of(&a1))]).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .count(),
        0
    );
    assert_eq!(
        status_with(&app, &format!("session_jwt={}", a2.jwt.expose())).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(status_with(&app, &cookies_of(&a1)).await, StatusCode::OK);

    // Without a session: 401.
    let response = call(&app, "POST", &uri(&a1), &[]).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn state_changing_handlers_refuse_get_and_cross_site_requests() {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let bob = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = app(&sessions);
    let cookie = cookies_of(&alice);
    let revoke = format!("/api/sessions/{}/revoke", bob.session.session_id);
    for uri in ["/logout", "/logout/all", revoke.as_str()] {
        let response = call(&app, "GET", uri, &[("cookie", &cookie)]).await;
        assert!(
            matches!(response.status(), StatusCode::METHOD_NOT_ALLOWED),
            "GET {uri}: {}",
            response.status()
        );
        for hostile in [
            vec![("sec-fetch-site", "cross-site")],
            vec![("origin", "https://evil.example")],
            vec![("origin", "null")],
            vec![("origin", "https://app.example.evil.example")],
        ] {
            let mut headers = hostile.clone();
            headers.push(("cookie", &cookie));
            let response = call(&app, "POST", uri, &headers).await;
            assert_eq!(
                response.status(),
                StatusCode::FORBIDDEN,
                "{uri} {hostile:?}"
            );
        }
    }
    // Nothing was revoked by the refused requests.
    assert_eq!(status_with(&app, &cookies_of(&alice)).await, StatusCode::OK);
    assert_eq!(status_with(&app, &cookies_of(&bob)).await, StatusCode::OK);
    // Same-origin browser requests work.
    let response = call(
        &app,
        "POST",
        &revoke,
        &[
            ("cookie", &cookie),
            ("origin", "https://app.example"),
            ("sec-fetch-site", "same-origin"),
        ],
    )
    .await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
}
