//! What a device-bound session's refresh costs the server, against the refresh an unbound
//! session makes when its JWT expires (the opaque token looked up in the store, a JWT minted),
//! measured in the same run, over the in-memory store and the SQLite file store.
//!
//! * `token_refresh` (baseline): `authenticate_token` with the token cache off: a store read by
//!   token and a JWT minted.
//! * `dbsc_refresh`: `refresh_device` with an ES256 proof: a store read, the signature check,
//!   the challenge swapped in a compare-and-swap write, a JWT minted. The proof is signed outside
//!   the timed part (that is the browser's work).
//! * `dbsc_challenge`: the `403` answer's work when the pending challenge is fresh: one read.
//!
//! Run: `cargo bench --bench dbsc`.

use std::time::{Duration, Instant};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use tower_session_jwt::SessionStore;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::sessions::DbscConfig;
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};

struct Device(EcdsaKeyPair);

impl Device {
    fn jws(&self, header: serde_json::Value, payload: serde_json::Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = self.0.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.as_ref()))
    }

    fn jwk(&self) -> serde_json::Value {
        let point = self.0.public_key().as_ref();
        json!({"kty": "EC", "crv": "P-256",
               "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
               "y": URL_SAFE_NO_PAD.encode(&point[33..65])})
    }
}

fn sessions(store: impl SessionStore) -> Sessions {
    Sessions::builder()
        .store(store)
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .token_cache_capacity(0)
        .device_binding(DbscConfig::new())
        .build()
        .unwrap()
}

/// A bound session: its id, its token, and the next challenge.
async fn bound(sessions: &Sessions, device: &Device) -> (SessionId, String, String) {
    let (parts, ()) = http::Request::post("/login").body(()).unwrap().into_parts();
    let login = tower_session_jwt::login::login(sessions, &parts, "alice", NewSession::new())
        .await
        .unwrap();
    let session = &login.created.session;
    let challenge = session.device_binding.as_ref().unwrap().challenge.clone();
    let proof = device.jws(
        json!({"alg": "ES256", "typ": "dbsc+jwt", "jwk": device.jwk()}),
        json!({"jti": challenge.unwrap().value, "authorization": session.session_id}),
    );
    let changed = sessions
        .bind_device(&session.session_id, &proof)
        .await
        .unwrap();
    let next = changed.session.device_binding.unwrap().challenge.unwrap();
    (
        session.session_id.clone(),
        login.created.token.expose().to_owned(),
        next.value,
    )
}

fn bench_store(c: &mut Criterion, name: &str, runtime: &tokio::runtime::Runtime, s: Sessions) {
    let device = Device(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap());
    let (id, _, first) = runtime.block_on(bound(&s, &device));
    // An unbound session of the same shape, for the baseline.
    let plain = runtime
        .block_on(s.create("bob", NewSession::new()))
        .unwrap();
    let plain_token = plain.token.expose().to_owned();

    let mut group = c.benchmark_group(format!("dbsc_refresh/{name}"));
    group.measurement_time(Duration::from_secs(4));
    group.bench_function("token_refresh (baseline)", |b| {
        b.iter(|| {
            runtime
                .block_on(s.authenticate_token(&plain_token))
                .unwrap()
        })
    });
    let mut challenge = first;
    group.bench_function("dbsc_refresh", |b| {
        b.iter_custom(|iterations| {
            let mut total = Duration::ZERO;
            for _ in 0..iterations {
                let proof = device.jws(
                    json!({"alg": "ES256", "typ": "dbsc+jwt"}),
                    json!({"jti": challenge}),
                );
                let started = Instant::now();
                let changed = runtime.block_on(s.refresh_device(&id, &proof)).unwrap();
                total += started.elapsed();
                challenge = changed
                    .session
                    .device_binding
                    .unwrap()
                    .challenge
                    .unwrap()
                    .value;
            }
            total
        })
    });
    group.bench_function("dbsc_challenge", |b| {
        b.iter(|| runtime.block_on(s.device_challenge(&id)).unwrap())
    });
    group.finish();
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let memory = runtime.block_on(async { sessions(MemoryStore::new()) });
    bench_store(c, "memory", &runtime, memory);
    let dir = std::env::temp_dir().join(format!("tsj-bench-dbsc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let sqlite = runtime.block_on(async {
        let path = dir.join("sessions.db");
        let store = SqliteStore::open(path.to_str().unwrap()).await.unwrap();
        let s = sessions(store);
        s.ready().await;
        s
    });
    bench_store(c, "sqlite", &runtime, sqlite);
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
