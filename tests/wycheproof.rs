//! Project Wycheproof vectors (tests/vectors/wycheproof, see NOTE.md there) run through the
//! crate's own key constructors and its raw verification primitive
//! (`VerificationKey::verify_signature`), and whole compact JWS strings run through the full
//! session-JWT verifier (`Sessions::authenticate_jwt`).
//!
//! Rules: every `valid` vector is accepted, every `invalid` one refused, `acceptable` may go
//! either way. A group whose key the crate refuses to load accepts nothing, so none of its
//! `valid` vectors can be accepted; such groups are counted and must be expected.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::Jwk;
use serde_json::Value;
use tower_session_jwt::jwt::KeyError;
use tower_session_jwt::{MemoryStore, Sessions, SigningKey, VerificationKey};

const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/wycheproof/");

fn load(name: &str) -> Value {
    let text = std::fs::read_to_string(format!("{DIR}{name}")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn hex(text: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

fn groups(file: &Value) -> &Vec<Value> {
    file["testGroups"].as_array().unwrap()
}

fn tests(group: &Value) -> &Vec<Value> {
    group["tests"].as_array().unwrap()
}

/// Counts for one file, printed at the end of each test.
#[derive(Default, Debug)]
struct Counts {
    vectors: usize,
    valid_accepted: usize,
    invalid_rejected: usize,
    acceptable_accepted: usize,
    acceptable_rejected: usize,
    /// Vectors of groups whose key the crate refused to load (all rejected).
    key_refused_vectors: usize,
    key_refused_valid: usize,
    key_refused_groups: usize,
    skipped: usize,
}

impl Counts {
    fn record(&mut self, file: &str, tc: &Value, result: &str, accepted: bool) {
        self.vectors += 1;
        match (result, accepted) {
            ("valid", true) => self.valid_accepted += 1,
            ("invalid", false) => self.invalid_rejected += 1,
            ("acceptable", true) => self.acceptable_accepted += 1,
            ("acceptable", false) => self.acceptable_rejected += 1,
            _ => panic!(
                "{file} tcId {} ({}, flags {}): expected {result}, crate {}",
                tc["tcId"],
                tc["comment"],
                tc["flags"],
                if accepted { "accepted" } else { "rejected" }
            ),
        }
    }

    fn print(&self, file: &str) {
        println!("{file}: {self:?}");
    }
}

/// Runs every vector of `file` against the key each group yields (`None`: key refused).
fn run_signature_file(
    file: &str,
    key_of: impl Fn(&Value) -> Vec<Result<VerificationKey, KeyError>>,
) -> Counts {
    let data = load(file);
    let mut counts = Counts::default();
    for group in groups(&data) {
        let keys = key_of(group);
        assert!(!keys.is_empty());
        let loaded: Vec<&VerificationKey> = keys.iter().filter_map(|k| k.as_ref().ok()).collect();
        if loaded.is_empty() {
            counts.key_refused_groups += 1;
            for tc in tests(group) {
                counts.key_refused_vectors += 1;
                if tc["result"] == "valid" {
                    counts.key_refused_valid += 1;
                }
            }
            continue;
        }
        // Every constructor that loads the key (JWK and PEM) must give the same verdicts.
        assert_eq!(
            loaded.len(),
            keys.len(),
            "{file}: the JWK and PEM forms of one key disagree on loading: {:?}",
            keys.iter().map(|k| k.as_ref().err()).collect::<Vec<_>>()
        );
        for tc in tests(group) {
            let msg = hex(tc["msg"].as_str().unwrap());
            let sig = hex(tc["sig"].as_str().unwrap());
            let verdicts: Vec<bool> = loaded
                .iter()
                .map(|k| k.verify_signature(&msg, &sig))
                .collect();
            assert!(
                verdicts.windows(2).all(|w| w[0] == w[1]),
                "{file} tcId {}: constructors disagree",
                tc["tcId"]
            );
            counts.record(file, tc, tc["result"].as_str().unwrap(), verdicts[0]);
        }
    }
    counts.print(file);
    counts
}

fn jwk_of(value: &Value) -> Jwk {
    serde_json::from_value(value.clone()).unwrap()
}

fn from_group_keys(
    group: &Value,
    pem: fn(&[u8]) -> Result<VerificationKey, KeyError>,
    jwk_field: &str,
) -> Vec<Result<VerificationKey, KeyError>> {
    let mut keys = Vec::new();
    if let Some(jwk) = group.get(jwk_field) {
        keys.push(VerificationKey::from_jwk(&jwk_of(jwk)));
    }
    if let Some(text) = group["publicKeyPem"].as_str() {
        keys.push(pem(text.as_bytes()));
    }
    keys
}

#[test]
fn ed25519_vectors() {
    let counts = run_signature_file("ed25519_test.json", |g| {
        from_group_keys(g, VerificationKey::ed25519_pem, "publicKeyJwk")
    });
    assert_eq!(counts.vectors, 151);
    assert_eq!(counts.key_refused_groups, 0, "every Ed25519 key loads");
    assert_eq!(counts.valid_accepted, 88);
    assert_eq!(counts.invalid_rejected, 63);
}

#[test]
fn ecdsa_p256_p1363_vectors() {
    let counts = run_signature_file("ecdsa_secp256r1_sha256_p1363_test.json", |g| {
        assert_eq!(g["sha"], "SHA-256");
        from_group_keys(g, VerificationKey::es256_pem, "publicKeyJwk")
    });
    assert_eq!(counts.vectors, 262);
    assert_eq!(counts.key_refused_groups, 0, "every P-256 key loads");
    assert_eq!(counts.valid_accepted, 173);
    assert_eq!(counts.invalid_rejected, 89);
}

#[test]
fn rsa_pkcs1_2048_sha256_vectors() {
    let counts = run_signature_file("rsa_signature_2048_sha256_test.json", |g| {
        assert_eq!(g["sha"], "SHA-256");
        assert!(g["keySize"].as_u64().unwrap() >= 2048);
        from_group_keys(g, VerificationKey::rs256_pem, "keyJwk")
    });
    assert_eq!(counts.vectors, 259);
    assert_eq!(counts.key_refused_groups, 0, "every 2048-bit key loads");
    assert_eq!(counts.valid_accepted, 9);
    assert_eq!(counts.invalid_rejected, 249);
    assert_eq!(counts.acceptable_accepted + counts.acceptable_rejected, 1);
}

/// HS256: `VerificationKey::hs256` refuses keys shorter than 32 bytes (RFC 7518 §3.2 requires a
/// key at least as long as the hash output), so the 16-byte-key groups are skipped with that
/// reason after checking the refusal. Groups with 128-bit tags are run too, with a stricter
/// expectation than Wycheproof's: JWS `HS256` carries the full 256-bit tag, so a truncated tag
/// must never verify, even one Wycheproof calls `valid` for truncated-MAC APIs.
#[test]
fn hmac_sha256_vectors() {
    let file = "hmac_sha256_test.json";
    let data = load(file);
    let mut counts = Counts::default();
    let mut truncated_rejected = 0;
    let mut skipped_short_key = 0;
    for group in groups(&data) {
        let key_bits = group["keySize"].as_u64().unwrap();
        let tag_bits = group["tagSize"].as_u64().unwrap();
        for tc in tests(group) {
            let key_bytes = hex(tc["key"].as_str().unwrap());
            assert_eq!(key_bytes.len() as u64 * 8, key_bits);
            let key = VerificationKey::hs256("wycheproof", &key_bytes);
            if key_bytes.len() < 32 {
                // Skipped with reason: the constructor refuses short secrets.
                assert!(matches!(key, Err(KeyError::SecretTooShort(n)) if n == key_bytes.len()));
                skipped_short_key += 1;
                counts.skipped += 1;
                continue;
            }
            let key = key.unwrap();
            let msg = hex(tc["msg"].as_str().unwrap());
            let tag = hex(tc["tag"].as_str().unwrap());
            let accepted = key.verify_signature(&msg, &tag);
            if tag_bits == 256 {
                counts.record(file, tc, tc["result"].as_str().unwrap(), accepted);
            } else {
                assert!(!accepted, "tcId {}: a truncated tag verified", tc["tcId"]);
                truncated_rejected += 1;
                counts.skipped += 1;
            }
        }
    }
    counts.print(file);
    println!(
        "{file}: {skipped_short_key} skipped (key < 32 bytes), {truncated_rejected} truncated tags rejected"
    );
    assert_eq!(
        counts.vectors, 84,
        "tagSize 256 with a key of 32 bytes or more"
    );
    assert_eq!(counts.valid_accepted, 30);
    assert_eq!(counts.invalid_rejected, 54);
    assert_eq!(skipped_short_key, 6);
    assert_eq!(truncated_rejected, 84);
}

/// A JWK without its private members.
fn public_jwk(private: &Value) -> Value {
    let mut jwk = private.clone();
    let object = jwk.as_object_mut().unwrap();
    for member in ["d", "p", "q", "dp", "dq", "qi", "oth"] {
        object.remove(member);
    }
    jwk
}

fn valid_kid(kid: &str) -> bool {
    !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// What the crate makes of a JWS group's key: a verification key, or why it is refused.
fn jws_group_key(group: &Value) -> Result<VerificationKey, String> {
    let private = &group["private"];
    match private["kty"].as_str() {
        Some("oct") => {
            let k = URL_SAFE_NO_PAD
                .decode(private["k"].as_str().unwrap())
                .unwrap();
            let kid = private["kid"].as_str().unwrap_or("wycheproof");
            VerificationKey::hs256(kid, &k).map_err(|e| e.to_string())
        }
        _ => {
            let mut jwk = public_jwk(private);
            // A kid outside [A-Za-z0-9._-] (RFC 7520's "bilbo.baggins@hobbiton.example") is
            // refused by the crate; load the key without it (thumbprint kid) so its signatures
            // can still be checked.
            if let Some(kid) = jwk.get("kid").and_then(Value::as_str)
                && !valid_kid(kid)
            {
                jwk.as_object_mut().unwrap().remove("kid");
            }
            let jwk: Jwk = serde_json::from_value(jwk).map_err(|e| e.to_string())?;
            VerificationKey::from_jwk(&jwk).map_err(|e| e.to_string())
        }
    }
}

/// `Sessions` that trust `key` (as its signing key for HS256, else as a verification key).
fn sessions_with(key: &VerificationKey, private: &Value) -> Sessions {
    let builder = Sessions::builder().store(MemoryStore::new());
    if private["kty"] == "oct" {
        let k = URL_SAFE_NO_PAD
            .decode(private["k"].as_str().unwrap())
            .unwrap();
        builder
            .signing_key(SigningKey::hs256(key.kid(), &k).unwrap())
            .build()
            .unwrap()
    } else {
        builder
            .signing_key(
                SigningKey::generate_ed25519()
                    .unwrap()
                    .with_kid("test-signer")
                    .unwrap(),
            )
            .verification_key(key.clone())
            .build()
            .unwrap()
    }
}

/// `valid` upstream, but their base64url carries an inserted `?` (see below).
const STRICT_BASE64: [u64; 2] = [372, 373];

/// Whole compact JWS strings through `Sessions::authenticate_jwt`.
///
/// None of these tokens was minted by the crate: their headers are `{"alg":…,"kid":…}` without
/// `"typ":"JWT"` (or with extra members), so none is byte for byte a pinned header, and the
/// session-JWT verifier must refuse every one of them, `valid` or not. Where the crate can load
/// the group's key, `Sessions` is built trusting it (HS256 secret as the signing key, public
/// keys as verification keys), so the refusal is the pinned-header policy and not an unknown
/// key. To show the refusal is not a broken primitive, every `valid` vector whose key loads is
/// also checked with `VerificationKey::verify_signature(header.payload, signature)` and must
/// verify.
///
/// Vectors treated differently from their Wycheproof `result`:
/// * every `valid` vector (46): rejected by `authenticate_jwt`, by design (pinned header,
///   RFC 8725 §3.1/§3.11: a verifier accepts only the algorithms and token types it issued);
/// * `valid` vectors of groups whose key the crate refuses (RS384/RS512/PS256/PS384/PS512/ES512
///   keys: `from_jwk` refuses a JWK whose `alg` is not the crate's algorithm for that key type,
///   and P-521 curves): counted in `key_refused`;
/// * tcId 372 and 373 (`InvalidCharacterInsertedInHeader/Payload`, `valid` upstream): a `?` in a
///   base64url segment; the crate's strict base64url refuses them (RFC 7515 §2 and §7.1:
///   segments are base64url without other characters); their signature is checked over the
///   literal bytes, where it does not verify (it was computed without the `?`);
/// * tcId 17 (`rejectsValidJsonSerialization`): the JWS JSON serialization is not a compact
///   token; rejected as expected.
#[tokio::test]
async fn json_web_signature_vectors() {
    let file = "json_web_signature_test.json";
    let data = load(file);
    let mut total = 0;
    let mut valid = 0;
    let mut valid_sig_checked = 0;
    let mut key_refused_valid = 0;
    let mut strict_base64 = 0;
    let mut key_refused_groups: BTreeMap<String, String> = BTreeMap::new();
    let mut reasons: BTreeMap<&'static str, usize> = BTreeMap::new();
    // A manager that trusts no key of this file: it must refuse everything too.
    let stranger = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .build()
        .unwrap();
    for group in groups(&data) {
        let key = jws_group_key(group);
        let sessions = key
            .as_ref()
            .ok()
            .map(|key| sessions_with(key, &group["private"]));
        if let Err(why) = &key {
            key_refused_groups.insert(
                format!(
                    "{} (tc {})",
                    group["comment"].as_str().unwrap_or("?"),
                    tests(group)[0]["tcId"]
                ),
                why.clone(),
            );
        }
        for tc in tests(group) {
            total += 1;
            let jws = match &tc["jws"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            for manager in sessions.iter().chain([&stranger]) {
                let error = manager
                    .authenticate_jwt(&jws)
                    .await
                    .expect_err(&format!("tcId {} was accepted", tc["tcId"]));
                *reasons.entry(error.reason()).or_default() += 1;
            }
            if tc["result"] != "valid" {
                continue;
            }
            valid += 1;
            if STRICT_BASE64.contains(&tc["tcId"].as_u64().unwrap()) {
                // Signed over the segments without the inserted `?`: not over the literal
                // bytes, so the primitive refuses them as well.
                let (input, sig) = jws.rsplit_once('.').unwrap();
                assert!(
                    URL_SAFE_NO_PAD
                        .decode(input.split('.').next().unwrap())
                        .is_err()
                        || URL_SAFE_NO_PAD
                            .decode(input.split('.').nth(1).unwrap())
                            .is_err()
                );
                let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
                assert!(
                    !key.as_ref()
                        .unwrap()
                        .verify_signature(input.as_bytes(), &sig)
                );
                strict_base64 += 1;
                continue;
            }
            let Ok(key) = &key else {
                key_refused_valid += 1;
                continue;
            };
            let (input, sig) = jws.rsplit_once('.').unwrap();
            let sig = URL_SAFE_NO_PAD.decode(sig).unwrap();
            assert!(
                key.verify_signature(input.as_bytes(), &sig),
                "tcId {} ({}): valid signature refused by the primitive",
                tc["tcId"],
                tc["comment"]
            );
            valid_sig_checked += 1;
        }
    }
    println!(
        "{file}: {total} tokens all rejected by authenticate_jwt; {valid} valid, of which \
         {valid_sig_checked} verified by verify_signature, {key_refused_valid} have a key the \
         crate refuses, {strict_base64} are not strict base64url; rejection reasons {reasons:?}"
    );
    println!("{file}: groups whose key is refused: {key_refused_groups:#?}");
    assert_eq!(total, 401);
    assert_eq!(valid, 46);
    assert_eq!(strict_base64, STRICT_BASE64.len());
    assert_eq!(valid_sig_checked + key_refused_valid + strict_base64, valid);
}

/// Groups 17–20 of json_web_signature_test.json carry keys marked for encryption
/// (`"use":"enc"`, or `"key_ops":["encrypt","decrypt"]`); Wycheproof expects their tokens to be
/// refused (`rejectWrongUse`, `rejectWrongKeyOps`). RFC 7517 §4.2–§4.3: a key whose `use` or
/// `key_ops` excludes signature verification must not verify signatures. The session verifier
/// still refuses those tokens (pinned header); `VerificationKey::from_jwk` must also refuse to
/// load such keys as verification keys (a regression test: it used to load them).
#[test]
fn from_jwk_refuses_keys_not_meant_for_signature_verification() {
    let data = load("json_web_signature_test.json");
    let mut checked = 0;
    for group in groups(&data) {
        let private = &group["private"];
        let for_encryption = private["use"] == "enc"
            || private["key_ops"]
                .as_array()
                .is_some_and(|ops| !ops.iter().any(|op| op == "verify"));
        if !for_encryption {
            continue;
        }
        checked += 1;
        let jwk = jwk_of(&public_jwk(private));
        assert!(
            VerificationKey::from_jwk(&jwk).is_err(),
            "{}: an encryption key was loaded as a verification key",
            group["comment"]
        );
    }
    assert_eq!(checked, 5);
}

/// A 1024-bit RSA public key (generated with `openssl genrsa 1024`), and its valid
/// RSASSA-PKCS1-v1_5 SHA-256 signature over `header.payload` (`openssl dgst -sha256 -sign`).
const RSA_1024_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQCnPNT9tbpLr9rXxzXC5ICi+qDQ
HMCT092Muztzthmd1p/bYcO9YDQC1nT2XEUr6e/ZgsV07zagpu/4JyWIJiNh32hh
wVWLDdi/hnBQtH1ie517WrK77mX9WfDfize0UMgIot6UeH5Nkcig3qaXx+KWoQpN
s5IbTkEarZNMbdWOnwIDAQAB
-----END PUBLIC KEY-----
";
const RSA_1024_SIGNATURE_HEX: &str = "43f94c9af6648cb01e2eaaf8ad39d904e9c2d81f8588f4ba8dda26f6d466d3a36b3cced14c8d82dd20fa729bef876df899d95d43343d40ba1baedca0ca3f4fe69816508f3bcefcd295d4660ad2c98272fa18015dcf00875456562845d61d5df7b80f6e63743a8fabe6760bd6b1f7bc65300adb9e01c5a1bf4a6891203c7b2728";

/// Fail-closed part: whatever the constructor does, a valid signature by a 1024-bit key never
/// verifies (the verifier is `RSA_PKCS1_2048_8192_SHA256`).
#[test]
fn rsa_keys_under_2048_bits_never_verify() {
    let signature = hex(RSA_1024_SIGNATURE_HEX);
    if let Ok(key) = VerificationKey::rs256_pem(RSA_1024_PUBLIC_PEM.as_bytes()) {
        assert!(!key.verify_signature(b"header.payload", &signature));
        let jwk = key.jwk().unwrap().clone();
        if let Ok(key) = VerificationKey::from_jwk(&jwk) {
            assert!(!key.verify_signature(b"header.payload", &signature));
        }
    }
}

/// `VerificationKey::rs256_pem` documents "2048 bits or more" (RFC 7518 §3.3 requires it), and
/// `SigningKey::rs256_pem` enforces it; the verification constructors must too (regression:
/// they used to load a 1024-bit key, so the mistake only showed up as every JWT
/// failing, and `Sessions::jwks()` would have published the weak key).
#[test]

fn rsa_public_keys_under_2048_bits_are_refused() {
    let loaded = VerificationKey::rs256_pem(RSA_1024_PUBLIC_PEM.as_bytes());
    assert!(loaded.is_err(), "a 1024-bit RSA key loaded: {loaded:?}");
}
