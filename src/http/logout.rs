//! Logout, logout everywhere, sign out other devices and revoke-one-session handlers, and
//! cookie stripping.
//!
//! Each handler is a plain tower [`Service`](tower_service::Service) built from the
//! [`Sessions`] it acts on (mount it in axum with `post_service`, or call it from hyper),
//! answering `204 No Content` (or `303 See Other` for HTML form posts when
//! [`redirect_forms_to`](LogoutService::redirect_forms_to) is set). They refuse methods other
//! than `POST` and `DELETE` with `405` themselves, so a link or an image tag cannot log anyone
//! out, whatever router they are mounted in.
//!
//! They also refuse cross-site requests with `403` (see
//! [`csrf::is_cross_site`](crate::csrf::is_cross_site)).
//!
//! They work with or without [`SessionLayer`](crate::SessionLayer) in front: they use the
//! session the layer authenticated when there is one, and read the request's credentials
//! themselves otherwise. Behind the layer, use [`SessionLayer::optional`](crate::SessionLayer::optional):
//! a required layer would answer `401` before a logout could strip stale cookies.
//!
//! Logout is idempotent and always strips both cookies: with no, garbage, expired, revoked or
//! conflicting credentials it still answers success, after revoking every session that a genuine
//! credential in the request names (a cookie tossed in beside the user's own included). A store
//! failure answers `503` and leaves the cookies in place, so the client can retry. A request
//! that presents `Authorization: Bearer` gets no cookie at all, not even a removal: an API
//! client's logout must not sign the browser beside it out of a session it did not end.

use std::sync::Arc;

use axum_core::body::Body;
use http::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use http::{HeaderValue, Method, Response, StatusCode, request::Parts};

use crate::data::session::SessionId;
use crate::engine::Sessions;
use crate::engine::credentials::CredentialSource;
use crate::engine::error::{AuthError, SessionError};
use crate::http::cookies::{removal, removal_cookies};
use crate::http::credentials::{allows_session_cookies, each_presented, presented, read};
use crate::http::endpoint::{Endpoint, EndpointService, endpoint_service};
use crate::http::layer::CurrentSession;

/// What a [`LogoutService`] revokes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    Logout,
    LogoutEverywhere,
    LogoutOthers,
    RevokeById,
}

/// Finds the session id in a revoke request.
pub type SessionIdSource = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// A logout or revoke handler; build one with [`logout`], [`logout_everywhere`],
/// [`logout_others`] or [`revoke_session`].
///
/// # Example
///
/// ```
/// use axum::{Router, routing::post_service};
/// use tower_session_jwt::logout::{logout, logout_everywhere, logout_others, revoke_session};
/// use tower_session_jwt::{MemoryStore, SessionLayer, Sessions, SigningKey};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let routes: Router = Router::new()
///     .route("/logout", post_service(logout(&sessions).redirect_forms_to("/")))
///     .route("/logout/all", post_service(logout_everywhere(&sessions)))
///     .route("/logout/others", post_service(logout_others(&sessions).redirect_forms_to("/")))
///     .route("/api/sessions/{session_id}/revoke", post_service(revoke_session(&sessions)))
///     .layer(SessionLayer::new(sessions).optional());
/// # let _ = routes; });
/// ```
///
/// Responses have empty bodies of type `B` (axum's `Body` by default; see
/// [`with_body`](LogoutService::with_body) for hyper stacks).
pub struct LogoutService<B = Body>(EndpointService<Logout, B>);

endpoint_service!(LogoutService);

/// The endpoint of a [`LogoutService`].
#[derive(Clone)]
pub(crate) struct Logout {
    sessions: Sessions,
    action: Action,
    form_redirect: Option<HeaderValue>,
    session_id: SessionIdSource,
}

impl std::fmt::Debug for Logout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logout")
            .field("action", &self.action)
            .field("form_redirect", &self.form_redirect)
            .finish_non_exhaustive()
    }
}

/// Revokes the current session (and any other that a genuine credential in the request names)
/// and strips both cookies.
pub fn logout(sessions: &Sessions) -> LogoutService {
    LogoutService::new(sessions, Action::Logout)
}

/// Revokes every session of the current user and strips both cookies.
pub fn logout_everywhere(sessions: &Sessions) -> LogoutService {
    LogoutService::new(sessions, Action::LogoutEverywhere)
}

/// Revokes every session of the current user except the current one ("sign out my other
/// devices"), which stays signed in with its cookies untouched. A request without a session
/// answers `401`.
pub fn logout_others(sessions: &Sessions) -> LogoutService {
    LogoutService::new(sessions, Action::LogoutOthers)
}

