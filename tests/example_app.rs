//! The HTTP contract of `examples/axum_app.rs` (DESIGN §6), driven through the example's own
//! router: in memory with `tower::ServiceExt::oneshot` on a manual clock, and once over real TCP.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use cookie::{Cookie, SameSite};
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt as _;
use tower_session_jwt::SessionStore;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::sessions::CookieConfig;
use tower_session_jwt::{MemoryStore, Sessions, SigningKey};

const JWT_TTL: Duration = Duration::from_secs(300);
const SESSION_TTL: Duration = Duration::from_secs(3600);
const INVALID_TOKEN: &str = r#"Bearer error="invalid_token""#;

// ---------------------------------------------------------------------------------------------
// Fixture

struct App {
    router: Router,
    clock: ManualClock,
}

fn builder(clock: &ManualClock, store: impl SessionStore) -> tower_session_jwt::SessionsBuilder {
    Sessions::builder()
        .store(store)
        .clock(clock.clone())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(JWT_TTL)
        .session_ttl(SESSION_TTL)
        .sliding(true)
}

async fn fixture() -> App {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock, MemoryStore::with_clock(clock.clone()))
        .build()
        .unwrap();
    sessions.ready().await;
    App {
        router: axum_app::app(sessions),
        clock,
    }
}

/// Both credentials of one login, as the JSON answer hands them out.
#[derive(Debug, Clone)]
struct Login {
    session_id: String,
    token: String,
    jwt: String,
}

impl Login {
    fn cookies(&self) -> String {
        format!("session_token={}; session_jwt={}", self.token, self.jwt)
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    async fn from(response: Response<Body>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status,
            headers: parts.headers,
            body: axum::body::to_bytes(body, usize::MAX).await.unwrap(),
        }
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8(self.body.to_vec()).unwrap()
    }

    fn header(&self, name: header::HeaderName) -> &str {
        self.headers
            .get(&name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    /// The `Set-Cookie` headers, parsed, by name.
    fn set_cookies(&self) -> BTreeMap<String, Cookie<'static>> {
        let mut out = BTreeMap::new();
        for value in self.headers.get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            assert!(
                out.insert(cookie.name().to_owned(), cookie).is_none(),
                "cookie set twice"
            );
        }
        out
    }
}

impl App {
    async fn send(&self, request: Request<Body>) -> Answer {
        Answer::from(self.router.clone().oneshot(request).await.unwrap()).await
    }

    async fn get(&self, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(request("GET", uri, headers, Body::empty())).await
    }

    async fn post(&self, uri: &str, headers: &[(&str, &str)]) -> Answer {
        self.send(request("POST", uri, headers, Body::empty()))
            .await
    }

    /// `POST /login` with JSON from `peer`, with a user agent.
    async fn login_from(&self, user: &str, peer: &str, user_agent: &str) -> Login {
        let answer = self
            .send(login_request(json!({ "user_id": user }), peer, user_agent))
            .await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        let body = answer.json();
        Login {
            session_id: body["session"]["session_id"].as_str().unwrap().to_owned(),
            token: body["session_token"].as_str().unwrap().to_owned(),
            jwt: body["session_jwt"].as_str().unwrap().to_owned(),
        }
    }

    async fn login(&self, user: &str) -> Login {
        self.login_from(user, "203.0.113.7:50000", "test-agent/1")
            .await
    }

    async fn me_status(&self, headers: &[(&str, &str)]) -> StatusCode {
        self.get("/api/me", headers).await.status
    }

    /// `/api/me` with each of a login's credentials alone: `[Bearer JWT, Bearer token]`.
    async fn each_credential(&self, login: &Login) -> [StatusCode; 2] {
        [
            self.me_status(&[("authorization", &bearer(&login.jwt))])
                .await,
            self.me_status(&[("authorization", &bearer(&login.token))])
                .await,
        ]
    }
}

fn request(method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.body(body).unwrap()
}

