//! Logout, logout everywhere and revoke-one-session handlers, and the login helper.
//!
//! Each handler is a plain tower [`Service`] (mount it in axum with `post_service`, or call it
//! from hyper), answering `204 No Content` (or `303 See Other` for HTML form posts when
//! [`redirect_forms_to`](SessionHandler::redirect_forms_to) is set). They refuse methods other than
//! `POST` and `DELETE` with `405`, so a link or an image tag cannot log anyone out.
//!
//! They also refuse cross-site requests with `403` (OWASP CSRF cheat sheet: Fetch Metadata and
//! origin verification): `Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not the
//! request's `Host`. Same-origin pages and non-browser clients (which send neither header) are
//! unaffected.
//!
//! Logout is idempotent: with no, garbage, expired or already revoked credentials it still
//! answers success and strips both cookies. Mount these routes behind
//! [`SessionLayer::optional`](crate::SessionLayer::optional) (or no layer): a required layer
//! would answer `401` before the handler could strip stale cookies. A store failure answers `503`
//! and leaves the cookies in place, so the client can retry.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum_core::body::Body;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, request::Parts};
use tower_service::Service;

use crate::cookies::{extract, session_cookies, strip_session_cookies};
use crate::error::{AuthError, SessionError};
use crate::layer::CurrentSession;
use crate::manager::{CreatedSession, Sessions};
use crate::session::{NewSession, SessionAttributes, SessionId};
use crate::store::{BoxFuture, StoreError};

/// What a [`SessionHandler`] revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Logout,
    LogoutEverywhere,
    RevokeById,
}

/// Finds the session id in a revoke request.
pub type SessionIdSource = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// A logout or revoke handler; build one with [`logout`], [`logout_everywhere`] or
/// [`revoke_session`].
///
/// # Example
///
/// ```
/// use axum::{Router, routing::post_service};
/// use tower_session_jwt::logout::{logout, logout_everywhere, revoke_session};
///
/// let routes: Router = Router::new()
///     .route("/logout", post_service(logout().redirect_forms_to("/")))
///     .route("/logout/all", post_service(logout_everywhere()))
///     .route("/api/sessions/{session_id}/revoke", post_service(revoke_session()));
/// // …then `.layer(SessionLayer::new(sessions).optional())`.
/// # let _ = routes;
/// ```
///
/// Responses have empty bodies of type `B` (axum's `Body` by default; see
/// [`with_body`](SessionHandler::with_body) for hyper stacks).
pub struct SessionHandler<B = Body> {
    action: Action,
    form_redirect: Option<HeaderValue>,
    session_id: SessionIdSource,
    body: std::marker::PhantomData<fn() -> B>,
}

impl<B> Clone for SessionHandler<B> {
    fn clone(&self) -> Self {
        Self {
            action: self.action,
            form_redirect: self.form_redirect.clone(),
            session_id: self.session_id.clone(),
            body: std::marker::PhantomData,
        }
    }
}

impl<B> std::fmt::Debug for SessionHandler<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandler")
            .field("action", &self.action)
            .field("form_redirect", &self.form_redirect)
            .finish_non_exhaustive()
    }
}

/// Revokes the current session and strips both cookies.
pub fn logout() -> SessionHandler {
    SessionHandler::new(Action::Logout)
}

/// Revokes every session of the current user and strips both cookies.
pub fn logout_everywhere() -> SessionHandler {
    SessionHandler::new(Action::LogoutEverywhere)
}

/// Revokes one of the current user's sessions by id; another user's (or an unknown) id answers
/// `404`. The id is read from the path segment before a trailing `/revoke`, or else the last
/// segment (`/api/sessions/{session_id}/revoke`, `/sessions/{session_id}`); see
/// [`session_id_from`](SessionHandler::session_id_from). Revoking the current session also
/// strips its cookies.
pub fn revoke_session() -> SessionHandler {
    SessionHandler::new(Action::RevokeById)
}

fn id_from_path(parts: &Parts) -> Option<String> {
    let mut segments = parts.uri.path().trim_end_matches('/').rsplit('/');
    let last = segments.next()?;
    let id = if last == "revoke" {
        segments.next()?
    } else {
        last
    };
    Some(id.to_owned())
}

impl SessionHandler {
    fn new(action: Action) -> Self {
        Self {
            action,
            form_redirect: None,
            session_id: Arc::new(id_from_path),
            body: std::marker::PhantomData,
        }
    }
}

impl<B: Default> SessionHandler<B> {
    /// The same handler answering with response bodies of type `R` (for example
    /// `http_body_util::Full<Bytes>` under plain hyper).
    pub fn with_body<R: Default>(self) -> SessionHandler<R> {
        SessionHandler {
            action: self.action,
            form_redirect: self.form_redirect,
            session_id: self.session_id,
            body: std::marker::PhantomData,
        }
    }

