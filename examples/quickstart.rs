//! The README's whole program: an axum app with its sessions in SQLite, a login, a protected
//! route, a claims change and a logout.
//!
//! ```sh
//! cargo run --example quickstart
//! curl -s -c jar -H 'content-type: application/json' -d '{"user":"alice","password":"pw"}' \
//!      http://127.0.0.1:3000/login
//! curl -s -b jar http://127.0.0.1:3000/me
//! curl -s -b jar -c jar -X POST http://127.0.0.1:3000/promote
//! curl -s -b jar -c jar -X POST http://127.0.0.1:3000/logout
//! ```

use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, post_service};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower_session_jwt::cookies::SessionCookies;
use tower_session_jwt::logout::logout;
use tower_session_jwt::sessions::SessionChange;
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::{NewSession, Session, SessionError, SessionLayer, Sessions, SigningKey};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let sessions = Sessions::builder()
        .store(SqliteStore::open("quickstart.db").await?)
        // In production, load a key every instance shares: SigningKey::ed25519_pem(..).
        .signing_key(SigningKey::generate_ed25519()?)
        .issuer("http://127.0.0.1:3000")
        .audience("quickstart")
        .build()?;
    sessions.ready().await; // caught up with the store's revocation feed

    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    axum::serve(listener, app(&sessions)).await?;
    Ok(())
}

/// The routes, for `main` and for tests.
pub fn app(sessions: &Sessions) -> Router {
    Router::new()
        .route("/login", post(login))
        .route("/me", get(me))
        .route("/promote", post(promote))
        .route("/logout", post_service(logout(sessions)))
        // Last, so that it runs in front of every route above. `optional()` lets requests
        // without a session reach the handlers (the `Session` extractor still answers 401).
        .layer(SessionLayer::new(sessions.clone()).optional())
}

#[derive(Deserialize)]
struct LoginBody {
    user: String,
    password: String,
}

/// Checks the password (yours to write), then creates the session: both cookies for a browser,
/// the credentials in the body for an API client.
async fn login(
    sessions: Sessions,
    parts: Parts,
    Json(body): Json<LoginBody>,
) -> Result<Response, SessionError> {
    if body.password.is_empty() {
        return Ok(axum::http::StatusCode::UNAUTHORIZED.into_response());
    }
    let logged_in =
        tower_session_jwt::login::login(&sessions, &parts, body.user, NewSession::new()).await?;
    let created = &logged_in.created;
    let mut response = Json(json!({
        "user_id": created.session.user_id,
        "session_token": created.token.expose(),
        "session_jwt": created.jwt.expose(),
    }))
    .into_response();
    logged_in.set_cookies(&mut response);
    Ok(response)
}

/// Protected: the `Session` extractor answers 401 without a valid session.
async fn me(session: Session) -> Json<serde_json::Value> {
    Json(json!({ "user_id": session.user_id, "claims": session.custom_claims }))
}

/// Changes the session's claims: JWTs minted before fail at once; the new one goes back as a
/// cookie to a browser (and nothing to a client that uses `Authorization`).
async fn promote(
    sessions: Sessions,
    session: Session,
    cookies: SessionCookies,
) -> Result<Response, SessionError> {
    let change = SessionChange::new().claims(json!({ "role": "admin" }));
    let changed = sessions.change(&session.session_id, change).await?;
    let mut response = Json(json!({ "claims": changed.session.custom_claims })).into_response();
    cookies.set(&mut response, &changed);
    Ok(response)
}
