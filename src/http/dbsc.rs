//! Device-bound sessions: [Device Bound Session Credentials][dbsc] (DBSC), server side.
//!
//! A bearer cookie works for whoever copies it. With DBSC the browser keeps a private key that
//! no page can read, and proves possession of it whenever the short-lived cookie is refreshed.
//! This crate's model already is "long-lived credential + short-lived JWT cookie re-minted by
//! the server", so the JWT cookie becomes the *bound* credential:
//!
//! 1. With [`SessionsBuilder::device_binding`](crate::SessionsBuilder::device_binding), a
//!    [login](crate::login::login) offers registration (`Secure-Session-Registration`, with a
//!    challenge stored on the new session).
//! 2. The browser posts a signed proof to the [`registration`] handler, which verifies it
//!    (ES256 or RS256, our challenge, recent, single use), stores the public key on the
//!    session, and answers with the session config and a fresh JWT cookie.
//! 3. **From then on the opaque token alone re-mints nothing**: the layer's store fallback
//!    refuses a bound session ([`AuthError::DeviceBound`](crate::AuthError::DeviceBound)).
//!    Before the JWT cookie expires, the browser asks the [`refresh`] handler for a new one,
//!    proving possession of its key over a challenge this server issued. Copied cookies
//!    therefore stop working within one JWT lifetime.
//!
//! Sessions of browsers without DBSC, and API clients, are never bound and keep the usual
//! behaviour. Binding, refresh and unbinding are [session events](crate::events::SessionEventKind);
//! revocation ends a bound session at once like any other.
//!
//! Challenges live on the session record in the store, so a challenge is single use across
//! every instance: consuming it is the store's compare-and-swap update.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! use axum::{Router, routing::post_service};
//! use tower_session_jwt::dbsc;
//! use tower_session_jwt::sessions::DbscConfig;
//! use tower_session_jwt::{MemoryStore, SessionLayer, Sessions, SigningKey};
//!
//! let sessions = Sessions::builder()
//!     .store(MemoryStore::new())
//!     .signing_key(SigningKey::generate_ed25519().unwrap())
//!     .device_binding(DbscConfig::new()) // registration at /dbsc/register, refresh at /dbsc/refresh
//!     .build()
//!     .unwrap();
//! let app: Router = Router::new()
//!     // ... the application's routes ...
//!     .layer(SessionLayer::new(sessions.clone()))
//!     // Outside the layer: a bound browser comes here exactly when the layer would refuse
//!     // its token alone.
//!     .route("/dbsc/register", post_service(dbsc::registration(&sessions)))
//!     .route("/dbsc/refresh", post_service(dbsc::refresh(&sessions)));
//! # let _ = app; });
//! ```
//!
//! [dbsc]: https://w3c.github.io/webappsec-dbsc/

use std::time::Duration;

use axum_core::body::Body;
use http::header::CONTENT_TYPE;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Response, StatusCode};
use serde_json::json;

use super::cookies::{append_set_cookies, changed_cookies};
use super::credentials::read;
use crate::data::session::{Session, SessionId};
use crate::engine::Sessions;
use crate::engine::error::{AuthError, SessionError};
use crate::engine::{CredentialSource, DbscConfig};
use crate::http::endpoint::{Endpoint, EndpointService, endpoint_service};
use crate::http::refusal::{Refusal, json_refusal};
use crate::proof::unquote;

/// The response header that offers registration.
pub const REGISTRATION_HEADER: &str = "secure-session-registration";
/// The request header that carries a proof.
pub const RESPONSE_HEADER: &str = "secure-session-response";
/// The response header that hands the browser a challenge to sign.
pub const CHALLENGE_HEADER: &str = "secure-session-challenge";
/// The request header naming the session a refresh is for.
pub const SESSION_ID_HEADER: &str = "sec-secure-session-id";

