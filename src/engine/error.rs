//! Errors of the session engine, one type per concern.
//!
//! Each variant documents the HTTP status the layer answers with.

use crate::data::session::{CustomClaimsError, InvalidUserId};
use crate::data::token::TokenError;
use crate::jwt::{JwtError, SignError};
use crate::store::StoreError;

/// Why a request could not be authenticated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthError {
    /// No credential was presented. `401` with `WWW-Authenticate: Bearer`.
    #[error("no session credentials")]
    MissingCredentials,
    /// The session JWT was refused. `401`, `error="invalid_token"`.
    #[error("invalid session JWT: {0}")]
    InvalidJwt(#[from] JwtError),
    /// The session token is not shaped like one. `401`, `error="invalid_token"`.
    #[error("malformed session token")]
    MalformedToken,
    /// The session token carries a tag no configured [token key](crate::token::TokenKey) made, or is
    /// untagged while keys are configured and the migration window is over: it was not minted
    /// here, and the store was not asked. `401`, `error="invalid_token"`.
    #[error("session token not minted here")]
    ForgedToken,
    /// No live session has this token (unknown, expired or revoked). `401`,
    /// `error="invalid_token"`.
    #[error("unknown or expired session")]
    UnknownSession,
    /// The session was revoked. `401`, `error="invalid_token"`.
    #[error("session revoked")]
    Revoked,
    /// Credentials were presented twice and disagree (two cookies, or cookie and header), or a
    /// genuine JWT and an opaque token name different sessions. `400`,
    /// `error="invalid_request"`.
    #[error("conflicting session credentials")]
    ConflictingCredentials,
    /// A credential or header is larger than the configured bound. `400`,
    /// `error="invalid_request"`.
    #[error("session credential too large")]
    CredentialTooLarge,
    /// The session is bound to a device key ([DBSC](crate::dbsc)) and the request carried no
    /// usable JWT: the opaque token alone re-mints nothing for a bound session (a copied cookie
    /// must not). The browser that holds the key gets a fresh JWT cookie from the DBSC refresh
    /// endpoint before it sends such a request. `401`, `error="invalid_token"`.
    #[error("session bound to a device: only the device's DBSC refresh mints a new JWT")]
    DeviceBound,
    /// The store failed; nothing was accepted. `503` with `Retry-After` (fail closed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Minting the replacement JWT failed. `500`.
    #[error(transparent)]
    Signing(#[from] SignError),
}

impl AuthError {
    /// A short stable name for logs and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::MissingCredentials => "missing_credentials",
            AuthError::InvalidJwt(e) => e.reason(),
            AuthError::MalformedToken => "malformed_token",
            AuthError::ForgedToken => "forged_token",
            AuthError::UnknownSession => "unknown_session",
            AuthError::Revoked => "revoked",
            AuthError::ConflictingCredentials => "conflicting_credentials",
            AuthError::DeviceBound => "device_bound",
            AuthError::CredentialTooLarge => "credential_too_large",
            AuthError::Store(_) => "store_error",
            AuthError::Signing(_) => "signing_error",
        }
    }
}

/// Why a session could not be created or changed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// The user id is empty, longer than 256 bytes, or holds control or invisible formatting
    /// characters. `400`.
    #[error(transparent)]
    InvalidUserId(#[from] InvalidUserId),
    /// The custom claims were refused. `400`.
    #[error(transparent)]
    InvalidCustomClaims(#[from] CustomClaimsError),
    /// The session lifetime is zero or above the configured maximum. `400`.
    #[error("invalid session lifetime")]
    InvalidTtl,
    /// The session JWT would be larger than `max` bytes: longer than the configured
    /// `max_token_len`, or its cookie larger than browsers keep (4,096 bytes; they drop larger
    /// ones silently). Make the custom claims smaller. `400`.
    #[error(
        "the session JWT would be {size} bytes (with its cookie attributes); the limit is {max}: use fewer custom claims"
    )]
    JwtTooLarge {
        /// The size found.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// An authentication factor was refused: a malformed type or delivery method, or more
    /// distinct factors than a session records. `400`.
    #[error(transparent)]
    InvalidFactor(#[from] crate::data::session::InvalidFactor),
    /// The user already holds as many live sessions as the
    /// [session limit](crate::store::SessionLimit) allows, and it refuses new ones. `409`.
    #[error("too many active sessions: sign out of another device first")]
    SessionLimitReached,
    /// The session to change is gone (revoked or expired). `401`.
    #[error("the session does not exist or has ended")]
    UnknownSession,
    /// A browser sent the request from another site (login CSRF): `Sec-Fetch-Site:
    /// cross-site`, or an `Origin` that is neither the request's own nor a trusted one. `403`.
    #[error("cross-site request refused")]
    CrossSiteRequest,
    /// The OS random number generator failed. `500`.
    #[error(transparent)]
    Random(#[from] TokenError),
    /// Minting the JWT failed. `500`.
    #[error(transparent)]
    Signing(#[from] SignError),
    /// A [DBSC](crate::dbsc) proof was refused (malformed, wrong key, unknown, used or
    /// expired challenge, …). `400`; the [refresh handler](crate::dbsc::refresh) answers a
    /// challenge problem with `403` and a fresh challenge instead.
    #[error(transparent)]
    DeviceProof(#[from] crate::proof::ProofError),
    /// The store failed; no session was handed out. `503`.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl AuthError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
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
    pub fn to_response<B: Default>(&self) -> http::Response<B> {
        use http::HeaderValue;
        use http::header::{CACHE_CONTROL, RETRY_AFTER, WWW_AUTHENTICATE};
        let mut response = http::Response::new(B::default());
        *response.status_mut() = self.status();
        let headers = response.headers_mut();
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        let challenge = match self {
            AuthError::MissingCredentials => Some("Bearer"),
            AuthError::ConflictingCredentials | AuthError::CredentialTooLarge => {
                Some(r#"Bearer error="invalid_request""#)
            }
            AuthError::Store(_) | AuthError::Signing(_) => None,
            _ => Some(r#"Bearer error="invalid_token""#),
        };
        if let Some(challenge) = challenge {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        if matches!(self, AuthError::Store(_)) {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

impl axum_core::response::IntoResponse for AuthError {
    fn into_response(self) -> axum_core::response::Response {
        self.to_response()
    }
}

impl SessionError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode;
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

impl axum_core::response::IntoResponse for SessionError {
    fn into_response(self) -> axum_core::response::Response {
        let mut response = (self.status(), self.to_string()).into_response();
        if matches!(self, SessionError::Store(_)) {
            response.headers_mut().insert(
                http::header::RETRY_AFTER,
                http::HeaderValue::from_static("1"),
            );
        }
        response
    }
}
