//! A conformance suite for [`SessionStore`] implementations (feature `conformance`).
//!
//! Every check uses fresh random user and session ids, so one store instance can run them all,
//! concurrently with other tests, without being emptied first. A failing check panics with what
//! the store did wrong.
//!
//! The checks read the store only through the trait and judge expiry by the system clock: give
//! the store under test the system clock (the default of [`MemoryStore`](crate::MemoryStore)).
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
    feed_late_reader_sees_earlier_revocations, feed_records_evictions, feed_records_refused_jwts,
    feed_records_revoke_all, feed_records_revoke_others, feed_replays_from_start,
    feed_reports_caught_up, feed_resumes_from_cursor, feed_revoke_all_holds_across_skewed_clocks,
};
use super::{
    CreateOutcome, PageRequest, SessionLimit, SessionRecord, SessionStore, SessionUpdate,
    UpdateOutcome, WhenFull,
};
use crate::data::session::{Session, SessionAttributes, SessionId};
use crate::data::token::{SessionToken, TokenHash};

/// The names of every check, in the order [`run_all`] runs them.
pub const CHECKS: &[&str] = &[
    "create_then_find",
    "unknown_lookups_find_nothing",
    "list_is_per_user",
    "update_is_visible",
    "update_never_resurrects",
    "update_checks_the_version",
    "update_rotates_the_token",
    "revoke_removes_everywhere",
    "revoke_all_is_per_user",
    "revoke_all_but_one",
    "expired_are_never_returned",
    "expire_in_real_time",
    "concurrent_creates_and_revokes",
    "list_pages_newest_first",
    "limit_revokes_the_oldest",
    "limit_refuses_when_full",
    "limit_holds_under_concurrent_creates",
    "feed_replays_from_start",
    "feed_resumes_from_cursor",
    "feed_batches_until_caught_up",
    "feed_reports_caught_up",
    "feed_keeps_order",
    "feed_records_revoke_all",
    "feed_revoke_all_holds_across_skewed_clocks",
    "feed_late_reader_sees_earlier_revocations",
    "feed_ignores_unknown_revokes",
    "feed_records_refused_jwts",
    "feed_records_evictions",
    "feed_records_revoke_others",
];

/// Runs every check against `store`.
pub async fn run_all<S: SessionStore>(store: &S) {
    create_then_find(store).await;
    unknown_lookups_find_nothing(store).await;
    list_is_per_user(store).await;
    update_is_visible(store).await;
    update_never_resurrects(store).await;
    update_checks_the_version(store).await;
    update_rotates_the_token(store).await;
    revoke_removes_everywhere(store).await;
    revoke_all_is_per_user(store).await;
    revoke_all_but_one(store).await;
    expired_are_never_returned(store).await;
    expire_in_real_time(store).await;
    concurrent_creates_and_revokes(store).await;
    list_pages_newest_first(store).await;
    limit_revokes_the_oldest(store).await;
    limit_refuses_when_full(store).await;
    limit_holds_under_concurrent_creates(store).await;
    feed_replays_from_start(store).await;
    feed_resumes_from_cursor(store).await;
    feed_batches_until_caught_up(store).await;
    feed_reports_caught_up(store).await;
    feed_keeps_order(store).await;
    feed_records_revoke_all(store).await;
    feed_revoke_all_holds_across_skewed_clocks(store).await;
    feed_late_reader_sees_earlier_revocations(store).await;
    feed_ignores_unknown_revokes(store).await;
    feed_records_refused_jwts(store).await;
    feed_records_evictions(store).await;
    feed_records_revoke_others(store).await;
}

