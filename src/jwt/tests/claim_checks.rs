//! The claims: required, typed, matched against the configuration and the clock.

use super::*;

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

/// Format 2's claims for [`session`]: `nbf`, `amr` and `auth_time` left out, the session as
/// the compact array.
fn compact_claims() -> Value {
    let now = NOW.unix_timestamp();
    json!({
        "iss": "https://app.example", "aud": "app", "sub": "user-1", "sid": "session-abc123",
        "iat": now, "exp": now + 300,
        "session": [2, now + 7 * 86_400, []],
        "role": "admin"
    })
}

#[test]
fn format_2_is_what_is_minted_and_reads_back() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let minted = codec.mint(&session(), NOW).unwrap();
    let part = minted.expose().split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap();
    assert_eq!(claims, compact_claims());
    assert_eq!(
        verify(&codec, &forged_claims(&key, &compact_claims())).unwrap(),
        as_minted()
    );
    // `nbf` may be there (it is checked), and is `iat` when it is not.
    let early = with(compact_claims(), "nbf", json!(NOW.unix_timestamp() + 60));
    assert_eq!(
        verify(&codec, &forged_claims(&key, &early)),
        Err(JwtError::NotYetValid)
    );
}

#[test]
fn format_2_session_claims_are_strict() {
    let key = ed_key();
    let codec = codec_with(key.clone());
    let now = NOW.unix_timestamp();
    let week = now + 7 * 86_400;
    let nine: Vec<String> = (0..9).map(|i| format!("f{i}")).collect();
    for bad in [
        json!([]),
        json!([3, week, []]),
        json!(["2", week, []]),
        json!([2]),
        json!([2, week]),
        json!([2, -1, []]),
        json!([2, "tomorrow", []]),
        json!([2, week, "password"]),
        json!([2, week, ["Pass word"]]),
        json!([2, week, ["password:"]]),
        json!([2, week, ["password:sms:x"]]),
        json!([2, week, [["password"]]]),
        json!([2, week, [["password", "now"]]]),
        json!([2, week, [["password", now, 1]]]),
        json!([2, week, nine]),
        json!([2, week, [], now, now, 1, 5]),
        json!([2, week, [], -5]),
        json!([2, week, [], 1000]),
        json!([2, week, [], 5, -1]),
        json!([2, week, [], now, 253_402_300_800i64]),
        json!({"f": 2}),
    ] {
        let token = forged_claims(&key, &with(compact_claims(), "session", bad.clone()));
        assert_eq!(
            verify(&codec, &token),
            Err(JwtError::InvalidClaim("session")),
            "{bad}"
        );
    }
    // Every optional element, and a factor of its own time and delivery method; every time
    // shares the start's milliseconds.
    let full = json!([
        2,
        week,
        ["password", ["otp:sms", now - 5]],
        250,
        now - 60,
        now - 30,
        7
    ]);
    let token = forged_claims(&key, &with(compact_claims(), "session", full));
    let read = verify(&codec, &token).unwrap();
    let ms = time::Duration::milliseconds(250);
    assert_eq!(read.started_at, NOW - time::Duration::seconds(60) + ms);
    assert_eq!(
        read.last_accessed_at,
        NOW - time::Duration::seconds(30) + ms
    );
    assert_eq!(read.expires_at, NOW + time::Duration::days(7) + ms);
    assert_eq!(read.version, 7);
    assert_eq!(read.amr(), ["pwd", "otp", "sms", "mfa"]);
    let factors = &read.authentication_factors;
    assert_eq!(factors[0].delivery_method, "knowledge");
    assert_eq!(factors[0].last_authenticated_at, read.started_at);
    assert_eq!(factors[1].delivery_method, "sms");
    assert_eq!(
        factors[1].last_authenticated_at,
        NOW - time::Duration::seconds(5) + ms
    );
}