/// `Secure-Session-Registration` offering registration for `session_id` with `challenge`.
pub(crate) fn registration_offer(
    config: &DbscConfig,
    session_id: &SessionId,
    challenge: &str,
) -> HeaderValue {
    let algorithms: Vec<&str> = config.algorithms.iter().map(|a| a.as_str()).collect();
    let value = format!(
        r#"({});path="{}";challenge="{}";authorization="{}""#,
        algorithms.join(" "),
        config.registration_path,
        challenge,
        session_id
    );
    // Paths are validated at build time; challenges and ids are base64url.
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Secure-Session-Challenge: "<challenge>";id="<session id>"`.
pub(crate) fn challenge_header(session_id: &SessionId, challenge: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(r#""{challenge}";id="{session_id}""#))
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Registration,
    Refresh,
}

/// A DBSC endpoint; build one with [`registration`] or [`refresh`] and mount it (axum:
/// `post_service`) at the path configured in [`DbscConfig`](crate::sessions::DbscConfig).
///
/// Both answer `405` to methods other than `POST`, `401` when the request's session token
/// cookie names no live session (registration needs one; a refresh is authenticated by the
/// device's proof, and a token cookie beside it must name the session `Sec-Secure-Session-Id`
/// names: a browser's stale binding to an older login must not bring that login back), and
/// `503` with `Retry-After` when the store fails (the browser retries later).
/// Error bodies are JSON `{"error": …, "error_description": …}`.
///
/// Responses have bodies of type `B` (axum's `Body` by default; see
/// [`with_body`](DbscHandler::with_body) for hyper stacks).
pub struct DbscHandler<B = Body>(EndpointService<Dbsc, B>);

endpoint_service!(DbscHandler);

/// The endpoint of a [`DbscHandler`].
#[derive(Clone)]
pub(crate) struct Dbsc {
    sessions: Sessions,
    step: Step,
}

impl std::fmt::Debug for Dbsc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dbsc")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}

/// The registration endpoint: verifies the browser's proof (`Secure-Session-Response`) for the
/// session its token cookie names, binds the session to the proof's key
/// ([`Sessions::bind_device`]) and answers `200` with the session config (the JWT cookie as
/// the bound credential), a fresh JWT cookie and the next challenge. A refused proof answers
/// `400` with its [reason](crate::proof::ProofError::reason).
///
/// # Example
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use tower::ServiceExt as _;
/// use tower_session_jwt::dbsc;
/// use tower_session_jwt::sessions::DbscConfig;
/// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
///
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .device_binding(DbscConfig::new())
///     .build()
///     .unwrap();
/// // Without a session cookie there is nothing to bind.
/// let request = http::Request::post("/dbsc/register")
///     .header("secure-session-response", "x.y.z")
///     .body(axum::body::Body::empty())
///     .unwrap();
/// let response = dbsc::registration(&sessions).oneshot(request).await.unwrap();
/// assert_eq!(response.status(), 401);
/// # });
/// ```
pub fn registration(sessions: &Sessions) -> DbscHandler {
    DbscHandler::new(sessions, Step::Registration)
}

/// The refresh endpoint (`Sec-Secure-Session-Id` names the session). Without a proof it
/// answers `403` with a challenge (`Secure-Session-Challenge`); with a proof that verifies with
/// the session's device key over its current challenge it answers `200` with a fresh JWT
/// cookie and the next challenge (sparing the next `403`). It never sets the token cookie: a
/// refresh of an older session, in flight while the browser signs in again, must not put that
/// session's token back over the new login's. An unknown, used or expired
/// challenge answers `403` with a fresh one; any other refused proof `401`, which ends the
/// browser's binding.
pub fn refresh(sessions: &Sessions) -> DbscHandler {
    DbscHandler::new(sessions, Step::Refresh)
}

impl DbscHandler {
    fn new(sessions: &Sessions, step: Step) -> Self {
        DbscHandler(EndpointService::new(Dbsc {
            sessions: sessions.clone(),
            step,
        }))
    }
}

impl Endpoint for Dbsc {
    const METHODS: &'static [Method] = &[Method::POST];

    async fn respond(&self, parts: Parts) -> Response<String> {
        // The one rule for session cookies holds here too: a request that presents
        // `Authorization: Bearer` (never a browser's own DBSC request) gets none.
        let cookies_allowed = crate::http::credentials::allows_session_cookies(&parts.headers);
        let mut response = self.handle(parts).await;
        if !cookies_allowed {
            crate::http::cookies::remove_session_cookies(
                self.sessions.settings(),
                response.headers_mut(),
            );
        }
        response
    }

    fn answered(&self, status: StatusCode, took: Duration) {
        let step = match self.step {
            Step::Registration => "registration",
            Step::Refresh => "refresh",
        };
        crate::engine::metrics::dbsc(step, status.as_u16(), took);
    }
}

impl Dbsc {
    async fn handle(&self, parts: Parts) -> Response<String> {
        let sessions = &self.sessions;
        let proof = match header_text(&parts.headers, RESPONSE_HEADER) {
            Ok(proof) => proof,
            Err(()) => {
                return refusal(
                    StatusCode::BAD_REQUEST,
                    "malformed_proof",
                    "Secure-Session-Response is not valid",
                );
            }
        };
        let found = match cookie_session(sessions, &parts.headers).await {
            Ok(found) => found,
            Err(response) => return response,
        };
        match self.step {
            // Registration ties the key to the session the cookies name: the token cookie is
            // required.
            Step::Registration => match found {
                CookieSession::Found(session) => register(sessions, &session, proof).await,
                _ => refusal(
                    StatusCode::UNAUTHORIZED,
                    "unknown_session",
                    "no live session for this request's session cookie",
                ),
            },
            // A refresh is authenticated by the device's proof for the session it names; a
            // token cookie, when the browser sends one, must name that same session.
            Step::Refresh => {
                let Some(id) = header_text(&parts.headers, SESSION_ID_HEADER)
                    .ok()
                    .flatten()
                    .and_then(|id| SessionId::parse(unquote(id.trim())).ok())
                else {
                    return refusal(
                        StatusCode::BAD_REQUEST,
                        "invalid_request",
                        "Sec-Secure-Session-Id is missing or malformed",
                    );
                };
                match found {
                    CookieSession::Found(session) if session.session_id == id => {}
                    CookieSession::Found(_) => {
                        return refusal(
                            StatusCode::UNAUTHORIZED,
                            "session_mismatch",
                            "the session cookie belongs to another session",
                        );
                    }
                    CookieSession::Unknown => {
                        return refusal(
                            StatusCode::UNAUTHORIZED,
                            "unknown_session",
                            "the session cookie names no live session",
                        );
                    }
                    CookieSession::Absent => {}
                }
                refresh_session(sessions, &id, proof).await
            }
        }
    }
}

/// What the request's token cookie names.
enum CookieSession {
    /// No token cookie (or an unreadable `Cookie` header).
    Absent,
    /// A token cookie that names no live session.
    Unknown,
    /// The live, unrevoked session it names (bound or not).
    Found(Box<Session>),
}

/// The session the request's token cookie names; `Err` with the response for a store failure.
async fn cookie_session(
    sessions: &Sessions,
    headers: &HeaderMap,
) -> Result<CookieSession, Response<String>> {
    let Ok(credentials) = read(headers, sessions.settings()) else {
        return Ok(CookieSession::Unknown);
    };
    let Some((token, CredentialSource::Cookie)) = credentials.token() else {
        return Ok(CookieSession::Absent);
    };
    match sessions.session_for_token(token).await {
        Ok(Some(session)) => Ok(CookieSession::Found(Box::new(session))),
        Ok(None) => Ok(CookieSession::Unknown),
        Err(error) => Err(store_failure(error)),
    }
}

async fn register(sessions: &Sessions, session: &Session, proof: Option<&str>) -> Response<String> {
    let Some(proof) = proof else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "missing_proof",
            "registration needs Secure-Session-Response",
        );
    };
    let changed = match sessions.bind_device(&session.session_id, proof).await {
        Ok(changed) => changed,
        Err(error) => return session_failure(error),
    };
    let config = sessions.dbsc_config();
    let settings = sessions.settings();
    let cookies = &settings.cookies;
    let mut attributes = String::from("Path=/");
    if let Some(domain) = cookies.cookie_domain() {
        attributes.push_str("; Domain=");
        attributes.push_str(domain);
    }
    attributes.push_str("; Secure; HttpOnly; SameSite=Lax");
    let scope: Vec<_> = config
        .excluded_paths
        .iter()
        .map(|path| json!({"type": "exclude", "domain": "*", "path": path}))
        .collect();
    let body = json!({
        "session_identifier": changed.session.session_id,
        "refresh_url": config.refresh_path,
        "scope": {"include_site": false, "scope_specification": scope},
        "credentials": [{
            "type": "cookie",
            "name": settings.jwt_cookie,
            "attributes": attributes,
        }],
    });
    let mut response = respond(StatusCode::OK, body.to_string());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    append_set_cookies(headers, changed_cookies(sessions.settings(), &changed));
    next_challenge(headers, &changed.session);
    response
}

