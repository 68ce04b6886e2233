//! Device binding (DBSC) without a browser: proofs made here with ES256 and RS256 keys, checked
//! by the engine and by the registration and refresh endpoints (good proofs; wrong key; replayed,
//! unknown and expired challenges; wrong `typ` and `alg`; quoted and bare header values; the JWK
//! in the header or in the payload), what binding changes for the token path, the events, and
//! single use under a race between two instances.

mod common;

use std::time::Duration;

use axum::body::Body;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::device::Device;
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt as _;
use serde_json::{Value, json};
use tower::ServiceExt as _;
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::cookies::{SessionCookies, refresh_cookies};
use tower_session_jwt::dbsc;
use tower_session_jwt::events::{SessionEvent, SessionEventKind};
use tower_session_jwt::proof::ProofError;
use tower_session_jwt::sessions::DbscConfig;
use tower_session_jwt::sessions::{CookieConfig, CredentialSource, Credentials};
use tower_session_jwt::{AuthError, ConfigError, MemoryStore, NewSession, SessionError, Sessions};

struct Fixture {
    sessions: Sessions,
    clock: ManualClock,
    events: std::sync::Arc<std::sync::Mutex<Vec<SessionEvent>>>,
}

fn fixture_on(store: MemoryStore, clock: ManualClock) -> Fixture {
    let events = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = events.clone();
    let sessions = common::builder(&clock, store)
        .sliding(true)
        .device_binding(DbscConfig::new())
        .on_event(move |e| sink.lock().unwrap().push(e.clone()))
        .build()
        .unwrap();
    Fixture {
        sessions,
        clock,
        events,
    }
}

fn fixture() -> Fixture {
    let clock = ManualClock::starting_now();
    fixture_on(MemoryStore::with_clock(clock.clone()), clock)
}

/// A browser's login: the session, its token and JWT, and the registration offer's challenge.
struct Login {
    id: String,
    token: String,
    jwt: String,
    offer: String,
    challenge: String,
}

async fn login(sessions: &Sessions) -> Login {
    let (parts, ()) = Request::post("/login")
        .header("user-agent", "Chromium/156")
        .body(())
        .unwrap()
        .into_parts();
    let login = tower_session_jwt::login::login(sessions, &parts, "alice", NewSession::new())
        .await
        .unwrap();
    let offer = login
        .registration_offer()
        .expect("a registration offer")
        .to_str()
        .unwrap()
        .to_owned();
    let challenge = offer
        .split(';')
        .find_map(|p| p.strip_prefix("challenge="))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    Login {
        id: login.created.session.session_id.to_string(),
        token: login.created.token.expose().to_owned(),
        jwt: login.created.jwt.expose().to_owned(),
        offer,
        challenge,
    }
}

/// A `Set-Cookie` value's `Max-Age`.
fn max_age(cookie: &str) -> i64 {
    cookie
        .split("; ")
        .find_map(|a| a.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap()
}

fn cookies(token: &str) -> String {
    format!("session_token={token}")
}

async fn post(
    service: dbsc::DbscHandler,
    cookie: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, String) {
    let mut request = Request::post("/dbsc").header("cookie", cookie);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response: Response<Body> = service
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, String::from_utf8(body.to_vec()).unwrap())
}

/// The challenge in a `Secure-Session-Challenge` value (`"<c>";id="<id>"`).
fn challenge_of(headers: &http::HeaderMap) -> String {
    let value = headers[dbsc::CHALLENGE_HEADER].to_str().unwrap();
    let (challenge, id) = value.split_once(';').unwrap();
    assert!(id.starts_with("id=\"session-"), "{value}");
    challenge.trim_matches('"').to_owned()
}

