//! Why a configuration was refused.

use std::time::Duration;

#[cfg(doc)]
use super::SessionsBuilder;
use super::{MAX_FEED_STALENESS, MAX_LEEWAY, MIN_FEED_STALENESS};

/// Why [`SessionsBuilder::build`] refused a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// No store was given.
    #[error("a session store is required: call .store(..)")]
    MissingStore,
    /// No signing key was given.
    #[error("a signing key is required: call .signing_key(..)")]
    MissingSigningKey,
    /// Two keys share a `kid`.
    #[error("two keys share the key id {0:?}")]
    DuplicateKeyId(String),
    /// The JWT TTL is zero or longer than the session TTL.
    #[error("the JWT TTL must be at least one second and no longer than the session TTL")]
    InvalidJwtTtl,
    /// The session TTL is shorter than a second or beyond the maximum lifetime.
    #[error("the session TTL must be at least one second and within the maximum lifetime")]
    InvalidSessionTtl,
    /// The leeway exceeds [`MAX_LEEWAY`].
    #[error("the leeway must be at most {MAX_LEEWAY:?}")]
    LeewayTooLarge,
    /// An empty issuer or audience.
    #[error("issuer and audience must not be empty")]
    EmptyIssuerOrAudience,
    /// The maximum token length cannot hold a session JWT minted with this configuration
    /// (`min`: the length of the smallest one), or exceeds 65,536 bytes.
    #[error("the maximum token length must be between {min} and 65536 bytes")]
    InvalidMaxTokenLen {
        /// Length of the smallest session JWT this configuration mints.
        min: usize,
    },
    /// A trusted origin is not `scheme://host[:port]` with an `http` or `https` scheme.
    #[error("invalid trusted origin {0:?}: expected scheme://host[:port]")]
    InvalidOrigin(String),
    /// The store is shared by several processes but has no revocation feed, so a session revoked
    /// on one instance would stay usable through its JWT on the others. Give the store a feed,
    /// or accept that cost with
    /// [`SessionsBuilder::tolerate_revoked_jwts_elsewhere`].
    #[error(
        "the store is shared but has no revocation feed: JWTs of sessions revoked elsewhere would \
         stay valid here until they expire; use a store with a feed, or opt in with \
         .tolerate_revoked_jwts_elsewhere()"
    )]
    SharedStoreWithoutFeed,
    /// The store's revocation feed forgets events sooner than a JWT can live.
    #[error("the revocation feed keeps events for {retention:?}; at least {needed:?} is needed")]
    FeedRetentionTooShort {
        /// The feed's retention.
        retention: Duration,
        /// JWT TTL plus leeway plus a second.
        needed: Duration,
    },
    /// The store has a revocation feed, which is read by a background task, but `build` was
    /// called outside a Tokio runtime.
    #[error("build() must be called inside a Tokio runtime when the store has a revocation feed")]
    NoRuntime,
    /// [`SessionsBuilder::feed_outage_grace`] is longer than the JWT lifetime.
    #[error("the feed outage grace ({grace:?}) may not exceed the JWT lifetime ({jwt_ttl:?})")]
    GraceTooLong {
        /// The grace asked for.
        grace: Duration,
        /// The JWT lifetime.
        jwt_ttl: Duration,
    },
    /// [`SessionsBuilder::feed_staleness`] is shorter than [`MIN_FEED_STALENESS`], longer than
    /// [`MAX_FEED_STALENESS`], or longer than the JWT lifetime.
    #[error(
        "the feed staleness bound ({staleness:?}) must be between {MIN_FEED_STALENESS:?} and \
         {MAX_FEED_STALENESS:?}, and no longer than the JWT lifetime ({jwt_ttl:?})"
    )]
    InvalidFeedStaleness {
        /// The bound asked for.
        staleness: Duration,
        /// The JWT lifetime.
        jwt_ttl: Duration,
    },
    /// The [trusted client IP header](SessionsBuilder::trusted_client_ip_header) is not a valid
    /// header name (RFC 9110 `token`).
    #[error("invalid client IP header name {0:?}")]
    InvalidClientIpHeader(String),
    /// A cookie setting is not valid (name, domain or prefix rules).
    #[error("invalid cookie configuration: {0}")]
    InvalidCookie(String),
    /// A [device binding](crate::sessions::DbscConfig) setting is not valid (paths, challenge
    /// lifetime), or the cookies it binds are not `Secure` (DBSC works over HTTPS only).
    #[error("invalid device binding configuration: {0}")]
    InvalidDeviceBinding(String),
}
