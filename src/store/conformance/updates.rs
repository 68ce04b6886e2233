//! The update checks: visibility, the version check, token rotation, no resurrection.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::json;

use super::{HOUR, created, list, next_version, plain_update, record, unique_user};
use crate::data::token::SessionToken;
use crate::store::{SessionStore, SessionUpdate, UpdateOutcome};

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
