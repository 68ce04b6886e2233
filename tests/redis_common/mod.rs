//! Helpers for the Redis store tests: the server URL, per-test key prefixes and their cleanup.

#![allow(dead_code)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::redis::RedisStore;

/// The Redis the tests use: `REDIS_URL`, default `redis://127.0.0.1:6379`.
pub fn redis_url() -> String {
    std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether a missing Redis must fail the test rather than skip it.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v.eq_ignore_ascii_case("true") || v == "1")
}

/// Fails (in CI) or skips with a note (elsewhere) when something the test needs is missing.
pub fn unavailable(test: &str, why: &str) {
    if in_ci() {
        panic!("{test}: {why} (CI=true, so this is a failure, not a skip)");
    }
    eprintln!("note: skipping {test}: {why}");
}

/// A fresh key prefix: `tsjtest-<label>-<random>:`.
pub fn unique_prefix(label: &str) -> String {
    let random = SessionId::generate().unwrap();
    format!("tsjtest-{label}-{}:", &random.as_str()["session-".len()..])
}

/// A store on [`redis_url`] under a prefix of its own; deletes the prefix's keys when dropped,
/// also when the test panics.
pub struct TestStore {
    pub store: RedisStore,
    pub prefix: String,
    pub url: String,
}

impl TestStore {
    /// Connects, or returns `None` after [`unavailable`] when Redis cannot be reached.
    pub async fn new(test: &str) -> Option<Self> {
        let url = redis_url();
        let prefix = unique_prefix(test);
        match RedisStore::builder(&url).key_prefix(&prefix).build().await {
            Ok(store) => Some(Self { store, prefix, url }),
            Err(e) => {
                unavailable(test, &format!("cannot reach Redis at {url}: {e}"));
                None
            }
        }
    }

    /// Another store (own connections) over the same keys, as another instance would have.
    pub async fn another(&self) -> RedisStore {
        RedisStore::builder(&self.url)
            .key_prefix(&self.prefix)
            .build()
            .await
            .expect("second connection to Redis")
    }

    /// A plain connection for inspecting and tampering with keys.
    pub async fn raw(&self) -> redis::aio::MultiplexedConnection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("raw connection to Redis")
    }

    /// The hash tag every key of this store begins with.
    pub fn base(&self) -> String {
        format!("{{{}}}", self.prefix)
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        delete_prefix(&self.url, &self.base());
    }
}

/// Deletes every key beginning with `base` (SCAN + DEL), on a blocking connection so that it
/// also runs from `Drop` during a panic.
pub fn delete_prefix(url: &str, base: &str) {
    let Ok(client) = redis::Client::open(url) else {
        return;
    };
    let Ok(mut conn) = client.get_connection_with_timeout(Duration::from_secs(2)) else {
        return;
    };
    let mut cursor: u64 = 0;
    loop {
        let Ok((next, keys)): redis::RedisResult<(u64, Vec<String>)> = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{base}*"))
            .arg("COUNT")
            .arg(1000)
            .query(&mut conn)
        else {
            return;
        };
        if !keys.is_empty() {
            let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(&keys).query(&mut conn);
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `redis-server` child process, killed on drop.
pub struct Server {
    pub child: Child,
}

impl Server {
    pub fn start(port: u16) -> std::io::Result<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string()])
            .args(["--bind", "127.0.0.1"])
            .args(["--save", ""])
            .args(["--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        Ok(Self { child })
    }

    pub async fn wait_ready(port: u16) {
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on {port} never came up"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}
