//! A complete axum app with revocable sessions: login, "your devices", revoke one device,
//! logout and logout everywhere, over cookies (browsers) and `Authorization: Bearer` (APIs).
//!
//! It shows:
//!
//! * one [`SessionLayer`] in optional mode over the whole router, with handlers that require a
//!   session through the [`Session`] / [`CurrentSession`] extractors (so logout still works with
//!   stale or garbage credentials, and strips them);
//! * [`Sessions::login`] recording the client's IP address and user agent and setting both cookies
//!   (the opaque `session_token` and the short-lived `session_jwt`);
//! * the ready-made [`logout`], [`logout_everywhere`] and [`revoke_session`] services;
//! * the JWKS document other services can verify session JWTs with.
//!
//! The app trusts the posted `user_id`: it demonstrates sessions, not password checking.
//!
//! # Run
//!
//! ```sh
//! cargo run --example axum_app                                 # http://127.0.0.1:3000
//! ADDR=0.0.0.0:8080 JWT_TTL_SECS=60 cargo run --example axum_app
//! SIGNING_KEY_FILE=key.pem cargo run --example axum_app        # share the key between instances
//! STORE=memory cargo run --example axum_app                     # sessions in memory only
//! REDIS_URL=redis://127.0.0.1/ cargo run --example axum_app --features redis
//! DATABASE_URL=postgres://postgres@127.0.0.1/test cargo run --example axum_app --features postgres
//! ```
//!
//! | variable | effect |
//! |---|---|
//! | `ADDR` | listen address (default `127.0.0.1:3000`) |
//! | `JWT_TTL_SECS` | session JWT lifetime (default 300, Stytch's 5 minutes) |
//! | `SESSION_TTL_SECS` | session lifetime, extended by activity (sliding; default 604800, 7 days) |
//! | `TRUSTED_ORIGINS` | comma-separated origins (`https://app.example`) allowed to post to `/login` and the logout routes besides the app's own |
//! | `SIGNING_KEY_FILE` | an Ed25519 `PRIVATE KEY` PEM; without it a key is generated at start, so JWTs from an earlier run (or another instance) fail over to the opaque token |
//! | `SESSIONS_DB` | the SQLite file sessions are kept in (default `sessions.db` in the working directory): the default store, so a restart keeps everyone signed in |
//! | `DATABASE_URL` | keep sessions in PostgreSQL instead (`postgres://…`, needs `--features postgres`) |
//! | `REDIS_URL` | keep sessions in Redis instead (needs `--features redis`) |
//! | `STORE=memory` | keep sessions in memory (lost on restart) |
//! | `INSECURE_COOKIES=1` | drop the `Secure` cookie attribute |
//!
//! ## Cookies and plain HTTP
//!
//! The cookies are `Secure` and named with the `__Host-` prefix by default (`__Host-session_token`,
//! `__Host-session_jwt`): browsers then refuse such cookies from a sibling subdomain or over
//! plain HTTP, so nobody can toss a cookie of that name in beside the user's. Browsers (Chrome,
//! Firefox, Safari) and curl (7.79 and later) treat `http://localhost` and `http://127.0.0.1` as
//! secure, so these cookies work there as is. Over plain HTTP to any other host (say `ADDR=0.0.0.0:3000` reached through a LAN
//! address) clients drop them: put TLS in front, or set `INSECURE_COOKIES=1` for an experiment,
//! never in production (the cookies are then plain `session_token` and `session_jwt`, since the
//! prefix requires `Secure`).
//!
//! # Try it with curl
//!
//! ```sh
//! cargo run --example axum_app &
//! B=http://127.0.0.1:3000
//!
//! # Log in (JSON): both cookies go into the jar, the credentials are in the body too.
//! curl -s -c jar -b jar -H 'content-type: application/json' \
//!      -d '{"user_id":"alice","custom_claims":{"role":"admin"}}' $B/login | tee login.json
//! SESSION_JWT=$(jq -r .session_jwt login.json); SESSION_TOKEN=$(jq -r .session_token login.json)
//!
//! # A second device (a form post, as the page sends it): 303 to /.
//! curl -s -c jar2 -b jar2 -d user_id=alice $B/login
//!
//! # Who am I: with the cookie jar, or with a bearer credential (the JWT or the opaque token).
//! curl -s -b jar $B/api/me
//! curl -s -H "authorization: Bearer $SESSION_JWT" $B/api/me
//! curl -s -H "authorization: Bearer $SESSION_TOKEN" $B/api/me
//!
//! # Your devices, then revoke the other one: both its token and its JWT fail at once.
//! curl -s -b jar $B/api/sessions
//! SESSION_ID=$(curl -s -b jar $B/api/sessions | jq -r '.sessions[] | select(.current | not) | .session_id')
//! curl -si -b jar -X POST $B/api/sessions/$SESSION_ID/revoke     # 204, or 404 if not yours
//! curl -si -b jar2 $B/api/me                                     # 401
//!
//! # Log out (this device), or everywhere; both strip the cookies.
//! curl -si -b jar -c jar -X POST $B/logout
//! curl -si -b jar -c jar -X POST $B/logout/all
//!
//! # The public keys that verify session JWTs.
//! curl -s $B/.well-known/jwks.json
//! ```

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{ConnectInfo, FromRequest, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post, post_service};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use tower_session_jwt::logout::{logout, logout_everywhere, revoke_session};
use tower_session_jwt::{
    AuthError, CookieConfig, CurrentSession, MemoryStore, NewSession, Session, SessionError,
    SessionLayer, Sessions, SessionsBuilder, SigningKey, StoreError,
};

