//! Every rejection reason of JWT verification, each next to the token that provokes it.

use super::*;
use crate::data::session::{SessionAttributes, SessionId};
use serde_json::{Value, json};
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-06-01 12:00 UTC);
const ED_PEM: &[u8] = include_bytes!("../../tests/keys/ed25519.pem");
const ED_PUB_PEM: &[u8] = include_bytes!("../../tests/keys/ed25519.pub.pem");
const P256_PEM: &[u8] = include_bytes!("../../tests/keys/p256.pem");
const P256_PUB_PEM: &[u8] = include_bytes!("../../tests/keys/p256.pub.pem");
const RSA_PEM: &[u8] = include_bytes!("../../tests/keys/rsa2048.pem");
const RSA_PUB_PEM: &[u8] = include_bytes!("../../tests/keys/rsa2048.pub.pem");
const RSA1024_PEM: &[u8] = include_bytes!("../../tests/keys/rsa1024.pem");

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

#[test]
fn too_long() {
    let codec = codec_with(ed_key());
    let token = "a".repeat(8193);
    assert_eq!(
        verify(&codec, &token),
        Err(JwtError::TooLong {
            len: 8193,
            max: 8192
        })
    );
}

#[test]
fn malformed_framing() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let good = codec.mint(&session(), NOW).unwrap();
    let good = good.expose();
    let (hp, sig) = good.rsplit_once('.').unwrap();
    let cases = [
        String::new(),
        "abc".to_string(),
        hp.to_string(),                                    // two segments
        format!("{good}.x"),                               // four segments
        format!("{hp}.{sig}="),                            // padded signature
        format!("{hp}.{}", &sig.replace(['-', '_'], "+")), // base64 (not url) alphabet
        format!("{hp}.{}A", &sig[..sig.len() - 1]),        // non-canonical trailing bits
        format!("{hp}."),                                  // empty signature
    ];
    for token in &cases {
        let err = verify(&codec, token).unwrap_err();
        assert!(
            matches!(err, JwtError::Malformed | JwtError::InvalidSignature),
            "{token:?} gave {err:?}"
        );
    }
    // A payload that is not a JSON object, signed properly, is malformed, not accepted.
    for payload in ["[]", "null", "not json", "{\"iss\":", "{} trailing"] {
        let token = forge(&key, &header_of(&key), payload);
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::Malformed),
            "{payload}"
        );
    }
    // Non-canonical base64url in the payload (trailing bits set) is refused even when signed.
    let payload = b64(claims().to_string());
    if let Some(last) = payload.chars().last()
        && !payload.len().is_multiple_of(4)
    {
        let bumped = match last {
            'A' => 'B',
            'Q' => 'R',
            'g' => 'h',
            'w' => 'x',
            other => other,
        };
        if bumped != last {
            let input = format!(
                "{}.{}{}",
                b64(header_of(&key)),
                &payload[..payload.len() - 1],
                bumped
            );
            let token = format!("{input}.{}", b64(key.sign(input.as_bytes()).unwrap()));
            assert_eq!(verify(&codec, &token), Err(JwtError::Malformed));
        }
    }
}

#[test]
fn algorithm_none_is_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let header = format!(r#"{{"alg":"none","typ":"JWT","kid":"{}"}}"#, key.kid());
    let token = format!("{}.{}.", b64(header), b64(claims().to_string()));
    assert!(matches!(
        verify(&codec, &token),
        Err(JwtError::AlgorithmMismatch { ref found, expected: Some(Algorithm::EdDSA) }) if found == "none"
    ));
}

#[test]
fn algorithm_confusion_hs256_with_public_key_is_refused() {
    // The classic attack: sign with HMAC using the verifier's public key as the secret.
    let key = SigningKey::rs256_pem(RSA_PEM).unwrap();
    let codec = codec_with(key.clone());
    let public_pem = RSA_PUB_PEM;
    let hmac = SigningKey::hs256("x", public_pem).unwrap();
    let header = format!(r#"{{"alg":"HS256","typ":"JWT","kid":"{}"}}"#, key.kid());
    let token = forge(&hmac, &header, &claims().to_string());
    assert!(matches!(
        verify(&codec, &token),
        Err(JwtError::AlgorithmMismatch {
            expected: Some(Algorithm::RS256),
            ..
        })
    ));
}

#[test]
fn unknown_or_missing_kid_is_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    for header in [
        r#"{"alg":"EdDSA","typ":"JWT","kid":"someone-else"}"#,
        r#"{"alg":"EdDSA","typ":"JWT"}"#,
        r#"{"alg":"EdDSA","typ":"JWT","kid":"../../dev/null"}"#,
    ] {
        let token = forge(&key, header, &claims().to_string());
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::UnknownKeyId),
            "{header}"
        );
    }
}

