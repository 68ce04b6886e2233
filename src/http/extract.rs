//! axum extractors: the current session, typed custom claims, and the session manager.
//!
//! They read what [`SessionLayer`](crate::SessionLayer) put in the request extensions, so they
//! do no authentication work of their own.
//!
//! | extractor | without a session |
//! |---|---|
//! | [`Session`] (a clone) / [`CurrentSession`] (shared) | `401` with `WWW-Authenticate: Bearer` |
//! | `Option<Session>` / `Option<CurrentSession>` | `None` |
//! | [`Claims<T>`] | `401`; claims that do not fit `T`: `403` |
//! | [`Sessions`] | `500` if the layer is missing |

use axum_core::extract::{FromRequestParts, OptionalFromRequestParts};
use http::request::Parts;
use serde::de::DeserializeOwned;

use crate::data::session::Session;
use crate::engine::Sessions;
use crate::http::layer::{CurrentSession, RefusedCredential};

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
    /// No [`SessionLayer`](crate::SessionLayer) runs in front of this handler. `500`.
    #[error("SessionLayer is not installed in front of this route")]
    MissingLayer,
}

fn current(parts: &Parts) -> Option<&CurrentSession> {
    parts.extensions.get::<CurrentSession>()
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
        current(parts).cloned().ok_or_else(|| no_session(parts))
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for CurrentSession {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(current(parts).cloned())
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
        current(parts)
            .map(|s| (*s.0).clone())
            .ok_or_else(|| no_session(parts))
    }
}

impl<S: Sync> OptionalFromRequestParts<S> for Session {
    type Rejection = std::convert::Infallible;
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Option<Self>, Self::Rejection> {
        Ok(current(parts).map(|s| (*s.0).clone()))
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
        let session = current(parts).ok_or_else(|| no_session(parts))?;
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
        parts
            .extensions
            .get::<Sessions>()
            .cloned()
            .ok_or(SessionRejection::MissingLayer)
    }
}