/// Generates one `#[tokio::test]` per conformance check in a module named `$module`.
/// `$store` is an expression evaluated afresh in each test.
#[macro_export]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
macro_rules! session_store_conformance {
    ($module:ident, $store:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::session_store_conformance!(@tests $store;
                create_then_find, unknown_lookups_find_nothing, list_is_per_user,
                update_is_visible, update_never_resurrects, update_checks_the_version,
                update_rotates_the_token, revoke_removes_everywhere, revoke_all_is_per_user,
                revoke_all_but_one, expired_are_never_returned, expire_in_real_time,
                concurrent_creates_and_revokes, list_pages_newest_first, limit_revokes_the_oldest,
                limit_refuses_when_full, limit_holds_under_concurrent_creates,
                feed_replays_from_start, feed_resumes_from_cursor,
                feed_batches_until_caught_up, feed_reports_caught_up, feed_keeps_order,
                feed_records_revoke_all, feed_revoke_all_holds_across_skewed_clocks,
                feed_late_reader_sees_earlier_revocations,
                feed_ignores_unknown_revokes, feed_records_refused_jwts, feed_records_evictions,
                feed_records_revoke_others);
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
        session: Session::new(SessionId::generate().unwrap(), user, now, now + ttl)
            .with_attributes(SessionAttributes::new(
                "2001:db8::1",
                "conformance/1.0 (ünïcode)",
            ))
            .with_custom_claims(
                json!({"role": "tester", "n": 7, "nested": {"ok": true}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
            .with_authentication_factors(vec![
                crate::data::session::AuthenticationFactor::of_type("password", now)
                    .expect("a valid factor"),
            ]),
        token_hash: SessionToken::generate().unwrap().hash(),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn created<S: SessionStore>(store: &S, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    create(store, &rec).await;
    rec
}

/// Creates `rec` with no session limit.
async fn create<S: SessionStore>(store: &S, rec: &SessionRecord) {
    let outcome = store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .unwrap_or_else(|e| panic!("create failed: {e}"));
    assert_eq!(
        outcome,
        CreateOutcome::Created { evicted: vec![] },
        "an unlimited create evicts nothing"
    );
}

/// Every live session of `user` through the paginated listing (pages of 1,000).
async fn list<S: SessionStore>(store: &S, user: &str) -> Vec<Session> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(1000);
    page.limit = 1000;
    loop {
        let found = store
            .list_by_user(user, &page)
            .await
            .unwrap_or_else(|e| panic!("list_by_user failed: {e}"));
        out.extend(found.sessions);
        match found.next {
            Some(next) => page.after = Some(next),
            None => return out,
        }
    }
}

/// `session` with its version one higher, as an update writes it.
fn next_version(session: &Session) -> Session {
    Session {
        version: session.version + 1,
        ..session.clone()
    }
}

fn plain_update(session: Session) -> SessionUpdate {
    SessionUpdate {
        session,
        token_hash: None,
        refuse_older_jwts: false,
    }
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

/// `update` replaces the record (the next version) and is visible through every lookup.
pub async fn update_is_visible<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("update"), HOUR).await;
    let mut changed = next_version(&rec.session);
    changed.last_accessed_at += Duration::from_secs(60);
    changed.expires_at += Duration::from_secs(3 * 3600);
    changed.custom_claims.insert("role".into(), json!("admin"));
    changed.custom_claims.remove("n");
    // A device binding (DBSC) is part of the record like any other field.
    changed.device_binding = Some(Box::new(crate::data::device::DeviceBinding {
        key: Some(crate::proof::DeviceKey::P256 {
            crv: "P-256".into(),
            x: "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU".into(),
            y: "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0".into(),
        }),
        bound_at: Some(changed.last_accessed_at),
        challenge: Some(crate::data::device::DeviceChallenge {
            value: "c2luZ2xlLXVzZS1jaGFsbGVuZ2U".into(),
            issued_at: changed.last_accessed_at,
        }),
    }));
    assert_eq!(
        store.update(&plain_update(changed.clone())).await.unwrap(),
        UpdateOutcome::Updated,
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
    assert_eq!(list(store, &changed.user_id).await, vec![changed]);
}

/// Updating a revoked or unknown session says `Gone` and brings nothing back.
pub async fn update_never_resurrects<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("zombie"), HOUR).await;
    store.revoke(&rec.session.session_id).await.unwrap();
    let mut late = next_version(&rec.session);
    late.expires_at += HOUR;
    assert_eq!(
        store.update(&plain_update(late.clone())).await.unwrap(),
        UpdateOutcome::Gone,
        "update after revoke"
    );
    assert_eq!(
        store.get(&late.session_id).await.unwrap(),
        None,
        "revoked session came back"
    );
    assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    assert!(list(store, &late.user_id).await.is_empty());

    let never = next_version(&record(&unique_user("never"), HOUR).session);
    assert_eq!(
        store.update(&plain_update(never.clone())).await.unwrap(),
        UpdateOutcome::Gone,
        "update of an unknown session"
    );
    assert_eq!(store.get(&never.session_id).await.unwrap(), None);
}

/// An update whose base version is not the stored one is refused as `Stale` and writes
/// nothing; of concurrent updates from one version, exactly one wins.
pub async fn update_checks_the_version<S: SessionStore>(store: &S) {
    let rec = created(store, &unique_user("version"), HOUR).await;
    let v1 = next_version(&rec.session);
    assert_eq!(
        store.update(&plain_update(v1.clone())).await.unwrap(),
        UpdateOutcome::Updated
    );
    // Another writer still holding version 0 must not overwrite version 1.
    let mut stale = next_version(&rec.session);
    stale.custom_claims.insert("role".into(), json!("stale"));
    assert_eq!(
        store.update(&plain_update(stale)).await.unwrap(),
        UpdateOutcome::Stale,
        "an update from an old version"
    );
    let mut skip = next_version(&next_version(&v1));
    skip.custom_claims.insert("role".into(), json!("skipped"));
    assert_eq!(
        store.update(&plain_update(skip)).await.unwrap(),
        UpdateOutcome::Stale,
        "an update that skips a version"
    );
    assert_eq!(store.get(&v1.session_id).await.unwrap(), Some(v1.clone()));

    let racers: Vec<SessionUpdate> = (0..16)
        .map(|i| {
            let mut s = next_version(&v1);
            s.custom_claims.insert("winner".into(), json!(i));
            plain_update(s)
        })
        .collect();
    let outcomes = join_all(racers.iter().map(|u| store.update(u))).await;
    let winners: Vec<usize> = outcomes
        .into_iter()
        .enumerate()
        .filter_map(|(i, o)| (o.unwrap() == UpdateOutcome::Updated).then_some(i))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one concurrent update wins: {winners:?}"
    );
    assert_eq!(
        store.get(&v1.session_id).await.unwrap(),
        Some(racers[winners[0]].session.clone())
    );
}

/// An update with a new token hash rotates the token: the old hash finds nothing at once, the
/// new one finds the session.
pub async fn update_rotates_the_token<S: SessionStore>(store: &S) {
    let user = unique_user("rotate");
    let rec = created(store, &user, HOUR).await;
    let new_hash = SessionToken::generate().unwrap().hash();
    let rotated = next_version(&rec.session);
    let update = SessionUpdate {
        session: rotated.clone(),
        token_hash: Some(new_hash),
        refuse_older_jwts: true,
    };
    assert_eq!(store.update(&update).await.unwrap(), UpdateOutcome::Updated);
    assert_eq!(
        store.find_by_token(&rec.token_hash).await.unwrap(),
        None,
        "the old token still finds the session after a rotation"
    );
    assert_eq!(
        store.find_by_token(&new_hash).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(
        store.get(&rotated.session_id).await.unwrap(),
        Some(rotated.clone())
    );
    assert_eq!(list(store, &user).await, vec![rotated.clone()]);
    // Revoking the rotated session removes the new token too.
    store.revoke(&rotated.session_id).await.unwrap();
    assert_eq!(store.find_by_token(&new_hash).await.unwrap(), None);
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
    assert_eq!(list(store, &user).await, vec![keep.session.clone()]);
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
    let mut revoked = store.revoke_all(&user, None).await.unwrap();
    revoked.sort();
    let mut expected: Vec<SessionId> = mine.iter().map(|r| r.session.session_id.clone()).collect();
    expected.sort();
    assert_eq!(revoked, expected, "revoke_all returns the revoked ids");
    for rec in &mine {
        assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
        assert_eq!(store.get(&rec.session.session_id).await.unwrap(), None);
    }
    assert!(list(store, &user).await.is_empty());
    assert_eq!(
        store.find_by_token(&theirs.token_hash).await.unwrap(),
        Some(theirs.session.clone()),
        "another user's session survives"
    );
    assert_eq!(list(store, &other).await, vec![theirs.session]);
}

/// `revoke_all` with an exception removes every other session of the user and keeps that one.
pub async fn revoke_all_but_one<S: SessionStore>(store: &S) {
    let user = unique_user("others");
    let keep = created(store, &user, HOUR).await;
    let others = [
        created(store, &user, HOUR).await,
        created(store, &user, HOUR).await,
    ];
    let theirs = created(store, &unique_user("others-other"), HOUR).await;
    let mut revoked = store
        .revoke_all(&user, Some(&keep.session.session_id))
        .await
        .unwrap();
    revoked.sort();
    let mut expected: Vec<SessionId> = others
        .iter()
        .map(|r| r.session.session_id.clone())
        .collect();
    expected.sort();
    assert_eq!(revoked, expected, "every other session, and only those");
    for rec in &others {
        assert_eq!(store.find_by_token(&rec.token_hash).await.unwrap(), None);
    }
    assert_eq!(
        store.find_by_token(&keep.token_hash).await.unwrap(),
        Some(keep.session.clone()),
        "the kept session survives"
    );
    assert_eq!(list(store, &user).await, vec![keep.session]);
    assert!(
        store
            .get(&theirs.session.session_id)
            .await
            .unwrap()
            .is_some()
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

/// Concurrent creates and revokes of one user leave exactly the unrevoked sessions.
pub async fn concurrent_creates_and_revokes<S: SessionStore>(store: &S) {
    let user = unique_user("concurrent");
    let records: Vec<SessionRecord> = (0..32).map(|_| record(&user, HOUR)).collect();
    join_all(records.iter().map(|r| create(store, r))).await;
    let (gone, kept) = records.split_at(16);
    let revoked = join_all(gone.iter().map(|r| store.revoke(&r.session.session_id))).await;
    assert!(revoked.into_iter().all(|r| r.unwrap().is_some()));
    assert_eq!(
        sorted(list(store, &user).await),
        sorted(kept.iter().map(|r| r.session.clone()).collect())
    );
}

/// A record of `user` that started `ago` before now (for listing order).
fn started_ago(user: &str, ago: Duration) -> SessionRecord {
    let mut rec = record(user, HOUR);
    rec.session.started_at -= ago;
    rec.session.last_accessed_at = rec.session.started_at;
    rec
}

/// Listing pages newest first (`started_at` to the millisecond, then id, both descending),
/// every session exactly once, with a cursor only while more follow.
pub async fn list_pages_newest_first<S: SessionStore>(store: &S) {
    let user = unique_user("pages");
    let mut records: Vec<SessionRecord> = (0..7u64)
        .map(|i| started_ago(&user, Duration::from_secs(60 * (7 - i))))
        .collect();
    // Two sessions started in the same millisecond: the id breaks the tie.
    let mut twin = record(&user, HOUR);
    twin.session.started_at = records[3].session.started_at;
    twin.session.last_accessed_at = twin.session.started_at;
    records.push(twin);
    for rec in &records {
        create(store, rec).await;
    }
    let mut expected: Vec<Session> = records.iter().map(|r| r.session.clone()).collect();
    crate::store::sort_for_listing(&mut expected);

    let mut page = PageRequest::first(3);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let found = store.list_by_user(&user, &page).await.unwrap();
        pages += 1;
        assert!(found.sessions.len() <= 3, "a page longer than its limit");
        seen.extend(found.sessions.clone());
        match found.next {
            Some(next) => {
                assert_eq!(
                    Some(next.clone()),
                    found.sessions.last().map(crate::store::PageCursor::after),
                    "the cursor names the page's last session"
                );
                page.after = Some(next);
            }
            None => break,
        }
        assert!(pages < 10, "the listing never ended");
    }
    assert_eq!(seen, expected, "pages in order, each session once");
    assert_eq!(pages, 3, "8 sessions in pages of 3");

    // A page exactly as long as what is left has no cursor.
    let all = store
        .list_by_user(&user, &PageRequest::first(8))
        .await
        .unwrap();
    assert_eq!(all.sessions, expected);
    assert_eq!(all.next, None, "a cursor after the last session");
    // A revoked session leaves the listing; the cursor of a revoked session still works.
    let cursor = crate::store::PageCursor::after(&expected[2]);
    store.revoke(&expected[2].session_id).await.unwrap();
    let rest = store
        .list_by_user(&user, &PageRequest::after(cursor, 100))
        .await
        .unwrap();
    assert_eq!(rest.sessions, expected[3..].to_vec());
}

/// At the limit, a create revokes the oldest sessions (by `started_at`) to make room and says
/// which; the others and other users' sessions are untouched.
pub async fn limit_revokes_the_oldest<S: SessionStore>(store: &S) {
    let user = unique_user("limit");
    let limit = SessionLimit::new(3, WhenFull::RevokeOldest);
    let old: Vec<SessionRecord> = (0..3u64)
        .map(|i| started_ago(&user, Duration::from_secs(600 - 60 * i)))
        .collect();
    for rec in &old {
        assert_eq!(
            store.create(rec.clone(), limit).await.unwrap(),
            CreateOutcome::Created { evicted: vec![] },
            "within the limit nothing is evicted"
        );
    }
    let other = created(store, &unique_user("limit-other"), HOUR).await;
    let newest = record(&user, HOUR);
    assert_eq!(
        store.create(newest.clone(), limit).await.unwrap(),
        CreateOutcome::Created {
            evicted: vec![old[0].session.session_id.clone()]
        },
        "the oldest session makes room"
    );
    assert_eq!(store.find_by_token(&old[0].token_hash).await.unwrap(), None);
    assert_eq!(store.get(&old[0].session.session_id).await.unwrap(), None);
    let mut expected = vec![
        newest.session.clone(),
        old[2].session.clone(),
        old[1].session.clone(),
    ];
    crate::store::sort_for_listing(&mut expected);
    assert_eq!(list(store, &user).await, expected);
    assert!(
        store
            .get(&other.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
    // A lower limit evicts as many as it takes.
    let tight = SessionLimit::new(1, WhenFull::RevokeOldest);
    let last = record(&user, HOUR);
    let CreateOutcome::Created { evicted } = store.create(last.clone(), tight).await.unwrap()
    else {
        panic!("RevokeOldest never refuses");
    };
    assert_eq!(evicted.len(), 3, "down to the one new session");
    assert_eq!(list(store, &user).await, vec![last.session]);
}

/// At the limit, a `Refuse` limit stores nothing; expired sessions do not count.
pub async fn limit_refuses_when_full<S: SessionStore>(store: &S) {
    let user = unique_user("refuse");
    let limit = SessionLimit::new(2, WhenFull::Refuse);
    let mut expired = record(&user, HOUR);
    expired.session.started_at -= Duration::from_secs(7200);
    expired.session.last_accessed_at = expired.session.started_at;
    expired.session.expires_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
    create(store, &expired).await;
    let a = record(&user, HOUR);
    let b = record(&user, HOUR);
    for rec in [&a, &b] {
        assert_eq!(
            store.create(rec.clone(), limit).await.unwrap(),
            CreateOutcome::Created { evicted: vec![] },
            "an expired session counted against the limit"
        );
    }
    let c = record(&user, HOUR);
    assert_eq!(
        store.create(c.clone(), limit).await.unwrap(),
        CreateOutcome::LimitReached
    );
    assert_eq!(store.find_by_token(&c.token_hash).await.unwrap(), None);
    assert_eq!(store.get(&c.session.session_id).await.unwrap(), None);
    assert_eq!(list(store, &user).await.len(), 2);
    // Room again after a revoke.
    store.revoke(&a.session.session_id).await.unwrap();
    assert_eq!(
        store.create(c.clone(), limit).await.unwrap(),
        CreateOutcome::Created { evicted: vec![] }
    );
}

/// Two stores over one backend (two processes on one file, two instances on one server)
/// creating sessions of one user at once never take the user past the limit, with either
/// policy, and each eviction is reported once. Not part of [`run_all`], which has one store:
/// call it with two, from a multi-threaded runtime so that the creates run in parallel.
pub async fn limit_holds_across_stores<S: SessionStore + Clone>(a: &S, b: &S) {
    for when_full in [WhenFull::RevokeOldest, WhenFull::Refuse] {
        let user = unique_user("limit-across");
        let limit = SessionLimit::new(4, when_full);
        let records: Vec<SessionRecord> = (0..20).map(|_| record(&user, HOUR)).collect();
        let outcomes = join_all(records.iter().enumerate().map(|(i, r)| {
            let store = if i % 2 == 0 { a.clone() } else { b.clone() };
            let r = r.clone();
            tokio::spawn(async move { store.create(r, limit).await.unwrap() })
        }))
        .await;
        let mut created_n = 0;
        let mut evicted = Vec::new();
        for outcome in outcomes {
            if let CreateOutcome::Created { evicted: gone } = outcome.unwrap() {
                created_n += 1;
                evicted.extend(gone);
            }
        }
        assert_eq!(list(a, &user).await.len(), 4, "{when_full:?}");
        match when_full {
            WhenFull::RevokeOldest => {
                assert_eq!(created_n, 20);
                assert_eq!(evicted.len(), 16, "each eviction reported once");
                let distinct: std::collections::HashSet<_> = evicted.iter().collect();
                assert_eq!(distinct.len(), 16);
            }
            _ => assert_eq!(created_n, 4),
        }
    }
}

/// Concurrent creates never take a user past the limit, with either policy.
pub async fn limit_holds_under_concurrent_creates<S: SessionStore>(store: &S) {
    for when_full in [WhenFull::RevokeOldest, WhenFull::Refuse] {
        let user = unique_user("limit-race");
        let limit = SessionLimit::new(5, when_full);
        let records: Vec<SessionRecord> = (0..24).map(|_| record(&user, HOUR)).collect();
        let outcomes = join_all(records.iter().map(|r| store.create(r.clone(), limit))).await;
        let mut created_n = 0;
        let mut evicted_n = 0;
        for outcome in outcomes {
            match outcome.unwrap() {
                CreateOutcome::Created { evicted } => {
                    created_n += 1;
                    evicted_n += evicted.len();
                }
                CreateOutcome::LimitReached => {}
            }
        }
        let live = list(store, &user).await;
        assert_eq!(live.len(), 5, "{when_full:?}: {} live sessions", live.len());
        match when_full {
            WhenFull::RevokeOldest => {
                assert_eq!(created_n, 24);
                assert_eq!(evicted_n, 19, "each eviction reported once");
            }
            _ => assert_eq!(created_n, 5, "exactly the room there was"),
        }
    }
}
