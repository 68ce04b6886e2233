//! [`SessionLayer`] and [`SessionService`]: authentication in front of any tower service.
//!
//! The layer does HTTP only; every decision is [`Sessions::authenticate`]'s. Per request:
//!
//! 1. The credential headers are marked sensitive, and the credentials are read once from the
//!    JWT cookie, the session cookie and `Authorization: Bearer`, borrowed from the headers.
//! 2. The JWT fast path answers synchronously (**no store call**); the session goes into the
//!    request's extensions and the inner service is called at once. Otherwise the store step
//!    is awaited first.
//! 3. Cookies the store path hands back (a fresh JWT, the token again) are added to the
//!    response, **unless the handler set or stripped a session cookie itself**: a login or a
//!    logout has the last word, so a response never carries credentials of two sessions.
//!    A request that presents `Authorization: Bearer` gets **no session cookie at all**: the
//!    layer adds none and removes any its handler set (a login, a change, a logout's removal),
//!    so the rule holds for every response behind it, whoever wrote the handler.
//! 4. Nothing valid: `401` with `WWW-Authenticate: Bearer` (required mode) or the request goes on
//!    without a session, the refusal noted in [`RefusedCredential`] (optional mode). A store
//!    failure answers `503` in both modes. gRPC calls get gRPC statuses instead
//!    (`UNAUTHENTICATED`, `UNAVAILABLE`; see [`crate::grpc`]).

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

use http::header::SET_COOKIE;
use http::{HeaderValue, Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::data::session::Session;
use crate::engine::error::AuthError;
use crate::engine::{AuthPath, Authenticated, Sessions, Step};
use crate::http::cookies::{
    append_set_cookies, authenticated_cookies, remove_session_cookies, sets_session_cookie,
};
use crate::http::credentials::{allows_session_cookies, mark_sensitive, read};
use crate::store::BoxFuture;

pub use super::current::{CurrentSession, sessions};

/// Builds a custom rejection response from the typed error.
pub type ErrorHandler<B> = Arc<dyn Fn(&AuthError) -> Response<B> + Send + Sync>;

/// A tower [`Layer`] that authenticates every request with [`Sessions`].
///
/// # Example
///
/// ```
/// use axum::{Json, Router, routing::get};
/// use tower_session_jwt::{MemoryStore, Session, SessionLayer, Sessions, SigningKey};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let app: Router = Router::new()
///     .route("/me", get(|s: Session| async move { Json(s.public_view()) }))
///     .layer(SessionLayer::new(sessions.clone()));
/// # let _ = app; });
/// ```
pub struct SessionLayer<B = axum_core::body::Body> {
    sessions: Sessions,
    optional: bool,
    on_error: Option<ErrorHandler<B>>,
}

impl<B> Clone for SessionLayer<B> {
    fn clone(&self) -> Self {
        Self {
            sessions: self.sessions.clone(),
            optional: self.optional,
            on_error: self.on_error.clone(),
        }
    }
}

impl<B> fmt::Debug for SessionLayer<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionLayer")
            .field("optional", &self.optional)
            .finish_non_exhaustive()
    }
}

impl<B> SessionLayer<B> {
    /// A layer that requires a session: requests without one answer `401`.
    pub fn new(sessions: Sessions) -> Self {
        Self {
            sessions,
            optional: false,
            on_error: None,
        }
    }

    /// Lets requests without a valid session through, without a [`CurrentSession`]. Handlers
    /// then take `Option<Session>`. Store failures still answer `503`.
    pub fn optional(mut self) -> Self {
        self.optional = true;
        self
    }

    /// Replaces the default rejection responses ([`AuthError::to_response`], or for gRPC calls
    /// [`grpc::refusal`](crate::grpc::refusal)), for HTTP and gRPC requests alike.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_session_jwt::{AuthError, SessionLayer, Sessions};
    ///
    /// fn with_json_errors(sessions: Sessions) -> SessionLayer<String> {
    ///     SessionLayer::new(sessions).on_error(|e: &AuthError| {
    ///         let mut response = e.to_response::<String>();
    ///         *response.body_mut() = format!(r#"{{"error":"{}"}}"#, e.reason());
    ///         response
    ///     })
    /// }
    /// ```
    pub fn on_error(
        mut self,
        handler: impl Fn(&AuthError) -> Response<B> + Send + Sync + 'static,
    ) -> Self {
        self.on_error = Some(Arc::new(handler));
        self
    }
}

