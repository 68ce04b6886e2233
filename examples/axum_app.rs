//! A complete axum app with revocable sessions: login, "your devices", revoke one device, sign
//! out the other devices, logout and logout everywhere, custom claims changed on a live session,
//! step-up authentication, over cookies (browsers) and `Authorization: Bearer` (APIs).
//!
//! It shows:
//!
//! * one [`SessionLayer`] in optional mode over the whole router, with handlers that require a
//!   session through the [`Session`] / [`CurrentSession`] extractors (so logout still works with
//!   stale or garbage credentials, and strips them);
//! * [`login`](tower_session_jwt::login::login) recording the client's IP address and user agent and setting both cookies
//!   (the opaque `session_token` and the short-lived `session_jwt`), and revoking the session
//!   whose cookies a login in the same browser replaces;
//! * the ready-made [`logout`], [`logout_everywhere`], [`logout_others`] and [`revoke_session`]
//!   services;
//! * changing a live session with [`Sessions::update_claims`] and [`Sessions::step_up`] (older
//!   JWTs refused everywhere at once, the token rotated on step-up), and a route guarded by
//!   [`RecentAuth`](tower_session_jwt::step_up::RecentAuth) (RFC 9470), with the new cookies
//!   written by [`SessionCookies`] for browsers only;
//! * paginated device listing, and every session event logged as a JSON line on stdout;
//! * the JWKS document other services can verify session JWTs with;
//! * device-bound sessions (DBSC, `DBSC=on` over HTTPS): the [`dbsc::registration`] and
//!   [`dbsc::refresh`] services, and "bound to this device" in the device list;
//! * for operators, `GET /metrics` (the [`metrics`](tower_session_jwt::metrics) series in
//!   Prometheus text) and `GET /healthz` ([`health`]: `200` when the revocation feed is caught up
//!   and the store answers, else `503`).
//!
//! The app trusts the posted `user_id`: it demonstrates sessions, not password checking.
//!
//! # Run
//!
//! ```sh
//! cargo run --example axum_app                                 # http://127.0.0.1:3000
//! ADDR=0.0.0.0:8080 JWT_TTL_SECS=60 cargo run --example axum_app
//! SIGNING_KEY_FILE=key.pem cargo run --example axum_app        # share the key between instances
//! STORE=memory cargo run --example axum_app                     # sessions in memory only
//! REDIS_URL=redis://127.0.0.1/ cargo run --example axum_app --features redis
//! REDIS_CLUSTER_URLS=redis://127.0.0.1:7000,redis://127.0.0.1:7001 cargo run --example axum_app --features redis-cluster
//! REDIS_URL=rediss://127.0.0.1:6380/ REDIS_CA_FILE=ca.crt \
//!     cargo run --example axum_app --features redis-tls   # Redis over TLS
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --example axum_app --features postgres
//! TLS_CERT_FILE=cert.pem TLS_KEY_FILE=key.pem DBSC=on cargo run --example axum_app  # https, device-bound
//! ```
//!
//! | variable | effect |
//! |---|---|
//! | `ADDR` | listen address (default `127.0.0.1:3000`) |
//! | `JWT_TTL_SECS` | session JWT lifetime (default 300, Stytch's 5 minutes) |
//! | `SESSION_TTL_SECS` | session lifetime, extended by activity (sliding; default 604800, 7 days) |
//! | `TRUSTED_ORIGINS` | comma-separated origins (`https://app.example`) allowed to post to `/login` and the logout routes besides the app's own |
//! | `SIGNING_KEY_FILE` | an Ed25519 `PRIVATE KEY` PEM; without it a key is generated at start, so JWTs from an earlier run (or another instance) fail over to the opaque token |
//! | `TOKEN_KEY_FILE` | a file of at least 32 secret bytes (`head -c 32 /dev/urandom > token.key`) every instance reads: session tokens are tagged with it, and tokens this app did not mint are refused with no store call ([`TokenKey`]); without it tokens are untagged and every well-formed one is looked up |
//! | `SESSIONS_DB` | the SQLite file sessions are kept in (default `sessions.db` in the working directory): the default store, so a restart keeps everyone signed in |
//! | `DATABASE_URL` | keep sessions in PostgreSQL instead (`postgres://…`, needs `--features postgres`) |
//! | `REDIS_CLUSTER_URLS` | keep sessions in a Redis Cluster instead: comma-separated seed nodes (`redis://host:port,…`; needs `--features redis-cluster`) |
//! | `REDIS_URL` | keep sessions in Redis instead (needs `--features redis`); `rediss://…` is TLS (needs `--features redis-tls`) |
//! | `REDIS_CA_FILE` | with `rediss://`: the CA certificate(s) (PEM) to trust instead of the system's |
//! | `REDIS_CLIENT_CERT_FILE`, `REDIS_CLIENT_KEY_FILE` | with `rediss://`: a client certificate and key (PEM) for a Redis that demands mutual TLS (both or neither) |
//! | `STORE=memory` | keep sessions in memory (lost on restart) |
//! | `STEP_UP_MAX_AGE_SECS` | how recent an authentication `GET /api/sensitive` requires (default 300) |
//! | `MAX_SESSIONS_PER_USER` | live sessions per user (default 100); a login beyond it revokes the oldest |
//! | `WHEN_FULL=refuse` | refuse a login beyond `MAX_SESSIONS_PER_USER` (`409`) instead |
//! | `INSECURE_COOKIES=1` | drop the `Secure` cookie attribute |
//! | `TLS_CERT_FILE`, `TLS_KEY_FILE` | serve HTTPS (rustls, HTTP/1.1) with this PEM certificate chain and private key (both or neither) |
//! | `DBSC=on` | offer device-bound sessions ([`dbsc`]): logins offer registration at `/dbsc/register`, bound browsers refresh at `/dbsc/refresh`, and a bound session's token alone no longer signs anyone in. Browsers offer DBSC over HTTPS only |
//!
//! ## Cookies and plain HTTP
//!
//! The cookies are `Secure` and named with the `__Host-` prefix by default (`__Host-session_token`,
//! `__Host-session_jwt`): browsers then refuse such cookies from a sibling subdomain or over
//! plain HTTP, so nobody can toss a cookie of that name in beside the user's. Browsers (Chrome,
//! Firefox, Safari) and curl (7.79 and later) treat `http://localhost` and `http://127.0.0.1` as
//! secure, so these cookies work there as is. Over plain HTTP to any other host (say `ADDR=0.0.0.0:3000` reached through a LAN
//! address) clients drop them: put TLS in front, or set `INSECURE_COOKIES=1` for an experiment,
//! never in production (the cookies are then plain `session_token` and `session_jwt`, since the
//! prefix requires `Secure`).
//!
//! # Try it with curl
//!
//! ```sh
//! cargo run --example axum_app &
//! B=http://127.0.0.1:3000
//!
//! # Log in (JSON): both cookies go into the jar, the credentials are in the body too.
//! curl -s -c jar -b jar -H 'content-type: application/json' \
//!      -d '{"user_id":"alice","custom_claims":{"role":"admin"}}' $B/login | tee login.json
//! SESSION_JWT=$(jq -r .session_jwt login.json); SESSION_TOKEN=$(jq -r .session_token login.json)
//!
//! # A second device (a form post, as the page sends it): 303 to /.
//! curl -s -c jar2 -b jar2 -d user_id=alice $B/login
//!
//! # Who am I: with the cookie jar, or with a bearer credential (the JWT or the opaque token).
//! curl -s -b jar $B/api/me
//! curl -s -H "authorization: Bearer $SESSION_JWT" $B/api/me
//! curl -s -H "authorization: Bearer $SESSION_TOKEN" $B/api/me
//!
//! # Change the session's claims: older JWTs fail at once, cookie clients get fresh cookies.
//! curl -s -b jar -c jar -X PATCH -H 'content-type: application/json' \
//!      -d '{"custom_claims":{"role":"viewer","plan":null}}' $B/api/session/claims
//! curl -si -H "authorization: Bearer $SESSION_JWT" $B/api/me          # 401: minted before
//!
//! # Step-up: a sensitive route wants a factor from the last 5 minutes beyond the login's.
//! curl -si -b jar $B/api/sensitive             # 200 right after login, 401 + RFC 9470 later
//! curl -s -b jar -c jar -H 'content-type: application/json' \
//!      -d '{"factor":"otp"}' $B/api/session/step-up   # new token and JWT (rotated)
//!
//! # Your devices (paginated), then revoke the other one: its token and JWT fail at once.
//! curl -s -b jar "$B/api/sessions?limit=10"
//! # Or sign out every other device, keeping this one:
//! curl -si -b jar -X POST $B/logout/others                        # 204
//! SESSION_ID=$(curl -s -b jar $B/api/sessions | jq -r '.sessions[] | select(.current | not) | .session_id')
//! curl -si -b jar -X POST $B/api/sessions/$SESSION_ID/revoke     # 204, or 404 if not yours
//! curl -si -b jar2 $B/api/me                                     # 401
//!
//! # Log out (this device), or everywhere; both strip the cookies.
//! curl -si -b jar -c jar -X POST $B/logout
//! curl -si -b jar -c jar -X POST $B/logout/all
//!
//! # The public keys that verify session JWTs.
//! curl -s $B/.well-known/jwks.json
//!
//! # The load test's baseline (BENCHMARKS.md): a session-shaped body without the layer.
//! curl -s $B/api/sample
//!
//! # For operators: metrics (Prometheus text) and readiness.
//! curl -s $B/metrics | grep tower_session_jwt_
//! curl -si $B/healthz                                            # 200 {"ready":true,…}
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post, post_service};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tower_session_jwt::cookies::{SessionCookies, credentials};
use tower_session_jwt::csrf::is_cross_site;
use tower_session_jwt::dbsc;
use tower_session_jwt::health::HealthService;
use tower_session_jwt::layer::{CurrentSession, RefusedCredential};
use tower_session_jwt::logout::{logout, logout_everywhere, logout_others, revoke_session};
use tower_session_jwt::session::InvalidFactor;
use tower_session_jwt::session::{AuthenticationFactor, ClientSession};
use tower_session_jwt::sessions::DbscConfig;
use tower_session_jwt::sessions::{Changed, CookieConfig, CredentialSource};
use tower_session_jwt::step_up::RecentAuth;
use tower_session_jwt::store::{PageCursor, PageRequest, SessionLimit, WhenFull};
use tower_session_jwt::token::TokenKey;
use tower_session_jwt::{
    AuthError, MemoryStore, NewSession, Session, SessionError, SessionLayer, Sessions,
    SessionsBuilder, SigningKey, StoreError,
};