fn login_request(body: Value, peer: &str, user_agent: &str) -> Request<Body> {
    let mut request = request(
        "POST",
        "/login",
        &[
            ("content-type", "application/json"),
            ("user-agent", user_agent),
        ],
        Body::from(body.to_string()),
    );
    let peer: SocketAddr = peer.parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

/// Asserts the attributes every session cookie carries (DESIGN §5).
fn assert_session_cookie(cookie: &Cookie<'_>, max_age: Duration) {
    assert_eq!(cookie.http_only(), Some(true), "{cookie}");
    assert_eq!(cookie.secure(), Some(true), "{cookie}");
    assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{cookie}");
    assert_eq!(cookie.path(), Some("/"), "{cookie}");
    assert_eq!(
        cookie.max_age(),
        Some(time::Duration::try_from(max_age).unwrap()),
        "{cookie}"
    );
}

/// Asserts that both cookies are removed: same names and path, empty, `Max-Age=0`, `Expires` in
/// the past.
fn assert_cookies_stripped(answer: &Answer) {
    let cookies = answer.set_cookies();
    assert_eq!(
        cookies.keys().collect::<Vec<_>>(),
        ["session_jwt", "session_token"]
    );
    for cookie in cookies.values() {
        assert_eq!(cookie.value(), "", "{cookie}");
        assert_eq!(cookie.path(), Some("/"), "{cookie}");
        assert_eq!(cookie.max_age(), Some(time::Duration::ZERO), "{cookie}");
        let expires = cookie.expires_datetime().expect("Expires");
        assert!(expires < OffsetDateTime::now_utc(), "{cookie}");
        assert_eq!(cookie.http_only(), Some(true), "{cookie}");
        assert_eq!(cookie.same_site(), Some(SameSite::Lax), "{cookie}");
    }
}

// ---------------------------------------------------------------------------------------------
// Login

#[tokio::test]
async fn login_json_returns_the_session_and_sets_both_cookies() {
    let app = fixture().await;
    let answer = app
        .send(login_request(
            json!({"user_id": "alice", "custom_claims": {"role": "admin"}}),
            "203.0.113.7:50000",
            "curl/8.5",
        ))
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    let body = answer.json();
    let session = &body["session"];
    assert!(
        session["session_id"]
            .as_str()
            .unwrap()
            .starts_with("session-")
    );
    assert_eq!(session["user_id"], "alice");
    assert_eq!(session["attributes"]["ip_address"], "203.0.113.7");
    assert_eq!(session["attributes"]["user_agent"], "curl/8.5");
    assert_eq!(session["custom_claims"], json!({"role": "admin"}));
    for field in ["started_at", "last_accessed_at", "expires_at"] {
        assert!(session[field].is_string(), "{field}");
    }

    let cookies = answer.set_cookies();
    assert_eq!(
        cookies.keys().collect::<Vec<_>>(),
        ["session_jwt", "session_token"]
    );
    assert_eq!(cookies["session_token"].value(), body["session_token"]);
    assert_eq!(cookies["session_jwt"].value(), body["session_jwt"]);
    for cookie in cookies.values() {
        assert_session_cookie(cookie, SESSION_TTL);
    }

    // The credentials work, and the JWT carries the custom claims.
    let jwt = body["session_jwt"].as_str().unwrap();
    let me = app.get("/api/me", &[("authorization", &bearer(jwt))]).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["custom_claims"]["role"], "admin");
}

#[tokio::test]
async fn login_form_redirects_home_with_both_cookies() {
    let app = fixture().await;
    let answer = app
        .send(request(
            "POST",
            "/login",
            &[("content-type", "application/x-www-form-urlencoded")],
            Body::from("user_id=alice%40example.com"),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header(header::LOCATION), "/");
    let cookies = answer.set_cookies();
    assert_eq!(
        cookies.keys().collect::<Vec<_>>(),
        ["session_jwt", "session_token"]
    );
    for cookie in cookies.values() {
        assert_session_cookie(cookie, SESSION_TTL);
    }
    let cookie_header = format!(
        "session_token={}; session_jwt={}",
        cookies["session_token"].value(),
        cookies["session_jwt"].value()
    );
    let me = app.get("/api/me", &[("cookie", &cookie_header)]).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.json()["user_id"], "alice@example.com");
}