/// The app's routes, behind one optional [`SessionLayer`].
pub fn app(sessions: Sessions) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/login", post(login))
        .route("/api/me", get(me))
        .route("/api/sessions", get(list_sessions))
        // The ready-made services: `204` for API clients, `303 /` for the page's form posts.
        .route(
            "/api/sessions/{session_id}/revoke",
            post_service(revoke_session(&sessions).redirect_forms_to("/")),
        )
        .route(
            "/logout",
            post_service(logout(&sessions).redirect_forms_to("/")),
        )
        .route(
            "/logout/all",
            post_service(logout_everywhere(&sessions).redirect_forms_to("/")),
        )
        .route("/.well-known/jwks.json", get(jwks))
        // Optional: anonymous requests reach `/`, `/login` and the logout routes; handlers that
        // need a session say so with their extractors.
        .layer(SessionLayer::new(sessions).optional())
}

#[tokio::main]
async fn main() {
    let addr: SocketAddr = match std::env::var("ADDR") {
        Ok(addr) => addr
            .parse()
            .unwrap_or_else(|e| fail(format!("ADDR={addr:?}: {e}"))),
        Err(_) => SocketAddr::from(([127, 0, 0, 1], 3000)),
    };
    let insecure_cookies = std::env::var("INSECURE_COOKIES").is_ok_and(|v| v == "1");

    let sessions = configure(with_store(Sessions::builder()).await, insecure_cookies)
        .build()
        .unwrap_or_else(|e| fail(format!("invalid session configuration: {e}")));
    // With a store that has a revocation feed, trust JWTs only once caught up with it.
    sessions.ready().await;

    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| fail(format!("cannot listen on {addr}: {e}")));
    let local = listener.local_addr().unwrap_or(addr);
    println!("listening on http://{local}");
    if !local.ip().is_loopback() && !insecure_cookies {
        println!(
            "  cookies are Secure: over plain HTTP, clients keep them only for localhost; \
             use TLS, or INSECURE_COOKIES=1 for an experiment"
        );
    }

    axum::serve(
        listener,
        app(sessions).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .unwrap_or_else(|e| fail(format!("server error: {e}")));
}

fn fail(message: String) -> ! {
    eprintln!("axum_app: {message}");
    std::process::exit(1)
}