    /// Answers HTML form posts (`application/x-www-form-urlencoded`) with `303 See Other` to
    /// `location`, so a browser page reloads; other clients still get `204`.
    pub fn redirect_forms_to(mut self, location: &'static str) -> Self {
        self.form_redirect = Some(HeaderValue::from_static(location));
        self
    }

    /// Reads the session id to revoke with `source` instead of from the path.
    pub fn session_id_from(
        mut self,
        source: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.session_id = Arc::new(source);
        self
    }

    async fn handle(self, parts: Parts) -> Response<B> {
        if parts.method != Method::POST && parts.method != Method::DELETE {
            let mut response = plain(StatusCode::METHOD_NOT_ALLOWED);
            response.headers_mut().insert(
                http::header::ALLOW,
                HeaderValue::from_static("POST, DELETE"),
            );
            return response;
        }
        if is_cross_site(&parts) {
            return plain(StatusCode::FORBIDDEN);
        }
        let Some(sessions) = parts.extensions.get::<Sessions>().cloned() else {
            return plain(StatusCode::INTERNAL_SERVER_ERROR);
        };
        let current = parts.extensions.get::<CurrentSession>().cloned();
        let result = match self.action {
            Action::Logout => revoke_presented(&sessions, &parts.headers, current.as_ref())
                .await
                .map(|_| true),
            Action::LogoutEverywhere => {
                revoke_everywhere(&sessions, &parts.headers, current.as_ref())
                    .await
                    .map(|_| true)
            }
            Action::RevokeById => {
                let Some(current) = current else {
                    return AuthError::MissingCredentials.to_response();
                };
                let Some(id) = (self.session_id)(&parts).and_then(|id| SessionId::parse(&id).ok())
                else {
                    return plain(StatusCode::NOT_FOUND);
                };
                match sessions.revoke_for_user(&current.user_id, &id).await {
                    Ok(Some(_)) => Ok(id == current.session_id),
                    Ok(None) => return plain(StatusCode::NOT_FOUND),
                    Err(e) => Err(e),
                }
            }
        };
        match result {
            Ok(strip) => self.success(&parts, strip.then(|| sessions.settings())),
            Err(error) => AuthError::Store(error).to_response(),
        }
    }

    fn success(&self, parts: &Parts, strip: Option<&crate::config::Settings>) -> Response<B> {
        let is_form = parts
            .headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let mut response = match (&self.form_redirect, is_form) {
            (Some(location), true) => {
                let mut r = plain(StatusCode::SEE_OTHER);
                r.headers_mut().insert(LOCATION, location.clone());
                r
            }
            _ => plain(StatusCode::NO_CONTENT),
        };
        if let Some(settings) = strip {
            for cookie in strip_session_cookies(&settings.cookies) {
                response.headers_mut().append(SET_COOKIE, cookie);
            }
        }
        response
    }
}

/// Whether a browser marked the request as cross-site: `Sec-Fetch-Site: cross-site`, or an
/// `Origin` (including `null`) whose host and port differ from the request's `Host` header (or,
/// over HTTP/2, its `:authority`). Requests with neither header (non-browser clients) are not
/// cross-site.
///
/// # Example
///
/// ```
/// use tower_session_jwt::logout::is_cross_site;
///
/// let parts = |origin: Option<&str>| {
///     let mut request = http::Request::post("/logout").header("host", "app.example");
///     if let Some(origin) = origin {
///         request = request.header("origin", origin);
///     }
///     request.body(()).unwrap().into_parts().0
/// };
/// assert!(!is_cross_site(&parts(None)));
/// assert!(is_cross_site(&parts(Some("https://evil.example"))));
/// assert!(!is_cross_site(&parts(Some("https://app.example"))));
/// ```
pub fn is_cross_site(request: &Parts) -> bool {
    let headers = &request.headers;
    if let Some(site) = headers.get("sec-fetch-site")
        && site.as_bytes().eq_ignore_ascii_case(b"cross-site")
    {
        return true;
    }
    let Some(origin) = headers.get(http::header::ORIGIN) else {
        return false;
    };
    let host = headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.authority().map(|a| a.as_str()));
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, rest)| rest);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => !origin_host.eq_ignore_ascii_case(host),
        // `Origin: null`, an unreadable origin, or nothing to compare it with: refuse.
        _ => true,
    }
}

fn plain<B: Default>(status: StatusCode) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Revokes whatever session the request's credentials name. Unusable credentials revoke
/// nothing; only a store failure is an error.
async fn revoke_presented(
    sessions: &Sessions,
    headers: &HeaderMap,
    current: Option<&CurrentSession>,
) -> Result<(), StoreError> {
    if let Some(current) = current {
        sessions.revoke(&current.session_id).await?;
    }
    let Ok(credentials) = extract(headers, sessions.settings()) else {
        return Ok(());
    };
    // Whatever token the client holds dies too (it may name another session than the JWT the
    // layer accepted).
    if let Some(token) = credentials.token {
        sessions.revoke_token(token).await?;
    }
    // The JWT only needs reading when the layer did not already authenticate the request with
    // it: verifying it again would cost a signature check for nothing.
    if current.is_none()
        && let Some(jwt) = credentials.jwt
        && let Err(AuthError::Store(e)) = sessions.revoke_jwt(jwt).await
    {
        return Err(e);
    }
    Ok(())
}

