//! Attack catalogue: one test per attack class against session JWTs and credential transport.
//!
//! Token classes go through `Sessions::authenticate_jwt`; HTTP classes go through an axum
//! `Router` behind `SessionLayer` with `tower::ServiceExt::oneshot`. Forged JWTs are signed with
//! the service's real Ed25519 key (tests/keys/ed25519.pem) through
//! `jsonwebtoken::crypto::sign`, so a refusal is never just "bad signature" unless that is the
//! point: `forged_tokens_with_the_real_key_and_pinned_header_are_accepted` is the control that
//! proves the forging helper makes tokens the verifier would otherwise accept.

mod common;

use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use common::{ED_PEM, builder};
use http::{HeaderName, HeaderValue, Request, StatusCode};
use jsonwebtoken::{EncodingKey, crypto};
use serde_json::{Value, json};
use time::format_description::well_known::Rfc3339;
use tower::ServiceExt;
use tower_session_jwt::clock::{Clock, ManualClock};
use tower_session_jwt::jwt::{Algorithm, JwtError};
use tower_session_jwt::sessions::{CookieConfig, Created};
use tower_session_jwt::{
    AuthError, MemoryStore, NewSession, Session, SessionLayer, Sessions, SessionsBuilder,
    SigningKey,
};

// ---------------------------------------------------------------------------------------------
// Fixture and forging helpers
// ---------------------------------------------------------------------------------------------

struct Env {
    sessions: Sessions,
    clock: ManualClock,
    alice: Created,
    bob: Created,
    kid: String,
}

async fn env() -> Env {
    env_with(|b| b).await
}

async fn env_with(configure: impl FnOnce(SessionsBuilder) -> SessionsBuilder) -> Env {
    let clock = ManualClock::starting_now();
    let store = MemoryStore::with_clock(clock.clone());
    let sessions = configure(builder(&clock, store)).build().unwrap();
    sessions.ready().await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let kid = SigningKey::ed25519_pem(ED_PEM).unwrap().kid().to_owned();
    Env {
        sessions,
        clock,
        alice,
        bob,
        kid,
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// `header_b64.payload_b64.signature` with the real Ed25519 key over the literal segments.
fn sign_segments(header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let key = EncodingKey::from_ed_pem(ED_PEM).unwrap();
    let signature = crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA).unwrap();
    format!("{input}.{signature}")
}

/// A token with exactly this header and payload JSON text, signed with the real key.
fn forge(header_json: &str, payload_json: &str) -> String {
    sign_segments(&b64(header_json), &b64(payload_json))
}

/// The header the service mints, byte for byte.
fn pinned(kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)
}

fn rfc3339(t: time::OffsetDateTime) -> String {
    t.format(&Rfc3339).unwrap()
}

/// Valid claims for `session` at the fixture's current time.
fn claims_for(env: &Env, session: &Session) -> Value {
    let now = env.clock.now().unix_timestamp();
    json!({
        "iss": "https://app.example", "aud": "app",
        "sub": session.user_id, "sid": session.session_id.as_str(),
        "iat": now, "nbf": now, "exp": now + 300,
        "session": {
            "started_at": rfc3339(session.started_at),
            "last_accessed_at": rfc3339(session.last_accessed_at),
            "expires_at": rfc3339(session.expires_at),
            "attributes": {"ip_address": "", "user_agent": ""}
        }
    })
}

fn forge_claims(env: &Env, claims: &Value) -> String {
    forge(&pinned(&env.kid), &claims.to_string())
}

async fn refused(env: &Env, token: &str) -> AuthError {
    match env.sessions.authenticate_jwt(token).await {
        Ok(session) => panic!("accepted as {:?}: {token:.120}", session.user_id),
        Err(e) => e,
    }
}

async fn refused_with(env: &Env, token: &str, expected: JwtError) {
    match refused(env, token).await {
        AuthError::InvalidJwt(e) => assert_eq!(e, expected, "{token:.160}"),
        other => panic!("expected {expected:?}, got {other:?} for {token:.160}"),
    }
}

