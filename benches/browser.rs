//! The request path under real browser headers: `Host`, a 100-byte `User-Agent`, `Accept`, a
//! `Cookie` header with six cookies of which none is ours (analytics, theme, language, a
//! tower-sessions `id`, an opaque `session`), and the credential in `Authorization: Bearer`.
//! All variants run in one process against `browser/bare` (the same router, no layer) and two
//! hand-written reference layers, the cheapest code that does the same job:
//!
//! * `reference/opaque_cookie_sha256_moka`: scans the cookies for `session`, hashes its 43-byte
//!   value with SHA-256 and looks the digest up in a moka sync cache of 100,000 sessions;
//! * `reference/hs256_pinned`: compares the JWT's header segment with the one expected, checks
//!   the HMAC-SHA256 signature and parses the claims (`sub`, `sid`, `exp`).
//!
//! It also counts heap allocations per request (a counting global allocator) and prints them.
//!
//! Run: `cargo bench --bench browser -- --noplot`. See BENCHMARKS.md for the figures.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Debug;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::http::header::{ACCEPT, AUTHORIZATION, COOKIE, HOST, USER_AGENT};
use axum::http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use axum::response::IntoResponse;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use common::{app, runtime, send, tower_sessions_router};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use futures_util::future::{Either, Ready, ready};
use tokio::runtime::Runtime;
use tower::{Layer, Service};
use tower_session_jwt::{MemoryStore, NewSession, SessionLayer, Sessions, SigningKey};

// ---- allocation counting ----

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---- the requests ----

const ISS: &str = "https://app.example";
const AUD: &str = "app";
const HS_SECRET: &[u8] = b"bench-hs256-secret-0123456789abcdef";
const USER_AGENT_VALUE: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.3";
/// The reference layers' opaque session, 43 bytes of base64url as ours are.
const OPAQUE: &str = "x5Gm1tq3C0vG8qgkq2bQh7sYF1u9cNw3pL6dT0aZrEk";

fn headers(credential: &str, tower_sessions_id: &str) -> HeaderMap {
    assert_eq!(USER_AGENT_VALUE.len(), 100);
    let mut headers = HeaderMap::new();
    headers.insert(HOST, HeaderValue::from_static("app.example"));
    headers.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
    headers.insert(
        ACCEPT,
        HeaderValue::from_static(
            "text/html,application/xhtml+xml,application/json;q=0.9,*/*;q=0.8",
        ),
    );
    headers.insert(
        AUTHORIZATION,
        HeaderValue::from_str(&format!("Bearer {credential}")).unwrap(),
    );
    let cookie = format!(
        "_ga=GA1.2.1234567890.1700000000; theme=dark; lang=en-US; id={tower_sessions_id}; \
         session={OPAQUE}; _gid=GA1.2.987654321.1700000000"
    );
    headers.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
    headers
}

/// A request, built fresh for every call from the same headers.
#[derive(Clone)]
struct Spec(HeaderMap);

impl Spec {
    fn build(&self) -> Request<Body> {
        let mut request = Request::get("/me").body(Body::empty()).unwrap();
        *request.headers_mut() = self.0.clone();
        request
    }
}

// ---- interleaved rounds ----

/// A variant's batch runner for [`interleaved`]: `n` requests, built beforehand, timed.
type Runner = Box<dyn FnMut(u64) -> Duration>;

