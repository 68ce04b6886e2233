//! Writing the session cookies (RFC 6265, through the `cookie` crate), and the one rule that
//! decides who gets them: a request that presents `Authorization: Bearer` gets none.
//!
//! Handlers that hand out new credentials (a login of their own, a step-up, a claims change)
//! write them with [`SessionCookies`], which applies that rule; reading a request's credentials
//! is [`credentials`].

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue, Response};
use time::OffsetDateTime;

use crate::data::session::Session;
use crate::engine::config::{CookieConfig, Settings};
use crate::engine::credentials::Credentials;
use crate::engine::{Authenticated, Changed, Created, Sessions};
use crate::http::credentials::allows_session_cookies;
use crate::jwt::SessionJwt;

pub use crate::engine::MAX_COOKIE_LEN;
pub use crate::http::credentials::{MAX_CREDENTIAL_HEADER_LEN, credentials};

/// The session cookies of the answer to one request: whether its client gets any (it does
/// unless it presented `Authorization: Bearer`), and the call that writes them.
///
/// A client that sends its credential in a header gets nothing back as a cookie (it reads its
/// new credentials from the body), not even when its browser's cookies came along: a cookie
/// would make its credential ambient (CSRF-prone), or replace the browser's own session. A
/// browser gets the cookies of whatever [hands out credentials](HandsOut): a
/// [`LoggedIn`](crate::login::LoggedIn), a [`Created`] session, or a [`Changed`] one (the token cookie when the token
/// was rotated, then the JWT cookie, or its removal when the JWT was
/// [withheld](Changed::jwt_withheld) for a device-bound session).
///
/// An axum extractor (it needs [`SessionLayer`](crate::SessionLayer) in front, for the
/// [`Sessions`]); elsewhere, build it with [`SessionCookies::new`].
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use axum::Json;
/// use axum::response::{IntoResponse, Response};
/// use tower_session_jwt::cookies::SessionCookies;
/// use tower_session_jwt::layer::CurrentSession;
/// use tower_session_jwt::{MemoryStore, NewSession, SessionError, Sessions, SigningKey};
///
/// // A handler: the token is rotated, and a browser gets its new cookies.
/// async fn rotate(
///     session: CurrentSession,
///     sessions: Sessions,
///     cookies: SessionCookies,
/// ) -> Result<Response, SessionError> {
///     let changed = sessions.rotate(&session.session_id).await?;
///     let mut response = Json(changed.session.public_view()).into_response();
///     cookies.set(&mut response, &changed);
///     Ok(response)
/// }
///
/// // The same rule, outside axum.
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let created = sessions.create("alice", NewSession::new()).await.unwrap();
/// let changed = sessions.rotate(&created.session.session_id).await.unwrap();
///
/// let mut browser = http::HeaderMap::new();
/// browser.insert("cookie", "session_token=old".parse().unwrap());
/// let mut response = http::Response::new(());
/// assert!(SessionCookies::new(&sessions, &browser).set(&mut response, &changed));
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2); // token, JWT
/// assert_eq!(response.headers()["cache-control"], "no-store");
///
/// let mut api = browser.clone();
/// api.insert("authorization", "Bearer opaque-token".parse().unwrap());
/// let mut response = http::Response::new(());
/// assert!(!SessionCookies::new(&sessions, &api).set(&mut response, &changed));
/// assert!(response.headers().get("set-cookie").is_none());
/// # let _ = rotate;
/// # });
/// ```
#[derive(Clone)]
pub struct SessionCookies {
    sessions: Sessions,
    cookie_client: bool,
}

impl std::fmt::Debug for SessionCookies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionCookies")
            .field("cookie_client", &self.cookie_client)
            .finish_non_exhaustive()
    }
}

impl SessionCookies {
    /// The session cookies of the answer to a request with these headers.
    pub fn new(sessions: &Sessions, request: &HeaderMap) -> Self {
        Self {
            sessions: sessions.clone(),
            cookie_client: allows_session_cookies(request),
        }
    }

    /// Whether the client gets session cookies: it did not present `Authorization: Bearer`.
    pub fn cookie_client(&self) -> bool {
        self.cookie_client
    }