impl<B> SessionLayer<B> {
    /// The refusal: the custom handler's, else a gRPC status for a gRPC call (see
    /// [`crate::grpc`]), else [`AuthError::to_response`].
    fn reject<Req>(&self, error: &AuthError, request: &Request<Req>) -> Response<B>
    where
        B: Default,
    {
        match &self.on_error {
            Some(handler) => handler(error),
            None => crate::http::grpc::auth_refusal(error, request.headers()),
        }
    }

    /// Whether a refused credential still lets the request through: optional mode only, and
    /// never for a server-side failure (a store outage must not look like "signed out").
    /// Conflicting or oversized credentials go through anonymously too: they may be a cookie
    /// tossed in by someone else, and the user must still reach the login and logout handlers
    /// to recover (extractors answer them with `400 invalid_request`).
    fn passes_anonymously(&self, error: &AuthError) -> bool {
        self.optional && !matches!(error, AuthError::Store(_) | AuthError::Signing(_))
    }
}

impl<S, B> Layer<S> for SessionLayer<B> {
    type Service = SessionService<S, B>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`SessionLayer`] produces.
pub struct SessionService<S, B = axum_core::body::Body> {
    inner: S,
    layer: SessionLayer<B>,
}

impl<S: Clone, B> Clone for SessionService<S, B> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            layer: self.layer.clone(),
        }
    }
}

impl<S: fmt::Debug, B> fmt::Debug for SessionService<S, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionService")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, B> SessionService<S, B> {
    inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let sessions = &self.layer.sessions;
        let span = tracing::debug_span!(
            "session_auth",
            path = tracing::field::Empty,
            outcome = tracing::field::Empty
        );
        mark_sensitive(request.headers_mut());
        // The extraction already read `Authorization`: whether it is a bearer comes with the
        // credentials, and is looked up again only for a request refused before that.
        let (step, cookies_allowed, cookies) = match read(request.headers(), sessions.settings()) {
            Ok(credentials) => {
                let step = sessions.begin(&credentials);
                // Cookies only from a token-cache hit of a cookie client (the JWT again).
                let cookies = match &step {
                    Step::Done(Ok(outcome)) => refreshed(sessions, outcome, &credentials),
                    _ => Vec::new(),
                };
                (step, !credentials.presents_bearer, cookies)
            }
            Err(error) => (
                Step::Done(Err(error)),
                allows_session_cookies(request.headers()),
                Vec::new(),
            ),
        };
        // Decided at once, the inner service that `poll_ready` readied is called at once. Only
        // the store step, which calls it later, takes it along (leaving a clone in its place;
        // see https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services).
        match step {
            Step::Done(Ok(outcome)) => {
                authenticated(&span, sessions, outcome.path);
                let finish = Finish::new(sessions, cookies_allowed, cookies);
                insert(&mut request, sessions, Some(outcome.session));
                ResponseFuture::calling(self.inner.call(request), finish)
            }
            Step::Store(auth) => {
                let clone = self.inner.clone();
                let inner = std::mem::replace(&mut self.inner, clone);
                ResponseFuture {
                    state: State::Authenticating {
                        auth,
                        request: Some(request),
                        inner: Some(inner),
                        layer: self.layer.clone(),
                        cookies_allowed,
                        span,
                    },
                }
            }
            Step::Done(Err(error)) => {
                refused_at(&span, "none", &error);
                let finish = Finish::new(sessions, cookies_allowed, Vec::new());
                if self.layer.passes_anonymously(&error) {
                    insert(&mut request, sessions, None);
                    refused(&mut request, &error);
                    ResponseFuture::calling(self.inner.call(request), finish)
                } else {
                    let mut response = self.layer.reject(&error, &request);
                    finish.apply(response.headers_mut());
                    ResponseFuture::done(response)
                }
            }
        }
    }
}

