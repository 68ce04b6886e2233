//! The revocation feed checks of the conformance suite (see the [parent module](super)).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use time::OffsetDateTime;

use super::{HOUR, created, next_version, plain_update, record, unique_user};
use crate::data::session::SessionId;
use crate::store::RevocationEvent;
use crate::store::{
    CreateOutcome, FeedCursor, RevocationFeed, SessionLimit, SessionRecord, SessionStore,
    SessionUpdate, UpdateOutcome, WhenFull,
};

/// What a feed event is about, to pick out a check's own events.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Subject {
    Session(SessionId),
    User(String),
}

pub(super) fn subject(event: &RevocationEvent) -> Subject {
    match event {
        RevocationEvent::Session { session_id, .. } => Subject::Session(session_id.clone()),
        RevocationEvent::User { user_id, .. } => Subject::User(user_id.clone()),
    }
}

fn sessions(records: &[SessionRecord]) -> Vec<Subject> {
    records
        .iter()
        .map(|r| Subject::Session(r.session.session_id.clone()))
        .collect()
}

/// A feed reader's replay: the events about `wanted` subjects, in the order read.
pub(super) struct Replay {
    pub(super) mine: Vec<(FeedCursor, RevocationEvent)>,
    /// The cursor of the last event read (of anyone's), to resume from.
    last: Option<FeedCursor>,
    /// What every event read was about.
    everything: HashSet<Subject>,
    /// Every event read, in order, for a check that applies them as a reader does.
    events: Vec<RevocationEvent>,
    reads: usize,
}

/// Reads from `from` (zero wait) until a batch says it is caught up, checking on the way that
/// no event comes twice and that no batch claims to be caught up while one of the `wanted`
/// events (all made before the replay began) is still unread.
pub(super) async fn replay(
    feed: &dyn RevocationFeed,
    from: Option<FeedCursor>,
    wanted: &[Subject],
) -> Replay {
    let wanted: HashSet<&Subject> = wanted.iter().collect();
    let mut seen = HashSet::new();
    let mut cursors = HashSet::new();
    let mut out = Replay {
        mine: Vec::new(),
        last: from,
        everything: HashSet::new(),
        events: Vec::new(),
        reads: 0,
    };
    let started = Instant::now();
    loop {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the feed never reported caught_up (after {} reads)",
            out.reads
        );
        let batch = feed
            .read(out.last.as_ref(), Duration::ZERO)
            .await
            .unwrap_or_else(|e| panic!("feed read {} failed: {e}", out.reads + 1));
        out.reads += 1;
        assert!(
            batch.horizon <= OffsetDateTime::now_utc() + Duration::from_secs(1),
            "the feed's horizon {} is in the future",
            batch.horizon
        );
        for (cursor, event) in batch.events {
            assert!(
                cursors.insert(cursor.clone()),
                "the feed returned the event at {cursor:?} twice"
            );
            let about = subject(&event);
            if wanted.contains(&about) {
                seen.insert(about.clone());
                out.mine.push((cursor.clone(), event.clone()));
            }
            out.everything.insert(about);
            out.events.push(event);
            out.last = Some(cursor);
        }
        if batch.caught_up {
            assert_eq!(
                seen.len(),
                wanted.len(),
                "read {} claimed caught_up with {} of this check's {} events still unread",
                out.reads,
                wanted.len() - seen.len(),
                wanted.len()
            );
            return out;
        }
    }
}

/// The store's feed, or `None` (the feed checks then pass without checking anything).
pub(super) fn feed_of<S: SessionStore>(store: &S) -> Option<Arc<dyn RevocationFeed>> {
    SessionStore::revocation_feed(store)
}

/// The cursor at the feed's current end (`None` for an empty feed).
pub(super) async fn tail(feed: &dyn RevocationFeed) -> Option<FeedCursor> {
    replay(feed, None, &[]).await.last
}

/// Creates `n` sessions of `user` and revokes them one after another.
async fn revoked<S: SessionStore>(store: &S, user: &str, n: usize) -> Vec<SessionRecord> {
    let mut records = Vec::with_capacity(n);
    for _ in 0..n {
        let rec = created(store, user, HOUR).await;
        assert!(
            store
                .revoke(&rec.session.session_id)
                .await
                .unwrap()
                .is_some(),
            "revoke of a live session"
        );
        records.push(rec);
    }
    records
}

fn subjects(replay: &Replay) -> Vec<Subject> {
    replay.mine.iter().map(|(_, e)| subject(e)).collect()
}