/// The app's routes, behind one optional [`SessionLayer`], with `/api/sensitive` requiring an
/// authentication factor from the last 300 seconds.
pub fn app(sessions: Sessions) -> Router {
    app_with_step_up(sessions, Duration::from_secs(300))
}

/// [`app`] with `/api/sensitive` requiring an authentication factor used within
/// `step_up_max_age`.
pub fn app_with_step_up(sessions: Sessions, step_up_max_age: Duration) -> Router {
    let sensitive = Router::<StepUpMaxAge>::new()
        .route("/api/sensitive", get(sensitive))
        .route_layer(RecentAuth::new(&sessions, step_up_max_age));
    let mut router = Router::<StepUpMaxAge>::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/api/me", get(me))
        .route("/api/sessions", get(list_sessions))
        .route("/api/session/claims", patch(update_claims))
        .route("/api/session/step-up", post(step_up))
        .merge(sensitive)
        .route(
            "/logout/others",
            post_service(logout_others(&sessions).redirect_forms_to("/")),
        )
        // The ready-made services: `204` for API clients, `303 /` for the page's form posts.
        .route(
            "/api/sessions/{session_id}/revoke",
            post_service(revoke_session(&sessions).redirect_forms_to("/")),
        )
        .route(
            "/logout",
            post_service(logout(&sessions).redirect_forms_to("/")),
        )
        .route(
            "/logout/all",
            post_service(logout_everywhere(&sessions).redirect_forms_to("/")),
        )
        .route("/.well-known/jwks.json", get(jwks))
        // For operators: Prometheus text, and readiness for load balancers.
        .route("/metrics", get(metrics))
        .route_service("/healthz", HealthService::new(&sessions))
        .with_state(StepUpMaxAge(step_up_max_age))
        // Optional: anonymous requests reach `/`, `/login` and the logout routes; handlers that
        // need a session say so with their extractors.
        .layer(SessionLayer::new(sessions.clone()).optional())
        // Outside the layer: the load test's baseline (see `sample`).
        .route("/api/sample", get(sample));
    // Device binding (DBSC), outside the layer: a bound session's browser comes here for a
    // fresh JWT precisely when the layer would refuse its token alone.
    if sessions.device_binding_offered() {
        router = router
            .route(
                "/dbsc/register",
                post_service(dbsc::registration(&sessions)),
            )
            .route("/dbsc/refresh", post_service(dbsc::refresh(&sessions)));
    }
    router
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(addr) => addr
            .parse()
            .unwrap_or_else(|e| fail(format!("ADDR={addr:?}: {e}"))),
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let insecure_cookies = std::env::var("INSECURE_COOKIES").is_ok_and(|v| v == "1");

    // The metrics recorder goes in before the sessions are built (they register their series).
    metrics_handle();
    let sessions = configure(with_store(Sessions::builder()).await, insecure_cookies)
        .build()
        .unwrap_or_else(|e| fail(format!("invalid session configuration: {e}")));
    // With a store that has a revocation feed, trust JWTs only once caught up with it.
    sessions.ready().await;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    if !local.ip().is_loopback() && !insecure_cookies {
        println!(
            "  cookies are Secure: over plain HTTP, clients keep them only for localhost; \
             use TLS, or INSECURE_COOKIES=1 for an experiment"
        );
    }

    let step_up_max_age = seconds("STEP_UP_MAX_AGE_SECS", 300);
    let app = app_with_step_up(sessions, step_up_max_age);
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    match (var("TLS_CERT_FILE"), var("TLS_KEY_FILE")) {
        (Some(cert), Some(key)) => {
            println!("listening on https://{local}");
            serve_tls(listener, app, &cert, &key).await;
        }
        (None, None) => {
            println!("listening on http://{local}");
            if std::env::var("DBSC").is_ok_and(|v| v == "on") {
                println!(
                    "  DBSC=on over plain HTTP: browsers offer device binding over HTTPS only; \
                     set TLS_CERT_FILE and TLS_KEY_FILE (or terminate TLS in front)"
                );
            }
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<SocketAddr>(),
            )
            .with_graceful_shutdown(async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
            .unwrap_or_else(|e| fail(format!("server error: {e}")));
        }
        _ => fail("TLS_CERT_FILE and TLS_KEY_FILE go together".into()),
    }
}

