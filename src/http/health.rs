//! Readiness for load balancers: an instance is ready when its revocation feed is caught up (the
//! JWT fast path is trusted) and its store answers.
//!
//! [`Sessions::health`](crate::Sessions::health) checks both; [`HealthService`] is a tower service answering `200` when ready
//! and `503` otherwise, with a small JSON body saying which part is not:
//!
//! ```json
//! {"ready":false,"feed_caught_up":true,"store_reachable":false}
//! ```
//!
//! While the feed is behind the instance still answers correctly (it confirms JWTs in the
//! store), only slower; while the store is down it answers `503` to everything that needs the
//! store. Taking such an instance out of rotation lets healthy ones serve.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use axum::Router;
//! use tower_session_jwt::health::HealthService;
//! use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
//!
//! let sessions = Sessions::builder()
//!     .store(MemoryStore::new())
//!     .signing_key(SigningKey::generate_ed25519().unwrap())
//!     .build()
//!     .unwrap();
//! sessions.ready().await;
//! assert!(sessions.health().await.ready());
//! let app: Router = Router::new().route_service("/healthz", HealthService::new(&sessions));
//! # let _ = app; });
//! ```

use axum_core::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderValue, Method, Response, StatusCode};

use crate::engine::Sessions;
use crate::http::endpoint::{Endpoint, EndpointService, endpoint_service};

/// A tower service answering readiness: `200` when [`Health::ready`], else `503`, with the
/// [`Health`] as JSON and `Cache-Control: no-store`, to every method. Mount it at `/healthz`
/// (axum: `route_service`); for hyper, [`HealthService::with_body`] picks the body type.
///
/// [`Health::ready`]: crate::sessions::Health::ready
/// [`Health`]: crate::sessions::Health
pub struct HealthService<B = Body>(EndpointService<Readiness, B>);

impl HealthService {
    /// The readiness service of these sessions; see the [module docs](self).
    pub fn new(sessions: &Sessions) -> Self {
        HealthService(EndpointService::new(Readiness {
            sessions: sessions.clone(),
        }))
    }
}

endpoint_service!(HealthService);

/// The readiness endpoint of [`HealthService`].
#[derive(Clone)]
pub(crate) struct Readiness {
    sessions: Sessions,
}

impl std::fmt::Debug for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readiness").finish_non_exhaustive()
    }
}

impl Endpoint for Readiness {
    const METHODS: &'static [Method] = &[];

    async fn respond(&self, _: Parts) -> Response<String> {
        let health = self.sessions.health().await;
        let body = serde_json::json!({
            "ready": health.ready(),
            "feed_caught_up": health.feed_caught_up,
            "store_reachable": health.store_reachable,
        });
        let mut response = Response::new(body.to_string());
        if !health.ready() {
            *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
        }
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}
