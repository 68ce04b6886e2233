//! Property tests (proptest, 256 cases each): arbitrary credentials never authenticate, and no
//! mutation of a valid JWT or its header is accepted.

mod common;

use std::sync::OnceLock;

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{ED_PEM, builder};
use http::{HeaderValue, Request, StatusCode};
use jsonwebtoken::{EncodingKey, crypto};
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;
use tower_session_jwt::clock::{Clock, ManualClock};
use tower_session_jwt::sessions::Created;
use tower_session_jwt::{MemoryStore, NewSession, Session, SessionLayer, Sessions, SigningKey};

struct Fixture {
    rt: tokio::runtime::Runtime,
    sessions: Sessions,
    clock: ManualClock,
    alice: Created,
    bob: Created,
    kid: String,
    app: Router,
}

/// One manager on a frozen clock, shared by all properties of this binary.
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = ManualClock::starting_now();
        let (sessions, alice, bob) = rt.block_on(async {
            let sessions = builder(&clock, MemoryStore::with_clock(clock.clone()))
                .build()
                .unwrap();
            let alice = sessions.create("alice", NewSession::new()).await.unwrap();
            let bob = sessions.create("bob", NewSession::new()).await.unwrap();
            (sessions, alice, bob)
        });
        let app = Router::new()
            .route("/me", get(|s: Session| async move { s.user_id }))
            .layer(SessionLayer::new(sessions.clone()));
        Fixture {
            rt,
            kid: SigningKey::ed25519_pem(ED_PEM).unwrap().kid().to_owned(),
            sessions,
            clock,
            alice,
            bob,
            app,
        }
    })
}

/// Status of GET /me with these raw header values (values `http` refuses are dropped).
fn status(headers: &[(&str, &[u8])]) -> StatusCode {
    let f = fixture();
    let mut request = Request::get("/me").body(Body::empty()).unwrap();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            request.headers_mut().append(name, value);
        }
    }
    f.rt.block_on(f.app.clone().oneshot(request))
        .unwrap()
        .status()
}

fn never_authenticates(status: StatusCode) -> Result<(), TestCaseError> {
    prop_assert!(
        status == StatusCode::UNAUTHORIZED || status == StatusCode::BAD_REQUEST,
        "status {status}"
    );
    Ok(())
}

fn authenticate(token: &str) -> Option<String> {
    let f = fixture();
    f.rt.block_on(f.sessions.authenticate_jwt(token))
        .ok()
        .map(|s| s.user_id.clone())
}

fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn sign_segments(header_b64: &str, payload_b64: &str) -> String {
    let input = format!("{header_b64}.{payload_b64}");
    let key = EncodingKey::from_ed_pem(ED_PEM).unwrap();
    let signature = crypto::sign(input.as_bytes(), &key, jsonwebtoken::Algorithm::EdDSA).unwrap();
    format!("{input}.{signature}")
}

fn pinned(kid: &str) -> String {
    format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{kid}"}}"#)
}

/// Valid claims for alice at the frozen time: with the pinned header they authenticate.
fn alice_claims() -> String {
    let f = fixture();
    let s = &f.alice.session;
    let now = f.clock.now().unix_timestamp();
    let t = |t: time::OffsetDateTime| {
        t.format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    };
    json!({
        "iss": "https://app.example", "aud": "app",
        "sub": s.user_id, "sid": s.session_id.as_str(),
        "iat": now, "nbf": now, "exp": now + 300,
        "session": {
            "started_at": t(s.started_at), "last_accessed_at": t(s.last_accessed_at),
            "expires_at": t(s.expires_at), "attributes": {"ip_address": "", "user_agent": ""}
        }
    })
    .to_string()
}

/// Credential-ish text: the cookie names, scheme words, JWT/token fragments and separators.
fn credentialish() -> impl Strategy<Value = String> {
    let f = fixture();
    let pieces = vec![
        "session_jwt=".to_owned(),
        "session_token=".to_owned(),
        "__Host-session_jwt=".to_owned(),
        "Bearer ".to_owned(),
        "; ".to_owned(),
        ".".to_owned(),
        "\"".to_owned(),
        "=".to_owned(),
        " ".to_owned(),
        f.alice.jwt.expose()[..40].to_owned(),
        f.alice.token.expose()[..20].to_owned(),
        f.bob.jwt.expose().split('.').nth(2).unwrap().to_owned(),
    ];
    prop::collection::vec(
        prop_oneof![
            prop::sample::select(pieces),
            "[A-Za-z0-9_.=;\"-]{0,12}",
            any::<String>()
        ],
        0..24,
    )
    .prop_map(|parts| parts.concat())
}

