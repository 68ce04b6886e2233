//! A conformance suite for [`SessionStore`] implementations (feature `test-util`).
//!
//! Every check uses fresh random user and session ids, so one store instance can run them all,
//! concurrently with other tests, without being emptied first. A failing check panics with what
//! the store did wrong.
//!
//! The checks read the store only through the trait and judge expiry by the system clock: give
//! the store under test the system clock (the default of [`MemoryStore`](super::MemoryStore)).
//!
//! The `feed_*` checks test the [revocation feed contract](super::RevocationFeed) through
//! [`SessionStore::revocation_feed`]; for a store without a feed (`None`) they return at once.
//! They pick out their own events by their own random session and user ids, so other writers
//! on the same store do not disturb them. [`feed_batches_until_caught_up`] makes 2,500
//! revocations, so that a feed that reads in batches needs several.
//!
//! # Example
//!
//! Run everything from one test:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! tower_session_jwt::store::conformance::run_all(&tower_session_jwt::MemoryStore::new()).await;
//! # });
//! ```
//!
//! or one `#[tokio::test]` per check, so a failure names its check:
//!
//! ```ignore
//! tower_session_jwt::session_store_conformance!(my_store_tests, MyStore::new());
//! ```

mod feed;

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;
use time::OffsetDateTime;

pub use self::feed::{
    feed_batches_until_caught_up, feed_ignores_unknown_revokes, feed_keeps_order,
    feed_late_reader_sees_earlier_revocations, feed_records_revoke_all, feed_replays_from_start,
    feed_reports_caught_up, feed_resumes_from_cursor,
};
use super::{SessionRecord, SessionStore};
use crate::session::{Session, SessionAttributes, SessionId};
use crate::token::{SessionToken, TokenHash};

/// The names of every check, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "create_then_find",
    "unknown_lookups_find_nothing",
    "list_is_per_user",
    "update_is_visible",
    "update_never_resurrects",
    "revoke_removes_everywhere",
    "revoke_all_is_per_user",
    "expired_are_never_returned",
    "expire_in_real_time",
    "concurrent_creates_and_revokes",
    "feed_replays_from_start",
    "feed_resumes_from_cursor",
    "feed_batches_until_caught_up",
    "feed_reports_caught_up",
    "feed_keeps_order",
    "feed_records_revoke_all",
    "feed_late_reader_sees_earlier_revocations",
    "feed_ignores_unknown_revokes",
];

/// Runs every check against `store`.
pub async fn run_all<S: SessionStore>(store: &S) {
    create_then_find(store).await;
    unknown_lookups_find_nothing(store).await;
    list_is_per_user(store).await;
    update_is_visible(store).await;
    update_never_resurrects(store).await;
    revoke_removes_everywhere(store).await;
    revoke_all_is_per_user(store).await;
    expired_are_never_returned(store).await;
    expire_in_real_time(store).await;
    concurrent_creates_and_revokes(store).await;
    feed_replays_from_start(store).await;
    feed_resumes_from_cursor(store).await;
    feed_batches_until_caught_up(store).await;
    feed_reports_caught_up(store).await;
    feed_keeps_order(store).await;
    feed_records_revoke_all(store).await;
    feed_late_reader_sees_earlier_revocations(store).await;
    feed_ignores_unknown_revokes(store).await;
}

/// Generates one `#[tokio::test]` per conformance check in a module named `$module`.
/// `$store` is an expression evaluated afresh in each test.
#[macro_export]
macro_rules! session_store_conformance {
    ($module:ident, $store:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::session_store_conformance!(@tests $store;
                create_then_find, unknown_lookups_find_nothing, list_is_per_user,
                update_is_visible, update_never_resurrects, revoke_removes_everywhere,
                revoke_all_is_per_user, expired_are_never_returned, expire_in_real_time,
                concurrent_creates_and_revokes, feed_replays_from_start, feed_resumes_from_cursor,
                feed_batches_until_caught_up, feed_reports_caught_up, feed_keeps_order,
                feed_records_revoke_all, feed_late_reader_sees_earlier_revocations,
                feed_ignores_unknown_revokes);
        }
    };
    (@tests $store:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $store;
                $crate::store::conformance::$check(&store).await;
            }
        )*
    };
}

fn unique_user(label: &str) -> String {
    format!(
        "conformance-{label}-{}",
        SessionId::generate().unwrap().as_str()
    )
}