    /// The `Set-Cookie` values (marked sensitive) that hand `credentials` to this client; none
    /// for a client that presented `Authorization: Bearer`.
    pub fn values(&self, credentials: &impl HandsOut) -> Vec<HeaderValue> {
        if !self.cookie_client {
            return Vec::new();
        }
        credentials.cookie_values(&self.sessions)
    }

    /// Writes the cookies that hand `credentials` to this client onto `response`, with
    /// `Cache-Control: no-store` (and, for a [`LoggedIn`](crate::login::LoggedIn) offering device binding, its
    /// `Secure-Session-Registration`), unless the client presented `Authorization: Bearer`.
    /// Returns whether anything was written.
    pub fn set<B>(&self, response: &mut Response<B>, credentials: &impl HandsOut) -> bool {
        if !self.cookie_client {
            return false;
        }
        credentials.write(&self.sessions, response.headers_mut());
        true
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
    impl Sealed for crate::engine::Created {}
    impl Sealed for crate::engine::Changed {}
}

/// What hands session credentials to a client, for [`SessionCookies`]: a [`LoggedIn`](crate::login::LoggedIn), a
/// [`Created`] session (both cookies) and a [`Changed`] one. Sealed.
pub trait HandsOut: sealed::Sealed {
    /// The `Set-Cookie` values, for a cookie client.
    #[doc(hidden)]
    fn cookie_values(&self, sessions: &Sessions) -> Vec<HeaderValue>;

    /// Writes the cookies (and any other header that goes with them) onto a response.
    #[doc(hidden)]
    fn write(&self, sessions: &Sessions, headers: &mut HeaderMap) {
        append_set_cookies(headers, self.cookie_values(sessions));
    }
}

impl HandsOut for Created {
    fn cookie_values(&self, sessions: &Sessions) -> Vec<HeaderValue> {
        created_cookies(sessions.settings(), self)
    }
}

impl HandsOut for Changed {
    fn cookie_values(&self, sessions: &Sessions) -> Vec<HeaderValue> {
        changed_cookies(sessions.settings(), self)
    }
}

/// The `Set-Cookie` values the layer adds after authenticating `credentials` into `outcome`:
/// the fresh JWT the store path handed back, and the token cookie again when the session's
/// expiry moved (its `Max-Age` follows it). Empty on the JWT paths and for `Authorization`
/// clients.
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::cookies::refresh_cookies;
/// use tower_session_jwt::sessions::{CredentialSource, Credentials};
/// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let created = sessions.create("alice", NewSession::new()).await.unwrap();
/// let browser = Credentials::new().with_token(created.token.expose(), CredentialSource::Cookie);
/// let outcome = sessions.authenticate(&browser).await.unwrap();
/// let cookies = refresh_cookies(&sessions, &browser, &outcome);
/// assert!(cookies[0].to_str().unwrap().starts_with("session_jwt="));
/// # });
/// ```
pub fn refresh_cookies(
    sessions: &Sessions,
    credentials: &Credentials<'_>,
    outcome: &Authenticated,
) -> Vec<HeaderValue> {
    authenticated_cookies(
        sessions.settings(),
        outcome,
        credentials.cookie_token,
        sessions.clock().now(),
    )
}

/// [`refresh_cookies`] from the parts: `cookie_token` is the request's token cookie.
pub(crate) fn authenticated_cookies(
    settings: &Settings,
    outcome: &Authenticated,
    cookie_token: Option<&str>,
    now: OffsetDateTime,
) -> Vec<HeaderValue> {
    match &outcome.jwt {
        Some(jwt) => {
            let token = cookie_token.filter(|_| outcome.resend_token);
            session_cookies(settings, token, jwt, &outcome.session, now)
        }
        None => Vec::new(),
    }
}

/// A new session's cookies: the token, then the JWT.
pub(crate) fn created_cookies(settings: &Settings, created: &Created) -> Vec<HeaderValue> {
    session_cookies(
        settings,
        Some(created.token.expose()),
        &created.jwt,
        &created.session,
        created.session.started_at,
    )
}

/// A changed session's cookies: the token cookie when the token was rotated, then the JWT
/// cookie, or its removal when the JWT was withheld.
pub(crate) fn changed_cookies(settings: &Settings, changed: &Changed) -> Vec<HeaderValue> {
    let token = changed.token.as_ref().map(|t| t.expose());
    match &changed.jwt {
        Some(jwt) => session_cookies(settings, token, jwt, &changed.session, changed.at()),
        None => withheld_jwt_cookies(settings, token, &changed.session, changed.at()),
    }
}

fn cookie_header(
    cookies: &CookieConfig,
    name: &str,
    value: &str,
    max_age: time::Duration,
    expires: Option<OffsetDateTime>,
) -> HeaderValue {
    let mut builder = cookie::Cookie::build((name, value))
        .http_only(true)
        .secure(cookies.is_secure())
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(max_age);
    if let Some(domain) = cookies.cookie_domain() {
        builder = builder.domain(domain);
    }
    if let Some(expires) = expires {
        builder = builder.expires(expires);
    }
    // Names and domains are validated when `Sessions` is built and values are base64url, so
    // the header is always valid.
    let mut header = HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""));
    // A session cookie carries a credential: keep it out of `Debug` output.
    header.set_sensitive(true);
    header
}

