//! Creating a session from a request: the client's address and user agent, the CSRF check,
//! and the cookies that hand the session to a browser.

use std::net::SocketAddr;

use http::{HeaderMap, HeaderValue, Response, request::Parts};

use crate::data::events::{RevokeReason, RevokedBy};
use crate::data::session::{NewSession, SessionAttributes, validate_user_id};
use crate::engine::error::SessionError;
use crate::engine::{CreatedSession, Sessions};
use crate::http::cookies::{allows_session_cookies, append_set_cookies, session_cookies};
use crate::store::StoreError;

/// A session created from a request, with the `Set-Cookie` values that hand it to a browser.
///
/// `Debug` shows the session, never the credentials.
pub struct Login {
    /// The session and both credentials (for a JSON response body).
    pub created: CreatedSession,
    cookies: Vec<HeaderValue>,
    registration: Option<HeaderValue>,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Login")
            .field("created", &self.created)
            .field("cookies", &self.cookies.len())
            .finish()
    }
}

impl Login {
    /// The two `Set-Cookie` values (session token, then JWT), marked sensitive; none when the
    /// login request presented `Authorization: Bearer` (see [`Sessions::login`]).
    pub fn cookies(&self) -> &[HeaderValue] {
        &self.cookies
    }

    /// The `Secure-Session-Registration` value that offers the browser [device
    /// binding](crate::dbsc), when the sessions are configured with
    /// [`device_binding`](crate::SessionsBuilder::device_binding).
    pub fn registration_offer(&self) -> Option<&HeaderValue> {
        self.registration.as_ref()
    }

    /// Appends both `Set-Cookie` headers to a response, and `Cache-Control: no-store`; with
    /// device binding configured, the `Secure-Session-Registration` offer too.
    pub fn set_cookies<B>(&self, response: &mut Response<B>) {
        let headers = response.headers_mut();
        append_set_cookies(headers, self.cookies.iter().cloned());
        if let Some(offer) = &self.registration {
            headers.insert(crate::http::dbsc::REGISTRATION_HEADER, offer.clone());
        }
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
    /// The returned [`Login`] sets both cookies on your response: set them last, so that they
    /// replace whatever session the browser held before. A request that presents
    /// `Authorization: Bearer` is an API client's: it gets no cookies (and no device-binding
    /// offer, which only a browser's cookies can take up) and reads its credentials from
    /// [`Login::created`] instead.
    ///
    /// That older session is revoked first (a [`Revoked`](crate::events::SessionEventKind::Revoked)
    /// event with [`RevokedBy::Itself`] and [`RevokeReason::ReplacedByLogin`]): once the browser
    /// holds the new cookies nothing holds the old session, which would otherwise stay usable
    /// by its token, and listed among the user's devices, for its whole lifetime. Only a
    /// genuine session counts: one that the request's token cookie or JWT cookie (even expired)
    /// names and that is still live. Forged, malformed or stale cookies revoke nothing and do
    /// not stop the login, and a request with an `Authorization` header (an API client, whose
    /// cookies the answer does not replace) revokes nothing either. Applications that keep
    /// several accounts per browser opt out with
    /// [`keep_sessions_on_login`](crate::SessionsBuilder::keep_sessions_on_login).
    ///
    /// # Errors
    ///
    /// Besides [`create`](Self::create)'s: [`SessionError::CrossSiteRequest`] (below), and
    /// [`SessionError::Store`] when the store fails while revoking the replaced session (no new
    /// session is created, so the browser keeps its cookies and can retry).
    ///
    /// A request that a browser sent from another site is refused with
    /// [`SessionError::CrossSiteRequest`] (`403`): otherwise a hostile page could sign the
    /// visitor into the attacker's account (login CSRF). See [`Sessions::is_cross_site`].
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
        if self.is_cross_site(request) {
            return Err(SessionError::CrossSiteRequest);
        }
        let user_id = user_id.into();
        // Checked before anything is revoked: a login refused for its input replaces nothing.
        validate_user_id(&user_id)?;
        new.check_claims()?;
        if !self.settings().keep_sessions_on_login {
            // Before the new session is stored, so that the replaced session does not count
            // against the user's session limit (a limit of one would otherwise refuse every
            // second login in a browser, or evict another device to make room).
            self.revoke_replaced(&request.headers).await?;
        }
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
        new.offer_device = self.settings().device_binding.is_some();
        let cookies_allowed = allows_session_cookies(&request.headers);
        new.offer_device &= cookies_allowed;
        let created = self.create(user_id, new).await?;
        if !cookies_allowed {
            return Ok(Login {
                created,
                cookies: Vec::new(),
                registration: None,
            });
        }
        let cookies = session_cookies(
            self.settings(),
            Some(created.token.expose()),
            &created.jwt,
            &created.session,
            created.session.started_at,
        );
        let registration = match (
            &self.settings().device_binding,
            &created.session.device_binding,
        ) {
            (Some(config), Some(binding)) => binding.challenge.as_ref().map(|challenge| {
                crate::http::dbsc::registration_offer(
                    config,
                    &created.session.session_id,
                    &challenge.value,
                )
            }),
            _ => None,
        };
        Ok(Login {
            created,
            cookies,
            registration,
        })
    }

    /// Revokes the session that the request's cookies genuinely name: the browser is about to
    /// get a new session's cookies in their place. A store failure is returned, not swallowed:
    /// the login then fails before anything is created (it needs the same store), rather than
    /// hand out a new session while the old one may live on unseen.
    async fn revoke_replaced(&self, headers: &HeaderMap) -> Result<(), StoreError> {
        if headers.contains_key(http::header::AUTHORIZATION) {
            return Ok(());
        }
        // The cookies as the layer reads them: two different values of one cookie (or an
        // oversized header) are the conflict it refuses, and replace nothing.
        let Ok(credentials) = self.credentials(headers) else {
            return Ok(());
        };
        let (token, jwt) = (credentials.cookie_token, credentials.cookie_jwt);
        let by_token = match token {
            // A malformed, forged or unknown token names nothing (and a forged tagged one
            // costs no store call).
            Some(token) => match self.session_for_token(token).await {
                Ok(found) => found.map(|session| session.session_id),
                Err(crate::engine::error::AuthError::Store(e)) => return Err(e),
                Err(_) => None,
            },
            None => None,
        };
        // Genuine (signed by a configured key) even if expired: the browser keeps its JWT
        // cookie as long as the token cookie. A forged one names nothing.
        let by_jwt = jwt.and_then(|jwt| self.jwt_session_id(jwt));
        // A token and a JWT naming different sessions: the same conflict.
        let replaced = match (by_token, by_jwt) {
            (Some(a), Some(b)) if a != b => return Ok(()),
            (Some(id), _) | (None, Some(id)) => id,
            (None, None) => return Ok(()),
        };
        self.revoke_by(&replaced, RevokedBy::Itself, RevokeReason::ReplacedByLogin)
            .await?;
        Ok(())
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
