//! Step-up authentication: routes that require a recent authentication factor, answered per
//! RFC 9470 (OAuth 2.0 Step Up Authentication Challenge) when it is missing.
//!
//! A [`RecentAuth`] guard accepts a session that records an authentication factor (optionally
//! of given types) authenticated at most `max_age` ago. Otherwise it answers `401` with
//! `WWW-Authenticate: Bearer error="insufficient_user_authentication", max_age="…"`; the client
//! re-authenticates (a one-time code, say), the application records the factor with
//! [`Sessions::step_up`], and the request succeeds.
//!
//! Use the guard as a tower layer behind [`SessionLayer`](crate::SessionLayer) (axum:
//! `route_layer`), or call [`RecentAuth::check`] yourself.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum_core::response::{IntoResponse, Response as AxumResponse};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use time::OffsetDateTime;
use tower_layer::Layer;
use tower_service::Service;

use crate::data::session::Session;
use crate::engine::Sessions;
use crate::engine::error::AuthError;
use crate::http::layer::CurrentSession;
use crate::http::refusal::{JSON, Refusal};

/// Requires an authentication factor used within `max_age`; see the [module docs](self).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use tower_session_jwt::{MemoryStore, NewSession, SessionLayer, Sessions, SigningKey};
/// use tower_session_jwt::session::AuthenticationFactor;
/// use tower_session_jwt::step_up::RecentAuth;
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let guard = RecentAuth::new(&sessions, Duration::from_secs(300));
/// let app: Router = Router::new()
///     .route("/api/sensitive", get(|| async { "ok" }))
///     .route_layer(guard.clone())
///     .layer(SessionLayer::new(sessions.clone()));
///
/// // A session without a factor must step up; one that just used a password need not.
/// let plain = sessions.create("alice", NewSession::new()).await.unwrap();
/// let challenge = guard.check(&plain.session).unwrap_err();
/// assert_eq!(challenge.max_age(), Duration::from_secs(300));
/// let now = time::OffsetDateTime::now_utc();
/// let password = NewSession::new().factor(AuthenticationFactor::of_type("password", now).unwrap());
/// let fresh = sessions.create("alice", password).await.unwrap();
/// assert!(guard.check(&fresh.session).is_ok());
/// # let _ = app; });
/// ```
#[derive(Clone)]
pub struct RecentAuth {
    sessions: Sessions,
    max_age: Duration,
    types: Arc<[String]>,
}

impl std::fmt::Debug for RecentAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecentAuth")
            .field("max_age", &self.max_age)
            .field("types", &self.types)
            .finish()
    }
}

impl RecentAuth {
    /// A guard requiring an authentication factor (of any type) used at most `max_age` ago
    /// (whole seconds).
    pub fn new(sessions: &Sessions, max_age: Duration) -> Self {
        Self {
            sessions: sessions.clone(),
            max_age: Duration::from_secs(max_age.as_secs()),
            types: Arc::from(Vec::new()),
        }
    }

    /// Accepts only factors of these types (`otp`, `webauthn`, …): a recent password alone
    /// does not do when a second factor is required.
    pub fn of_types<I, T>(mut self, types: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<String>,
    {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// Whether `session` meets the requirement now; the challenge to send back otherwise.
    pub fn check(&self, session: &Session) -> Result<(), StepUpRequired> {
        self.check_at(session, self.sessions.clock().now())
    }

    fn check_at(&self, session: &Session, now: OffsetDateTime) -> Result<(), StepUpRequired> {
        let recent = session.authentication_factors.iter().any(|factor| {
            (self.types.is_empty() || self.types.contains(&factor.factor_type))
                && factor.last_authenticated_at <= now + Duration::from_secs(1)
                && now - factor.last_authenticated_at <= self.max_age
        });
        if recent {
            Ok(())
        } else {
            Err(StepUpRequired {
                max_age: self.max_age,
                types: self.types.clone(),
            })
        }
    }
}

/// A session lacks a recent enough authentication: the RFC 9470 challenge.
///
/// Answers `401` with `WWW-Authenticate: Bearer error="insufficient_user_authentication",
/// error_description="…", max_age="…"`, `Cache-Control: no-store` and a JSON body
/// `{"error": "insufficient_user_authentication", "error_description": …, "max_age": …,
/// "factor_types": […]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StepUpRequired {
    max_age: Duration,
    types: Arc<[String]>,
}

impl std::fmt::Display for StepUpRequired {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "an authentication within the last {} seconds is required",
            self.max_age.as_secs()
        )?;
        if !self.types.is_empty() {
            write!(f, " (one of: {})", self.types.join(", "))?;
        }
        Ok(())
    }
}

