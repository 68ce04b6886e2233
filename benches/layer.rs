//! The whole request path: an axum 0.8 router with one route (`GET /me`, a small string) behind
//! our [`SessionLayer`], behind a hand-written `jsonwebtoken` middleware (the floor), behind the
//! peers (jwt-authorizer, tower-sessions), and bare. Services are driven directly
//! (`ready().await` + `call`), no sockets; every request is built fresh with its credential.
//!
//! All groups run in one process so that the ratios between them hold on a noisy machine.
//!
//! Run: `cargo bench --features redis --bench layer -- --noplot` (without the `redis` feature, or
//! with Redis unreachable on 127.0.0.1:6379, the Redis group is skipped with a note). See
//! BENCHMARKS.md for the figures.

mod common;

use std::fmt::Debug;
use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{HeaderName, HeaderValue, Method, Request, Response, StatusCode};
use axum::routing::post_service;
use common::{app, runtime, send, tower_sessions_router};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use jwt_authorizer::{IntoLayer, JwtAuthorizer, RegisteredClaims};
use tokio::runtime::Runtime;
use tower::{Layer, Service};
use tower_session_jwt::SessionStore;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::{SessionLimit, SessionRecord};
use tower_session_jwt::token::TokenHash;
use tower_session_jwt::{
    MemoryStore, NewSession, Session, SessionLayer, Sessions, SessionsBuilder, SigningKey,
};

const ISS: &str = "https://app.example";
const AUD: &str = "app";
/// Printable, so that jwt-authorizer (which takes the secret as `&str`) can share it.
const HS_SECRET: &str = "bench-hs256-secret-0123456789abcdef";

const ALGS: [&str; 4] = ["EdDSA", "ES256", "RS256", "HS256"];

fn signing_key(alg: &str) -> SigningKey {
    match alg {
        "EdDSA" => SigningKey::ed25519_pem(include_bytes!("../tests/keys/ed25519.pem")).unwrap(),
        "ES256" => SigningKey::es256_pem(include_bytes!("../tests/keys/p256.pem")).unwrap(),
        "RS256" => SigningKey::rs256_pem(include_bytes!("../tests/keys/rsa2048.pem")).unwrap(),
        _ => SigningKey::hs256("hs", HS_SECRET.as_bytes()).unwrap(),
    }
}

fn decoding_key(alg: &str) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Algorithm) {
    use jsonwebtoken::{Algorithm, DecodingKey};
    match alg {
        "EdDSA" => (
            DecodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pub.pem")).unwrap(),
            Algorithm::EdDSA,
        ),
        "ES256" => (
            DecodingKey::from_ec_pem(include_bytes!("../tests/keys/p256.pub.pem")).unwrap(),
            Algorithm::ES256,
        ),
        "RS256" => (
            DecodingKey::from_rsa_pem(include_bytes!("../tests/keys/rsa2048.pub.pem")).unwrap(),
            Algorithm::RS256,
        ),
        _ => (
            DecodingKey::from_secret(HS_SECRET.as_bytes()),
            Algorithm::HS256,
        ),
    }
}

fn builder(store: impl SessionStore, alg: &str) -> SessionsBuilder {
    Sessions::builder()
        .store(store)
        .signing_key(signing_key(alg))
        .issuer(ISS)
        .audience(AUD)
}

/// The application: one route, a small string.
/// A request, built fresh for every call.
#[derive(Clone)]
struct Spec {
    method: Method,
    uri: &'static str,
    header: Option<(HeaderName, HeaderValue)>,
}

impl Spec {
    fn get(header: Option<(HeaderName, HeaderValue)>) -> Self {
        Self {
            method: Method::GET,
            uri: "/me",
            header,
        }
    }

    fn bearer(credential: &str) -> Self {
        Self::get(Some((
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {credential}")).unwrap(),
        )))
    }

    fn build(&self) -> Request<Body> {
        let mut request = Request::builder().method(self.method.clone()).uri(self.uri);
        if let Some((name, value)) = &self.header {
            request = request.header(name, value.clone());
        }
        request.body(Body::empty()).unwrap()
    }
}