/// Serves `app` over HTTPS (HTTP/1.1, rustls) with the PEM certificate chain and private key in
/// `cert` and `key`, until Ctrl-C.
pub async fn serve_tls(listener: tokio::net::TcpListener, app: Router, cert: &str, key: &str) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};

    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect())
        .unwrap_or_else(|e| fail(format!("TLS_CERT_FILE={cert:?}: {e}")));
    if chain.is_empty() {
        fail(format!("TLS_CERT_FILE={cert:?}: no certificate in it"));
    }
    let private = PrivateKeyDer::from_pem_file(key)
        .unwrap_or_else(|e| fail(format!("TLS_KEY_FILE={key:?}: {e}")));
    let mut config = rustls::ServerConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
    .unwrap_or_else(|e| fail(format!("TLS_CERT_FILE/TLS_KEY_FILE: {e}")));
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let shutdown = tokio::signal::ctrl_c();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    eprintln!("axum_app: accept: {e}");
                    continue;
                }
            },
            _ = &mut shutdown => return,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            // A failed handshake (a plain HTTP request, an untrusted certificate) ends only
            // this connection.
            let Ok(tls) = acceptor.accept(stream).await else {
                return;
            };
            let service = hyper::service::service_fn(move |mut request: Request<_>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                tower::ServiceExt::oneshot(app.clone(), request.map(axum::body::Body::new))
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The process's Prometheus recorder, installed on first use. If another recorder was
/// installed first (a test's, say), `/metrics` renders this one's empty set.
pub fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: std::sync::OnceLock<PrometheusHandle> = std::sync::OnceLock::new();
    HANDLE.get_or_init(|| {
        // Store latencies as histograms, so that they add up across instances.
        let buckets = [
            0.000_1, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ];
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("tower_session_jwt_store_duration_seconds".into()),
                &buckets,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("tower_session_jwt_dbsc_duration_seconds".into()),
                    &buckets,
                )
            })
            .expect("buckets are not empty");
        match builder.install_recorder() {
            Ok(handle) => handle,
            Err(_) => PrometheusBuilder::new().build_recorder().handle(),
        }
    })
}

