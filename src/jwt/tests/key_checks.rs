//! Keys: retired keys, public halves, JWKS, weak keys, duplicate ids, redaction, export.

use super::*;

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
        Err(crate::jwt::DuplicateKeyId(_))
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
