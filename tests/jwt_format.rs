//! The session JWT's format: compact (format 2), read back into the same `Session` the store
//! holds, and format-1 JWTs of a rolling upgrade still accepted until they expire.

mod common;

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use time::macros::datetime;
use tower_session_jwt::clock::{Clock, ManualClock};
use tower_session_jwt::jwt::JwtError;
use tower_session_jwt::session::{AuthenticationFactor, SessionAttributes};
use tower_session_jwt::sessions::{AuthPath, CredentialSource, Credentials, SessionChange};
use tower_session_jwt::{
    AuthError, MemoryStore, NewSession, Session, SessionLayer, Sessions, SigningKey,
};

fn payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The example app's configuration: a generated key (its `kid` the 43-character RFC 7638
/// thumbprint), its issuer and audience.
async fn example_like(key: SigningKey) -> Sessions {
    let sessions = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(key)
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .build()
        .unwrap();
    sessions.ready().await;
    sessions
}

#[tokio::test]
async fn a_fresh_login_jwt_is_compact() {
    for key in [
        SigningKey::generate_ed25519().unwrap(),
        SigningKey::generate_es256().unwrap(),
    ] {
        assert_eq!(key.kid().len(), 43);
        let sessions = example_like(key).await;
        let now = time::OffsetDateTime::now_utc();
        let created = sessions
            .create(
                "alice",
                NewSession::new().factor(AuthenticationFactor::of_type("password", now).unwrap()),
            )
            .await
            .unwrap();
        let jwt = created.jwt.expose();
        assert!(jwt.len() <= 450, "{} bytes", jwt.len());
        // No claim said twice: no `nbf` (it is `iat`), no `amr` or `auth_time` (the factors
        // say it), NumericDate integers, the factor by its type alone.
        let claims = payload(jwt);
        let mut names: Vec<&str> = claims.as_object().unwrap().keys().map(|k| &**k).collect();
        names.sort_unstable();
        assert_eq!(
            names,
            ["aud", "exp", "iat", "iss", "session", "sid", "sub"],
            "{claims}"
        );
        let expires = created.session.expires_at.unix_timestamp();
        let millis = created.session.started_at.millisecond();
        let expected = match millis {
            0 => json!([2, expires, ["password"]]),
            _ => json!([2, expires, ["password"], millis]),
        };
        assert_eq!(claims["session"], expected);
        assert_eq!(claims["exp"], claims["iat"].as_i64().unwrap() + 300);
    }
}

#[tokio::test]
async fn the_session_reads_the_same_from_its_jwt_as_from_the_store() {
    let (sessions, clock, store) = common::manual();
    sessions.ready().await;
    // Another instance, without a verification cache: it reads every JWT from its bytes (the
    // minting instance would find its own mints cached).
    let reader = common::builder(&clock, store)
        .verification_cache_capacity(0)
        .build()
        .unwrap();
    reader.ready().await;
    // A clock between seconds: the session starts at a millisecond, and the JWT says which.
    clock.advance(Duration::from_nanos(250_123_456));
    let created = sessions
        .create(
            "alice",
            NewSession::new()
                .factor(AuthenticationFactor::of_type("password", clock.now()).unwrap())
                .custom_claims(json!({"role": "admin", "n": [1, 2]}))
                .attributes(SessionAttributes::new("203.0.113.7", "curl/8")),
        )
        .await
        .unwrap();
    let check = |jwt: &str, stored: &Session| {
        let reader = reader.clone();
        let (jwt, stored) = (jwt.to_owned(), stored.clone());
        async move {
            let read = (*reader.authenticate_jwt(&jwt).await.unwrap()).clone();
            // Everything a handler reads, exactly: all but the attributes (never minted) and the
            // store's own bookkeeping (from which version JWTs are accepted, the device binding).
            let mut expected = stored;
            expected.attributes = SessionAttributes::default();
            expected.jwts_from_version = 0;
            expected.device_binding = None;
            assert_eq!(read, expected, "{}", payload(&jwt));
        }
    };
    check(created.jwt.expose(), &created.session).await;

    // Later: another factor at its own time (non-default delivery), claims changed, a version
    // above 0, last access and start apart from `iat`.
    clock.advance(Duration::from_millis(61_700));
    let sms = AuthenticationFactor::new("otp", "sms", clock.now()).unwrap();
    let stepped = sessions
        .step_up(&created.session.session_id, sms)
        .await
        .unwrap();
    let jwt = stepped.jwt.as_ref().unwrap().expose().to_owned();
    let claims = payload(&jwt);
    // Its time as the whole second below it, less the start's milliseconds.
    let fraction = time::Duration::milliseconds(created.session.started_at.millisecond().into());
    let otp_at = stepped.session.authentication_factors[1].last_authenticated_at - fraction;
    assert_eq!(
        claims["session"][2],
        json!(["password", ["otp:sms", otp_at.unix_timestamp()]])
    );
    assert!(stepped.session.authentication_factors[1].last_authenticated_at <= clock.now());
    check(&jwt, &stepped.session).await;

    clock.advance(Duration::from_secs(90));
    let changed = sessions
        .change(
            &created.session.session_id,
            SessionChange::new().claims(json!({"role": null, "team": "blue"})),
        )
        .await
        .unwrap();
    let jwt = changed.jwt.as_ref().unwrap().expose().to_owned();
    assert!(payload(&jwt)["session"].as_array().unwrap().len() >= 4);
    check(&jwt, &changed.session).await;
}