async fn refused_as_invalid_jwt(env: &Env, token: &str) -> JwtError {
    match refused(env, token).await {
        AuthError::InvalidJwt(e) => e,
        other => panic!("expected InvalidJwt, got {other:?} for {token:.160}"),
    }
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

// HTTP helpers.

fn app(layer: SessionLayer) -> Router {
    Router::new()
        .route("/me", get(|s: Session| async move { s.user_id }))
        .layer(layer)
}

/// Sends GET `uri` with raw header values; returns the status and the body.
async fn send(app: &Router, uri: &str, headers: &[(&str, &[u8])]) -> (StatusCode, String) {
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    for (name, value) in headers {
        request.headers_mut().append(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_bytes(value).unwrap(),
        );
    }
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

async fn status_of(app: &Router, headers: &[(&str, &[u8])]) -> StatusCode {
    send(app, "/me", headers).await.0
}

// ---------------------------------------------------------------------------------------------
// Control
// ---------------------------------------------------------------------------------------------

/// Control for every forged-token test below: a token with the pinned header and valid claims,
/// signed by the real key through the same helper, IS accepted. So each refusal below is caused
/// by the one thing that test changes.
#[tokio::test]
async fn forged_tokens_with_the_real_key_and_pinned_header_are_accepted() {
    let env = env().await;
    let token = forge_claims(&env, &claims_for(&env, &env.alice.session));
    let session = env.sessions.authenticate_jwt(&token).await.unwrap();
    assert_eq!(session.user_id, "alice");
    // And the helper reproduces the minted header exactly.
    assert_eq!(
        env.alice.jwt.expose().split('.').next().unwrap(),
        b64(pinned(&env.kid))
    );
}

// ---------------------------------------------------------------------------------------------
// Token attacks (Sessions::authenticate_jwt)
// ---------------------------------------------------------------------------------------------

/// `alg: none` (any case, with or without a signature) is refused with `AlgorithmMismatch`.
/// RFC 8725 §2.1 and §3.1 (verifiers must not accept `none` unless explicitly intended) and
/// RFC 7518 §3.6 (Unsecured JWS). The crate pins the header, so `none` never reaches a verifier.
#[tokio::test]
async fn alg_none_is_refused() {
    let env = env().await;
    let payload = b64(claims_for(&env, &env.alice.session).to_string());
    for alg in ["none", "None", "NONE", "nOnE"] {
        let header = b64(format!(
            r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#,
            env.kid
        ));
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}"),
            sign_segments(&header, &payload),
        ] {
            let error = refused(&env, &token).await;
            assert!(
                matches!(
                    error,
                    AuthError::InvalidJwt(JwtError::AlgorithmMismatch { .. } | JwtError::Malformed)
                ),
                "{alg}: {error:?}"
            );
        }
        let signed = sign_segments(&header, &payload);
        refused_with(
            &env,
            &signed,
            JwtError::AlgorithmMismatch {
                found: alg.into(),
                expected: Some(Algorithm::EdDSA),
            },
        )
        .await;
    }
    // A bare `{"alg":"none"}` header, the classic form.
    let token = format!("{}.{payload}.", b64(r#"{"alg":"none"}"#));
    refused_as_invalid_jwt(&env, &token).await;
}

fn hs256(secret: &[u8], input: &str) -> String {
    crypto::sign(
        input.as_bytes(),
        &EncodingKey::from_secret(secret),
        jsonwebtoken::Algorithm::HS256,
    )
    .unwrap()
}

/// Algorithm confusion is refused: HS256 MACs keyed with the public key in every common encoding
/// (PEM text, SPKI DER, raw key, JWK JSON, the kid), RS256↔PS256 and ES256↔ES384 relabelling,
/// EdDSA labels on other keys, DER (ASN.1) ECDSA signatures where JWS requires `R‖S`.
/// RFC 8725 §2.1 / §3.1 (algorithm verification: the key decides the algorithm), RFC 7518 §3.4
/// (ES256 signatures are the 64-byte `R‖S` concatenation), OWASP JWT cheat sheet (algorithm
/// confusion). Expected: `AlgorithmMismatch` for a foreign `alg`, `InvalidSignature` for a
/// foreign signature under the pinned header.
#[tokio::test]
async fn algorithm_confusion_is_refused() {
    let env = env().await;
    let payload = b64(claims_for(&env, &env.alice.session).to_string());
    let public_pem = include_bytes!("keys/ed25519.pub.pem");
    let public_der = pem::parse(&public_pem[..]).unwrap().into_contents();
    let raw_public = public_der[public_der.len() - 32..].to_vec();
    let verification = SigningKey::ed25519_pem(ED_PEM).unwrap();
    let jwk_json = serde_json::to_vec(verification.verification_key().jwk().unwrap()).unwrap();
    let secrets: Vec<(&str, Vec<u8>)> = vec![
        ("public PEM", public_pem.to_vec()),
        ("public PEM trimmed", public_pem.trim_ascii().to_vec()),
        ("SPKI DER", public_der.clone()),
        ("raw public key", raw_public),
        ("JWK JSON", jwk_json),
        ("kid", env.kid.as_bytes().to_vec()),
    ];
    let hs_header = b64(format!(
        r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#,
        env.kid
    ));
    let pinned_header = b64(pinned(&env.kid));
    for (_, secret) in &secrets {
        let input = format!("{hs_header}.{payload}");
        let token = format!("{input}.{}", hs256(secret, &input));
        refused_with(
            &env,
            &token,
            JwtError::AlgorithmMismatch {
                found: "HS256".into(),
                expected: Some(Algorithm::EdDSA),
            },
        )
        .await;
        // The same MAC under the pinned EdDSA header: not a valid Ed25519 signature.
        let input = format!("{pinned_header}.{payload}");
        let token = format!("{input}.{}", hs256(secret, &input));
        refused_with(&env, &token, JwtError::InvalidSignature).await;
    }
    // Other labels on the Ed25519 key, correctly signed by it.
    for alg in ["ES256", "RS256", "PS256", "Ed25519", "ED25519", "EdDSA "] {
        let header = b64(format!(
            r#"{{"alg":"{alg}","typ":"JWT","kid":"{}"}}"#,
            env.kid
        ));
        let error = refused_as_invalid_jwt(&env, &sign_segments(&header, &payload)).await;
        assert!(
            matches!(error, JwtError::AlgorithmMismatch { .. }),
            "{alg}: {error:?}"
        );
    }

    // RS256 service: PS256 label and PSS signature.
    let rsa = SigningKey::generate_rs256().unwrap();
    let rsa_private = EncodingKey::from_rsa_pem(rsa.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let rsa_env = env_with(|b| b.signing_key(rsa.clone())).await;
    let rsa_payload = b64(claims_for(&rsa_env, &rsa_env.alice.session).to_string());
    let rs_pinned = b64(format!(
        r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#,
        rsa.kid()
    ));
    let ps_header = b64(format!(
        r#"{{"alg":"PS256","typ":"JWT","kid":"{}"}}"#,
        rsa.kid()
    ));
    let sign_rsa = |header: &str, alg| {
        let input = format!("{header}.{rsa_payload}");
        let signature = crypto::sign(input.as_bytes(), &rsa_private, alg).unwrap();
        format!("{input}.{signature}")
    };
    // Control: RS256 under the pinned header verifies.
    let control = sign_rsa(&rs_pinned, jsonwebtoken::Algorithm::RS256);
    assert_eq!(
        rsa_env
            .sessions
            .authenticate_jwt(&control)
            .await
            .unwrap()
            .user_id,
        "alice"
    );
    refused_with(
        &rsa_env,
        &sign_rsa(&ps_header, jsonwebtoken::Algorithm::PS256),
        JwtError::AlgorithmMismatch {
            found: "PS256".into(),
            expected: Some(Algorithm::RS256),
        },
    )
    .await;
    refused_with(
        &rsa_env,
        &sign_rsa(&rs_pinned, jsonwebtoken::Algorithm::PS256),
        JwtError::InvalidSignature,
    )
    .await;
    refused_with(
        &rsa_env,
        &sign_rsa(&rs_pinned, jsonwebtoken::Algorithm::RS384),
        JwtError::InvalidSignature,
    )
    .await;

    // ES256 service: ES384 label, and an ASN.1 DER signature instead of R‖S.
    let ec = SigningKey::generate_es256().unwrap();
    let ec_pem = ec.to_pkcs8_pem().unwrap();
    let ec_private = EncodingKey::from_ec_pem(ec_pem.as_bytes()).unwrap();
    let ec_env = env_with(|b| b.signing_key(ec.clone())).await;
    let ec_payload = b64(claims_for(&ec_env, &ec_env.alice.session).to_string());
    let es_pinned = b64(format!(
        r#"{{"alg":"ES256","typ":"JWT","kid":"{}"}}"#,
        ec.kid()
    ));
    let es384 = b64(format!(
        r#"{{"alg":"ES384","typ":"JWT","kid":"{}"}}"#,
        ec.kid()
    ));
    let sign_ec = |header: &str| {
        let input = format!("{header}.{ec_payload}");
        let signature = crypto::sign(
            input.as_bytes(),
            &ec_private,
            jsonwebtoken::Algorithm::ES256,
        )
        .unwrap();
        format!("{input}.{signature}")
    };
    assert_eq!(
        ec_env
            .sessions
            .authenticate_jwt(&sign_ec(&es_pinned))
            .await
            .unwrap()
            .user_id,
        "alice"
    );
    refused_with(
        &ec_env,
        &sign_ec(&es384),
        JwtError::AlgorithmMismatch {
            found: "ES384".into(),
            expected: Some(Algorithm::ES256),
        },
    )
    .await;
    let der_pair = aws_lc_rs::signature::EcdsaKeyPair::from_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1_SIGNING,
        &pem::parse(ec_pem.as_bytes()).unwrap().into_contents(),
    )
    .unwrap();
    let input = format!("{es_pinned}.{ec_payload}");
    let der = der_pair
        .sign(&aws_lc_rs::rand::SystemRandom::new(), input.as_bytes())
        .unwrap();
    refused_with(
        &ec_env,
        &format!("{input}.{}", b64(der.as_ref())),
        JwtError::InvalidSignature,
    )
    .await;
    // An EdDSA label with the ES256 key's kid.
    let ed_label = b64(format!(
        r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#,
        ec.kid()
    ));
    let error = refused_as_invalid_jwt(&ec_env, &sign_ec(&ed_label)).await;
    assert!(
        matches!(error, JwtError::AlgorithmMismatch { .. }),
        "{error:?}"
    );
}

/// Keys and key URLs supplied by the token header (`jwk`, `jku`, `x5u`, `x5c`) are never used:
/// such headers are refused (`UnexpectedHeader`, or `UnknownKeyId` when the kid is the
/// attacker's), even when the token is signed by the real key. RFC 7515 §4.1.2–§4.1.6 and
/// RFC 8725 §3.10 (do not trust header-supplied key references without validation),
/// OWASP JWT cheat sheet.
#[tokio::test]
async fn header_supplied_keys_and_urls_are_ignored() {
    let env = env().await;
    let payload = b64(claims_for(&env, &env.alice.session).to_string());
    let attacker = SigningKey::generate_ed25519().unwrap();
    let attacker_jwk = serde_json::to_string(attacker.verification_key().jwk().unwrap()).unwrap();
    let attacker_key =
        EncodingKey::from_ed_pem(attacker.to_pkcs8_pem().unwrap().as_bytes()).unwrap();
    let sign_attacker = |header: &str| {
        let h = b64(header);
        let input = format!("{h}.{payload}");
        let s = crypto::sign(
            input.as_bytes(),
            &attacker_key,
            jsonwebtoken::Algorithm::EdDSA,
        )
        .unwrap();
        format!("{input}.{s}")
    };
    let kid = &env.kid;
    let extras = [
        format!(r#""jwk":{attacker_jwk}"#),
        r#""jku":"https://attacker.example/jwks.json""#.to_owned(),
        r#""x5u":"https://attacker.example/cert.pem""#.to_owned(),
        r#""x5c":["MIIBszCCAVmgAwIBAgIUQ"]"#.to_owned(),
        r#""x5t#S256":"AAAA""#.to_owned(),
    ];
    for extra in &extras {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}",{extra}}}"#);
        // Signed by the attacker's key the header names...
        refused_with(&env, &sign_attacker(&header), JwtError::UnexpectedHeader).await;
        // ...or even by the real key: the header is still not the pinned one.
        refused_with(
            &env,
            &sign_segments(&b64(&header), &payload),
            JwtError::UnexpectedHeader,
        )
        .await;
        // With the attacker's own kid.
        let header = format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}",{extra}}}"#,
            attacker.kid()
        );
        refused_with(&env, &sign_attacker(&header), JwtError::UnknownKeyId).await;
    }
    // The attacker's key under a header byte-identical in shape to the pinned one.
    let header = pinned(attacker.kid());
    refused_with(&env, &sign_attacker(&header), JwtError::UnknownKeyId).await;
    // The pinned header but an attacker signature.
    refused_with(
        &env,
        &sign_attacker(&pinned(kid)),
        JwtError::InvalidSignature,
    )
    .await;
}

