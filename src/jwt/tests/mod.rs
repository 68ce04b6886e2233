//! Every rejection reason of JWT verification, each next to the token that provokes it.

use super::*;
use crate::data::session::{SessionAttributes, SessionId};
use serde_json::{Value, json};
use time::macros::datetime;

// Named apart from the modules under test (`jwt::claims`, `jwt::keys`), which `super::*` brings
// in.
mod claim_checks;
mod header_checks;
mod key_checks;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const ED_PEM: &[u8] = include_bytes!("../../../tests/keys/ed25519.pem");
const ED_PUB_PEM: &[u8] = include_bytes!("../../../tests/keys/ed25519.pub.pem");
const P256_PEM: &[u8] = include_bytes!("../../../tests/keys/p256.pem");
const P256_PUB_PEM: &[u8] = include_bytes!("../../../tests/keys/p256.pub.pem");
const RSA_PEM: &[u8] = include_bytes!("../../../tests/keys/rsa2048.pem");
const RSA_PUB_PEM: &[u8] = include_bytes!("../../../tests/keys/rsa2048.pub.pem");
const RSA1024_PEM: &[u8] = include_bytes!("../../../tests/keys/rsa1024.pem");

fn settings() -> JwtSettings {
    JwtSettings {
        issuer: "https://app.example".into(),
        audience: "app".into(),
        ttl_secs: 300,
        leeway_secs: 5,
        max_len: 8192,
    }
}

fn codec_with(key: SigningKey) -> JwtCodec {
    JwtCodec::new(key, vec![], settings()).unwrap()
}

fn ed_key() -> SigningKey {
    SigningKey::ed25519_pem(ED_PEM).unwrap()
}

fn session() -> Session {
    Session::new(
        SessionId::parse("session-abc123").unwrap(),
        "user-1",
        NOW,
        NOW + time::Duration::days(7),
    )
    .with_attributes(SessionAttributes::new("203.0.113.7", "test-agent"))
    .with_custom_claims(json!({"role": "admin"}).as_object().unwrap().clone())
}

/// [`session`] as a JWT carries it: without the attributes (IP address and user agent), which
/// are never minted.
fn as_minted() -> Session {
    Session {
        attributes: SessionAttributes::default(),
        ..session()
    }
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Signs an arbitrary header and payload with `key`, bypassing the minting code.
fn forge(key: &SigningKey, header: &str, payload: &str) -> String {
    let input = format!("{}.{}", b64(header), b64(payload));
    let sig = key.sign(input.as_bytes()).unwrap();
    format!("{input}.{}", b64(sig))
}

fn header_of(key: &SigningKey) -> String {
    format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        key.algorithm().as_str(),
        key.kid()
    )
}

fn claims() -> Value {
    let now = NOW.unix_timestamp();
    json!({
        "iss": "https://app.example", "aud": "app", "sub": "user-1", "sid": "session-abc123",
        "iat": now, "nbf": now, "exp": now + 300,
        "session": {
            "started_at": "2026-06-01T12:00:00Z", "last_accessed_at": "2026-06-01T12:00:00Z",
            "expires_at": "2026-06-08T12:00:00Z",
            "attributes": {"ip_address": "203.0.113.7", "user_agent": "test-agent"}
        },
        "role": "admin"
    })
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

fn verify(codec: &JwtCodec, token: &str) -> Result<Session, JwtError> {
    codec.verify(token, NOW, Expiry::Enforce).map(|v| v.session)
}

fn forged_claims(key: &SigningKey, claims: &Value) -> String {
    forge(key, &header_of(key), &claims.to_string())
}

#[test]
fn every_algorithm_round_trips() {
    for key in [
        ed_key(),
        SigningKey::es256_pem(P256_PEM).unwrap(),
        SigningKey::rs256_pem(RSA_PEM).unwrap(),
        SigningKey::hs256("hs-1", &[7u8; 32]).unwrap(),
        SigningKey::generate_es256().unwrap(),
    ] {
        let codec = codec_with(key.clone());
        let jwt = codec.mint(&session(), NOW).unwrap();
        assert_eq!(jwt.expires_at(), NOW + time::Duration::seconds(300));
        let got = verify(&codec, jwt.expose()).unwrap_or_else(|e| panic!("{key:?}: {e}"));
        assert_eq!(got, as_minted(), "{key:?}");
    }
}

#[test]
fn hand_built_claims_match_minted_ones() {
    // The forging helper builds the same token shape the minting code does; if this fails, the
    // adversarial tests below would test the helper, not the verifier.
    let key = ed_key();
    let codec = codec_with(key.clone());
    assert_eq!(
        verify(&codec, &forged_claims(&key, &claims())).unwrap(),
        session()
    );
}

#[test]
fn exp_never_outlives_the_session() {
    let codec = codec_with(ed_key());
    let mut s = session();
    s.expires_at = NOW + time::Duration::seconds(42);
    let jwt = codec.mint(&s, NOW).unwrap();
    assert_eq!(jwt.expires_at(), s.expires_at);
    assert!(
        codec
            .verify(
                jwt.expose(),
                NOW + time::Duration::seconds(41),
                Expiry::Enforce
            )
            .is_ok()
    );
    assert_eq!(
        codec
            .verify(
                jwt.expose(),
                NOW + time::Duration::seconds(47),
                Expiry::Enforce
            )
            .unwrap_err(),
        JwtError::Expired
    );
}
