//! The session cookies' names and attributes.

use super::ConfigError;

/// Names and attributes of the two session cookies.
///
/// Defaults: `session_token` and `session_jwt` (Stytch's names), `HttpOnly`, `Secure`,
/// `SameSite=Lax`, `Path=/`, no `Domain`, `Max-Age` = the session's remaining lifetime.
///
/// # Example
///
/// ```
/// use tower_session_jwt::sessions::CookieConfig;
///
/// let cookies = CookieConfig::default().host_prefix(true);
/// assert_eq!(cookies.token_name(), "__Host-session_token");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub struct CookieConfig {
    token_name: String,
    jwt_name: String,
    domain: Option<String>,
    secure: bool,
    host_prefix: bool,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            token_name: "session_token".into(),
            jwt_name: "session_jwt".into(),
            domain: None,
            secure: true,
            host_prefix: false,
        }
    }
}

impl CookieConfig {
    /// Cookie names for the opaque token and the JWT (before any `__Host-` prefix).
    pub fn names(mut self, token: impl Into<String>, jwt: impl Into<String>) -> Self {
        self.token_name = token.into();
        self.jwt_name = jwt.into();
        self
    }

    /// A `Domain` attribute, to share the cookies with subdomains.
    ///
    /// # ⚠️ Warning: wider exposure
    ///
    /// Every host under the domain receives the session cookies, and any of them can set
    /// cookies that shadow yours. Leave it unset unless subdomains must share the session.
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether cookies carry `Secure` (default `true`).
    ///
    /// # ⚠️ Warning: credentials in clear text
    ///
    /// Without `Secure`, browsers send the session cookies over plain HTTP. Turn it off only for
    /// local development on `http://localhost`.
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Prefix both names with `__Host-` (requires `Secure`, no `Domain`, `Path=/`): browsers
    /// then refuse such cookies from subdomains or insecure origins, and cookies without the
    /// prefix are ignored.
    pub fn host_prefix(mut self, on: bool) -> Self {
        self.host_prefix = on;
        self
    }

    /// The opaque token cookie's full name.
    pub fn token_name(&self) -> String {
        self.full(&self.token_name)
    }

    /// The JWT cookie's full name.
    pub fn jwt_name(&self) -> String {
        self.full(&self.jwt_name)
    }

    fn full(&self, name: &str) -> String {
        if self.host_prefix {
            format!("__Host-{name}")
        } else {
            name.to_owned()
        }
    }

    pub(crate) fn cookie_domain(&self) -> Option<&str> {
        self.domain.as_deref()
    }

    pub(crate) fn is_secure(&self) -> bool {
        self.secure
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let token_ok = |n: &str| {
            !n.is_empty()
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        };
        if !token_ok(&self.token_name) || !token_ok(&self.jwt_name) {
            return Err(ConfigError::InvalidCookie(
                "names must be [A-Za-z0-9._-]+".into(),
            ));
        }
        if self.token_name == self.jwt_name {
            return Err(ConfigError::InvalidCookie(
                "the two names must differ".into(),
            ));
        }
        if self.host_prefix && (!self.secure || self.domain.is_some()) {
            return Err(ConfigError::InvalidCookie(
                "__Host- cookies must be Secure and have no Domain".into(),
            ));
        }
        if let Some(domain) = &self.domain
            && (domain.is_empty()
                || !domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-')))
        {
            return Err(ConfigError::InvalidCookie("invalid domain".into()));
        }
        Ok(())
    }
}