/// Feed: a reader from the start sees every retained revocation, once, in the order made, as a
/// session event that ended the session; two replays see the same sequence.
pub async fn feed_replays_from_start<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let records = revoked(store, &unique_user("feed-replay"), 3).await;
    let wanted = sessions(&records);
    let first = replay(&*feed, None, &wanted).await;
    assert_eq!(subjects(&first), wanted, "own events in revocation order");
    for (_, event) in &first.mine {
        assert!(
            matches!(event, RevocationEvent::Session { ended: true, .. }),
            "a revoke is published as an ended session: {event:?}"
        );
    }
    let second = replay(&*feed, None, &wanted).await;
    assert_eq!(
        first.mine, second.mine,
        "two replays from the start see the same events at the same cursors"
    );
}

/// Feed: a reader resumes after its cursor, with the events made since and nothing before.
pub async fn feed_resumes_from_cursor<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let user = unique_user("feed-resume");
    let start = tail(&*feed).await;
    let a = revoked(store, &user, 1).await;
    let read_a = replay(&*feed, start, &sessions(&a)).await;
    let rest = revoked(store, &user, 2).await;
    let resumed = replay(&*feed, read_a.last.clone(), &sessions(&rest)).await;
    assert_eq!(
        subjects(&resumed),
        sessions(&rest),
        "a reader resuming from its cursor gets what came after it, in order"
    );
    let again = replay(&*feed, read_a.last, &[]).await;
    assert!(
        !again.everything.contains(&sessions(&a)[0]),
        "the event at the cursor was returned again"
    );
}

/// Feed: 2,500 revocations (more than a batch) all arrive, exactly once and in order, and no
/// batch claims to be caught up before the last of them.
pub async fn feed_batches_until_caught_up<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    const N: usize = 2500;
    const CHUNK: usize = 50;
    let user = unique_user("feed-batches");
    let records: Vec<SessionRecord> = (0..N).map(|_| record(&user, HOUR)).collect();
    for chunk in records.chunks(CHUNK * 2) {
        for result in join_all(
            chunk
                .iter()
                .map(|r| store.create(r.clone(), SessionLimit::unlimited())),
        )
        .await
        {
            result.unwrap_or_else(|e| panic!("create failed: {e}"));
        }
    }
    // Chunks are revoked one after another (the sessions in a chunk concurrently), so the feed
    // must order the chunks.
    for chunk in records.chunks(CHUNK) {
        let revoked = join_all(chunk.iter().map(|r| store.revoke(&r.session.session_id))).await;
        assert!(revoked.into_iter().all(|r| r.unwrap().is_some()));
    }
    let wanted = sessions(&records);
    let chunk_of: HashMap<&Subject, usize> = wanted
        .iter()
        .enumerate()
        .map(|(i, s)| (s, i / CHUNK))
        .collect();
    let read = replay(&*feed, None, &wanted).await;
    let got = subjects(&read);
    assert_eq!(got.len(), N, "every revocation arrives exactly once");
    let order: Vec<usize> = got.iter().map(|s| chunk_of[s]).collect();
    assert!(
        order.windows(2).all(|w| w[0] <= w[1]),
        "revocations made one after another arrived out of order"
    );
}

/// Feed: once caught up, a new revocation is in the next reads up to caught-up; a read with
/// nothing new returns within about its wait, empty and caught up.
pub async fn feed_reports_caught_up<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let x = revoked(store, &unique_user("feed-caught-up"), 1).await;
    let read = replay(&*feed, start, &sessions(&x)).await;
    assert_eq!(subjects(&read), sessions(&x));

    let started = Instant::now();
    let quick = feed.read(read.last.as_ref(), Duration::ZERO).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "a read without wait took {:?}",
        started.elapsed()
    );
    assert!(quick.caught_up || !quick.events.is_empty());

    let wait = Duration::from_millis(300);
    let last = quick.events.last().map(|(c, _)| c.clone()).or(read.last);
    let started = Instant::now();
    let waited = feed.read(last.as_ref(), wait).await.unwrap();
    let took = started.elapsed();
    assert!(
        took < wait + Duration::from_secs(2),
        "a read with a {wait:?} wait took {took:?}"
    );
    if waited.events.is_empty() {
        assert!(waited.caught_up, "an empty batch must be caught up");
    }
}

/// Feed: revocations made in sequence by one task (sessions, and a user's in between) appear in
/// that order.
pub async fn feed_keeps_order<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let user = unique_user("feed-order");
    let everyone = unique_user("feed-order-all");
    let mut wanted = sessions(&revoked(store, &user, 5).await);
    store.revoke_all(&everyone, None).await.unwrap();
    wanted.push(Subject::User(everyone));
    wanted.extend(sessions(&revoked(store, &user, 5).await));
    let read = replay(&*feed, start, &wanted).await;
    assert_eq!(subjects(&read), wanted, "events out of order");
}

