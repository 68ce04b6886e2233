//! JWT minting and verification per algorithm, against `jsonwebtoken::decode` with a key and a
//! `Validation` built once (the floor a hand-written middleware would reach).
//!
//! Run: `cargo bench --bench jwt`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tower_session_jwt::{MemoryStore, NewSession, Sessions, SigningKey};

fn keys() -> Vec<(&'static str, SigningKey, jsonwebtoken::DecodingKey)> {
    let ed = SigningKey::ed25519_pem(include_bytes!("../tests/keys/ed25519.pem")).unwrap();
    let es = SigningKey::es256_pem(include_bytes!("../tests/keys/p256.pem")).unwrap();
    let rs = SigningKey::rs256_pem(include_bytes!("../tests/keys/rsa2048.pem")).unwrap();
    let hs = SigningKey::hs256("hs", &[42u8; 32]).unwrap();
    vec![
        (
            "EdDSA",
            ed,
            jsonwebtoken::DecodingKey::from_ed_pem(include_bytes!("../tests/keys/ed25519.pub.pem"))
                .unwrap(),
        ),
        (
            "ES256",
            es,
            jsonwebtoken::DecodingKey::from_ec_pem(include_bytes!("../tests/keys/p256.pub.pem"))
                .unwrap(),
        ),
        (
            "RS256",
            rs,
            jsonwebtoken::DecodingKey::from_rsa_pem(include_bytes!(
                "../tests/keys/rsa2048.pub.pem"
            ))
            .unwrap(),
        ),
        (
            "HS256",
            hs,
            jsonwebtoken::DecodingKey::from_secret(&[42u8; 32]),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let mut group = c.benchmark_group("jwt");
    group
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    for (name, key, decoding) in keys() {
        let alg = match name {
            "EdDSA" => jsonwebtoken::Algorithm::EdDSA,
            "ES256" => jsonwebtoken::Algorithm::ES256,
            "RS256" => jsonwebtoken::Algorithm::RS256,
            _ => jsonwebtoken::Algorithm::HS256,
        };
        let sessions = Sessions::builder()
            .store(MemoryStore::new())
            .signing_key(key)
            .issuer("https://app.example")
            .audience("app")
            .build()
            .unwrap();
        rt.block_on(sessions.ready());
        let created = rt
            .block_on(sessions.create("user-1", NewSession::new()))
            .unwrap();
        let token = created.jwt.expose().to_owned();

        let mut validation = jsonwebtoken::Validation::new(alg);
        validation.set_issuer(&["https://app.example"]);
        validation.set_audience(&["app"]);
        jsonwebtoken::decode::<serde_json::Value>(&token, &decoding, &validation).unwrap();

        group.bench_function(format!("{name}/jsonwebtoken_decode"), |b| {
            b.iter(|| {
                jsonwebtoken::decode::<serde_json::Value>(black_box(&token), &decoding, &validation)
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}/authenticate_jwt"), |b| {
            b.iter(|| {
                rt.block_on(sessions.authenticate_jwt(black_box(&token)))
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}/create"), |b| {
            b.iter(|| {
                rt.block_on(sessions.create("user-1", NewSession::new()))
                    .unwrap()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