thread_local! {
    /// The runners of [`interleaved`] mode (`BROWSER_ROUNDS` set), in the order benched.
    static RUNNERS: std::cell::RefCell<Vec<(String, Runner)>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

fn runner<S, B>(rt: &Runtime, service: S, spec: &Spec) -> Runner
where
    S: Service<Request<Body>, Response = Response<B>> + Clone + 'static,
    S::Error: Debug,
{
    let handle = rt.handle().clone();
    let spec = spec.clone();
    Box::new(move |n| {
        let mut service = service.clone();
        let requests: Vec<_> = (0..n).map(|_| spec.build()).collect();
        handle.block_on(async {
            let start = Instant::now();
            for request in requests {
                black_box(send(&mut service, request).await);
            }
            start.elapsed()
        })
    })
}

/// `BROWSER_ROUNDS=R`: instead of criterion's one variant after the other, `R` rounds in each
/// of which every variant runs a batch of `BROWSER_BATCH` requests (default 2,000), in an order
/// shuffled per round; each variant's cost over `bare` is taken within the round (paired), and
/// the median over the rounds is printed, with its ratio to the two references. Drift of a
/// shared machine then moves both sides of every difference alike.
///
/// `BROWSER_ONLY=<id> BROWSER_REQUESTS=n`: runs `n` requests of one variant and exits, for
/// instruction and cache counts (`valgrind --tool=cachegrind`, twice with different `n`).
fn interleaved() {
    let mut runners = RUNNERS.with(|r| std::mem::take(&mut *r.borrow_mut()));
    if let Ok(only) = std::env::var("BROWSER_ONLY") {
        let n = std::env::var("BROWSER_REQUESTS").map_or(10_000, |n| n.parse().unwrap());
        let (_, run) = runners
            .iter_mut()
            .find(|(id, _)| *id == only)
            .expect("BROWSER_ONLY");
        println!("{only}: {n} requests in {:?}", run(n));
        std::process::exit(0);
    }
    let Ok(rounds) = std::env::var("BROWSER_ROUNDS") else {
        return;
    };
    let rounds: usize = rounds.parse().unwrap();
    let batch: u64 = std::env::var("BROWSER_BATCH").map_or(2_000, |n| n.parse().unwrap());
    let count = runners.len();
    let mut per_request = vec![Vec::with_capacity(rounds); count];
    // A small xorshift: the order only needs to change from round to round.
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for run in &mut runners {
        (run.1)(batch / 4); // warm-up
    }
    for _ in 0..rounds {
        let mut order: Vec<usize> = (0..count).collect();
        for i in (1..count).rev() {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            order.swap(i, (seed % (i as u64 + 1)) as usize);
        }
        for i in order {
            let took = (runners[i].1)(batch);
            per_request[i].push(took.as_nanos() as f64 / batch as f64);
        }
    }
    let bare = runners.iter().position(|(id, _)| id == "bare").unwrap();
    let added = |i: usize| -> Vec<f64> {
        let mut d: Vec<f64> = (0..rounds)
            .map(|r| per_request[i][r] - per_request[bare][r])
            .collect();
        d.sort_by(f64::total_cmp);
        d
    };
    let median = |d: &[f64]| d[d.len() / 2];
    let find = |name: &str| runners.iter().position(|(id, _)| id == name);
    let reference = find("reference/opaque_cookie_sha256_moka").map(|i| median(&added(i)));
    let verifier = find("reference/hs256_pinned").map(|i| median(&added(i)));
    let mut bare_times = per_request[bare].clone();
    bare_times.sort_by(f64::total_cmp);
    println!(
        "INTERLEAVED {rounds} rounds of {batch}; bare router {:.0} ns per request (median)",
        median(&bare_times)
    );
    for (i, (id, _)) in runners.iter().enumerate().filter(|(i, _)| *i != bare) {
        let d = added(i);
        let (lo, mid, hi) = (d[d.len() / 4], median(&d), d[d.len() * 3 / 4]);
        let ratio = |of: Option<f64>| of.map_or(String::new(), |of| format!("{:.2}", mid / of));
        println!(
            "INTERLEAVED {id:<48} added {mid:>7.0} ns (quartiles {lo:.0}..{hi:.0}) \
             {}x the cookie+SHA-256+moka reference, {}x the pinned HS256 verifier",
            ratio(reference),
            ratio(verifier)
        );
    }
}

/// Benchmarks `service` (after checking it answers `200`), and prints its allocations per
/// request. In interleaved mode (see [`interleaved`]) it only keeps a runner for later.
fn bench<S, B>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &Runtime,
    id: &str,
    service: S,
    spec: &Spec,
) where
    S: Service<Request<Body>, Response = Response<B>> + Clone + 'static,
    S::Error: Debug,
{
    if std::env::var_os("BROWSER_ROUNDS").is_some() || std::env::var_os("BROWSER_ONLY").is_some() {
        let run = runner(rt, service, spec);
        RUNNERS.with(|r| r.borrow_mut().push((id.to_owned(), run)));
        return;
    }
    let mut probe = service.clone();
    let response = rt.block_on(send(&mut probe, spec.build()));
    assert_eq!(response.status(), StatusCode::OK, "{id}");
    drop(response);
    let allocations = rt.block_on(async {
        const N: u64 = 1000;
        let mut service = service.clone();
        for _ in 0..10 {
            drop(send(&mut service, spec.build()).await);
        }
        let requests: Vec<_> = (0..N).map(|_| spec.build()).collect();
        let before = ALLOCATIONS.load(Ordering::Relaxed);
        for request in requests {
            drop(send(&mut service, request).await);
        }
        (ALLOCATIONS.load(Ordering::Relaxed) - before) as f64 / N as f64
    });
    println!("ALLOCATIONS {id}: {allocations:.2} per request (request building excluded)");
    let spec = spec.clone();
    common::time_requests(group, rt, id, service, move || spec.build());
}

