//! The framing and the pinned header: anything but the header a configured key mints is
//! refused, and so is a bad signature.

use super::*;

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
