//! The example app on its default SQLite store, over loopback TCP, while clients send requests
//! that need the store and hang up a fraction of a millisecond later (the server then drops the
//! request with its store call in flight): a client that waits for its answers never gets a
//! `503`. Before, the aborted calls counted as store failures and opened the circuit breaker.

#[path = "../examples/axum_app.rs"]
#[allow(dead_code)]
mod axum_app;
mod common;
mod sqlite_common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use tower_session_jwt::sessions::CookieConfig;
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::{Sessions, SigningKey};

/// Requests the flood sends: the readiness probe and a login, both without credentials.
const FLOOD: [&str; 2] = [
    "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
     Content-Length: 19\r\n\r\n{\"user_id\":\"flood\"}",
];
const FLOOD_THREADS: usize = 4;
/// Connections a flood thread opens before closing them, each 0.2 to 3 ms after its request.
const BURST: usize = 15;
/// Bursts a flood thread sends at most, should the client be slow.
const MAX_BURSTS: usize = 400;
/// Rounds of the waiting client: a login, a readiness probe, a sign-out everywhere.
const ROUNDS: usize = 20;

/// One request on a fresh connection (`Connection: close`): the status and the body.
fn call(addr: SocketAddr, method: &str, path: &str, extra: &str, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// Sends bursts of requests and hangs up on each 0.2 to 3 ms after sending it, until `stop`.
fn flood(addr: SocketAddr, seed: usize, stop: &AtomicBool, sent: &AtomicUsize) {
    let mut n = seed;
    for _ in 0..MAX_BURSTS {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut open = Vec::with_capacity(BURST);
        for _ in 0..BURST {
            n = n
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let Ok(mut stream) = TcpStream::connect(addr) else {
                continue;
            };
            if stream.write_all(FLOOD[(n >> 33) % 2].as_bytes()).is_ok() {
                sent.fetch_add(1, Ordering::Relaxed);
            }
            let after = Duration::from_micros(200 + ((n >> 40) % 2800) as u64);
            open.push((std::time::Instant::now() + after, stream));
        }
        open.sort_by_key(|(at, _)| *at);
        for (at, stream) in open {
            std::thread::sleep(at.saturating_duration_since(std::time::Instant::now()));
            drop(stream);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aborted_requests_never_open_the_circuit() {
    let db = sqlite_common::TempDb::new("abort-flood");
    let sessions = Sessions::builder()
        .store(SqliteStore::open(db.path()).await.unwrap())
        .signing_key(SigningKey::generate_ed25519().unwrap())
        .cookies(CookieConfig::default().secure(false))
        .build()
        .unwrap();
    sessions.ready().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            axum_app::app(sessions).into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .unwrap();
    });

    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(0));
    let flooders: Vec<_> = (0..FLOOD_THREADS)
        .map(|i| {
            let (stop, sent) = (stop.clone(), sent.clone());
            std::thread::spawn(move || flood(addr, i + 1, &stop, &sent))
        })
        .collect();
    let client = tokio::task::spawn_blocking(move || {
        // Let the flood get going first.
        std::thread::sleep(Duration::from_millis(200));
        let json = "Content-Type: application/json\r\n";
        let mut unavailable = Vec::new();
        for round in 0..ROUNDS {
            let (status, body) = call(addr, "POST", "/login", json, r#"{"user_id":"victim"}"#);
            if status == 503 {
                unavailable.push((round, "login"));
                continue;
            }
            assert_eq!(status, 200, "{body}");
            let login: serde_json::Value = serde_json::from_str(&body).unwrap();
            let token = login["session_token"].as_str().unwrap();
            let (status, body) = call(addr, "GET", "/healthz", "", "");
            match status {
                503 => unavailable.push((round, "healthz")),
                _ => assert_eq!(status, 200, "{body}"),
            }
            let bearer = format!("Authorization: Bearer {token}\r\n");
            let (status, body) = call(addr, "POST", "/logout/all", &bearer, "");
            match status {
                503 => unavailable.push((round, "logout/all")),
                _ => assert_eq!(status, 204, "{body}"),
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        unavailable
    });
    let unavailable = client.await;
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().unwrap();
    }
    server.abort();
    let unavailable = unavailable.unwrap();
    assert!(
        sent.load(Ordering::Relaxed) >= FLOOD_THREADS * BURST,
        "the flood ran"
    );
    assert!(
        unavailable.is_empty(),
        "503 to a client that waited, under a flood of {} aborted requests: {unavailable:?}",
        sent.load(Ordering::Relaxed)
    );
}
