//! The `custom_store` and `hyper_service` examples, tested: the custom store passes the public
//! conformance suite, and the hyper service logs in, authenticates and logs out, both through
//! `tower::ServiceExt::oneshot` and over real TCP.
#![cfg(feature = "conformance")]

#[path = "../examples/custom_store.rs"]
#[allow(dead_code)]
mod custom_store;

#[path = "../examples/hyper_service.rs"]
#[allow(dead_code)]
mod hyper_service;

use bytes::Bytes;
use http::header::{AUTHORIZATION, COOKIE, SET_COOKIE, USER_AGENT};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tower::ServiceExt;
use tower_session_jwt::Sessions;
use tower_session_jwt::store::conformance;

use custom_store::CustomStore;

// ---------------------------------------------------------------------------------------------
// The custom store

#[tokio::test]
async fn custom_store_passes_the_conformance_suite() {
    conformance::run_all(&CustomStore::new()).await;
}

#[tokio::test]
async fn custom_store_passes_twice_concurrently_on_one_store() {
    let store = CustomStore::new();
    tokio::join!(conformance::run_all(&store), conformance::run_all(&store));
}

// One test per check, so that a failure names its check.
tower_session_jwt::session_store_conformance!(
    custom_store_checks,
    custom_store::CustomStore::new()
);

// ---------------------------------------------------------------------------------------------
// The hyper service, in process

type Body = Full<Bytes>;

fn sessions() -> Sessions {
    hyper_service::dev_sessions()
}

async fn call(sessions: &Sessions, request: Request<Body>) -> (Response<Body>, String) {
    let response = hyper_service::service::<Body>(sessions.clone())
        .oneshot(request)
        .await
        .unwrap_or_else(|e| match e {});
    let (parts, body) = response.into_parts();
    let bytes = body
        .collect()
        .await
        .unwrap_or_else(|e| match e {})
        .to_bytes();
    let text = String::from_utf8(bytes.to_vec()).expect("UTF-8 body");
    (Response::from_parts(parts, Full::new(bytes)), text)
}

fn login_request(user: &str, password: &str) -> Request<Body> {
    let body = serde_json::json!({ "user": user, "password": password }).to_string();
    Request::post("/login")
        .header(USER_AGENT, "examples-test/1")
        .body(Full::new(Bytes::from(body)))
        .unwrap()
}

fn get(path: &str) -> http::request::Builder {
    Request::get(path)
}

fn set_cookies<B>(response: &Response<B>) -> Vec<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

/// The `Cookie` header a browser would send back: every `name=value` pair.
fn cookie_header(set_cookies: &[String]) -> String {
    set_cookies
        .iter()
        .map(|c| c.split(';').next().unwrap().trim())
        .collect::<Vec<_>>()
        .join("; ")
}

struct LoggedIn {
    cookie: String,
    token: String,
    jwt: String,
    session_id: String,
}

