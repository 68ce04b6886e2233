//! Readiness for load balancers: an instance is ready when its revocation feed is caught up (the
//! JWT fast path is trusted) and its store answers.
//!
//! [`Sessions::health`] checks both; [`health`] is a tower service answering `200` when ready
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
//! use tower_session_jwt::{MemoryStore, Sessions, SigningKey, health};
//!
//! let sessions = Sessions::builder()
//!     .store(MemoryStore::new())
//!     .signing_key(SigningKey::generate_ed25519().unwrap())
//!     .build()
//!     .unwrap();
//! sessions.ready().await;
//! assert!(sessions.health().await.ready());
//! let app: Router = Router::new().route_service("/healthz", health(&sessions));
//! # let _ = app; });
//! ```

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum_core::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Request, Response, StatusCode};
use serde::Serialize;
use tower_service::Service;

use crate::manager::Sessions;
use crate::session::SessionId;
use crate::store::BoxFuture;

/// What [`Sessions::health`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Health {
    /// Whether the fast path is trusted: the revocation feed is caught up and fresh (always
    /// for a store without a feed).
    pub feed_caught_up: bool,
    /// Whether the store answered a lookup.
    pub store_reachable: bool,
}

impl Health {
    /// Ready for traffic: both hold.
    pub fn ready(&self) -> bool {
        self.feed_caught_up && self.store_reachable
    }
}

impl Sessions {
    /// Checks readiness: the feed's state and one store lookup (of an id no session has),
    /// bounded by the store's own timeouts. See the [module docs](mod@crate::health).
    pub async fn health(&self) -> Health {
        let store_reachable = match SessionId::generate() {
            Ok(probe) => self.store_get(&probe).await.is_ok(),
            Err(_) => false,
        };
        Health {
            feed_caught_up: self.fast_path_trusted(),
            store_reachable,
        }
    }
}

/// A tower service answering readiness: `200` when [`Health::ready`], else `503`, with the
/// [`Health`] as JSON and `Cache-Control: no-store`. Mount it at `/healthz` (axum:
/// `route_service`); for hyper, [`HealthService::with_body`] picks the body type.
pub fn health(sessions: &Sessions) -> HealthService {
    HealthService {
        sessions: sessions.clone(),
        body: std::marker::PhantomData,
    }
}

/// The service [`health`] returns.
pub struct HealthService<B = Body> {
    sessions: Sessions,
    body: std::marker::PhantomData<fn() -> B>,
}

impl<B> Clone for HealthService<B> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            body: std::marker::PhantomData,
        }
    }
}

impl<B> std::fmt::Debug for HealthService<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HealthService").finish_non_exhaustive()
    }
}

impl<B> HealthService<B> {
    /// The same service with another response body type (any `From<String>`).
    pub fn with_body<C>(self) -> HealthService<C> {
        HealthService {
            sessions: self.sessions,
            body: std::marker::PhantomData,
        }
    }
}

impl<ReqBody, B> Service<Request<ReqBody>> for HealthService<B>
where
    B: From<String> + Send + 'static,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<B>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Request<ReqBody>) -> Self::Future {
        let sessions = self.sessions.clone();
        Box::pin(async move {
            let health = sessions.health().await;
            let body = serde_json::json!({
                "ready": health.ready(),
                "feed_caught_up": health.feed_caught_up,
                "store_reachable": health.store_reachable,
            });
            let mut response = Response::new(B::from(body.to_string()));
            if !health.ready() {
                *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
            }
            let headers = response.headers_mut();
            headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        })
    }
}