#[test]
fn wrong_typ_is_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    for typ in [r#""at+jwt""#, "null", "1"] {
        let header = format!(r#"{{"alg":"EdDSA","typ":{typ},"kid":"{}"}}"#, key.kid());
        let token = forge(&key, &header, &claims().to_string());
        assert_eq!(verify(&codec, &token), Err(JwtError::InvalidType), "{typ}");
    }
    let header = format!(r#"{{"alg":"EdDSA","kid":"{}"}}"#, key.kid());
    let token = forge(&key, &header, &claims().to_string());
    assert_eq!(verify(&codec, &token), Err(JwtError::InvalidType));
}

#[test]
fn crit_header_is_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let header = format!(
        r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}","crit":["exp"]}}"#,
        key.kid()
    );
    let token = forge(&key, &header, &claims().to_string());
    assert_eq!(verify(&codec, &token), Err(JwtError::CriticalHeader));
}

#[test]
fn any_other_header_is_refused_even_when_correctly_signed() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let kid = key.kid();
    for header in [
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","jku":"https://evil.example/jwks"}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","jwk":{{"kty":"OKP"}}}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","b64":false}}"#),
        format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}","cty":"JWT"}}"#),
        format!(r#"{{"typ":"JWT","alg":"EdDSA","kid":"{kid}"}}"#), // same fields, other order
        format!(r#"{{"alg":"EdDSA", "typ":"JWT","kid":"{kid}"}}"#), // whitespace
    ] {
        let token = forge(&key, &header, &claims().to_string());
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::UnexpectedHeader),
            "{header}"
        );
    }
}

#[test]
fn bad_signatures_are_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let token = codec.mint(&session(), NOW).unwrap().expose().to_owned();
    let (header, rest) = token.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();

    // Payload swapped for another user's, signature kept.
    let evil = b64(with(claims(), "sub", json!("admin")).to_string());
    assert_eq!(
        verify(&codec, &format!("{header}.{evil}.{sig}")),
        Err(JwtError::InvalidSignature)
    );

    // One flipped bit in the signature.
    let mut raw = URL_SAFE_NO_PAD.decode(sig).unwrap();
    raw[10] ^= 1;
    let flipped = format!("{}.{}", token.rsplit_once('.').unwrap().0, b64(&raw));
    assert_eq!(verify(&codec, &flipped), Err(JwtError::InvalidSignature));

    // Signed by another key that claims this key's kid.
    let other = SigningKey::generate_ed25519().unwrap();
    let token = forge(&other, &header_of(&key), &claims().to_string());
    assert_eq!(verify(&codec, &token), Err(JwtError::InvalidSignature));

    // Oversized signature.
    let token = format!("{}.{}", token.rsplit_once('.').unwrap().0, b64([0u8; 2000]));
    assert_eq!(verify(&codec, &token), Err(JwtError::Malformed));
}

#[test]
fn every_required_claim_is_required() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    for name in ["iss", "aud", "sub", "sid", "iat", "nbf", "exp", "session"] {
        let token = forged_claims(&key, &without(claims(), name));
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::MissingClaim(name)),
            "{name}"
        );
    }
}

#[test]
fn wrongly_typed_or_out_of_range_claims_are_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let now = NOW.unix_timestamp();
    let cases: Vec<(&str, Value)> = vec![
        ("exp", json!((now + 300).to_string())),
        ("exp", json!(now as f64 + 300.5)),
        ("exp", json!(-1)),
        ("exp", json!(u64::MAX)),
        ("iat", json!(null)),
        ("nbf", json!(true)),
        ("iat", json!(253_402_300_800i64)),
        ("iss", json!(1)),
        ("aud", json!(["app"])),
        ("sub", json!({"id": 1})),
        ("sub", json!("")),
        ("sid", json!("not a session id")),
        ("session", json!("x")),
    ];
    for (name, value) in cases {
        let token = forged_claims(&key, &with(claims(), name, value.clone()));
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::InvalidClaim(name)),
            "{name} = {value}"
        );
    }
    // The nested session claim is strict too: unknown fields and bad timestamps are refused.
    let mut c = claims();
    c["session"]["extra"] = json!(1);
    assert_eq!(
        verify(&codec, &forged_claims(&key, &c)),
        Err(JwtError::InvalidClaim("session"))
    );
    let mut c = claims();
    c["session"]["expires_at"] = json!("tomorrow");
    assert_eq!(
        verify(&codec, &forged_claims(&key, &c)),
        Err(JwtError::InvalidClaim("session"))
    );
}