/// `Set-Cookie` values for the credentials given (token first); `Max-Age` is the session's
/// remaining lifetime, except for the JWT cookie of a session bound to a device (DBSC): it
/// lives as long as its JWT, so that the browser sees it go and refreshes it with its key.
pub(crate) fn session_cookies(
    settings: &Settings,
    token: Option<&str>,
    jwt: &SessionJwt,
    session: &Session,
    now: OffsetDateTime,
) -> Vec<HeaderValue> {
    // In whole seconds, rounded up: a session records its times to the millisecond, and a
    // cookie must not go a fraction of a second before the session it carries does.
    let remaining = (session.expires_at - now).max(time::Duration::ZERO);
    let max_age = time::Duration::seconds(
        remaining.whole_seconds() + i64::from(remaining.subsec_nanoseconds() > 0),
    );
    let cookies = &settings.cookies;
    let mut out = Vec::with_capacity(2);
    if let Some(token) = token {
        out.push(cookie_header(
            cookies,
            &settings.token_cookie,
            token,
            max_age,
            None,
        ));
    }
    let jwt_max_age = if session.is_device_bound() {
        (jwt.expires_at() - now).clamp(time::Duration::ZERO, max_age)
    } else {
        max_age
    };
    out.push(jwt_cookie(settings, jwt.expose(), jwt_max_age));
    out
}

/// `Set-Cookie` values for a change that minted no JWT (a session bound to a device, changed
/// without its device's proof): the token cookie when one is given, and the JWT cookie's
/// removal, so that the browser refreshes the JWT with its device key before its next request.
pub(crate) fn withheld_jwt_cookies(
    settings: &Settings,
    token: Option<&str>,
    session: &Session,
    now: OffsetDateTime,
) -> Vec<HeaderValue> {
    let max_age = (session.expires_at - now).max(time::Duration::ZERO);
    let mut out = Vec::with_capacity(2);
    if let Some(token) = token {
        out.push(cookie_header(
            &settings.cookies,
            &settings.token_cookie,
            token,
            max_age,
            None,
        ));
    }
    out.push(removal(&settings.cookies, &settings.jwt_cookie, "/"));
    out
}

/// Appends `cookies` as `Set-Cookie` headers to a response that hands out credentials, and
/// `Cache-Control: no-store` so no cache keeps them.
pub(crate) fn append_set_cookies(
    headers: &mut HeaderMap,
    cookies: impl IntoIterator<Item = HeaderValue>,
) {
    for cookie in cookies {
        headers.append(SET_COOKIE, cookie);
    }
    headers.insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

/// The `Set-Cookie` value that hands out `jwt`.
pub(crate) fn jwt_cookie(settings: &Settings, jwt: &str, max_age: time::Duration) -> HeaderValue {
    cookie_header(&settings.cookies, &settings.jwt_cookie, jwt, max_age, None)
}

/// Whether `response_cookies` (a response's `Set-Cookie` values) set or delete a session
/// cookie: then the handler has the last word and the layer adds none of its own.
pub(crate) fn sets_session_cookie<'a>(
    settings: &Settings,
    mut response_cookies: impl Iterator<Item = &'a HeaderValue>,
) -> bool {
    response_cookies.any(|value| is_session_cookie(settings, value))
}

