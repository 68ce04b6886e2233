//! Where errors become responses: the one place that builds a refusal (status,
//! `WWW-Authenticate`, `Retry-After`, `Cache-Control: no-store`), for the layer, the
//! extractors, the step-up guard, the logout and DBSC endpoints, and as gRPC statuses for gRPC
//! calls. The engine's errors say which status they mean in their docs; the answers are built
//! here.

use axum_core::response::{IntoResponse, Response as AxumResponse};
use http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

use crate::engine::error::{AuthError, SessionError};

/// A refusal (or an empty answer) under construction: a status and the headers that go with
/// it. `Cache-Control: no-store` unless [`cacheable`](Self::cacheable).
#[derive(Debug)]
#[must_use]
pub(crate) struct Refusal {
    status: StatusCode,
    challenge: Option<HeaderValue>,
    retry_after: bool,
    no_store: bool,
    content_type: Option<&'static str>,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode) -> Self {
        Self {
            status,
            challenge: None,
            retry_after: false,
            no_store: true,
            content_type: None,
        }
    }

    /// With `WWW-Authenticate: challenge`.
    pub(crate) fn challenge(mut self, challenge: HeaderValue) -> Self {
        self.challenge = Some(challenge);
        self
    }

    /// With `Retry-After: 1` when `retry` (a store failure: the client may retry).
    pub(crate) fn retry_after(mut self, retry: bool) -> Self {
        self.retry_after = retry;
        self
    }

    /// Without `Cache-Control: no-store`.
    pub(crate) fn cacheable(mut self) -> Self {
        self.no_store = false;
        self
    }

    /// With this `Content-Type` (for a body).
    pub(crate) fn content_type(mut self, content_type: &'static str) -> Self {
        self.content_type = Some(content_type);
        self
    }

    /// The response, with `body`.
    pub(crate) fn body<B>(self, body: B) -> Response<B> {
        let mut response = Response::new(body);
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        if self.no_store {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        if let Some(content_type) = self.content_type {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        }
        if let Some(challenge) = self.challenge {
            headers.insert(WWW_AUTHENTICATE, challenge);
        }
        if self.retry_after {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The response, with an empty body.
    pub(crate) fn empty<B: Default>(self) -> Response<B> {
        self.body(B::default())
    }
}

impl AuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            AuthError::ConflictingCredentials | AuthError::CredentialTooLarge => {
                StatusCode::BAD_REQUEST
            }
            AuthError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The response the layer sends by default: the status, an RFC 6750 `WWW-Authenticate`
    /// challenge for 400/401, `Retry-After` for 503, `Cache-Control: no-store`, empty body.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_session_jwt::AuthError;
    ///
    /// let response = AuthError::UnknownSession.to_response::<String>();
    /// assert_eq!(response.status(), 401);
    /// assert_eq!(response.headers()["www-authenticate"], r#"Bearer error="invalid_token""#);
    /// ```
    pub fn to_response<B: Default>(&self) -> Response<B> {
        let challenge = match self {
            AuthError::MissingCredentials => Some("Bearer"),
            AuthError::ConflictingCredentials | AuthError::CredentialTooLarge => {
                Some(r#"Bearer error="invalid_request""#)
            }
            AuthError::Store(_) | AuthError::Signing(_) => None,
            _ => Some(r#"Bearer error="invalid_token""#),
        };
        let mut refusal =
            Refusal::new(self.status()).retry_after(matches!(self, AuthError::Store(_)));
        if let Some(challenge) = challenge {
            refusal = refusal.challenge(HeaderValue::from_static(challenge));
        }
        refusal.empty()
    }
}

impl IntoResponse for AuthError {
    fn into_response(self) -> AxumResponse {
        self.to_response()
    }
}

impl SessionError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            SessionError::InvalidUserId(_)
            | SessionError::InvalidCustomClaims(_)
            | SessionError::InvalidTtl
            | SessionError::JwtTooLarge { .. }
            | SessionError::InvalidFactor(_)
            | SessionError::DeviceProof(_) => StatusCode::BAD_REQUEST,
            SessionError::SessionLimitReached => StatusCode::CONFLICT,
            SessionError::UnknownSession => StatusCode::UNAUTHORIZED,
            SessionError::CrossSiteRequest => StatusCode::FORBIDDEN,
            SessionError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
            SessionError::Random(_) | SessionError::Signing(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The status and the message as text; `Retry-After` for a store failure.
impl IntoResponse for SessionError {
    fn into_response(self) -> AxumResponse {
        Refusal::new(self.status())
            .cacheable()
            .content_type(TEXT)
            .retry_after(matches!(self, SessionError::Store(_)))
            .body(self.to_string().into())
    }
}

/// A [`SessionError`] answered with an empty body: its status, `Retry-After` for a store
/// failure, `Cache-Control: no-store` (a store failure answers as [`AuthError::Store`]).
pub(crate) fn session_refusal<B: Default>(error: &SessionError) -> Response<B> {
    Refusal::new(error.status())
        .retry_after(matches!(error, SessionError::Store(_)))
        .empty()
}

pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
pub(crate) const JSON: &str = "application/json";

/// A JSON refusal `{"error": …, "error_description": …}` (the DBSC endpoints'), with
/// `Retry-After` when `retry`.
pub(crate) fn json_refusal<B: From<String>>(
    status: StatusCode,
    error: &str,
    description: &str,
    retry: bool,
) -> Response<B> {
    let body = serde_json::json!({"error": error, "error_description": description}).to_string();
    Refusal::new(status)
        .content_type(JSON)
        .retry_after(retry)
        .body(B::from(body))
}
