//! A gRPC service behind `SessionLayer`, with tonic.
//!
//! ```text
//! cargo run --example tonic_service
//! ```
//!
//! Clients send a session credential in the `authorization` metadata, `Bearer <session JWT>` or
//! `Bearer <session token>`. The layer authenticates every call before it reaches the service
//! and answers refusals with gRPC statuses: `UNAUTHENTICATED` (16) for a missing or refused
//! credential, `UNAVAILABLE` (14) when the store fails. A handler that finds the session short of
//! what it needs answers `PERMISSION_DENIED` (7). Handlers read the session from the request's
//! extensions.
//!
//! The service, `demo.Account`, has two unary methods (their messages are derived with prost
//! below, so no code generation is needed; the equivalent `.proto` is in the comments):
//!
//! * `WhoAmI(Empty) returns (Identity)`: the caller's user id, session id and `amr`;
//! * `AdminReport(Empty) returns (Report)`: only for sessions whose custom claims say
//!   `"role": "admin"`.
//!
//! Sessions come from the same SQLite file as `axum_app` (`sessions.db`), so a user signed in
//! through the web app can call the gRPC API with the session token. To try it without the web app, the example signs in a
//! demo user at start and prints its credential:
//!
//! ```text
//! grpcurl -plaintext -H "authorization: Bearer $JWT" 127.0.0.1:50051 demo.Account/WhoAmI
//! ```
//!
//! (grpcurl needs the `.proto` or server reflection; the test `tests/tonic_service.rs` drives the
//! service with a tonic client instead.)
//!
//! Environment: `GRPC_ADDR` (default `127.0.0.1:50051`), `SIGNING_KEY_FILE` (share the key with
//! `axum_app` to accept its JWTs; opaque tokens work across without it), `SESSIONS_DB` (the
//! SQLite file), `STORE=memory` (nothing kept).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::server::{NamedService, UnaryService};
use tonic::{Request, Response, Status};
use tower_session_jwt::layer::CurrentSession;
use tower_session_jwt::{NewSession, SessionLayer, Sessions, SigningKey};

/// `message Empty {}`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Empty {}

/// `message Identity { string user_id = 1; string session_id = 2; repeated string amr = 3; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Identity {
    /// The signed-in user.
    #[prost(string, tag = "1")]
    pub user_id: String,
    /// The session the call was made in.
    #[prost(string, tag = "2")]
    pub session_id: String,
    /// How the user authenticated (RFC 8176 method names).
    #[prost(string, repeated, tag = "3")]
    pub amr: Vec<String>,
}

/// `message Report { string text = 1; }`
#[derive(Clone, PartialEq, prost::Message)]
pub struct Report {
    /// The report.
    #[prost(string, tag = "1")]
    pub text: String,
}

/// The fully qualified service name and its methods' paths.
pub const SERVICE: &str = "demo.Account";
/// `WhoAmI`'s path.
pub const WHO_AM_I: &str = "/demo.Account/WhoAmI";
/// `AdminReport`'s path.
pub const ADMIN_REPORT: &str = "/demo.Account/AdminReport";

/// The session the layer put on the call. Behind `SessionLayer` it is always there; a service
/// mounted without the layer answers `UNAUTHENTICATED` rather than panicking.
fn session<T>(request: &Request<T>) -> Result<CurrentSession, Status> {
    request
        .extensions()
        .get::<CurrentSession>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("no session"))
}

async fn who_am_i(request: Request<Empty>) -> Result<Response<Identity>, Status> {
    let session = session(&request)?;
    Ok(Response::new(Identity {
        user_id: session.user_id.clone(),
        session_id: session.session_id.to_string(),
        amr: session.amr(),
    }))
}

async fn admin_report(request: Request<Empty>) -> Result<Response<Report>, Status> {
    let session = session(&request)?;
    if session.custom_claims.get("role").and_then(|r| r.as_str()) != Some("admin") {
        return Err(Status::permission_denied(
            "this call needs a session whose custom claims give the admin role",
        ));
    }
    Ok(Response::new(Report {
        text: format!("all systems nominal, {}", session.user_id),
    }))
}

/// `demo.Account` as a tower service, the way tonic's generated servers are written.
#[derive(Clone, Debug, Default)]
pub struct AccountServer;

impl NamedService for AccountServer {
    const NAME: &'static str = SERVICE;
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// One unary method: an async fn from request to response.
struct Unary<F>(F);

impl<Req, Res, F, Fut> UnaryService<Req> for Unary<F>
where
    F: Fn(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Res>, Status>> + Send + 'static,
{
    type Response = Res;
    type Future = BoxFuture<Result<Response<Res>, Status>>;
    fn call(&mut self, request: Request<Req>) -> Self::Future {
        Box::pin((self.0)(request))
    }
}

impl tower::Service<http::Request<Body>> for AccountServer {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<http::Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        use tonic_prost::ProstCodec;
        match request.uri().path() {
            WHO_AM_I => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(Unary(who_am_i), request).await)
            }),
            ADMIN_REPORT => Box::pin(async move {
                let mut grpc = tonic::server::Grpc::new(ProstCodec::default());
                Ok(grpc.unary(Unary(admin_report), request).await)
            }),
            _ => Box::pin(async move { Ok(Status::unimplemented("no such method").into_http()) }),
        }
    }
}

/// The gRPC routes: `demo.Account` behind the session layer, for
/// `tonic::transport::Server::builder().add_routes`. (Tonic's routes are an axum router: the
/// layer goes on it like on any other.)
pub fn routes(sessions: Sessions) -> tonic::service::Routes {
    tonic::service::Routes::new(AccountServer)
        .into_axum_router()
        .layer(SessionLayer::new(sessions))
        .into()
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: std::net::SocketAddr = std::env::var("GRPC_ADDR")
        .unwrap_or_else(|_| "127.0.0.1:50051".into())
        .parse()?;
    let key = match std::env::var("SIGNING_KEY_FILE") {
        Ok(path) => SigningKey::ed25519_pem(&std::fs::read(path)?)?,
        Err(_) => SigningKey::generate_ed25519()?,
    };
    let builder = Sessions::builder().signing_key(key);
    let sessions = if std::env::var("STORE").is_ok_and(|s| s == "memory") {
        builder
            .store(tower_session_jwt::MemoryStore::new())
            .build()?
    } else {
        let path = std::env::var("SESSIONS_DB").unwrap_or_else(|_| "sessions.db".into());
        let store = tower_session_jwt::store::sqlite::SqliteStore::open(&path).await?;
        builder.store(store).build()?
    };
    sessions.ready().await;

    let demo = sessions.create("demo", NewSession::new()).await?;
    println!("gRPC on {addr}; a demo session for user \"demo\":");
    println!("JWT={}", demo.jwt.expose());
    println!("TOKEN={}", demo.token.expose());

    tonic::transport::Server::builder()
        .add_routes(routes(sessions))
        .serve(addr)
        .await?;
    Ok(())
}