/// For a cookie client refused because its session is bound to a device (DBSC) and its JWT
/// cookie is no longer usable (refused after a claims change or rotation, say): a removal of the
/// JWT cookie. A browser holding the device key refreshes a missing bound cookie before its next
/// request, so it recovers at once instead of sending the refused JWT until the cookie expires.
/// It carries no credential, so a copied cookie gains nothing from it. A bearer request gets
/// none (see [`Finish`]).
fn bound_jwt_removal<B>(
    sessions: &Sessions,
    error: &AuthError,
    request: &Request<B>,
) -> Vec<HeaderValue> {
    if !matches!(error, AuthError::DeviceBound)
        || !request.headers().contains_key(http::header::COOKIE)
    {
        return Vec::new();
    }
    let settings = sessions.settings();
    vec![crate::http::cookies::removal(
        &settings.cookies,
        &settings.jwt_cookie,
        "/",
    )]
}

/// The cookies that hand a cookie client what its authentication refreshed (see
/// [`authenticated_cookies`]).
fn refreshed(
    sessions: &Sessions,
    outcome: &Authenticated,
    credentials: &crate::engine::Credentials<'_>,
) -> Vec<HeaderValue> {
    if outcome.jwt.is_none() {
        return Vec::new();
    }
    authenticated_cookies(
        sessions.settings(),
        outcome,
        credentials.cookie_token,
        sessions.clock().now(),
    )
}

/// A request authenticated on `path`: counted and traced.
fn authenticated(span: &tracing::Span, sessions: &Sessions, path: AuthPath) {
    sessions.metrics().authenticated(path);
    record(span, path.as_str(), "authenticated");
}

/// A request refused at `at` (`none` before any store call, `store` after one): counted and
/// traced.
fn refused_at(span: &tracing::Span, at: &'static str, error: &AuthError) {
    crate::engine::metrics::refused(at, error.reason());
    record(span, at, error.reason());
}

fn record(span: &tracing::Span, path: &str, outcome: &str) {
    span.record("path", path);
    span.record("outcome", outcome);
    let _entered = span.enter();
    tracing::debug!(path, outcome, "session authentication");
}

/// In optional mode, a request whose credential was refused goes on without a session; this
/// extension keeps the reason, so extractors still answer `error="invalid_token"` (RFC 6750
/// §3.1) rather than a bare challenge.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RefusedCredential {
    /// [`AuthError::reason`] of the refusal.
    pub reason: &'static str,
}

fn refused<B>(request: &mut Request<B>, error: &AuthError) {
    if !matches!(error, AuthError::MissingCredentials) {
        request.extensions_mut().insert(RefusedCredential {
            reason: error.reason(),
        });
    }
}

/// Puts this layer's verdict in the extensions, replacing whatever an outer layer (of another
/// [`Sessions`], say) left there: a handler must see this layer's session or none.
///
/// A session goes in as a [`CurrentSession`], which carries this layer's [`Sessions`] too: one
/// insert per authenticated request. A request let through without one gets the [`Sessions`]
/// on its own. Either way the extractors find the layer's [`Sessions`] on every request it let
/// through, and take its absence for a route the layer does not run in front of (answering
/// `500` rather than treat a signed-in user as a stranger).
fn insert<B>(request: &mut Request<B>, sessions: &Sessions, session: Option<Arc<Session>>) {
    let extensions = request.extensions_mut();
    match session {
        Some(session) => {
            // A `Sessions` an application put there itself (`axum::Extension`) stays: the
            // extractors read the layer's from the `CurrentSession`.
            extensions.insert(CurrentSession::new(sessions.clone(), session));
            extensions.remove::<RefusedCredential>();
        }
        None => {
            extensions.insert(sessions.clone());
            extensions.remove::<CurrentSession>();
        }
    }
}

/// What the layer does to a response on its way out: nothing, add the cookies the
/// authentication handed back (unless the handler set or stripped a session cookie itself), or,
/// for a request that presented `Authorization: Bearer`, remove every session cookie whoever
/// set it (the one rule of [`allows_session_cookies`]).
enum Finish {
    Nothing,
    SetCookies(Sessions, Vec<HeaderValue>),
    NoSessionCookies(Sessions),
}

impl Finish {
    fn new(sessions: &Sessions, cookies_allowed: bool, cookies: Vec<HeaderValue>) -> Self {
        if !cookies_allowed {
            Finish::NoSessionCookies(sessions.clone())
        } else if cookies.is_empty() {
            Finish::Nothing
        } else {
            Finish::SetCookies(sessions.clone(), cookies)
        }
    }

