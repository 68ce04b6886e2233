//! The extractors without the layer: a route that no `SessionLayer` runs in front of answers
//! `500` naming the missing layer (and logs an error), for every extractor, instead of taking a
//! signed-in user for a stranger. Through the layer, anonymous requests still get `401`/`None`.

mod common;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_session_jwt::extract::Claims;
use tower_session_jwt::layer::CurrentSession;
use tower_session_jwt::sessions::Created;
use tower_session_jwt::{NewSession, Session, SessionLayer, Sessions};

const MISSING: &str = "SessionLayer is not installed in front of this route";

/// Every extractor of the crate, each on its own route.
fn routes() -> Router {
    Router::new()
        .route("/session", get(|s: Session| async move { s.user_id }))
        .route(
            "/current",
            get(|s: CurrentSession| async move { s.user_id.clone() }),
        )
        .route(
            "/maybe-session",
            get(|s: Option<Session>| async move {
                s.map_or_else(|| "stranger".to_owned(), |s| s.user_id)
            }),
        )
        .route(
            "/maybe-current",
            get(|s: Option<CurrentSession>| async move {
                s.map_or_else(|| "stranger".to_owned(), |s| s.user_id.clone())
            }),
        )
        .route(
            "/claims",
            get(|Claims(claims): Claims<serde_json::Value>| async move { claims.to_string() }),
        )
        .route(
            "/sessions",
            get(|sessions: Sessions| async move { format!("{}", sessions.health().await.ready()) }),
        )
}

const PATHS: [&str; 6] = [
    "/session",
    "/current",
    "/maybe-session",
    "/maybe-current",
    "/claims",
    "/sessions",
];

async fn signed_in() -> (Sessions, Created) {
    let (sessions, _, _) = common::manual();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    (sessions, alice)
}

fn with_cookies(path: &str, alice: &Created) -> Request<Body> {
    let cookie = format!(
        "session_token={}; session_jwt={}",
        alice.token.expose(),
        alice.jwt.expose()
    );
    Request::get(path)
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap()
}

fn anonymous(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, http::HeaderMap, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, headers, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn every_extractor_names_the_missing_layer_to_a_signed_in_user() {
    let captured = common::logs::capture();

    let (_, alice) = signed_in().await;
    let app = routes();
    for path in PATHS {
        for request in [with_cookies(path, &alice), anonymous(path)] {
            let (status, _, body) = send(&app, request).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(body.contains(MISSING), "{path}: {body}");
        }
    }
    let logs = captured.text();
    for path in PATHS {
        assert!(
            logs.lines().any(|line| line.contains("ERROR")
                && line.contains(MISSING)
                && line.contains(path)),
            "no error logged for {path}: {logs}"
        );
    }
}

#[tokio::test]
async fn a_route_added_after_the_layer_answers_500_and_one_before_it_works() {
    let (sessions, alice) = signed_in().await;
    for layer in [
        SessionLayer::new(sessions.clone()),
        SessionLayer::new(sessions.clone()).optional(),
    ] {
        let app = Router::new()
            .route("/before", get(|s: Session| async move { s.user_id }))
            .layer(layer)
            .merge(routes());
        let (status, _, body) = send(&app, with_cookies("/before", &alice)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
        for path in PATHS {
            let (status, _, body) = send(&app, with_cookies(path, &alice)).await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
            assert!(body.contains(MISSING), "{path}: {body}");
        }
    }
}

#[tokio::test]
async fn through_the_layer_anonymous_requests_still_get_401_or_none() {
    let (sessions, alice) = signed_in().await;
    let app = routes().layer(SessionLayer::new(sessions.clone()).optional());
    for path in ["/session", "/current", "/claims"] {
        let (status, headers, _) = send(&app, anonymous(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer", "{path}");
    }
    for path in ["/maybe-session", "/maybe-current"] {
        let (status, _, body) = send(&app, anonymous(path)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "stranger"),
            "{path}"
        );
    }
    let (status, _, body) = send(&app, anonymous("/sessions")).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "true"));

    // And a signed-in user is seen by each of them.
    for path in ["/session", "/current", "/maybe-session", "/maybe-current"] {
        let (status, _, body) = send(&app, with_cookies(path, &alice)).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"), "{path}");
    }
    let (status, _, body) = send(&app, with_cookies("/claims", &alice)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "{}"));

    // In required mode the layer itself answers the anonymous request.
    let app = routes().layer(SessionLayer::new(sessions));
    for path in PATHS {
        let (status, _, _) = send(&app, anonymous(path)).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
    }
}