/// Hostile `kid` values (path traversal, SQL-ish, NUL, very long, wrong JSON types, null,
/// duplicated member, near-misses of the real kid) are refused before any lookup can misuse
/// them: the kid is only ever compared with configured kids. RFC 7515 §4.1.4, RFC 8725 §3.10
/// (kid values may be used for injection attacks), OWASP JWT cheat sheet.
#[tokio::test]
async fn hostile_kid_values_are_refused() {
    let env = env().await;
    let payload = b64(claims_for(&env, &env.alice.session).to_string());
    let kid = &env.kid;
    let long = "a".repeat(10_000);
    let kids: Vec<String> = vec![
        r#""../../../../dev/null""#.into(),
        r#""/etc/passwd""#.into(),
        r#""' OR '1'='1""#.into(),
        r#""x'; DROP TABLE keys;--""#.into(),
        r#""\u0000""#.into(),
        format!(r#""{kid}\u0000""#),
        format!(r#""{kid} ""#),
        format!(r#""{}""#, kid.to_uppercase()),
        format!(r#""{}""#, &kid[..kid.len() - 1]),
        format!(r#""{long}""#),
        format!(r#""{}""#, &long[..1_000]),
        r#""""#.into(),
        "12345".into(),
        "null".into(),
        "true".into(),
        format!(r#"["{kid}"]"#),
        format!(r#"{{"kid":"{kid}"}}"#),
    ];
    for value in &kids {
        let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":{value}}}"#);
        let error = refused_as_invalid_jwt(&env, &sign_segments(&b64(&header), &payload)).await;
        assert!(
            matches!(
                error,
                JwtError::UnknownKeyId
                    | JwtError::UnexpectedHeader
                    | JwtError::Malformed
                    | JwtError::TooLong { .. }
            ),
            "kid {value:.40}: {error:?}"
        );
    }
    // No kid at all, and the kid given twice (JSON parsers disagree on which wins).
    for header in [
        r#"{"alg":"EdDSA","typ":"JWT"}"#.to_owned(),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"evil","kid":"{kid}"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","kid":"evil"}}"#),
    ] {
        refused_as_invalid_jwt(&env, &sign_segments(&b64(&header), &payload)).await;
    }
}

/// Malformed framing and non-canonical base64url are refused: padding, the standard alphabet
/// (`+`, `/`), whitespace, extra or missing dots, empty segments, non-zero trailing bits, and
/// the JSON serialization. The non-canonical payloads are signed by the real key, so only the
/// encoding is wrong. RFC 7515 §2 (base64url without padding), §3.1 and §7.1 (compact
/// serialization: exactly three segments), RFC 7519 §7.2 (validation steps), RFC 7515 §5.2 (validation).
#[tokio::test]
async fn malformed_framing_and_noncanonical_base64url_are_refused() {
    let env = env().await;
    let jwt = env.alice.jwt.expose().to_owned();
    let (h, rest) = jwt.split_once('.').unwrap();
    let (p, s) = rest.split_once('.').unwrap();
    let mut variants: Vec<String> = vec![
        format!("{jwt}="),
        format!("{jwt}=="),
        format!("{h}=.{p}.{s}"),
        format!("{h}.{p}=.{s}"),
        format!("{h}.{p}.{s}="),
        format!(" {jwt}"),
        format!("{jwt} "),
        format!("{jwt}\n"),
        format!("{jwt}\r\n"),
        format!("{h} .{p}.{s}"),
        format!("{h}.{p}.\t{s}"),
        format!("{h}.{p}.{} {}", &s[..10], &s[10..]),
        format!(".{jwt}"),
        format!("{jwt}."),
        format!("{h}..{p}.{s}"),
        format!("{h}.{p}..{s}"),
        format!("{jwt}.{s}"),
        format!("{h}.{p}.{s}.{p}.{s}"),
        format!("{h}.{p}"),
        format!("{h}..{s}"),
        format!(".{p}.{s}"),
        format!("{h}.{p}."),
        "..".into(),
        "...".into(),
        String::new(),
        ".".into(),
        format!(r#"{{"protected":"{h}","payload":"{p}","signature":"{s}"}}"#),
        format!(
            "{h}.{p}.{}",
            STANDARD.encode(URL_SAFE_NO_PAD.decode(s).unwrap())
        ),
    ];
    // The standard alphabet in the signature (only meaningful if it has `-` or `_`).
    if s.contains(['-', '_']) {
        variants.push(format!("{h}.{p}.{}", s.replace('-', "+").replace('_', "/")));
    }
    for token in &variants {
        refused_as_invalid_jwt(&env, token).await;
    }

    // Non-zero trailing bits in the signature: 64 bytes = 86 characters, the last one carries 2
    // data bits and 4 zero bits. A lenient decoder maps both spellings to the same bytes.
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = s.as_bytes()[s.len() - 1];
    let index = ALPHABET.iter().position(|c| *c == last).unwrap();
    assert_eq!(index & 0x0F, 0, "canonical Ed25519 signature");
    for bit in 0..4 {
        let other = ALPHABET[index ^ (1 << bit)] as char;
        let token = format!("{h}.{p}.{}{other}", &s[..s.len() - 1]);
        refused_with(&env, &token, JwtError::Malformed).await;
    }

    // Non-canonical payloads, correctly signed by the real key.
    let header = b64(pinned(&env.kid));
    let mut checked_trailing_bits = false;
    let mut checked_std_alphabet = false;
    for filler in 0..6 {
        let claims = with(
            claims_for(&env, &env.alice.session),
            "pad",
            json!(format!("{}???>>>", "x".repeat(filler))),
        );
        let canonical = b64(claims.to_string());
        // Control: the canonical encoding verifies.
        env.sessions
            .authenticate_jwt(&sign_segments(&header, &canonical))
            .await
            .unwrap();
        refused_with(
            &env,
            &sign_segments(&header, &format!("{canonical}=")),
            JwtError::Malformed,
        )
        .await;
        let padded = URL_SAFE_NO_PAD
            .decode(&canonical)
            .map(|bytes| base64::engine::general_purpose::URL_SAFE.encode(bytes))
            .unwrap();
        if padded.ends_with('=') {
            refused_with(&env, &sign_segments(&header, &padded), JwtError::Malformed).await;
        }
        let standard = base64::engine::general_purpose::STANDARD_NO_PAD
            .encode(URL_SAFE_NO_PAD.decode(&canonical).unwrap());
        if standard != canonical {
            checked_std_alphabet = true;
            refused_with(
                &env,
                &sign_segments(&header, &standard),
                JwtError::Malformed,
            )
            .await;
        }
        if !canonical.len().is_multiple_of(4) {
            checked_trailing_bits = true;
            let last = canonical.as_bytes()[canonical.len() - 1];
            let index = ALPHABET.iter().position(|c| *c == last).unwrap();
            let other = ALPHABET[index ^ 1] as char;
            let noncanonical = format!("{}{other}", &canonical[..canonical.len() - 1]);
            refused_with(
                &env,
                &sign_segments(&header, &noncanonical),
                JwtError::Malformed,
            )
            .await;
        }
        // Whitespace inside a signed payload segment.
        let spaced = format!("{} {}", &canonical[..8], &canonical[8..]);
        refused_with(&env, &sign_segments(&header, &spaced), JwtError::Malformed).await;
    }
    assert!(checked_trailing_bits && checked_std_alphabet);
}

/// Registered claims that are wrongly typed, missing, duplicated (also through JSON escapes) or
/// out of range are refused with a typed error, even though the token is correctly signed.
/// RFC 7519 §4.1 (registered claims; NumericDate §2), §7.2 (reject a JWT whose claims are not
/// valid JSON objects or have duplicate names: RFC 7515 §5.2 item 4 / RFC 7519 §4), RFC 8725
/// §3.8–§3.9 (validate issuer and audience). The crate mints `aud` as a string, so an array
/// `aud` is refused as well.
#[tokio::test]
async fn wrong_typed_missing_duplicated_and_out_of_range_claims_are_refused() {
    let env = env().await;
    let base = claims_for(&env, &env.alice.session);
    let now = env.clock.now().unix_timestamp();
    let mut cases: Vec<(Value, JwtError)> = Vec::new();
    for name in ["iss", "aud", "sub", "sid"] {
        for wrong in [
            json!(1),
            json!(true),
            Value::Null,
            json!(["app"]),
            json!({}),
        ] {
            cases.push((
                with(base.clone(), name, wrong),
                JwtError::InvalidClaim(name),
            ));
        }
    }
    for name in ["iat", "nbf", "exp"] {
        for wrong in [
            json!(now.to_string()),
            json!(now as f64 + 0.5),
            json!(true),
            Value::Null,
            json!([now]),
            json!({}),
            json!(-1),
            json!(253_402_300_800_i64),
            json!(i64::MAX),
            json!(u64::MAX),
            json!(i64::MIN),
        ] {
            cases.push((
                with(base.clone(), name, wrong),
                JwtError::InvalidClaim(name),
            ));
        }
    }
    for wrong in [
        json!("x"),
        json!([]),
        Value::Null,
        with(base["session"].clone(), "extra", json!(1)),
        without(base["session"].clone(), "started_at"),
        with(base["session"].clone(), "attributes", json!("203.0.113.9")),
        with(base["session"].clone(), "expires_at", json!(now)),
    ] {
        cases.push((
            with(base.clone(), "session", wrong),
            JwtError::InvalidClaim("session"),
        ));
    }
    for name in ["iss", "aud", "sub", "sid", "iat", "nbf", "exp", "session"] {
        cases.push((without(base.clone(), name), JwtError::MissingClaim(name)));
    }
    cases.extend([
        (
            with(base.clone(), "iss", json!("https://evil.example")),
            JwtError::InvalidIssuer,
        ),
        (
            with(base.clone(), "iss", json!("https://app.example/")),
            JwtError::InvalidIssuer,
        ),
        (
            with(base.clone(), "aud", json!("APP")),
            JwtError::InvalidAudience,
        ),
        (
            with(base.clone(), "aud", json!("app ")),
            JwtError::InvalidAudience,
        ),
        (
            with(base.clone(), "sub", json!("")),
            JwtError::InvalidClaim("sub"),
        ),
        (
            with(base.clone(), "sub", json!("u".repeat(257))),
            JwtError::InvalidClaim("sub"),
        ),
        (
            with(base.clone(), "sid", json!("../x")),
            JwtError::InvalidClaim("sid"),
        ),
        (
            with(base.clone(), "sid", json!("")),
            JwtError::InvalidClaim("sid"),
        ),
        (
            with(base.clone(), "exp", json!(now - 1)),
            JwtError::InvalidClaim("exp"),
        ),
        (
            with(
                with(base.clone(), "iat", json!(now - 400)),
                "exp",
                json!(now - 100),
            ),
            JwtError::Expired,
        ),
        (
            with(base.clone(), "nbf", json!(now + 60)),
            JwtError::NotYetValid,
        ),
        (
            with(
                with(base.clone(), "iat", json!(now + 60)),
                "exp",
                json!(now + 300),
            ),
            JwtError::IssuedInFuture,
        ),
    ]);
    for (claims, expected) in cases {
        let token = forge_claims(&env, &claims);
        refused_with(&env, &token, expected).await;
    }

    // Top-level payloads that are not objects, or not JSON.
    for payload in ["[]", "\"x\"", "null", "1", "", "{", "{}}", "\u{feff}{}"] {
        let token = forge(&pinned(&env.kid), payload);
        refused_as_invalid_jwt(&env, &token).await;
    }

    // Duplicates, written by hand (serde_json::Value cannot hold them).
    let text = base.to_string();
    let body = &text[1..];
    for (dup, name) in [
        (format!(r#"{{"exp":{},{body}"#, now + 300), "exp"),
        (format!(r#"{{"exp":{},{body}"#, now + 100), "exp"),
        (format!(r#"{{"\u0065xp":{},{body}"#, now + 300), "exp"),
        (format!(r#"{{"iss":"https://app.example",{body}"#), "iss"),
        (format!(r#"{{"sub":"mallory",{body}"#), "sub"),
        (format!(r#"{{"sid":"session-other",{body}"#), "sid"),
        (format!(r#"{{"aud":"app",{body}"#), "aud"),
        (format!(r#"{{"role":"user","role":"admin",{body}"#), "role"),
    ] {
        let token = forge(&pinned(&env.kid), &dup);
        refused_with(&env, &token, JwtError::DuplicateClaim(name.into())).await;
    }
}

/// A JWT living longer than the configured JWT lifetime (`exp - iat > ttl`) is refused even
/// when correctly signed and not yet expired; a JWT is also refused once its session has ended
/// or its `exp` (+ leeway) has passed, including when it was cached as verified. RFC 7519 §4.1.4
/// and §4.1.6, OWASP JWT cheat sheet (short token lifetimes), OWASP session management (idle
/// and absolute timeouts).
#[tokio::test]
async fn lifetime_above_the_maximum_is_refused() {
    let env = env().await;
    let base = claims_for(&env, &env.alice.session);
    let now = env.clock.now().unix_timestamp();
    // Control: exactly the TTL is fine.
    let exact = forge_claims(&env, &with(base.clone(), "exp", json!(now + 300)));
    env.sessions.authenticate_jwt(&exact).await.unwrap();
    for (iat, exp) in [
        (now, now + 301),
        (now - 1_000, now + 300),
        (now - 86_400 * 365, now + 60),
        (now, 253_402_300_799),
    ] {
        let claims = with(with(base.clone(), "iat", json!(iat)), "exp", json!(exp));
        refused_with(
            &env,
            &forge_claims(&env, &claims),
            JwtError::LifetimeTooLong,
        )
        .await;
    }
    // The session claim says the session has ended.
    let mut ended = base.clone();
    ended["session"]["expires_at"] = json!(rfc3339(env.clock.now() - Duration::from_secs(1)));
    refused_with(&env, &forge_claims(&env, &ended), JwtError::Expired).await;

    // A minted JWT, verified (and cached), then the clock passes exp + leeway.
    let jwt = env.alice.jwt.expose();
    env.sessions.authenticate_jwt(jwt).await.unwrap();
    env.clock.advance(Duration::from_secs(300 + 5));
    refused_with(&env, jwt, JwtError::Expired).await;
}

/// `crit` (any value), `b64: false` (RFC 7797 unencoded payload) and nested JWTs
/// (`cty: "JWT"`) are refused, as are `typ` values other than the minted `JWT`.
/// RFC 7515 §4.1.11 (a recipient must reject `crit` extensions it does not understand),
/// RFC 7797 §3 and §6, RFC 7519 §5.2 (`cty` for nested JWTs), RFC 8725 §2.8 and §3.11
/// (explicit typing; do not accept tokens of another kind).
#[tokio::test]
async fn crit_b64_and_nested_jwts_are_refused() {
    let env = env().await;
    let kid = &env.kid;
    let claims = claims_for(&env, &env.alice.session).to_string();
    let payload = b64(&claims);
    let signed = |header: &str| sign_segments(&b64(header), &payload);
    let cases = [
        (
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","crit":["exp"],"exp":1}}"#),
            JwtError::CriticalHeader,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","crit":[]}}"#),
            JwtError::CriticalHeader,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","crit":"b64","b64":false}}"#),
            JwtError::CriticalHeader,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","b64":false}}"#),
            JwtError::UnexpectedHeader,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","cty":"JWT"}}"#),
            JwtError::UnexpectedHeader,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"jwt","kid":"{kid}"}}"#),
            JwtError::InvalidType,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"at+jwt","kid":"{kid}"}}"#),
            JwtError::InvalidType,
        ),
        (
            format!(r#"{{"alg":"EdDSA","typ":"application/jwt","kid":"{kid}"}}"#),
            JwtError::InvalidType,
        ),
        (
            format!(r#"{{"alg":"EdDSA","kid":"{kid}"}}"#),
            JwtError::InvalidType,
        ),
    ];
    for (header, expected) in &cases {
        refused_with(&env, &signed(header), expected.clone()).await;
    }
    // RFC 7797 unencoded payload: the signing input is `header.` + raw payload.
    let header = b64(format!(
        r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","b64":false,"crit":["b64"]}}"#
    ));
    let input = format!("{header}.{claims}");
    let key = EncodingKey::from_ed_pem(ED_PEM).unwrap();
    let signature = crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA).unwrap();
    refused_as_invalid_jwt(&env, &format!("{input}.{signature}")).await;
    refused_as_invalid_jwt(&env, &format!("{header}..{signature}")).await;
    // Nested: the outer payload is bob's genuine JWT.
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","cty":"JWT"}}"#);
    let nested = sign_segments(&b64(&header), &b64(env.bob.jwt.expose()));
    refused_with(&env, &nested, JwtError::UnexpectedHeader).await;
    // The genuine pinned header around a nested JWT: the payload is not a claims object.
    let nested = sign_segments(&b64(pinned(kid)), &b64(env.bob.jwt.expose()));
    refused_with(&env, &nested, JwtError::Malformed).await;
}

/// Oversized tokens and headers are refused cheaply: longer than `max_token_len` (8 KiB by
/// default) → `TooLong` before any parsing; header segments over 1 KiB are not even parsed for
/// diagnosis; deeply nested header JSON fails without exhausting the stack; signature segments
/// longer than any supported signature are malformed. Over HTTP, `Cookie`/`Authorization`
/// values over 16 KiB answer 400. RFC 9110 §5.4 (field limits; 400 for oversized fields),
/// OWASP API4:2023 (unrestricted resource consumption).
#[tokio::test]
async fn oversized_tokens_and_headers_are_refused() {
    let env = env().await;
    let kid = &env.kid;
    let base = claims_for(&env, &env.alice.session);
    // Signed, well-formed, but too long.
    let big = forge_claims(
        &env,
        &with(base.clone(), "blob", json!("x".repeat(8 * 1024))),
    );
    assert!(big.len() > 8 * 1024);
    match refused_as_invalid_jwt(&env, &big).await {
        JwtError::TooLong { len, max } => assert_eq!((len, max), (big.len(), 8 * 1024)),
        other => panic!("{other:?}"),
    }
    // Just under the limit is not refused for its length (control of the bound).
    let mut fits = None;
    for n in (5_000..6_400).step_by(20) {
        let token = forge_claims(&env, &with(base.clone(), "blob", json!("x".repeat(n))));
        if token.len() <= 8 * 1024 {
            fits = Some(token);
        }
    }
    let fits: String = fits.unwrap();
    assert!(fits.len() > 8_100, "{}", fits.len());
    env.sessions.authenticate_jwt(&fits).await.unwrap();

    let payload = b64(base.to_string());
    let huge_header = format!(
        r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","x":"{}"}}"#,
        "y".repeat(2_000)
    );
    refused_with(
        &env,
        &sign_segments(&b64(&huge_header), &payload),
        JwtError::UnexpectedHeader,
    )
    .await;
    let nested = format!(
        r#"{{"alg":"EdDSA","kid":{}{}}}"#,
        "[".repeat(600),
        "]".repeat(600)
    );
    assert!(b64(&nested).len() < 8 * 1024);
    refused_as_invalid_jwt(&env, &sign_segments(&b64(&nested), &payload)).await;
    let deep_in_budget = format!(r#"{{"a":{}{}}}"#, "[".repeat(300), "]".repeat(300));
    assert!(b64(&deep_in_budget).len() <= 1024);
    refused_as_invalid_jwt(&env, &sign_segments(&b64(&deep_in_budget), &payload)).await;
    // Deeply nested claims, signed.
    let deep_claims = format!(
        r#"{{"x":{}{},{}"#,
        "[".repeat(3_000),
        "]".repeat(3_000),
        &base.to_string()[1..]
    );
    refused_as_invalid_jwt(&env, &forge(&pinned(kid), &deep_claims)).await;
    // A signature segment longer than any supported signature (RSA-8192 = 1024 bytes).
    let header = b64(pinned(kid));
    refused_with(
        &env,
        &format!("{header}.{payload}.{}", "A".repeat(1_400)),
        JwtError::Malformed,
    )
    .await;

    // HTTP bounds.
    let app = app(SessionLayer::new(env.sessions.clone()));
    let cookie = format!(
        "session_jwt={}; pad={}",
        env.alice.jwt.expose(),
        "p".repeat(16 * 1024)
    );
    assert_eq!(
        status_of(&app, &[("cookie", cookie.as_bytes())]).await,
        StatusCode::BAD_REQUEST
    );
    let bearer = format!("Bearer {}", "a".repeat(16 * 1024));
    assert_eq!(
        status_of(&app, &[("authorization", bearer.as_bytes())]).await,
        StatusCode::BAD_REQUEST
    );
    let cookie = format!("session_jwt={}", "a.b.".repeat(2_600));
    assert_eq!(
        status_of(&app, &[("cookie", cookie.as_bytes())]).await,
        StatusCode::UNAUTHORIZED
    );
    // Many cookie headers of junk: refused without trouble.
    let junk = format!("junk={}", "j".repeat(1_000));
    let headers: Vec<(&str, &[u8])> = (0..64).map(|_| ("cookie", junk.as_bytes())).collect();
    assert_eq!(status_of(&app, &headers).await, StatusCode::UNAUTHORIZED);
}

// ---------------------------------------------------------------------------------------------
// HTTP attacks (SessionLayer)
// ---------------------------------------------------------------------------------------------

/// Cookie-name prefix spoofing: only the configured full name is read. With `host_prefix` off,
/// `__Host-session_jwt` and `__Secure-session_jwt` are other cookies and ignored; with it on,
/// unprefixed, lower-case-prefix and `__Secure-` names are ignored (browsers only enforce the
/// prefix's guarantees on the exact prefix the server relies on), and only `__Host-session_jwt`
/// authenticates. RFC 6265bis §4.1.3.1–§4.1.3.2 (cookie name prefixes), OWASP session
/// management cheat sheet (cookie tossing).
#[tokio::test]
async fn cookie_name_prefix_spoofing_is_ignored() {
    let env = env().await;
    let jwt = env.alice.jwt.expose();
    let plain = app(SessionLayer::new(env.sessions.clone()));
    for name in [
        "__Host-session_jwt",
        "__Secure-session_jwt",
        "__host-session_jwt",
        "Session_jwt",
        "SESSION_JWT",
        "session_jwt_",
        "xsession_jwt",
        "session-jwt",
    ] {
        let cookie = format!("{name}={jwt}");
        assert_eq!(
            status_of(&plain, &[("cookie", cookie.as_bytes())]).await,
            StatusCode::UNAUTHORIZED,
            "{name} (host_prefix off)"
        );
    }
    let cookie = format!("session_jwt={jwt}");
    assert_eq!(
        status_of(&plain, &[("cookie", cookie.as_bytes())]).await,
        StatusCode::OK
    );

    let prefixed_env = env_with(|b| b.cookies(CookieConfig::default().host_prefix(true))).await;
    let jwt = prefixed_env.alice.jwt.expose();
    let prefixed = app(SessionLayer::new(prefixed_env.sessions.clone()));
    for name in [
        "session_jwt",
        "__host-session_jwt",
        "__HOST-session_jwt",
        "__Secure-session_jwt",
        "__Host-__Host-session_jwt",
        "__Host-Session_jwt",
        " __Host-session_jwt_",
    ] {
        let cookie = format!("{name}={jwt}");
        assert_eq!(
            status_of(&prefixed, &[("cookie", cookie.as_bytes())]).await,
            StatusCode::UNAUTHORIZED,
            "{name} (host_prefix on)"
        );
    }
    let cookie = format!("__Host-session_jwt={jwt}");
    assert_eq!(
        status_of(&prefixed, &[("cookie", cookie.as_bytes())]).await,
        StatusCode::OK
    );
    // A tossed unprefixed cookie beside the real one is ignored, not a conflict.
    let cookie = format!(
        "session_jwt={}; __Host-session_jwt={jwt}",
        prefixed_env.bob.jwt.expose()
    );
    let (status, body) = send(&prefixed, "/me", &[("cookie", cookie.as_bytes())]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

/// Duplicate cookies: the same value twice is one credential; two different values (in one
/// header or across several `Cookie` headers, for the JWT or the token, valid or garbage) are a
/// conflict answered with 400, never "first wins" or "last wins" — that is what a tossed
/// cookie would exploit. The optional layer does not wave conflicts through either.
/// RFC 6265 §4.2.2 (servers must not rely on the order of same-name cookies), §8.6 (weak
/// integrity), OWASP session management cheat sheet (session fixation, cookie tossing).
#[tokio::test]
async fn duplicate_and_disagreeing_cookies_are_refused() {
    let env = env().await;
    let alice = env.alice.jwt.expose();
    let bob = env.bob.jwt.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    let same = format!("session_jwt={alice}; session_jwt={alice}");
    let (status, body) = send(&app, "/me", &[("cookie", same.as_bytes())]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    let conflicting = [
        format!("session_jwt={alice}; session_jwt={bob}"),
        format!("session_jwt={bob}; session_jwt={alice}"),
        format!("session_jwt={alice}; session_jwt=garbage"),
        format!("session_jwt=; session_jwt={alice}"),
        format!(
            "session_token={}; session_token={}",
            env.alice.token.expose(),
            env.bob.token.expose()
        ),
    ];
    for cookie in &conflicting {
        assert_eq!(
            status_of(&app, &[("cookie", cookie.as_bytes())]).await,
            StatusCode::BAD_REQUEST,
            "{cookie:.80}"
        );
    }
    let first = format!("session_jwt={alice}");
    let second = format!("session_jwt={bob}");
    assert_eq!(
        status_of(
            &app,
            &[("cookie", first.as_bytes()), ("cookie", second.as_bytes())]
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    let optional = Router::new()
        .route(
            "/me",
            get(|s: Option<Session>| async move {
                s.map(|s| s.user_id).unwrap_or_else(|| "anonymous".into())
            }),
        )
        .route("/strict", get(|s: Session| async move { s.user_id }))
        .layer(SessionLayer::new(env.sessions.clone()).optional());
    // Optional mode: nobody is authenticated, but the request goes on, so that a user whose jar
    // holds a tossed cookie can still reach the login and logout handlers and recover; routes
    // that need a session answer `400 invalid_request`.
    for cookie in &conflicting {
        let (status, body) = send(&optional, "/me", &[("cookie", cookie.as_bytes())]).await;
        assert_eq!((status, body.as_str()), (StatusCode::OK, "anonymous"));
        let response = optional
            .clone()
            .oneshot(
                Request::get("/strict")
                    .header("cookie", cookie.as_str())
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{cookie:.80}");
        assert_eq!(
            response.headers()["www-authenticate"],
            r#"Bearer error="invalid_request""#
        );
    }
}

/// Non-UTF-8 (and non-ASCII) `Cookie` bytes never authenticate anyone and never crash the
/// layer: the crate skips such a cookie pair rather than guessing at its content. RFC 6265 §4.1.1
/// (cookie-octet excludes non-ASCII), RFC 9110 §5.5 (field values are octets; obs-text is
/// opaque).
/// See also `non_ascii_byte_in_an_unrelated_cookie_hides_the_session`.
#[tokio::test]
async fn non_utf8_cookie_bytes_never_authenticate() {
    let env = env().await;
    let alice = env.alice.jwt.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    let mut corrupt_jwt = format!("session_jwt={alice}").into_bytes();
    let at = corrupt_jwt.len() - 5;
    corrupt_jwt[at] = 0xFF;
    let cases: Vec<Vec<u8>> = vec![
        corrupt_jwt,
        b"session_jwt=\xff\xfe\xfd".to_vec(),
        b"session_jwt=\xc3\x28".to_vec(),
        b"session_\xffjwt=x".to_vec(),
        [b"session_jwt=".as_slice(), alice.as_bytes(), b"\x80"].concat(),
    ];
    for cookie in &cases {
        let status = status_of(&app, &[("cookie", cookie.as_slice())]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{cookie:?}");
    }
    // A second Cookie header carrying bob's JWT next to a non-UTF-8 pair cannot take over
    // alice's request.
    let good = format!("session_jwt={alice}");
    let bad = [
        format!("session_jwt={}; x=", env.bob.jwt.expose()).as_bytes(),
        b"\xff",
    ]
    .concat();
    let (status, body) = send(
        &app,
        "/me",
        &[("cookie", good.as_bytes()), ("cookie", bad.as_slice())],
    )
    .await;
    // Bob's pair is valid UTF-8 (only `x=\xff` is not), so it is read and disagrees: 400.
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
}

/// Regression: a `Cookie` header used to be skipped entirely when ANY byte in
/// it was not visible ASCII (`HeaderValue::to_str` failed), so one unrelated cookie with a
/// non-ASCII value (`name=José`, legal UTF-8, commonly set by front-end code, or tossed by a
/// sibling subdomain) made the session cookies invisible and the user looked signed out (401).
/// Expected: the session cookies are still read. RFC 6265 §5.2 / §5.4 (user agents store and send
/// such octets); only our cookies' values need to be ASCII.
#[tokio::test]
async fn non_ascii_byte_in_an_unrelated_cookie_hides_the_session() {
    let env = env().await;
    let app = app(SessionLayer::new(env.sessions.clone()));
    let cookie = format!("session_jwt={}; name=José", env.alice.jwt.expose());
    let (status, body) = send(&app, "/me", &[("cookie", cookie.as_bytes())]).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
}

/// Quoted cookie values: RFC 6265 §4.1.1 allows `name="value"`; the crate strips the quotes
/// (cookie crate `value_trimmed`) and the JWT must still verify, so quoting is harmless.
/// Unbalanced or doubled quotes, percent-encoding and escape tricks are not decoded and fail.
/// A quoted and an unquoted copy of the same JWT are the same credential.
#[tokio::test]
async fn quoted_and_encoded_cookie_values() {
    let env = env().await;
    let alice = env.alice.jwt.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    let ok = [
        format!("session_jwt=\"{alice}\""),
        format!("session_jwt={alice}; session_jwt=\"{alice}\""),
        format!("  session_jwt  =  {alice}  "),
    ];
    for cookie in &ok {
        let (status, body) = send(&app, "/me", &[("cookie", cookie.as_bytes())]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "alice"),
            "{cookie:.60}"
        );
    }
    let refused = [
        format!("session_jwt=\"{alice}"),
        format!("session_jwt={alice}\""),
        format!("session_jwt=\"\"{alice}\"\""),
        format!("session_jwt='{alice}'"),
        format!("session_jwt={}", alice.replace('.', "%2E")),
        format!("session_jwt=\\\"{alice}\\\""),
        format!("session%5Fjwt={alice}"),
    ];
    for cookie in &refused {
        assert_eq!(
            status_of(&app, &[("cookie", cookie.as_bytes())]).await,
            StatusCode::UNAUTHORIZED,
            "{cookie:.60}"
        );
    }
}

/// `Authorization` parsing: RFC 6750 §2.1 `"Bearer" 1*SP b64token`, scheme case-insensitive
/// (RFC 9110 §11.1). Accepted: `Bearer`, `bearer`, `BEARER`, several spaces, trailing spaces.
/// Ignored (401, no credential): tabs, other schemes, no token, `Bearer Bearer x`, characters
/// outside b64token, leading whitespace. Two `Authorization` headers: 400.
#[tokio::test]
async fn authorization_scheme_and_whitespace_variants() {
    let env = env().await;
    let jwt = env.alice.jwt.expose();
    let token = env.alice.token.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    for value in [
        format!("Bearer {jwt}"),
        format!("bearer {jwt}"),
        format!("BEARER {jwt}"),
        format!("Bearer   {jwt}"),
        format!("Bearer {jwt}  "),
        format!("Bearer {token}"),
    ] {
        let (status, body) = send(&app, "/me", &[("authorization", value.as_bytes())]).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "alice"),
            "{value:.40}"
        );
    }
    for value in [
        format!("Bearer\t{jwt}"),
        format!("Bearer \t{jwt}"),
        format!("Bearer{jwt}"),
        "Bearer".to_owned(),
        "Bearer ".to_owned(),
        "Bearer    ".to_owned(),
        format!("Bearer Bearer {jwt}"),
        format!("Bearer {jwt} {jwt}"),
        format!("Bearer {jwt},"),
        format!("Bearer \"{jwt}\""),
        format!("Bearer {jwt}="),
        format!(" Bearer {jwt}"),
        format!("\tBearer {jwt}"),
        format!("Basic {}", STANDARD.encode(format!("alice:{jwt}"))),
        format!("Token {jwt}"),
        format!("JWT {jwt}"),
        format!("Bearer: {jwt}"),
        format!("Bearer={jwt}"),
        jwt.to_owned(),
        format!("Bearer {}", jwt.replace('.', "%2E")),
        format!("Bearer {token}\u{0}"),
    ] {
        let Ok(header) = HeaderValue::from_str(&value) else {
            continue; // not even a valid header value
        };
        assert_eq!(
            status_of(&app, &[("authorization", header.as_bytes())]).await,
            StatusCode::UNAUTHORIZED,
            "{value:.40}"
        );
    }
    let value = format!("Bearer {jwt}");
    assert_eq!(
        status_of(
            &app,
            &[
                ("authorization", value.as_bytes()),
                ("authorization", value.as_bytes())
            ]
        )
        .await,
        StatusCode::BAD_REQUEST
    );
}

/// Credentials in the query string are never read: 401. RFC 6750 §2.3 and §5.3 (URI query
/// parameters leak through logs, history and `Referer`), OWASP session management cheat sheet
/// (session IDs never in URLs).
#[tokio::test]
async fn credentials_in_the_query_string_are_ignored() {
    let env = env().await;
    let jwt = env.alice.jwt.expose();
    let token = env.alice.token.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    for query in [
        format!("session_jwt={jwt}"),
        format!("session_token={token}"),
        format!("access_token={jwt}"),
        format!("access_token={token}"),
        format!("jwt={jwt}&token={token}"),
        format!("authorization=Bearer%20{jwt}"),
    ] {
        let (status, _) = send(&app, &format!("/me?{query}"), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{query:.40}");
    }
}

/// A cookie and an `Authorization` header naming different sessions (two genuine JWTs, or two
/// live tokens) are a conflict (400); agreeing copies authenticate. The header is the credential
/// the client chose: an ambient cookie that is not genuine cannot lock it out, and nothing the
/// cookie says can make the header's credential name someone else.
/// RFC 6750 §2 (clients should use one method per request), OWASP session management cheat
/// sheet (reject ambiguous session identifiers).
#[tokio::test]
async fn cookie_and_header_disagreeing_are_refused() {
    let env = env().await;
    let alice = env.alice.jwt.expose();
    let bob = env.bob.jwt.expose();
    let app = app(SessionLayer::new(env.sessions.clone()));
    let cookie = format!("session_jwt={alice}");
    let header = format!("Bearer {alice}");
    let (status, body) = send(
        &app,
        "/me",
        &[
            ("cookie", cookie.as_bytes()),
            ("authorization", header.as_bytes()),
        ],
    )
    .await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "alice"));
    for (cookie, header, expected) in [
        (
            format!("session_jwt={alice}"),
            format!("Bearer {bob}"),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("session_jwt={alice}"),
            format!("Bearer {}", env.bob.token.expose()),
            StatusCode::BAD_REQUEST,
        ),
        (
            format!("session_token={}", env.alice.token.expose()),
            format!("Bearer {}", env.bob.token.expose()),
            StatusCode::BAD_REQUEST,
        ),
        // The header decides: a refused header credential is refused whatever the cookie holds.
        (
            format!("session_jwt={alice}"),
            "Bearer a.b.c".to_owned(),
            StatusCode::UNAUTHORIZED,
        ),
        // A cookie that is not a genuine credential is no conflict: the header decides.
        (
            "session_jwt=garbage".to_owned(),
            format!("Bearer {alice}"),
            StatusCode::OK,
        ),
        (
            "session_token=garbage".to_owned(),
            format!("Bearer {alice}"),
            StatusCode::OK,
        ),
    ] {
        assert_eq!(
            status_of(
                &app,
                &[
                    ("cookie", cookie.as_bytes()),
                    ("authorization", header.as_bytes())
                ]
            )
            .await,
            expected,
            "{cookie:.40} / {header:.40}"
        );
    }
}

/// Regression: a JWT and an opaque token naming DIFFERENT sessions used not to
/// be cross-checked: when the JWT stopped being usable (expired, revoked), the layer silently
/// fell back to the token, another user's session, so a tossed `session_token` cookie (no
/// `__Host-` prefix) took over the request as soon as the victim's JWT expired.
/// Expected: 400 `ConflictingCredentials`, as for disagreeing duplicates.
/// OWASP session management cheat sheet (session fixation); RFC 6265 §8.6 (weak integrity).
#[tokio::test]
async fn jwt_and_token_of_different_sessions_are_refused() {
    let env = env().await;
    let app = app(SessionLayer::new(env.sessions.clone()));
    let cookie = format!(
        "session_jwt={}; session_token={}",
        env.alice.jwt.expose(),
        env.bob.token.expose()
    );
    env.clock.advance(Duration::from_secs(400));
    let (status, body) = send(&app, "/me", &[("cookie", cookie.as_bytes())]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "authenticated as {body}");
}