async fn refresh_session(
    sessions: &Sessions,
    id: &SessionId,
    proof: Option<&str>,
) -> Response<String> {
    let Some(proof) = proof else {
        return challenge(sessions, id).await;
    };
    let changed = match sessions.refresh_device(id, proof).await {
        Ok(changed) => changed,
        Err(SessionError::DeviceProof(error)) if error.is_challenge() => {
            return challenge(sessions, id).await;
        }
        Err(SessionError::DeviceProof(error)) => {
            return refusal(StatusCode::UNAUTHORIZED, error.reason(), &error.to_string());
        }
        Err(error) => return session_failure(error),
    };
    let mut response = respond(StatusCode::OK, String::new());
    let headers = response.headers_mut();
    // Only the bound JWT cookie: a refresh never sets the token cookie. A refresh for an older
    // session that was in flight while the browser signed in again would otherwise put that
    // session's token back over the new login's (the browser would land in the older account).
    // A bound session does not need its token cookie to live on: the device's proof refreshes it.
    append_set_cookies(headers, changed_cookies(sessions.settings(), &changed));
    next_challenge(headers, &changed.session);
    response
}

/// `403` with a challenge to sign.
async fn challenge(sessions: &Sessions, id: &SessionId) -> Response<String> {
    match sessions.device_challenge(id).await {
        Ok(challenge) => {
            let mut response = respond(StatusCode::FORBIDDEN, String::new());
            response
                .headers_mut()
                .insert(CHALLENGE_HEADER, challenge_header(id, &challenge));
            response
        }
        Err(SessionError::DeviceProof(error)) => {
            refusal(StatusCode::UNAUTHORIZED, error.reason(), &error.to_string())
        }
        Err(error) => session_failure(error),
    }
}