/// Whether a `Set-Cookie` value sets or deletes one of the two session cookies.
fn is_session_cookie(settings: &Settings, value: &HeaderValue) -> bool {
    let name = value
        .as_bytes()
        .split(|b| *b == b'=')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    name == settings.token_cookie.as_bytes() || name == settings.jwt_cookie.as_bytes()
}

/// Removes every `Set-Cookie` that sets or deletes a session cookie from `response`, leaving
/// the application's other cookies: what a response to a request that presented
/// `Authorization: Bearer` must not carry (see [`allows_session_cookies`](super::credentials::allows_session_cookies)).
pub(crate) fn remove_session_cookies(settings: &Settings, response: &mut HeaderMap) {
    if !sets_session_cookie(settings, response.get_all(SET_COOKIE).iter()) {
        return;
    }
    let kept: Vec<HeaderValue> = response
        .get_all(SET_COOKIE)
        .iter()
        .filter(|value| !is_session_cookie(settings, value))
        .cloned()
        .collect();
    response.remove(SET_COOKIE);
    for value in kept {
        response.append(SET_COOKIE, value);
    }
}

/// `Set-Cookie` values that delete both session cookies: same name, `Path` and `Domain`,
/// `Max-Age=0` and an `Expires` in the past.
///
/// # Example
///
/// ```
/// use tower_session_jwt::cookies::removal_cookies;
/// use tower_session_jwt::sessions::CookieConfig;
///
/// let [token, jwt] = removal_cookies(&CookieConfig::default());
/// assert!(token.to_str().unwrap().starts_with("session_token=;"));
/// assert!(jwt.to_str().unwrap().contains("Max-Age=0"));
/// ```
pub fn removal_cookies(cookies: &CookieConfig) -> [HeaderValue; 2] {
    [
        removal(cookies, &cookies.token_name(), "/"),
        removal(cookies, &cookies.jwt_name(), "/"),
    ]
}

/// A removal cookie for `name` at `path`.
pub(crate) fn removal(cookies: &CookieConfig, name: &str, path: &str) -> HeaderValue {
    let mut builder = cookie::Cookie::build((name, ""))
        .http_only(true)
        .secure(cookies.is_secure())
        .same_site(cookie::SameSite::Lax)
        .path(path.to_owned())
        .max_age(time::Duration::ZERO)
        .expires(OffsetDateTime::UNIX_EPOCH);
    if let Some(domain) = cookies.cookie_domain() {
        builder = builder.domain(domain.to_owned());
    }
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The engine measures a JWT cookie without building it: its count is the length of the
    /// value written here.
    #[tokio::test]
    async fn the_engine_counts_jwt_cookies_exactly() {
        let configs = [
            CookieConfig::default(),
            CookieConfig::default().secure(false),
            CookieConfig::default().host_prefix(true),
            CookieConfig::default().domain("app.example"),
            CookieConfig::default()
                .domain(".app.example")
                .names("t", "j"),
        ];
        for cookies in configs {
            let settings = crate::engine::Sessions::builder()
                .store(crate::store::memory::MemoryStore::new())
                .signing_key(crate::jwt::keys::SigningKey::generate_ed25519().unwrap())
                .cookies(cookies.clone())
                .build()
                .unwrap()
                .settings()
                .clone();
            for seconds in [0, 9, 10, 86_400, i64::MAX] {
                let max_age = time::Duration::seconds(seconds);
                let written = jwt_cookie(&settings, "aaaa.bbbb.cccc", max_age);
                let counted = crate::engine::jwt_cookie_len(&settings, 14, max_age);
                assert_eq!(counted, written.len(), "{cookies:?} {seconds}");
            }
        }
    }
}
