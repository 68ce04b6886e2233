//! The promises a browser and an API client rely on, where the layer, the handlers, the engine
//! and the store meet: logins over older sessions, cookies only for cookie clients, login CSRF,
//! cookie sizes, restarts, shared stores, tossed cookies. Each test names the promise it proves;
//! most drive `examples/axum_app.rs` through a cookie jar that applies `Set-Cookie` headers in
//! order and honours `Max-Age`, as a browser does.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;
mod common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, StatusCode, header};
use bytes::Bytes;
use cookie::Cookie;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt as _;
use tower_session_jwt::clock::{Clock, ManualClock};
use tower_session_jwt::logout::logout;
use tower_session_jwt::session::SessionAttributes;
use tower_session_jwt::store::{BoxFuture, FeedBatch, FeedCursor, RevocationFeed};
use tower_session_jwt::{
    AuthError, ConfigError, MemoryStore, NewSession, Session, SessionError, SessionLayer, Sessions,
    SessionsBuilder, SigningKey,
};
use tower_session_jwt::{SessionStore, StoreError};

const JWT_TTL: Duration = Duration::from_secs(2);
const SESSION_TTL: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------------------------
// A browser, as far as cookies go

/// Cookies by name, applied in the order a response lists them; `Max-Age` counts on the manual
/// clock, `Max-Age=0` deletes.
#[derive(Default)]
struct Jar(BTreeMap<String, (String, Option<OffsetDateTime>)>);

impl Jar {
    fn apply(&mut self, headers: &HeaderMap, now: OffsetDateTime) {
        for value in headers.get_all(header::SET_COOKIE) {
            let cookie = Cookie::parse(value.to_str().unwrap().to_owned()).unwrap();
            let name = cookie.name().to_owned();
            match cookie.max_age() {
                Some(age) if age <= time::Duration::ZERO => {
                    self.0.remove(&name);
                }
                age => {
                    self.0
                        .insert(name, (cookie.value().to_owned(), age.map(|a| now + a)));
                }
            }
        }
    }

    fn header(&mut self, now: OffsetDateTime) -> String {
        self.0
            .retain(|_, (_, expires)| expires.is_none_or(|at| at > now));
        self.0
            .iter()
            .map(|(name, (value, _))| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|(value, _)| value.as_str())
    }
}

struct Browser {
    app: Router,
    clock: ManualClock,
    jar: Jar,
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn cookie_names(&self) -> Vec<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| {
                let v = v.to_str().unwrap();
                v[..v.find('=').unwrap()].to_owned()
            })
            .collect()
    }
}

async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body,
    }
}

fn request(
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: impl Into<Body>,
) -> Request<Body> {
    let mut builder = Request::builder().method(method).uri(uri);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut request = builder.body(body.into()).unwrap();
    let peer: SocketAddr = "203.0.113.7:4000".parse().unwrap();
    request.extensions_mut().insert(ConnectInfo(peer));
    request
}

async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Answer {
    send(app, request("GET", uri, headers, "")).await
}

impl Browser {
    async fn send(
        &mut self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: &str,
    ) -> Answer {
        let cookie = self.jar.header(self.clock.now());
        let mut all = headers.to_vec();
        if !cookie.is_empty() {
            all.push(("cookie", &cookie));
        }
        let answer = send(&self.app, request(method, uri, &all, body.to_owned())).await;
        self.jar.apply(&answer.headers, self.clock.now());
        answer
    }

    async fn form_login(&mut self, user: &str) -> Answer {
        let body = format!("user_id={user}");
        let form = [("content-type", "application/x-www-form-urlencoded")];
        self.send("POST", "/login", &form, &body).await
    }

    async fn me(&mut self) -> (StatusCode, Value) {
        let answer = self.send("GET", "/api/me", &[], "").await;
        (answer.status, answer.json())
    }
}

fn example_builder(clock: &ManualClock, store: impl SessionStore) -> SessionsBuilder {
    Sessions::builder()
        .store(store)
        .clock(clock.clone())
        .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(JWT_TTL)
        .session_ttl(SESSION_TTL)
        .sliding(true)
}

async fn browser() -> (Browser, Sessions) {
    let clock = ManualClock::starting_now();
    let sessions = example_builder(&clock, MemoryStore::with_clock(clock.clone()))
        .build()
        .unwrap();
    sessions.ready().await;
    let browser = Browser {
        app: axum_app::app(sessions.clone()),
        clock,
        jar: Jar::default(),
    };
    (browser, sessions)
}