    fn apply(self, headers: &mut http::HeaderMap) {
        match self {
            Finish::Nothing => {}
            Finish::SetCookies(sessions, cookies) => {
                // A handler that set or stripped a session cookie (a login, a logout) has the
                // last word.
                if !sets_session_cookie(sessions.settings(), headers.get_all(SET_COOKIE).iter()) {
                    // With `no-store`: a response that hands out credentials must not be
                    // stored by a shared cache, whatever the handler said.
                    append_set_cookies(headers, cookies);
                }
            }
            Finish::NoSessionCookies(sessions) => {
                remove_session_cookies(sessions.settings(), headers);
            }
        }
    }
}

pin_project! {
    /// The response future of [`SessionService`]: an unboxed state machine. Only the store
    /// path boxes its future.
    pub struct ResponseFuture<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        #[pin]
        state: State<S, ReqBody, ResBody>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, ReqBody, ResBody>
    where
        S: Service<Request<ReqBody>>,
    {
        // Waiting for the store (the token path, or a JWT confirmed in the store).
        Authenticating {
            auth: BoxFuture<'static, Result<Authenticated, AuthError>>,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            layer: SessionLayer<ResBody>,
            cookies_allowed: bool,
            span: tracing::Span,
        },
        // Running the inner service; `finish` is applied to its response.
        Calling {
            #[pin]
            future: S::Future,
            finish: Option<Finish>,
        },
        // Answered without the inner service.
        Done {
            response: Option<Response<ResBody>>,
        },
    }
}

impl<S, ReqBody, ResBody> ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>>,
{
    fn calling(future: S::Future, finish: Finish) -> Self {
        Self {
            state: State::Calling {
                future,
                finish: Some(finish),
            },
        }
    }

    fn done(response: Response<ResBody>) -> Self {
        Self {
            state: State::Done {
                response: Some(response),
            },
        }
    }
}

impl<S, ReqBody, ResBody> Future for ResponseFuture<S, ReqBody, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Output = Result<Response<ResBody>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Authenticating {
                    auth,
                    request,
                    inner,
                    layer,
                    cookies_allowed,
                    span,
                } => {
                    let result = ready!(auth.as_mut().poll(cx));
                    let (Some(mut request), Some(mut inner)) = (request.take(), inner.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = match result {
                        Ok(outcome) => {
                            authenticated(span, &layer.sessions, outcome.path);
                            // The token cookie goes again only when the session's expiry moved
                            // (once per JWT lifetime at most): then its value is read again from
                            // the request, which the store step outlived.
                            let credentials = match outcome.resend_token {
                                true => read(request.headers(), layer.sessions.settings())
                                    .unwrap_or_default(),
                                false => crate::engine::Credentials::new(),
                            };
                            let cookies = refreshed(&layer.sessions, &outcome, &credentials);
                            let finish = Finish::new(&layer.sessions, *cookies_allowed, cookies);
                            insert(&mut request, &layer.sessions, Some(outcome.session));
                            State::Calling {
                                future: inner.call(request),
                                finish: Some(finish),
                            }
                        }
                        Err(error) => {
                            refused_at(span, "store", &error);
                            let cookies = bound_jwt_removal(&layer.sessions, &error, &request);
                            let finish = Finish::new(&layer.sessions, *cookies_allowed, cookies);
                            if layer.passes_anonymously(&error) {
                                insert(&mut request, &layer.sessions, None);
                                refused(&mut request, &error);
                                State::Calling {
                                    future: inner.call(request),
                                    finish: Some(finish),
                                }
                            } else {
                                let mut response = layer.reject(&error, &request);
                                // The removal goes on a refusal too, so that the browser
                                // refreshes before its next request.
                                finish.apply(response.headers_mut());
                                State::Done {
                                    response: Some(response),
                                }
                            }
                        }
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future, finish } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(finish) = finish.take() {
                        finish.apply(response.headers_mut());
                    }
                    return Poll::Ready(Ok(response));
                }
                StateProj::Done { response } => {
                    let response = response
                        .take()
                        .expect("ResponseFuture polled after completion");
                    return Poll::Ready(Ok(response));
                }
            }
        }
    }
}
