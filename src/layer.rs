//! [`SessionLayer`] and [`SessionService`]: authentication in front of any tower service.
//!
//! Per request (DESIGN §3):
//!
//! 1. Credentials are read once from the JWT cookie, the session cookie and
//!    `Authorization: Bearer` (a bearer value with two dots is a JWT, anything else an opaque
//!    token), borrowed from the headers. Duplicates that disagree are refused.
//! 2. A JWT is verified locally and checked against the revocation list: **no store call**. The
//!    session is put in the request's extensions and the inner service is called at once.
//! 3. Without a usable JWT, the opaque token is confirmed in the store (through the token cache),
//!    a fresh JWT is minted and set as a cookie on the response.
//! 4. Nothing valid: `401` with `WWW-Authenticate: Bearer` (required mode) or the request goes on
//!    without a session (optional mode). A store failure answers `503` in both modes.

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

use crate::cookies::{Credentials, extract, session_cookies};
use crate::error::AuthError;
use crate::manager::{JwtCheck, Sessions};
use crate::session::{Session, SessionId};
use crate::store::BoxFuture;

/// The authenticated session of a request, as the layer stores it in the request extensions.
///
/// Shared (an `Arc`): handlers that only read the session need not clone it. Also an axum
/// extractor (see [`crate::extract`]).
#[derive(Debug, Clone)]
pub struct CurrentSession(pub Arc<Session>);

impl std::ops::Deref for CurrentSession {
    type Target = Session;
    fn deref(&self) -> &Session {
        &self.0
    }
}

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
///     .route("/me", get(|s: Session| async move { Json(s) }))
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

    /// Replaces the default rejection responses ([`AuthError::to_response`]).
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
    fn reject(&self, error: &AuthError) -> Response<B>
    where
        B: Default,
    {
        match &self.on_error {
            Some(handler) => handler(error),
            None => error.to_response(),
        }
    }

    /// Whether a refused credential still lets the request through: optional mode only, never
    /// for a store failure (that must not look like "signed out") and never for a malformed
    /// request (disagreeing duplicates or oversized headers suggest cookie tossing).
    fn passes_anonymously(&self, error: &AuthError) -> bool {
        self.optional
            && !matches!(
                error,
                AuthError::Store(_)
                    | AuthError::Signing(_)
                    | AuthError::ConflictingCredentials
                    | AuthError::CredentialTooLarge
            )
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

/// What the slow path yields: the session and, when the store path minted one, new cookies.
struct Resolved {
    session: Option<Arc<Session>>,
    cookies: Vec<HeaderValue>,
}

/// Which path authenticated (or refused) a request, for tracing.
#[derive(Clone, Copy)]
enum Path {
    Jwt,
    JwtConfirmed,
    Store,
    None,
}

impl Path {
    fn as_str(self) -> &'static str {
        match self {
            Path::Jwt => "jwt",
            Path::JwtConfirmed => "jwt_confirmed",
            Path::Store => "store",
            Path::None => "none",
        }
    }
}

impl<S, B> SessionService<S, B> {
    fn slow_path(&self, credentials: Credentials<'_>, jwt: Option<JwtCheck>) -> SlowPath {
        let sessions = self.layer.sessions.clone();
        // A genuine JWT (even expired or revoked) and a token of another session disagree: a
        // token tossed into the cookie jar must not take over when the JWT stops being usable.
        let named = match &jwt {
            Some(JwtCheck::Confirm(session)) => Some(session.session_id.clone()),
            _ => credentials.jwt.and_then(|j| sessions.jwt_session_id(j)),
        };
        match jwt {
            Some(JwtCheck::Confirm(session)) => {
                let token = credentials.token.map(str::to_owned);
                SlowPath {
                    path: Path::JwtConfirmed,
                    future: Box::pin(async move {
                        match sessions.confirm(session).await {
                            Ok(session) => Ok(Resolved {
                                session: Some(session),
                                cookies: Vec::new(),
                            }),
                            // A JWT the store does not confirm may still come with a live token.
                            Err(AuthError::UnknownSession | AuthError::Revoked)
                                if token.is_some() =>
                            {
                                let token = token.as_deref().unwrap_or_default();
                                by_token(&sessions, token, named.as_ref()).await
                            }
                            Err(e) => Err(e),
                        }
                    }),
                }
            }
            _ => {
                let token = credentials.token.unwrap_or_default().to_owned();
                SlowPath {
                    path: Path::Store,
                    future: Box::pin(
                        async move { by_token(&sessions, &token, named.as_ref()).await },
                    ),
                }
            }
        }
    }
}

struct SlowPath {
    path: Path,
    future: BoxFuture<'static, Result<Resolved, AuthError>>,
}