impl std::error::Error for StepUpRequired {}

impl StepUpRequired {
    /// The longest time since the last authentication that would have done.
    pub fn max_age(&self) -> Duration {
        self.max_age
    }

    /// The factor types that would have done (empty: any).
    pub fn factor_types(&self) -> &[String] {
        &self.types
    }
}

impl<S> Layer<S> for RecentAuth {
    type Service = RecentAuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        RecentAuthService {
            inner,
            guard: self.clone(),
        }
    }
}

/// The service of a [`RecentAuth`] layer: passes requests whose [`CurrentSession`] meets the
/// requirement, answers the challenge otherwise (and `401` with no session at all). gRPC calls
/// get `PERMISSION_DENIED` (and `UNAUTHENTICATED`) instead; see [`crate::grpc`].
#[derive(Clone, Debug)]
pub struct RecentAuthService<S> {
    inner: S,
    guard: RecentAuth,
}

impl<S> RecentAuthService<S> {
    inner_service_accessors!();
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RecentAuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone,
    ResBody: From<String> + Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = RecentAuthFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let grpc = crate::http::grpc::is_grpc(request.headers());
        let verdict = match request.extensions().get::<CurrentSession>() {
            Some(current) => self.guard.check(current).map_err(|e| {
                if grpc {
                    crate::http::grpc::refusal(
                        crate::http::grpc::GrpcCode::PermissionDenied,
                        &e.to_string(),
                    )
                } else {
                    e.to_response()
                }
            }),
            None => Err(crate::http::grpc::auth_refusal(
                &AuthError::MissingCredentials,
                request.headers(),
            )),
        };
        match verdict {
            Ok(()) => {
                // Take the service that poll_ready readied and leave a clone in its place; see
                // https://docs.rs/tower/latest/tower/trait.Service.html#be-careful-when-cloning-inner-services
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                RecentAuthFuture {
                    state: Verdict::Passed {
                        future: inner.call(request),
                    },
                }
            }
            Err(response) => RecentAuthFuture {
                state: Verdict::Refused {
                    response: Some(response),
                },
            },
        }
    }
}

pin_project! {
    /// The response future of [`RecentAuthService`]: the inner service's future when the
    /// session passes, the refusal when it does not. Unboxed: the guard allocates nothing on
    /// either path.
    pub struct RecentAuthFuture<F, B> {
        #[pin]
        state: Verdict<F, B>,
    }
}

pin_project! {
    #[project = VerdictProj]
    enum Verdict<F, B> {
        // The session met the requirement: the inner service answers.
        Passed {
            #[pin]
            future: F,
        },
        // It did not: the challenge (or `401`), ready at once.
        Refused {
            response: Option<Response<B>>,
        },
    }
}

impl<F, B, E> Future for RecentAuthFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().state.project() {
            VerdictProj::Passed { future } => future.poll(cx),
            VerdictProj::Refused { response } => Poll::Ready(Ok(response
                .take()
                .expect("RecentAuthFuture polled after completion"))),
        }
    }
}

impl StepUpRequired {
    /// The `401` response; see the type's docs.
    pub fn to_response<B: From<String>>(&self) -> Response<B> {
        let body = serde_json::json!({
            "error": "insufficient_user_authentication",
            "error_description": self.to_string(),
            "max_age": self.max_age().as_secs(),
            "factor_types": self.factor_types(),
        });
        // Factor types are `[a-z0-9_]` (checked when recorded): nothing here needs escaping
        // but the guard's own configuration, which is filtered to the same alphabet.
        let description = self
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || " ,:()_".contains(*c))
            .collect::<String>();
        let challenge = format!(
            r#"Bearer error="insufficient_user_authentication", error_description="{description}", max_age="{}""#,
            self.max_age().as_secs()
        );
        let mut refusal = Refusal::new(StatusCode::UNAUTHORIZED).content_type(JSON);
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            refusal = refusal.challenge(value);
        }
        refusal.body(B::from(body.to_string()))
    }
}

impl IntoResponse for StepUpRequired {
    fn into_response(self) -> AxumResponse {
        self.to_response()
    }
}