#[test]
fn duplicated_claims_are_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let body = claims().to_string();
    let inner = &body[1..body.len() - 1];
    let far = NOW.unix_timestamp() + 100_000;
    for (dup, name) in [
        (format!(r#"{{{inner},"exp":{far}}}"#), "exp"),
        (format!(r#"{{{inner},"sub":"admin"}}"#), "sub"),
        (format!(r#"{{{inner},"role":"root"}}"#), "role"),
    ] {
        let token = forge(&key, &header_of(&key), &dup);
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::DuplicateClaim(name.into())),
            "{name}"
        );
    }
}

#[test]
fn issuer_and_audience_must_match() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let token = forged_claims(&key, &with(claims(), "iss", json!("https://evil.example")));
    assert_eq!(verify(&codec, &token), Err(JwtError::InvalidIssuer));
    let token = forged_claims(&key, &with(claims(), "aud", json!("other-app")));
    assert_eq!(verify(&codec, &token), Err(JwtError::InvalidAudience));
}

#[test]
fn expiry_with_leeway() {
    let codec = codec_with(ed_key());
    let jwt = codec.mint(&session(), NOW).unwrap();
    let at = |secs: i64| {
        codec.verify(
            jwt.expose(),
            NOW + time::Duration::seconds(secs),
            Expiry::Enforce,
        )
    };
    assert!(at(299).is_ok());
    assert!(at(304).is_ok(), "within the 5 s leeway");
    assert_eq!(at(305).unwrap_err(), JwtError::Expired);
    // Revocation by JWT still reads an expired token.
    assert!(
        codec
            .verify(jwt.expose(), NOW + time::Duration::days(30), Expiry::Ignore)
            .is_ok()
    );
}

#[test]
fn not_yet_valid_and_issued_in_future() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let now = NOW.unix_timestamp();
    let nbf = with(claims(), "nbf", json!(now + 60));
    assert_eq!(
        verify(&codec, &forged_claims(&key, &nbf)),
        Err(JwtError::NotYetValid)
    );
    let small_skew = with(claims(), "nbf", json!(now + 4));
    assert!(verify(&codec, &forged_claims(&key, &small_skew)).is_ok());

    let future = with(
        with(with(claims(), "iat", json!(now + 60)), "nbf", json!(now)),
        "exp",
        json!(now + 300),
    );
    assert_eq!(
        verify(&codec, &forged_claims(&key, &future)),
        Err(JwtError::IssuedInFuture)
    );
}

#[test]
fn lifetime_above_the_ttl_is_refused() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let now = NOW.unix_timestamp();
    let long = with(claims(), "exp", json!(now + 301));
    assert_eq!(
        verify(&codec, &forged_claims(&key, &long)),
        Err(JwtError::LifetimeTooLong)
    );
    let inverted = with(claims(), "exp", json!(now - 1));
    assert_eq!(
        verify(&codec, &forged_claims(&key, &inverted)),
        Err(JwtError::InvalidClaim("exp"))
    );
}

#[test]
fn the_client_address_and_user_agent_are_not_minted() {
    let codec = codec_with(ed_key());
    let jwt = codec.mint(&session(), NOW).unwrap();
    let payload = jwt.expose().split('.').nth(1).unwrap();
    let payload = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert!(!payload.contains("203.0.113.7"), "{payload}");
    assert!(!payload.contains("test-agent"), "{payload}");
    assert!(!payload.contains("attributes"), "{payload}");
}

#[test]
fn retired_keys_verify_only_when_configured() {
    let old = SigningKey::es256_pem(P256_PEM).unwrap();
    let old_jwt = codec_with(old.clone()).mint(&session(), NOW).unwrap();

    let rotated = JwtCodec::new(
        ed_key(),
        vec![VerificationKey::es256_pem(P256_PUB_PEM).unwrap()],
        settings(),
    )
    .unwrap();
    assert_eq!(verify(&rotated, old_jwt.expose()).unwrap(), as_minted());

    let forgotten = codec_with(ed_key());
    assert_eq!(
        verify(&forgotten, old_jwt.expose()),
        Err(JwtError::UnknownKeyId)
    );
}

