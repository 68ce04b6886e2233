//! `SessionLayer` over a plain hyper 1 service: no axum, just `tower::service_fn`.
//!
//! ```text
//! cargo run --example hyper_service            # listens on $ADDR, default 127.0.0.1:3001
//!
//! # log in (any user name; the demo password is "demo"): sets both cookies, answers with them
//! curl -i -c jar -X POST localhost:3001/login -d '{"user":"alice","password":"demo"}'
//! # who am I? (the JWT cookie is checked locally, no store call)
//! curl -i -b jar localhost:3001/me
//! # the same with a bearer credential instead of cookies
//! curl -i -H "Authorization: Bearer <session_token or session_jwt>" localhost:3001/me
//! # log out: revokes the session and strips both cookies
//! curl -i -b jar -c jar -X POST localhost:3001/logout
//! curl -i -b jar localhost:3001/me             # 401 again
//! ```
//!
//! The layer is *optional*: `/login` and `/logout` must be reachable without a session (a
//! required layer would answer `401` before `/logout` could strip stale cookies), so `/me`
//! checks for the [`CurrentSession`] itself. Cookies are not `Secure` here so that they travel
//! over plain `http://localhost`; keep the default (`Secure`) behind TLS.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, WWW_AUTHENTICATE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::json;
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt};
use tower_session_jwt::layer::CurrentSession;
use tower_session_jwt::login::PeerAddr;
use tower_session_jwt::logout::{LogoutService, logout};
use tower_session_jwt::sessions::CookieConfig;
use tower_session_jwt::{MemoryStore, NewSession, SessionLayer, Sessions, SigningKey};

/// The response body of every route. The layer needs `Default` for its own (rejection) answers.
pub type Body = Full<Bytes>;

/// Largest login request body read.
const MAX_LOGIN_BODY: usize = 4 * 1024;

/// The whole application: the routes behind an optional [`SessionLayer`].
///
/// Generic over the request body so that hyper (`Incoming`) and tests (`Full<Bytes>`, `String`)
/// can call it alike.
pub fn service<B>(
    sessions: Sessions,
) -> impl Service<Request<B>, Response = Response<Body>, Error = Infallible, Future: Send>
+ Clone
+ Send
+ 'static
where
    B: http_body::Body<Data: Send, Error: std::error::Error + Send + Sync> + Send + 'static,
{
    let logout = logout(&sessions).with_body::<Body>();
    SessionLayer::<Body>::new(sessions)
        .optional()
        .layer(tower::service_fn(move |request| {
            route::<B>(logout.clone(), request)
        }))
}

async fn route<B>(
    logout: LogoutService<Body>,
    request: Request<B>,
) -> Result<Response<Body>, Infallible>
where
    B: http_body::Body<Data: Send, Error: std::error::Error + Send + Sync> + Send + 'static,
{
    Ok(match (request.method(), request.uri().path()) {
        (&Method::POST, "/login") => login(request).await,
        (_, "/me") => me(&request),
        // The logout handler answers 405 itself for methods other than POST and DELETE.
        (_, "/logout") => logout.oneshot(request).await.unwrap_or_else(|e| match e {}),
        (_, "/login") => text(StatusCode::METHOD_NOT_ALLOWED, "use POST\n"),
        _ => text(StatusCode::NOT_FOUND, "not found\n"),
    })
}

/// `POST /login` with `{"user": "...", "password": "demo"}`: creates a session, sets both
/// cookies and returns both credentials (for clients that send `Authorization: Bearer`).
async fn login<B>(request: Request<B>) -> Response<Body>
where
    B: http_body::Body<Data: Send, Error: std::error::Error + Send + Sync> + Send + 'static,
{
    // The layer leaves its `Sessions` in the extensions of every request it lets through.
    let Some(sessions) = tower_session_jwt::layer::sessions(request.extensions()).cloned() else {
        return text(StatusCode::INTERNAL_SERVER_ERROR, "no SessionLayer\n");
    };
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_LOGIN_BODY).collect().await {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<LengthLimitError>() => {
            return text(StatusCode::PAYLOAD_TOO_LARGE, "body too large\n");
        }
        Err(_) => return text(StatusCode::BAD_REQUEST, "could not read the body\n"),
    };
    let form: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let (Some(user), Some(password)) = (form["user"].as_str(), form["password"].as_str()) else {
        return text(
            StatusCode::BAD_REQUEST,
            "expected {\"user\":…,\"password\":…}\n",
        );
    };
    // Demo only: check the user's credentials against your user database here.
    if password != "demo" {
        return text(StatusCode::UNAUTHORIZED, "wrong password\n");
    }
    // Records the client IP (from `PeerAddr`, which `serve` inserts) and the User-Agent.
    let login =
        match tower_session_jwt::login::login(&sessions, &parts, user, NewSession::new()).await {
            Ok(login) => login,
            Err(e) => return text(StatusCode::SERVICE_UNAVAILABLE, &format!("{e}\n")),
        };
    let created = &login.created;
    let mut response = json_response(
        StatusCode::OK,
        &json!({
            "user_id": created.session.user_id,
            "session_id": created.session.session_id,
            "expires_at": created.session.expires_at.unix_timestamp(),
            "attributes": created.session.attributes,
            "session_token": created.token.expose(),
            "session_jwt": created.jwt.expose(),
        }),
    );
    login.set_cookies(&mut response);
    response
}

/// `GET /me`: the current session as JSON, or `401` without one.
fn me<B>(request: &Request<B>) -> Response<Body> {
    match request.extensions().get::<CurrentSession>() {
        // The client's view of the session: never a pending device-binding challenge.
        Some(current) => json_response(StatusCode::OK, &json!(current.public_view())),
        None => {
            let mut response = text(StatusCode::UNAUTHORIZED, "not signed in\n");
            let challenge = HeaderValue::from_static("Bearer");
            response.headers_mut().insert(WWW_AUTHENTICATE, challenge);
            response
        }
    }
}

fn text(status: StatusCode, body: &str) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::copy_from_slice(body.as_bytes())));
    *response.status_mut() = status;
    let plain = HeaderValue::from_static("text/plain; charset=utf-8");
    response.headers_mut().insert(CONTENT_TYPE, plain);
    response
}

fn json_response(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves [`service`] on `listener` with hyper's HTTP/1 server, one task per connection; each
/// request gets the connection's [`PeerAddr`] so that logins record the client IP.
pub async fn serve(listener: TcpListener, sessions: Sessions) -> std::io::Result<()> {
    let app = service::<hyper::body::Incoming>(sessions);
    loop {
        let (stream, peer) = listener.accept().await?;
        let app = app.clone().map_request(move |mut request: Request<_>| {
            request.extensions_mut().insert(PeerAddr(peer));
            request
        });
        tokio::spawn(async move {
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            if let Err(e) = connection.await {
                eprintln!("connection from {peer}: {e}");
            }
        });
    }
}

/// `Sessions` for local development over plain HTTP.
pub fn dev_sessions() -> Sessions {
    Sessions::builder()
        .store(MemoryStore::new())
        .signing_key(SigningKey::generate_ed25519().expect("generate a signing key"))
        .issuer("http://localhost:3001")
        .audience("hyper-example")
        .cookies(CookieConfig::default().secure(false))
        .build()
        .expect("valid session configuration")
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr: SocketAddr = std::env::var("ADDR")
        .unwrap_or_else(|_| "127.0.0.1:3001".into())
        .parse()
        .map_err(std::io::Error::other)?;
    let listener = TcpListener::bind(addr).await?;
    println!("listening on http://{}", listener.local_addr()?);
    serve(listener, dev_sessions()).await
}