#[tokio::test]
async fn a_second_login_in_one_browser_replaces_the_first_session() {
    let app = fixture().await;
    let mut jar = Jar::default();
    let mut tokens = Vec::new();
    for user_agent in ["Firefox/128", "Firefox/128 (again)"] {
        let mut login = login_request(json!({"user_id": "alice"}), "198.51.100.1:1000", user_agent);
        if !jar.0.is_empty() {
            login
                .headers_mut()
                .insert(header::COOKIE, jar.header().parse().unwrap());
        }
        let answer = app.send(login).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        jar.store(&answer.headers);
        tokens.push(answer.json()["session_token"].as_str().unwrap().to_owned());
    }
    let answer = app.get("/api/sessions", &[("cookie", &jar.header())]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "the replaced session is still listed: {body}"
    );
    assert_eq!(list[0]["current"], true);
    assert_eq!(list[0]["attributes"]["user_agent"], "Firefox/128 (again)");
    // The first session's token no longer answers.
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&tokens[0]))])
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&tokens[1]))])
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn login_refuses_bad_input_with_a_json_error() {
    let app = fixture().await;
    let json_cases = [
        json!({"user_id": ""}),
        json!({"user_id": "x".repeat(257)}),
        json!({"user_id": 42}),
        json!({"name": "alice"}),
        json!({"user_id": "alice", "custom_claims": {"exp": 1}}),
    ];
    for body in json_cases {
        let answer = app
            .send(login_request(body.clone(), "203.0.113.7:1", "t"))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
        assert!(answer.json()["error"].is_string(), "{body}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none(), "{body}");
    }
    for form in ["user_id=", "name=alice"] {
        let answer = app
            .send(request(
                "POST",
                "/login",
                &[("content-type", "application/x-www-form-urlencoded")],
                Body::from(form),
            ))
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{form}");
        assert!(answer.json()["error"].is_string(), "{form}");
    }
    let answer = app
        .send(request(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            Body::from("{not json"),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    let answer = app
        .send(request(
            "POST",
            "/login",
            &[("content-type", "text/plain")],
            Body::from("alice"),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
}

// ---------------------------------------------------------------------------------------------
// Credential sources

#[tokio::test]
async fn me_with_the_jwt_cookie_alone() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let answer = app
        .get(
            "/api/me",
            &[("cookie", &format!("session_jwt={}", login.jwt))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let me = answer.json();
    assert_eq!(me["user_id"], "alice");
    assert_eq!(me["session_id"], login.session_id.as_str());
    // The JWT does not carry the client's address or user agent (anyone who sees a JWT can
    // read it); the session list, from the store, has them.
    assert_eq!(me["attributes"]["ip_address"], "");
    let payload = URL_SAFE_NO_PAD
        .decode(login.jwt.split('.').nth(1).unwrap())
        .unwrap();
    assert!(!String::from_utf8(payload).unwrap().contains("203.0.113.7"));
    // The fast path mints nothing.
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
}

#[tokio::test]
async fn me_with_the_token_cookie_alone_gets_a_fresh_jwt_cookie() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let answer = app
        .get(
            "/api/me",
            &[("cookie", &format!("session_token={}", login.token))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["session_id"], login.session_id.as_str());
    // Looked up in the store: the attributes recorded at login are there.
    assert_eq!(answer.json()["attributes"]["ip_address"], "203.0.113.7");
    // The session's expiry did not move (its last store write is younger than a JWT
    // lifetime): a fresh JWT cookie only, no need to set the token cookie again.
    let cookies = answer.set_cookies();
    assert_eq!(cookies.keys().collect::<Vec<_>>(), ["session_jwt"]);
    assert_session_cookie(&cookies["session_jwt"], SESSION_TTL);
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");
    let fresh = cookies["session_jwt"].value();
    assert_eq!(
        app.me_status(&[("cookie", &format!("session_jwt={fresh}"))])
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn me_with_a_bearer_jwt() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let answer = app
        .get("/api/me", &[("authorization", &bearer(&login.jwt))])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["session_id"], login.session_id.as_str());
}

#[tokio::test]
async fn me_with_a_bearer_opaque_token() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let answer = app
        .get("/api/me", &[("authorization", &bearer(&login.token))])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json()["session_id"], login.session_id.as_str());
}

#[tokio::test]
async fn me_without_credentials_is_401() {
    let app = fixture().await;
    let answer = app.get("/api/me", &[]).await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), "Bearer");
    assert_eq!(
        app.get("/api/sessions", &[]).await.status,
        StatusCode::UNAUTHORIZED
    );
    // An unrelated cookie is no credential.
    let answer = app.get("/api/me", &[("cookie", "theme=dark")]).await;
    assert_eq!(answer.header(header::WWW_AUTHENTICATE), "Bearer");
}

#[tokio::test]
async fn an_expired_jwt_is_refreshed_from_the_token() {
    let app = fixture().await;
    let login = app.login("alice").await;
    app.clock.advance(JWT_TTL + Duration::from_secs(10));

    let answer = app.get("/api/me", &[("cookie", &login.cookies())]).await;
    assert_eq!(answer.status, StatusCode::OK);
    let cookies = answer.set_cookies();
    assert_eq!(
        cookies.keys().collect::<Vec<_>>(),
        ["session_jwt", "session_token"]
    );
    let fresh = cookies["session_jwt"].value().to_owned();
    assert_ne!(fresh, login.jwt);
    // Sliding expiry moved the session forward, and both cookies' Max-Age with it: the token
    // cookie is set again with the same value, so an active browser keeps it past the login's
    // original expiry.
    assert_session_cookie(&cookies["session_jwt"], SESSION_TTL);
    assert_session_cookie(&cookies["session_token"], SESSION_TTL);
    assert_eq!(cookies["session_token"].value(), login.token);

    let old = app
        .get(
            "/api/me",
            &[("cookie", &format!("session_jwt={}", login.jwt))],
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(old.header(header::WWW_AUTHENTICATE), INVALID_TOKEN);
    assert_eq!(
        app.me_status(&[("cookie", &format!("session_jwt={fresh}"))])
            .await,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Devices and revocation

#[tokio::test]
async fn sessions_lists_both_devices_and_marks_this_one() {
    let app = fixture().await;
    let laptop = app
        .login_from("alice", "198.51.100.1:1000", "Firefox/128")
        .await;
    let phone = app
        .login_from("alice", "[2001:db8::2]:2000", "Safari/17")
        .await;
    app.login("bob").await;

    let answer = app
        .get("/api/sessions", &[("cookie", &laptop.cookies())])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    let list = body["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{body}");
    let current: Vec<&Value> = list.iter().filter(|s| s["current"] == true).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(current[0]["session_id"], laptop.session_id.as_str());
    for s in list {
        assert_eq!(s["user_id"], "alice");
        assert!(s["current"].is_boolean());
    }
    let by_id = |id: &str| list.iter().find(|s| s["session_id"] == id).unwrap().clone();
    let laptop_json = by_id(&laptop.session_id);
    assert_eq!(laptop_json["attributes"]["ip_address"], "198.51.100.1");
    assert_eq!(laptop_json["attributes"]["user_agent"], "Firefox/128");
    let phone_json = by_id(&phone.session_id);
    assert_eq!(phone_json["attributes"]["ip_address"], "2001:db8::2");
    assert_eq!(phone_json["attributes"]["user_agent"], "Safari/17");
    assert_eq!(phone_json["current"], false);
}

#[tokio::test]
async fn revoking_another_device_kills_its_token_and_jwt_at_once() {
    let app = fixture().await;
    let a = app.login_from("alice", "198.51.100.1:1", "A").await;
    let b = app.login_from("alice", "198.51.100.2:2", "B").await;
    let bearer_b_jwt = bearer(&b.jwt);
    assert_eq!(
        app.me_status(&[("authorization", &bearer_b_jwt)]).await,
        StatusCode::OK
    );

    let answer = app
        .post(
            &format!("/api/sessions/{}/revoke", b.session_id),
            &[("cookie", &a.cookies())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    // Revoking another device leaves this device's cookies alone.
    assert!(answer.headers.get(header::SET_COOKIE).is_none());

    // No clock advance: the JWT fails now, not when it expires.
    assert_eq!(
        app.me_status(&[("authorization", &bearer_b_jwt)]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&b.token))]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&[("cookie", &b.cookies())]).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.me_status(&[("cookie", &a.cookies())]).await,
        StatusCode::OK
    );
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&a.token))]).await,
        StatusCode::OK
    );
    let list = app.get("/api/sessions", &[("cookie", &a.cookies())]).await;
    assert_eq!(list.json()["sessions"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn revoking_from_the_page_redirects_home() {
    let app = fixture().await;
    let a = app.login("alice").await;
    let b = app.login("alice").await;
    let answer = app
        .send(request(
            "POST",
            &format!("/api/sessions/{}/revoke", b.session_id),
            &[
                ("cookie", &a.cookies()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Body::empty(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header(header::LOCATION), "/");
    assert_eq!(
        app.me_status(&[("cookie", &b.cookies())]).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn another_users_session_id_is_404_and_stays_alive() {
    let app = fixture().await;
    let alice = app.login("alice").await;
    let bob = app.login("bob").await;
    let answer = app
        .post(
            &format!("/api/sessions/{}/revoke", bob.session_id),
            &[("cookie", &alice.cookies())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert_eq!(app.each_credential(&bob).await, [StatusCode::OK; 2]);
    // Unknown and malformed ids are 404 too; without a session the route is 401.
    for id in ["session-doesnotexist", "not%20an%20id"] {
        let answer = app
            .post(
                &format!("/api/sessions/{id}/revoke"),
                &[("cookie", &alice.cookies())],
            )
            .await;
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{id}");
    }
    let answer = app
        .post(&format!("/api/sessions/{}/revoke", bob.session_id), &[])
        .await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// Logout

#[tokio::test]
async fn logout_strips_both_cookies_and_kills_both_credentials() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let other_device = app.login("alice").await;
    let answer = app.post("/logout", &[("cookie", &login.cookies())]).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_cookies_stripped(&answer);
    assert_eq!(
        app.each_credential(&login).await,
        [StatusCode::UNAUTHORIZED; 2]
    );
    // Only this device.
    assert_eq!(
        app.me_status(&[("cookie", &other_device.cookies())]).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_form_post_redirects_home() {
    let app = fixture().await;
    let login = app.login("alice").await;
    let answer = app
        .send(request(
            "POST",
            "/logout",
            &[
                ("cookie", &login.cookies()),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            Body::empty(),
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    assert_eq!(answer.header(header::LOCATION), "/");
    assert_cookies_stripped(&answer);
    assert_eq!(
        app.me_status(&[("cookie", &login.cookies())]).await,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn logout_everywhere_kills_every_device_of_the_user() {
    let app = fixture().await;
    let a = app.login("alice").await;
    let b = app.login("alice").await;
    let bob = app.login("bob").await;
    let answer = app.post("/logout/all", &[("cookie", &a.cookies())]).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_cookies_stripped(&answer);
    for login in [&a, &b] {
        assert_eq!(
            app.each_credential(login).await,
            [StatusCode::UNAUTHORIZED; 2]
        );
    }
    assert_eq!(
        app.me_status(&[("cookie", &bob.cookies())]).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_without_usable_credentials_still_succeeds() {
    let app = fixture().await;
    let revoked = app.login("alice").await;
    assert_eq!(
        app.post("/logout", &[("cookie", &revoked.cookies())])
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let garbage = "session_token=garbage; session_jwt=a.b.c";
    let cases: [&[(&str, &str)]; 4] = [
        &[],
        &[("cookie", garbage)],
        &[("authorization", "Bearer not-a-token")],
        &[("cookie", &revoked.cookies())],
    ];
    for route in ["/logout", "/logout/all"] {
        for headers in cases {
            let answer = app.post(route, headers).await;
            assert_eq!(answer.status, StatusCode::NO_CONTENT, "{route} {headers:?}");
            if headers.iter().any(|(name, _)| *name == "authorization") {
                // A bearer client gets no cookie, not even a removal (tests/example_rules.rs).
                assert!(answer.headers.get(header::SET_COOKIE).is_none());
            } else {
                assert_cookies_stripped(&answer);
            }
        }
    }
}

#[tokio::test]
async fn get_logout_is_405() {
    let app = fixture().await;
    let login = app.login("alice").await;
    for route in ["/logout", "/logout/all"] {
        let answer = app.get(route, &[("cookie", &login.cookies())]).await;
        assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED, "{route}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }
    assert_eq!(
        app.me_status(&[("cookie", &login.cookies())]).await,
        StatusCode::OK
    );
}

// ---------------------------------------------------------------------------------------------
// Store failure

#[tokio::test]
async fn a_store_failure_is_503_never_signed_out() {
    let clock = ManualClock::starting_now();
    // No revocation feed: the JWT fast path is always trusted and only the opaque token
    // reaches the store.
    let store = common::FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone())
        .token_cache_capacity(0)
        .build()
        .unwrap();
    sessions.ready().await;
    let app = App {
        router: axum_app::app(sessions),
        clock,
    };
    let login = app.login("alice").await;
    store.set_down(true);

    // The opaque token needs the store: 503 with Retry-After, not 401.
    let answer = app
        .get("/api/me", &[("authorization", &bearer(&login.token))])
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.header(header::RETRY_AFTER), "1");
    let answer = app
        .get(
            "/",
            &[("cookie", &format!("session_token={}", login.token))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);

    // Login cannot hand out credentials for a session it could not store.
    let answer = app
        .send(login_request(
            json!({"user_id": "bob"}),
            "203.0.113.9:1",
            "t",
        ))
        .await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answer.json()["error"], "store_unavailable");
    assert!(answer.headers.get(header::SET_COOKIE).is_none());

    // The JWT fast path does not touch the store; listing devices does.
    let jwt = bearer(&login.jwt);
    assert_eq!(
        app.me_status(&[("authorization", &jwt)]).await,
        StatusCode::OK
    );
    let answer = app.get("/api/sessions", &[("authorization", &jwt)]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);

    store.set_down(false);
    // The store failed often enough to open the circuit breaker: calls fail fast until its
    // probe period has passed, then the first call finds the store back.
    app.clock.advance(Duration::from_secs(1));
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&login.token))])
            .await,
        StatusCode::OK
    );

    // A logout that cannot reach the store keeps the cookies, so the client can retry.
    store.set_down(true);
    let answer = app.post("/logout", &[("cookie", &login.cookies())]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
    store.set_down(false);
    app.clock.advance(Duration::from_secs(1));
    let answer = app.post("/logout", &[("cookie", &login.cookies())]).await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_cookies_stripped(&answer);
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&login.token))])
            .await,
        StatusCode::UNAUTHORIZED
    );
}

// ---------------------------------------------------------------------------------------------
// Forged JWTs and the JWKS

fn segments(jwt: &str) -> [String; 3] {
    let parts: Vec<&str> = jwt.split('.').collect();
    assert_eq!(parts.len(), 3);
    [parts[0].into(), parts[1].into(), parts[2].into()]
}

fn b64_json(value: &Value) -> String {
    URL_SAFE_NO_PAD.encode(value.to_string())
}

fn decode_json(segment: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(segment).unwrap()).unwrap()
}

async fn assert_refused(app: &App, jwt: &str, what: &str) {
    for headers in [
        [("authorization", bearer(jwt))],
        [("cookie", format!("session_jwt={jwt}"))],
    ] {
        let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        let answer = app.get("/api/me", &headers).await;
        assert_eq!(
            answer.status,
            StatusCode::UNAUTHORIZED,
            "{what} {headers:?}"
        );
        assert_eq!(
            answer.header(header::WWW_AUTHENTICATE),
            INVALID_TOKEN,
            "{what}"
        );
    }
}

#[tokio::test]
async fn forged_jwts_are_401_invalid_token() {
    let app = fixture().await;
    let alice = app.login("alice").await;
    let [header_b64, payload_b64, signature] = segments(&alice.jwt);
    let payload = decode_json(&payload_b64);
    assert_eq!(decode_json(&header_b64)["alg"], "EdDSA");

    // 1. The signed payload swapped for another user's.
    let mut mallory = payload.clone();
    mallory["sub"] = json!("mallory");
    let swapped = format!("{header_b64}.{}.{signature}", b64_json(&mallory));
    assert_refused(&app, &swapped, "payload swapped").await;

    // 2. `alg: none`, no signature.
    let none = b64_json(&json!({"alg": "none", "typ": "JWT"}));
    assert_refused(&app, &format!("{none}.{payload_b64}."), "alg none").await;
    assert_refused(
        &app,
        &format!("{none}.{payload_b64}.{signature}"),
        "alg none, signed",
    )
    .await;

    // 3. Algorithm confusion: HS256 keyed with the public key, under the real kid.
    let jwks = app.get("/.well-known/jwks.json", &[]).await.json();
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let public_key = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let mut hs_header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    hs_header.kid = Some(kid.to_owned());
    for secret in [public_key.as_slice(), jwk["x"].as_str().unwrap().as_bytes()] {
        let confused = jsonwebtoken::encode(
            &hs_header,
            &payload,
            &jsonwebtoken::EncodingKey::from_secret(secret),
        )
        .unwrap();
        assert_eq!(decode_json(&segments(&confused)[0])["kid"], kid);
        assert_refused(&app, &confused, "HS256 with the public key").await;
    }

    // 4. A kid no configured key has.
    let unknown = b64_json(&json!({"alg": "EdDSA", "typ": "JWT", "kid": "someone-elses-key"}));
    assert_refused(
        &app,
        &format!("{unknown}.{payload_b64}.{signature}"),
        "unknown kid",
    )
    .await;

    // 5. A JWT minted by another service (another Ed25519 key, same issuer and audience).
    let other = fixture().await;
    let foreign = other.login("alice").await;
    assert_refused(&app, &foreign.jwt, "another service's JWT").await;

    // The genuine JWT still works.
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&alice.jwt))])
            .await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn jwks_has_one_public_ed25519_key() {
    let app = fixture().await;
    let answer = app.get("/.well-known/jwks.json", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header(header::CONTENT_TYPE)
            .starts_with("application/json")
    );
    let jwks = answer.json();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let key = &keys[0];
    assert_eq!(key["kty"], "OKP");
    assert_eq!(key["crv"], "Ed25519");
    assert!(!key["kid"].as_str().unwrap().is_empty());
    assert_eq!(
        URL_SAFE_NO_PAD
            .decode(key["x"].as_str().unwrap())
            .unwrap()
            .len(),
        32
    );
    assert!(key.get("d").is_none(), "private key exported: {key}");

    // The kid is the one the JWTs name.
    let login = app.login("alice").await;
    assert_eq!(decode_json(&segments(&login.jwt)[0])["kid"], key["kid"]);
}

// ---------------------------------------------------------------------------------------------
// The page

#[tokio::test]
async fn the_page_shows_a_login_form_or_the_devices_escaped() {
    let app = fixture().await;
    let answer = app.get("/", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.header(header::CONTENT_TYPE).starts_with("text/html"));
    let html = answer.text();
    assert!(
        html.contains(r#"<form method="post" action="/login">"#),
        "{html}"
    );
    assert!(html.contains(r#"name="user_id""#));

    let user = r#"<img src=x onerror="alert(1)">"#;
    let this = app
        .login_from(user, "198.51.100.1:1", "<script>alert('ua')</script>")
        .await;
    let other = app.login_from(user, "198.51.100.2:2", "Other & Co").await;
    let html = app.get("/", &[("cookie", &this.cookies())]).await.text();
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;ua&#39;)&lt;/script&gt;"));
    assert!(html.contains("&lt;img src=x onerror=&quot;alert(1)&quot;&gt;"));
    assert!(html.contains("Other &amp; Co"));
    assert!(html.contains("198.51.100.1") && html.contains("198.51.100.2"));
    assert!(html.contains("this device"));
    assert!(html.contains(&format!(
        r#"action="/api/sessions/{}/revoke""#,
        other.session_id
    )));
    assert!(!html.contains(&format!("/api/sessions/{}/revoke", this.session_id)));
    assert!(html.contains(r#"action="/logout""#));
    assert!(html.contains(r#"action="/logout/all""#));
}

// ---------------------------------------------------------------------------------------------
// Over real TCP

/// A minimal cookie jar for the real HTTP client.
#[derive(Default)]
struct Jar(BTreeMap<String, String>);

impl Jar {
    fn store(&mut self, headers: &HeaderMap) {
        for value in headers.get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            if cookie.max_age() == Some(time::Duration::ZERO) {
                self.0.remove(cookie.name());
            } else {
                self.0
                    .insert(cookie.name().to_owned(), cookie.value().to_owned());
            }
        }
    }

    fn header(&self) -> String {
        self.0
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

/// One HTTP/1.1 exchange over a fresh TCP connection, with hyper's client.
async fn http(
    addr: SocketAddr,
    jar: &mut Jar,
    method: &str,
    path: &str,
    json_body: Option<Value>,
) -> (StatusCode, Value) {
    use http_body_util::{BodyExt as _, Full};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(connection);
    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header(header::HOST, addr.to_string())
        .header(header::USER_AGENT, "hyper-test/1");
    if !jar.0.is_empty() {
        builder = builder.header(header::COOKIE, jar.header());
    }
    let body = match json_body {
        Some(json) => {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
            Full::new(Bytes::from(json.to_string()))
        }
        None => Full::new(Bytes::new()),
    };
    let response = sender
        .send_request(builder.body(body).unwrap())
        .await
        .unwrap();
    let status = response.status();
    jar.store(response.headers());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, json)
}

#[tokio::test]
async fn the_app_over_real_tcp() {
    // The real system clock here, and cookies without `Secure`, as `INSECURE_COOKIES=1` gives.
    let sessions = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .cookies(CookieConfig::default().secure(false))
        .build()
        .unwrap();
    sessions.ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            axum_app::app(sessions).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let mut jar = Jar::default();
    let (status, _) = http(addr, &mut jar, "GET", "/api/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let (status, login) = http(
        addr,
        &mut jar,
        "POST",
        "/login",
        Some(json!({"user_id": "alice"})),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        jar.0.keys().collect::<Vec<_>>(),
        ["session_jwt", "session_token"]
    );

    let (status, me) = http(addr, &mut jar, "GET", "/api/me", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["session_id"], login["session"]["session_id"]);

    let (status, list) = http(addr, &mut jar, "GET", "/api/sessions", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list["sessions"][0]["current"], true);
    // The peer address of the TCP connection and the client's user agent were recorded.
    assert_eq!(list["sessions"][0]["attributes"]["ip_address"], "127.0.0.1");
    assert_eq!(
        list["sessions"][0]["attributes"]["user_agent"],
        "hyper-test/1"
    );

    let (status, jwks) = http(addr, &mut jar, "GET", "/.well-known/jwks.json", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");

    let (status, _) = http(addr, &mut jar, "POST", "/logout", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(jar.0.is_empty(), "cookies left: {:?}", jar.0);

    // The jar is empty; the old credentials are dead too.
    let mut old = Jar::default();
    old.0.insert(
        "session_token".into(),
        login["session_token"].as_str().unwrap().into(),
    );
    old.0.insert(
        "session_jwt".into(),
        login["session_jwt"].as_str().unwrap().into(),
    );
    let (status, _) = http(addr, &mut old, "GET", "/api/me", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    server.abort();
}

// ---------------------------------------------------------------------------------------------
// Operators: /metrics and /healthz

/// The value of the Prometheus sample `series` (name with labels, as rendered), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_show_every_documented_series() {
    // The recorder first: sessions register their series when built.
    axum_app::metrics_handle();
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    // Two instances with one key.
    let instance = || {
        builder(&clock, store.clone())
            .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
            .build()
            .unwrap()
    };
    let sessions = instance();
    sessions.ready().await;
    let app = App {
        router: axum_app::app(sessions),
        clock: clock.clone(),
    };
    let before = app.get("/metrics", &[]).await.text();
    let count = |text: &str, series: &str| sample(text, series).unwrap_or(0.0);

    // A login; the JWT path (twice: the second use is a verification-cache hit); the store
    // path; a request with nothing; a refused token.
    let login = app.login("metrics-alice").await;
    for _ in 0..2 {
        assert_eq!(
            app.me_status(&[("authorization", &bearer(&login.jwt))])
                .await,
            StatusCode::OK
        );
    }
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&login.token))])
            .await,
        StatusCode::OK
    );
    assert_eq!(app.me_status(&[]).await, StatusCode::UNAUTHORIZED);
    // A JWT minted by another instance in the feed horizon's second is confirmed in the store.
    let other = instance();
    other.ready().await;
    let elsewhere = other
        .create("metrics-bob", tower_session_jwt::NewSession::new())
        .await
        .unwrap();
    assert_eq!(
        app.me_status(&[("authorization", &bearer(elsewhere.jwt.expose()))])
            .await,
        StatusCode::OK
    );
    // A revocation (logout), which the feed then carries back to this instance.
    let answer = app
        .post("/logout", &[("authorization", &bearer(&login.jwt))])
        .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    assert_eq!(
        app.me_status(&[("authorization", &bearer(&login.jwt))])
            .await,
        StatusCode::UNAUTHORIZED
    );
    tokio::time::sleep(Duration::from_millis(300)).await;

    let answer = app.get("/metrics", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer
            .header(header::CONTENT_TYPE)
            .starts_with("text/plain")
    );
    let after = answer.text();
    let grew = |series: &str| {
        let (was, is) = (count(&before, series), count(&after, series));
        assert!(is > was, "{series}: {was} then {is}\n{after}");
    };
    // Other tests share the process's recorder: every check is "grew", never "equals".
    grew(r#"tower_session_jwt_requests_total{path="jwt",outcome="authenticated"}"#);
    grew(r#"tower_session_jwt_requests_total{path="jwt_confirmed",outcome="authenticated"}"#);
    grew(r#"tower_session_jwt_requests_total{path="store",outcome="authenticated"}"#);
    grew(r#"tower_session_jwt_requests_total{path="none",outcome="missing_credentials"}"#);
    grew(r#"tower_session_jwt_requests_total{path="none",outcome="revoked"}"#);
    grew(r#"tower_session_jwt_cache_hits_total{cache="jwt"}"#);
    grew(r#"tower_session_jwt_cache_misses_total{cache="jwt"}"#);
    grew(r#"tower_session_jwt_cache_hits_total{cache="token"}"#);
    grew(r#"tower_session_jwt_revocations_total{scope="session"}"#);
    grew(r#"tower_session_jwt_feed_events_total{kind="session_revoked"}"#);
    grew(r#"tower_session_jwt_store_duration_seconds_count{op="create"}"#);
    grew(r#"tower_session_jwt_store_duration_seconds_count{op="get"}"#);
    grew(r#"tower_session_jwt_store_duration_seconds_count{op="revoke"}"#);
    assert!(
        sample(&after, "tower_session_jwt_feed_trusted").is_some(),
        "{after}"
    );
    // The circuit breaker's gauge is published from the start, closed (0) while the store
    // answers (other tests' outages share the recorder, so only its presence is checked).
    assert!(
        sample(&after, "tower_session_jwt_store_circuit_open").is_some(),
        "{after}"
    );
    let lag = sample(&after, "tower_session_jwt_feed_lag_seconds").expect("feed lag");
    assert!((0.0..10.0).contains(&lag), "feed lag {lag}");
    // Store durations are histograms (buckets), so they aggregate across instances.
    assert!(
        after.contains(r#"tower_session_jwt_store_duration_seconds_bucket{op="create",le="#),
        "{after}"
    );
}

#[tokio::test]
async fn healthz_flips_while_the_store_is_down() {
    let clock = ManualClock::starting_now();
    let store = common::FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let sessions = builder(&clock, store.clone()).build().unwrap();
    let app = App {
        router: axum_app::app(sessions),
        clock,
    };
    let answer = app.get("/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["ready"], true);
    assert_eq!(answer.header(header::CACHE_CONTROL), "no-store");

    store.set_down(true);
    let answer = app.get("/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(
        answer.json(),
        json!({"ready": false, "feed_caught_up": true, "store_reachable": false})
    );

    store.set_down(false);
    let answer = app.get("/healthz", &[]).await;
    assert_eq!(answer.status, StatusCode::OK);
}