#[derive(Debug, Clone)]
enum Mutation {
    FlipBit(usize, u8),
    Truncate(usize),
    Delete(usize),
    Insert(usize, char),
    Replace(usize, char),
    SwapSegments(usize, usize),
    DuplicateSegment(usize, usize),
    SpliceBob(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let c = prop::sample::select(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ \n"
            .chars()
            .collect::<Vec<_>>(),
    );
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(p, b)| Mutation::FlipBit(p, b)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Delete),
        (any::<usize>(), c.clone()).prop_map(|(p, c)| Mutation::Insert(p, c)),
        (any::<usize>(), c).prop_map(|(p, c)| Mutation::Replace(p, c)),
        (0usize..3, 0usize..3).prop_map(|(a, b)| Mutation::SwapSegments(a, b)),
        (0usize..3, 0usize..4).prop_map(|(a, b)| Mutation::DuplicateSegment(a, b)),
        (0usize..3).prop_map(Mutation::SpliceBob),
    ]
}

fn apply(token: &str, mutation: &Mutation) -> String {
    let mut bytes = token.as_bytes().to_vec();
    let len = bytes.len().max(1);
    match *mutation {
        Mutation::FlipBit(p, b) => {
            if let Some(x) = bytes.get_mut(p % len) {
                *x ^= 1 << b;
            }
        }
        Mutation::Truncate(p) => bytes.truncate(p % len),
        Mutation::Delete(p) => {
            if !bytes.is_empty() {
                bytes.remove(p % len);
            }
        }
        Mutation::Insert(p, c) => {
            let at = p % (bytes.len() + 1);
            let mut buf = [0u8; 4];
            bytes.splice(at..at, c.encode_utf8(&mut buf).bytes());
        }
        Mutation::Replace(p, c) => {
            if let Some(x) = bytes.get_mut(p % len) {
                *x = c as u8;
            }
        }
        Mutation::SwapSegments(a, b) | Mutation::DuplicateSegment(a, b) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut parts: Vec<&str> = text.split('.').collect();
            let n = parts.len();
            if matches!(mutation, Mutation::SwapSegments(..)) {
                parts.swap(a % n, b % n);
            } else {
                let part = parts[a % n];
                parts.insert(b.min(n), part);
            }
            return parts.join(".");
        }
        Mutation::SpliceBob(i) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
            let bob: Vec<&str> = fixture().bob.jwt.expose().split('.').collect();
            if i < parts.len() {
                parts[i] = bob[i].to_owned();
            }
            return parts.join(".");
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Arbitrary JSON values, for headers.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        prop::sample::select(vec![
            "EdDSA", "none", "HS256", "ES256", "RS256", "JWT", "jwt", "b64", "exp", "",
        ])
        .prop_map(|s| json!(s)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(header_member(), inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn header_member() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "alg", "typ", "kid", "crit", "jwk", "jku", "x5u", "x5c", "cty", "b64", "zip", "enc",
        ])
        .prop_map(str::to_owned),
        "[a-z]{1,5}",
    ]
}

/// A header object built from the pinned members plus arbitrary changes.
fn near_pinned_header() -> impl Strategy<Value = String> {
    let kid = fixture().kid.clone();
    (
        prop::collection::vec((header_member(), json_value()), 0..3),
        any::<bool>(),
        prop::sample::select(vec!["", " ", "\n"]),
        any::<prop::sample::Index>(),
    )
        .prop_map(move |(extra, reorder, space, drop)| {
            let mut members = vec![
                ("alg".to_owned(), json!("EdDSA")),
                ("typ".to_owned(), json!("JWT")),
                ("kid".to_owned(), json!(kid)),
            ];
            if reorder {
                members.reverse();
            }
            if extra.is_empty() && space.is_empty() && !reorder {
                members.remove(drop.index(3));
            }
            members.extend(extra);
            let body: Vec<String> = members
                .iter()
                .map(|(k, v)| format!("{}:{space}{v}", json!(k)))
                .collect();
            format!("{{{}}}", body.join(","))
        })
}

