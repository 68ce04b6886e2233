//! The session lifecycle (issue: change a live session and have every instance honour it at
//! once): claims changes, factors and step-up (RFC 9470), token rotation, sign out other
//! devices, extension, the per-user session cap, paginated listing and session events, through
//! the engine and through the example's HTTP contract. Two-instance checks over shared stores
//! are in `redis_instances.rs` and `postgres_instances.rs`.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use futures_util::future::join_all;
use serde_json::{Map, Value, json};
use tower::ServiceExt as _;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::cookies::{SessionCookies, refresh_cookies};
use tower_session_jwt::events::{RevokeReason, RevokedBy, SessionEvent, SessionEventKind};
use tower_session_jwt::session::{AuthenticationFactor, CustomClaimsError};
use tower_session_jwt::sessions::{AuthPath, CredentialSource, Credentials, SessionChange};
use tower_session_jwt::store::{PageRequest, SessionLimit, WhenFull};
use tower_session_jwt::{AuthError, MemoryStore, NewSession, SessionError, Sessions, SigningKey};

const JWT_TTL: Duration = Duration::from_secs(300);

fn builder(clock: &ManualClock) -> tower_session_jwt::SessionsBuilder {
    Sessions::builder()
        .store(MemoryStore::with_clock(clock.clone()))
        .clock(clock.clone())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(JWT_TTL)
        .session_ttl(Duration::from_secs(3600))
        .sliding(true)
}

async fn engine() -> (Sessions, ManualClock) {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock).build().unwrap();
    sessions.ready().await;
    (sessions, clock)
}

fn password(clock: &ManualClock) -> AuthenticationFactor {
    AuthenticationFactor::of_type("password", tower_session_jwt::clock::Clock::now(clock)).unwrap()
}

/// The JWT's payload, decoded (the test trusts it: it was just minted).
fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// Whether the opaque token, and the JWT, each authenticate alone.
async fn accepted(sessions: &Sessions, token: &str, jwt: &str) -> [bool; 2] {
    [
        sessions.authenticate_token(token).await.is_ok(),
        sessions.authenticate_jwt(jwt).await.is_ok(),
    ]
}

fn cookies<'a>(jwt: &'a str, token: &'a str) -> Credentials<'a> {
    Credentials::new()
        .with_jwt(jwt, CredentialSource::Cookie)
        .with_token(token, CredentialSource::Cookie)
}

// ---------------------------------------------------------------------------------------------
// Engine

#[tokio::test]
async fn a_claims_change_refuses_older_jwts_and_token_holders_get_the_new_claims() {
    let (sessions, _clock) = engine().await;
    let created = sessions
        .create(
            "alice",
            NewSession::new().custom_claims(json!({"role": "viewer", "trial": true})),
        )
        .await
        .unwrap();
    let id = &created.session.session_id;
    let changed = sessions
        .update_claims(id, json!({"role": "admin", "trial": null, "org": 7}))
        .await
        .unwrap();
    assert_eq!(
        Value::Object(changed.session.custom_claims.clone()),
        json!({"role": "admin", "org": 7}),
        "merge: set, add, and null deletes"
    );
    assert!(changed.token.is_none(), "a claims change keeps the token");

    // A JWT-only client: refused at once.
    assert!(matches!(
        sessions.authenticate_jwt(created.jwt.expose()).await,
        Err(AuthError::Revoked)
    ));
    // The JWT the change handed back carries the new claims.
    let fresh = sessions
        .authenticate_jwt(changed.jwt.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(fresh.custom_claims["role"], "admin");
    // A browser with both cookies: the old JWT fails over to the token, which re-mints.
    let browser = cookies(created.jwt.expose(), created.token.expose());
    let outcome = sessions.authenticate(&browser).await.unwrap();
    assert_eq!(outcome.path, AuthPath::Store);
    assert_eq!(outcome.session.custom_claims["role"], "admin");
    let reminted = outcome
        .jwt
        .clone()
        .expect("a fresh JWT for the cookie client");
    assert_eq!(payload(reminted.expose())["role"], "admin");
    assert!(payload(reminted.expose()).get("trial").is_none());
    assert!(!refresh_cookies(&sessions, &browser, &outcome).is_empty());
    // ... and the re-minted JWT is accepted on the fast path.
    let next = sessions
        .authenticate(&cookies(reminted.expose(), created.token.expose()))
        .await
        .unwrap();
    assert_eq!(next.path, AuthPath::Jwt);
}

#[tokio::test]
async fn a_refused_claims_change_changes_nothing() {
    let (sessions, _clock) = engine().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let id = &created.session.session_id;
    for bad in [
        json!({"sub": "mallory"}),
        json!({"amr": ["hwk"]}),
        json!({"blob": "x".repeat(5000)}),
        json!(["role", "admin"]),
        json!("admin"),
    ] {
        let error = sessions.update_claims(id, bad).await.unwrap_err();
        assert_eq!(error.status(), StatusCode::BAD_REQUEST, "{error}");
    }
    // A patch that is not an object says so.
    assert!(matches!(
        sessions
            .change(id, SessionChange::new().claims(json!(null)))
            .await,
        Err(SessionError::InvalidCustomClaims(
            CustomClaimsError::NotAnObject { found: "null" }
        ))
    ));
    // Claims that fit the limit but not a browser's 4 KiB cookie.
    let error = sessions
        .update_claims(id, json!({"a": "x".repeat(2000), "b": "y".repeat(1900)}))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            SessionError::JwtTooLarge { .. } | SessionError::InvalidCustomClaims(_)
        ),
        "{error:?}"
    );
    assert!(
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .is_ok()
    );
    let stored = sessions.get(id).await.unwrap().unwrap();
    assert_eq!(stored.version, 0, "nothing was written");
    // A gone session cannot be changed.
    sessions.revoke(id).await.unwrap();
    assert!(matches!(
        sessions.update_claims(id, Map::new()).await,
        Err(SessionError::UnknownSession)
    ));
}