async fn log_in(sessions: &Sessions, user: &str) -> LoggedIn {
    let (response, body) = call(sessions, login_request(user, "demo")).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let cookies = set_cookies(&response);
    assert_eq!(cookies.len(), 2, "both cookies are set: {cookies:?}");
    assert!(cookies.iter().any(|c| c.starts_with("session_token=")));
    assert!(cookies.iter().any(|c| c.starts_with("session_jwt=")));
    assert!(cookies.iter().all(|c| c.contains("HttpOnly")));
    let json: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(json["user_id"], user);
    assert_eq!(json["attributes"]["user_agent"], "examples-test/1");
    LoggedIn {
        cookie: cookie_header(&cookies),
        token: json["session_token"].as_str().unwrap().to_owned(),
        jwt: json["session_jwt"].as_str().unwrap().to_owned(),
        session_id: json["session_id"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn login_sets_cookies_and_me_returns_the_user() {
    let sessions = sessions();
    let alice = log_in(&sessions, "alice").await;

    let request = get("/me")
        .header(COOKIE, &alice.cookie)
        .body(Body::default());
    let (response, body) = call(&sessions, request.unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["user_id"], "alice");
    assert_eq!(me["session_id"], alice.session_id.as_str());
    // A JWT does not carry the client's address and user agent: the login recorded them in the
    // store, and the session authenticated by the JWT alone has none.
    assert_eq!(me["attributes"]["user_agent"], "");
    assert!(
        set_cookies(&response).is_empty(),
        "a valid JWT needs no new cookie"
    );
}

#[tokio::test]
async fn me_accepts_bearer_credentials_and_refreshes_the_jwt_from_the_token() {
    let sessions = sessions();
    let alice = log_in(&sessions, "alice").await;

    for credential in [&alice.jwt, &alice.token] {
        let request = get("/me").header(AUTHORIZATION, format!("Bearer {credential}"));
        let (response, body) = call(&sessions, request.body(Body::default()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::OK, "{body}");
        assert!(body.contains("\"user_id\":\"alice\""), "{body}");
    }

    // The token cookie alone goes through the store and gets a fresh JWT cookie.
    let token_only = format!("session_token={}", alice.token);
    let request = get("/me").header(COOKIE, token_only).body(Body::default());
    let (response, _) = call(&sessions, request.unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);
    let refreshed = set_cookies(&response);
    assert_eq!(refreshed.len(), 1, "{refreshed:?}");
    assert!(refreshed[0].starts_with("session_jwt="));
}

#[tokio::test]
async fn me_without_a_session_is_401() {
    let sessions = sessions();
    for cookie in [
        None,
        Some("session_jwt=a.b.c"),
        Some("session_token=garbage"),
    ] {
        let mut request = get("/me");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "cookie {cookie:?}"
        );
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
}

#[tokio::test]
async fn login_refuses_bad_requests() {
    let sessions = sessions();
    let (response, _) = call(&sessions, login_request("alice", "wrong")).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert!(set_cookies(&response).is_empty());

    let request = Request::post("/login").body(Full::new(Bytes::from_static(b"not json")));
    let (response, _) = call(&sessions, request.unwrap()).await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);

    let big = Bytes::from(vec![b' '; 64 * 1024]);
    let request = Request::post("/login").body(Full::new(big));
    let (response, _) = call(&sessions, request.unwrap()).await;
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);

    let (response, _) = call(&sessions, get("/login").body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert!(sessions.list("alice").await.unwrap().is_empty());
}

#[tokio::test]
async fn logout_revokes_the_session_and_strips_the_cookies() {
    let sessions = sessions();
    let alice = log_in(&sessions, "alice").await;
    let other = log_in(&sessions, "alice").await;

    // GET cannot log anyone out.
    let request = get("/logout").header(COOKIE, &alice.cookie);
    let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);

    let request = Request::post("/logout").header(COOKIE, &alice.cookie);
    let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    let stripped = set_cookies(&response);
    assert_eq!(stripped.len(), 2, "{stripped:?}");
    for name in ["session_token=;", "session_jwt=;"] {
        assert!(
            stripped
                .iter()
                .any(|c| c.starts_with(name) && c.contains("Max-Age=0")),
            "{name} stripped: {stripped:?}"
        );
    }

    // Both old credentials are dead: the JWT through the local revocation list, the token in
    // the store.
    for credential in [&alice.cookie, &format!("session_jwt={}", alice.jwt)] {
        let request = get("/me").header(COOKIE, credential);
        let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    let request = get("/me").header(AUTHORIZATION, format!("Bearer {}", alice.token));
    let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    // The other session of the same user lives on.
    let request = get("/me").header(COOKIE, &other.cookie);
    let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::OK);

    // Logging out again, or without any session, still strips the cookies.
    for cookie in [Some(alice.cookie.as_str()), None] {
        let mut request = Request::post("/logout");
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, cookie);
        }
        let (response, _) = call(&sessions, request.body(Body::default()).unwrap()).await;
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert_eq!(set_cookies(&response).len(), 2);
    }
}

#[tokio::test]
async fn unknown_paths_are_404() {
    let (response, _) = call(&sessions(), get("/nope").body(Body::default()).unwrap()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}

// ---------------------------------------------------------------------------------------------
// The hyper service, over TCP

async fn http1(addr: std::net::SocketAddr, request: Request<Body>) -> (Response<()>, String) {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(connection);
    let response = sender.send_request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = body.collect().await.unwrap().to_bytes();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (Response::from_parts(parts, ()), text)
}

#[tokio::test]
async fn serves_over_tcp() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(hyper_service::serve(listener, sessions()));

    let body = r#"{"user":"tcp-user","password":"demo"}"#;
    let login = Request::post("/login")
        .header("host", addr.to_string())
        .header(USER_AGENT, "tcp-test/1")
        .body(Full::new(Bytes::from_static(body.as_bytes())))
        .unwrap();
    let (response, body) = http1(addr, login).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let cookie = cookie_header(&set_cookies(&response));
    // `serve` put the connection's PeerAddr in the extensions; login recorded its IP.
    let login: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(login["attributes"]["ip_address"], "127.0.0.1");
    assert_eq!(login["attributes"]["user_agent"], "tcp-test/1");

    let me = get("/me")
        .header("host", addr.to_string())
        .header(COOKIE, &cookie)
        .body(Body::default())
        .unwrap();
    let (response, body) = http1(addr, me).await;
    assert_eq!(response.status(), StatusCode::OK, "{body}");
    let me: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(me["user_id"], "tcp-user");

    let anonymous = get("/me")
        .header("host", addr.to_string())
        .body(Body::default())
        .unwrap();
    let (response, _) = http1(addr, anonymous).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);

    server.abort();
}