async fn by_token(
    sessions: &Sessions,
    token: &str,
    named_by_jwt: Option<&SessionId>,
) -> Result<Resolved, AuthError> {
    let authenticated = sessions.authenticate_token(token).await?;
    if named_by_jwt.is_some_and(|id| *id != authenticated.session.session_id) {
        return Err(AuthError::ConflictingCredentials);
    }
    let now = sessions.clock().now();
    let cookies = session_cookies(
        sessions.settings(),
        None,
        &authenticated.jwt,
        authenticated.session.expires_at,
        now,
    );
    Ok(Resolved {
        session: Some(authenticated.session),
        cookies,
    })
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, ResBody>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S, ReqBody, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        // Take the service that poll_ready readied and leave a clone in its place; see
        // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let sessions = &self.layer.sessions;
        let span = tracing::debug_span!(
            "session_auth",
            path = tracing::field::Empty,
            outcome = tracing::field::Empty
        );

        let outcome: Result<Result<Arc<Session>, SlowPath>, AuthError> =
            match extract(request.headers(), sessions.settings()) {
                Err(e) => Err(e),
                Ok(credentials) if credentials.is_empty() => Err(AuthError::MissingCredentials),
                Ok(credentials) => match credentials.jwt.map(|jwt| sessions.check_jwt(jwt)) {
                    Some(Ok(JwtCheck::Trusted(session))) => Ok(Ok(session)),
                    Some(Ok(confirm)) => Ok(Err(self.slow_path(credentials, Some(confirm)))),
                    // A failed or absent JWT falls back to the opaque token when there is one.
                    Some(Err(_)) | None if credentials.token.is_some() => {
                        Ok(Err(self.slow_path(credentials, None)))
                    }
                    Some(Err(e)) => Err(e),
                    None => Err(AuthError::MissingCredentials),
                },
            };

        match outcome {
            Ok(Ok(session)) => {
                record(&span, Path::Jwt, "authenticated");
                insert(&mut request, sessions, Some(session));
                ResponseFuture::calling(inner.call(request), Vec::new())
            }
            Ok(Err(slow)) => ResponseFuture {
                state: State::Authenticating {
                    auth: slow.future,
                    request: Some(request),
                    inner: Some(inner),
                    layer: self.layer.clone(),
                    path: slow.path,
                    span,
                },
            },
            Err(error) => {
                record(&span, Path::None, error.reason());
                if self.layer.passes_anonymously(&error) {
                    insert(&mut request, sessions, None);
                    refused(&mut request, &error);
                    ResponseFuture::calling(inner.call(request), Vec::new())
                } else {
                    ResponseFuture::done(self.layer.reject(&error))
                }
            }
        }
    }
}

fn record(span: &tracing::Span, path: Path, outcome: &str) {
    span.record("path", path.as_str());
    span.record("outcome", outcome);
    let _entered = span.enter();
    tracing::debug!(path = path.as_str(), outcome, "session authentication");
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

fn insert<B>(request: &mut Request<B>, sessions: &Sessions, session: Option<Arc<Session>>) {
    let extensions = request.extensions_mut();
    extensions.insert(sessions.clone());
    if let Some(session) = session {
        extensions.insert(CurrentSession(session));
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
        // Waiting for the store (or the store-confirmed JWT path).
        Authenticating {
            auth: BoxFuture<'static, Result<Resolved, AuthError>>,
            request: Option<Request<ReqBody>>,
            inner: Option<S>,
            layer: SessionLayer<ResBody>,
            path: Path,
            span: tracing::Span,
        },
        // Running the inner service; `cookies` go on its response.
        Calling {
            #[pin]
            future: S::Future,
            cookies: Vec<HeaderValue>,
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
    fn calling(future: S::Future, cookies: Vec<HeaderValue>) -> Self {
        Self {
            state: State::Calling { future, cookies },
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
                    path,
                    span,
                } => {
                    let result = ready!(auth.as_mut().poll(cx));
                    let (Some(mut request), Some(mut inner)) = (request.take(), inner.take())
                    else {
                        panic!("ResponseFuture polled after completion");
                    };
                    let next = match result {
                        Ok(resolved) => {
                            record(span, *path, "authenticated");
                            insert(&mut request, &layer.sessions, resolved.session);
                            State::Calling {
                                future: inner.call(request),
                                cookies: resolved.cookies,
                            }
                        }
                        Err(error) => {
                            record(span, *path, error.reason());
                            if layer.passes_anonymously(&error) {
                                insert(&mut request, &layer.sessions, None);
                                refused(&mut request, &error);
                                State::Calling {
                                    future: inner.call(request),
                                    cookies: Vec::new(),
                                }
                            } else {
                                State::Done {
                                    response: Some(layer.reject(&error)),
                                }
                            }
                        }
                    };
                    this.state.set(next);
                }
                StateProj::Calling { future, cookies } => {
                    let mut response = ready!(future.poll(cx))?;
                    for cookie in cookies.drain(..) {
                        response.headers_mut().append(SET_COOKIE, cookie);
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