#[tokio::test]
async fn concurrent_changes_on_two_instances_lose_nothing() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let key = SigningKey::generate_ed25519().unwrap();
    let make = || {
        Sessions::builder()
            .store(store.clone())
            .clock(clock.clone())
            .signing_key(key.clone())
            .sliding(true)
            .build()
            .unwrap()
    };
    let (a, b) = (make(), make());
    let created = a.create("alice", NewSession::new()).await.unwrap();
    let id = created.session.session_id.clone();
    // Due for a touch (last access a JWT lifetime ago), so the token path writes too.
    clock.advance(JWT_TTL + Duration::from_secs(1));
    let changes = (0..24).map(|i| {
        let (sessions, id) = (if i % 2 == 0 { a.clone() } else { b.clone() }, id.clone());
        async move {
            sessions
                .update_claims(&id, json!({ format!("k{i}"): i }))
                .await
                .unwrap();
        }
    });
    let touches = (0..8).map(|_| {
        let (sessions, token) = (b.clone(), created.token.expose().to_owned());
        async move {
            sessions.authenticate_token(&token).await.unwrap();
        }
    });
    futures_util::future::join(join_all(changes), join_all(touches)).await;
    let stored = a.get(&id).await.unwrap().unwrap();
    for i in 0..24 {
        assert_eq!(
            stored.custom_claims[&format!("k{i}")],
            i,
            "change {i} was lost to a concurrent write"
        );
    }
    assert!(stored.version >= 24);
}

