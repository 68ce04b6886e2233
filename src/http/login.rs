//! Creating a session from a request: the client's address and user agent, the CSRF check,
//! and the cookies that hand the session to a browser.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Response, request::Parts};

use crate::data::session::{NewSession, SessionAttributes};
use crate::engine::credentials::Credentials;
use crate::engine::error::SessionError;
use crate::engine::{Created, Sessions};
use crate::http::cookies::{append_set_cookies, created_cookies};
use crate::http::credentials::{allows_session_cookies, read};

/// A session created from a request, with the `Set-Cookie` values that hand it to a browser.
///
/// `Debug` shows the session, never the credentials.
pub struct LoggedIn {
    /// The session and both credentials (for a JSON response body).
    pub created: Created,
    cookies: Vec<HeaderValue>,
    registration: Option<HeaderValue>,
}

impl std::fmt::Debug for LoggedIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LoggedIn")
            .field("created", &self.created)
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

impl LoggedIn {
    /// The two `Set-Cookie` values (session token, then JWT), marked sensitive; none when the
    /// login request presented `Authorization: Bearer` (see [`login`]).
    pub fn cookies(&self) -> &[HeaderValue] {
        &self.cookies
    }

    /// The `Secure-Session-Registration` value that offers the browser [device
    /// binding](crate::dbsc), when the sessions are configured with
    /// [`device_binding`](crate::SessionsBuilder::device_binding).
    pub fn registration_offer(&self) -> Option<&HeaderValue> {
        self.registration.as_ref()
    }

    /// Writes both `Set-Cookie` headers onto a response, and `Cache-Control: no-store`; with
    /// device binding configured, the `Secure-Session-Registration` offer too. No cookie for a
    /// login that presented `Authorization: Bearer` (its client reads its credentials from
    /// [`created`](Self::created)).
    pub fn set_cookies<B>(&self, response: &mut Response<B>) {
        self.write_to(response.headers_mut());
    }

    pub(crate) fn write_to(&self, headers: &mut HeaderMap) {
        append_set_cookies(headers, self.cookies.iter().cloned());
        if let Some(offer) = &self.registration {
            headers.insert(crate::http::dbsc::REGISTRATION_HEADER, offer.clone());
        }
    }
}

/// The peer address of a connection, for [`login`]. Put it in the request
/// extensions (hyper) or pass it with [`NewSession::peer_addr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub SocketAddr);

/// Creates a session for `user_id` from a request ([`Sessions::login`] with what the request
/// says): records the client IP (the configured trusted header, else the peer address given in
/// `new` or found in the extensions as [`PeerAddr`] or `SocketAddr`) and the `User-Agent`,
/// unless `new` sets attributes itself. The returned [`LoggedIn`] sets both cookies on your
/// response ([`LoggedIn::set_cookies`]): set them last, so that they replace whatever session the
/// browser held before. A request that presents `Authorization: Bearer` is an API client's: it
/// gets no cookies (and no device-binding offer, which only a browser's cookies can take up)
/// and reads its credentials from [`LoggedIn::created`] instead.
///
/// That older session, the one the request's cookies genuinely name, is revoked first (see
/// [`Sessions::login`]); a request with an `Authorization` header (an API client, whose cookies
/// the answer does not replace) revokes nothing.
///
/// # Errors
///
/// [`Sessions::login`]'s, and [`SessionError::CrossSiteRequest`]: a request that a browser
/// sent from another site is refused (`403`), since otherwise a hostile page could sign the
/// visitor into the attacker's account (login CSRF). See
/// [`csrf::is_cross_site`](crate::csrf::is_cross_site).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower_session_jwt::login::login;
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
/// let logged_in = login(&sessions, &parts, "user-1", NewSession::new()).await.unwrap();
/// assert_eq!(logged_in.created.session.attributes.user_agent, "curl/8.5");
/// let mut response = http::Response::new(());
/// logged_in.set_cookies(&mut response);
/// assert_eq!(response.headers().get_all("set-cookie").iter().count(), 2);
/// # });
/// ```
pub async fn login(
    sessions: &Sessions,
    request: &Parts,
    user_id: impl Into<String>,
    mut new: NewSession,
) -> Result<LoggedIn, SessionError> {
    if crate::http::csrf::is_cross_site(sessions, request) {
        return Err(SessionError::CrossSiteRequest);
    }
    let settings = sessions.settings();
    if new.attributes == SessionAttributes::default() {
        let ip = client_ip_from_header(sessions, &request.headers)
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
    let cookies_allowed = allows_session_cookies(&request.headers);
    new.offer_device = settings.device_binding.is_some() && cookies_allowed;
    // The cookies as the layer reads them: two different values of one cookie (or an
    // oversized header) are the conflict it refuses, and replace nothing. Nor does a request
    // with an `Authorization` header.
    let replacing = match request.headers.contains_key(http::header::AUTHORIZATION) {
        true => Credentials::new(),
        false => read(&request.headers, settings).unwrap_or_default(),
    };
    let created = sessions.login(user_id, new, &replacing).await?;
    if !cookies_allowed {
        return Ok(LoggedIn {
            created,
            cookies: Vec::new(),
            registration: None,
        });
    }
    let cookies = created_cookies(settings, &created);
    let registration = match (&settings.device_binding, &created.session.device_binding) {
        (Some(config), Some(binding)) => binding.challenge.as_ref().map(|challenge| {
            crate::http::dbsc::registration_offer(
                config,
                &created.session.session_id,
                &challenge.value,
            )
        }),
        _ => None,
    };
    Ok(LoggedIn {
        created,
        cookies,
        registration,
    })
}

/// The client IP the configured trusted header gives, if any.
fn client_ip_from_header(sessions: &Sessions, headers: &HeaderMap) -> Option<String> {
    let name = sessions.settings().client_ip_header.as_deref()?;
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    // X-Forwarded-For lists hops left to right; the rightmost was added by our proxy.
    let candidate = value.rsplit(',').next()?.trim();
    candidate
        .parse::<std::net::IpAddr>()
        .ok()
        .map(|ip| ip.to_string())
}

impl crate::http::cookies::sealed::Sealed for LoggedIn {}

impl crate::http::cookies::HandsOut for LoggedIn {
    fn cookie_values(&self, _: &Sessions) -> Vec<HeaderValue> {
        self.cookies().to_vec()
    }

    fn write(&self, _: &Sessions, headers: &mut HeaderMap) {
        self.write_to(headers);
    }
}