/// A JWT that 0.1 minted (format 1: RFC 3339 times with fractions, `nbf`, `amr`, `auth_time`,
/// the nested `session` object), with the test key, for a session created at 09:30:15.25.
const FORMAT_1_JWT: &str = include_str!("data/format1_ed25519.jwt");
const FORMAT_1_SESSION: &str = include_str!("data/format1_ed25519.session.json");

#[tokio::test]
async fn format_1_jwts_of_a_rolling_upgrade_work_until_they_expire() {
    let minted_at = datetime!(2026-12-01 09:30:15.25 UTC);
    // This instance started before the JWT was minted (so the fast path trusts it) and shares
    // the store that holds its session.
    let clock = ManualClock::new(minted_at - Duration::from_secs(10));
    let store = MemoryStore::with_clock(clock.clone());
    let session: Session = serde_json::from_str(FORMAT_1_SESSION).unwrap();
    let record = tower_session_jwt::store::SessionRecord {
        session: session.clone(),
        token_hash: tower_session_jwt::token::SessionToken::generate()
            .unwrap()
            .hash(),
    };
    tower_session_jwt::SessionStore::create(&store, record, Default::default())
        .await
        .unwrap();
    let sessions = common::builder(&clock, store).build().unwrap();
    sessions.ready().await;
    clock.set(minted_at + Duration::from_secs(60));

    let jwt = FORMAT_1_JWT.trim();
    assert!(jwt.len() > 800, "a format-1 JWT: {} bytes", jwt.len());
    let credentials = Credentials::new().with_jwt(jwt, CredentialSource::Cookie);
    let outcome = sessions.authenticate(&credentials).await.unwrap();
    assert_eq!(
        outcome.path,
        AuthPath::Jwt,
        "no store call for a format-1 JWT"
    );
    // Read exactly as 0.1 minted it, fractions of a second included.
    assert_eq!(*outcome.session, session);
    assert_eq!(outcome.session.amr(), ["pwd"]);

    // Through the layer too, as a browser's cookie.
    use tower::ServiceExt as _;
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|s: Session| async move { s.user_id }),
        )
        .layer(SessionLayer::new(sessions.clone()));
    let request = http::Request::get("/me")
        .header("cookie", format!("session_jwt={jwt}"))
        .body(axum::body::Body::empty())
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert!(response.headers().get("set-cookie").is_none());

    // Until it expires (`exp` = minted + 300 s, 5 s of leeway).
    clock.set(minted_at + Duration::from_secs(306));
    assert!(matches!(
        sessions.authenticate_jwt(jwt).await,
        Err(AuthError::InvalidJwt(JwtError::Expired))
    ));
}

/// "Sign out everywhere" and a login in the same second: the session started before it is
/// refused, the one started after it accepted, from their JWTs alone (a JWT says to the
/// millisecond when its session started).
#[tokio::test]
async fn a_sign_out_everywhere_and_a_login_in_the_same_second() {
    let clock = ManualClock::new(datetime!(2026-12-01 09:30:14.5 UTC));
    let store = MemoryStore::with_clock(clock.clone());
    // No verification cache: every JWT is read from its bytes, as another instance would.
    let sessions = common::builder(&clock, store)
        .verification_cache_capacity(0)
        .build()
        .unwrap();
    sessions.ready().await;
    // A second after the instance started (JWTs of its first second are confirmed in the store).
    clock.advance(Duration::from_millis(600));
    let before = sessions.create("alice", NewSession::new()).await.unwrap();
    clock.advance(Duration::from_millis(400));
    sessions.revoke_all("alice").await.unwrap();
    clock.advance(Duration::from_millis(300));
    let after = sessions.create("alice", NewSession::new()).await.unwrap();
    assert_eq!(
        before.session.started_at.unix_timestamp(),
        after.session.started_at.unix_timestamp(),
        "one second"
    );
    fn cookie(jwt: &str) -> Credentials<'_> {
        Credentials::new().with_jwt(jwt, CredentialSource::Cookie)
    }
    assert!(
        sessions
            .authenticate(&cookie(before.jwt.expose()))
            .await
            .is_err()
    );
    let outcome = sessions
        .authenticate(&cookie(after.jwt.expose()))
        .await
        .unwrap();
    assert_eq!(outcome.session.session_id, after.session.session_id);
    // Judged locally: the JWT says to the millisecond when its session started.
    assert_eq!(outcome.path, AuthPath::Jwt);
}