/// Registers `device` for `login` through the endpoint; returns the next challenge.
async fn register(sessions: &Sessions, login: &Login, device: &Device) -> String {
    let proof = device.registration(&login.challenge, &login.id);
    let (status, headers, body) = post(
        dbsc::registration(sessions),
        &cookies(&login.token),
        &[("secure-session-response", &proof)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    challenge_of(&headers)
}

fn proof_error(result: Result<impl std::fmt::Debug, SessionError>) -> ProofError {
    match result {
        Err(SessionError::DeviceProof(e)) => e,
        other => panic!("expected a proof error, got {other:?}"),
    }
}

#[tokio::test]
async fn login_offers_registration_with_a_stored_challenge() {
    let f = fixture();
    let login = login(&f.sessions).await;
    assert_eq!(
        login.offer,
        format!(
            r#"(ES256 RS256);path="/dbsc/register";challenge="{}";authorization="{}""#,
            login.challenge, login.id
        )
    );
    // Without device binding configured, no offer.
    let plain = common::builder(&f.clock, MemoryStore::new())
        .build()
        .unwrap();
    let (parts, ()) = Request::post("/login").body(()).unwrap().into_parts();
    let l = tower_session_jwt::login::login(&plain, &parts, "bob", NewSession::new())
        .await
        .unwrap();
    assert!(l.registration_offer().is_none());
}

#[tokio::test]
async fn registration_binds_the_session_and_the_token_alone_stops_working() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let device = Device::es256();
    let proof = device.registration(&login.challenge, &login.id);
    // Bare and quoted header values both arrive.
    let quoted = format!("\"{proof}\"");
    let (status, headers, body) = post(
        dbsc::registration(&f.sessions),
        &cookies(&login.token),
        &[("secure-session-response", &quoted)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let config: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(config["session_identifier"], login.id);
    assert_eq!(config["refresh_url"], "/dbsc/refresh");
    assert_eq!(config["scope"]["include_site"], false);
    assert_eq!(config["credentials"][0]["type"], "cookie");
    assert_eq!(config["credentials"][0]["name"], "session_jwt");
    assert_eq!(
        config["credentials"][0]["attributes"],
        "Path=/; Secure; HttpOnly; SameSite=Lax"
    );
    // The bound cookie is set, living as long as its JWT (300 s), not the session (3600 s).
    let set: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(set.len(), 1, "{set:?}");
    assert!(set[0].starts_with("session_jwt="), "{set:?}");
    assert!(max_age(set[0]) > 290 && max_age(set[0]) <= 300, "{set:?}");
    assert!(set[0].contains("Secure") && set[0].contains("HttpOnly") && set[0].contains("Path=/"));
    let fresh_jwt = set[0]["session_jwt=".len()..].split(';').next().unwrap();
    challenge_of(&headers);

    // The JWT from before the binding lives out its lifetime (the registering browser may
    // still be sending it); the fresh one works.
    assert!(f.sessions.authenticate_jwt(&login.jwt).await.is_ok());
    assert!(f.sessions.authenticate_jwt(fresh_jwt).await.is_ok());
    // The token alone no longer authenticates or re-mints: not as a cookie, not as a bearer,
    // not beside an expired JWT.
    for source in [CredentialSource::Cookie, CredentialSource::Header] {
        let credentials = Credentials::new().with_token(&login.token, source);
        assert!(
            matches!(
                f.sessions.authenticate(&credentials).await,
                Err(AuthError::DeviceBound)
            ),
            "{source:?}"
        );
    }
    f.clock.advance(Duration::from_secs(400));
    let expired_pair = Credentials::new()
        .with_jwt(fresh_jwt, CredentialSource::Cookie)
        .with_token(&login.token, CredentialSource::Cookie);
    assert!(matches!(
        f.sessions.authenticate(&expired_pair).await,
        Err(AuthError::DeviceBound)
    ));
    assert_eq!(AuthError::DeviceBound.status(), 401);

    // Registering again is refused.
    let again = device.registration(&login.challenge, &login.id);
    let (status, _, body) = post(
        dbsc::registration(&f.sessions),
        &cookies(&login.token),
        &[("secure-session-response", &again)],
    )
    .await;
    assert_eq!(status, 400);
    assert!(body.contains("already_bound"), "{body}");

    // The listing shows the binding; the event log has it.
    let listed = f.sessions.list("alice").await.unwrap();
    assert!(listed[0].is_device_bound());
    let events = f.events.lock().unwrap();
    assert!(events.iter().any(|e| matches!(
        &e.kind,
        SessionEventKind::DeviceBound { algorithm, key_thumbprint }
            if algorithm == "ES256" && key_thumbprint.len() == 43
    )));
}

#[tokio::test]
async fn refresh_answers_a_challenge_then_mints_for_a_proof_once() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let device = Device::es256();
    let seeded = register(&f.sessions, &login, &device).await;
    let id_header = ("sec-secure-session-id", login.id.as_str());

    // No proof: 403 with a challenge (never 401, which would end the browser's session). The
    // pending challenge is handed out again while it is fresh.
    let (status, headers, _) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[id_header],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(challenge_of(&headers), seeded);

    // A proof over it: 200, a fresh bound cookie, the next challenge.
    f.clock.advance(Duration::from_secs(200));
    let proof = device.refresh(&seeded);
    let quoted_id = format!("\"{}\"", login.id);
    let (status, headers, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[
            ("sec-secure-session-id", quoted_id.as_str()),
            ("secure-session-response", proof.as_str()),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let set: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    // Only the bound JWT cookie, never the token cookie: a refresh of an older session still
    // in flight when the browser signs in again must not put that session's token back over
    // the new login's. Sliding expiry still moved the session.
    assert!(
        !set.iter().any(|c| c.starts_with("session_token=")),
        "{set:?}"
    );
    let id: tower_session_jwt::session::SessionId = login.id.parse().unwrap();
    let stored = f.sessions.get(&id).await.unwrap().unwrap();
    // An hour from now, on the session's grid: whole seconds after its start.
    let slid_to = tower_session_jwt::clock::Clock::now(&f.clock) + Duration::from_secs(3600);
    let short = slid_to - stored.expires_at;
    assert!(short >= time::Duration::ZERO && short < time::Duration::SECOND);
    assert_eq!(
        (stored.expires_at - stored.started_at).subsec_nanoseconds(),
        0
    );
    let jwt_cookie = set.iter().find(|c| c.starts_with("session_jwt=")).unwrap();
    assert!(
        max_age(jwt_cookie) > 290 && max_age(jwt_cookie) <= 300,
        "{jwt_cookie}"
    );
    let jwt = jwt_cookie["session_jwt=".len()..]
        .split(';')
        .next()
        .unwrap();
    assert!(f.sessions.authenticate_jwt(jwt).await.is_ok());
    let next = challenge_of(&headers);
    assert_ne!(next, seeded);

    // The same proof again: its challenge is used, so 403 with the next one.
    let (status, headers, _) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[id_header, ("secure-session-response", proof.as_str())],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(challenge_of(&headers), next);

    // Another key over the right challenge: 401 (ends the browser's binding).
    let thief = Device::es256();
    let (status, _, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[
            id_header,
            ("secure-session-response", &thief.refresh(&next)),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("bad_signature"), "{body}");

    // An expired challenge: 403 with a fresh one, which then works.
    f.clock.advance(Duration::from_secs(601));
    let stale = device.refresh(&next);
    let (status, headers, _) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[id_header, ("secure-session-response", stale.as_str())],
    )
    .await;
    assert_eq!(status, 403);
    let renewed = challenge_of(&headers);
    assert_ne!(renewed, next);
    let (status, _, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&login.token),
        &[
            id_header,
            ("secure-session-response", &device.refresh(&renewed)),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let events = f.events.lock().unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == SessionEventKind::DeviceRefreshed)
            .count(),
        2
    );
}

#[tokio::test]
async fn refresh_refuses_another_sessions_cookie_a_revoked_session_and_bad_requests() {
    let f = fixture();
    let alice = login(&f.sessions).await;
    let device = Device::es256();
    let challenge = register(&f.sessions, &alice, &device).await;
    // A newer login on the same browser: its token cookie must not let the older binding mint.
    let newer = login(&f.sessions).await;
    let (status, _, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&newer.token),
        &[
            ("sec-secure-session-id", &alice.id),
            ("secure-session-response", &device.refresh(&challenge)),
        ],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("session_mismatch"), "{body}");

    // No session id, a malformed one, no cookie, a GET.
    let (status, _, _) = post(dbsc::refresh(&f.sessions), &cookies(&alice.token), &[]).await;
    assert_eq!(status, 400);
    let (status, _, _) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&alice.token),
        &[("sec-secure-session-id", "../../etc")],
    )
    .await;
    assert_eq!(status, 400);
    // A token cookie that names no live session.
    let (status, _, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies("bm90LWEtdG9rZW4tYXQtYWxsLWp1c3QtdGVzdGluZy1ieXRlcw"),
        &[("sec-secure-session-id", &alice.id)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("unknown_session"), "{body}");
    // No cookie at all: the proof alone authenticates a refresh (the key is the credential).
    let (status, headers, _) = post(
        dbsc::refresh(&f.sessions),
        "other=1",
        &[("sec-secure-session-id", &alice.id)],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(challenge_of(&headers), challenge);
    let (status, headers, body) = post(
        dbsc::refresh(&f.sessions),
        "other=1",
        &[
            ("sec-secure-session-id", &alice.id),
            ("secure-session-response", &device.refresh(&challenge)),
        ],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let set: Vec<&str> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert!(
        set.len() == 1 && set[0].starts_with("session_jwt="),
        "{set:?}"
    );
    let challenge = challenge_of(&headers);
    let get = dbsc::refresh(&f.sessions)
        .oneshot(Request::get("/dbsc/refresh").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(get.status(), 405);

    // A session that was never bound gets no challenge.
    let (status, _, body) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&newer.token),
        &[("sec-secure-session-id", &newer.id)],
    )
    .await;
    assert_eq!(status, 401);
    assert!(body.contains("not_bound"), "{body}");

    // Revoked: the refresh fails at once, with or without a proof.
    f.sessions.revoke(&alice.id.parse().unwrap()).await.unwrap();
    let (status, _, _) = post(
        dbsc::refresh(&f.sessions),
        &cookies(&alice.token),
        &[
            ("sec-secure-session-id", &alice.id),
            ("secure-session-response", &device.refresh(&challenge)),
        ],
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn registration_proofs_are_checked_field_by_field() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let id: tower_session_jwt::session::SessionId = login.id.parse().unwrap();
    let device = Device::es256();
    let other = Device::es256();
    let c = login.challenge.as_str();
    let header = |alg: &str, typ: &str, jwk: Value| json!({"alg": alg, "typ": typ, "jwk": jwk});
    // The payload of a good registration proof; each case below breaks one thing.
    let claims = json!({"jti": c, "authorization": login.id});
    let cases: Vec<(&str, String, ProofError)> = vec![
        (
            "signed by another key than the one it carries",
            other.jws(header("ES256", "dbsc+jwt", device.jwk()), claims.clone()),
            ProofError::BadSignature,
        ),
        (
            "a challenge never issued",
            device.registration("bm90LWlzc3VlZC1oZXJl", &login.id),
            ProofError::UnknownChallenge,
        ),
        (
            "another session's authorization",
            device.registration(c, "session-someone-else"),
            ProofError::WrongAuthorization,
        ),
        (
            "no authorization",
            device.jws(header("ES256", "dbsc+jwt", device.jwk()), json!({"jti": c})),
            ProofError::WrongAuthorization,
        ),
        (
            "typ jwt",
            device.jws(header("ES256", "jwt", device.jwk()), claims.clone()),
            ProofError::WrongType,
        ),
        (
            "no typ",
            device.jws(json!({"alg": "ES256", "jwk": device.jwk()}), claims.clone()),
            ProofError::WrongType,
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD.encode(
                    json!({"alg": "none", "typ": "dbsc+jwt", "jwk": device.jwk()}).to_string()
                ),
                URL_SAFE_NO_PAD.encode(claims.to_string())
            ),
            ProofError::UnsupportedAlgorithm,
        ),
        (
            "alg HS256",
            device.jws(header("HS256", "dbsc+jwt", device.jwk()), claims.clone()),
            ProofError::UnsupportedAlgorithm,
        ),
        (
            "alg RS256 over an EC key",
            device.jws(header("RS256", "dbsc+jwt", device.jwk()), claims.clone()),
            ProofError::UnsupportedAlgorithm,
        ),
        (
            "no key anywhere",
            device.jws(json!({"alg": "ES256", "typ": "dbsc+jwt"}), claims.clone()),
            ProofError::InvalidKey,
        ),
        (
            "two different keys",
            device.jws(
                header("ES256", "dbsc+jwt", device.jwk()),
                json!({"jti": c, "authorization": login.id, "key": other.jwk()}),
            ),
            ProofError::InvalidKey,
        ),
        (
            "a private key",
            device.jws(
                header("ES256", "dbsc+jwt", {
                    let mut jwk = device.jwk();
                    jwk["d"] = json!("AAAA");
                    jwk
                }),
                claims.clone(),
            ),
            ProofError::InvalidKey,
        ),
        (
            "a P-384 key",
            device.jws(
                header("ES256", "dbsc+jwt", {
                    let mut jwk = device.jwk();
                    jwk["crv"] = json!("P-384");
                    jwk
                }),
                claims.clone(),
            ),
            ProofError::InvalidKey,
        ),
        ("not a JWS", "abc".into(), ProofError::Malformed),
        ("four segments", "a.b.c.d".into(), ProofError::Malformed),
        ("bad base64", "!!.??.**".into(), ProofError::Malformed),
        (
            "huge",
            format!(
                "{}.x.y",
                "a".repeat(tower_session_jwt::proof::MAX_PROOF_LEN)
            ),
            ProofError::Malformed,
        ),
        (
            "no jti",
            device.jws(
                header("ES256", "dbsc+jwt", device.jwk()),
                json!({"authorization": login.id}),
            ),
            ProofError::Malformed,
        ),
    ];
    for (what, proof, expected) in cases {
        assert_eq!(
            proof_error(f.sessions.bind_device(&id, &proof).await),
            expected,
            "{what}"
        );
    }
    // A signature of the wrong length, and a valid-looking signature over other bytes.
    let good = device.registration(c, &login.id);
    let (input, _) = good.rsplit_once('.').unwrap();
    for signature in [
        URL_SAFE_NO_PAD.encode([0u8; 63]),
        URL_SAFE_NO_PAD.encode(device.sign(b"something else")),
    ] {
        assert_eq!(
            proof_error(
                f.sessions
                    .bind_device(&id, &format!("{input}.{signature}"))
                    .await
            ),
            ProofError::BadSignature
        );
    }
    // A proof's own `iat`: absurd values are refused without overflowing; a little skew is
    // fine.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    for iat in [i64::MIN, i64::MAX, now - 3600, now + 3600] {
        let proof = device.jws(
            header("ES256", "dbsc+jwt", device.jwk()),
            json!({"jti": c, "authorization": login.id, "iat": iat}),
        );
        assert_eq!(
            proof_error(f.sessions.bind_device(&id, &proof).await),
            ProofError::ExpiredChallenge,
            "iat {iat}"
        );
    }
    // Expired: past the challenge lifetime (10 minutes).
    f.clock.advance(Duration::from_secs(601));
    assert_eq!(
        proof_error(f.sessions.bind_device(&id, &good).await),
        ProofError::ExpiredChallenge
    );
    assert!(
        !f.sessions
            .get(&id)
            .await
            .unwrap()
            .unwrap()
            .is_device_bound()
    );
}

#[tokio::test]
async fn the_key_may_come_in_the_payload_and_rs256_works_end_to_end() {
    let f = fixture();
    // ES256 with the JWK as the draft's payload `key`.
    let first = login(&f.sessions).await;
    let device = Device::es256();
    let proof = device.jws(
        json!({"alg": "ES256", "typ": "dbsc+jwt"}),
        json!({"jti": first.challenge, "authorization": first.id, "key": device.jwk()}),
    );
    let id = first.id.parse().unwrap();
    let bound = f.sessions.bind_device(&id, &proof).await.unwrap();
    assert!(bound.session.is_device_bound());

    // RS256, registration and refresh.
    let second = login(&f.sessions).await;
    let rsa = Device::rs256();
    let next = register(&f.sessions, &second, &rsa).await;
    let id = second.id.parse().unwrap();
    let refreshed = f
        .sessions
        .refresh_device(&id, &rsa.refresh(&next))
        .await
        .unwrap();
    assert!(
        f.sessions
            .authenticate_jwt(refreshed.jwt.as_ref().unwrap().expose())
            .await
            .is_ok()
    );

    // Only ES256 offered: RS256 proofs are refused.
    let clock = ManualClock::starting_now();
    let es_only = common::builder(&clock, MemoryStore::with_clock(clock.clone()))
        .device_binding(DbscConfig::new().rs256(false))
        .build()
        .unwrap();
    let third = login(&es_only).await;
    assert!(third.offer.starts_with("(ES256);"), "{}", third.offer);
    let result = es_only
        .bind_device(
            &third.id.parse().unwrap(),
            &rsa.registration(&third.challenge, &third.id),
        )
        .await;
    assert_eq!(proof_error(result), ProofError::UnsupportedAlgorithm);
}

#[tokio::test]
async fn a_skewed_iat_within_a_minute_is_accepted() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let device = Device::es256();
    let soon = tower_session_jwt::clock::Clock::now(&f.clock).unix_timestamp() + 30;
    let proof = device.jws(
        json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()}),
        json!({"jti": login.challenge, "authorization": login.id, "iat": soon}),
    );
    let id = login.id.parse().unwrap();
    assert!(f.sessions.bind_device(&id, &proof).await.is_ok());
}