/// Key, lifetimes and cookies from the environment (the store is set by [`with_store`]).
pub fn configure(builder: SessionsBuilder, insecure_cookies: bool) -> SessionsBuilder {
    let key = match std::env::var("SIGNING_KEY_FILE") {
        Ok(path) => {
            let pem = std::fs::read(&path).unwrap_or_else(|e| fail(format!("{path}: {e}")));
            SigningKey::ed25519_pem(&pem).unwrap_or_else(|e| fail(format!("{path}: {e}")))
        }
        Err(_) => SigningKey::generate_ed25519()
            .unwrap_or_else(|e| fail(format!("cannot generate a key: {e}"))),
    };
    let trusted_origins: Vec<String> = std::env::var("TRUSTED_ORIGINS")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    builder
        .signing_key(key)
        .issuer("tower-session-jwt-example")
        .audience("axum_app")
        .jwt_ttl(seconds("JWT_TTL_SECS", 300))
        .session_ttl(seconds("SESSION_TTL_SECS", 7 * 86_400))
        .sliding(true)
        .trusted_origins(trusted_origins)
        // ⚠️ `INSECURE_COOKIES=1` is only for local experiments over plain HTTP; see the top of
        // this file. `__Host-` needs `Secure`, so it goes with it.
        .cookies(
            CookieConfig::default()
                .secure(!insecure_cookies)
                .host_prefix(!insecure_cookies),
        )
}

/// A duration in whole seconds from the environment variable `name`, else `default`.
fn seconds(name: &str, default: u64) -> Duration {
    match std::env::var(name) {
        Ok(secs) => Duration::from_secs(
            secs.parse()
                .unwrap_or_else(|e| fail(format!("{name}={secs:?}: {e}"))),
        ),
        Err(_) => Duration::from_secs(default),
    }
}

/// The store the environment names: `STORE=memory`, `REDIS_URL` (Redis), `DATABASE_URL`
/// (PostgreSQL), else an SQLite file (`SESSIONS_DB`, default `sessions.db` in the working
/// directory), so that a restart keeps everyone signed in.
async fn with_store(builder: SessionsBuilder) -> SessionsBuilder {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    if let Some(store) = var("STORE") {
        return match store.as_str() {
            "memory" => {
                println!("sessions: in memory (lost on restart)");
                builder.store(MemoryStore::new())
            }
            other => fail(format!(
                "STORE={other:?}: only \"memory\" is a store name; the others are chosen by \
                 REDIS_URL, DATABASE_URL or SESSIONS_DB"
            )),
        };
    }
    if let Some(url) = var("REDIS_URL") {
        #[cfg(feature = "redis")]
        {
            let store = tower_session_jwt::RedisStore::connect(&url)
                .await
                .unwrap_or_else(|e| fail(format!("REDIS_URL: {e}")));
            println!("sessions: in Redis");
            return builder.store(store);
        }
        #[cfg(not(feature = "redis"))]
        {
            let _ = url;
            fail(
                "REDIS_URL is set but this build has no Redis support: \
                 run `cargo run --example axum_app --features redis`"
                    .into(),
            )
        }
    }
    if let Some(url) = var("DATABASE_URL") {
        #[cfg(feature = "postgres")]
        {
            let store = tower_session_jwt::PostgresStore::connect(&url)
                .await
                .unwrap_or_else(|e| fail(format!("DATABASE_URL: {e}")));
            println!("sessions: in PostgreSQL");
            return builder.store(store);
        }
        #[cfg(not(feature = "postgres"))]
        {
            let _ = url;
            fail(
                "DATABASE_URL is set but this build has no PostgreSQL support: \
                 run `cargo run --example axum_app --features postgres`"
                    .into(),
            )
        }
    }
    let path = var("SESSIONS_DB").unwrap_or_else(|| "sessions.db".into());
    let store = tower_session_jwt::SqliteStore::open(&path)
        .await
        .unwrap_or_else(|e| fail(format!("SESSIONS_DB={path:?}: {e}")));
    println!("sessions: in the SQLite file {path} (kept across restarts)");
    builder.store(store)
}

// ---------------------------------------------------------------------------------------------
// Handlers

/// `GET /`: the login form, or the signed-in user's devices.
async fn home(sessions: Sessions, current: Option<CurrentSession>) -> Response {
    let body = match current {
        None => page(
            r#"<h2>Sign in</h2>
<form method="post" action="/login">
  <label>User id <input name="user_id" required maxlength="256" autofocus></label>
  <button>Sign in</button>
</form>
<p class="muted">Any user id works: this demo shows sessions, not passwords.</p>"#,
        ),
        Some(current) => match sessions.list(&current.user_id).await {
            Ok(list) => page(&devices(&current, &list)),
            Err(e) => return store_unavailable(e),
        },
    };
    let mut response = no_store(Html(body));
    let headers = response.headers_mut();
    for (name, value) in PAGE_HEADERS {
        headers.insert(*name, HeaderValue::from_static(value));
    }
    response
}