/// Feed: `revoke_all` publishes one user event whose cut-off is not earlier than the start of
/// the sessions it revoked, even when the user had no session (one may be being created
/// elsewhere). (The session events beside it are checked by
/// [`feed_revoke_all_holds_across_skewed_clocks`].)
pub async fn feed_records_revoke_all<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let user = unique_user("feed-all");
    let nobody = unique_user("feed-all-nobody");
    let records = [
        created(store, &user, HOUR).await,
        created(store, &user, HOUR).await,
    ];
    assert_eq!(store.revoke_all(&user, None).await.unwrap().len(), 2);
    assert!(store.revoke_all(&nobody, None).await.unwrap().is_empty());
    let wanted = [Subject::User(user.clone()), Subject::User(nobody)];
    let read = replay(&*feed, start, &wanted).await;
    assert_eq!(subjects(&read), wanted, "one user event per revoke_all");
    let RevocationEvent::User { before, .. } = &read.mine[0].1 else {
        unreachable!("filtered on the subject")
    };
    for rec in &records {
        assert!(
            *before >= rec.session.started_at,
            "revoke_all's cut-off {before} is before a revoked session's start {}",
            rec.session.started_at
        );
    }
}

/// Feed: `revoke_all` refuses, on every reader, each session it deleted, even one whose
/// `started_at` is two seconds later than the store's clock: a session created on an instance
/// whose clock runs ahead would otherwise pass the user event's cut-off, and its JWTs would
/// stay valid everywhere but on the revoking instance. A reader that applies the feed's events
/// (as every instance does) must refuse it.
pub async fn feed_revoke_all_holds_across_skewed_clocks<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let user = unique_user("feed-all-skewed");
    let mut ahead = record(&user, HOUR);
    let skew = Duration::from_secs(2);
    ahead.session.started_at += skew;
    ahead.session.last_accessed_at += skew;
    ahead.session.expires_at += skew;
    super::create(store, &ahead).await;
    let on_time = created(store, &user, HOUR).await;
    assert_eq!(store.revoke_all(&user, None).await.unwrap().len(), 2);
    let wanted = [Subject::User(user)];
    let read = replay(&*feed, start, &wanted).await;
    for (what, rec) in [("two seconds ahead", &ahead), ("on time", &on_time)] {
        // As an instance's revocation list applies them: a user event revokes every session
        // of the user started at or before its cut-off, a session event with `ended` its own.
        let revoked = read.events.iter().any(|event| match event {
            RevocationEvent::User { user_id, before } => {
                *user_id == rec.session.user_id && rec.session.started_at <= *before
            }
            RevocationEvent::Session {
                session_id, ended, ..
            } => *ended && *session_id == rec.session.session_id,
        });
        assert!(
            revoked,
            "after revoke_all, a reader of the feed still accepts a session started {what} \
             (started_at {}, the user event's cut-off {:?})",
            rec.session.started_at,
            read.mine.first().map(|(_, e)| e)
        );
    }
}

/// Feed: a reader that starts after the revocations (a new instance) replays them from the
/// start.
pub async fn feed_late_reader_sees_earlier_revocations<S: SessionStore>(store: &S) {
    if feed_of(store).is_none() {
        return;
    }
    let user = unique_user("feed-late");
    let mut wanted = sessions(&revoked(store, &user, 2).await);
    store.revoke_all(&user, None).await.unwrap();
    wanted.push(Subject::User(user));
    let late = feed_of(store).expect("the store had a feed a moment ago");
    let read = replay(&*late, None, &wanted).await;
    assert_eq!(subjects(&read), wanted);
}

/// Feed: revoking an unknown or already revoked session publishes nothing.
pub async fn feed_ignores_unknown_revokes<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let unknown = SessionId::generate().unwrap();
    assert_eq!(store.revoke(&unknown).await.unwrap(), None);
    let known = revoked(store, &unique_user("feed-unknown"), 1).await;
    assert_eq!(
        store.revoke(&known[0].session.session_id).await.unwrap(),
        None
    );
    let marker = revoked(store, &unique_user("feed-unknown-marker"), 1).await;
    let mut wanted = sessions(&known);
    wanted.extend(sessions(&marker));
    let read = replay(&*feed, start, &wanted).await;
    assert_eq!(
        subjects(&read),
        wanted,
        "a second revoke of a session published it again"
    );
    assert!(
        !read.everything.contains(&Subject::Session(unknown)),
        "revoking an unknown session id published an event"
    );
}

