//! [`SessionsBuilder::build`]: from checked settings to a running manager.

use std::time::Duration;

use crate::data::session::{Session, SessionId};
use crate::engine::config::{ConfigError, SessionsBuilder};
use crate::jwt::{JwtCodec, JwtSettings};

/// Largest `max_token_len` accepted.
const MAX_TOKEN_LEN_CAP: usize = 65_536;

impl SessionsBuilder {
    /// Validates the configuration and builds the manager.
    ///
    /// With a store that has a revocation feed, call it inside a Tokio runtime: the feed is
    /// followed by a background task.
    ///
    /// # Errors
    ///
    /// A [`ConfigError`] naming the setting at fault: a missing store or key, inconsistent
    /// lifetimes, a `max_token_len` too small for the JWTs this configuration mints, a feed that
    /// forgets sooner than a JWT lives, or a shared store without a feed (see
    /// [`tolerate_revoked_jwts_elsewhere`](Self::tolerate_revoked_jwts_elsewhere)).
    pub fn build(self) -> Result<super::Sessions, ConfigError> {
        let store = self.store.clone().ok_or(ConfigError::MissingStore)?;
        let store: std::sync::Arc<dyn crate::engine::dyn_store::DynStore> = match self.breaker {
            Some(config) => std::sync::Arc::new(crate::engine::breaker::Guarded {
                inner: store,
                breaker: std::sync::Arc::new(crate::engine::breaker::Breaker::new(
                    config,
                    self.clock.clone(),
                )),
            }),
            None => store,
        };
        let shared = store.is_shared();
        let settings = self.settings(shared)?;
        let feed = store.revocation_feed();
        if shared && feed.is_none() && !self.tolerate_feedless {
            return Err(ConfigError::SharedStoreWithoutFeed);
        }
        let signing_key = self.signing_key.ok_or(ConfigError::MissingSigningKey)?;
        let codec = JwtCodec::new(
            signing_key,
            self.verification_keys,
            JwtSettings {
                issuer: self.issuer,
                audience: self.audience,
                ttl_secs: settings.jwt_ttl.as_secs() as i64,
                leeway_secs: self.leeway.as_secs() as i64,
                max_len: self.max_token_len,
            },
        )
        .map_err(|duplicate| ConfigError::DuplicateKeyId(duplicate.0))?;
        // The smallest JWT this configuration mints: a one-letter user without custom claims,
        // its times with all nine fractional digits (the longest they print), so that the bound
        // does not depend on the instant of the build.
        let now = self.clock.now();
        let now = now.replace_nanosecond(999_999_999).unwrap_or(now);
        let probe = SessionId::generate()
            .ok()
            .map(|session_id| Session::new(session_id, "u", now, now + settings.session_ttl))
            .and_then(|session| codec.mint(&session, now).ok())
            .map_or(0, |jwt| jwt.expose().len());
        if !(probe.max(1)..=MAX_TOKEN_LEN_CAP).contains(&self.max_token_len) {
            return Err(ConfigError::InvalidMaxTokenLen { min: probe });
        }
        let retention = settings.jwt_ttl + settings.leeway + Duration::from_secs(1);
        if let Some(feed) = &feed {
            if feed.retention() < retention {
                return Err(ConfigError::FeedRetentionTooShort {
                    retention: feed.retention(),
                    needed: retention,
                });
            }
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(ConfigError::NoRuntime);
            }
        }
        Ok(super::Sessions::start(
            store,
            codec,
            settings,
            self.clock,
            feed,
            retention,
            self.events,
        ))
    }
}
