//! The mint gate: a session bound to a device key (DBSC) gets a JWT that outlives the ones it
//! already has only for a verified proof of that key, whatever public path is asked. Held as a
//! property over arbitrary sequences of every path that can hand out a JWT (the engine's
//! methods, the layer, the DBSC endpoints), with the clock moving between them, and through the
//! example app as the pentest drove it: a copied JWT looped through `PATCH
//! /api/session/claims` and `POST /api/session/step-up`.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;
mod common;

use std::convert::Infallible;
use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::device::Device;
use http::{HeaderMap, Request, Response, StatusCode};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_session_jwt::dbsc::{self, DbscConfig};
use tower_session_jwt::{
    AuthenticationFactor, CredentialSource, Credentials, ManualClock, MemoryStore, NewSession,
    SessionChange, SessionId, SessionLayer, Sessions,
};

/// A JWT's `exp`, read from its payload.
fn exp(jwt: &str) -> i64 {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_i64().expect("exp")
}

/// The JWTs that `Set-Cookie` headers hand out (removals carry none).
fn jwts_in_cookies<'a>(cookies: impl IntoIterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    cookies
        .into_iter()
        .filter_map(|v| v.to_str().ok()?.strip_prefix("session_jwt="))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .filter(|jwt| !jwt.is_empty())
        .collect()
}

fn sessions_on(clock: &ManualClock) -> Sessions {
    common::builder(clock, MemoryStore::with_clock(clock.clone()))
        .sliding(true)
        .device_binding(DbscConfig::new())
        .build()
        .unwrap()
}

/// A browser's login and registration: the session id, its token, and the JWT the registration
/// handed out (the one a thief copies).
struct Bound {
    id: SessionId,
    token: String,
    jwt: String,
}

/// Logs in through [`Sessions::login`] and registers `device` through the DBSC endpoint.
async fn bound_session(sessions: &Sessions, device: &Device) -> Bound {
    let (parts, ()) = Request::post("/login").body(()).unwrap().into_parts();
    let login = sessions
        .login(&parts, "alice", NewSession::new())
        .await
        .unwrap();
    let id = login.created.session.session_id.clone();
    let token = login.created.token.expose().to_owned();
    let challenge = login
        .created
        .session
        .device_binding
        .as_ref()
        .and_then(|b| b.challenge.as_ref())
        .expect("a registration challenge")
        .value
        .clone();
    let response: Response<Body> = dbsc::registration(sessions)
        .oneshot(
            Request::post("/dbsc/register")
                .header("cookie", format!("session_token={token}"))
                .header(
                    "secure-session-response",
                    device.registration(&challenge, id.as_str()),
                )
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let jwt = jwts_in_cookies(response.headers().get_all("set-cookie"))
        .pop()
        .expect("the registration hands out a JWT");
    Bound { id, token, jwt }
}

/// One call an attacker holding the copied credentials (or the application, on their behalf)
/// can make. `OwnerRefresh` is the device's own refresh, the one path that may mint later.
#[derive(Debug, Clone)]
enum Op {
    Advance(u64),
    Claims,
    StepUp,
    StepUpKeepingToken,
    Rotate,
    Extend,
    ClaimsRotateExtend,
    Authenticate(Presented),
    AuthenticateToken,
    AuthenticateJwt,
    Layer(Presented),
    Challenge,
    RegisterAnotherKey,
    RefreshWithAnotherKey,
    RefreshWithoutProof,
    OwnerRefresh,
}

/// The credentials presented, as a cookie client or a bearer would.
#[derive(Debug, Clone, Copy)]
enum Presented {
    JwtCookie,
    JwtHeader,
    TokenCookie,
    TokenHeader,
    BothCookies,
    JwtHeaderTokenCookie,
}

fn op() -> impl Strategy<Value = Op> {
    let presented = prop_oneof![
        Just(Presented::JwtCookie),
        Just(Presented::JwtHeader),
        Just(Presented::TokenCookie),
        Just(Presented::TokenHeader),
        Just(Presented::BothCookies),
        Just(Presented::JwtHeaderTokenCookie),
    ];
    prop_oneof![
        3 => (1u64..400).prop_map(Op::Advance),
        2 => Just(Op::Claims),
        2 => Just(Op::StepUp),
        1 => Just(Op::StepUpKeepingToken),
        2 => Just(Op::Rotate),
        2 => Just(Op::Extend),
        1 => Just(Op::ClaimsRotateExtend),
        3 => presented.clone().prop_map(Op::Authenticate),
        1 => Just(Op::AuthenticateToken),
        1 => Just(Op::AuthenticateJwt),
        3 => presented.prop_map(Op::Layer),
        1 => Just(Op::Challenge),
        1 => Just(Op::RegisterAnotherKey),
        1 => Just(Op::RefreshWithAnotherKey),
        1 => Just(Op::RefreshWithoutProof),
        1 => Just(Op::OwnerRefresh),
    ]
}

/// What the thief holds: every token and JWT any answer handed them.
struct Thief {
    token: String,
    jwt: String,
}

impl Thief {
    fn credentials(&self, presented: Presented) -> Credentials<'_> {
        use CredentialSource::{Cookie, Header};
        match presented {
            Presented::JwtCookie => Credentials::new().with_jwt(&self.jwt, Cookie),
            Presented::JwtHeader => Credentials::new().with_jwt(&self.jwt, Header),
            Presented::TokenCookie => Credentials::new().with_token(&self.token, Cookie),
            Presented::TokenHeader => Credentials::new().with_token(&self.token, Header),
            Presented::BothCookies => Credentials::new()
                .with_jwt(&self.jwt, Cookie)
                .with_token(&self.token, Cookie),
            Presented::JwtHeaderTokenCookie => Credentials::new()
                .with_jwt(&self.jwt, Header)
                .with_token(&self.token, Cookie),
        }
    }

    fn request(&self, presented: Presented) -> Request<Body> {
        let builder = Request::get("/me");
        let (token, jwt) = (&self.token, &self.jwt);
        let builder = match presented {
            Presented::JwtCookie => builder.header("cookie", format!("session_jwt={jwt}")),
            Presented::JwtHeader => builder.header("authorization", format!("Bearer {jwt}")),
            Presented::TokenCookie => builder.header("cookie", format!("session_token={token}")),
            Presented::TokenHeader => builder.header("authorization", format!("Bearer {token}")),
            Presented::BothCookies => builder.header(
                "cookie",
                format!("session_token={token}; session_jwt={jwt}"),
            ),
            Presented::JwtHeaderTokenCookie => builder
                .header("authorization", format!("Bearer {jwt}"))
                .header("cookie", format!("session_token={token}")),
        };
        builder.body(Body::empty()).unwrap()
    }
}

