//! The session limit checks: eviction of the oldest, refusal, and the limit under races.

use std::time::Duration;

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::{HOUR, create, created, list, record, started_ago, unique_user};
use crate::store::{CreateOutcome, SessionLimit, SessionRecord, SessionStore, WhenFull};

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
/// policy, and each eviction is reported once. Not part of [`run_all`](super::run_all), which has one store:
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