proptest! {
    // No regression files are written into the source tree.
    #![proptest_config(ProptestConfig {
        failure_persistence: None,
        ..ProptestConfig::with_cases(256)
    })]

    /// Arbitrary bytes as `Cookie` headers never authenticate and never panic.
    #[test]
    fn arbitrary_cookie_bytes_never_authenticate(
        headers in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 1..4),
    ) {
        let headers: Vec<(&str, &[u8])> = headers.iter().map(|h| ("cookie", h.as_slice())).collect();
        never_authenticates(status(&headers))?;
    }

    /// Credential-shaped `Cookie` and `Authorization` strings (real names, schemes, fragments of
    /// real credentials) never authenticate.
    #[test]
    fn credentialish_headers_never_authenticate(cookie in credentialish(), auth in credentialish()) {
        never_authenticates(status(&[("cookie", cookie.as_bytes())]))?;
        never_authenticates(status(&[("authorization", auth.as_bytes())]))?;
        never_authenticates(status(&[
            ("cookie", cookie.as_bytes()),
            ("authorization", auth.as_bytes()),
        ]))?;
    }

    /// Arbitrary bytes as `Authorization`, and `Bearer` + arbitrary text, never authenticate.
    #[test]
    fn arbitrary_authorization_never_authenticates(
        raw in prop::collection::vec(any::<u8>(), 0..600),
        text in any::<String>(),
        shaped in "[A-Za-z0-9_-]{0,60}\\.[A-Za-z0-9_-]{0,300}\\.[A-Za-z0-9_-]{0,90}",
    ) {
        never_authenticates(status(&[("authorization", raw.as_slice())]))?;
        let bearer = format!("Bearer {text}");
        never_authenticates(status(&[("authorization", bearer.as_bytes())]))?;
        let bearer = format!("Bearer {shaped}");
        never_authenticates(status(&[("authorization", bearer.as_bytes())]))?;
        let cookie = format!("session_jwt={shaped}");
        never_authenticates(status(&[("cookie", cookie.as_bytes())]))?;
    }

    /// Arbitrary strings and JWT-shaped strings are refused by `authenticate_jwt`.
    #[test]
    fn arbitrary_jwt_strings_never_authenticate(
        text in any::<String>(),
        shaped in "[A-Za-z0-9_-]{0,80}\\.[A-Za-z0-9_-]{0,400}\\.[A-Za-z0-9_-]{0,100}",
    ) {
        prop_assert_eq!(authenticate(&text), None);
        prop_assert_eq!(authenticate(&shaped), None);
        // With the genuine header in front.
        let header = fixture().alice.jwt.expose().split('.').next().unwrap().to_owned();
        let rest = shaped.split_once('.').map(|(_, r)| r).unwrap_or("");
        prop_assert_eq!(authenticate(&format!("{header}.{rest}")), None);
    }

    /// Mutations (bit flips, truncation, deletion, insertion, replacement, segment swaps and
    /// duplication, splicing bob's segments) of alice's valid JWT never authenticate, unless the
    /// mutations cancelled out and the token is unchanged (or became bob's whole genuine JWT).
    #[test]
    fn mutations_of_a_valid_jwt_never_authenticate(
        mutations in prop::collection::vec(mutation(), 1..4),
    ) {
        let original = fixture().alice.jwt.expose().to_owned();
        let mut token = original.clone();
        for m in &mutations {
            token = apply(&token, m);
        }
        // Splicing all of bob's segments in yields bob's genuine JWT (same pinned header).
        let expected = if token == original {
            Some("alice".to_owned())
        } else if token == fixture().bob.jwt.expose() {
            Some("bob".to_owned())
        } else {
            None
        };
        prop_assert_eq!(authenticate(&token), expected, "{}", token);
    }

    /// Arbitrary header JSON, and headers near the pinned one (extra members, reordered,
    /// whitespace, a member missing), signed by the real key over valid claims, never
    /// authenticate: only the byte-exact pinned header does.
    #[test]
    fn arbitrary_header_json_never_authenticates(
        header in json_value(),
        near in near_pinned_header(),
    ) {
        let payload = b64(alice_claims());
        let pinned_header = pinned(&fixture().kid);
        for header in [header.to_string(), near] {
            let token = sign_segments(&b64(&header), &payload);
            let expected = (header == pinned_header).then(|| "alice".to_owned());
            prop_assert_eq!(authenticate(&token), expected, "{}", header);
        }
    }
}

/// The fixture's credentials work, so the properties above are not vacuous.
#[test]
fn control_the_fixture_authenticates() {
    let f = fixture();
    assert_eq!(authenticate(f.alice.jwt.expose()).as_deref(), Some("alice"));
    let token = sign_segments(&b64(pinned(&f.kid)), &b64(alice_claims()));
    assert_eq!(authenticate(&token).as_deref(), Some("alice"));
    let cookie = format!("session_jwt={}", f.alice.jwt.expose());
    assert_eq!(status(&[("cookie", cookie.as_bytes())]), StatusCode::OK);
    let bearer = format!("Bearer {}", f.bob.token.expose());
    assert_eq!(
        status(&[("authorization", bearer.as_bytes())]),
        StatusCode::OK
    );
}
