//! axum extractors: the current session, typed custom claims, and the session manager.
//!
//! They read what [`SessionLayer`](crate::SessionLayer) put in the request extensions, so they
//! do no authentication work of their own.
//!
//! | extractor | without a session | without the layer |
//! |---|---|---|
//! | [`Session`] (a clone) / [`CurrentSession`] (shared) | `401` with `WWW-Authenticate: Bearer` | `500` |
//! | `Option<Session>` / `Option<CurrentSession>` | `None` | `500` |
//! | [`Claims<T>`] | `401`; claims that do not fit `T`: `403` | `500` |
//! | [`Sessions`] | (always there) | `500` |
//!
//! "Without the layer" is a configuration mistake, not an anonymous request: a route that no
//! `SessionLayer` runs in front of (in axum, one added after `.layer(..)`, or a router with no
//! layer at all) would otherwise take a signed-in user for a stranger. The extractors answer it
//! with [`SessionRejection::MissingLayer`] (`500`, naming the missing layer) and log an error.

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use axum_core::response::{IntoResponse, Response as AxumResponse};
use http::request::Parts;
use http::{HeaderValue, StatusCode};
use serde::de::DeserializeOwned;

use crate::data::session::Session;
use crate::engine::Sessions;
use crate::engine::error::AuthError;
use crate::http::cookies::SessionCookies;
use crate::http::layer::{CurrentSession, RefusedCredential};
use crate::http::refusal::{Refusal, TEXT};

/// Why an extractor found no session.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The request has no authenticated session. `401` with `WWW-Authenticate: Bearer`.
    #[error("no session")]
    NoSession,
    /// The request presented a credential that was refused (optional mode let it through
    /// without a session). `401` with `WWW-Authenticate: Bearer error="invalid_token"`.
    #[error("session credential refused: {0}")]
    Refused(&'static str),
    /// The session's custom claims do not deserialize into the requested type. `403` with
    /// `WWW-Authenticate: Bearer error="insufficient_scope"`.
    #[error("session claims do not match: {0}")]
    Claims(String),
    /// No [`SessionLayer`](crate::SessionLayer) runs in front of this handler (in axum, a
    /// route added after `.layer(..)`, say): a configuration mistake, logged as an error.
    /// `500` with a text body naming the missing layer, for every extractor of this module,
    /// their `Option` forms included.
    #[error("SessionLayer is not installed in front of this route")]
    MissingLayer,
}

/// The body of the `500` for a route without the layer: what is wrong and how to fix it.
pub(crate) const MISSING_LAYER: &str = "SessionLayer is not installed in front of this route: in axum, \
    `.layer(SessionLayer::new(..))` applies to the routes added before it\n";

/// The request's session; `Ok(None)` for a request the layer let through without one, and
/// [`SessionRejection::MissingLayer`] when no layer ran.
fn current(parts: &Parts) -> Result<Option<&CurrentSession>, SessionRejection> {
    match parts.extensions.get::<CurrentSession>() {
        Some(current) => Ok(Some(current)),
        None => layer_ran(parts).map(|()| None),
    }
}

/// The layer leaves its [`Sessions`] in the extensions of every request it lets through (in the
/// [`CurrentSession`], or on its own without a session): their absence means it did not run.
fn layer_ran(parts: &Parts) -> Result<(), SessionRejection> {
    layer_sessions(parts).map(|_| ())
}

fn layer_sessions(parts: &Parts) -> Result<&Sessions, SessionRejection> {
    crate::http::layer::sessions(&parts.extensions).ok_or_else(|| missing_layer(parts))
}

/// [`SessionRejection::MissingLayer`], logged: the route is misconfigured.
fn missing_layer(parts: &Parts) -> SessionRejection {
    tracing::error!(
        path = parts.uri.path(),
        "SessionLayer is not installed in front of this route; answering 500"
    );
    SessionRejection::MissingLayer
}

/// The request's session, or why there is none.
fn required(parts: &Parts) -> Result<&CurrentSession, SessionRejection> {
    current(parts)?.ok_or_else(|| no_session(parts))
}

fn no_session(parts: &Parts) -> SessionRejection {
    match parts.extensions.get::<RefusedCredential>() {
        Some(refused) => SessionRejection::Refused(refused.reason),
        None => SessionRejection::NoSession,
    }
}

impl<S: Sync> FromRequestParts<S> for CurrentSession {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        required(parts).cloned()
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for CurrentSession {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(current(parts)?.cloned())
    }
}

/// The session of the request (a clone; take [`CurrentSession`] to share it instead).
///
/// # Example
///
/// ```
/// use axum::Json;
/// use tower_session_jwt::Session;
/// use tower_session_jwt::session::ClientSession;
///
/// // The client's view: never the pending device-binding challenge.
/// async fn me(session: Session) -> Json<ClientSession> {
///     Json(session.into())
/// }
///
/// async fn greeting(session: Option<Session>) -> String {
///     match session {
///         Some(s) => format!("hello {}", s.user_id),
///         None => "hello stranger".into(),
///     }
/// }
/// ```
impl<S: Sync> FromRequestParts<S> for Session {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        required(parts).map(|s| (*s.0).clone())
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(current(parts)?.map(|s| (*s.0).clone()))
    }
}

/// The session's custom claims, deserialized into `T`.
///
/// # Example
///
/// ```
/// use tower_session_jwt::extract::Claims;
///
/// #[derive(serde::Deserialize)]
/// struct Role { role: String }
///
/// async fn admin_only(Claims(claims): Claims<Role>) -> Result<&'static str, http::StatusCode> {
///     if claims.role == "admin" { Ok("welcome") } else { Err(http::StatusCode::FORBIDDEN) }
/// }
/// ```
#[derive(Debug, Clone)]
pub struct Claims<T>(pub T);

impl<S: Sync, T: DeserializeOwned> FromRequestParts<S> for Claims<T> {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let session = required(parts)?;
        let value = serde_json::Value::Object(session.custom_claims.clone());
        serde_json::from_value(value)
            .map(Claims)
            .map_err(|e| SessionRejection::Claims(e.to_string()))
    }
}

/// The session manager, for handlers that create, list or revoke sessions.
impl<S: Sync> FromRequestParts<S> for Sessions {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        layer_sessions(parts).cloned()
    }
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> AxumResponse {
        match self {
            SessionRejection::NoSession => AuthError::MissingCredentials.into_response(),
            // Conflicting or oversized credentials are a malformed request, not a bad token.
            SessionRejection::Refused("conflicting_credentials") => {
                AuthError::ConflictingCredentials.into_response()
            }
            SessionRejection::Refused("credential_too_large") => {
                AuthError::CredentialTooLarge.into_response()
            }
            SessionRejection::Refused(_) => AuthError::UnknownSession.into_response(),
            SessionRejection::Claims(_) => Refusal::new(StatusCode::FORBIDDEN)
                .cacheable()
                .challenge(HeaderValue::from_static(
                    r#"Bearer error="insufficient_scope""#,
                ))
                .empty(),
            SessionRejection::MissingLayer => Refusal::new(StatusCode::INTERNAL_SERVER_ERROR)
                .cacheable()
                .content_type(TEXT)
                .body(MISSING_LAYER.into()),
        }
    }
}

impl<S: Sync> axum_core::extract::FromRequestParts<S> for SessionCookies {
    type Rejection = SessionRejection;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let sessions = layer_sessions(parts)?;
        Ok(Self::new(sessions, &parts.headers))
    }
}