/// Benchmarks `service` on requests built from `spec`, after checking once that it answers
/// `expected`.
fn bench_service<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    service: S,
    spec: Spec,
    expected: StatusCode,
) where
    S: Service<Request<Body>, Response = Response<B>> + Clone + 'static,
    S::Error: Debug,
{
    let mut probe = service.clone();
    let response = rt.block_on(send(&mut probe, spec.build()));
    assert_eq!(response.status(), expected, "{id}: unexpected status");
    common::time_requests(group, rt, id, service, move || spec.build());
}

// ---- floor: a hand-written middleware around `jsonwebtoken::decode` ----

fn floor_router(alg: &str) -> Router {
    let (key, algorithm) = decoding_key(alg);
    let mut validation = jsonwebtoken::Validation::new(algorithm);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    // `nbf` checked when present: session JWTs of format 2 leave it out (it would repeat `iat`).
    validation.validate_nbf = true;
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    common::floor(key, validation)
}

// ---- peers ----

/// jwt-authorizer 0.15 is built on axum 0.7: it can only wrap a service whose response body is
/// axum-core 0.4's, so the router's responses are converted (one boxing). `bare_adapted`
/// measures that adapter alone.
fn adapted(
    router: Router,
) -> impl Service<
    Request<Body>,
    Response = Response<axum_core_04::body::Body>,
    Error = std::convert::Infallible,
    Future: Send,
> + Clone
+ Send
+ 'static {
    tower::util::MapResponseLayer::new(|r: Response<Body>| r.map(axum_core_04::body::Body::new))
        .layer(router)
}

async fn jwt_authorizer_layer(
    alg: &str,
) -> jwt_authorizer::layer::AuthorizationLayer<RegisteredClaims> {
    let validation = jwt_authorizer::Validation::new()
        .iss(&[ISS])
        .aud(&[AUD])
        .nbf(true);
    let builder = match alg {
        "HS256" => JwtAuthorizer::<RegisteredClaims>::from_secret(HS_SECRET),
        "ES256" => JwtAuthorizer::<RegisteredClaims>::from_ec_pem_text(
            std::str::from_utf8(include_bytes!("../tests/keys/p256.pub.pem")).unwrap(),
        ),
        _ => unreachable!(),
    };
    vec![builder.validation(validation).build().await.unwrap()].into_layer()
}

// ---- helpers for the store-backed paths ----

/// A live session record added straight through the store trait (no JWT, no caches).
fn record(i: u64, now: time::OffsetDateTime) -> SessionRecord {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&i.to_le_bytes());
    hash[8..16].copy_from_slice(&0x5eed_u64.to_le_bytes());
    SessionRecord {
        session: Session::new(
            SessionId::generate().unwrap(),
            format!("user-{i}"),
            now,
            now + time::Duration::days(1),
        ),
        token_hash: TokenHash::from_bytes(hash),
    }
}

fn group<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group
        .measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);
    group
}

