//! The metrics the engine records; the series are listed in [`crate::metrics`].

use std::time::Duration;

use metrics::{Counter, Gauge, counter, gauge, histogram};

use crate::engine::AuthPath;
use crate::store::RevocationEvent;

pub(crate) const REQUESTS: &str = "tower_session_jwt_requests_total";
pub(crate) const FEED_TRUSTED: &str = "tower_session_jwt_feed_trusted";
pub(crate) const FEED_LAG: &str = "tower_session_jwt_feed_lag_seconds";
pub(crate) const FEED_EVENTS: &str = "tower_session_jwt_feed_events_total";
pub(crate) const STORE_DURATION: &str = "tower_session_jwt_store_duration_seconds";
pub(crate) const CIRCUIT_OPEN: &str = "tower_session_jwt_store_circuit_open";
pub(crate) const CACHE_HITS: &str = "tower_session_jwt_cache_hits_total";
pub(crate) const CACHE_MISSES: &str = "tower_session_jwt_cache_misses_total";
pub(crate) const REVOCATIONS: &str = "tower_session_jwt_revocations_total";
pub(crate) const DBSC: &str = "tower_session_jwt_dbsc_total";
pub(crate) const DBSC_DURATION: &str = "tower_session_jwt_dbsc_duration_seconds";

/// The handles of the series every request touches, registered when
/// [`Sessions`](crate::Sessions) is built (no-ops without a recorder then).
pub(crate) struct RequestMetrics {
    authenticated: [Counter; 3],
    jwt_cache: (Counter, Counter),
    token_cache: (Counter, Counter),
}

impl RequestMetrics {
    pub(crate) fn register() -> Self {
        let ok =
            |path: &'static str| counter!(REQUESTS, "path" => path, "outcome" => "authenticated");
        let cache = |name: &'static str| {
            (
                counter!(CACHE_HITS, "cache" => name),
                counter!(CACHE_MISSES, "cache" => name),
            )
        };
        Self {
            authenticated: [ok("jwt"), ok("jwt_confirmed"), ok("store")],
            jwt_cache: cache("jwt"),
            token_cache: cache("token"),
        }
    }

    /// A request authenticated on `path`.
    #[inline]
    pub(crate) fn authenticated(&self, path: AuthPath) {
        let index = match path {
            AuthPath::Jwt => 0,
            AuthPath::JwtConfirmed => 1,
            AuthPath::Store => 2,
        };
        self.authenticated[index].increment(1);
    }

    /// An authentication's outcome; `refused_at` is the path a refusal is counted on.
    pub(crate) fn request(
        &self,
        outcome: &Result<crate::engine::Authenticated, crate::engine::AuthError>,
        refused_at: &'static str,
    ) {
        match outcome {
            Ok(authenticated) => self.authenticated(authenticated.path),
            Err(error) => refused(refused_at, error.reason()),
        }
    }

    /// A cache lookup.
    #[inline]
    pub(crate) fn cache(&self, which: Cache, hit: bool) {
        let (hits, misses) = match which {
            Cache::Jwt => &self.jwt_cache,
            Cache::Token => &self.token_cache,
        };
        if hit { hits } else { misses }.increment(1);
    }
}

/// A request refused at `path` (`none` when refused without a store call, `store` after one)
/// for `reason`.
pub(crate) fn refused(path: &'static str, reason: &'static str) {
    counter!(REQUESTS, "path" => path, "outcome" => reason).increment(1);
}

/// The caches [`RequestMetrics::cache`] counts.
#[derive(Clone, Copy)]
pub(crate) enum Cache {
    Jwt,
    Token,
}

/// The feed's gauges, registered when [`Sessions`](crate::Sessions) is built.
pub(crate) struct FeedGauges {
    trusted: Gauge,
    lag: Gauge,
}

impl FeedGauges {
    pub(crate) fn register() -> Self {
        Self {
            trusted: gauge!(FEED_TRUSTED),
            lag: gauge!(FEED_LAG),
        }
    }

    /// The feed's state: trusted or not, and the age of what is known.
    pub(crate) fn set(&self, trusted: bool, lag: Duration) {
        self.trusted.set(if trusted { 1.0 } else { 0.0 });
        self.lag.set(lag.as_secs_f64());
    }
}

/// A revocation event applied from the feed.
pub(crate) fn feed_event(event: &RevocationEvent) {
    counter!(FEED_EVENTS, "kind" => event_kind(event)).increment(1);
}

fn event_kind(event: &RevocationEvent) -> &'static str {
    match event {
        RevocationEvent::Session { ended: true, .. } => "session_revoked",
        RevocationEvent::Session { .. } => "jwts_refused",
        RevocationEvent::User { .. } => "user_revoked",
    }
}

/// A revocation made on this instance.
pub(crate) fn revocation(scope: &'static str) {
    counter!(REVOCATIONS, "scope" => scope).increment(1);
}

/// Whether the store's circuit breaker is open.
pub(crate) fn circuit(open: bool) {
    gauge!(CIRCUIT_OPEN).set(if open { 1.0 } else { 0.0 });
}

/// How long a store call took.
pub(crate) fn store_call(op: &'static str, took: Duration) {
    histogram!(STORE_DURATION, "op" => op).record(took.as_secs_f64());
}

/// A device binding endpoint answered with HTTP status `status` after `took`.
pub(crate) fn dbsc(endpoint: &'static str, status: u16, took: Duration) {
    let outcome = match status {
        200..=299 => "ok",
        403 => "challenge",
        500.. => "error",
        _ => "refused",
    };
    counter!(DBSC, "endpoint" => endpoint, "outcome" => outcome).increment(1);
    histogram!(DBSC_DURATION, "endpoint" => endpoint).record(took.as_secs_f64());
}