// ---- the reference layers ----

/// What a hand-written authentication layer decides: the identity a request carries, if any.
trait Check {
    type Identity: Clone + Send + Sync + 'static;
    fn check(&self, headers: &HeaderMap) -> Option<Self::Identity>;
}

/// A hand-written tower layer around `inner`: the identity into the extensions and on to
/// `inner`, or `401` without calling it.
#[derive(Clone)]
struct Reference<S, C> {
    inner: S,
    check: C,
}

impl<S, C> Service<Request<Body>> for Reference<S, C>
where
    S: Service<Request<Body>, Response = Response<Body>>,
    C: Check,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Either<S::Future, Ready<Result<Response<Body>, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<Body>) -> Self::Future {
        match self.check.check(request.headers()) {
            Some(identity) => {
                request.extensions_mut().insert(identity);
                Either::Left(self.inner.call(request))
            }
            None => Either::Right(ready(Ok(StatusCode::UNAUTHORIZED.into_response()))),
        }
    }
}

// ---- reference: cookie scan + SHA-256 + moka ----

#[derive(Clone)]
struct OpaqueCheck {
    cache: moka::sync::Cache<[u8; 32], Arc<String>>,
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    for value in headers.get_all(COOKIE) {
        for pair in value.to_str().ok()?.split(';') {
            if let Some((n, v)) = pair.trim().split_once('=')
                && n == name
            {
                return Some(v);
            }
        }
    }
    None
}

impl Check for OpaqueCheck {
    type Identity = Arc<String>;
    fn check(&self, headers: &HeaderMap) -> Option<Arc<String>> {
        let token = cookie(headers, "session")?;
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        self.cache.get(<&[u8; 32]>::try_from(digest.as_ref()).ok()?)
    }
}

fn reference_opaque() -> Reference<Router, OpaqueCheck> {
    let cache = moka::sync::Cache::builder().max_capacity(200_000).build();
    for i in 0..100_000u32 {
        let token = format!("{i:043}");
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        cache.insert(
            digest.as_ref().try_into().unwrap(),
            Arc::new(format!("user-{i}")),
        );
    }
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, OPAQUE.as_bytes());
    cache.insert(
        digest.as_ref().try_into().unwrap(),
        Arc::new("user-1".to_owned()),
    );
    cache.run_pending_tasks();
    Reference {
        inner: app(),
        check: OpaqueCheck { cache },
    }
}

// ---- reference: pinned-header HS256 ----

#[derive(Clone)]
struct Hs256Check {
    key: Arc<aws_lc_rs::hmac::Key>,
    header: Arc<str>,
}

#[derive(serde::Deserialize)]
struct RefClaims<'a> {
    #[serde(borrow)]
    sub: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    sid: std::borrow::Cow<'a, str>,
    exp: i64,
}

/// The identity a handler would receive.
#[derive(Clone)]
#[allow(dead_code)]
struct RefIdentity {
    sub: String,
    sid: String,
}