/// Feed: an update that refuses older JWTs records `jwts_refused` for the new version (the
/// session is not ended); a plain update (a touch) records nothing.
pub async fn feed_records_refused_jwts<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let quiet = created(store, &unique_user("feed-touch"), HOUR).await;
    let touched = next_version(&quiet.session);
    assert_eq!(
        store.update(&plain_update(touched)).await.unwrap(),
        UpdateOutcome::Updated
    );
    let rec = created(store, &unique_user("feed-claims"), HOUR).await;
    let v1 = next_version(&rec.session);
    let update = SessionUpdate {
        session: v1.clone(),
        token_hash: None,
        refuse_older_jwts: true,
    };
    assert_eq!(store.update(&update).await.unwrap(), UpdateOutcome::Updated);
    let v2 = next_version(&v1);
    let rotation = SessionUpdate {
        session: v2.clone(),
        token_hash: Some(crate::data::token::SessionToken::generate().unwrap().hash()),
        refuse_older_jwts: true,
    };
    assert_eq!(
        store.update(&rotation).await.unwrap(),
        UpdateOutcome::Updated
    );
    // A refused (stale) update records nothing either.
    let stale = SessionUpdate {
        session: v1.clone(),
        token_hash: None,
        refuse_older_jwts: true,
    };
    assert_eq!(store.update(&stale).await.unwrap(), UpdateOutcome::Stale);
    let marker = revoked(store, &unique_user("feed-claims-marker"), 1).await;
    let id = Subject::Session(v1.session_id.clone());
    let mut wanted = vec![id.clone()];
    wanted.extend(sessions(&marker));
    let read = replay(&*feed, start, &wanted).await;
    assert!(
        !read
            .everything
            .contains(&Subject::Session(quiet.session.session_id.clone())),
        "a plain update published an event"
    );
    let mine: Vec<&RevocationEvent> = read
        .mine
        .iter()
        .filter(|(_, e)| subject(e) == id)
        .map(|(_, e)| e)
        .collect();
    let versions: Vec<(u64, bool)> = mine
        .iter()
        .map(|e| match e {
            RevocationEvent::Session { version, ended, .. } => (*version, *ended),
            RevocationEvent::User { .. } => unreachable!("filtered on the subject"),
        })
        .collect();
    assert_eq!(
        versions,
        vec![(1, false), (2, false)],
        "one jwts_refused per refusing update, naming the new version, the session not ended"
    );
}

/// Feed: sessions a create evicts to stay within the limit are recorded as revocations.
pub async fn feed_records_evictions<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let user = unique_user("feed-evict");
    let limit = SessionLimit::new(1, WhenFull::RevokeOldest);
    let first = record(&user, HOUR);
    store.create(first.clone(), limit).await.unwrap();
    let CreateOutcome::Created { evicted } =
        store.create(record(&user, HOUR), limit).await.unwrap()
    else {
        panic!("RevokeOldest never refuses");
    };
    assert_eq!(evicted, vec![first.session.session_id.clone()]);
    let wanted = sessions(std::slice::from_ref(&first));
    let read = replay(&*feed, start, &wanted).await;
    assert!(
        matches!(
            &read.mine[0].1,
            RevocationEvent::Session { ended: true, .. }
        ),
        "an eviction must end the session in the feed"
    );
}

/// Feed: revoking every session but one records one revocation per session revoked, and none
/// for the kept one (a user event would cut it off too).
pub async fn feed_records_revoke_others<S: SessionStore>(store: &S) {
    let Some(feed) = feed_of(store) else { return };
    let start = tail(&*feed).await;
    let user = unique_user("feed-others");
    let keep = created(store, &user, HOUR).await;
    let others = [
        created(store, &user, HOUR).await,
        created(store, &user, HOUR).await,
    ];
    store
        .revoke_all(&user, Some(&keep.session.session_id))
        .await
        .unwrap();
    let marker = revoked(store, &unique_user("feed-others-marker"), 1).await;
    let mut wanted = sessions(&others);
    wanted.extend(sessions(&marker));
    let read = replay(&*feed, start, &wanted).await;
    let mut got = subjects(&read);
    got.sort_by_key(|s| format!("{s:?}"));
    wanted.sort_by_key(|s| format!("{s:?}"));
    assert_eq!(got, wanted, "one revocation per other session");
    assert!(
        !read
            .everything
            .contains(&Subject::Session(keep.session.session_id.clone())),
        "the kept session was published"
    );
    assert!(
        !read.everything.contains(&Subject::User(user)),
        "a user event would revoke the kept session too"
    );
    for (_, event) in &read.mine {
        assert!(matches!(
            event,
            RevocationEvent::Session { ended: true, .. }
        ));
    }
}
