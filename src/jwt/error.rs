use super::Algorithm;

/// Why a session JWT was refused. Every variant answers `401 Unauthorized` with
/// `WWW-Authenticate: Bearer error="invalid_token"` when it reaches the HTTP layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JwtError {
    /// Longer than the configured maximum token length.
    #[error("session JWT is {len} bytes; the limit is {max}")]
    TooLong {
        /// The presented length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not three base64url segments, non-canonical base64url, or a segment that is not a JSON
    /// object.
    #[error("malformed session JWT")]
    Malformed,
    /// The header names an algorithm other than the one its key is pinned to (including `none`).
    #[error("algorithm {found:?} is not the key's algorithm")]
    AlgorithmMismatch {
        /// The `alg` the header named (cut to 16 characters).
        found: String,
        /// The algorithm of the key the header's `kid` named, if any.
        expected: Option<Algorithm>,
    },
    /// The header has no `kid`, or one that names no configured key.
    #[error("unknown key id")]
    UnknownKeyId,
    /// The header's `typ` is missing or not `JWT`.
    #[error("header `typ` is not JWT")]
    InvalidType,
    /// The header carries a `crit` parameter; no extension is understood here.
    #[error("header carries `crit`")]
    CriticalHeader,
    /// The header is well-formed but not byte for byte the header this key mints (extra
    /// parameters such as `jwk`, `jku`, `x5u`, `x5c`, `cty`, `b64`, or different spelling).
    #[error("header is not the one this key mints")]
    UnexpectedHeader,
    /// The signature does not verify under the key the header names.
    #[error("invalid signature")]
    InvalidSignature,
    /// A required claim is absent.
    #[error("missing claim `{0}`")]
    MissingClaim(&'static str),
    /// A claim has the wrong JSON type or an out-of-range value.
    #[error("invalid claim `{0}`")]
    InvalidClaim(&'static str),
    /// A claim appears twice in the payload.
    #[error("duplicated claim `{0}`")]
    DuplicateClaim(String),
    /// `iss` is not the configured issuer.
    #[error("wrong issuer")]
    InvalidIssuer,
    /// `aud` is not the configured audience.
    #[error("wrong audience")]
    InvalidAudience,
    /// `exp` (plus leeway) has passed.
    #[error("session JWT expired")]
    Expired,
    /// `nbf` is later than now plus leeway.
    #[error("session JWT not yet valid")]
    NotYetValid,
    /// `iat` is later than now plus leeway.
    #[error("session JWT issued in the future")]
    IssuedInFuture,
    /// `exp - iat` is longer than the configured JWT lifetime.
    #[error("session JWT lifetime exceeds the configured maximum")]
    LifetimeTooLong,
}

impl JwtError {
    /// A short stable name for logs and metrics (`"expired"`, `"invalid_signature"`, …).
    pub fn reason(&self) -> &'static str {
        match self {
            JwtError::TooLong { .. } => "too_long",
            JwtError::Malformed => "malformed",
            JwtError::AlgorithmMismatch { .. } => "algorithm_mismatch",
            JwtError::UnknownKeyId => "unknown_kid",
            JwtError::InvalidType => "invalid_typ",
            JwtError::CriticalHeader => "crit_header",
            JwtError::UnexpectedHeader => "unexpected_header",
            JwtError::InvalidSignature => "invalid_signature",
            JwtError::MissingClaim(_) => "missing_claim",
            JwtError::InvalidClaim(_) => "invalid_claim",
            JwtError::DuplicateClaim(_) => "duplicate_claim",
            JwtError::InvalidIssuer => "invalid_issuer",
            JwtError::InvalidAudience => "invalid_audience",
            JwtError::Expired => "expired",
            JwtError::NotYetValid => "not_yet_valid",
            JwtError::IssuedInFuture => "issued_in_future",
            JwtError::LifetimeTooLong => "lifetime_too_long",
        }
    }
}