fn bench(c: &mut Criterion) {
    // One worker thread runs the background tasks (the MemoryStore and Redis revocation feeds,
    // whose freshness the JWT fast path depends on) between and during measurements; requests
    // themselves are driven on the bench thread.
    let rt = runtime(1);
    let _runtime = rt.enter();

    // ---- floor and bare ----
    let mut g = group(c, "layer");
    bench_service(&mut g, &rt, "bare", app(), Spec::get(None), StatusCode::OK);
    for alg in ALGS {
        let sessions = builder(MemoryStore::new(), alg).build().unwrap();
        rt.block_on(sessions.ready());
        let created = rt
            .block_on(sessions.create("user-1", NewSession::new()))
            .unwrap();
        let jwt = created.jwt.expose().to_owned();
        println!("{alg}: session JWT of {} bytes", jwt.len());
        bench_service(
            &mut g,
            &rt,
            &format!("floor/{alg}"),
            floor_router(alg),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );

        // ---- our layer, JWT path ----
        let cold = builder(MemoryStore::new(), alg)
            .verification_cache_capacity(0)
            .build()
            .unwrap();
        rt.block_on(cold.ready());
        let jwt = rt
            .block_on(cold.create("user-1", NewSession::new()))
            .unwrap()
            .jwt
            .expose()
            .to_owned();
        bench_service(
            &mut g,
            &rt,
            &format!("ours/jwt_cold/{alg}"),
            app().layer(SessionLayer::new(cold.clone())),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );
        assert_eq!(cold.cache_sizes().verified_jwts, 0);

        let warm = builder(MemoryStore::new(), alg).build().unwrap();
        rt.block_on(warm.ready());
        let jwt = rt
            .block_on(warm.create("user-1", NewSession::new()))
            .unwrap()
            .jwt
            .expose()
            .to_owned();
        rt.block_on(warm.authenticate_jwt(&jwt)).unwrap();
        assert_eq!(warm.cache_sizes().verified_jwts, 1);
        bench_service(
            &mut g,
            &rt,
            &format!("ours/jwt_warm/{alg}"),
            app().layer(SessionLayer::new(warm.clone())),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );

        if alg == "HS256" {
            // Our layer in the position jwt-authorizer has to take: a tower layer around the
            // whole router, rather than `Router::layer`.
            bench_service(
                &mut g,
                &rt,
                "ours_outer/jwt_cold/HS256",
                SessionLayer::new(cold.clone()).layer(app()),
                Spec::bearer(&jwt_of(&rt, &cold)),
                StatusCode::OK,
            );
            bench_service(
                &mut g,
                &rt,
                "ours_outer/jwt_warm/HS256",
                SessionLayer::new(warm.clone()).layer(app()),
                Spec::bearer(&jwt),
                StatusCode::OK,
            );
        }
    }

    // ---- our layer, opaque path ----
    for alg in ["EdDSA", "HS256"] {
        let sessions = builder(MemoryStore::new(), alg).build().unwrap();
        rt.block_on(sessions.ready());
        let created = rt
            .block_on(sessions.create("user-1", NewSession::new()))
            .unwrap();
        assert_eq!(sessions.cache_sizes().token_lookups, 1);
        bench_service(
            &mut g,
            &rt,
            &format!("ours/opaque_cache_hit/{alg}"),
            app().layer(SessionLayer::new(sessions.clone())),
            Spec::bearer(created.token.expose()),
            StatusCode::OK,
        );

        let sessions = builder(MemoryStore::new(), alg)
            .token_cache_capacity(0)
            .build()
            .unwrap();
        rt.block_on(sessions.ready());
        let created = rt
            .block_on(sessions.create("user-1", NewSession::new()))
            .unwrap();
        bench_service(
            &mut g,
            &rt,
            &format!("ours/opaque_memory_store/{alg}"),
            app().layer(SessionLayer::new(sessions.clone())),
            Spec::bearer(created.token.expose()),
            StatusCode::OK,
        );
    }

    redis_group(&mut g, &rt);
    sqlite_group(&mut g, &rt);
    postgres_group(&mut g, &rt);

    // ---- logout: a fresh session per request ----
    {
        let sessions = builder(MemoryStore::new(), "EdDSA").build().unwrap();
        rt.block_on(sessions.ready());
        let router = app()
            .route(
                "/logout",
                post_service(tower_session_jwt::logout::logout(&sessions)),
            )
            .layer(SessionLayer::new(sessions.clone()).optional());
        let logout_spec = |jwt: &str| Spec {
            method: Method::POST,
            uri: "/logout",
            ..Spec::bearer(jwt)
        };
        let mut probe = router.clone();
        let jwt = jwt_of(&rt, &sessions);
        let response = rt.block_on(send(&mut probe, logout_spec(&jwt).build()));
        assert_eq!(response.status(), StatusCode::NO_CONTENT);
        assert!(rt.block_on(sessions.authenticate_jwt(&jwt)).is_err());
        g.bench_function("ours/logout/EdDSA", |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let mut router = router.clone();
                let sessions = sessions.clone();
                async move {
                    let mut specs = Vec::with_capacity(iters as usize);
                    for _ in 0..iters {
                        let created = sessions.create("user-1", NewSession::new()).await.unwrap();
                        specs.push(logout_spec(created.jwt.expose()));
                    }
                    let start = Instant::now();
                    for spec in &specs {
                        black_box(send(&mut router, spec.build()).await);
                    }
                    start.elapsed()
                }
            })
        });
    }

    // ---- peers ----
    bench_service(
        &mut g,
        &rt,
        "peer/bare_adapted",
        adapted(app()),
        Spec::get(None),
        StatusCode::OK,
    );
    for alg in ["HS256", "ES256"] {
        let sessions = builder(MemoryStore::new(), alg).build().unwrap();
        rt.block_on(sessions.ready());
        let jwt = jwt_of(&rt, &sessions);
        let layer = rt.block_on(jwt_authorizer_layer(alg));
        bench_service(
            &mut g,
            &rt,
            &format!("peer/jwt_authorizer/{alg}"),
            layer.layer(adapted(app())),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );
    }
    {
        let router = tower_sessions_router();
        let mut probe = router.clone();
        let login = Spec {
            uri: "/login",
            ..Spec::get(None)
        };
        let response = rt.block_on(send(&mut probe, login.build()));
        let set_cookie = response.headers()[SET_COOKIE].to_str().unwrap();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        let spec = Spec::get(Some((COOKIE, HeaderValue::from_str(&cookie).unwrap())));
        let response = rt.block_on(send(&mut probe, spec.build()));
        let body = rt
            .block_on(http_body_util::BodyExt::collect(response.into_body()))
            .unwrap()
            .to_bytes();
        assert_eq!(&body[..], b"user-1");
        bench_service(
            &mut g,
            &rt,
            "peer/tower_sessions/memory_store",
            router,
            spec,
            StatusCode::OK,
        );
    }
    g.finish();

    scaling(c, &rt);
}