/// Runs `ops` against a freshly bound session and returns the latest `exp` handed out without
/// the device's proof, and the latest handed out for one (registration and owner refreshes).
async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let clock = ManualClock::starting_now();
    let sessions = sessions_on(&clock);
    let device = Device::es256();
    let stranger = Device::es256();
    let bound = bound_session(&sessions, &device).await;
    let id = bound.id.clone();
    let mut proven_exp = exp(&bound.jwt);
    let mut thief = Thief {
        token: bound.token.clone(),
        jwt: bound.jwt.clone(),
    };
    let layer = SessionLayer::new(sessions.clone()).layer_fn();
    let otp = || AuthenticationFactor::of_type("otp", time::OffsetDateTime::now_utc()).unwrap();
    let patch = || json!({"n": 1}).as_object().unwrap().clone();
    for op in ops {
        // Every JWT this step handed out without the device's proof.
        let mut handed: Vec<String> = Vec::new();
        let mut take_changed = |changed: Result<tower_session_jwt::Changed, _>,
                                thief: &mut Thief| {
            if let Ok(changed) = changed {
                let changed: tower_session_jwt::Changed = changed;
                handed.extend(changed.jwt.as_ref().map(|j| j.expose().to_owned()));
                handed.extend(jwts_in_cookies(changed.cookies()));
                if let Some(token) = &changed.token {
                    thief.token = token.expose().to_owned();
                }
            }
        };
        match op.clone() {
            Op::Advance(secs) => clock.advance(Duration::from_secs(secs)),
            Op::Claims => take_changed(sessions.update_claims(&id, patch()).await, &mut thief),
            Op::StepUp => take_changed(sessions.step_up(&id, otp()).await, &mut thief),
            Op::StepUpKeepingToken => take_changed(
                sessions
                    .change(&id, SessionChange::new().factor(otp()).keep_token())
                    .await,
                &mut thief,
            ),
            Op::Rotate => take_changed(sessions.rotate(&id).await, &mut thief),
            Op::Extend => take_changed(
                sessions.extend_for(&id, Duration::from_secs(3600)).await,
                &mut thief,
            ),
            Op::ClaimsRotateExtend => take_changed(
                sessions
                    .change(
                        &id,
                        SessionChange::new()
                            .claims(patch())
                            .rotate_token()
                            .extend_for(Duration::from_secs(3600)),
                    )
                    .await,
                &mut thief,
            ),
            Op::Authenticate(presented) => {
                if let Ok(outcome) = sessions.authenticate(&thief.credentials(presented)).await {
                    handed.extend(outcome.jwt.as_ref().map(|j| j.expose().to_owned()));
                    handed.extend(jwts_in_cookies(outcome.set_cookies()));
                }
            }
            Op::AuthenticateToken => {
                if let Ok(refreshed) = sessions.authenticate_token(&thief.token).await {
                    handed.push(refreshed.jwt.expose().to_owned());
                }
            }
            Op::AuthenticateJwt => {
                // Returns the session only; nothing to collect, but it must not panic.
                let _ = sessions.authenticate_jwt(&thief.jwt).await;
            }
            Op::Layer(presented) => {
                let response = layer.clone().oneshot(thief.request(presented)).await;
                let response = response.unwrap();
                handed.extend(jwts_in_cookies(response.headers().get_all("set-cookie")));
            }
            Op::Challenge => {
                let _ = sessions.device_challenge(&id).await;
            }
            Op::RegisterAnotherKey => {
                // A fresh challenge is what the thief can get; any challenge at all is refused
                // for a bound session.
                if let Ok(challenge) = sessions.device_challenge(&id).await {
                    let proof = stranger.registration(&challenge, id.as_str());
                    take_changed(sessions.bind_device(&id, &proof).await, &mut thief);
                }
            }
            Op::RefreshWithAnotherKey => {
                if let Ok(challenge) = sessions.device_challenge(&id).await {
                    let proof = stranger.refresh(&challenge);
                    take_changed(sessions.refresh_device(&id, &proof).await, &mut thief);
                }
            }
            Op::RefreshWithoutProof => {
                let response: Response<Body> = dbsc::refresh(&sessions)
                    .oneshot(
                        Request::post("/dbsc/refresh")
                            .header("cookie", format!("session_token={}", thief.token))
                            .header("sec-secure-session-id", id.as_str())
                            .body(Body::empty())
                            .unwrap(),
                    )
                    .await
                    .unwrap();
                handed.extend(jwts_in_cookies(response.headers().get_all("set-cookie")));
            }
            Op::OwnerRefresh => {
                if let Ok(challenge) = sessions.device_challenge(&id).await
                    && let Ok(refreshed) = sessions
                        .refresh_device(&id, &device.refresh(&challenge))
                        .await
                {
                    let jwt = refreshed.jwt.expect("a proof gets a JWT");
                    proven_exp = proven_exp.max(exp(jwt.expose()));
                }
                continue;
            }
        }
        for jwt in handed {
            prop_assert!(
                exp(&jwt) <= proven_exp,
                "{op:?} handed out a JWT expiring at {} without the device's proof (latest proven: {proven_exp})",
                exp(&jwt)
            );
            if exp(&jwt) > exp(&thief.jwt) {
                thief.jwt = jwt;
            }
        }
    }
    Ok(())
}