fn next_challenge(headers: &mut HeaderMap, session: &Session) {
    if let Some(challenge) = session
        .device_binding
        .as_ref()
        .and_then(|b| b.challenge.as_ref())
    {
        headers.insert(
            CHALLENGE_HEADER,
            challenge_header(&session.session_id, &challenge.value),
        );
    }
}

/// A header's value as text: `Ok(None)` when absent, `Err` when repeated or not visible ASCII.
fn header_text<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, ()> {
    let mut values = headers.get_all(name).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(());
    }
    value.to_str().map(Some).map_err(|_| ())
}

fn session_failure(error: SessionError) -> Response<String> {
    match error {
        SessionError::DeviceProof(error) => {
            refusal(StatusCode::BAD_REQUEST, error.reason(), &error.to_string())
        }
        SessionError::UnknownSession => refusal(
            StatusCode::UNAUTHORIZED,
            "unknown_session",
            "the session does not exist or has ended",
        ),
        SessionError::Store(error) => store_failure(AuthError::Store(error)),
        other => refusal(other.status(), "server_error", &other.to_string()),
    }
}

fn store_failure(error: AuthError) -> Response<String> {
    json_refusal(
        StatusCode::SERVICE_UNAVAILABLE,
        error.reason(),
        "session store unavailable",
        true,
    )
}

fn refusal(status: StatusCode, error: &str, description: &str) -> Response<String> {
    json_refusal(status, error, description, false)
}

fn respond(status: StatusCode, body: String) -> Response<String> {
    Refusal::new(status).body(body)
}