#[tokio::test]
async fn step_up_records_the_factor_rotates_the_token_and_the_jwt_says_so() {
    let (sessions, clock) = engine().await;
    let created = sessions
        .create("alice", NewSession::new().factor(password(&clock)))
        .await
        .unwrap();
    // The JWT names the factor (format 2: its type alone, authenticated when the session
    // started); the session read from it derives `amr` and `auth_time`.
    let claims = payload(created.jwt.expose());
    assert_eq!(claims["session"][2], json!(["password"]));
    let read = sessions
        .authenticate_jwt(created.jwt.expose())
        .await
        .unwrap();
    assert_eq!(read.amr(), ["pwd"]);
    assert_eq!(read.auth_time(), Some(created.session.started_at));

    clock.advance(Duration::from_secs(400));
    let guard = tower_session_jwt::step_up::RecentAuth::new(&sessions, Duration::from_secs(300));
    let stale = sessions
        .authenticate_token(created.token.expose())
        .await
        .unwrap();
    let challenge = guard.check(&stale.session).unwrap_err();
    let response = challenge.to_response::<String>();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let www = response.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        www.starts_with(r#"Bearer error="insufficient_user_authentication""#),
        "{www}"
    );
    assert!(www.contains(r#"max_age="300""#), "{www}");

    let otp =
        AuthenticationFactor::of_type("otp", tower_session_jwt::clock::Clock::now(&clock)).unwrap();
    let stepped = sessions
        .step_up(&created.session.session_id, otp)
        .await
        .unwrap();
    let new_token = stepped.token.as_ref().expect("step-up rotates the token");
    assert!(guard.check(&stepped.session).is_ok());
    assert!(
        guard
            .clone()
            .of_types(["webauthn"])
            .check(&stepped.session)
            .is_err(),
        "a recent otp is not a recent webauthn"
    );
    let stepped_jwt = stepped.jwt.as_ref().unwrap().expose();
    let claims = payload(stepped_jwt);
    // A time in a JWT: the whole second below it, less the session start's milliseconds.
    let fraction = time::Duration::milliseconds(stepped.session.started_at.millisecond().into());
    let otp_at = (stepped.session.last_accessed_at - fraction).unix_timestamp();
    assert_eq!(
        claims["session"][2],
        json!(["password", ["otp", otp_at]]),
        "the step-up factor carries its own time"
    );
    let read = sessions.authenticate_jwt(stepped_jwt).await.unwrap();
    assert_eq!(read.amr(), ["pwd", "otp", "mfa"]);
    assert_eq!(read.auth_time(), Some(stepped.session.last_accessed_at));
    assert_eq!(
        read.authentication_factors,
        stepped.session.authentication_factors
    );
    // The old token fails at once; the old JWT too; the new ones work.
    assert!(matches!(
        sessions.authenticate_token(created.token.expose()).await,
        Err(AuthError::UnknownSession)
    ));
    assert!(
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .is_err()
    );
    let via_new = sessions
        .authenticate_token(new_token.expose())
        .await
        .unwrap();
    assert_eq!(via_new.session.authentication_factors.len(), 2);
    assert!(
        sessions
            .authenticate_jwt(stepped.jwt.as_ref().unwrap().expose())
            .await
            .is_ok()
    );
    // A malformed factor name is refused before anything is written.
    assert!(
        AuthenticationFactor::of_type("One Time!", tower_session_jwt::clock::Clock::now(&clock))
            .is_err()
    );
}

#[tokio::test]
async fn rotation_keeps_the_session_and_retires_both_old_credentials() {
    let (sessions, _clock) = engine().await;
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let rotated = sessions.rotate(&created.session.session_id).await.unwrap();
    assert_eq!(rotated.session.session_id, created.session.session_id);
    let token = rotated.token.clone().unwrap();
    assert_ne!(token.expose(), created.token.expose());
    assert_eq!(
        accepted(&sessions, created.token.expose(), created.jwt.expose()).await,
        [false, false]
    );
    assert_eq!(
        accepted(
            &sessions,
            token.expose(),
            rotated.jwt.as_ref().unwrap().expose()
        )
        .await,
        [true, true]
    );
    assert_eq!(
        SessionCookies::new(&sessions, &http::HeaderMap::new())
            .values(&rotated)
            .len(),
        2,
        "a rotation hands a browser both cookies"
    );
}

#[tokio::test]
async fn extension_moves_expiry_later_only_and_never_past_the_cap() {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock)
        .max_lifetime(Duration::from_secs(7200))
        .build()
        .unwrap();
    let created = sessions.create("alice", NewSession::new()).await.unwrap();
    let id = &created.session.session_id;
    let start = created.session.started_at;
    let shorter = sessions
        .extend_for(id, Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(
        shorter.session.expires_at, created.session.expires_at,
        "never shortened"
    );
    let longer = sessions
        .extend_for(id, Duration::from_secs(5400))
        .await
        .unwrap();
    assert_eq!(longer.session.expires_at, start + Duration::from_secs(5400));
    let capped = sessions
        .extend_for(id, Duration::from_secs(86_400))
        .await
        .unwrap();
    assert_eq!(capped.session.expires_at, start + Duration::from_secs(7200));
    assert!(matches!(
        sessions.extend_for(id, Duration::ZERO).await,
        Err(SessionError::InvalidTtl)
    ));
    // An extension alone leaves the JWTs minted before valid.
    assert!(
        sessions
            .authenticate_jwt(created.jwt.expose())
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn signing_out_other_devices_keeps_exactly_the_current_session() {
    let (sessions, _clock) = engine().await;
    let current = sessions.create("alice", NewSession::new()).await.unwrap();
    let others: Vec<_> = join_all((0..3).map(|_| sessions.create("alice", NewSession::new())))
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let mut gone = sessions.revoke_others(&current.session).await.unwrap();
    gone.sort();
    let mut expected: Vec<_> = others
        .iter()
        .map(|o| o.session.session_id.clone())
        .collect();
    expected.sort();
    assert_eq!(gone, expected);
    for other in &others {
        assert_eq!(
            accepted(&sessions, other.token.expose(), other.jwt.expose()).await,
            [false, false]
        );
    }
    for kept in [&current, &bob] {
        assert_eq!(
            accepted(&sessions, kept.token.expose(), kept.jwt.expose()).await,
            [true, true]
        );
    }
    let listed = sessions.list("alice").await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].session_id, current.session.session_id);
}

#[tokio::test]
async fn the_session_cap_revokes_the_oldest_or_refuses() {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock)
        .session_limit(SessionLimit::new(3, WhenFull::RevokeOldest))
        .build()
        .unwrap();
    let mut made = Vec::new();
    for _ in 0..3 {
        made.push(sessions.create("alice", NewSession::new()).await.unwrap());
        clock.advance(Duration::from_secs(1));
    }
    let newest = sessions.create("alice", NewSession::new()).await.unwrap();
    assert!(
        matches!(
            sessions.authenticate_jwt(made[0].jwt.expose()).await,
            Err(AuthError::Revoked)
        ),
        "the evicted session's JWT fails at once"
    );
    assert!(
        sessions
            .authenticate_token(made[0].token.expose())
            .await
            .is_err()
    );
    assert!(sessions.authenticate_jwt(newest.jwt.expose()).await.is_ok());
    assert_eq!(sessions.list("alice").await.unwrap().len(), 3);

    let strict = builder(&clock)
        .session_limit(SessionLimit::new(2, WhenFull::Refuse))
        .build()
        .unwrap();
    strict.create("bob", NewSession::new()).await.unwrap();
    strict.create("bob", NewSession::new()).await.unwrap();
    let refused = strict.create("bob", NewSession::new()).await.unwrap_err();
    assert!(matches!(refused, SessionError::SessionLimitReached));
    assert_eq!(refused.status(), StatusCode::CONFLICT);
}

#[tokio::test]
async fn the_default_cap_holds_under_concurrent_logins() {
    let (sessions, _clock) = engine().await;
    let results = join_all((0..150).map(|_| sessions.create("busy", NewSession::new()))).await;
    assert!(results.iter().all(Result::is_ok));
    let mut total = 0;
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let found = sessions.list_page("busy", &page).await.unwrap();
        total += found.sessions.len();
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(total, SessionLimit::DEFAULT_MAX as usize);
}

#[tokio::test]
async fn events_name_what_happened_and_never_carry_a_credential() {
    let clock = ManualClock::starting_now();
    let log: Arc<Mutex<Vec<SessionEvent>>> = Arc::default();
    let sink = log.clone();
    let sessions = builder(&clock)
        .session_limit(SessionLimit::new(2, WhenFull::RevokeOldest))
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    let first = sessions
        .create("alice", NewSession::new().factor(password(&clock)))
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let second = sessions.create("alice", NewSession::new()).await.unwrap();
    let id = second.session.session_id.clone();
    sessions
        .update_claims(&id, json!({"role": "admin"}))
        .await
        .unwrap();
    let otp =
        AuthenticationFactor::of_type("otp", tower_session_jwt::clock::Clock::now(&clock)).unwrap();
    let stepped = sessions.step_up(&id, otp).await.unwrap();
    clock.advance(JWT_TTL);
    sessions
        .authenticate_token(stepped.token.as_ref().unwrap().expose())
        .await
        .unwrap();
    clock.advance(Duration::from_secs(1));
    let third = sessions.create("alice", NewSession::new()).await.unwrap(); // evicts the first
    sessions.revoke_others(&third.session).await.unwrap();

    let log = log.lock().unwrap();
    let kinds: Vec<String> = log
        .iter()
        .map(|e| {
            serde_json::to_value(e).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for expected in [
        "created",
        "claims_changed",
        "factor_added",
        "rotated",
        "refreshed",
        "extended",
        "revoked",
    ] {
        assert!(
            kinds.iter().any(|k| k == expected),
            "no {expected} event in {kinds:?}"
        );
    }
    let revoked: Vec<(&str, RevokedBy, RevokeReason)> = log
        .iter()
        .filter_map(|e| match e.kind {
            SessionEventKind::Revoked { by, reason } => Some((e.session_id.as_str(), by, reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        revoked,
        vec![
            (
                first.session.session_id.as_str(),
                RevokedBy::Limit,
                RevokeReason::SessionLimit
            ),
            (id.as_str(), RevokedBy::User, RevokeReason::SignedOutOthers),
        ]
    );
    let claims = log
        .iter()
        .find(|e| matches!(e.kind, SessionEventKind::ClaimsChanged { .. }))
        .unwrap();
    assert_eq!(
        serde_json::to_value(claims).unwrap()["keys"],
        json!(["role"]),
        "claim names, not values"
    );
    let everything = serde_json::to_string(&*log).unwrap();
    for secret in [
        first.token.expose(),
        first.jwt.expose(),
        second.token.expose(),
        stepped.token.as_ref().unwrap().expose(),
        stepped.jwt.as_ref().unwrap().expose(),
        "admin",
    ] {
        assert!(!everything.contains(secret), "an event carried a secret");
    }
}

// ---------------------------------------------------------------------------------------------
// The example's HTTP contract

struct App {
    router: Router,
    clock: ManualClock,
}

async fn app() -> App {
    let clock = ManualClock::starting_now();
    let sessions = builder(&clock).build().unwrap();
    sessions.ready().await;
    App {
        router: axum_app::app_with_step_up(sessions, Duration::from_secs(300)),
        clock,
    }
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| cookie::Cookie::parse(v.to_str().unwrap().to_owned()).unwrap())
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }
}

impl App {
    async fn send(
        &self,
        method: &str,
        uri: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                builder = builder.header("content-type", "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        let response = self
            .router
            .clone()
            .oneshot(builder.body(body).unwrap())
            .await
            .unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        }
    }

    /// JSON login: `(token, jwt, body)`.
    async fn login(&self, body: Value) -> (String, String, Value) {
        let answer = self.send("POST", "/login", &[("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")], Some(body)).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
        (
            answer.body["session_token"].as_str().unwrap().to_owned(),
            answer.body["session_jwt"].as_str().unwrap().to_owned(),
            answer.body,
        )
    }
}

fn jar(token: &str, jwt: &str) -> String {
    format!("session_token={token}; session_jwt={jwt}")
}

#[tokio::test]
async fn http_login_records_the_factor_and_me_shows_it() {
    let app = app().await;
    let (_, jwt, body) = app.login(json!({"user_id": "alice"})).await;
    assert_eq!(
        body["session"]["authentication_factors"][0]["type"],
        "password"
    );
    let me = app
        .send(
            "GET",
            "/api/me",
            &[("authorization", &format!("Bearer {jwt}"))],
            None,
        )
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["authentication_factors"][0]["type"], "password");
    assert_eq!(
        me.body["authentication_factors"][0]["delivery_method"],
        "knowledge"
    );
    let (_, _, body) = app
        .login(json!({"user_id": "bob", "factor": "magic_link"}))
        .await;
    assert_eq!(
        body["session"]["authentication_factors"][0]["delivery_method"],
        "email"
    );
    let bad = app
        .send(
            "POST",
            "/login",
            &[],
            Some(json!({"user_id": "eve", "factor": "Bad Factor"})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.body["error"], "invalid_factor");
}

#[tokio::test]
async fn http_claims_patch_for_cookie_and_bearer_clients() {
    let app = app().await;
    let (token, jwt, _) = app
        .login(json!({"user_id": "alice", "custom_claims": {"role": "viewer"}}))
        .await;
    let cookies = jar(&token, &jwt);
    let answer = app
        .send(
            "PATCH",
            "/api/session/claims",
            &[("cookie", &cookies)],
            Some(json!({"custom_claims": {"role": "admin", "team": "a"}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.body);
    assert_eq!(
        answer.body["session"]["custom_claims"],
        json!({"role": "admin", "team": "a"})
    );
    let new_jwt = answer.body["session_jwt"].as_str().unwrap().to_owned();
    assert_eq!(
        answer.cookie("session_jwt").as_deref(),
        Some(new_jwt.as_str())
    );
    // The old JWT alone: 401 invalid_token.
    let old = app
        .send(
            "GET",
            "/api/me",
            &[("authorization", &format!("Bearer {jwt}"))],
            None,
        )
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        old.headers[header::WWW_AUTHENTICATE],
        r#"Bearer error="invalid_token""#
    );
    // The browser that still sends the old JWT with its token: the new claims, and a new JWT.
    let me = app
        .send("GET", "/api/me", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["custom_claims"]["role"], "admin");
    assert!(me.cookie("session_jwt").is_some());

    // A bearer client: no cookies, the token kept.
    let bearer = format!("Bearer {token}");
    let answer = app
        .send(
            "PATCH",
            "/api/session/claims",
            &[("authorization", &bearer)],
            Some(json!({"custom_claims": {"team": null}})),
        )
        .await;
    assert_eq!(answer.status, StatusCode::OK);
    assert!(
        answer.headers.get(header::SET_COOKIE).is_none(),
        "bearer clients get no cookies"
    );
    assert_eq!(
        answer.body["session"]["custom_claims"],
        json!({"role": "admin"})
    );
    let me = app
        .send("GET", "/api/me", &[("authorization", &bearer)], None)
        .await;
    assert_eq!(me.body["custom_claims"], json!({"role": "admin"}));

    for (body, status) in [
        (
            json!({"custom_claims": {"iss": "x"}}),
            StatusCode::BAD_REQUEST,
        ),
        (
            json!({"custom_claims": "role=admin"}),
            StatusCode::BAD_REQUEST,
        ),
        (json!({"claims": {}}), StatusCode::BAD_REQUEST),
    ] {
        let answer = app
            .send(
                "PATCH",
                "/api/session/claims",
                &[("authorization", &bearer)],
                Some(body.clone()),
            )
            .await;
        assert_eq!(answer.status, status, "{body}");
    }
    let anonymous = app
        .send(
            "PATCH",
            "/api/session/claims",
            &[],
            Some(json!({"custom_claims": {}})),
        )
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn http_step_up_guard_answers_per_rfc_9470_and_step_up_rotates() {
    let app = app().await;
    let (token, jwt, _) = app.login(json!({"user_id": "alice"})).await;
    let cookies = jar(&token, &jwt);
    let fresh = app
        .send("GET", "/api/sensitive", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(
        fresh.status,
        StatusCode::OK,
        "just signed in with a password"
    );
    assert_eq!(fresh.body["amr"], json!(["pwd"]));

    app.clock.advance(Duration::from_secs(301));
    let stale = app
        .send("GET", "/api/sensitive", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(stale.status, StatusCode::UNAUTHORIZED);
    let www = stale.headers[header::WWW_AUTHENTICATE].to_str().unwrap();
    assert!(
        www.starts_with(r#"Bearer error="insufficient_user_authentication""#),
        "{www}"
    );
    assert!(www.contains(r#"max_age="300""#), "{www}");
    assert_eq!(stale.body["error"], "insufficient_user_authentication");
    let anonymous = app.send("GET", "/api/sensitive", &[], None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers[header::WWW_AUTHENTICATE], "Bearer");

    let stepped = app
        .send(
            "POST",
            "/api/session/step-up",
            &[("cookie", &cookies)],
            Some(json!({"factor": "otp"})),
        )
        .await;
    assert_eq!(stepped.status, StatusCode::OK, "{}", stepped.body);
    let new_token = stepped.body["session_token"].as_str().unwrap().to_owned();
    let new_jwt = stepped.body["session_jwt"].as_str().unwrap().to_owned();
    assert_ne!(new_token, token, "rotated");
    assert_eq!(
        stepped.cookie("session_token").as_deref(),
        Some(new_token.as_str())
    );
    assert_eq!(
        stepped.cookie("session_jwt").as_deref(),
        Some(new_jwt.as_str())
    );
    let types: Vec<&str> = stepped.body["session"]["authentication_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["password", "otp"]);

    let ok = app
        .send(
            "GET",
            "/api/sensitive",
            &[("cookie", &jar(&new_token, &new_jwt))],
            None,
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK);
    assert_eq!(ok.body["amr"], json!(["pwd", "otp", "mfa"]));
    // The pre-step-up credentials: both refused.
    let old = app
        .send("GET", "/api/me", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    let bad = app
        .send(
            "POST",
            "/api/session/step-up",
            &[("cookie", &jar(&new_token, &new_jwt))],
            Some(json!({"factor": 7})),
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn http_logout_others_and_paginated_listing() {
    let app = app().await;
    let (token, jwt, first) = app.login(json!({"user_id": "alice"})).await;
    let current_id = first["session"]["session_id"].as_str().unwrap().to_owned();
    let mut others = Vec::new();
    // 100 sessions: the default cap, all of them live.
    for _ in 0..99 {
        app.clock.advance(Duration::from_millis(3));
        others.push(app.login(json!({"user_id": "alice"})).await);
    }
    let cookies = jar(&token, &jwt);
    let mut seen = Vec::new();
    let mut uri = "/api/sessions".to_owned();
    let mut pages = 0;
    loop {
        let page = app.send("GET", &uri, &[("cookie", &cookies)], None).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        let sessions = page.body["sessions"].as_array().unwrap();
        assert!(sessions.len() <= 50, "the default page is at most 50");
        for s in sessions {
            assert_eq!(s["device"], "Chrome on Linux");
            seen.push(s["session_id"].as_str().unwrap().to_owned());
        }
        pages += 1;
        match page.body["next_cursor"].as_str() {
            Some(cursor) => uri = format!("/api/sessions?limit=30&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 3, "50, then 30 and 20");
    assert_eq!(seen.len(), 100);
    let mut unique = seen.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 100, "every session exactly once");
    assert_eq!(
        seen.last(),
        Some(&current_id),
        "newest first: the first login comes last"
    );
    for bad in [
        "?limit=0",
        "?limit=101",
        "?limit=ten",
        "?cursor=garbage",
        "?cursor=1.%2F..",
        "?limit=5&limit=6",
        "?page=2",
    ] {
        let answer = app
            .send(
                "GET",
                &format!("/api/sessions{bad}"),
                &[("cookie", &cookies)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{bad}");
    }

    let out = app
        .send("POST", "/logout/others", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(out.status, StatusCode::NO_CONTENT);
    assert!(
        out.headers.get(header::SET_COOKIE).is_none(),
        "the current session keeps its cookies"
    );
    let me = app
        .send("GET", "/api/me", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(me.status, StatusCode::OK);
    for (other_token, other_jwt, _) in others.iter().step_by(17) {
        for credential in [other_token, other_jwt] {
            let answer = app
                .send(
                    "GET",
                    "/api/me",
                    &[("authorization", &format!("Bearer {credential}"))],
                    None,
                )
                .await;
            assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
        }
    }
    let listed = app
        .send("GET", "/api/sessions", &[("cookie", &cookies)], None)
        .await;
    assert_eq!(listed.body["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(listed.body["next_cursor"], Value::Null);
    assert_eq!(
        app.send("POST", "/logout/others", &[], None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[test]
fn device_names_read_like_a_person_would_say_them() {
    for (ua, name) in [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
            "Chrome on Linux",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
            "Safari on iPhone",
        ),
        (
            "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
            "Safari on macOS",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0",
            "Firefox on Windows",
        ),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
            "Edge on Windows",
        ),
        (
            "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
            "Chrome on Android",
        ),
        (
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0 Mobile/15E148 Safari/604.1",
            "Chrome on iPhone",
        ),
        ("curl/8.5.0", "curl"),
        ("", "Unknown device"),
        ("something/1.0", "Unknown device"),
    ] {
        assert_eq!(axum_app::device_name(ua), name, "{ua}");
    }
}