/// A layer that answers `200` to whatever it lets through, as a tower service.
trait LayerFn {
    fn layer_fn(self) -> tower::util::BoxCloneService<Request<Body>, Response<Body>, Infallible>;
}

impl LayerFn for SessionLayer {
    fn layer_fn(self) -> tower::util::BoxCloneService<Request<Body>, Response<Body>, Infallible> {
        let inner = tower::service_fn(|_: Request<Body>| async {
            Ok::<_, Infallible>(Response::new(Body::empty()))
        });
        tower::util::BoxCloneService::new(tower::Layer::layer(&self, inner))
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    /// Bound session + no proof ⇒ no JWT whose `exp` is later than every JWT a proof handed
    /// out, over any sequence of every public path that can hand one out.
    #[test]
    fn a_bound_session_gets_a_later_jwt_only_for_its_devices_proof(
        ops in proptest::collection::vec(op(), 1..24)
    ) {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(run(ops))?;
    }
}

/// Each change path on its own, as a table a reader can check: a change to a bound session
/// without a proof hands out no JWT, refuses every older JWT, and removes the JWT cookie.
#[tokio::test]
async fn every_change_to_a_bound_session_withholds_the_jwt_and_refuses_older_ones() {
    let clock = ManualClock::starting_now();
    let sessions = sessions_on(&clock);
    let otp = || AuthenticationFactor::of_type("otp", time::OffsetDateTime::now_utc()).unwrap();
    let changes: Vec<(&str, SessionChange)> = vec![
        (
            "claims",
            SessionChange::new().claims(json!({"a": 1}).as_object().unwrap().clone()),
        ),
        ("step-up", SessionChange::new().factor(otp())),
        (
            "factor kept token",
            SessionChange::new().factor(otp()).keep_token(),
        ),
        ("rotation", SessionChange::new().rotate_token()),
        (
            "extension",
            SessionChange::new().extend_for(Duration::from_secs(7200)),
        ),
        ("nothing", SessionChange::new()),
    ];
    for (name, change) in changes {
        let device = Device::es256();
        let bound = bound_session(&sessions, &device).await;
        assert!(
            sessions.authenticate_jwt(&bound.jwt).await.is_ok(),
            "{name}"
        );
        let changed = sessions.change(&bound.id, change).await.unwrap();
        assert!(changed.jwt.is_none(), "{name}: a JWT without proof");
        assert!(jwts_in_cookies(changed.cookies()).is_empty(), "{name}");
        let removal = changed
            .cookies()
            .iter()
            .map(|c| c.to_str().unwrap())
            .find(|c| c.starts_with("session_jwt="))
            .unwrap_or_else(|| panic!("{name}: no removal of the JWT cookie"));
        assert!(removal.contains("Max-Age=0"), "{name}: {removal}");
        assert!(
            sessions.authenticate_jwt(&bound.jwt).await.is_err(),
            "{name}: the older JWT still works"
        );
        // The device's proof gets the session going again, with the change in it.
        let challenge = sessions.device_challenge(&bound.id).await.unwrap();
        let refreshed = sessions
            .refresh_device(&bound.id, &device.refresh(&challenge))
            .await
            .unwrap();
        let jwt = refreshed.jwt.expect("a JWT for the proof");
        assert!(
            sessions.authenticate_jwt(jwt.expose()).await.is_ok(),
            "{name}"
        );
    }
}

/// An unbound session keeps getting its JWT from a change, as before.
#[tokio::test]
async fn a_change_to_an_unbound_session_still_mints() {
    let clock = ManualClock::starting_now();
    let sessions = sessions_on(&clock);
    let created = sessions.create("bob", NewSession::new()).await.unwrap();
    let changed = sessions
        .update_claims(
            &created.session.session_id,
            json!({"a": 1}).as_object().unwrap().clone(),
        )
        .await
        .unwrap();
    let jwt = changed.jwt.expect("a JWT");
    assert!(sessions.authenticate_jwt(jwt.expose()).await.is_ok());
}

// ---------------------------------------------------------------------------------------------
// Through the example app, as the pentest drove it.

async fn call(router: &axum::Router, request: Request<Body>) -> (StatusCode, HeaderMap, Value) {
    let response = router.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (parts.status, parts.headers, json)
}

/// A copied JWT of a bound session, looped through the claims PATCH and the step-up with
/// `Authorization: Bearer`, then with the cookies, never comes back later than it was: the
/// answers carry no JWT, and once the copy expires the thief is out.
#[tokio::test]
async fn a_copied_jwt_of_a_bound_session_cannot_be_stretched_through_the_example() {
    let clock = ManualClock::starting_now();
    let sessions = sessions_on(&clock);
    sessions.ready().await;
    let device = Device::es256();
    let bound = bound_session(&sessions, &device).await;
    let router = axum_app::app(sessions.clone());
    let copied_exp = exp(&bound.jwt);
    let mut jwt = bound.jwt.clone();
    for round in 0..6 {
        let bearer = format!("Bearer {jwt}");
        let cookies = format!("session_token={}; session_jwt={jwt}", bound.token);
        let requests = [
            Request::patch("/api/session/claims")
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"custom_claims":{}}"#))
                .unwrap(),
            Request::post("/api/session/step-up")
                .header("authorization", &bearer)
                .header("content-type", "application/json")
                .body(Body::from(r#"{"factor":"otp"}"#))
                .unwrap(),
            Request::patch("/api/session/claims")
                .header("cookie", &cookies)
                .header("content-type", "application/json")
                .header("origin", "http://localhost")
                .header("host", "localhost")
                .body(Body::from(r#"{"custom_claims":{}}"#))
                .unwrap(),
        ];
        for request in requests {
            let (status, headers, body) = call(&router, request).await;
            let mut handed = jwts_in_cookies(headers.get_all("set-cookie"));
            if let Some(minted) = body.get("session_jwt").and_then(Value::as_str) {
                handed.push(minted.to_owned());
            }
            for minted in handed {
                assert!(
                    exp(&minted) <= copied_exp,
                    "round {round}: {status} handed out a later JWT"
                );
                jwt = minted;
            }
        }
        clock.advance(Duration::from_secs(60));
    }
    // Past the copied JWT's lifetime the thief has nothing left.
    let (status, _, _) = call(
        &router,
        Request::get("/api/me")
            .header("authorization", format!("Bearer {jwt}"))
            .body(Body::empty())
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