/// A JWT for a new session of `sessions`.
fn jwt_of(rt: &Runtime, sessions: &Sessions) -> String {
    rt.block_on(sessions.create("user-1", NewSession::new()))
        .unwrap()
        .jwt
        .expose()
        .to_owned()
}

#[cfg(feature = "redis")]
fn redis_group(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime) {
    use tower_session_jwt::store::redis::RedisStore;
    const URL: &str = "redis://127.0.0.1:6379";
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let prefix = format!("bench-layer-{}-{nanos}:", std::process::id());
    let store = rt.block_on(async {
        RedisStore::builder(URL)
            .key_prefix(prefix.clone())
            .connect_timeout(Duration::from_millis(500))
            .build()
            .await
    });
    let store = match store {
        Ok(store) => store,
        Err(e) => {
            println!("NOTE: Redis unreachable at {URL} ({e}); skipping layer/ours/opaque_redis");
            return;
        }
    };
    let key_base = store.key_base().to_owned();
    bench_opaque_store(g, rt, "redis", store);
    // Leave nothing behind.
    rt.block_on(async {
        let client = redis::Client::open(URL).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{key_base}*"))
            .query_async(&mut conn)
            .await
            .unwrap();
        if !keys.is_empty() {
            let _: () = redis::cmd("DEL")
                .arg(&keys)
                .query_async(&mut conn)
                .await
                .unwrap();
        }
    });
}

#[cfg(not(feature = "redis"))]
fn redis_group(_: &mut BenchmarkGroup<'_, WallTime>, _: &Runtime) {
    println!("NOTE: built without the `redis` feature; skipping layer/ours/opaque_redis");
}

/// The opaque path against a store that answers through its own engine (token cache off): one
/// store lookup per request, and the JWT it mints.
fn bench_opaque_store(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    store: impl tower_session_jwt::SessionStore + Clone,
) {
    let sessions = builder(store.clone(), "EdDSA")
        .token_cache_capacity(0)
        .build()
        .unwrap();
    if rt
        .block_on(tokio::time::timeout(
            Duration::from_secs(5),
            sessions.ready(),
        ))
        .is_err()
    {
        println!("NOTE: the {name} revocation feed did not sync; skipping it");
        return;
    }
    let created = rt
        .block_on(sessions.create("user-1", NewSession::new()))
        .unwrap();
    bench_service(
        g,
        rt,
        &format!("ours/opaque_{name}/EdDSA"),
        app().layer(SessionLayer::new(sessions.clone())),
        Spec::bearer(created.token.expose()),
        StatusCode::OK,
    );
    rt.block_on(sessions.revoke(&created.session.session_id))
        .unwrap();
    forged_flood(g, rt, name, store);
}