// ---------------------------------------------------------------------------------------------
// Item 0: a login or logout has the last word over the layer's refresh

#[tokio::test]
async fn a_login_over_an_idle_older_session_lands_in_the_new_account() {
    let (mut browser, sessions) = browser().await;
    assert_eq!(
        browser.form_login("alice").await.status,
        StatusCode::SEE_OTHER
    );
    // Alice's JWT expires while her token cookie lives on.
    browser.clock.advance(JWT_TTL + Duration::from_secs(6));
    let answer = browser.form_login("bob").await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    // Only Bob's two credentials: no JWT minted from Alice's token after them.
    assert_eq!(answer.cookie_names(), ["session_token", "session_jwt"]);
    let (status, me) = browser.me().await;
    assert_eq!(
        (status, me["user_id"].as_str()),
        (StatusCode::OK, Some("bob"))
    );
    // And once Bob's JWT expires too, his token refreshes it: no lockout.
    browser.clock.advance(JWT_TTL + Duration::from_secs(6));
    let (status, me) = browser.me().await;
    assert_eq!(
        (status, me["user_id"].as_str()),
        (StatusCode::OK, Some("bob"))
    );
    assert_eq!(sessions.list("bob").await.unwrap().len(), 1);
}

#[tokio::test]
async fn a_logout_with_an_expired_jwt_leaves_no_fresh_jwt_behind() {
    let (mut browser, sessions) = browser().await;
    browser.form_login("alice").await;
    browser.clock.advance(JWT_TTL + Duration::from_secs(6));
    let answer = browser.send("POST", "/logout", &[], "").await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    // Only the two removal cookies: the layer's refresh of the session just revoked is dropped.
    assert_eq!(answer.cookie_names(), ["session_token", "session_jwt"]);
    assert!(browser.jar.0.is_empty(), "{:?}", browser.jar.0.keys());
    assert_eq!(browser.me().await.0, StatusCode::UNAUTHORIZED);
    assert!(sessions.list("alice").await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// Item 2: sliding expiry keeps an active browser signed in

#[tokio::test]
async fn an_active_browser_stays_signed_in_past_the_first_session_lifetime() {
    let (mut browser, _) = browser().await;
    browser.form_login("alice").await;
    // Active every 10 s for three session lifetimes.
    for _ in 0..18 {
        browser.clock.advance(Duration::from_secs(10));
        let (status, me) = browser.me().await;
        assert_eq!(
            status,
            StatusCode::OK,
            "signed out at {}",
            browser.clock.now()
        );
        assert_eq!(me["user_id"], "alice");
    }
    // Idle past the session's lifetime: both cookies lapse, the user is signed out.
    browser.clock.advance(SESSION_TTL + Duration::from_secs(1));
    assert_eq!(browser.me().await.0, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// Item 3: a header credential never becomes a cookie

#[tokio::test]
async fn bearer_clients_get_no_cookies() {
    let (mut browser, _) = browser().await;
    let answer = browser
        .send(
            "POST",
            "/login",
            &[("content-type", "application/json")],
            r#"{"user_id":"api"}"#,
        )
        .await;
    let token = answer.json()["session_token"].as_str().unwrap().to_owned();
    let jwt = answer.json()["session_jwt"].as_str().unwrap().to_owned();
    browser.clock.advance(JWT_TTL + Duration::from_secs(6));
    for credential in [&token, &jwt] {
        let auth = format!("Bearer {credential}");
        let answer = get(&browser.app, "/api/me", &[("authorization", &auth)]).await;
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }
    // The token works (through the store) and gets no cookie; the expired JWT is refused.
    let auth = format!("Bearer {token}");
    let answer = get(&browser.app, "/api/me", &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::OK);
    // A cookie JWT beside a header token gets nothing back either.
    let cookie = format!("session_jwt={jwt}");
    let answer = get(
        &browser.app,
        "/api/me",
        &[("authorization", &auth), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
}

// ---------------------------------------------------------------------------------------------
// Item 4: login CSRF

#[tokio::test]
async fn cross_site_logins_are_refused_and_trusted_origins_are_configurable() {
    let (browser, sessions) = browser().await;
    let form = ("content-type", "application/x-www-form-urlencoded");
    let host = ("host", "app.example");
    for headers in [
        vec![
            form,
            host,
            ("origin", "https://evil.example"),
            ("sec-fetch-site", "cross-site"),
        ],
        vec![form, host, ("origin", "https://evil.example")],
        vec![form, host, ("sec-fetch-site", "cross-site")],
        vec![form, host, ("origin", "null")],
        // Another scheme is another origin (a page injected over plain HTTP).
        vec![form, host, ("origin", "http://app.example")],
        vec![
            form,
            host,
            ("sec-fetch-site", "same-site"),
            ("origin", "https://sub.app.example"),
        ],
    ] {
        let answer = send(
            &browser.app,
            request("POST", "/login", &headers, "user_id=victim"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "{headers:?}");
        assert!(answer.headers.get(header::SET_COOKIE).is_none());
    }
    assert!(sessions.list("victim").await.unwrap().is_empty());
    for headers in [
        vec![
            form,
            host,
            ("origin", "https://app.example"),
            ("sec-fetch-site", "same-origin"),
        ],
        vec![form, host],
        vec![
            form,
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ],
        // What Chromium sends for a form on a page with `Referrer-Policy: no-referrer`.
        vec![
            form,
            host,
            ("origin", "null"),
            ("sec-fetch-site", "same-origin"),
        ],
    ] {
        let answer = send(
            &browser.app,
            request("POST", "/login", &headers, "user_id=me"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{headers:?}");
    }

    // Behind a proxy that rewrites Host, the public origin is trusted by configuration.
    let clock = ManualClock::starting_now();
    let sessions = example_builder(&clock, MemoryStore::with_clock(clock.clone()))
        .trusted_origins(["https://App.Example/"])
        .build()
        .unwrap();
    let app = axum_app::app(sessions);
    let proxied = [
        form,
        ("host", "backend:8080"),
        ("origin", "https://app.example"),
    ];
    let answer = send(&app, request("POST", "/login", &proxied, "user_id=me")).await;
    assert_eq!(answer.status, StatusCode::SEE_OTHER);
    let answer = send(&app, request("POST", "/logout", &proxied, "")).await;
    assert_eq!(
        answer.status,
        StatusCode::SEE_OTHER,
        "logout honours them too"
    );
    assert!(matches!(
        Sessions::builder()
            .store(MemoryStore::new())
            .signing_key(SigningKey::generate_ed25519().unwrap())
            .trusted_origins(["app.example"])
            .build(),
        Err(ConfigError::InvalidOrigin(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Item 5: a JWT cookie that browsers would drop is refused at login

#[tokio::test]
async fn a_jwt_cookie_over_4096_bytes_is_refused_at_login() {
    let (browser, sessions) = browser().await;
    let claims = json!({"user_id": "big", "custom_claims": {"blob": "x".repeat(3600)}});
    let ua = "Mozilla/5.0 ".repeat(25);
    let answer = send(
        &browser.app,
        request(
            "POST",
            "/login",
            &[("content-type", "application/json"), ("user-agent", &ua)],
            claims.to_string(),
        ),
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json()["error"], "session_jwt_too_large");
    assert!(answer.headers.get(header::SET_COOKIE).is_none());
    assert!(
        sessions.list("big").await.unwrap().is_empty(),
        "nothing stored"
    );

    // Every cookie handed out fits, with claims just under the limit.
    let mut small = serde_json::Map::new();
    small.insert("blob".into(), json!("x".repeat(2400)));
    let created = tower_session_jwt::login::login(
        &sessions,
        &request("POST", "/login", &[("user-agent", &ua)], "")
            .into_parts()
            .0,
        "fits",
        NewSession::new().custom_claims(small),
    )
    .await
    .unwrap();
    for cookie in created.cookies() {
        assert!(
            cookie.len() <= tower_session_jwt::cookies::MAX_COOKIE_LEN,
            "{}",
            cookie.len()
        );
    }

    // A bound below the smallest JWT this configuration mints is a configuration error.
    let err = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .max_token_len(200)
        .build()
        .unwrap_err();
    let ConfigError::InvalidMaxTokenLen { min } = err else {
        panic!("{err:?}");
    };
    assert!(min > 200, "{min}");
    assert!(
        Sessions::builder()
            .store(MemoryStore::new())
            .signing_key(SigningKey::generate_ed25519().unwrap())
            .max_token_len(min)
            .build()
            .is_ok()
    );
}

// ---------------------------------------------------------------------------------------------
// Item 6: no secret in Debug; credential headers are marked sensitive

#[tokio::test]
async fn debug_output_and_credential_headers_keep_secrets() {
    let (_, sessions) = browser().await;
    let (parts, ()) = http::Request::post("/login").body(()).unwrap().into_parts();
    let login = tower_session_jwt::login::login(&sessions, &parts, "alice", NewSession::new())
        .await
        .unwrap();
    let printed = format!("{login:?} {:?}", login.cookies());
    assert!(!printed.contains(login.created.token.expose()), "{printed}");
    assert!(!printed.contains(login.created.jwt.expose()), "{printed}");

    // A handler behind the layer sees the credential headers marked sensitive.
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let app = Router::new()
        .route(
            "/",
            axum::routing::get(move |headers: HeaderMap| {
                let counter = counter.clone();
                async move {
                    for name in [header::AUTHORIZATION, header::COOKIE] {
                        if headers.get(&name).is_some_and(|v| v.is_sensitive()) {
                            counter.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    format!("{headers:?}")
                }
            }),
        )
        .layer(SessionLayer::new(sessions.clone()).optional());
    let auth = format!("Bearer {}", login.created.jwt.expose());
    let cookie = format!("session_token={}", login.created.token.expose());
    let answer = get(&app, "/", &[("authorization", &auth), ("cookie", &cookie)]).await;
    assert_eq!(seen.load(Ordering::SeqCst), 2);
    let printed = String::from_utf8(answer.body.to_vec()).unwrap();
    assert!(!printed.contains(login.created.jwt.expose()), "{printed}");
}

// ---------------------------------------------------------------------------------------------
// Item 7: a shared store without a feed, and token caches without a trusted feed

/// A MemoryStore that claims to be shared, with a feed of the test's choosing.
#[derive(Clone)]
struct SharedStore {
    inner: MemoryStore,
    feed: Option<Arc<dyn RevocationFeed>>,
    finds: Arc<AtomicUsize>,
}

/// A feed that cannot be read.
struct CutFeed;

/// A feed that takes its time over every read.
struct SlowFeed(Arc<dyn RevocationFeed>);

impl RevocationFeed for SlowFeed {
    fn retention(&self) -> Duration {
        self.0.retention()
    }
    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(40)).await;
            self.0.read(after, wait).await
        })
    }
}

impl RevocationFeed for CutFeed {
    fn retention(&self) -> Duration {
        Duration::from_secs(3600)
    }
    fn read<'a>(
        &'a self,
        _: Option<&'a FeedCursor>,
        _: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async { Err(StoreError::Unavailable("feed cut (test)".into())) })
    }
}

common::forward::forward_session_store! {
    impl SessionStore for SharedStore => |this| this.inner;
    find_by_token before { this.finds.fetch_add(1, Ordering::SeqCst); }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        self.feed.clone()
    }
}

#[tokio::test]
async fn a_shared_store_without_a_feed_needs_an_explicit_opt_in() {
    let store = SharedStore {
        inner: MemoryStore::new(),
        feed: None,
        finds: Arc::default(),
    };
    let base = || {
        Sessions::builder()
            .store(store.clone())
            .signing_key(SigningKey::generate_ed25519().unwrap())
    };
    assert!(matches!(
        base().build(),
        Err(ConfigError::SharedStoreWithoutFeed)
    ));
    let sessions = base().tolerate_revoked_jwts_elsewhere().build().unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
}

#[tokio::test]
async fn a_token_cache_over_a_shared_store_is_not_used_while_the_feed_is_lost() {
    let store = SharedStore {
        inner: MemoryStore::new(),
        feed: Some(Arc::new(CutFeed) as Arc<dyn RevocationFeed>),
        finds: Arc::default(),
    };
    let sessions = Sessions::builder()
        .store(store.clone())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .token_cache_capacity(1000)
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    for n in 1..=3 {
        sessions
            .authenticate_token(created.token.expose())
            .await
            .unwrap();
        assert_eq!(
            store.finds.load(Ordering::SeqCst),
            n,
            "every lookup reaches the store"
        );
    }
    // And the JWT is confirmed in the store rather than trusted.
    assert!(!sessions.fast_path_trusted());
    sessions.revoke(&created.session.session_id).await.unwrap();
    assert!(
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------------
// Items 1 and 8: the feed's horizon and catching up

#[tokio::test]
async fn a_restart_does_not_forget_revocations() {
    // First process: a login, then a logout.
    let clock = ManualClock::starting_now();
    let first = common::builder(&clock, MemoryStore::with_clock(clock.clone()))
        .build()
        .unwrap();
    first.ready().await;
    let created = first.create("alice", NewSession::new()).await.unwrap();
    first.revoke(&created.session.session_id).await.unwrap();
    drop(first);
    // A restart a little later, same signing key, fresh memory store: the JWT predates this
    // instance's horizon, so it is confirmed in the store, which has never heard of it.
    clock.advance(Duration::from_secs(2));
    let second = common::builder(&clock, MemoryStore::with_clock(clock.clone()))
        .build()
        .unwrap();
    second.ready().await;
    assert!(second.fast_path_trusted());
    assert!(matches!(
        second.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::UnknownSession)
    ));
    // JWTs it mints itself are trusted at once.
    let fresh = second.create("bob", NewSession::new()).await.unwrap();
    second.authenticate_jwt(fresh.jwt.expose()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_instance_trusts_no_jwt_before_it_has_read_every_retained_revocation() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let a = common::builder(&clock, store.clone()).build().unwrap();
    a.ready().await;
    clock.advance(Duration::from_secs(2));
    // 3,500 sessions logged out: more than three feed batches.
    let mut revoked = Vec::new();
    for _ in 0..3500 {
        let created = a.create("churn", NewSession::new()).await.unwrap();
        a.revoke(&created.session.session_id).await.unwrap();
        revoked.push(created.jwt);
    }
    let last: Vec<_> = revoked.iter().rev().take(50).cloned().collect();
    // The new instance reads the backlog a batch at a time, slowly.
    let slow = SharedStore {
        feed: Some(Arc::new(SlowFeed(store.revocation_feed().unwrap()))),
        inner: store.clone(),
        finds: Arc::default(),
    };
    let c = common::builder(&clock, slow).build().unwrap();
    // Hammer C from the moment it exists until it is ready, and a while after.
    let hammer = {
        let c = c.clone();
        tokio::spawn(async move {
            let mut checks = 0;
            for round in 0..200 {
                for jwt in &last {
                    assert!(
                        c.authenticate_jwt(jwt.expose()).await.is_err(),
                        "revoked JWT accepted in round {round}"
                    );
                    checks += 1;
                }
                tokio::task::yield_now().await;
            }
            checks
        })
    };
    assert!(
        !c.fast_path_trusted(),
        "nothing is trusted before the backlog is read"
    );
    c.ready().await;
    assert_eq!(
        c.revocations().len(),
        3500,
        "ready means every event applied"
    );
    assert_eq!(hammer.await.unwrap(), 200 * 50);
}

// ---------------------------------------------------------------------------------------------
// Item 9: cookie tossing cannot lock a user out

#[tokio::test]
async fn a_tossed_cookie_does_not_lock_the_user_out() {
    let (mut browser, sessions) = browser().await;
    browser.form_login("alice").await;
    let token = browser.jar.get("session_token").unwrap().to_owned();
    let jwt = browser.jar.get("session_jwt").unwrap().to_owned();
    for tossed in ["", "tossed-by-a-sibling-domain-xxxxxxxxxxxxxxxxx"] {
        let cookie = format!("session_token={token}; session_jwt={jwt}; session_token={tossed}");
        // Pages that need a session say the request is malformed...
        let answer = get(&browser.app, "/api/me", &[("cookie", &cookie)]).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        // ...but the login form and logout still work.
        let answer = get(&browser.app, "/", &[("cookie", &cookie)]).await;
        assert_eq!(answer.status, StatusCode::OK);
    }
    // A logout from the path a tossed cookie was scoped to revokes every session a genuine
    // credential names and strips the cookies, at `/` and at the request's own path.
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let cookie = format!(
        "session_token={}; session_jwt={jwt}; session_token={token}",
        bob.token.expose()
    );
    let answer = send(
        &browser.app,
        request("POST", "/logout", &[("cookie", &cookie)], ""),
    )
    .await;
    assert_eq!(answer.status, StatusCode::NO_CONTENT);
    let paths: Vec<String> = answer
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
        .filter(|c| c.max_age() == Some(time::Duration::ZERO))
        .map(|c| format!("{}@{}", c.name(), c.path().unwrap_or("")))
        .collect();
    for expected in [
        "session_token@/",
        "session_jwt@/",
        "session_token@/logout",
        "session_jwt@/logout",
    ] {
        assert!(
            paths.iter().any(|p| p == expected),
            "{expected} in {paths:?}"
        );
    }
    assert!(sessions.list("alice").await.unwrap().is_empty());
    assert!(sessions.list("bob").await.unwrap().is_empty());
    // Login then works from the same jar.
    browser.jar = Jar::default();
    assert_eq!(
        browser.form_login("alice").await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_bearer_token_beside_a_cookie_jwt_of_another_session_is_a_conflict() {
    let (browser, sessions) = browser().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let auth = format!("Bearer {}", bob.token.expose());
    let cookie = format!("session_jwt={}", alice.jwt.expose());
    let answer = get(
        &browser.app,
        "/api/me",
        &[("authorization", &auth), ("cookie", &cookie)],
    )
    .await;
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(
        answer.headers[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_request""#
    );
}

#[tokio::test]
async fn the_example_uses_host_prefixed_cookies_unless_insecure() {
    for (insecure, expected) in [
        (false, ["__Host-session_token", "__Host-session_jwt"]),
        (true, ["session_token", "session_jwt"]),
    ] {
        let sessions = axum_app::configure(Sessions::builder().store(MemoryStore::new()), insecure)
            .build()
            .unwrap();
        let (parts, ()) = http::Request::post("/login").body(()).unwrap().into_parts();
        let login = tower_session_jwt::login::login(&sessions, &parts, "alice", NewSession::new())
            .await
            .unwrap();
        let names: Vec<&str> = login
            .cookies()
            .iter()
            .map(|c| c.to_str().unwrap().split('=').next().unwrap())
            .collect();
        assert_eq!(names, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// Item 10: input and page hygiene

#[tokio::test]
async fn user_ids_and_claims_are_checked_and_the_page_sends_security_headers() {
    let (browser, sessions) = browser().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    for body in [
        "user_id=a%00b",
        "user_id=admin%E2%80%AEtxt",
        "user_id=%FF%FEalice",
        "user_id=%zz",
    ] {
        let answer = send(&browser.app, request("POST", "/login", &form, body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{body}");
    }
    let json = [("content-type", "application/json")];
    for name in [
        "cnf",
        "act",
        "scope",
        "acr",
        "amr",
        "auth_time",
        "azp",
        "nonce",
        "jti",
    ] {
        let body = json!({"user_id": "alice", "custom_claims": {name: 1}}).to_string();
        let answer = send(&browser.app, request("POST", "/login", &json, body)).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{name}");
    }
    assert!(matches!(
        sessions.create("nul\u{0}", NewSession::new()).await,
        Err(SessionError::InvalidUserId(_))
    ));
    let answer = get(&browser.app, "/", &[]).await;
    let csp = answer.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(answer.headers["x-frame-options"], "DENY");
    assert_eq!(answer.headers["x-content-type-options"], "nosniff");
    assert_eq!(answer.headers["referrer-policy"], "same-origin");

    // The JWT does not carry the client's address or user agent.
    let attrs = SessionAttributes::new("198.51.100.23", "SecretAgent/7");
    let created = sessions
        .create("alice", NewSession::new().attributes(attrs))
        .await
        .unwrap();
    let payload = created.jwt.expose().split('.').nth(1).unwrap().to_owned();
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    let payload = String::from_utf8(payload).unwrap();
    assert!(!payload.contains("198.51.100.23") && !payload.contains("SecretAgent"));
}

// ---------------------------------------------------------------------------------------------
// Item 11: handlers stand on their own

#[tokio::test]
async fn handlers_answer_405_and_work_without_the_layer() {
    let (_, sessions) = browser().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let handler = logout(&sessions);
    for method in ["GET", "HEAD", "PUT"] {
        let response = handler
            .clone()
            .oneshot(
                Request::builder()
                    .method(method)
                    .uri("/logout")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::METHOD_NOT_ALLOWED,
            "{method}"
        );
        assert_eq!(response.headers()[header::ALLOW], "POST, DELETE");
    }
    // No layer in front: the handler reads the credentials itself.
    let cookie = format!("session_jwt={}", created.jwt.expose());
    let response = handler
        .oneshot(request("POST", "/logout", &[("cookie", &cookie)], ""))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(
        response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .count(),
        2
    );
    assert!(
        sessions
            .get(&created.session.session_id)
            .await
            .unwrap()
            .is_none()
    );
}

// ---------------------------------------------------------------------------------------------
// Found by an adversarial read of the change

#[tokio::test]
async fn an_inner_optional_layer_never_passes_on_an_outer_layers_session() {
    let (_, a) = browser().await;
    let clock = ManualClock::starting_now();
    let b = Sessions::builder()
        .store(MemoryStore::with_clock(clock.clone()))
        .clock(clock)
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .build()
        .unwrap();
    let alice = a.create("alice", NewSession::new()).await.unwrap();
    let app = Router::new()
        .route(
            "/",
            axum::routing::get(|s: Option<Session>| async move {
                s.map_or("anonymous".to_owned(), |s| s.user_id)
            }),
        )
        .layer(SessionLayer::new(b).optional())
        .layer(SessionLayer::new(a));
    let auth = format!("Bearer {}", alice.jwt.expose());
    let answer = get(&app, "/", &[("authorization", &auth)]).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(&answer.body[..], b"anonymous");
}

#[tokio::test]
async fn refreshed_credentials_are_never_cacheable() {
    let (_, sessions) = browser().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let app = Router::new()
        .route(
            "/style.css",
            axum::routing::get(|| async {
                (
                    [(header::CACHE_CONTROL, "public, max-age=86400")],
                    "body {}",
                )
            }),
        )
        .layer(SessionLayer::new(sessions.clone()).optional());
    let cookie = format!("session_token={}", created.token.expose());
    let answer = get(&app, "/style.css", &[("cookie", &cookie)]).await;
    assert!(answer.headers.get(header::SET_COOKIE).is_some());
    assert_eq!(answer.headers[header::CACHE_CONTROL], "no-store");
    // A response the layer adds nothing to keeps the handler's caching.
    let cookie = format!("session_jwt={}", created.jwt.expose());
    let answer = get(&app, "/style.css", &[("cookie", &cookie)]).await;
    assert_eq!(
        answer.headers[header::CACHE_CONTROL],
        "public, max-age=86400"
    );
}

#[tokio::test]
async fn the_token_path_never_hands_back_a_jwt_the_revocation_list_refuses() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let key = SigningKey::generate_ed25519().unwrap();
    let make = || {
        Sessions::builder()
            .store(store.clone())
            .clock(clock.clone())
            .signing_key(key.clone())
            .build()
            .unwrap()
    };
    let (here, elsewhere) = (make(), make());
    here.ready().await;
    let created = here.create("alice", NewSession::new()).await.unwrap();
    // The token path caches the lookup with the JWT it hands out, to reuse it.
    let first = here
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    // Another instance changes the claims: JWTs of the earlier version are refused here once
    // the feed delivers the change.
    elsewhere
        .update_claims(
            &created.session.session_id,
            serde_json::json!({"role": "admin"}),
        )
        .await
        .unwrap();
    let start = std::time::Instant::now();
    while here.authenticate_jwt(first.jwt.expose()).await.is_ok() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the change never arrived"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    // The token path mints a JWT the list accepts, with the new claims, rather than handing
    // back the cached, refused one.
    let refreshed = here
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    assert_ne!(refreshed.jwt.expose(), first.jwt.expose());
    assert_eq!(refreshed.session.custom_claims["role"], "admin");
    let session = here.authenticate_jwt(refreshed.jwt.expose()).await.unwrap();
    assert_eq!(session.custom_claims["role"], "admin");
}

#[tokio::test]
async fn origins_with_default_ports_are_the_same_origin() {
    let (browser, _) = browser().await;
    let form = ("content-type", "application/x-www-form-urlencoded");
    for (host, origin) in [
        ("app.example:443", "https://app.example"),
        ("app.example", "https://app.example:443"),
    ] {
        let headers = [form, ("host", host), ("origin", origin)];
        let answer = send(
            &browser.app,
            request("POST", "/login", &headers, "user_id=me"),
        )
        .await;
        assert_eq!(answer.status, StatusCode::SEE_OTHER, "{host} {origin}");
    }
    let headers = [
        form,
        ("host", "app.example:8443"),
        ("origin", "https://app.example"),
    ];
    let answer = send(
        &browser.app,
        request("POST", "/login", &headers, "user_id=me"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::FORBIDDEN);
}