/// A record for `user` expiring `ttl` from now, with attributes and custom claims set so that
/// round trips are checked field by field.
pub fn record(user: &str, ttl: Duration) -> SessionRecord {
    let now = OffsetDateTime::now_utc();
    SessionRecord {
        session: Session {
            session_id: SessionId::generate().unwrap(),
            user_id: user.to_owned(),
            started_at: now,
            last_accessed_at: now,
            expires_at: now + ttl,
            attributes: SessionAttributes::new("2001:db8::1", "conformance/1.0 (ünïcode)"),
            custom_claims: json!({"role": "tester", "n": 7, "nested": {"ok": true}})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        },
        token_hash: SessionToken::generate().unwrap().hash(),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn created<S: SessionStore>(store: &S, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    store
        .create(rec.clone())
        .await
        .unwrap_or_else(|e| panic!("create failed: {e}"));
    rec
}

fn sorted(mut sessions: Vec<Session>) -> Vec<Session> {
    sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    sessions
}

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
    assert!(
        store
            .list_by_user(&unique_user("nobody"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.revoke(&id).await.unwrap(),
        None,
        "revoking an unknown id"
    );
    assert!(
        store
            .revoke_all(&unique_user("nobody"))
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
        sorted(store.list_by_user(&alice).await.unwrap()),
        sorted(vec![a1.session.clone(), a2.session.clone()]),
        "alice sees exactly her two sessions"
    );
    assert_eq!(store.list_by_user(&bob).await.unwrap(), vec![b1.session]);
    assert_eq!(
        store.find_by_token(&a2.token_hash).await.unwrap(),
        Some(a2.session),
        "each token finds its own session"
    );
}

/// `update` replaces the record and is visible through every lookup.
pub async fn update_is_visible<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("update"), HOUR).await;
    let mut changed = rec.session.clone();
    changed.last_accessed_at += Duration::from_secs(60);
    changed.expires_at += Duration::from_secs(3 * 3600);
    assert!(
        store.update(&changed).await.unwrap(),
        "update of a live session"
    );
    assert_eq!(
        store.find_by_token(&rec.token_hash).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.get(&changed.session_id).await.unwrap(),
        Some(changed.clone())
    );
    assert_eq!(
        store.list_by_user(&changed.user_id).await.unwrap(),
        vec![changed]
    );
}

/// Updating a revoked or unknown session returns `false` and brings nothing back.
pub async fn update_never_resurrects<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("zombie"), HOUR).await;
    store.revoke(&rec.session.session_id).await.unwrap();
    let mut late = rec.session.clone();
    late.expires_at += HOUR;
    assert!(
        !store.update(&late).await.unwrap(),
        "update after revoke must say false"
    );
    assert_eq!(
        store.get(&late.session_id).await.unwrap(),
        None,
        "revoked session came back"
    );
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert!(store.list_by_user(&late.user_id).await.unwrap().is_empty());

    let never = record(&unique_user("never"), HOUR).session;
    assert!(
        !store.update(&never).await.unwrap(),
        "update of an unknown session"
    );
    assert_eq!(store.get(&never.session_id).await.unwrap(), None);
}

/// `revoke` returns the session once and removes it from every index.
pub async fn revoke_removes_everywhere<S: SessionStore>(store: &S) {
    let user = unique_user("revoke");
    let rec = created(store, &user, HOUR).await;
    let keep = created(store, &user, HOUR).await;
    assert_eq!(
        store.revoke(&rec.session.session_id).await.unwrap(),
        Some(rec.session.clone()),
        "revoke returns what it revoked"
    );
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    assert_eq!(
        store.list_by_user(&user).await.unwrap(),
        vec![keep.session.clone()]
    );
    assert_eq!(
        store.revoke(&rec.session.session_id).await.unwrap(),
        None,
        "second revoke"
    );
    assert_eq!(
        store.get(&keep.session.session_id).await.unwrap(),
        Some(keep.session)
    );
}

/// `revoke_all` removes every session of one user and nobody else's.
pub async fn revoke_all_is_per_user<S: SessionStore>(store: &S) {
    let user = unique_user("all");
    let other = unique_user("other");
    let mine = [
        created(store, &user, HOUR).await,
        created(store, &user, HOUR).await,
        created(store, &user, HOUR).await,
    ];
    let theirs = created(store, &other, HOUR).await;
    let mut revoked = store.revoke_all(&user).await.unwrap();
    revoked.sort();
    let mut expected: Vec<SessionId> = mine.iter().map(|r| r.session.session_id.clone()).collect();
    expected.sort();
    assert_eq!(revoked, expected, "revoke_all returns the revoked ids");
    for rec in &mine {
        assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
        assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    }
    assert!(store.list_by_user(&user).await.unwrap().is_empty());
    assert_eq!(
        store.find_by_token(&theirs.token_hash).await.unwrap(),
        Some(theirs.session.clone()),
        "another user's session survives"
    );
    assert_eq!(
        store.list_by_user(&other).await.unwrap(),
        vec![theirs.session]
    );
}

/// A session whose `expires_at` has passed is never returned.
pub async fn expired_are_never_returned<S: SessionStore>(store: &S) {
    let user = unique_user("expired");
    let mut rec = record(&user, HOUR);
    rec.session.started_at -= Duration::from_secs(7200);
    rec.session.last_accessed_at = rec.session.started_at;
    rec.session.expires_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
    store.create(rec.clone()).await.unwrap();
    let live = created(store, &user, HOUR).await;
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    assert_eq!(store.list_by_user(&user).await.unwrap(), vec![live.session]);
    assert!(
        !store.update(&rec.session).await.unwrap(),
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
    assert!(store.list_by_user(&user).await.unwrap().is_empty());
}

/// Concurrent creates and revokes of one user leave exactly the unrevoked sessions.
pub async fn concurrent_creates_and_revokes<S: SessionStore>(store: &S) {
    let user = unique_user("concurrent");
    let records: Vec<SessionRecord> = (0..32).map(|_| record(&user, HOUR)).collect();
    join_all(records.iter().map(|r| store.create(r.clone())))
        .await
        .into_iter()
        .for_each(|r| r.unwrap());
    let (gone, kept) = records.split_at(16);
    let revoked = join_all(gone.iter().map(|r| store.revoke(&r.session.session_id))).await;
    assert!(revoked.into_iter().all(|r| r.unwrap().is_some()));
    assert_eq!(
        sorted(store.list_by_user(&user).await.unwrap()),
        sorted(kept.iter().map(|r| r.session.clone()).collect())
    );
}