/// A token lookup that read the session just before it was bound, and whose touch then finds
/// the record changed, must not mint a JWT for the bound record: the touch's write is held until
/// the binding (on another instance over the same store) has landed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_touch_racing_a_binding_mints_nothing_for_the_token() {
    let clock = ManualClock::starting_now();
    let memory = MemoryStore::with_clock(clock.clone());
    let binder = fixture_on(memory.clone(), clock.clone());
    let flaky = common::FlakyStore::new(memory);
    let reader = common::builder(&clock, flaky.clone())
        .device_binding(DbscConfig::new())
        .token_cache_capacity(0)
        .build()
        .unwrap();
    let login = login(&binder.sessions).await;
    clock.advance(Duration::from_secs(301)); // a touch is due
    let (reached, go) = flaky.pause_next_update();
    let token = login.token.clone();
    let lookup = tokio::spawn(async move { reader.authenticate_token(&token).await });
    reached.await.unwrap(); // read the unbound record; its touch waits to write
    register(&binder.sessions, &login, &Device::es256()).await;
    go.send(()).unwrap();
    let outcome = lookup.await.unwrap();
    assert!(
        matches!(outcome, Err(AuthError::DeviceBound)),
        "{:?}",
        outcome.map(|r| r.session.version)
    );
}

/// An administrator changes a bound session's claims: the browser's bound JWT is refused and
/// its token cannot re-mint, so the layer strips the JWT cookie, which makes a DBSC browser
/// refresh before its next request instead of failing until the cookie expires.
#[tokio::test]
async fn a_refused_bound_jwt_cookie_is_stripped_so_the_browser_refreshes() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let device = Device::es256();
    let proof = device.registration(&login.challenge, &login.id);
    let id: tower_session_jwt::session::SessionId = login.id.parse().unwrap();
    let bound = f.sessions.bind_device(&id, &proof).await.unwrap();
    let patch = json!({"role": "admin"});
    f.sessions.update_claims(&id, patch).await.unwrap();

    let cookie = format!(
        "session_token={}; session_jwt={}",
        login.token,
        bound.jwt.as_ref().unwrap().expose()
    );
    for optional in [false, true] {
        let layer = tower_session_jwt::SessionLayer::new(f.sessions.clone());
        let layer = if optional { layer.optional() } else { layer };
        let app = tower::ServiceBuilder::new()
            .layer(layer)
            .service_fn(|_: Request<Body>| async {
                Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
            });
        let response = app
            .oneshot(
                Request::get("/")
                    .header("cookie", &cookie)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        if !optional {
            assert_eq!(response.status(), 401);
        }
        let set: Vec<&str> = response
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        assert!(
            set[0].starts_with("session_jwt=;") && set[0].contains("Max-Age=0"),
            "{set:?}"
        );
    }
    // A bearer client gets no cookie, even a removal.
    let layer = tower_session_jwt::SessionLayer::new(f.sessions.clone());
    let app = tower::ServiceBuilder::new()
        .layer(layer)
        .service_fn(|_: Request<Body>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        });
    let response = app
        .oneshot(
            Request::get("/")
                .header("authorization", format!("Bearer {}", login.token))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers().get("set-cookie").is_none());
}

