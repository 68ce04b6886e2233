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
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::cookies::{SessionCookies, refresh_cookies};
use tower_session_jwt::dbsc;
use tower_session_jwt::session::{AuthenticationFactor, SessionId};
use tower_session_jwt::sessions::DbscConfig;
use tower_session_jwt::sessions::{Changed, CredentialSource, Credentials, SessionChange};
use tower_session_jwt::{MemoryStore, NewSession, SessionLayer, Sessions};

/// A JWT's `exp`, read from its payload.
fn exp(jwt: &str) -> i64 {
    let payload = jwt.split('.').nth(1).expect("a compact JWS");
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_i64().expect("exp")
}

/// The JWTs that `Set-Cookie` headers hand out, whatever the cookie is called (removals carry
/// none).
fn jwts_in_cookies<'a>(cookies: impl IntoIterator<Item = &'a http::HeaderValue>) -> Vec<String> {
    cookies
        .into_iter()
        .filter_map(|v| {
            let (_, rest) = v.to_str().ok()?.split_once('=')?;
            let value = rest.split(';').next()?;
            (value.split('.').count() == 3 && value.len() > 20).then(|| value.to_owned())
        })
        .collect()
}

/// The `Set-Cookie` values that hand a change to a browser.
fn changed_cookies(sessions: &Sessions, changed: &Changed) -> Vec<http::HeaderValue> {
    SessionCookies::new(sessions, &http::HeaderMap::new()).values(changed)
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
    let login = tower_session_jwt::login::login(sessions, &parts, "alice", NewSession::new())
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
    Unbind,
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
        1 => Just(Op::Unbind),
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

/// Runs `ops` against a freshly bound session: only the owner's refresh may hand out a JWT.
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
    let patch = || json!({"n": 1});
    for op in ops {
        // Every JWT this step handed out without the device's proof.
        let mut handed: Vec<String> = Vec::new();
        let mut take_changed = |changed: Result<tower_session_jwt::sessions::Changed, _>,
                                thief: &mut Thief| {
            if let Ok(changed) = changed {
                let changed: tower_session_jwt::sessions::Changed = changed;
                handed.extend(changed.jwt.as_ref().map(|j| j.expose().to_owned()));
                handed.extend(jwts_in_cookies(&changed_cookies(&sessions, &changed)));
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
                let credentials = thief.credentials(presented);
                if let Ok(outcome) = sessions.authenticate(&credentials).await {
                    handed.extend(outcome.jwt.as_ref().map(|j| j.expose().to_owned()));
                    let cookies = refresh_cookies(&sessions, &credentials, &outcome);
                    handed.extend(jwts_in_cookies(&cookies));
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
            Op::Unbind => {
                // An administrator's unbinding mints nothing either; afterwards the session is
                // no longer bound and its token mints again, so the property ends here.
                let changed = sessions.unbind_device(&id).await;
                prop_assert!(changed.is_ok_and(|c| c.jwt.is_none()
                    && jwts_in_cookies(&changed_cookies(&sessions, &c)).is_empty()));
                return Ok(());
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
        // The session is bound from the start: no path but the device's proof hands out any
        // JWT at all, so none can be later than the copied one.
        prop_assert!(
            handed.is_empty(),
            "{op:?} handed out a JWT without the device's proof (expiring at {:?}, latest proven {proven_exp})",
            handed.iter().map(|j| exp(j)).collect::<Vec<_>>()
        );
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
        ("claims", SessionChange::new().claims(json!({"a": 1}))),
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
        let cookies = changed_cookies(&sessions, &changed);
        assert!(jwts_in_cookies(&cookies).is_empty(), "{name}");
        let removal = cookies
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
        .update_claims(&created.session.session_id, json!({"a": 1}))
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

/// The pentest's routes, each on a freshly bound session, with the copied JWT as
/// `Authorization: Bearer` and as the browser's cookie pair: the change is made (`200`), the
/// answer carries `"session_jwt": null` and no JWT cookie, and the copied JWT is refused at
/// once afterwards instead of being stretched.
#[tokio::test]
async fn a_copied_jwt_of_a_bound_session_cannot_be_stretched_through_the_example() {
    let clock = ManualClock::starting_now();
    let sessions = sessions_on(&clock);
    sessions.ready().await;
    let router = axum_app::app(sessions.clone());
    let routes = [
        (
            "PATCH",
            "/api/session/claims",
            r#"{"custom_claims":{"x":1}}"#,
        ),
        ("POST", "/api/session/step-up", r#"{"factor":"otp"}"#),
    ];
    for (method, path, body) in routes {
        for as_bearer in [true, false] {
            let bound = bound_session(&sessions, &Device::es256()).await;
            let request = Request::builder()
                .method(method)
                .uri(path)
                .header("content-type", "application/json")
                .header("host", "localhost");
            let request = if as_bearer {
                request.header("authorization", format!("Bearer {}", bound.jwt))
            } else {
                request.header("origin", "http://localhost").header(
                    "cookie",
                    format!("session_token={}; session_jwt={}", bound.token, bound.jwt),
                )
            };
            let what = format!("{method} {path} (bearer: {as_bearer})");
            let (status, headers, answer) =
                call(&router, request.body(Body::from(body)).unwrap()).await;
            assert_eq!(status, StatusCode::OK, "{what}: {answer}");
            assert_eq!(answer["session_jwt"], Value::Null, "{what}");
            assert!(answer["session"]["session_id"].is_string(), "{what}");
            assert!(
                jwts_in_cookies(headers.get_all("set-cookie")).is_empty(),
                "{what}"
            );
            let (status, _, _) = call(
                &router,
                Request::get("/api/me")
                    .header("authorization", format!("Bearer {}", bound.jwt))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
            assert_eq!(
                status,
                StatusCode::UNAUTHORIZED,
                "{what}: the copy lives on"
            );
        }
    }
}

/// A token lookup in flight while the device binding lands on the same instance: it read the
/// record from before the binding, and must not put it back in the token cache, or the token
/// alone would keep minting from the cache for a JWT lifetime after the binding answered.
#[tokio::test]
async fn a_token_lookup_racing_the_binding_leaves_nothing_to_mint_from() {
    let clock = ManualClock::starting_now();
    let store = common::FlakyStore::new(MemoryStore::with_clock(clock.clone()));
    let build = || {
        common::builder(&clock, store.clone())
            .device_binding(DbscConfig::new())
            .build()
            .unwrap()
    };
    // The login on one instance; the race on another, whose token cache starts empty.
    let (login_instance, sessions) = (build(), build());
    let (parts, ()) = Request::post("/login").body(()).unwrap().into_parts();
    let login =
        tower_session_jwt::login::login(&login_instance, &parts, "alice", NewSession::new())
            .await
            .unwrap();
    let id = login.created.session.session_id.clone();
    let token = login.created.token.expose().to_owned();
    let challenge = login.created.session.device_binding.as_ref().unwrap();
    let proof =
        Device::es256().registration(&challenge.challenge.as_ref().unwrap().value, id.as_str());

    let (reached, go) = store.pause_next_find();
    let lookup = {
        let sessions = sessions.clone();
        let token = token.clone();
        tokio::spawn(async move { sessions.authenticate_token(&token).await })
    };
    reached.await.unwrap(); // the lookup holds the unbound record
    sessions.bind_device(&id, &proof).await.unwrap();
    go.send(()).unwrap();
    // Begun before the binding, the lookup may answer with one JWT (a lifetime at most).
    let _ = lookup.await.unwrap();

    for source in [CredentialSource::Cookie, CredentialSource::Header] {
        let outcome = sessions
            .authenticate(&Credentials::new().with_token(&token, source))
            .await;
        assert!(
            matches!(outcome, Err(tower_session_jwt::AuthError::DeviceBound)),
            "the token authenticated after the binding: {outcome:?}"
        );
    }
}
