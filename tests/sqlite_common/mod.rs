//! Helpers for the SQLite store tests: temporary database files and raw access to them.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use tower_session_jwt::StoreError;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::store::{FeedCursor, RevocationFeed};

/// A database file in the system's temporary directory, removed (with its WAL and shared
/// memory files) when dropped.
pub struct TempDb {
    path: PathBuf,
}

impl TempDb {
    pub fn new(label: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let id = SessionId::generate().unwrap();
        let nonce = id.as_str().trim_start_matches("session-");
        let path = std::env::temp_dir().join(format!(
            "tsj-sqlite-test-{label}-{}-{n}-{nonce}.db",
            std::process::id()
        ));
        Self { path }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A store on this file with the background purge off.
    pub async fn store(&self) -> SqliteStore {
        SqliteStore::builder(&self.path)
            .purge_interval(Duration::ZERO)
            .build()
            .await
            .expect("open the test database")
    }

    /// A plain connection pool on the file, to look at or damage rows behind the store's back.
    pub async fn raw(&self) -> SqlitePool {
        SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(
                SqliteConnectOptions::new()
                    .filename(&self.path)
                    .busy_timeout(Duration::from_secs(5)),
            )
            .await
            .expect("open the test database directly")
    }

    pub fn remove_files(&self) {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.path.display()));
        }
    }
}

impl Drop for TempDb {
    fn drop(&mut self) {
        self.remove_files();
    }
}

/// A store on its own temporary file, removed with it: what the conformance macro runs on.
pub struct OnTempFile {
    pub store: SqliteStore,
    // Dropped after the store.
    _db: TempDb,
}

impl OnTempFile {
    pub async fn new(label: &str) -> Self {
        let db = TempDb::new(label);
        let store = SqliteStore::open(db.path()).await.expect("open");
        Self { store, _db: db }
    }
}

crate::common::forward::forward_session_store! {
    impl SessionStore for OnTempFile => |this| this.store;
    fn revocation_feed(&self) -> Option<std::sync::Arc<dyn RevocationFeed>> {
        self.store.revocation_feed()
    }
    fn is_shared(&self) -> bool {
        self.store.is_shared()
    }
}

/// Every event of the feed from the start (or after `from`), read without waiting until caught
/// up.
pub async fn read_all(
    feed: &dyn RevocationFeed,
    from: Option<FeedCursor>,
) -> Result<Vec<(FeedCursor, RevocationEvent)>, StoreError> {
    let mut cursor = from;
    let mut out = Vec::new();
    loop {
        let batch = feed.read(cursor.as_ref(), Duration::ZERO).await?;
        if let Some((last, _)) = batch.events.last() {
            cursor = Some(last.clone());
        }
        out.extend(batch.events);
        if batch.caught_up {
            return Ok(out);
        }
    }
}

/// The session id of a session event (panics on a user event).
pub fn session_of(event: &RevocationEvent) -> &SessionId {
    match event {
        RevocationEvent::Session { session_id, .. } => session_id,
        other => panic!("expected a session event, got {other:?}"),
    }
}

/// The `q` quantile of `samples` (sorted in place).
pub fn quantile(samples: &mut [Duration], q: f64) -> Duration {
    samples.sort();
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples[index.min(samples.len() - 1)]
}
