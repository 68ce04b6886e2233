//! Feed checks with two stores on one backend: concurrent writers through both.

use std::collections::{HashMap, HashSet};

use super::feed::{Subject, feed_of, replay};
use super::{HOUR, created, unique_user};
use crate::data::session::SessionId;
use crate::store::{RevocationEvent, SessionStore};

/// Feed, two stores over one backend: revocations made at once through both, by two writers
/// each (150 revocations and three `revoke_all` per writer), all reach both feeds, each once and
/// every writer's in order, with one user event per `revoke_all`. Not part of
/// [`run_all`](super::run_all), which has one store: call it with two, from a multi-threaded
/// runtime so that the writers run in parallel.
pub async fn feed_holds_concurrent_revocations_across_stores<S: SessionStore + Clone>(
    a: &S,
    b: &S,
) {
    let (Some(feed_a), Some(feed_b)) = (feed_of(a), feed_of(b)) else {
        return;
    };
    const PER_WRITER: usize = 150;
    let mut writers = Vec::new();
    let mut users = Vec::new();
    for (name, store) in [("a", a), ("b", b)] {
        for task in 0..2 {
            let store = store.clone();
            let user = unique_user(&format!("feed-across-{name}-{task}"));
            users.push(user.clone());
            writers.push(tokio::spawn(async move {
                let mut order = Vec::with_capacity(PER_WRITER);
                for i in 0..PER_WRITER {
                    let rec = created(&store, &user, HOUR).await;
                    assert!(
                        store
                            .revoke(&rec.session.session_id)
                            .await
                            .unwrap()
                            .is_some()
                    );
                    order.push(rec.session.session_id);
                    if i % 50 == 49 {
                        store.revoke_all(&user, None).await.unwrap();
                    }
                }
                order
            }));
        }
    }
    let mut made = Vec::new();
    for writer in writers {
        made.push(writer.await.unwrap());
    }

    let mut wanted: Vec<Subject> = made
        .iter()
        .flatten()
        .map(|id| Subject::Session(id.clone()))
        .collect();
    wanted.extend(users.into_iter().map(Subject::User));
    let through_a = replay(&*feed_a, None, &wanted).await.mine;
    let through_b = replay(&*feed_b, None, &wanted).await.mine;
    assert_eq!(through_a, through_b, "both stores read the same feed");
    let sessions: Vec<&SessionId> = through_a
        .iter()
        .filter_map(|(_, e)| match e {
            RevocationEvent::Session { session_id, .. } => Some(session_id),
            RevocationEvent::User { .. } => None,
        })
        .collect();
    let user_events = through_a.len() - sessions.len();
    assert_eq!(
        user_events,
        4 * (PER_WRITER / 50),
        "every revoke_all is in the feed once"
    );
    assert_eq!(
        sessions.len(),
        4 * PER_WRITER,
        "every revocation is in the feed"
    );
    assert_eq!(
        sessions.iter().collect::<HashSet<_>>().len(),
        sessions.len(),
        "no revocation twice"
    );
    let position: HashMap<&SessionId, usize> = sessions
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, i))
        .collect();
    for order in &made {
        let seen: Vec<usize> = order.iter().map(|id| position[id]).collect();
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "one writer's revocations arrived out of order"
        );
    }
}