#[tokio::test]
async fn refresh_after_a_claims_change_mints_an_accepted_jwt() {
    let f = fixture();
    let login = login(&f.sessions).await;
    let device = Device::es256();
    let next = register(&f.sessions, &login, &device).await;
    let id: tower_session_jwt::session::SessionId = login.id.parse().unwrap();
    let patch = json!({"role": "admin"});
    f.sessions.update_claims(&id, patch).await.unwrap();
    let refreshed = f
        .sessions
        .refresh_device(&id, &device.refresh(&next))
        .await
        .unwrap();
    let session = f
        .sessions
        .authenticate_jwt(refreshed.jwt.as_ref().unwrap().expose())
        .await
        .unwrap();
    assert_eq!(session.custom_claims["role"], "admin");
}

#[tokio::test]
async fn unbinding_gives_the_token_back_its_power() {
    let f = fixture();
    let login = login(&f.sessions).await;
    register(&f.sessions, &login, &Device::es256()).await;
    let id = login.id.parse().unwrap();
    let changed = f.sessions.unbind_device(&id).await.unwrap();
    assert!(!changed.session.is_device_bound());
    // No proof, no JWT: the unbinding removes the JWT cookie, and the token mints the next.
    assert!(changed.jwt.is_none());
    let cookies = SessionCookies::new(&f.sessions, &http::HeaderMap::new()).values(&changed);
    let cookie = cookies[0].to_str().unwrap();
    assert!(cookie.starts_with("session_jwt=;"), "{cookie}");
    let refreshed = f.sessions.authenticate_token(&login.token).await.unwrap();
    assert_eq!(refreshed.session.session_id, id);
    // The JWT cookie lives as long as the session again.
    let browser = Credentials::new().with_token(&login.token, CredentialSource::Cookie);
    let outcome = f.sessions.authenticate(&browser).await.unwrap();
    let cookies = refresh_cookies(&f.sessions, &browser, &outcome);
    let cookie = cookies[0].to_str().unwrap();
    assert!(max_age(cookie) > 3500, "{cookie}");
    assert!(
        f.events
            .lock()
            .unwrap()
            .iter()
            .any(|e| e.kind == SessionEventKind::DeviceUnbound)
    );
}