/// The page's security headers: no framing (clickjacking on the revoke buttons), nothing but
/// its own inline style and same-origin form posts, no MIME sniffing, no referrer to other sites.
const PAGE_HEADERS: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; \
         frame-ancestors 'none'; base-uri 'none'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    // Not `no-referrer`: with it, browsers send `Origin: null` on the page's own form posts.
    ("referrer-policy", "same-origin"),
];

fn devices(current: &Session, list: &[Session]) -> String {
    let mut rows = String::new();
    for s in list {
        let action = if s.session_id == current.session_id {
            r#"<span class="this">this device</span>"#.to_owned()
        } else {
            format!(
                r#"<form method="post" action="/api/sessions/{}/revoke"><button>Revoke</button></form>"#,
                escape(s.session_id.as_str())
            )
        };
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{action}</td></tr>",
            escape(&s.attributes.ip_address),
            escape(&s.attributes.user_agent),
            when(s.started_at),
            when(s.last_accessed_at),
        );
    }
    format!(
        r#"<p>Signed in as <strong>{user}</strong> <span class="muted">({session})</span></p>
<h2>Your devices</h2>
<table>
  <thead><tr><th>IP address</th><th>User agent</th><th>Started</th><th>Last active</th><th></th></tr></thead>
  <tbody>{rows}</tbody>
</table>
<div class="actions">
  <form method="post" action="/logout"><button>Log out</button></form>
  <form method="post" action="/logout/all"><button class="danger">Log out everywhere</button></form>
</div>"#,
        user = escape(&current.user_id),
        session = escape(current.session_id.as_str()),
    )
}

/// Largest login body read.
const MAX_LOGIN_BODY: usize = 16 * 1024;

/// The `user_id` field of an `application/x-www-form-urlencoded` body, decoded strictly: a value
/// whose bytes are not UTF-8 is refused rather than patched with replacement characters (which
/// would sign the user into some other account than the one typed).
fn form_user_id(body: &[u8]) -> Result<String, &'static str> {
    let mut found = None;
    for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        if percent_decode(name)? != b"user_id" {
            continue;
        }
        if found.is_some() {
            return Err("user_id given twice");
        }
        let value =
            String::from_utf8(percent_decode(value)?).map_err(|_| "user_id is not UTF-8")?;
        found = Some(value);
    }
    found.ok_or("missing user_id")
}

/// Form decoding (`+` is a space, `%XX` a byte), refusing malformed escapes.
fn percent_decode(text: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(text.len());
    let mut bytes = text.iter();
    while let Some(&b) = bytes.next() {
        out.push(match b {
            b'+' => b' ',
            b'%' => {
                let hex = |b: Option<&u8>| b.and_then(|b| (*b as char).to_digit(16));
                match (hex(bytes.next()), hex(bytes.next())) {
                    (Some(hi), Some(lo)) => (hi * 16 + lo) as u8,
                    _ => return Err("malformed percent-encoding"),
                }
            }
            b => b,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct LoginJson {
    user_id: String,
    #[serde(default)]
    custom_claims: Map<String, Value>,
}

/// `POST /login`: a form (`303 /`) or JSON (`200` with the session and both credentials); both
/// set the two cookies.
async fn login(sessions: Sessions, request: Request) -> Response {
    let content_type = request
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (parts, body) = request.into_parts();
    let is_form = content_type.starts_with("application/x-www-form-urlencoded");
    let (user_id, custom_claims) = if is_form {
        let body = match axum::body::to_bytes(body, MAX_LOGIN_BODY).await {
            Ok(body) => body,
            Err(_) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "invalid_request",
                    "body too large",
                );
            }
        };
        match form_user_id(&body) {
            Ok(user_id) => (user_id, Map::new()),
            Err(message) => return error(StatusCode::BAD_REQUEST, "invalid_request", message),
        }
    } else if content_type.starts_with("application/json") {
        match Json::<LoginJson>::from_request(Request::from_parts(parts.clone(), body), &()).await {
            Ok(Json(login)) => (login.user_id, login.custom_claims),
            Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_request", &e.body_text()),
        }
    } else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send application/json or application/x-www-form-urlencoded",
        );
    };

    let mut new = NewSession::new().custom_claims(custom_claims);
    if let Some(ConnectInfo(addr)) = parts.extensions.get::<ConnectInfo<SocketAddr>>() {
        new = new.peer_addr(*addr);
    }
    let login = match sessions.login(&parts, user_id, new).await {
        Ok(login) => login,
        Err(e) => return session_error(e),
    };
    let mut response = if is_form {
        Redirect::to("/").into_response()
    } else {
        Json(json!({
            "session": login.created.session,
            "session_token": login.created.token.expose(),
            "session_jwt": login.created.jwt.expose(),
        }))
        .into_response()
    };
    login.set_cookies(&mut response);
    response
}