/// A flood of forged opaque tokens (random, never minted): without a token key each costs a
/// store lookup before its `401`; with one, a MAC and no store call.
fn forged_flood(
    g: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    name: &str,
    store: impl tower_session_jwt::SessionStore + Clone,
) {
    let key = tower_session_jwt::token::TokenKey::new(1, &[0x42; 32]).unwrap();
    let stranger = tower_session_jwt::token::TokenKey::new(1, &[0x24; 32]).unwrap();
    for (label, key, forged) in [
        (
            "untagged",
            None,
            tower_session_jwt::token::SessionToken::generate().unwrap(),
        ),
        (
            "tagged",
            Some(key),
            tower_session_jwt::token::SessionToken::generate_tagged(&stranger).unwrap(),
        ),
    ] {
        let mut b = builder(store.clone(), "EdDSA").token_cache_capacity(0);
        if let Some(key) = key {
            b = b.token_key(key);
        }
        let sessions = b.build().unwrap();
        let _ = rt.block_on(tokio::time::timeout(
            Duration::from_secs(5),
            sessions.ready(),
        ));
        bench_service(
            g,
            rt,
            &format!("ours/forged_token_{name}/{label}"),
            app().layer(SessionLayer::new(sessions)),
            Spec::bearer(forged.expose()),
            StatusCode::UNAUTHORIZED,
        );
    }
}

