//! Helpers for the PostgreSQL store tests: the server URL, a fresh schema per test and its
//! cleanup, and a private server for tests that stop it.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tower_session_jwt::StoreError;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::RevocationFeed;
use tower_session_jwt::store::postgres::{PostgresStore, PostgresStoreBuilder};

/// The database the tests use: `DATABASE_URL`, default `postgres://postgres@127.0.0.1:5432/test`.
pub fn database_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// Whether a missing server must fail the test rather than skip it.
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

/// A fresh schema name: `tsjtest_<label>_<random>`.
pub fn unique_schema(label: &str) -> String {
    let random = SessionId::generate().unwrap();
    let random: String = random.as_str()["session-".len()..]
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(16)
        .collect();
    format!("tsjtest_{label}_{}", random.to_ascii_lowercase())
}

/// A builder with the test defaults: a small pool (many tests run at once).
pub fn builder(url: &str, schema: &str) -> PostgresStoreBuilder {
    PostgresStore::builder(url).schema(schema).pool_size(4)
}

/// A store in a schema of its own on [`database_url`]; drops the schema when dropped, also when
/// the test panics.
pub struct TestStore {
    pub store: PostgresStore,
    pub schema: String,
    pub url: String,
}

impl TestStore {
    /// Connects, or returns `None` after [`unavailable`] when the server cannot be reached.
    pub async fn new(test: &str) -> Option<Self> {
        Self::with(test, |b| b).await
    }

    /// Like [`new`](Self::new), with the builder adjusted by `configure`.
    pub async fn with(
        test: &str,
        configure: impl FnOnce(PostgresStoreBuilder) -> PostgresStoreBuilder,
    ) -> Option<Self> {
        let url = database_url();
        let schema = unique_schema(test);
        match configure(builder(&url, &schema)).build().await {
            Ok(store) => Some(Self { store, schema, url }),
            Err(e @ StoreError::Unavailable(_)) => {
                unavailable(test, &format!("cannot reach PostgreSQL at {url}: {e}"));
                None
            }
            Err(e) => panic!("{test}: cannot build the store: {e}"),
        }
    }

    /// Another store (own pool and listener) over the same schema, as another instance would
    /// have.
    pub async fn another(&self) -> PostgresStore {
        builder(&self.url, &self.schema)
            .build()
            .await
            .expect("second store on the same schema")
    }

    /// A plain pool for inspecting and tampering with rows.
    pub async fn raw(&self) -> sqlx::PgPool {
        sqlx::postgres::PgPoolOptions::new()
            .max_connections(4)
            .connect(&self.url)
            .await
            .expect("raw connection to PostgreSQL")
    }
}

impl Drop for TestStore {
    fn drop(&mut self) {
        drop_schema(&self.url, &self.schema);
    }
}

/// Drops `schema` on a thread of its own (so that it also runs from `Drop` during a panic or
/// inside a runtime).
///
/// The test's runtime is blocked meanwhile, so a connection of the test's pool that still holds
/// a lock in the schema (a transaction cut short by a timeout, whose rollback the pool would
/// send from a task of that very runtime) cannot let go: the drop waits for locks at most a
/// moment, then ends the backends holding them and tries again. It never waits forever.
pub fn drop_schema(url: &str, schema: &str) {
    let url = url.to_owned();
    let schema = schema.to_owned();
    let _ = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            use sqlx::Connection as _;
            let connect = sqlx::PgConnection::connect(&url);
            let Ok(Ok(mut conn)) = tokio::time::timeout(Duration::from_secs(5), connect).await
            else {
                return;
            };
            let drop = format!("DROP SCHEMA IF EXISTS {schema} CASCADE");
            let _ = sqlx::query("SET lock_timeout = '3s'")
                .execute(&mut conn)
                .await;
            for _ in 0..3 {
                if sqlx::query(&drop).execute(&mut conn).await.is_ok() {
                    break;
                }
                let _ = sqlx::query(
                    "SELECT pg_terminate_backend(l.pid) FROM pg_locks l \
                     JOIN pg_class c ON c.oid = l.relation \
                     JOIN pg_namespace n ON n.oid = c.relnamespace \
                     WHERE n.nspname = $1 AND l.pid <> pg_backend_pid()",
                )
                .bind(&schema)
                .execute(&mut conn)
                .await;
            }
            let _ = conn.close().await;
        });
    })
    .join();
}