impl Check for Hs256Check {
    type Identity = RefIdentity;
    fn check(&self, headers: &HeaderMap) -> Option<RefIdentity> {
        let jwt = headers
            .get(AUTHORIZATION)?
            .to_str()
            .ok()?
            .strip_prefix("Bearer ")?;
        let (signed, signature) = jwt.rsplit_once('.')?;
        let (header, payload) = signed.split_once('.')?;
        if header != &*self.header {
            return None;
        }
        let mut buffer = [0u8; 64];
        let n = URL_SAFE_NO_PAD.decode_slice(signature, &mut buffer).ok()?;
        aws_lc_rs::hmac::verify(&self.key, signed.as_bytes(), &buffer[..n]).ok()?;
        let mut claims = [0u8; 1024];
        let n = URL_SAFE_NO_PAD.decode_slice(payload, &mut claims).ok()?;
        let claims: RefClaims<'_> = serde_json::from_slice(&claims[..n]).ok()?;
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        (claims.exp > now).then(|| RefIdentity {
            sub: claims.sub.into_owned(),
            sid: claims.sid.into_owned(),
        })
    }
}

fn reference_hs256(jwt: &str) -> Reference<Router, Hs256Check> {
    Reference {
        inner: app(),
        check: Hs256Check {
            key: Arc::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                HS_SECRET,
            )),
            header: Arc::from(jwt.split('.').next().unwrap()),
        },
    }
}

// ---- the floor: from_fn + jsonwebtoken::decode ----

fn floor_hs256() -> Router {
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[ISS]);
    validation.set_audience(&[AUD]);
    common::floor(
        jsonwebtoken::DecodingKey::from_secret(HS_SECRET),
        validation,
    )
}

/// Signs in on tower-sessions once and returns its `id` cookie value.
fn tower_sessions_id(rt: &Runtime, router: &Router) -> String {
    let response = rt.block_on(send(
        &mut router.clone(),
        Request::get("/login").body(Body::empty()).unwrap(),
    ));
    let set_cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    let (pair, _) = set_cookie.split_once(';').unwrap();
    pair.strip_prefix("id=").unwrap().to_owned()
}

// ---- the runs ----

fn sessions(alg: &str, rt: &Runtime, verification_cache: bool) -> Sessions {
    let key = match alg {
        "HS256" => SigningKey::hs256("hs", HS_SECRET).unwrap(),
        _ => SigningKey::ed25519_pem(include_bytes!("../tests/keys/ed25519.pem")).unwrap(),
    };
    let mut builder = Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(key)
        .issuer(ISS)
        .audience(AUD)
        .jwt_ttl(Duration::from_secs(1800));
    if !verification_cache {
        builder = builder.verification_cache_capacity(0);
    }
    let sessions = builder.build().unwrap();
    rt.block_on(sessions.ready());
    // As on a server that has run for more than a second: JWTs minted from now on are issued
    // after the second the instance started in (a JWT issued in that second, and not minted
    // here, is confirmed in the store: it could predate what the instance knows of
    // revocations).
    let into_second = time::OffsetDateTime::now_utc().nanosecond();
    rt.block_on(tokio::time::sleep(Duration::from_nanos(
        1_010_000_000 - u64::from(into_second),
    )));
    sessions
}