fn sqlite_group(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime) {
    let path = std::env::temp_dir().join(format!("bench-layer-{}.db", std::process::id()));
    let store = rt
        .block_on(tower_session_jwt::store::sqlite::SqliteStore::open(&path))
        .unwrap();
    bench_opaque_store(g, rt, "sqlite", store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

#[cfg(feature = "postgres")]
fn postgres_group(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime) {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("bench_layer_{}", std::process::id());
    let store = rt.block_on(
        tower_session_jwt::store::postgres::PostgresStore::builder(&url)
            .schema(schema.clone())
            .build(),
    );
    match store {
        Ok(store) => {
            let pool = store.pool().clone();
            bench_opaque_store(g, rt, "postgres", store);
            let drop_schema = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = rt.block_on(sqlx::query(&drop_schema).execute(&pool));
        }
        Err(e) => println!("NOTE: PostgreSQL unreachable at {url} ({e}); skipping it"),
    }
}

#[cfg(not(feature = "postgres"))]
fn postgres_group(_: &mut BenchmarkGroup<'_, WallTime>, _: &Runtime) {
    println!("NOTE: built without the `postgres` feature; skipping layer/ours/opaque_postgres");
}

/// Per-request cost of the warm JWT path and the opaque MemoryStore path as the store and the
/// revocation list grow.
fn scaling(c: &mut Criterion, rt: &Runtime) {
    let mut g = group(c, "scaling");

    // One store grown from 1k to 1M live sessions; the token cache is off so that the opaque
    // path reaches the store every time.
    let store = MemoryStore::new();
    let sessions = builder(store.clone(), "EdDSA")
        .token_cache_capacity(0)
        .build()
        .unwrap();
    rt.block_on(sessions.ready());
    let created = rt
        .block_on(sessions.create("user-1", NewSession::new()))
        .unwrap();
    let jwt = created.jwt.expose().to_owned();
    rt.block_on(sessions.authenticate_jwt(&jwt)).unwrap();
    let router = app().layer(SessionLayer::new(sessions.clone()));
    let now = time::OffsetDateTime::now_utc();
    let mut added = 0u64;
    for (label, target) in [("1k", 1_000u64), ("100k", 100_000), ("1M", 1_000_000)] {
        let started = Instant::now();
        rt.block_on(async {
            while added < target {
                store
                    .create(record(added, now), SessionLimit::unlimited())
                    .await
                    .unwrap();
                added += 1;
            }
        });
        println!(
            "scaling: MemoryStore now holds {} sessions (filled in {:.1?})",
            store.len(),
            started.elapsed()
        );
        bench_service(
            &mut g,
            rt,
            &format!("sessions_{label}/jwt_warm/EdDSA"),
            router.clone(),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );
        bench_service(
            &mut g,
            rt,
            &format!("sessions_{label}/opaque_memory_store/EdDSA"),
            router.clone(),
            Spec::bearer(created.token.expose()),
            StatusCode::OK,
        );
    }
    drop(router);
    drop(sessions);
    drop(store);

    // The revocation list grown from 0 to 100k entries (random session ids).
    let sessions = builder(MemoryStore::new(), "EdDSA")
        .token_cache_capacity(0)
        .build()
        .unwrap();
    rt.block_on(sessions.ready());
    let created = rt
        .block_on(sessions.create("user-1", NewSession::new()))
        .unwrap();
    let jwt = created.jwt.expose().to_owned();
    rt.block_on(sessions.authenticate_jwt(&jwt)).unwrap();
    let router = app().layer(SessionLayer::new(sessions.clone()));
    let mut revoked = 0usize;
    for (label, target) in [("0", 0usize), ("10k", 10_000), ("100k", 100_000)] {
        while revoked < target {
            sessions
                .revocations()
                .apply(&RevocationEvent::session_revoked(
                    SessionId::generate().unwrap(),
                    time::OffsetDateTime::now_utc(),
                ));
            revoked += 1;
        }
        assert_eq!(sessions.revocations().len(), target);
        bench_service(
            &mut g,
            rt,
            &format!("revocations_{label}/jwt_warm/EdDSA"),
            router.clone(),
            Spec::bearer(&jwt),
            StatusCode::OK,
        );
        bench_service(
            &mut g,
            rt,
            &format!("revocations_{label}/opaque_memory_store/EdDSA"),
            router.clone(),
            Spec::bearer(created.token.expose()),
            StatusCode::OK,
        );
    }
    g.finish();
}

/// The signature check alone, for the cold-path comparison: this crate's pre-parsed
/// verification key against aws-lc-rs's `UnparsedPublicKey` (what `jsonwebtoken` uses).
fn primitives(c: &mut Criterion) {
    use aws_lc_rs::signature::{
        ECDSA_P256_SHA256_FIXED, ED25519, UnparsedPublicKey, VerificationAlgorithm,
    };
    use base64::Engine;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let mut g = group(c, "primitive");
    let cases: [(&str, &[u8], &'static dyn VerificationAlgorithm, usize); 2] = [
        (
            "EdDSA",
            include_bytes!("../tests/keys/ed25519.pub.pem"),
            &ED25519,
            32,
        ),
        (
            "ES256",
            include_bytes!("../tests/keys/p256.pub.pem"),
            &ECDSA_P256_SHA256_FIXED,
            65,
        ),
    ];
    for (alg, spki_pem, algorithm, raw_len) in cases {
        let key = signing_key(alg);
        let verification = key.verification_key().clone();
        let sessions = builder(MemoryStore::new(), alg).build().unwrap();
        let jwt = jwt_of(&rt, &sessions);
        let (input, signature) = jwt.rsplit_once('.').unwrap();
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(signature)
            .unwrap();
        let der = pem::parse(spki_pem).unwrap().into_contents();
        let unparsed = UnparsedPublicKey::new(algorithm, der[der.len() - raw_len..].to_vec());
        assert!(verification.verify_signature(input.as_bytes(), &signature));
        assert!(unparsed.verify(input.as_bytes(), &signature).is_ok());
        g.bench_function(format!("{alg}/ours_verify_signature"), |b| {
            b.iter(|| verification.verify_signature(black_box(input.as_bytes()), &signature))
        });
        g.bench_function(format!("{alg}/aws_lc_unparsed_public_key"), |b| {
            b.iter(|| {
                unparsed
                    .verify(black_box(input.as_bytes()), &signature)
                    .is_ok()
            })
        });
    }
    g.finish();
}

/// The warm JWT path with and without a metrics recorder. Runs last: installing a recorder is
/// for the rest of the process. Sessions built before the install keep no-op handles (as in an
/// application without an exporter); those built after count every request.
fn metrics_cost(c: &mut Criterion) {
    let rt = runtime(1);
    let _runtime = rt.enter();
    let warm = |rt: &Runtime| {
        let sessions = builder(MemoryStore::new(), "EdDSA").build().unwrap();
        rt.block_on(sessions.ready());
        let jwt = jwt_of(rt, &sessions);
        (app().layer(SessionLayer::new(sessions)), jwt)
    };
    let (without, without_jwt) = warm(&rt);
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .expect("no other recorder in this process");
    let (with, with_jwt) = warm(&rt);
    let mut g = group(c, "metrics");
    bench_service(&mut g, &rt, "bare", app(), Spec::get(None), StatusCode::OK);
    bench_service(
        &mut g,
        &rt,
        "ours/jwt_warm/EdDSA/no_recorder",
        without,
        Spec::bearer(&without_jwt),
        StatusCode::OK,
    );
    bench_service(
        &mut g,
        &rt,
        "ours/jwt_warm/EdDSA/prometheus_recorder",
        with,
        Spec::bearer(&with_jwt),
        StatusCode::OK,
    );
    g.finish();
}

criterion_group!(benches, bench, primitives, metrics_cost);
criterion_main!(benches);