/// Two instances over one store take the same refresh proof at the same moment: the challenge
/// is consumed by exactly one of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_challenge_is_single_use_across_instances_under_a_race() {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let a = fixture_on(store.clone(), clock.clone());
    let b = fixture_on(store, clock);
    let device = Device::es256();
    for round in 0..25 {
        let login = login(&a.sessions).await;
        let next = register(&a.sessions, &login, &device).await;
        let id: tower_session_jwt::session::SessionId = login.id.parse().unwrap();
        let proof = device.refresh(&next);
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(2));
        let race = |sessions: Sessions| {
            let (id, proof, barrier) = (id.clone(), proof.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                sessions.refresh_device(&id, &proof).await
            })
        };
        let (x, y) = (race(a.sessions.clone()), race(b.sessions.clone()));
        let (x, y) = (x.await.unwrap(), y.await.unwrap());
        let won = [x.is_ok(), y.is_ok()].iter().filter(|ok| **ok).count();
        assert_eq!(won, 1, "round {round}: {x:?} / {y:?}");
        let lost = if x.is_ok() { y } else { x };
        assert_eq!(proof_error(lost), ProofError::UnknownChallenge);
    }
}

#[tokio::test]
async fn device_binding_needs_secure_cookies_and_sane_paths() {
    let clock = ManualClock::starting_now();
    let build = |config: DbscConfig, cookies: CookieConfig| {
        common::builder(&clock, MemoryStore::new())
            .cookies(cookies)
            .device_binding(config)
            .build()
    };
    assert!(matches!(
        build(DbscConfig::new(), CookieConfig::default().secure(false)),
        Err(ConfigError::InvalidDeviceBinding(_))
    ));
    for bad in [
        DbscConfig::new().registration_path("dbsc"),
        DbscConfig::new().refresh_path("/a\";b"),
        DbscConfig::new().refresh_path("/dbsc/register"),
        DbscConfig::new().challenge_ttl(Duration::ZERO),
        DbscConfig::new().challenge_ttl(Duration::MAX),
        DbscConfig::new().exclude_path("static"),
    ] {
        assert!(
            matches!(
                build(bad.clone(), CookieConfig::default()),
                Err(ConfigError::InvalidDeviceBinding(_))
            ),
            "{bad:?}"
        );
    }
    if let Err(e) = build(DbscConfig::new(), CookieConfig::default()) {
        panic!("{e}");
    }
}
