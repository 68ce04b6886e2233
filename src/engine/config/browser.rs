//! The builder's settings for requests and browsers: cookies, the client's address, trusted
//! origins, what a login does to the session it replaces, device binding.

use super::{CookieConfig, SessionsBuilder};

/// Requests and browsers.
impl SessionsBuilder {
    /// Cookie names and attributes (see [`CookieConfig`]).
    pub fn cookies(mut self, cookies: CookieConfig) -> Self {
        self.cookies = cookies;
        self
    }

    /// Read the client IP recorded at login from this header (for example `x-forwarded-for`,
    /// whose rightmost entry is used, or `x-real-ip`) instead of the peer address.
    ///
    /// # ⚠️ Warning: spoofing
    ///
    /// Set this only behind a proxy that overwrites the header; otherwise clients choose the IP
    /// address their session shows.
    ///
    /// The name is matched case-insensitively; one that is not a valid header name fails
    /// [`build`](Self::build) with
    /// [`ConfigError::InvalidClientIpHeader`](crate::ConfigError::InvalidClientIpHeader).
    pub fn trusted_client_ip_header(mut self, header: impl AsRef<str>) -> Self {
        self.client_ip_header = Some(header.as_ref().to_owned());
        self
    }

    /// Origins allowed to send state-changing requests (login, logout, revoke) besides the
    /// request's own, as `scheme://host[:port]` (for example a front end on another host, or the
    /// public origin when a proxy rewrites `Host`). When any is set, a request whose `Origin` is
    /// neither listed nor the request's own is refused with `403`.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .trusted_origins(["https://app.example", "https://admin.app.example:8443"])
    ///     .build()
    ///     .unwrap();
    /// # let _ = sessions; });
    /// ```
    pub fn trusted_origins<I, S>(mut self, origins: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.trusted_origins
            .extend(origins.into_iter().map(Into::into));
        self
    }

    /// Keeps the session a login replaces alive. By default
    /// [`Sessions::login`](crate::Sessions::login) (and so [`login::login`](crate::login::login))
    /// revokes the session that the request's
    /// cookies authenticate (the browser is about to get the new session's cookies, and the old
    /// session would otherwise stay usable by its token, and listed among the user's devices,
    /// for its whole lifetime, with no browser holding it).
    ///
    /// Call this when your application keeps several accounts per browser and switches between
    /// them itself (keeping each account's credentials apart from the session cookies): the
    /// older sessions then live on until they are signed out or expire.
    ///
    /// ```
    /// # use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     # .store(MemoryStore::new()).signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .keep_sessions_on_login()
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn keep_sessions_on_login(mut self) -> Self {
        self.keep_sessions_on_login = true;
        self
    }

    /// Offers browsers [device-bound sessions](crate::dbsc) (DBSC): [`login::login`](crate::login::login)
    /// adds a `Secure-Session-Registration` offer, and mount
    /// [`dbsc::registration`](crate::dbsc::registration) and
    /// [`dbsc::refresh`](crate::dbsc::refresh) at the configured paths. A session bound to a
    /// device key no longer re-mints JWTs from its opaque token alone. Needs `Secure` cookies.
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::sessions::DbscConfig;
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .device_binding(DbscConfig::new())
    ///     .build()
    ///     .unwrap();
    /// assert!(sessions.device_binding_offered());
    /// # });
    /// ```
    pub fn device_binding(mut self, config: crate::engine::DbscConfig) -> Self {
        self.device_binding = Some(config);
        self
    }
}