/// Revokes all sessions of the user the request's credentials name.
async fn revoke_everywhere(
    sessions: &Sessions,
    headers: &HeaderMap,
    current: Option<&CurrentSession>,
) -> Result<(), StoreError> {
    let user = match current {
        Some(current) => current.user_id.clone(),
        None => {
            // Without an authenticated session, only a live opaque token names a user.
            let credentials = extract(headers, sessions.settings()).ok();
            let Some(token) = credentials.and_then(|c| c.token) else {
                return Ok(());
            };
            match sessions.authenticate_token(token).await {
                Ok(auth) => auth.session.user_id.clone(),
                Err(AuthError::Store(e)) => return Err(e),
                Err(_) => return Ok(()),
            }
        }
    };
    sessions.revoke_all(&user).await?;
    Ok(())
}

impl<ReqBody, B> Service<Request<ReqBody>> for SessionHandler<B>
where
    ReqBody: Send + 'static,
    B: Default + Send + 'static,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<B>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let (parts, _) = request.into_parts();
        let handler = self.clone();
        Box::pin(async move { Ok(handler.handle(parts).await) })
    }
}

/// A session created from a request, with the `Set-Cookie` values that hand it to a browser.
#[derive(Debug)]
pub struct Login {
    /// The session and both credentials (for a JSON response body).
    pub created: CreatedSession,
    cookies: Vec<HeaderValue>,
}

impl Login {
    /// The two `Set-Cookie` values (session token, then JWT).
    pub fn cookies(&self) -> &[HeaderValue] {
        &self.cookies
    }

    /// Appends both `Set-Cookie` headers to a response, and `Cache-Control: no-store`.
    pub fn set_cookies<B>(&self, response: &mut Response<B>) {
        let headers = response.headers_mut();
        for cookie in &self.cookies {
            headers.append(SET_COOKIE, cookie.clone());
        }
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// The peer address of a connection, for [`Sessions::login`]. Put it in the request
/// extensions (hyper) or pass it with [`NewSession::peer_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

impl Sessions {
    /// Creates a session for `user_id` from a request: records the client IP (the configured
    /// trusted header, else the peer address given in `new` or found in the extensions as
    /// [`PeerAddr`] or `SocketAddr`) and the `User-Agent`, unless `new` sets attributes itself.
    /// The returned [`Login`] sets both cookies on your response.
    ///
    /// # Example
    ///
    /// ```
    /// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
    /// use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};
    ///
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .build()
    ///     .unwrap();
    /// let (parts, ()) = http::Request::post("/login")
    ///     .header("user-agent", "curl/8.5")
    ///     .body(())
    ///     .unwrap()
    ///     .into_parts();
    /// let login = sessions.login(&parts, "user-1", NewSession::new()).await.unwrap();
    /// assert_eq!(login.created.session.attributes.user_agent, "curl/8.5");
    /// let mut response = http::Response::new(());
    /// login.set_cookies(&mut response);
    /// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
    /// # });
    /// ```
    pub async fn login(
        &self,
        request: &Parts,
        user_id: impl Into<String>,
        mut new: NewSession,
    ) -> Result<Login, SessionError> {
        if new.attributes == SessionAttributes::default() {
            let ip = self
                .client_ip_from_header(&request.headers)
                .or_else(|| new.peer_addr.map(|a| a.ip().to_string()))
                .or_else(|| {
                    request
                        .extensions
                        .get::<PeerAddr>()
                        .map(|a| a.0.ip().to_string())
                })
                .or_else(|| {
                    request
                        .extensions
                        .get::<SocketAddr>()
                        .map(|a| a.ip().to_string())
                })
                .unwrap_or_default();
            let user_agent = request
                .headers
                .get(http::header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            new.attributes = SessionAttributes::new(ip, user_agent);
        }
        let created = self.create(user_id, new).await?;
        let cookies = session_cookies(
            self.settings(),
            Some(&created.token),
            &created.jwt,
            created.session.expires_at,
            created.session.started_at,
        );
        Ok(Login { created, cookies })
    }

    fn client_ip_from_header(&self, headers: &HeaderMap) -> Option<String> {
        let name = self.settings().client_ip_header.as_ref()?;
        let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
        // X-Forwarded-For lists hops left to right; the rightmost was added by our proxy.
        let candidate = value.rsplit(',').next()?.trim();
        candidate
            .parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| ip.to_string())
    }
}