/// `GET /metrics`: the `tower_session_jwt_*` series (and any other) in Prometheus text.
async fn metrics() -> Response {
    let handle = metrics_handle();
    handle.run_upkeep();
    (
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

fn fail(message: String) -> ! {
    eprintln!("axum_app: {message}");
    std::process::exit(1)
}

/// Key, lifetimes and cookies from the environment (the store is set by [`with_store`]).
pub fn configure(builder: SessionsBuilder, insecure_cookies: bool) -> SessionsBuilder {
    let key = match std::env::var("SIGNING_KEY_FILE") {
        Ok(path) => {
            let pem = std::fs::read(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
            SigningKey::ed25519_pem(&pem).unwrap_or_else(|e| fail(format!("{path}: {e}")))
        }
        Err(_) => SigningKey::generate_ed25519()
            .unwrap_or_else(|e| fail(format!("cannot generate a key: {e}"))),
    };
    let token_key = std::env::var("TOKEN_KEY_FILE").ok().map(|path| {
        let secret = std::fs::read(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
        TokenKey::new(1, &secret).unwrap_or_else(|e| fail(format!("{path}: {e}")))
    });
    let trusted_origins: Vec<String> = std::env::var("TRUSTED_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    let max_sessions = match std::env::var("MAX_SESSIONS_PER_USER") {
        Ok(n) => n
            .parse::<u32>()
            .ok()
            .filter(|n| *n > 0)
            .unwrap_or_else(|| fail(format!("MAX_SESSIONS_PER_USER={n:?}: a positive number"))),
        Err(_) => SessionLimit::DEFAULT_MAX,
    };
    let when_full = match std::env::var("WHEN_FULL").as_deref() {
        Ok("refuse") => WhenFull::Refuse,
        Ok("revoke_oldest") | Err(_) => WhenFull::RevokeOldest,
        Ok(other) => fail(format!(
            "WHEN_FULL={other:?}: \"refuse\" or \"revoke_oldest\""
        )),
    };
    let builder = match token_key {
        Some(key) => builder.token_key(key),
        None => builder,
    };
    let builder = match std::env::var("DBSC").as_deref() {
        Ok("on") => builder.device_binding(dbsc_config()),
        Ok("off") | Ok("") | Err(_) => builder,
        Ok(other) => fail(format!("DBSC={other:?}: \"on\" or \"off\"")),
    };
    builder
        .signing_key(key)
        .session_limit(SessionLimit::new(max_sessions, when_full))
        // The audit log: one JSON line per session event (ids and reasons, never a credential).
        .on_event(|event| {
            if let Ok(line) = serde_json::to_string(event) {
                println!("session_event {line}");
            }
        })
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(seconds("JWT_TTL_SECS", 300))
        .session_ttl(seconds("SESSION_TTL_SECS", 7 * 86_400))
        .sliding(true)
        .trusted_origins(trusted_origins)
        // ⚠️ `INSECURE_COOKIES=1` is only for local experiments over plain HTTP; see the top of
        // this file. `__Host-` needs `Secure`, so it goes with it.
        .cookies(
            CookieConfig::default()
                .secure(!insecure_cookies)
                .host_prefix(!insecure_cookies),
        )
}

/// Device binding as `DBSC=on` configures it: the default paths, and the login route out of
/// the binding's scope. A browser refreshes a bound cookie about to expire beside any request
/// in scope; one beside the login post could land the older session's JWT over the new login's
/// cookies, so the older binding refreshes only after the login answered (and is then refused,
/// its token cookie being the new login's).
pub fn dbsc_config() -> DbscConfig {
    DbscConfig::new().exclude_path("/login")
}

/// A duration in whole seconds from the environment variable `name`, else `default`.
fn seconds(name: &str, default: u64) -> Duration {
    match std::env::var(name) {
        Ok(secs) => Duration::from_secs(
            secs.parse()
                .unwrap_or_else(|e| fail(format!("{name}={secs:?}: {e}"))),
        ),
        Err(_) => Duration::from_secs(default),
    }
}

/// The store the environment names: `STORE=memory`, `REDIS_CLUSTER_URLS` (Redis Cluster),
/// `REDIS_URL` (Redis), `DATABASE_URL` (PostgreSQL), else an SQLite file (`SESSIONS_DB`, default `sessions.db` in the working
/// directory), so that a restart keeps everyone signed in.
async fn with_store(builder: SessionsBuilder) -> SessionsBuilder {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(store) = var("STORE") {
        return match store.as_str() {
            "memory" => {
                println!("sessions: in memory (lost on restart)");
                builder.store(MemoryStore::new())
            }
            other => fail(format!(
                "STORE={other:?}: only \"memory\" is a store name; the others are chosen by \
                 REDIS_CLUSTER_URLS, REDIS_URL, DATABASE_URL or SESSIONS_DB"
            )),
        };
    }
    if let Some(urls) = var("REDIS_CLUSTER_URLS") {
        #[cfg(feature = "redis-cluster")]
        {
            let seeds: Vec<&str> = urls
                .split(',')
                .map(str::trim)
                .filter(|u| !u.is_empty())
                .collect();
            let store = tower_session_jwt::store::redis::cluster::RedisClusterStore::connect(seeds)
                .await
                .unwrap_or_else(|e| fail(format!("REDIS_CLUSTER_URLS: {e}")));
            println!(
                "sessions: in the Redis Cluster ({} partitions)",
                store.partitions()
            );
            return builder.store(store);
        }
        #[cfg(not(feature = "redis-cluster"))]
        {
            let _ = urls;
            fail(
                "REDIS_CLUSTER_URLS is set but this build has no Redis Cluster support: \
                 run `cargo run --example axum_app --features redis-cluster`"
                    .into(),
            )
        }
    }
    if let Some(url) = var("REDIS_URL") {
        #[cfg(feature = "redis")]
        {
            let store = redis_store(&url)
                .await
                .unwrap_or_else(|e| fail(format!("REDIS_URL: {e}")));
            println!("sessions: in Redis");
            return builder.store(store);
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = url;
            fail(
                "REDIS_URL is set but this build has no Redis support: \
                 run `cargo run --example axum_app --features redis`"
                    .into(),
            )
        }
    }
    if let Some(url) = var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        {
            let store = tower_session_jwt::store::postgres::PostgresStore::connect(&url)
                .await
                .unwrap_or_else(|e| fail(format!("DATABASE_URL: {e}")));
            println!("sessions: in PostgreSQL");
            return builder.store(store);
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            fail(
                "DATABASE_URL is set but this build has no PostgreSQL support: \
                 run `cargo run --example axum_app --features postgres`"
                    .into(),
            )
        }
    }
    let path = var("SESSIONS_DB").unwrap_or_else(|| "sessions.db".into());
    let store = tower_session_jwt::store::sqlite::SqliteStore::open(&path)
        .await
        .unwrap_or_else(|e| fail(format!("SESSIONS_DB={path:?}: {e}")));
    println!("sessions: in the SQLite file {path} (kept across restarts)");
    builder.store(store)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /`: the login form, or the signed-in user's devices.
async fn home(
    sessions: Sessions,
    current: Option<CurrentSession>,
    axum::extract::State(step_up_max_age): axum::extract::State<StepUpMaxAge>,
    refused: Option<axum::Extension<RefusedCredential>>,
    headers: axum::http::HeaderMap,
) -> Response {
    // A device-bound session whose JWT cookie was refused (its claims changed, say): the layer
    // strips that cookie, and a reload makes the browser refresh it through DBSC first. Only
    // when the request carried a JWT cookie, so a browser whose binding ended gets the form.
    if current.is_none()
        && refused.is_some_and(|r| r.reason == AuthError::DeviceBound.reason())
        && credentials(&sessions, &headers).is_ok_and(|c| {
            c.jwt()
                .is_some_and(|(_, from)| from == CredentialSource::Cookie)
        })
    {
        return no_store(Redirect::to("/"));
    }
    let body = match current {
        None => page(
            r#"<h2>Sign in</h2>
<form method="post" action="/login">
  <label>User id <input name="user_id" required maxlength="256" autofocus></label>
  <input type="hidden" name="factor" value="password">
  <button>Sign in</button>
</form>
<p class="muted">Any user id works: this demo shows sessions, not passwords.</p>"#,
        ),
        Some(current) => match sessions
            .list_page(&current.user_id, &PageRequest::default())
            .await
        {
            Ok(list) => page(&devices(
                &current,
                &list.sessions,
                list.next.is_some(),
                step_up_max_age.0,
            )),
            Err(e) => return store_unavailable(e),
        },
    };
    let mut response = no_store(Html(body));
    let headers = response.headers_mut();
    for (name, value) in PAGE_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// How recent an authentication `/api/sensitive` requires (router state, for the page).
#[derive(Clone, Copy)]
struct StepUpMaxAge(Duration);

/// The page's security headers: no framing (clickjacking on the revoke buttons), nothing but
/// its own inline style and same-origin form posts, no MIME sniffing, no referrer to other sites.
const PAGE_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own form posts.
    ("referrer-policy", "same-origin"),
];

fn devices(current: &Session, list: &[Session], more: bool, step_up_max_age: Duration) -> String {
    let mut rows = String::new();
    for s in list {
        let bound = if s.is_device_bound() {
            r#" <span class="bound">bound to this device</span>"#
        } else {
            ""
        };
        let action = if s.session_id == current.session_id {
            format!(r#"<span class="this">this device</span>{bound}"#)
        } else if !bound.is_empty() {
            format!(
                r#"<span class="bound">bound to its device</span> <form method="post" action="/api/sessions/{}/revoke"><button>Revoke</button></form>"#,
                escape(s.session_id.as_str())
            )
        } else {
            format!(
                r#"<form method="post" action="/api/sessions/{}/revoke"><button>Revoke</button></form>"#,
                escape(s.session_id.as_str())
            )
        };
        let _ = write!(
            rows,
            "<tr><td><strong>{}</strong><br><span class=\"muted\">{}</span></td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(&device_name(&s.attributes.user_agent)),
            escape(&s.attributes.user_agent),
            escape(&s.attributes.ip_address),
            when(s.started_at),
            when(s.last_accessed_at),
        );
    }
    let more = if more {
        r#"<p class="muted">Only your newest sessions are shown; older ones are listed by <code>GET /api/sessions?cursor=…</code>.</p>"#
    } else {
        ""
    };
    let factors: Vec<String> = current
        .authentication_factors
        .iter()
        .map(|f| {
            format!(
                "{} ({})",
                escape(&f.factor_type),
                when(f.last_authenticated_at)
            )
        })
        .collect();
    let factors = if factors.is_empty() {
        "none".to_owned()
    } else {
        factors.join(", ")
    };
    format!(
        r#"<p>Signed in as <strong>{user}</strong> <span class="muted">({session})</span></p>
<p class="muted">Authenticated with: {factors}. <a href="/api/sensitive">A sensitive page</a> needs a factor from the last {max_age} seconds.</p>
<div class="actions">
  <form method="post" action="/api/session/step-up"><input type="hidden" name="factor" value="otp"><button>Verify again with a one-time code</button></form>
</div>
<h2>Your devices</h2>
<table>
  <thead><tr><th>Device</th><th>IP address</th><th>Started</th><th>Last active</th><th></th></tr></thead>
  <tbody>{rows}</tbody>
</table>
{more}
<div class="actions">
  <form method="post" action="/logout"><button>Log out</button></form>
  <form method="post" action="/logout/others"><button>Sign out other devices</button></form>
  <form method="post" action="/logout/all"><button class="danger">Log out everywhere</button></form>
</div>"#,
        user = escape(&current.user_id),
        session = escape(current.session_id.as_str()),
        max_age = step_up_max_age.as_secs(),
    )
}

/// A friendly name for a user agent: "Chrome on Linux", "Safari on iPhone", "curl".
pub fn device_name(user_agent: &str) -> String {
    let ua = user_agent;
    let has = |needle: &str| ua.contains(needle);
    if ua.is_empty() {
        return "Unknown device".to_owned();
    }
    for tool in [
        "curl",
        "Wget",
        "python-requests",
        "PostmanRuntime",
        "okhttp",
    ] {
        if ua.starts_with(tool) {
            return tool.to_owned();
        }
    }
    let browser = if has("Edg/") || has("EdgA/") || has("EdgiOS/") {
        "Edge"
    } else if has("OPR/") || has("Opera") {
        "Opera"
    } else if has("SamsungBrowser/") {
        "Samsung Internet"
    } else if has("Firefox/") || has("FxiOS/") {
        "Firefox"
    } else if has("CriOS/") || (has("Chrome/") || has("Chromium/")) && !has("Chrome-Lighthouse") {
        "Chrome"
    } else if has("Safari/") && has("Version/") {
        "Safari"
    } else {
        "Browser"
    };
    let os = if has("iPhone") {
        "iPhone"
    } else if has("iPad") {
        "iPad"
    } else if has("Android") {
        "Android"
    } else if has("CrOS") {
        "ChromeOS"
    } else if has("Windows") {
        "Windows"
    } else if has("Mac OS X") || has("Macintosh") {
        "macOS"
    } else if has("Linux") || has("X11") {
        "Linux"
    } else {
        ""
    };
    match (browser, os) {
        ("Browser", "") => "Unknown device".to_owned(),
        (browser, "") => browser.to_owned(),
        (browser, os) => format!("{browser} on {os}"),
    }
}

/// Largest login body read.
const MAX_LOGIN_BODY: usize = 16 * 1024;

/// The fields of an `application/x-www-form-urlencoded` body, decoded strictly: a value whose
/// bytes are not UTF-8 is refused rather than patched with replacement characters (which would
/// sign the user into some other account than the one typed), and so is a field given twice.
fn form_fields(body: &[u8]) -> Result<std::collections::HashMap<String, String>, &'static str> {
    let mut fields = std::collections::HashMap::new();
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name =
            String::from_utf8(percent_decode(name)?).map_err(|_| "a field name is not UTF-8")?;
        let value =
            String::from_utf8(percent_decode(value)?).map_err(|_| "a value is not UTF-8")?;
        if fields.insert(name, value).is_some() {
            return Err("a field is given twice");
        }
    }
    Ok(fields)
}

/// Form decoding (`+` is a space, `%XX` a byte), refusing malformed escapes.
fn percent_decode(text: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (hex(bytes.next()), hex(bytes.next())) {
                    (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
                    _ => return Err("malformed percent-encoding"),
                }
            }
            b => b,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct LoginJson {
    user_id: String,
    #[serde(default)]
    custom_claims: Map<String, Value>,
    /// The factor the user signed in with (default `password`).
    #[serde(default)]
    factor: Option<String>,
}

/// `POST /login`: a form (`303 /`) or JSON (`200` with the session and both credentials); both
/// set the two cookies, and revoke the session the browser's cookies held before (if genuine).
async fn login(sessions: Sessions, request: Request) -> Response {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let (user_id, custom_claims, factor) = if is_form {
        let body = match axum::body::to_bytes(body, MAX_LOGIN_BODY).await {
            Ok(body) => body,
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    "body too large",
                );
            }
        };
        match form_fields(&body) {
            Ok(mut fields) => match fields.remove("user_id") {
                Some(user_id) => (user_id, Map::new(), fields.remove("factor")),
                None => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "missing user_id",
                    );
                }
            },
            Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", message),
        }
    } else if content_type.starts_with("application/json") {
        match Json::<LoginJson>::from_request(Request::from_parts(parts.clone(), body), &()).await {
            Ok(Json(login)) => (login.user_id, login.custom_claims, login.factor),
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
        }
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        );
    };

    let factor = match factor_named(factor.as_deref().unwrap_or("password")) {
        Ok(factor) => factor,
        Err(e) => return invalid_factor(e),
    };
    let mut new = NewSession::new()
        .custom_claims(custom_claims)
        .factor(factor);
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        new = new.peer_addr(*addr);
    }
    let login = match tower_session_jwt::login::login(&sessions, &parts, user_id, new).await {
        Ok(login) => login,
        Err(e) => return session_error(e),
    };
    let mut response = if is_form {
        Redirect::to("/").into_response()
    } else {
        Json(json!({
            "session": login.created.session.public_view(),
            "session_token": login.created.token.expose(),
            "session_jwt": login.created.jwt.expose(),
        }))
        .into_response()
    };
    login.set_cookies(&mut response);
    response
}

/// `GET /api/me`: the current session, with Stytch's field names (as every answer shows a
/// session: its client view, without a pending device-binding challenge).
async fn me(session: Session) -> Response {
    no_store(Json(ClientSession::from(session)))
}

/// `GET /api/sample`: a fixed session, shaped and sized like `/api/me`'s answer, without
/// authentication: the baseline of the load test in BENCHMARKS.md (what `/api/me` costs beyond
/// producing the same body).
async fn sample() -> Response {
    static SAMPLE: std::sync::OnceLock<Session> = std::sync::OnceLock::new();
    let sample = SAMPLE.get_or_init(|| {
        let sample = json!({
            "session_id": "session-Q2x8sVb1mJcR0hT5yW3kLg",
            "user_id": "alice",
            "started_at": "2026-12-03T10:00:00.275Z",
            "last_accessed_at": "2026-12-03T10:00:00.275Z",
            "expires_at": "2026-12-10T10:00:00.275Z",
            "attributes": {"ip_address": "", "user_agent": ""},
            "authentication_factors": [{
                "type": "password",
                "delivery_method": "knowledge",
                "last_authenticated_at": "2026-12-03T10:00:00.275Z"
            }],
            "custom_claims": {},
            "version": 0
        });
        serde_json::from_value(sample).expect("a valid session")
    });
    // Cloned and serialized as `/api/me` does with the request's session.
    no_store(Json(ClientSession::from(sample.clone())))
}

/// An authentication factor named by a client: `password`, `otp`, `webauthn`, … with the
/// delivery method usual for it, authenticated now.
fn factor_named(name: &str) -> Result<AuthenticationFactor, InvalidFactor> {
    AuthenticationFactor::of_type(name, time::OffsetDateTime::now_utc())
}

fn invalid_factor(e: InvalidFactor) -> Response {
    error(StatusCode::BAD_REQUEST, "invalid_factor", &e.to_string())
}

/// Largest body of the JSON routes that change a session.
const MAX_CHANGE_BODY: usize = 16 * 1024;

/// Reads a JSON object body (or, with `form`, a form) for the routes that change a session;
/// refuses cross-site requests.
async fn change_body(
    sessions: &Sessions,
    request: Request,
) -> Result<(axum::http::request::Parts, Map<String, Value>, bool), Response> {
    let (parts, body) = request.into_parts();
    if is_cross_site(sessions, &parts) {
        return Err(error(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "cross-site request refused",
        ));
    }
    let content_type = parts
        .headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_CHANGE_BODY).await else {
        return Err(error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "invalid_request",
            "body too large",
        ));
    };
    if content_type.starts_with("application/x-www-form-urlencoded") {
        let fields = form_fields(&bytes)
            .map_err(|m| error(StatusCode::BAD_REQUEST, "invalid_request", m))?;
        let object = fields
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect();
        return Ok((parts, object, true));
    }
    if !content_type.starts_with("application/json") {
        return Err(error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json",
        ));
    }
    match serde_json::from_slice::<Value>(&bytes) {
        Ok(Value::Object(object)) => Ok((parts, object, false)),
        Ok(_) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected a JSON object",
        )),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &e.to_string(),
        )),
    }
}

/// The response to a change (`response`, JSON or a form's redirect) with the fresh cookies,
/// which a bearer client does not get: it keeps its credentials in the body.
fn changed_response(
    cookies: &SessionCookies,
    changed: &Changed,
    response: impl IntoResponse,
) -> Response {
    let mut response = no_store(response);
    cookies.set(&mut response, changed);
    response
}

/// `PATCH /api/session/claims` `{"custom_claims": {…}}`: merges into the current session (a
/// `null` deletes a key). Every JWT minted before is refused at once, here and on every
/// instance; a client holding the opaque token is re-minted one with the new claims.
/// A device-bound session's answer carries `"session_jwt": null` and removes the JWT cookie:
/// only the device's proof mints for it, and the browser refreshes through DBSC.
async fn update_claims(
    current: CurrentSession,
    sessions: Sessions,
    cookies: SessionCookies,
    request: Request,
) -> Response {
    let (_, mut body, _) = match change_body(&sessions, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let Some(Value::Object(patch)) = body.remove("custom_claims") else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "expected {\"custom_claims\": {…}}",
        );
    };
    match sessions.update_claims(&current.session_id, patch).await {
        Ok(changed) => {
            let body = json!({
                "session": changed.session.public_view(),
                "session_jwt": changed.jwt.as_ref().map(|j| j.expose()),
            });
            changed_response(&cookies, &changed, Json(body))
        }
        Err(e) => session_error(e),
    }
}

/// `POST /api/session/step-up` `{"factor": "otp"}`: records that the user just authenticated
/// with that factor (a real app verifies the code first) and rotates the session token.
/// A device-bound session gets no JWT here (`"session_jwt": null`): its browser refreshes one
/// through DBSC with its key.
async fn step_up(
    current: CurrentSession,
    sessions: Sessions,
    cookies: SessionCookies,
    request: Request,
) -> Response {
    let (_, body, is_form) = match change_body(&sessions, request).await {
        Ok(read) => read,
        Err(response) => return response,
    };
    let name = match body.get("factor") {
        Some(Value::String(name)) => name.as_str(),
        None => "otp",
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_factor",
                "factor must be a string",
            );
        }
    };
    let factor = match factor_named(name) {
        Ok(factor) => factor,
        Err(e) => return invalid_factor(e),
    };
    match sessions.step_up(&current.session_id, factor).await {
        Ok(changed) => {
            if is_form {
                return changed_response(&cookies, &changed, Redirect::to("/"));
            }
            let body = json!({
                "session": changed.session.public_view(),
                "session_token": changed.token.as_ref().map(|t| t.expose()),
                "session_jwt": changed.jwt.as_ref().map(|j| j.expose()),
            });
            changed_response(&cookies, &changed, Json(body))
        }
        Err(e) => session_error(e),
    }
}

/// `GET /api/sensitive`: reached only with an authentication factor used within
/// `STEP_UP_MAX_AGE_SECS` (the guard answers the RFC 9470 challenge otherwise).
async fn sensitive(session: Session) -> Response {
    no_store(Json(json!({
        "user_id": session.user_id,
        "auth_time": session.auth_time().map(|t| t.unix_timestamp()),
        "amr": session.amr(),
    })))
}

/// A session as `/api/sessions` lists it.
#[derive(Serialize)]
struct Device {
    #[serde(flatten)]
    session: ClientSession,
    /// "Chrome on Linux", from the user agent.
    device: String,
    current: bool,
    /// Bound to its browser's key (DBSC): its cookies are useless elsewhere.
    device_bound: bool,
}

/// The query of `GET /api/sessions`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    limit: Option<String>,
    cursor: Option<String>,
}

/// Longest page `GET /api/sessions` returns.
const MAX_LIST_LIMIT: u32 = 100;

/// `GET /api/sessions?limit=…&cursor=…`: the current user's live sessions, newest first, a page
/// at a time (default 50), with `next_cursor` while more follow.
async fn list_sessions(current: CurrentSession, sessions: Sessions, request: Request) -> Response {
    let query = request.uri().query().unwrap_or_default();
    let query: ListQuery = match serde_urlencoded_strict(query) {
        Ok(query) => query,
        Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", &message),
    };
    let limit = match query.limit.as_deref() {
        None => PageRequest::DEFAULT_LIMIT,
        Some(text) => match text.parse::<u32>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => n,
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("limit must be 1 to {MAX_LIST_LIMIT}"),
                );
            }
        },
    };
    let page = match query.cursor.as_deref() {
        None | Some("") => PageRequest::first(limit),
        Some(text) => match text.parse::<PageCursor>() {
            Ok(cursor) => PageRequest::after(cursor, limit),
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_cursor", &e.to_string()),
        },
    };
    match sessions.list_page(&current.user_id, &page).await {
        Ok(found) => {
            let devices: Vec<Device> = found
                .sessions
                .iter()
                .map(|session| Device {
                    session: session.public_view(),
                    device: device_name(&session.attributes.user_agent),
                    current: session.session_id == current.session_id,
                    device_bound: session.is_device_bound(),
                })
                .collect();
            no_store(Json(json!({
                "sessions": devices,
                "next_cursor": found.next.map(|c| c.to_string()),
            })))
        }
        Err(e) => store_unavailable(e),
    }
}

/// Decodes a query string strictly (see [`form_fields`]) into `T`.
fn serde_urlencoded_strict<T: serde::de::DeserializeOwned>(query: &str) -> Result<T, String> {
    let fields = form_fields(query.as_bytes()).map_err(str::to_owned)?;
    let object: Map<String, Value> = fields
        .into_iter()
        .map(|(k, v)| (k, Value::String(v)))
        .collect();
    serde_json::from_value(Value::Object(object)).map_err(|e| e.to_string())
}

/// `GET /.well-known/jwks.json`: the public keys that verify session JWTs.
async fn jwks(sessions: Sessions) -> Response {
    let mut response = Json(sessions.jwks()).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Responses

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": code, "message": message }))).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn session_error(e: SessionError) -> Response {
    let status = e.status();
    let code = match &e {
        SessionError::InvalidUserId(_) => "invalid_user_id",
        SessionError::InvalidCustomClaims(_) => "invalid_custom_claims",
        SessionError::InvalidTtl => "invalid_ttl",
        SessionError::JwtTooLarge { .. } => "session_jwt_too_large",
        SessionError::CrossSiteRequest => "cross_site_request",
        SessionError::InvalidFactor(_) => "invalid_factor",
        SessionError::SessionLimitReached => "session_limit_reached",
        SessionError::UnknownSession => "invalid_token",
        SessionError::Store(_) => "store_unavailable",
        _ => "internal_error",
    };
    // Store and internal errors are logged, not shown.
    let message = if status.is_server_error() {
        eprintln!("axum_app: session change failed: {e}");
        "the session could not be created or changed; try again".to_owned()
    } else {
        e.to_string()
    };
    let mut response = error(status, code, &message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// `503` with `Retry-After`: a store failure is never shown as "signed out".
fn store_unavailable(e: StoreError) -> Response {
    eprintln!("axum_app: {e}");
    AuthError::Store(e).into_response()
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------------------------
// HTML

fn page(main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tower-session-jwt demo</title>
<style>
  body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
  h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 1.5rem; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
  td:nth-child(2) {{ word-break: break-all; font-size: .9em; }}
  form {{ display: inline; margin: 0; }}
  input {{ padding: .3rem; }}
  button {{ padding: .3rem .8rem; cursor: pointer; }}
  .danger {{ color: #a00; }}
  .actions {{ margin-top: 1rem; display: flex; gap: .5rem; }}
  .this {{ font-weight: 600; color: #060; }}
  .bound {{ font-size: .85em; color: #036; border: 1px solid #036; border-radius: 3px; padding: 0 .3em; white-space: nowrap; }}
  .muted {{ color: #777; font-size: .9em; }}
</style>
</head>
<body>
<h1>tower-session-jwt demo</h1>
{main}
</body>
</html>
"#
    )
}

fn when(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The Redis store `REDIS_URL` names; with the `redis-tls` feature, `REDIS_CA_FILE` and
/// `REDIS_CLIENT_CERT_FILE` / `REDIS_CLIENT_KEY_FILE` configure a `rediss://` connection.
#[cfg(feature = "redis")]
async fn redis_store(url: &str) -> Result<tower_session_jwt::store::redis::RedisStore, String> {
    #[allow(unused_mut)] // Only the TLS settings change the builder.
    let mut builder = tower_session_jwt::store::redis::RedisStore::builder(url);
    let file = |name: &str| -> Result<Option<Vec<u8>>, String> {
        match std::env::var(name).ok().filter(|v| !v.is_empty()) {
            Some(path) => std::fs::read(&path)
                .map(Some)
                .map_err(|e| format!("{name}={path}: {e}")),
            None => Ok(None),
        }
    };
    let ca = file("REDIS_CA_FILE")?;
    let identity = match (
        file("REDIS_CLIENT_CERT_FILE")?,
        file("REDIS_CLIENT_KEY_FILE")?,
    ) {
        (Some(cert), Some(key)) => Some((cert, key)),
        (None, None) => None,
        _ => {
            return Err("REDIS_CLIENT_CERT_FILE and REDIS_CLIENT_KEY_FILE go together".to_owned());
        }
    };
    #[cfg(feature = "redis-tls")]
    {
        if let Some(ca) = ca {
            builder = builder.tls_ca_pem(ca);
        }
        if let Some((cert, key)) = identity {
            builder = builder.tls_client_identity(cert, key);
        }
    }
    #[cfg(not(feature = "redis-tls"))]
    if ca.is_some() || identity.is_some() {
        return Err("REDIS_CA_FILE and REDIS_CLIENT_*_FILE need `--features redis-tls`".to_owned());
    }
    builder.build().await.map_err(|e| e.to_string())
}
