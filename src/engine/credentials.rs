//! The session credentials a request presented, as plain values: what the HTTP edge reads from
//! headers and hands to [`Sessions::authenticate`](super::Sessions::authenticate).

/// Where a presented credential came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialSource {
    /// A session cookie: ambient, sent by the browser on its own. Refreshed credentials go back
    /// as cookies.
    Cookie,
    /// `Authorization: Bearer`: chosen by the client for each request. Nothing is ever handed
    /// back as a cookie, which would turn it into an ambient (CSRF-prone) credential.
    Header,
}

/// The session credentials a request presented, each with where it came from, borrowed from
/// the request's headers: the browser's cookie pair, and the one credential of
/// `Authorization: Bearer` (a request has one such header).
///
/// Read them with [`cookies::credentials`](crate::cookies::credentials), or build them for
/// [`Sessions::authenticate`](crate::Sessions::authenticate).
///
/// # Example
///
/// ```
/// use tower_session_jwt::sessions::{CredentialSource, Credentials};
///
/// let credentials = Credentials::new().with_token("opaque-token", CredentialSource::Header);
/// assert!(credentials.jwt().is_none());
/// assert_eq!(credentials.token(), Some(("opaque-token", CredentialSource::Header)));
/// ```
#[derive(Default, Clone, Copy, PartialEq, Eq)]
pub struct Credentials<'a> {
    pub(crate) cookie_jwt: Option<&'a str>,
    pub(crate) cookie_token: Option<&'a str>,
    pub(crate) header: Option<(CredentialKind, &'a str)>,
    /// The request presented `Authorization: Bearer`, well formed or not (set by extraction
    /// only): its answer carries no session cookie (`allows_session_cookies`).
    pub(crate) presents_bearer: bool,
}

impl std::fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("cookie_jwt", &self.cookie_jwt.is_some())
            .field("cookie_token", &self.cookie_token.is_some())
            .field("header", &self.header.map(|(kind, _)| kind))
            .finish()
    }
}

impl<'a> Credentials<'a> {
    /// No credentials.
    pub fn new() -> Self {
        Self::default()
    }

    /// With a session JWT. From the header, it replaces any header credential given before.
    pub fn with_jwt(mut self, jwt: &'a str, source: CredentialSource) -> Self {
        match source {
            CredentialSource::Cookie => self.cookie_jwt = Some(jwt),
            CredentialSource::Header => self.header = Some((CredentialKind::Jwt, jwt)),
        }
        self
    }

    /// With an opaque session token. From the header, it replaces any header credential given
    /// before.
    pub fn with_token(mut self, token: &'a str, source: CredentialSource) -> Self {
        match source {
            CredentialSource::Cookie => self.cookie_token = Some(token),
            CredentialSource::Header => self.header = Some((CredentialKind::Token, token)),
        }
        self
    }

    /// The session JWT that counts: the header's, else the cookie's.
    pub fn jwt(&self) -> Option<(&'a str, CredentialSource)> {
        match self.header {
            Some((CredentialKind::Jwt, jwt)) => Some((jwt, CredentialSource::Header)),
            _ => self.cookie_jwt.map(|jwt| (jwt, CredentialSource::Cookie)),
        }
    }

    /// Where the credential that decides came from: `Header` when the request carries one in
    /// `Authorization` (it decides, and the client gets no cookies back), `Cookie` when only
    /// cookies, `None` when neither. A handler that hands out new credentials (after a step-up,
    /// say) sets cookies only for `Cookie`.
    ///
    /// ```
    /// use tower_session_jwt::sessions::{CredentialSource, Credentials};
    ///
    /// let browser = Credentials::new().with_token("t", CredentialSource::Cookie);
    /// assert_eq!(browser.source(), Some(CredentialSource::Cookie));
    /// let api = browser.with_jwt("j", CredentialSource::Header);
    /// assert_eq!(api.source(), Some(CredentialSource::Header));
    /// assert_eq!(Credentials::new().source(), None);
    /// ```
    pub fn source(&self) -> Option<CredentialSource> {
        if self.header.is_some() {
            Some(CredentialSource::Header)
        } else if self.cookie_jwt.is_some() || self.cookie_token.is_some() {
            Some(CredentialSource::Cookie)
        } else {
            None
        }
    }

    /// The opaque token that counts: the header's, else the cookie's.
    pub fn token(&self) -> Option<(&'a str, CredentialSource)> {
        match self.header {
            Some((CredentialKind::Token, token)) => Some((token, CredentialSource::Header)),
            _ => self
                .cookie_token
                .map(|token| (token, CredentialSource::Cookie)),
        }
    }

    /// Whether nothing was presented.
    pub fn is_empty(&self) -> bool {
        self.header.is_none() && self.cookie_jwt.is_none() && self.cookie_token.is_none()
    }
}

/// Which credential a value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredentialKind {
    Jwt,
    Token,
}
