#![cfg(all(feature = "redis-tls", feature = "conformance"))]
//! RedisStore over TLS (`rediss://`) against redis-servers this file starts, with a CA, server
//! and client certificates generated here by the `openssl` command: the conformance suite and the
//! revocation feed over TLS, a server signed by another CA refused, mutual TLS, and TLS
//! misconfiguration reported as typed errors.
//!
//! Without `redis-server` or `openssl` these tests print a note and pass, unless `CI=true`, where
//! they fail.

mod redis_common;
mod tls_common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_session_jwt::store::SessionLimit;
use tower_session_jwt::store::conformance;
use tower_session_jwt::store::redis::RedisConfigError;
use tower_session_jwt::store::redis::RedisStore;
use tower_session_jwt::{NewSession, Sessions, SigningKey};
use tower_session_jwt::{SessionStore, StoreError};

use redis_common::{free_port, unavailable, unique_prefix};
use tls_common::Pki;

/// A TLS-only `redis-server` child process, killed on drop.
struct TlsServer {
    child: Child,
    port: u16,
}

impl TlsServer {
    /// Starts a server on a free TLS port (plain TCP off) and waits until it listens.
    fn start(pki: &Pki, demand_client_cert: bool) -> Result<Self, String> {
        let port = free_port();
        let child = Command::new("redis-server")
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--tls-cert-file", &pki.path("server.crt")])
            .args(["--tls-key-file", &pki.path("server.key")])
            .args(["--tls-ca-cert-file", &pki.path("ca.crt")])
            .args([
                "--tls-auth-clients",
                if demand_client_cert { "yes" } else { "no" },
            ])
            .args(["--save", "", "--appendonly", "no"])
            .args(["--dir", &pki.dir.0.to_string_lossy()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let mut server = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(format!(
                    "redis-server exited ({status}); is it built with TLS?"
                ));
            }
            if Instant::now() > deadline {
                server.kill();
                return Err(format!("redis-server never listened on {port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("rediss://127.0.0.1:{}", self.port)
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Certificates and a server, or `None` after [`unavailable`] when either cannot be had.
fn setup(test: &str, demand_client_cert: bool) -> Option<(Pki, TlsServer)> {
    let pki = match Pki::generate(test) {
        Ok(pki) => pki,
        Err(e) => {
            unavailable(test, &e);
            return None;
        }
    };
    match TlsServer::start(&pki, demand_client_cert) {
        Ok(server) => Some((pki, server)),
        Err(e) => {
            unavailable(test, &e);
            None
        }
    }
}

/// A store trusting the test CA, under a prefix of its own.
async fn store(pki: &Pki, server: &TlsServer, prefix: &str) -> Result<RedisStore, StoreError> {
    RedisStore::builder(&server.url())
        .key_prefix(prefix)
        .tls_ca_pem(pki.read("ca.crt"))
        .build()
        .await
}

/// The [`RedisConfigError`] inside `result`'s error, which must be one.
fn config_error<T: std::fmt::Debug>(result: Result<T, StoreError>) -> RedisConfigError {
    match result {
        Err(StoreError::Backend(source)) => source
            .downcast_ref::<RedisConfigError>()
            .unwrap_or_else(|| panic!("not a configuration error: {source}"))
            .clone(),
        other => panic!("expected a configuration error, got {other:?}"),
    }
}

#[tokio::test]
async fn conformance_suite_over_tls() {
    let Some((pki, server)) = setup("tls-conformance", false) else {
        return;
    };
    let store = store(&pki, &server, "tls-conformance:")
        .await
        .expect("store over TLS");
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn a_revocation_reaches_another_instance_over_tls() {
    let Some((pki, server)) = setup("tls-feed", false) else {
        return;
    };
    let key = SigningKey::generate_ed25519().unwrap();
    let instance = |store: RedisStore| {
        Sessions::builder()
            .store(store)
            .signing_key(key.clone())
            .build()
            .expect("sessions over RedisStore")
    };
    let a = instance(store(&pki, &server, "tls-feed:").await.expect("store a"));
    let b = instance(store(&pki, &server, "tls-feed:").await.expect("store b"));
    for sessions in [&a, &b] {
        tokio::time::timeout(Duration::from_secs(5), sessions.ready())
            .await
            .expect("caught up with the feed over TLS");
    }
    let login = a.create("tls-user", NewSession::new()).await.unwrap();
    assert!(b.authenticate_jwt(login.jwt.expose()).await.is_ok());
    assert!(a.revoke(&login.session.session_id).await.unwrap().is_some());
    let started = Instant::now();
    while b.authenticate_jwt(login.jwt.expose()).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "revoked JWT still accepted on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(b.fast_path_trusted(), "b fell behind its feed");
}

#[tokio::test]
async fn a_server_signed_by_another_ca_is_refused() {
    let Some((pki, server)) = setup("tls-other-ca", false) else {
        return;
    };
    let started = Instant::now();
    let refused = RedisStore::builder(&server.url())
        .tls_ca_pem(pki.read("other-ca.crt"))
        .build()
        .await;
    let error = config_error(refused);
    assert!(
        matches!(&error, RedisConfigError::TlsHandshake(why) if why.contains("certificate")),
        "{error:?}"
    );
    eprintln!("refused as: {error}");
    assert!(started.elapsed() < Duration::from_secs(4));

    // The system's trust store does not know the test CA either.
    let error = config_error(RedisStore::connect(&server.url()).await);
    assert!(
        matches!(error, RedisConfigError::TlsHandshake(_)),
        "{error:?}"
    );

    // The right CA works against the same server.
    let ok = store(&pki, &server, &unique_prefix("tls-ok"))
        .await
        .expect("store trusting the test CA");
    let rec = conformance::record("tls-other-ca-user", Duration::from_secs(60));
    ok.create(rec.clone(), SessionLimit::unlimited())
        .await
        .unwrap();
    assert!(ok.find_by_token(&rec.token_hash).await.unwrap().is_some());
}

#[tokio::test]
async fn mutual_tls_needs_the_client_certificate() {
    let Some((pki, server)) = setup("tls-mutual", true) else {
        return;
    };
    let with_identity = RedisStore::builder(&server.url())
        .key_prefix("tls-mutual:")
        .tls_ca_pem(pki.read("ca.crt"))
        .tls_client_identity(pki.read("client.crt"), pki.read("client.key"))
        .build()
        .await
        .expect("store presenting the client certificate");
    let rec = conformance::record("tls-mutual-user", Duration::from_secs(60));
    with_identity
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .unwrap();
    let found = with_identity.find_by_token(&rec.token_hash).await.unwrap();
    assert_eq!(found.map(|s| s.session_id), Some(rec.session.session_id));
    assert!(
        !format!("{with_identity:?}").contains("PRIVATE KEY"),
        "key material in Debug output"
    );

    let without = store(&pki, &server, "tls-mutual:").await;
    let error = config_error(without);
    assert!(
        matches!(error, RedisConfigError::TlsHandshake(_)),
        "{error:?}"
    );

    // A certificate signed by a CA the server does not trust is refused too.
    let foreign = RedisStore::builder(&server.url())
        .tls_ca_pem(pki.read("ca.crt"))
        .tls_client_identity(pki.read("other-ca.crt"), pki.read("other-ca.key"))
        .build()
        .await;
    let error = config_error(foreign);
    assert!(
        matches!(error, RedisConfigError::TlsHandshake(_)),
        "{error:?}"
    );
}

#[tokio::test]
async fn tls_misconfiguration_is_a_typed_error() {
    // Nothing here connects: each mistake is caught before.
    let url = "rediss://127.0.0.1:1";
    let with = |ca: &[u8]| RedisStore::builder(url).tls_ca_pem(ca.to_vec()).build();
    assert!(matches!(
        config_error(with(b"not a pem").await),
        RedisConfigError::InvalidPem {
            what: "CA certificate",
            ..
        }
    ));
    assert!(matches!(
        config_error(with(b"").await),
        RedisConfigError::InvalidPem {
            what: "CA certificate",
            ..
        }
    ));
    let garbled = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
    assert!(matches!(
        config_error(with(garbled).await),
        RedisConfigError::InvalidPem { .. }
    ));
    let bad_key = RedisStore::builder(url)
        .tls_client_identity(
            b"-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n".to_vec(),
            b"no key".to_vec(),
        )
        .build()
        .await;
    assert!(matches!(
        config_error(bad_key),
        RedisConfigError::InvalidPem {
            what: "client key",
            ..
        }
    ));
    // TLS settings on a plain URL would silently connect without TLS.
    let plain = RedisStore::builder("redis://127.0.0.1:1")
        .tls_ca_pem(b"x".to_vec())
        .build()
        .await;
    assert_eq!(
        config_error(plain),
        RedisConfigError::TlsSettingsWithoutRediss
    );
    let shown = format!(
        "{:?}",
        RedisStore::builder(url).tls_client_identity(b"CERT".to_vec(), b"SECRET-KEY".to_vec())
    );
    assert!(!shown.contains("SECRET-KEY"), "{shown}");
}
