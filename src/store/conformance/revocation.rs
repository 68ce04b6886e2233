//! The revocation checks: `revoke` and `revoke_all`, alone and concurrent with creates.

use futures_util::future::join_all;

use super::{HOUR, create, created, list, record, sorted, unique_user};
use crate::data::session::SessionId;
use crate::store::{SessionRecord, SessionStore};

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
