//! Device binding (DBSC) settings.

use std::time::Duration;

use super::config::ConfigError;
use crate::proof::DeviceAlgorithm;

/// Longest [challenge lifetime](DbscConfig::challenge_ttl) accepted: one day.
pub const MAX_CHALLENGE_TTL: Duration = Duration::from_secs(86_400);

/// Device binding settings: where the browser registers and refreshes, how long a challenge
/// lives, which algorithms are offered and which paths the bound cookie is not needed for.
///
/// Keep the [JWT lifetime](crate::SessionsBuilder::jwt_ttl) well above two minutes (the default
/// five is fine): Chromium refreshes a bound cookie proactively from two minutes before it
/// expires, so with a shorter JWT nearly every request waits for a refresh, and Chromium's
/// refresh quota soon stops them.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_session_jwt::sessions::DbscConfig;
///
/// let config = DbscConfig::new()
///     .registration_path("/auth/dbsc/start")
///     .refresh_path("/auth/dbsc/refresh")
///     .challenge_ttl(Duration::from_secs(600))
///     .exclude_path("/static");
/// # let _ = config;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct DbscConfig {
    pub(crate) registration_path: String,
    pub(crate) refresh_path: String,
    pub(crate) challenge_ttl: Duration,
    pub(crate) algorithms: Vec<DeviceAlgorithm>,
    pub(crate) excluded_paths: Vec<String>,
}

impl Default for DbscConfig {
    fn default() -> Self {
        Self {
            registration_path: "/dbsc/register".into(),
            refresh_path: "/dbsc/refresh".into(),
            challenge_ttl: Duration::from_secs(600),
            algorithms: vec![DeviceAlgorithm::ES256, DeviceAlgorithm::RS256],
            excluded_paths: Vec::new(),
        }
    }
}

impl DbscConfig {
    /// Registration at `/dbsc/register`, refresh at `/dbsc/refresh`, challenges valid for 10
    /// minutes, ES256 and RS256 offered, the bound cookie required on every path.
    pub fn new() -> Self {
        Self::default()
    }

    /// Where the browser posts its registration (default `/dbsc/register`; same site, so a
    /// path). Mount [`registration`](crate::dbsc::registration) there.
    pub fn registration_path(mut self, path: impl Into<String>) -> Self {
        self.registration_path = path.into();
        self
    }

    /// Where the browser asks for a fresh JWT cookie (default `/dbsc/refresh`). Mount
    /// [`refresh`](crate::dbsc::refresh) there.
    pub fn refresh_path(mut self, path: impl Into<String>) -> Self {
        self.refresh_path = path.into();
        self
    }

    /// How long a challenge stays usable (default 10 minutes, one second to one day). The
    /// challenge handed out with each refresh is used at the next one, a little under a JWT
    /// lifetime later: keep this above the JWT TTL to spare the browser a round trip.
    pub fn challenge_ttl(mut self, ttl: Duration) -> Self {
        self.challenge_ttl = ttl;
        self
    }

    /// Offer RS256 besides ES256 (default on). ES256 is always offered: Chromium's software
    /// keys sign nothing else.
    pub fn rs256(mut self, on: bool) -> Self {
        self.algorithms.retain(|a| *a == DeviceAlgorithm::ES256);
        if on {
            self.algorithms.push(DeviceAlgorithm::RS256);
        }
        self
    }

    /// A path prefix whose requests the browser sends without waiting for a fresh bound cookie
    /// (static assets, say). May be called several times.
    ///
    /// Exclude the login route: a browser refreshes a bound cookie close to expiry beside any
    /// request in scope, and a refresh of the older session beside a login post can land that
    /// session's JWT over the new login's cookies (the next request then carries credentials of
    /// two sessions and is refused as conflicting). Outside the scope, the older binding
    /// refreshes only after the login answered, and is refused then.
    pub fn exclude_path(mut self, path: impl Into<String>) -> Self {
        self.excluded_paths.push(path.into());
        self
    }

    /// The algorithms offered.
    pub fn algorithms(&self) -> &[DeviceAlgorithm] {
        &self.algorithms
    }

    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        let path_ok = |p: &str| {
            p.starts_with('/')
                && p.len() <= 256
                && p.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\\' | b';' | b','))
        };
        if !path_ok(&self.registration_path) || !path_ok(&self.refresh_path) {
            return Err(ConfigError::InvalidDeviceBinding(
                "registration and refresh paths must be absolute paths without quotes, \
                 semicolons or commas"
                    .into(),
            ));
        }
        if self.registration_path == self.refresh_path {
            return Err(ConfigError::InvalidDeviceBinding(
                "the registration and refresh paths must differ".into(),
            ));
        }
        if !self.excluded_paths.iter().all(|p| path_ok(p)) {
            return Err(ConfigError::InvalidDeviceBinding(
                "excluded paths must be absolute paths".into(),
            ));
        }
        if self.challenge_ttl < Duration::from_secs(1) || self.challenge_ttl > MAX_CHALLENGE_TTL {
            return Err(ConfigError::InvalidDeviceBinding(
                "the challenge lifetime must be between one second and one day".into(),
            ));
        }
        Ok(())
    }
}
