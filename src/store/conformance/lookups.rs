//! The lookup checks: what a created session is found by, what nothing finds, and expiry.

use std::time::Duration;

use time::OffsetDateTime;

use super::{HOUR, create, created, list, next_version, plain_update, record, sorted, unique_user};
use crate::data::session::SessionId;
use crate::data::token::TokenHash;
use crate::store::{SessionStore, UpdateOutcome};

/// A created session is found by token hash and by id, every field intact.
pub async fn create_then_find<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("find"), HOUR).await;
    assert_eq!(
        store.find_by_token(&rec.token_hash).await.unwrap(),
        Some(rec.session.clone()),
        "find_by_token must return the created session unchanged"
    );
    assert_eq!(
        store.get(&rec.session.session_id).await.unwrap(),
        Some(rec.session.clone()),
        "get must return the created session unchanged"
    );
}

/// Unknown token hashes, ids and users find nothing (and are not errors).
pub async fn unknown_lookups_find_nothing<S: SessionStore>(store: &S) {
    let hash = TokenHash::of("never-issued");
    assert_eq!(store.find_by_token(&hash).await.unwrap(), None);
    let id = SessionId::generate().unwrap();
    assert_eq!(store.get(&id).await.unwrap(), None);
    assert!(list(store, &unique_user("nobody")).await.is_empty());
    assert_eq!(
        store.revoke(&id).await.unwrap(),
        None,
        "revoking an unknown id"
    );
    assert!(
        store
            .revoke_all(&unique_user("nobody"), None)
            .await
            .unwrap()
            .is_empty()
    );
}

/// `list_by_user` returns exactly that user's live sessions; each token finds its own session.
pub async fn list_is_per_user<S: SessionStore>(store: &S) {
    let alice = unique_user("alice");
    let bob = unique_user("bob");
    let a1 = created(store, &alice, HOUR).await;
    let a2 = created(store, &alice, HOUR).await;
    let b1 = created(store, &bob, HOUR).await;
    assert_eq!(
        sorted(list(store, &alice).await),
        sorted(vec![a1.session.clone(), a2.session.clone()]),
        "alice sees exactly her two sessions"
    );
    assert_eq!(list(store, &bob).await, vec![b1.session]);
    assert_eq!(
        store.find_by_token(&a2.token_hash).await.unwrap(),
        Some(a2.session),
        "each token finds its own session"
    );
}

/// A session whose `expires_at` has passed is never returned.
pub async fn expired_are_never_returned<S: SessionStore>(store: &S) {
    let user = unique_user("expired");
    let mut rec = record(&user, HOUR);
    rec.session.started_at -= Duration::from_secs(7200);
    rec.session.last_accessed_at = rec.session.started_at;
    rec.session.expires_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
    create(store, &rec).await;
    let live = created(store, &user, HOUR).await;
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    assert_eq!(list(store, &user).await, vec![live.session]);
    assert_eq!(
        store
            .update(&plain_update(next_version(&rec.session)))
            .await
            .unwrap(),
        UpdateOutcome::Gone,
        "update of an expired session"
    );
}

/// A session stops being returned once its lifetime passes (waits about 1.5 s).
pub async fn expire_in_real_time<S: SessionStore>(store: &S) {
    let user = unique_user("ttl");
    let rec = created(store, &user, Duration::from_millis(1000)).await;
    assert!(store.get(&rec.session.session_id).await.unwrap().is_some());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    assert!(list(store, &user).await.is_empty());
}