/// Revokes one of the current user's sessions by id; another user's (or an unknown) id answers
/// `404`, a request without a session `401`. The id is read from the path segment before a
/// trailing `/revoke`, or else the last segment (`/api/sessions/{session_id}/revoke`,
/// `/sessions/{session_id}`); see [`session_id_from`](LogoutService::session_id_from).
/// Revoking the current session also strips its cookies.
pub fn revoke_session(sessions: &Sessions) -> LogoutService {
    LogoutService::new(sessions, Action::RevokeById)
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

impl LogoutService {
    fn new(sessions: &Sessions, action: Action) -> Self {
        LogoutService(EndpointService::new(Logout {
            sessions: sessions.clone(),
            action,
            form_redirect: None,
            session_id: Arc::new(id_from_path),
        }))
    }
}

impl<B> LogoutService<B> {
    /// Answers HTML form posts (`application/x-www-form-urlencoded`) with `303 See Other` to
    /// `location`, so a browser page reloads; other clients still get `204`.
    pub fn redirect_forms_to(mut self, location: &'static str) -> Self {
        self.0.endpoint.form_redirect = Some(HeaderValue::from_static(location));
        self
    }

    /// Reads the session id to revoke with `source` instead of from the path.
    pub fn session_id_from(
        mut self,
        source: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.0.endpoint.session_id = Arc::new(source);
        self
    }
}

impl Endpoint for Logout {
    const METHODS: &'static [Method] = &[Method::POST, Method::DELETE];

    async fn respond(&self, parts: Parts) -> Response<String> {
        let sessions = &self.sessions;
        if crate::http::csrf::is_cross_site(sessions, &parts) {
            return plain(StatusCode::FORBIDDEN);
        }
        let current = match parts.extensions.get::<CurrentSession>() {
            Some(current) => Some(current.0.clone()),
            // Without the layer in front (or when it let the request through anonymously),
            // the handler reads the credentials itself.
            None => match read(&parts.headers, sessions.settings()) {
                Ok(credentials) => match sessions.authenticate(&credentials).await {
                    Ok(outcome) => Some(outcome.session),
                    Err(AuthError::Store(e)) => return AuthError::Store(e).to_response(),
                    Err(_) => None,
                },
                Err(_) => None,
            },
        };
        let result: Result<bool, SessionError> = match self.action {
            Action::Logout | Action::LogoutEverywhere => {
                let presented = presented(&parts.headers, sessions.settings());
                let everywhere = self.action == Action::LogoutEverywhere;
                sessions
                    .logout(current.as_deref(), &presented, everywhere)
                    .await
                    .map(|()| true)
            }
            Action::LogoutOthers => {
                let Some(current) = current else {
                    return AuthError::MissingCredentials.to_response();
                };
                sessions
                    .revoke_others(&current)
                    .await
                    .map(|_| false)
                    .map_err(SessionError::from)
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
                    Err(e) => Err(e.into()),
                }
            }
        };
        match result {
            Ok(strip) => self.success(&parts, strip),
            Err(error) => crate::http::refusal::session_refusal(&error),
        }
    }
}

impl Logout {
    fn success(&self, parts: &Parts, strip: bool) -> Response<String> {
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
        if strip && allows_session_cookies(&parts.headers) {
            let headers = response.headers_mut();
            for cookie in stripping_cookies(&self.sessions, parts) {
                headers.append(SET_COOKIE, cookie);
            }
        }
        response
    }
}

/// Removal cookies for both session cookies at `Path=/` and, when the request carried one of
/// them twice (a cookie tossed in with a narrower path), at every path prefix of the request's
/// path too, which is where such a cookie can live and still be sent here.
fn stripping_cookies(sessions: &Sessions, parts: &Parts) -> Vec<HeaderValue> {
    let cookies = &sessions.settings().cookies;
    let mut out = removal_cookies(cookies).to_vec();
    let mut seen = [0usize; 2];
    let _ = each_presented(&parts.headers, sessions.settings(), |kind, _, source| {
        if source == CredentialSource::Cookie {
            seen[kind as usize] += 1;
        }
        true
    });
    // Only plain paths: a `;` would add attributes to the removal cookie.
    let path = parts.uri.path();
    let plain_path = path
        .bytes()
        .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'"' | b'\\'));
    if seen.iter().any(|n| *n > 1) && plain_path {
        let prefixes = path
            .match_indices('/')
            .skip(1)
            .map(|(i, _)| &path[..i])
            .chain((path.len() > 1).then_some(path.trim_end_matches('/')))
            .take(8);
        for prefix in prefixes {
            for name in [cookies.token_name(), cookies.jwt_name()] {
                out.push(removal(cookies, &name, prefix));
            }
        }
    }
    out
}

/// An empty answer with `Cache-Control: no-store`.
fn plain(status: StatusCode) -> Response<String> {
    crate::http::refusal::Refusal::new(status).empty()
}
