//! Shared fixture for the fuzz targets: one manager on a frozen clock, two live sessions, and a
//! tower service behind `SessionLayer` that reports who was authenticated.
//!
//! Inputs may contain the markers `{J}` (alice's JWT), `{T}` (alice's opaque token) and `{B}`
//! (bob's JWT); they are replaced by the real credentials so the fuzzer can build structure
//! around them. The oracle: a request authenticates only as a user whose real credential the
//! input carried, and the layer answers only 200, 400 or 401.

use std::convert::Infallible;
use std::sync::OnceLock;

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use tower::{Layer, ServiceExt, service_fn};
use tower_session_jwt::{MemoryStore, NewSession, SessionLayer, Sessions, SigningKey};
use tower_session_jwt::clock::ManualClock;
use tower_session_jwt::layer::CurrentSession;

pub struct Fixture {
    pub rt: tokio::runtime::Runtime,
    pub sessions: Sessions,
    pub alice_jwt: String,
    pub alice_token: String,
    pub bob_jwt: String,
    pub bob_token: String,
}

const ED_PEM: &[u8] = include_bytes!("../../tests/keys/ed25519.pem");

pub fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let clock = ManualClock::starting_now();
        let (sessions, alice, bob) = rt.block_on(async {
            let sessions = Sessions::builder()
                .store(MemoryStore::with_clock(clock.clone()))
                .signing_key(SigningKey::ed25519_pem(ED_PEM).unwrap())
                .issuer("https://app.example")
                .audience("app")
                .clock(clock)
                .build()
                .unwrap();
            let alice = sessions.create("alice", NewSession::new()).await.unwrap();
            let bob = sessions.create("bob", NewSession::new()).await.unwrap();
            (sessions, alice, bob)
        });
        Fixture {
            rt,
            sessions,
            alice_jwt: alice.jwt.expose().to_owned(),
            alice_token: alice.token.expose().to_owned(),
            bob_jwt: bob.jwt.expose().to_owned(),
            bob_token: bob.token.expose().to_owned(),
        }
    })
}

/// Which real credentials an input carries.
#[derive(Debug, Default, Clone, Copy)]
pub struct Carried {
    pub alice: bool,
    pub bob: bool,
}

/// Replaces the markers with the real credentials.
pub fn expand(f: &Fixture, data: &[u8]) -> (Vec<u8>, Carried) {
    let mut out = Vec::with_capacity(data.len());
    let mut carried = Carried::default();
    let mut i = 0;
    while i < data.len() {
        let rest = &data[i..];
        let (text, skip) = if rest.starts_with(b"{J}") {
            carried.alice = true;
            (f.alice_jwt.as_bytes(), 3)
        } else if rest.starts_with(b"{T}") {
            carried.alice = true;
            (f.alice_token.as_bytes(), 3)
        } else if rest.starts_with(b"{B}") {
            carried.bob = true;
            (f.bob_jwt.as_bytes(), 3)
        } else {
            (&rest[..1], 1)
        };
        out.extend_from_slice(text);
        i += skip;
    }
    // libFuzzer learns comparison operands (the real credentials, once a marker has put them
    // in a request) and splices them into later inputs without a marker: an input carries a
    // credential whenever the expanded bytes contain it.
    let has = |needle: &str| out.windows(needle.len()).any(|w| w == needle.as_bytes());
    carried.alice |= has(&f.alice_jwt) || has(&f.alice_token);
    carried.bob |= has(&f.bob_jwt) || has(&f.bob_token);
    (out, carried)
}

/// Sends a request with these headers through `SessionLayer` (required mode) and checks the
/// oracle. Header values the `http` crate refuses are dropped.
pub fn check_request(f: &Fixture, headers: &[(HeaderName, Vec<u8>)], mut carried: Carried) {
    // Targets assemble header values from pieces, so a credential learned by libFuzzer can also
    // appear across piece boundaries: look in the final values as well.
    for (_, value) in headers {
        let (_, in_value) = expand(f, value);
        carried.alice |= in_value.alice;
        carried.bob |= in_value.bob;
    }
    let mut request = Request::get("/me").body(()).unwrap();
    for (name, value) in headers {
        if let Ok(value) = HeaderValue::from_bytes(value) {
            request.headers_mut().append(name.clone(), value);
        }
    }
    let inner = service_fn(|request: Request<()>| async move {
        let user = request
            .extensions()
            .get::<CurrentSession>()
            .map(|s| s.user_id.clone())
            .unwrap_or_default();
        Ok::<_, Infallible>(Response::new(user))
    });
    let service = SessionLayer::<String>::new(f.sessions.clone()).layer(inner);
    let response = f.rt.block_on(service.oneshot(request)).unwrap();
    match response.status() {
        StatusCode::OK => {
            let user = response.body().as_str();
            match user {
                "alice" => assert!(
                    carried.alice,
                    "authenticated as alice without her credential"
                ),
                "bob" => assert!(carried.bob, "authenticated as bob without his credential"),
                other => panic!("200 for user {other:?}"),
            }
        }
        StatusCode::BAD_REQUEST | StatusCode::UNAUTHORIZED => {}
        other => panic!("unexpected status {other}"),
    }
}

/// `authenticate_jwt` on `text`: accepted only if it is exactly a real JWT.
pub fn check_jwt(f: &Fixture, text: &str) {
    if let Ok(session) = f.rt.block_on(f.sessions.authenticate_jwt(text)) {
        let expected = match session.user_id.as_str() {
            "alice" => &f.alice_jwt,
            "bob" => &f.bob_jwt,
            other => panic!("authenticated unknown user {other:?}"),
        };
        assert_eq!(
            text, expected,
            "a JWT other than the minted one was accepted"
        );
    }
}
