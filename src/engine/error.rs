//! Errors of the session engine, one type per concern.
//!
//! Each variant documents the HTTP status the layer answers with; the answers themselves are
//! built at the HTTP edge (`crate::http::refusal`).

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
