//! Rules every answer of `examples/axum_app.rs` keeps, checked over every route from one table
//! (a new route is one line in [`ROUTES`], and a test fails until it is there):
//!
//! * a request authenticated by `Authorization` never gets `Set-Cookie`, with or without the
//!   browser's cookies beside it, for a plain and a device-bound session; the crate's own
//!   endpoints keep the rule without the layer in front too;
//! * no answer carries a session's pending device-binding (DBSC) challenge;
//! * a repeated `Sec-Fetch-Site` or `Origin` with differing values is cross-site;
//! * every claim name the crate writes at the top level of a session JWT is refused as a custom
//!   claim.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;

use std::net::SocketAddr;
use std::time::Duration;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Request, Response, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::session::RESERVED_CLAIMS;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::{MemoryStore, NewSession, SessionError, Sessions, SigningKey};

const JSON: Option<&str> = Some("application/json");
const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// One way a client calls a route of the example. `{session_id}` in the path and in header
/// values stands for the caller's own session id.
struct Route {
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const fn route(method: &'static str, path: &'static str) -> Route {
    Route {
        method,
        path,
        content_type: None,
        body: "",
        headers: &[],
    }
}

const fn with_body(
    method: &'static str,
    path: &'static str,
    content_type: Option<&'static str>,
    body: &'static str,
) -> Route {
    Route {
        method,
        path,
        content_type,
        body,
        headers: &[],
    }
}

/// Every route of the example, each way a client sends it (JSON and form posts).
const ROUTES: &[Route] = &[
    route("GET", "/"),
    with_body("POST", "/login", JSON, r#"{"user_id":"alice"}"#),
    with_body("POST", "/login", FORM, "user_id=alice"),
    route("GET", "/api/me"),
    route("GET", "/api/sessions"),
    with_body(
        "PATCH",
        "/api/session/claims",
        JSON,
        r#"{"custom_claims":{"role":"viewer"}}"#,
    ),
    with_body("POST", "/api/session/step-up", JSON, r#"{"factor":"otp"}"#),
    with_body("POST", "/api/session/step-up", FORM, "factor=otp"),
    route("GET", "/api/sensitive"),
    route("POST", "/logout/others"),
    with_body("POST", "/logout/others", FORM, ""),
    route("POST", "/api/sessions/{session_id}/revoke"),
    with_body("POST", "/api/sessions/{session_id}/revoke", FORM, ""),
    route("POST", "/logout"),
    with_body("POST", "/logout", FORM, ""),
    route("POST", "/logout/all"),
    with_body("POST", "/logout/all", FORM, ""),
    route("GET", "/.well-known/jwks.json"),
    route("GET", "/metrics"),
    route("GET", "/healthz"),
    route("GET", "/api/sample"),
    route("POST", "/dbsc/register"),
    Route {
        headers: &[("sec-secure-session-id", "{session_id}")],
        ..route("POST", "/dbsc/refresh")
    },
];

#[test]
fn the_table_names_every_route_of_the_example() {
    let source = include_str!("../examples/axum_app.rs");
    let mut mounted = Vec::new();
    for call in [".route(\"", ".route_service(\""] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at + call.len()..];
            mounted.push(&rest[..rest.find('"').unwrap()]);
        }
    }
    assert!(mounted.len() > 10, "{mounted:?}");
    for path in mounted {
        assert!(
            ROUTES.iter().any(|r| r.path == path),
            "{path} is mounted by the example but missing from ROUTES"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Fixture

struct App {
    router: Router,
    sessions: Sessions,
    clock: ManualClock,
}

/// The example with device binding on (so its DBSC routes are mounted), in memory.
async fn app() -> App {
    let clock = ManualClock::starting_now();
    let sessions = Sessions::builder()
        .store(MemoryStore::with_clock(clock.clone()))
        .clock(clock.clone())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(Duration::from_secs(300))
        .session_ttl(Duration::from_secs(3600))
        .sliding(true)
        .device_binding(axum_app::dbsc_config())
        .build()
        .unwrap();
    sessions.ready().await;
    App {
        router: axum_app::app(sessions.clone()),
        sessions,
        clock,
    }
}

/// A device key, as a browser holds one for DBSC.
struct Device(EcdsaKeyPair);

impl Device {
    fn new() -> Self {
        Self(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    /// A registration proof for `challenge` and the session `authorization` names.
    fn registration(&self, challenge: &str, authorization: &str) -> String {
        let point = self.0.public_key().as_ref();
        let jwk = json!({
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
        });
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD
                .encode(json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": jwk}).to_string()),
            URL_SAFE_NO_PAD
                .encode(json!({"jti": challenge, "authorization": authorization}).to_string())
        );
        let signature = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }
}

/// A signed-in client: its session and credentials.
struct Client {
    id: String,
    token: String,
    jwt: String,
}

impl Client {
    fn cookies(&self) -> String {
        format!("session_token={}; session_jwt={}", self.token, self.jwt)
    }
}

/// Whether the client's session is only offered device binding (a registration challenge is
/// pending) or bound to a device key (the next refresh's challenge is pending).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Binding {
    Offered,
    Bound,
}

impl App {
    async fn send(&self, request: Request<Body>) -> Answer {
        let response: Response<Body> = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: String::from_utf8_lossy(&axum::body::to_bytes(body, usize::MAX).await.unwrap())
                .into_owned(),
        }
    }

    /// A JSON login through the example, then, for `Binding::Bound`, a device key registered.
    async fn sign_in(&self, user: &str, binding: Binding) -> Client {
        // A second on, so that an earlier "log out everywhere" (a cutoff at its instant) is
        // behind this login.
        self.clock.advance(Duration::from_secs(1));
        let mut login = Request::post("/login")
            .header("content-type", "application/json")
            .body(Body::from(json!({ "user_id": user }).to_string()))
            .unwrap();
        login.extensions_mut().insert(ConnectInfo(
            "203.0.113.7:5000".parse::<SocketAddr>().unwrap(),
        ));
        let answer = self.send(login).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        let body: Value = serde_json::from_str(&answer.body).unwrap();
        let mut client = Client {
            id: body["session"]["session_id"].as_str().unwrap().to_owned(),
            token: body["session_token"].as_str().unwrap().to_owned(),
            jwt: body["session_jwt"].as_str().unwrap().to_owned(),
        };
        assert!(self.pending_challenge(&client).await.is_some());
        if binding == Binding::Bound {
            let challenge = self.pending_challenge(&client).await.unwrap();
            let proof = Device::new().registration(&challenge, &client.id);
            let bound = self
                .sessions
                .bind_device(&client.id.parse().unwrap(), &proof)
                .await
                .unwrap();
            client.jwt = bound.jwt.as_ref().unwrap().expose().to_owned();
            assert!(self.pending_challenge(&client).await.is_some());
        }
        client
    }

    /// The challenge the client's session holds for its next DBSC proof.
    async fn pending_challenge(&self, client: &Client) -> Option<String> {
        let id: SessionId = client.id.parse().unwrap();
        let session = self.sessions.get(&id).await.unwrap()?;
        Some(session.device_binding?.challenge?.value)
    }

    /// `route` as `client` calls it, with the given credential headers.
    async fn call(&self, route: &Route, client: &Client, credentials: &[(&str, String)]) -> Answer {
        let mut request = Request::builder()
            .method(route.method)
            .uri(route.path.replace("{session_id}", &client.id));
        if let Some(content_type) = route.content_type {
            request = request.header("content-type", content_type);
        }
        for (name, value) in route.headers {
            request = request.header(*name, value.replace("{session_id}", &client.id));
        }
        for (name, value) in credentials {
            request = request.header(*name, value);
        }
        let mut request = request.body(Body::from(route.body)).unwrap();
        request.extensions_mut().insert(ConnectInfo(
            "203.0.113.7:5000".parse::<SocketAddr>().unwrap(),
        ));
        self.send(request).await
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Answer {
    fn set_cookies(&self) -> Vec<&str> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Bearer clients get no cookies

/// The bearer credentials of a client, each alone and with the browser's cookies beside it.
fn bearer_cases(client: &Client) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let mut cases = Vec::new();
    for (what, credential) in [("JWT", &client.jwt), ("token", &client.token)] {
        let authorization = ("authorization", format!("Bearer {credential}"));
        cases.push((what, vec![authorization.clone()]));
        cases.push((what, vec![authorization, ("cookie", client.cookies())]));
    }
    cases
}

#[tokio::test]
async fn a_bearer_request_gets_no_cookie_on_any_route() {
    let app = app().await;
    for binding in [Binding::Offered, Binding::Bound] {
        for route in ROUTES {
            // A fresh client per request: logouts and step-ups change the session.
            for case in 0..4 {
                let client = app.sign_in("alice", binding).await;
                let (what, credentials) = bearer_cases(&client).swap_remove(case);
                let answer = app.call(route, &client, &credentials).await;
                assert!(
                    answer.set_cookies().is_empty(),
                    "{} {} ({:?}) with a bearer {what}{} answered {} with {:?}",
                    route.method,
                    route.path,
                    binding,
                    if credentials.len() > 1 {
                        " and cookies"
                    } else {
                        ""
                    },
                    answer.status,
                    answer.set_cookies()
                );
            }
        }
    }
}

/// The crate's endpoints keep the rule themselves, without the layer in front.
#[tokio::test]
async fn the_crate_endpoints_give_a_bearer_request_no_cookie_without_the_layer() {
    use tower_session_jwt::logout::{logout, logout_everywhere, logout_others, revoke_session};
    let app = app().await;
    let sessions = &app.sessions;
    let login = axum::routing::post(
        |sessions: axum::Extension<Sessions>, request: Request<Body>| async move {
            let (parts, _) = request.into_parts();
            let login =
                tower_session_jwt::login::login(&sessions, &parts, "bob", NewSession::new())
                    .await
                    .unwrap();
            let mut response = Response::new(Body::empty());
            login.set_cookies(&mut response);
            response
        },
    );
    let bare = Router::new()
        .route("/login", login)
        .route_service("/logout", logout(sessions))
        .route_service("/logout/all", logout_everywhere(sessions))
        .route_service("/logout/others", logout_others(sessions))
        .route_service(
            "/api/sessions/{session_id}/revoke",
            revoke_session(sessions),
        )
        .route_service(
            "/healthz",
            tower_session_jwt::health::HealthService::new(sessions),
        )
        .route_service(
            "/dbsc/register",
            tower_session_jwt::dbsc::registration(sessions),
        )
        .route_service("/dbsc/refresh", tower_session_jwt::dbsc::refresh(sessions))
        .layer(axum::Extension(sessions.clone()));
    let bare_app = App {
        router: bare,
        sessions: sessions.clone(),
        clock: app.clock.clone(),
    };
    let paths = [
        "/login",
        "/logout",
        "/logout/all",
        "/logout/others",
        "/api/sessions/{session_id}/revoke",
        "/healthz",
        "/dbsc/register",
        "/dbsc/refresh",
    ];
    for binding in [Binding::Offered, Binding::Bound] {
        for path in paths {
            let route = ROUTES.iter().find(|r| r.path == path).unwrap();
            for case in 0..4 {
                let client = app.sign_in("alice", binding).await;
                let (what, credentials) = bearer_cases(&client).swap_remove(case);
                let answer = bare_app.call(route, &client, &credentials).await;
                assert!(
                    answer.set_cookies().is_empty(),
                    "{path} ({binding:?}, bearer {what}, {} headers) answered {} with {:?}",
                    credentials.len(),
                    answer.status,
                    answer.set_cookies()
                );
            }
        }
    }
}

/// The layer has the last word: a handler behind it that sets session cookies without asking
/// how the request was authenticated still sends none to a bearer client.
#[tokio::test]
async fn the_layer_removes_session_cookies_a_handler_sets_for_a_bearer_request() {
    let app = app().await;
    let client = app.sign_in("alice", Binding::Offered).await;
    let sessions = app.sessions.clone();
    let careless = Router::new()
        .route(
            "/rotate",
            axum::routing::post(
                |current: tower_session_jwt::layer::CurrentSession,
                 sessions: axum::Extension<Sessions>| async move {
                    let changed = sessions.rotate(&current.session_id).await.unwrap();
                    let mut response = Response::new(Body::empty());
                    // Careless: the cookies as for a browser, whoever asked.
                    let as_for_a_browser = http::HeaderMap::new();
                    let cookies = tower_session_jwt::cookies::SessionCookies::new(
                        &sessions,
                        &as_for_a_browser,
                    );
                    cookies.set(&mut response, &changed);
                    // Not a session cookie: the application's own, left alone.
                    response
                        .headers_mut()
                        .append(header::SET_COOKIE, "theme=dark".parse().unwrap());
                    response
                },
            ),
        )
        .layer(tower_session_jwt::SessionLayer::new(sessions.clone()))
        .layer(axum::Extension(sessions.clone()));
    let careless = App {
        router: careless,
        sessions,
        clock: app.clock.clone(),
    };
    let route = route("POST", "/rotate");
    let answer = careless
        .call(
            &route,
            &client,
            &[("authorization", format!("Bearer {}", client.jwt))],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.set_cookies(), ["theme=dark"]);
    // A cookie client still gets the handler's cookies.
    let client = app.sign_in("alice", Binding::Offered).await;
    let answer = careless
        .call(&route, &client, &[("cookie", client.cookies())])
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.set_cookies().len(), 3, "{:?}", answer.set_cookies());
}

// ---------------------------------------------------------------------------------------------
// No pending DBSC challenge in any answer

#[tokio::test]
async fn no_answer_carries_the_pending_device_challenge() {
    let app = app().await;
    for binding in [Binding::Offered, Binding::Bound] {
        for route in ROUTES {
            for case in 0..4 {
                let client = app.sign_in("alice", binding).await;
                let credentials = match case {
                    0 => vec![("cookie", client.cookies())],
                    1 => vec![("authorization", format!("Bearer {}", client.jwt))],
                    2 => vec![("authorization", format!("Bearer {}", client.token))],
                    _ => vec![("cookie", format!("session_token={}", client.token))],
                };
                let before = app.pending_challenge(&client).await.unwrap();
                let answer = app.call(route, &client, &credentials).await;
                let after = app.pending_challenge(&client).await;
                for challenge in std::iter::once(before).chain(after) {
                    let leaked_in_body = answer.body.contains(&challenge);
                    // The DBSC protocol's own headers hand a challenge to the browser, which
                    // needs the device key to use it; everything else must not carry one.
                    let leaked_in_headers = answer.headers.iter().any(|(name, value)| {
                        !name.as_str().starts_with("secure-session-")
                            && value.to_str().is_ok_and(|v| v.contains(&challenge))
                    });
                    assert!(
                        !leaked_in_body && !leaked_in_headers,
                        "{} {} ({binding:?}, credentials {case}) answered {} with the pending \
                         challenge: {}",
                        route.method,
                        route.path,
                        answer.status,
                        answer.body
                    );
                }
            }
        }
    }
}

#[test]
fn the_client_view_drops_the_challenge_and_the_store_keeps_it() {
    let mut session: tower_session_jwt::Session = serde_json::from_value(json!({
        "session_id": "session-abc",
        "user_id": "alice",
        "started_at": "2026-01-01T00:00:00Z",
        "last_accessed_at": "2026-01-01T00:00:00Z",
        "expires_at": "2026-01-02T00:00:00Z",
        "device_binding": {
            "challenge": {"value": "pending-challenge", "issued_at": "2026-01-01T00:00:00Z"}
        },
        "version": 1
    }))
    .unwrap();
    // The store's serialisation keeps it: the next proof is checked against it.
    assert!(
        serde_json::to_string(&session)
            .unwrap()
            .contains("pending-challenge")
    );
    // Offered, not bound: nothing of the binding is shown.
    let view = serde_json::to_value(session.public_view()).unwrap();
    assert!(!view.to_string().contains("pending-challenge"), "{view}");
    assert!(view.get("device_binding").is_none(), "{view}");
    assert_eq!(view["user_id"], "alice");
    assert_eq!(view["version"], 1);
    // Bound: the key and when, without the challenge.
    let binding = session.device_binding.as_mut().unwrap();
    binding.key = Some(
        serde_json::from_value(json!({"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"})).unwrap(),
    );
    let view = serde_json::to_value(session.public_view()).unwrap();
    assert!(!view.to_string().contains("pending-challenge"), "{view}");
    assert_eq!(view["device_binding"]["key"]["kty"], "EC");
    // The view is the session otherwise, field for field.
    let mut expected = serde_json::to_value(&session).unwrap();
    expected["device_binding"]
        .as_object_mut()
        .unwrap()
        .remove("challenge");
    assert_eq!(view, expected);
}

// ---------------------------------------------------------------------------------------------
// Repeated Sec-Fetch-Site and Origin

#[tokio::test]
async fn repeated_fetch_metadata_or_origin_with_differing_values_is_cross_site() {
    let app = app().await;
    let login = with_body("POST", "/login", JSON, r#"{"user_id":"mallory"}"#);
    let logout = route("POST", "/logout");
    let repeated: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "same-origin, cross-site")],
        &[("sec-fetch-site", "cross-site, same-origin")],
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "cross-site"),
        ],
        &[("sec-fetch-site", "none"), ("sec-fetch-site", "same-site")],
        &[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("origin", "https://evil.example"),
        ],
        &[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000, https://evil.example"),
        ],
        &[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000 https://evil.example"),
        ],
    ];
    for headers in repeated {
        let client = app.sign_in("alice", Binding::Offered).await;
        let credentials: Vec<(&str, String)> =
            headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        let answer = app.call(&login, &client, &credentials).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "login {headers:?}");
        let mut with_cookies = credentials.clone();
        with_cookies.push(("cookie", client.cookies()));
        let answer = app.call(&logout, &client, &with_cookies).await;
        assert_eq!(answer.status, StatusCode::FORBIDDEN, "logout {headers:?}");
        // Still signed in.
        let me = app
            .call(
                &route("GET", "/api/me"),
                &client,
                &[("cookie", client.cookies())],
            )
            .await;
        assert_eq!(me.status, StatusCode::OK, "{headers:?}");
    }
    // The same value repeated is that value.
    let same: &[&[(&str, &str)]] = &[
        &[
            ("sec-fetch-site", "same-origin"),
            ("sec-fetch-site", "same-origin"),
        ],
        &[("sec-fetch-site", "same-origin, same-origin")],
        &[
            ("host", "127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
            ("origin", "http://127.0.0.1:3000"),
        ],
    ];
    for headers in same {
        let client = app.sign_in("alice", Binding::Offered).await;
        let credentials: Vec<(&str, String)> =
            headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect();
        let answer = app.call(&login, &client, &credentials).await;
        assert_eq!(answer.status, StatusCode::OK, "login {headers:?}");
        let mut with_cookies = credentials.clone();
        with_cookies.push(("cookie", client.cookies()));
        let answer = app.call(&logout, &client, &with_cookies).await;
        assert_eq!(answer.status, StatusCode::NO_CONTENT, "logout {headers:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Reserved claims

/// Every name at the top level of a minted JWT's payload (besides the custom claims).
fn top_level_names(jwt: &str) -> Vec<String> {
    let payload = jwt.split('.').nth(1).unwrap();
    let payload: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    payload.as_object().unwrap().keys().cloned().collect()
}

#[tokio::test]
async fn every_name_the_crate_writes_at_the_top_of_a_jwt_is_reserved() {
    let app = app().await;
    // A session with a factor and a custom claim, so that every name the crate may write is
    // there.
    let client = app.sign_in("alice", Binding::Offered).await;
    let answer = app
        .call(
            &with_body(
                "PATCH",
                "/api/session/claims",
                JSON,
                r#"{"custom_claims":{"role":"admin"}}"#,
            ),
            &client,
            &[("cookie", client.cookies())],
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    let body: Value = serde_json::from_str(&answer.body).unwrap();
    let names = top_level_names(body["session_jwt"].as_str().unwrap());
    assert!(names.iter().any(|n| n == "session"), "{names:?}");
    for name in names.iter().filter(|n| *n != "role") {
        assert!(
            RESERVED_CLAIMS.contains(&name.as_str()),
            "`{name}` is written into every JWT but not reserved"
        );
    }
    assert!(RESERVED_CLAIMS.contains(&"version"));
}

#[tokio::test]
async fn reserved_custom_claims_are_refused_by_create_change_and_the_example() {
    let app = app().await;
    let client = app.sign_in("alice", Binding::Offered).await;
    let id: SessionId = client.id.parse().unwrap();
    // `version` by name too: the session's own version, beside the JWT's top-level names.
    for name in RESERVED_CLAIMS.iter().chain(&["version"]) {
        let claims = json!({ *name: 1 });
        let refused = |result: Result<(), SessionError>| match result {
            Err(SessionError::InvalidCustomClaims(
                tower_session_jwt::session::CustomClaimsError::Reserved(n),
            )) => assert_eq!(n, *name),
            other => panic!("{name}: {other:?}"),
        };
        refused(
            app.sessions
                .create("alice", NewSession::new().custom_claims(claims.clone()))
                .await
                .map(drop),
        );
        refused(
            app.sessions
                .update_claims(&id, claims.clone())
                .await
                .map(drop),
        );
        refused(
            app.sessions
                .change(
                    &id,
                    tower_session_jwt::sessions::SessionChange::new().claims(claims.clone()),
                )
                .await
                .map(drop),
        );
        let body = json!({ "custom_claims": claims }).to_string();
        let patch = Route {
            body: Box::leak(body.into_boxed_str()),
            ..with_body("PATCH", "/api/session/claims", JSON, "")
        };
        let answer = app
            .call(&patch, &client, &[("cookie", client.cookies())])
            .await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            answer.body
        );
        let error: Value = serde_json::from_str(&answer.body).unwrap();
        assert_eq!(error["error"], "invalid_custom_claims", "{name}");
        let login = Route {
            body: Box::leak(
                json!({"user_id": "alice", "custom_claims": {*name: 1}})
                    .to_string()
                    .into_boxed_str(),
            ),
            ..with_body("POST", "/login", JSON, "")
        };
        let answer = app.call(&login, &client, &[]).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{name}: {}",
            answer.body
        );
    }
    // The session kept its claims.
    let session = app.sessions.get(&id).await.unwrap().unwrap();
    assert!(session.custom_claims.is_empty());
}
