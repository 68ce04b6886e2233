//! The layer in isolation: credential sources, conflicts, bounds, modes and failures.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use common::{FlakyStore, builder};
use http::{Request, StatusCode, header};
use tower::ServiceExt;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::sessions::Created;
use tower_session_jwt::{AuthError, MemoryStore, NewSession, Session, SessionLayer, Sessions};

struct Fixture {
    sessions: Sessions,
    clock: ManualClock,
    store: FlakyStore,
    alice: Created,
}

async fn fixture() -> Fixture {
    let clock = ManualClock::starting_now();
    let store = FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone())
        .token_cache_capacity(0)
        .build()
        .unwrap();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    Fixture {
        sessions,
        clock,
        store,
        alice,
    }
}

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/me", get(|s: Session| async move { s.user_id }))
        .route(
            "/maybe",
            get(|s: Option<Session>| async move {
                s.map(|s| s.user_id).unwrap_or_else(|| "anonymous".into())
            }),
        )
        .layer(layer)
}

async fn send(app: &Router, request: Request<Body>) -> http::Response<Body> {
    app.clone().oneshot(request).await.unwrap()
}

fn get_with(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut builder = Request::get(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(Body::empty()).unwrap()
}

async fn body(response: http::Response<Body>) -> String {
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    String::from_utf8(bytes.to_vec()).unwrap()
}

fn set_cookies(response: &http::Response<Body>) -> Vec<String> {
    response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn jwt_cookie_authenticates_without_the_store() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    let before = f.store.calls();
    let cookie = format!("session_jwt={}", f.alice.jwt.expose());
    let response = send(&app, get_with("/me", &[("cookie", &cookie)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(set_cookies(&response).is_empty(), "nothing to refresh");
    assert_eq!(body(response).await, "alice");
    assert_eq!(f.store.calls(), before, "the JWT path made a store call");
}

#[tokio::test]
async fn token_cookie_falls_back_to_the_store_and_refreshes_the_jwt() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    let cookie = format!("session_token={}", f.alice.token.expose());
    let response = send(&app, get_with("/me", &[("cookie", &cookie)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let cookies = set_cookies(&response);
    // Just logged in, so the session's expiry has not moved: the fresh JWT only.
    assert_eq!(cookies.len(), 1, "{cookies:?}");
    let jwt_cookie = &cookies[0];
    assert!(jwt_cookie.starts_with("session_jwt="));
    for attr in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=3600",
    ] {
        assert!(jwt_cookie.contains(attr), "{attr} missing in {jwt_cookie}");
    }
    // The minted JWT works on its own.
    let jwt = jwt_cookie.split(';').next().unwrap();
    let response = send(&app, get_with("/me", &[("cookie", jwt)])).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn bearer_jwt_and_bearer_token() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    for credential in [f.alice.jwt.expose(), f.alice.token.expose()] {
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let value = format!("{scheme} {credential}");
            let response = send(&app, get_with("/me", &[("authorization", &value)])).await;
            assert_eq!(response.status(), StatusCode::OK, "{scheme}");
        }
    }
    // Other schemes carry nothing for us.
    let basic = format!("Basic {}", f.alice.token.expose());
    let response = send(&app, get_with("/me", &[("authorization", &basic)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_jwt_falls_back_to_the_token() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    f.clock.advance(Duration::from_secs(400));
    let both = format!(
        "session_jwt={}; session_token={}",
        f.alice.jwt.expose(),
        f.alice.token.expose()
    );
    let response = send(&app, get_with("/me", &[("cookie", &both)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    // Without sliding expiry the session's expiry stays: the fresh JWT cookie only.
    assert_eq!(set_cookies(&response).len(), 1);
    let jwt_only = format!("session_jwt={}", f.alice.jwt.expose());
    let response = send(&app, get_with("/me", &[("cookie", &jwt_only)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
}

#[tokio::test]
async fn no_credentials_required_vs_optional() {
    let f = fixture().await;
    let required = app(SessionLayer::new(f.sessions.clone()));
    let response = send(&required, get_with("/me", &[])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");

    let optional = app(SessionLayer::new(f.sessions.clone()).optional());
    let response = send(&optional, get_with("/maybe", &[])).await;
    assert_eq!(body(response).await, "anonymous");
    // Garbage passes as anonymous in optional mode; the Session extractor still rejects.
    let response = send(
        &optional,
        get_with("/maybe", &[("cookie", "session_jwt=a.b.c")]),
    )
    .await;
    assert_eq!(body(response).await, "anonymous");
    let response = send(
        &optional,
        get_with("/me", &[("cookie", "session_jwt=a.b.c")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // RFC 6750 §3.1: a presented but refused credential is named as such, even in optional mode.
    assert_eq!(
        response.headers()[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    let response = send(&optional, get_with("/me", &[])).await;
    assert_eq!(response.headers()[header::WWW_AUTHENTICATE], "Bearer");
}

#[tokio::test]
async fn disagreeing_duplicates_are_refused() {
    let f = fixture().await;
    let bob = f.sessions.create("bob", NewSession::new()).await.unwrap();
    let required = app(SessionLayer::new(f.sessions.clone()));
    let optional = app(SessionLayer::new(f.sessions.clone()).optional());
    let a = f.alice.jwt.expose();
    let b = bob.jwt.expose();
    let cases = [
        vec![("cookie", format!("session_jwt={a}; session_jwt={b}"))],
        vec![
            ("cookie", format!("session_jwt={a}")),
            ("cookie", format!("session_jwt={b}")),
        ],
        vec![
            ("cookie", format!("session_jwt={a}")),
            ("authorization", format!("Bearer {b}")),
        ],
        vec![
            ("authorization", format!("Bearer {a}")),
            ("authorization", format!("Bearer {a}")),
        ],
    ];
    for headers in cases {
        let pairs: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        for (app, path) in [(&required, "/maybe"), (&optional, "/me")] {
            let response = send(app, get_with(path, &pairs)).await;
            assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{pairs:?}");
            assert_eq!(
                response.headers()[header::WWW_AUTHENTICATE],
                r#"Bearer error="invalid_request""#
            );
        }
        // Optional mode lets the request on anonymously (so that login and logout still work).
        let response = send(&optional, get_with("/maybe", &pairs)).await;
        assert_eq!(response.status(), StatusCode::OK, "{pairs:?}");
        assert_eq!(body(response).await, "anonymous");
    }
    // The same credential twice is not a conflict.
    let same = format!("session_jwt={a}; session_jwt={a}");
    let response = send(&required, get_with("/me", &[("cookie", &same)])).await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn query_string_credentials_are_ignored() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    for query in [
        format!("/me?access_token={}", f.alice.jwt.expose()),
        format!("/me?session_token={}", f.alice.token.expose()),
        format!("/me?session_jwt={}", f.alice.jwt.expose()),
    ] {
        let response = send(&app, get_with(&query, &[])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{query}");
    }
}

#[tokio::test]
async fn oversized_and_non_utf8_headers() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()).optional());
    let huge = format!("session_jwt={}", "a".repeat(20_000));
    let response = send(&app, get_with("/me", &[("cookie", &huge)])).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = send(&app, get_with("/maybe", &[("cookie", &huge)])).await;
    assert_eq!(body(response).await, "anonymous");

    let long_jwt = format!(
        "session_jwt={}.{}.{}",
        "a".repeat(5000),
        "b".repeat(5000),
        "c"
    );
    let response = send(&app, get_with("/me", &[("cookie", &long_jwt)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    let mut request = get_with("/maybe", &[]);
    request.headers_mut().insert(
        header::COOKIE,
        http::HeaderValue::from_bytes(b"session_jwt=\xff\xfe").unwrap(),
    );
    let response = send(&app, request).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(body(response).await, "anonymous");
}

#[tokio::test]
async fn store_failure_answers_503_in_both_modes() {
    let f = fixture().await;
    f.store.set_down(true);
    let cookie = format!("session_token={}", f.alice.token.expose());
    for layer in [
        SessionLayer::new(f.sessions.clone()),
        SessionLayer::new(f.sessions.clone()).optional(),
    ] {
        let response = send(&app(layer), get_with("/maybe", &[("cookie", &cookie)])).await;
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
    }
    // The JWT path does not need the store and keeps working during the outage.
    let jwt = format!("session_jwt={}", f.alice.jwt.expose());
    let response = send(
        &app(SessionLayer::new(f.sessions.clone())),
        get_with("/me", &[("cookie", &jwt)]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoked_sessions_are_refused_on_both_paths() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    f.sessions
        .revoke(&f.alice.session.session_id)
        .await
        .unwrap();
    for cookie in [
        format!("session_jwt={}", f.alice.jwt.expose()),
        format!("session_token={}", f.alice.token.expose()),
    ] {
        let response = send(&app, get_with("/me", &[("cookie", &cookie)])).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{cookie}");
    }
}

#[tokio::test]
async fn error_responses_can_be_replaced() {
    let f = fixture().await;
    let layer = SessionLayer::new(f.sessions.clone()).on_error(|e: &AuthError| {
        let mut response = e.to_response::<Body>();
        *response.body_mut() = Body::from(format!("denied: {}", e.reason()));
        response
    });
    let response = send(
        &app(layer),
        get_with("/me", &[("cookie", "session_jwt=x.y.z")]),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(body(response).await, "denied: malformed");
}

#[tokio::test]
async fn host_prefixed_cookies_ignore_unprefixed_ones() {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock, MemoryStore::with_clock(clock.clone()))
        .cookies(tower_session_jwt::sessions::CookieConfig::default().host_prefix(true))
        .build()
        .unwrap();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = app(SessionLayer::new(sessions));
    let plain = format!("session_jwt={}", alice.jwt.expose());
    let response = send(&app, get_with("/me", &[("cookie", &plain)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let prefixed = format!("__Host-session_jwt={}", alice.jwt.expose());
    let response = send(&app, get_with("/me", &[("cookie", &prefixed)])).await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// A token-cache hit is answered without the store, like the JWT fast path, and still behaves
/// as the store path does: a cookie client gets its JWT cookie again, a bearer client gets no
/// cookies, and a revoked session is refused at once.
#[tokio::test]
async fn token_cache_hits_need_no_store_and_keep_the_store_paths_answers() {
    let clock = ManualClock::starting_now();
    let store = FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone()).build().unwrap();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = app(SessionLayer::new(sessions.clone()));
    store.set_down(true);
    let before = store.calls();

    let cookie = format!("session_token={}", alice.token.expose());
    let response = send(&app, get_with("/me", &[("cookie", &cookie)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    let set: Vec<_> = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with(&format!("session_jwt={}", alice.jwt.expose())));

    let bearer = format!("Bearer {}", alice.token.expose());
    let response = send(&app, get_with("/me", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().get(header::SET_COOKIE).is_none());
    assert_eq!(store.calls(), before, "a token-cache hit went to the store");

    // Revoked here: refused at once, from the cache too (the store is back for the revoke).
    store.set_down(false);
    sessions.revoke(&alice.session.session_id).await.unwrap();
    let response = send(&app, get_with("/me", &[("authorization", &bearer)])).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

/// A broken `Authorization: Bearer` (empty, a tab instead of the space, bytes outside
/// base64url) is refused, never read past to the cookies beside it: the answer to a bearer
/// request carries no cookies, so a change made on the cookie's session would leave the browser
/// with credentials that no longer work.
#[tokio::test]
async fn a_broken_bearer_beside_valid_cookies_is_refused() {
    let f = fixture().await;
    let app = app(SessionLayer::new(f.sessions.clone()));
    let cookies = format!(
        "session_token={}; session_jwt={}",
        f.alice.token.expose(),
        f.alice.jwt.expose()
    );
    // The JWT with one byte outside b64token: JWT-shaped, so checked by the codec rather than
    // byte by byte while reading, and refused all the same.
    let jwt = f.alice.jwt.expose();
    let tampered = format!("Bearer {},{}", &jwt[..20], &jwt[21..]);
    let spaced = format!("Bearer {} {}", &jwt[..20], &jwt[21..]);
    for bearer in [
        "Bearer",
        "Bearer ",
        "bearer    ",
        "Bearer\tabc",
        "Bearer a b",
        "Bearer a,b",
        "Bearer a,b.c.d",
        &tampered,
        &spaced,
    ] {
        let response = send(
            &app,
            get_with("/me", &[("cookie", &cookies), ("authorization", bearer)]),
        )
        .await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{bearer:?}");
        assert!(
            response.headers().get(header::SET_COOKIE).is_none(),
            "{bearer:?}"
        );
    }
    // Other schemes are not ours: the cookies decide.
    let response = send(
        &app,
        get_with(
            "/me",
            &[("cookie", &cookies), ("authorization", "Basic YTpi")],
        ),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
}

/// The layer and the step-up guard ask nothing of the service they wrap but `Clone`: a service
/// that is not `Send` (an `Rc` inside, on a single-threaded runtime) works behind both, and
/// each hands its inner service back.
#[tokio::test]
async fn the_layer_and_the_guard_wrap_a_service_that_is_not_send() {
    use std::rc::Rc;
    use tower::Layer as _;

    let f = fixture().await;
    let local = Rc::new("local");
    let inner = tower::service_fn(move |_: Request<Body>| {
        let local = Rc::clone(&local);
        async move { Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(*local))) }
    });
    let guard = tower_session_jwt::step_up::RecentAuth::new(&f.sessions, Duration::from_secs(300));
    let mut service = SessionLayer::new(f.sessions.clone()).layer(guard.layer(inner));
    let _: &mut _ = service.get_mut().get_mut();
    let _ = service.get_ref().get_ref();

    let jwt = format!("session_jwt={}", f.alice.jwt.expose());
    // Alice has no recent factor: the guard refuses without calling the inner service.
    let response = (&mut service)
        .oneshot(get_with("/", &[("cookie", &jwt)]))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(
        response.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .contains("insufficient_user_authentication")
    );
    // Without the guard, the inner service answers.
    let mut service =
        SessionLayer::new(f.sessions.clone()).layer(service.into_inner().into_inner());
    let response = (&mut service)
        .oneshot(get_with("/", &[("cookie", &jwt)]))
        .await
        .unwrap();
    assert_eq!(body(response).await, "local");
}
