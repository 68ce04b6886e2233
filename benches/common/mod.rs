//! What the request-path benches share: the router every variant wraps, the floor middleware,
//! tower-sessions as a peer, and one request round trip.

use std::fmt::Debug;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::http::header::AUTHORIZATION;
use axum::http::{Request, Response, StatusCode};
use axum::middleware::{self, Next};
use axum::response::IntoResponse;
use axum::routing::get;
use tower::{Service, ServiceExt};

/// The app every variant wraps: one route, `GET /me`, returning a small string.
pub fn app() -> Router {
    Router::new().route("/me", get(|| async { "me" }))
}

/// One request through `service`, made ready first.
pub async fn send<S, B>(service: &mut S, request: Request<Body>) -> Response<B>
where
    S: Service<Request<Body>, Response = Response<B>>,
    S::Error: Debug,
{
    service.ready().await.unwrap().call(request).await.unwrap()
}

/// What a hand-written middleware would decode: the identity and the expiry.
#[derive(serde::Deserialize, Clone)]
#[allow(dead_code)]
struct FloorClaims {
    sub: String,
    sid: String,
    exp: i64,
}

/// The floor: [`app`] behind `axum::middleware::from_fn` calling `jsonwebtoken::decode` on the
/// bearer credential with `key` and `validation` (built once), the claims put in the
/// extensions.
pub fn floor(key: jsonwebtoken::DecodingKey, validation: jsonwebtoken::Validation) -> Router {
    let key = Arc::new(key);
    let validation = Arc::new(validation);
    app().layer(middleware::from_fn(
        move |mut request: axum::extract::Request, next: Next| {
            let (key, validation) = (key.clone(), validation.clone());
            async move {
                let token = request
                    .headers()
                    .get(AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer "));
                let Some(token) = token else {
                    return StatusCode::UNAUTHORIZED.into_response();
                };
                match jsonwebtoken::decode::<FloorClaims>(token, &key, &validation) {
                    Ok(data) => {
                        request.extensions_mut().insert(Arc::new(data.claims));
                        next.run(request).await
                    }
                    Err(_) => StatusCode::UNAUTHORIZED.into_response(),
                }
            }
        },
    ))
}

/// tower-sessions with its MemoryStore: `/login` writes one value, `/me` reads it.
pub fn tower_sessions_router() -> Router {
    use tower_sessions::{MemoryStore, Session, SessionManagerLayer};
    Router::new()
        .route(
            "/me",
            get(|session: Session| async move {
                session
                    .get::<String>("user")
                    .await
                    .unwrap()
                    .unwrap_or_default()
            }),
        )
        .route(
            "/login",
            get(|session: Session| async move {
                session.insert("user", "user-1").await.unwrap();
                "ok"
            }),
        )
        .layer(SessionManagerLayer::new(MemoryStore::default()).with_secure(false))
}

/// A runtime whose `workers` threads run the background tasks (the revocation feeds) and, in
/// the concurrent groups, the requests.
pub fn runtime(workers: usize) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap()
}

/// Times `service` on requests made fresh by `request` (the making is timed too, the same for
/// every variant).
pub fn time_requests<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    rt: &tokio::runtime::Runtime,
    id: &str,
    service: S,
    request: impl Fn() -> Request<Body> + Clone + 'static,
) where
    S: Service<Request<Body>, Response = Response<B>> + Clone + 'static,
    S::Error: Debug,
{
    group.bench_function(id, |b| {
        b.to_async(rt).iter_custom(|iters| {
            let mut service = service.clone();
            let request = request.clone();
            async move {
                let start = std::time::Instant::now();
                for _ in 0..iters {
                    std::hint::black_box(send(&mut service, request()).await);
                }
                start.elapsed()
            }
        })
    });
}