/// `GET /api/me`: the current session, with Stytch's field names.
async fn me(session: Session) -> Response {
    no_store(Json(session))
}

/// A session as `/api/sessions` lists it.
#[derive(Serialize)]
struct Device<'a> {
    #[serde(flatten)]
    session: &'a Session,
    current: bool,
}

/// `GET /api/sessions`: the current user's live sessions, newest first.
async fn list_sessions(current: CurrentSession, sessions: Sessions) -> Response {
    match sessions.list(&current.user_id).await {
        Ok(list) => {
            let devices: Vec<Device<'_>> = list
                .iter()
                .map(|session| Device {
                    session,
                    current: session.session_id == current.session_id,
                })
                .collect();
            no_store(Json(json!({ "sessions": devices })))
        }
        Err(e) => store_unavailable(e),
    }
}

/// `GET /.well-known/jwks.json`: the public keys that verify session JWTs.
async fn jwks(sessions: Sessions) -> Response {
    let mut response = Json(sessions.jwks()).into_response();
    response.headers_mut().insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    response
}

// ---------------------------------------------------------------------------------------------
// Responses

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, Json(json!({ "error": code, "message": message }))).into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn session_error(e: SessionError) -> Response {
    let status = e.status();
    let code = match &e {
        SessionError::InvalidUserId(_) => "invalid_user_id",
        SessionError::InvalidCustomClaims(_) => "invalid_custom_claims",
        SessionError::InvalidTtl => "invalid_ttl",
        SessionError::JwtTooLarge { .. } => "session_jwt_too_large",
        SessionError::CrossSiteRequest => "cross_site_request",
        SessionError::Store(_) => "store_unavailable",
        _ => "internal_error",
    };
    // Store and internal errors are logged, not shown.
    let message = if status.is_server_error() {
        eprintln!("axum_app: login failed: {e}");
        "the session could not be created; try again".to_owned()
    } else {
        e.to_string()
    };
    let mut response = error(status, code, &message);
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from_static("1"));
    }
    response
}

/// `503` with `Retry-After`: a store failure is never shown as "signed out".
fn store_unavailable(e: StoreError) -> Response {
    eprintln!("axum_app: {e}");
    AuthError::Store(e).into_response()
}

fn no_store(body: impl IntoResponse) -> Response {
    let mut response = body.into_response();
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

// ---------------------------------------------------------------------------------------------
// HTML

fn page(main: &str) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tower-session-jwt demo</title>
<style>
  body {{ font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }}
  h1 {{ font-size: 1.4rem; }} h2 {{ font-size: 1.1rem; margin-top: 1.5rem; }}
  table {{ border-collapse: collapse; width: 100%; }}
  th, td {{ text-align: left; padding: .4rem .6rem; border-bottom: 1px solid #ddd; vertical-align: top; }}
  td:nth-child(2) {{ word-break: break-all; font-size: .9em; }}
  form {{ display: inline; margin: 0; }}
  input {{ padding: .3rem; }}
  button {{ padding: .3rem .8rem; cursor: pointer; }}
  .danger {{ color: #a00; }}
  .actions {{ margin-top: 1rem; display: flex; gap: .5rem; }}
  .this {{ font-weight: 600; color: #060; }}
  .muted {{ color: #777; font-size: .9em; }}
</style>
</head>
<body>
<h1>tower-session-jwt demo</h1>
{main}
</body>
</html>
"#
    )
}

fn when(t: time::OffsetDateTime) -> String {
    t.to_offset(time::UtcOffset::UTC)
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second] UTC"
        ))
        .unwrap_or_default()
}

/// Escapes text for HTML element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
