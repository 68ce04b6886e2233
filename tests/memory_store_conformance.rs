//! MemoryStore passes the public store conformance suite.
#![cfg(feature = "conformance")]

use tower_session_jwt::MemoryStore;

tower_session_jwt::session_store_conformance!(memory_store, MemoryStore::new());

#[tokio::test]
async fn all_checks_on_one_shared_store() {
    // The checks must not interfere with each other on a single store, as they will on Redis.
    let store = MemoryStore::new();
    let (a, b) = tokio::join!(
        tower_session_jwt::store::conformance::run_all(&store),
        tower_session_jwt::store::conformance::run_all(&store)
    );
    let _ = (a, b);
}