#[test]
fn public_pem_keys_match_their_private_halves() {
    for (private, public) in [
        (ed_key(), VerificationKey::ed25519_pem(ED_PUB_PEM).unwrap()),
        (
            SigningKey::es256_pem(P256_PEM).unwrap(),
            VerificationKey::es256_pem(P256_PUB_PEM).unwrap(),
        ),
        (
            SigningKey::rs256_pem(RSA_PEM).unwrap(),
            VerificationKey::rs256_pem(RSA_PUB_PEM).unwrap(),
        ),
    ] {
        assert_eq!(private.kid(), public.kid(), "thumbprints agree");
        let jwt = codec_with(private).mint(&session(), NOW).unwrap();
        let verifier = JwtCodec::new(
            SigningKey::generate_ed25519().unwrap(),
            vec![public],
            settings(),
        )
        .unwrap();
        assert!(verify(&verifier, jwt.expose()).is_ok());
    }
}

#[test]
fn jwks_publishes_public_keys_that_verify() {
    let codec = JwtCodec::new(
        ed_key(),
        vec![
            VerificationKey::es256_pem(P256_PUB_PEM).unwrap(),
            SigningKey::hs256("hs", &[1u8; 32])
                .unwrap()
                .verification_key()
                .clone(),
        ],
        settings(),
    )
    .unwrap();
    let jwks = codec.jwks();
    assert_eq!(jwks.keys.len(), 2, "the HS256 secret is never published");
    let text = serde_json::to_string(&jwks).unwrap();
    assert!(!text.contains("\"d\""), "no private parameters: {text}");
    let jwt = codec.mint(&session(), NOW).unwrap();
    let from_jwks = VerificationKey::from_jwk(&jwks.keys[0]).unwrap();
    assert_eq!(from_jwks.kid(), ed_key().kid());
    let verifier = JwtCodec::new(
        SigningKey::generate_ed25519().unwrap(),
        vec![from_jwks],
        settings(),
    )
    .unwrap();
    assert!(verify(&verifier, jwt.expose()).is_ok());
}

#[test]
fn weak_keys_are_refused() {
    assert!(matches!(
        SigningKey::hs256("k", &[0u8; 31]),
        Err(KeyError::SecretTooShort(31))
    ));
    assert!(SigningKey::rs256_pem(RSA1024_PEM).is_err());
    assert!(SigningKey::ed25519_pem(P256_PEM).is_err(), "wrong key type");
    assert!(SigningKey::ed25519_pem(b"-----BEGIN PRIVATE KEY-----\ngarbage\n").is_err());
    assert!(matches!(
        ed_key().with_kid("has space"),
        Err(KeyError::InvalidKeyId)
    ));
}

#[test]
fn duplicate_kids_are_refused() {
    let key = ed_key();
    let again = VerificationKey::ed25519_pem(ED_PUB_PEM).unwrap();
    assert!(matches!(
        JwtCodec::new(key, vec![again], settings()),
        Err(crate::engine::ConfigError::DuplicateKeyId(_))
    ));
}

#[test]
fn keys_and_jwts_are_redacted() {
    let key = ed_key();
    let pem = key.to_pkcs8_pem().unwrap();
    let body: String = pem.lines().nth(1).unwrap().chars().take(20).collect();
    assert!(!format!("{key:?}").contains(&body));
    let jwt = codec_with(key).mint(&session(), NOW).unwrap();
    let printed = format!("{jwt:?} {jwt}");
    assert!(!printed.contains(jwt.expose().split('.').nth(1).unwrap()));
}

#[test]
fn exported_pem_round_trips() {
    for key in [
        ed_key(),
        SigningKey::generate_es256().unwrap(),
        SigningKey::rs256_pem(RSA_PEM).unwrap(),
    ] {
        let pem = key.to_pkcs8_pem().unwrap();
        let again = match key.algorithm() {
            Algorithm::EdDSA => SigningKey::ed25519_pem(pem.as_bytes()),
            Algorithm::ES256 => SigningKey::es256_pem(pem.as_bytes()),
            Algorithm::RS256 => SigningKey::rs256_pem(pem.as_bytes()),
            Algorithm::HS256 => unreachable!(),
        }
        .unwrap();
        assert_eq!(again.kid(), key.kid());
    }
    assert!(
        SigningKey::hs256("k", &[0u8; 32])
            .unwrap()
            .to_pkcs8_pem()
            .is_none()
    );
}