fn browser(c: &mut Criterion) {
    let rt = runtime(1);
    let _runtime = rt.enter();
    let ts_router = tower_sessions_router();
    let ts_id = tower_sessions_id(&rt, &ts_router);
    let with = |credential: &str| Spec(headers(credential, &ts_id));

    let mut g = c.benchmark_group("browser");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(30);

    let hs = sessions("HS256", &rt, true);
    let hs_jwt = rt
        .block_on(hs.create("user-1", NewSession::new()))
        .unwrap()
        .jwt
        .expose()
        .to_owned();

    bench(&mut g, &rt, "bare", app(), &with(&hs_jwt));
    bench(
        &mut g,
        &rt,
        "reference/opaque_cookie_sha256_moka",
        reference_opaque(),
        &with(&hs_jwt),
    );
    bench(
        &mut g,
        &rt,
        "reference/hs256_pinned",
        reference_hs256(&hs_jwt),
        &with(&hs_jwt),
    );

    for alg in ["EdDSA", "HS256"] {
        let warm = sessions(alg, &rt, true);
        let created = rt
            .block_on(warm.create("user-1", NewSession::new()))
            .unwrap();
        // In the reference layers' position (around the router), and through `Router::layer`
        // (which boxes the layered service and its future once more per route).
        let outer = SessionLayer::new(warm.clone()).layer(app());
        let layered = app().layer(SessionLayer::new(warm.clone()));
        let (jwt, token) = (with(created.jwt.expose()), with(created.token.expose()));
        bench(
            &mut g,
            &rt,
            &format!("ours/jwt_warm/{alg}"),
            outer.clone(),
            &jwt,
        );
        let id = format!("ours_router_layer/jwt_warm/{alg}");
        bench(&mut g, &rt, &id, layered.clone(), &jwt);
        if alg == "EdDSA" {
            // As a browser sends it: the JWT cookie among the others, no Authorization.
            let mut in_cookie = headers(created.jwt.expose(), &ts_id);
            in_cookie.remove(AUTHORIZATION);
            let cookie = format!(
                "{}; session_jwt={}",
                in_cookie[COOKIE].to_str().unwrap(),
                created.jwt.expose()
            );
            in_cookie.insert(COOKIE, HeaderValue::from_str(&cookie).unwrap());
            let id = "ours/jwt_warm_cookie/EdDSA";
            bench(&mut g, &rt, id, outer.clone(), &Spec(in_cookie));
            bench(&mut g, &rt, "ours/opaque_cache_hit/EdDSA", outer, &token);
            let id = "ours_router_layer/opaque_cache_hit/EdDSA";
            bench(&mut g, &rt, id, layered, &token);
        }
    }
    let cold = sessions("HS256", &rt, false);
    let jwt = rt
        .block_on(cold.create("user-1", NewSession::new()))
        .unwrap()
        .jwt;
    bench(
        &mut g,
        &rt,
        "ours/jwt_cold/HS256",
        SessionLayer::new(cold.clone()).layer(app()),
        &with(jwt.expose()),
    );

    bench(
        &mut g,
        &rt,
        "floor/from_fn_jsonwebtoken_hs256",
        floor_hs256(),
        &with(&hs_jwt),
    );
    bench(
        &mut g,
        &rt,
        "peer/tower_sessions_memory_store",
        ts_router,
        &with(&hs_jwt),
    );
    g.finish();
    interleaved();
}

/// The same requests from two worker threads at once (as a server on two cores runs them), to
/// show what the single-threaded rows hide: per-request writes to memory that both cores share.
fn concurrent(c: &mut Criterion) {
    let rt = runtime(2);
    let _runtime = rt.enter();
    let mut g = c.benchmark_group("browser_2_threads");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500))
        .sample_size(20);
    let warm = sessions("EdDSA", &rt, true);
    let created = rt
        .block_on(warm.create("user-1", NewSession::new()))
        .unwrap();
    let spec = Spec(headers(created.jwt.expose(), "none"));
    let run = |g: &mut BenchmarkGroup<'_, WallTime>, id: &str, service: Router| {
        let spec = spec.clone();
        g.bench_function(id, |b| {
            b.to_async(&rt).iter_custom(|iters| {
                let (service, spec) = (service.clone(), spec.clone());
                async move {
                    let start = Instant::now();
                    let tasks: Vec<_> = (0..2)
                        .map(|_| {
                            let (mut service, spec) = (service.clone(), spec.clone());
                            tokio::spawn(async move {
                                for _ in 0..iters.div_ceil(2) {
                                    black_box(send(&mut service, spec.build()).await);
                                }
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.unwrap();
                    }
                    start.elapsed()
                }
            })
        });
    };
    run(&mut g, "bare", app());
    run(
        &mut g,
        "reference/opaque_cookie_sha256_moka",
        Router::new().fallback_service(reference_opaque()),
    );
    run(
        &mut g,
        "ours/jwt_warm/EdDSA",
        Router::new().fallback_service(SessionLayer::new(warm.clone()).layer(app())),
    );
    g.finish();
}

criterion_group!(benches, browser, concurrent);
criterion_main!(benches);
