//! The one adapter that makes a tower service of an endpoint: the DBSC handlers, the logout
//! family and health.
//!
//! An [`Endpoint`] says which methods it answers and how it answers a request's head, with a
//! text body. [`EndpointService`] does the rest once for all of them: the `405` with `Allow` for
//! any other method, the request body left unread, the response body converted to the
//! caller's type (any `From<String>`), and `Clone`/`Debug` without bounds on that type. Each
//! public endpoint type is a newtype over it that [`endpoint_service!`] makes a service.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::time::{Duration, Instant};

use http::header::{ALLOW, CACHE_CONTROL};
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode};

use crate::store::BoxFuture;

/// An HTTP endpoint: its methods and its answer.
pub(crate) trait Endpoint: Clone + fmt::Debug + Send + Sync + 'static {
    /// The methods it answers; any other gets `405` with these in `Allow` (so a link or an
    /// image tag cannot trigger it, whatever router it is mounted in). Empty: every method.
    const METHODS: &'static [Method];

    /// The answer to a request with one of [`Self::METHODS`] (its body is not read).
    fn respond(&self, parts: Parts) -> impl Future<Output = Response<String>> + Send;

    /// Sees every answer, a `405` included, and how long it took. Nothing by default.
    fn answered(&self, _status: StatusCode, _took: Duration) {}
}

/// An [`Endpoint`] as a tower service answering with bodies of type `B`.
pub(crate) struct EndpointService<E, B> {
    pub(crate) endpoint: E,
    body: PhantomData<fn() -> B>,
}

impl<E: Endpoint, B> EndpointService<E, B> {
    pub(crate) fn new(endpoint: E) -> Self {
        Self {
            endpoint,
            body: PhantomData,
        }
    }

    /// The same endpoint answering with bodies of type `C`.
    pub(crate) fn with_body<C>(self) -> EndpointService<E, C> {
        EndpointService::new(self.endpoint)
    }

    /// What `Service::call` returns (the endpoint is always ready).
    pub(crate) fn call<ReqBody>(
        &self,
        request: Request<ReqBody>,
    ) -> BoxFuture<'static, Result<Response<B>, Infallible>>
    where
        B: From<String> + 'static,
    {
        let (parts, _) = request.into_parts();
        let endpoint = self.endpoint.clone();
        Box::pin(async move {
            let started = Instant::now();
            let response = if E::METHODS.is_empty() || E::METHODS.contains(&parts.method) {
                endpoint.respond(parts).await
            } else {
                method_not_allowed(E::METHODS)
            };
            endpoint.answered(response.status(), started.elapsed());
            Ok(response.map(B::from))
        })
    }
}

impl<E: Clone, B> Clone for EndpointService<E, B> {
    fn clone(&self) -> Self {
        Self {
            endpoint: self.endpoint.clone(),
            body: PhantomData,
        }
    }
}

/// `405` with `Allow` listing `methods`, and `Cache-Control: no-store`.
fn method_not_allowed(methods: &[Method]) -> Response<String> {
    let allow = methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    let mut response = Response::new(String::new());
    *response.status_mut() = StatusCode::METHOD_NOT_ALLOWED;
    let headers = response.headers_mut();
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Ok(allow) = HeaderValue::from_str(&allow) {
        headers.insert(ALLOW, allow);
    }
    response
}

/// Makes `$name<B>`, a newtype over [`EndpointService`], a tower service, with `Clone`,
/// `Debug` and `with_body` (none of them asking anything of `B`).
macro_rules! endpoint_service {
    ($name:ident) => {
        impl<B> Clone for $name<B> {
            fn clone(&self) -> Self {
                Self(self.0.clone())
            }
        }

        impl<B> std::fmt::Debug for $name<B> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($name))
                    .field(&self.0.endpoint)
                    .finish()
            }
        }

        impl<B> $name<B> {
            /// The same service answering with response bodies of type `C` (any
            /// `From<String>`: axum's `Body`, or `http_body_util::Full<Bytes>` under plain
            /// hyper).
            pub fn with_body<C>(self) -> $name<C> {
                $name(self.0.with_body())
            }
        }

        impl<ReqBody, B> tower_service::Service<http::Request<ReqBody>> for $name<B>
        where
            B: From<String> + 'static,
        {
            type Response = http::Response<B>;
            type Error = std::convert::Infallible;
            type Future = crate::store::BoxFuture<
                'static,
                Result<http::Response<B>, std::convert::Infallible>,
            >;

            fn poll_ready(
                &mut self,
                _: &mut std::task::Context<'_>,
            ) -> std::task::Poll<Result<(), Self::Error>> {
                std::task::Poll::Ready(Ok(()))
            }

            fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
                self.0.call(request)
            }
        }
    };
}

pub(crate) use endpoint_service;
