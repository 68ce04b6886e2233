//! `examples/tonic_service.rs` over real TCP with a tonic client: gRPC clients see gRPC statuses
//! (`UNAUTHENTICATED`, `UNAVAILABLE`, `PERMISSION_DENIED`) with the reason, the session reaches
//! the handler, and non-gRPC requests on the same layer keep their HTTP answers.

mod common;
#[path = "../examples/tonic_service.rs"]
#[allow(dead_code)]
mod tonic_service;

use std::net::SocketAddr;

use common::FlakyStore;
use http::uri::PathAndQuery;
use serde_json::json;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_service::{ADMIN_REPORT, Empty, Identity, Report, WHO_AM_I};
use tower::ServiceExt as _;
use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};

/// A server for `sessions` on a free port, and a client channel to it.
async fn serve(sessions: Sessions) -> Channel {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
        .await
        .unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_routes(tonic_service::routes(sessions))
            .serve_with_incoming(incoming),
    );
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

/// One unary call with an optional `authorization` metadata value.
async fn call<Res: prost::Message + Default + 'static>(
    channel: &Channel,
    path: &'static str,
    authorization: Option<&str>,
) -> Result<Res, Status> {
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.unwrap();
    let mut request = Request::new(Empty {});
    if let Some(value) = authorization {
        request
            .metadata_mut()
            .insert("authorization", value.parse().unwrap());
    }
    let codec = tonic_prost::ProstCodec::<Empty, Res>::default();
    grpc.unary(request, PathAndQuery::from_static(path), codec)
        .await
        .map(tonic::Response::into_inner)
}

fn sessions(store: impl tower_session_jwt::SessionStore) -> Sessions {
    Sessions::builder()
        .store(store)
        .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
        .build()
        .unwrap()
}

fn bearer(credential: &str) -> String {
    format!("Bearer {credential}")
}

#[tokio::test]
async fn grpc_clients_get_grpc_statuses_and_handlers_get_the_session() {
    let sessions = sessions(MemoryStore::new());
    sessions.ready().await;
    let channel = serve(sessions.clone()).await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();

    // No credential: UNAUTHENTICATED, naming the reason.
    let status = call::<Identity>(&channel, WHO_AM_I, None)
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "no session credentials");

    // A forged JWT and a made-up token: UNAUTHENTICATED, the credential not echoed.
    let forged = format!("{}x", alice.jwt.expose());
    let status = call::<Identity>(&channel, WHO_AM_I, Some(&bearer(&forged)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert!(
        status.message().starts_with("invalid session JWT"),
        "{status:?}"
    );
    assert!(!status.message().contains(&forged));
    let status = call::<Identity>(&channel, WHO_AM_I, Some(&bearer(&"A".repeat(43))))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "unknown or expired session");

    // The JWT and the token both reach the handler, which reads the session.
    for credential in [alice.jwt.expose(), alice.token.expose()] {
        let me: Identity = call(&channel, WHO_AM_I, Some(&bearer(credential)))
            .await
            .unwrap();
        assert_eq!(me.user_id, "alice");
        assert_eq!(me.session_id, alice.session.session_id.to_string());
    }

    // Authenticated but without the admin role: PERMISSION_DENIED from the handler.
    let status = call::<Report>(&channel, ADMIN_REPORT, Some(&bearer(alice.jwt.expose())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    assert!(status.message().contains("admin role"));
    let changed = sessions
        .update_claims(&alice.session.session_id, json!({"role": "admin"}))
        .await
        .unwrap();
    let report: Report = call(
        &channel,
        ADMIN_REPORT,
        Some(&bearer(changed.jwt.as_ref().unwrap().expose())),
    )
    .await
    .unwrap();
    assert!(report.text.contains("alice"));
    // The JWT from before the change is refused at once.
    let status = call::<Report>(&channel, ADMIN_REPORT, Some(&bearer(alice.jwt.expose())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(status.message(), "session revoked");

    // Revoked: UNAUTHENTICATED for the token and the JWT alike.
    sessions.revoke(&alice.session.session_id).await.unwrap();
    for credential in [changed.jwt.as_ref().unwrap().expose(), alice.token.expose()] {
        let status = call::<Identity>(&channel, WHO_AM_I, Some(&bearer(credential)))
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    }

    // Unknown methods still answer UNIMPLEMENTED once authenticated.
    let bob = sessions.create("bob", NewSession::new()).await.unwrap();
    let status = call::<Identity>(
        &channel,
        "/demo.Account/Nope",
        Some(&bearer(bob.jwt.expose())),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented);
}

#[tokio::test]
async fn a_store_outage_is_unavailable_to_grpc_clients() {
    let store = FlakyStore::new(MemoryStore::new());
    // Without the token cache, so that the token's lookup goes to the store.
    let sessions = Sessions::builder()
        .store(store.clone())
        .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
        .token_cache_capacity(0)
        .build()
        .unwrap();
    let channel = serve(sessions.clone()).await;
    let alice = sessions.create("alice", NewSession::new()).await.unwrap();
    store.set_down(true);
    let status = call::<Identity>(&channel, WHO_AM_I, Some(&bearer(alice.token.expose())))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "session store unavailable");
    // Back up: the same call succeeds.
    store.set_down(false);
    let me: Identity = call(&channel, WHO_AM_I, Some(&bearer(alice.token.expose())))
        .await
        .unwrap();
    assert_eq!(me.user_id, "alice");
}

#[tokio::test]
async fn non_grpc_requests_on_the_same_layer_keep_their_http_answers() {
    let sessions = sessions(MemoryStore::new());
    let router = tonic_service::routes(sessions).into_axum_router();
    let request = |content_type: &str| {
        http::Request::post(WHO_AM_I)
            .header("content-type", content_type)
            .body(axum::body::Body::empty())
            .unwrap()
    };
    let http = router
        .clone()
        .oneshot(request("application/json"))
        .await
        .unwrap();
    assert_eq!(http.status(), 401);
    assert_eq!(http.headers()["www-authenticate"], "Bearer");
    assert!(http.headers().get("grpc-status").is_none());

    let grpc = router.oneshot(request("application/grpc")).await.unwrap();
    assert_eq!(grpc.status(), 200);
    assert_eq!(grpc.headers()["grpc-status"], "16");
    assert_eq!(grpc.headers()["content-type"], "application/grpc");
    assert!(grpc.headers().get("www-authenticate").is_none());
}