// The conformance checks run against `TestStore` itself, so that each test's schema is dropped
// when it ends.
crate::common::forward::forward_session_store! {
    impl SessionStore for TestStore => |this| this.store;
    fn revocation_feed(&self) -> Option<std::sync::Arc<dyn RevocationFeed>> {
        self.store.revocation_feed()
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Where `initdb`, `pg_ctl` and `postgres` are: `PG_BIN`, `/usr/local/bin`, the Debian
/// packages' directories, or the `PATH`.
fn pg_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PG_BIN")
        .map(PathBuf::from)
        .into_iter()
        .collect();
    candidates.push("/usr/local/bin".into());
    if let Ok(entries) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut versions: Vec<PathBuf> = entries.flatten().map(|e| e.path().join("bin")).collect();
        versions.sort();
        candidates.extend(versions.into_iter().rev());
    }
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("initdb").is_file() && dir.join("pg_ctl").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A PostgreSQL server of the test's own, in a temporary directory; stopped and removed on drop.
/// Run as the `postgres` user when the tests run as root (the server refuses root).
pub struct Server {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
}

impl Server {
    /// Creates a cluster (`initdb`) and starts it on `port`, listening on 127.0.0.1 only.
    pub fn start(port: u16) -> Result<Self, String> {
        let bin = pg_bin().ok_or("no initdb/pg_ctl found (set PG_BIN)")?;
        let as_postgres = is_root();
        let dir = std::env::temp_dir().join(format!("tsj-pg-{port}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| format!("mkdir {}: {e}", dir.display()))?;
        let server = Self {
            port,
            dir,
            bin,
            as_postgres,
        };
        if as_postgres {
            server.run(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(&server.dir),
                false,
            )?;
        }
        let data = server.data();
        server.run(
            server.tool("initdb").arg("-D").arg(&data).args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
            ]),
            true,
        )?;
        server.start_again()?;
        Ok(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    fn tool(&self, name: &str) -> Command {
        let path = self.bin.join(name);
        if self.as_postgres {
            let mut command = Command::new("runuser");
            command.args(["-u", "postgres", "--"]).arg(path);
            command
        } else {
            Command::new(path)
        }
    }

    fn run(&self, command: &mut Command, quiet: bool) -> Result<(), String> {
        if quiet {
            command.stdout(Stdio::null()).stderr(Stdio::null());
        }
        let status = command.status().map_err(|e| format!("{command:?}: {e}"))?;
        if status.success() {
            Ok(())
        } else {
            Err(format!("{command:?} exited with {status}"))
        }
    }

    /// Starts the (stopped) server again on the same data and port.
    pub fn start_again(&self) -> Result<(), String> {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=50",
            self.port,
            self.dir.display()
        );
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-o", &options, "-l"])
                .arg(self.dir.join("log"))
                .args(["-w", "-t", "30", "start"]),
            true,
        )
    }

    /// Stops the server: `fast` terminates every session (clients see "terminating connection
    /// due to administrator command"); otherwise `immediate`, like a crash.
    pub fn stop(&self, fast: bool) {
        let mode = if fast { "fast" } else { "immediate" };
        let _ = self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "30", "stop"]),
            true,
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Waits until the server accepts connections.
    pub async fn wait_ready(&self) {
        use sqlx::Connection as _;
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(conn) = sqlx::PgConnection::connect(&self.url()).await {
                let _ = conn.close().await;
                return;
            }
            assert!(
                Instant::now() < deadline,
                "PostgreSQL on {} never came up",
                self.port
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop(false);
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
