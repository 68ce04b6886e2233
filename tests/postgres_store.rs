#![cfg(all(feature = "postgres", feature = "conformance"))]
//! PostgresStore against a real PostgreSQL (`DATABASE_URL`, default
//! `postgres://postgres@127.0.0.1:5432/test`): the public conformance suite (each check in a
//! schema of its own), the revocation feed and its commit order, lost cursors, corrupt rows,
//! concurrent migrations, round trips, and an outage of a server the test runs itself.
//!
//! Without a reachable server these tests print a note and pass, unless `CI=true`, where they
//! fail.

mod common;
mod postgres_common;

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use sqlx::{Connection as _, Row as _};
use time::OffsetDateTime;
use tower_session_jwt::Session;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::conformance::{self, record};
use tower_session_jwt::store::postgres::{PostgresStore, PostgresStoreBuilder};
use tower_session_jwt::store::{
    FeedCursor, PageRequest, RevocationFeed, SessionLimit, SessionRecord, SessionUpdate,
    UpdateOutcome,
};
use tower_session_jwt::{SessionStore, StoreError};

use postgres_common::{
    Server, TestStore, builder, database_url, free_port, unavailable, unique_schema,
};

const HOUR: Duration = Duration::from_secs(3600);

tower_session_jwt::session_store_conformance!(
    conformance_each_check_in_a_fresh_schema,
    match TestStore::new("conformance").await {
        Some(t) => t,
        None => return,
    }
);

async fn created(store: &PostgresStore, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .expect("create");
    rec
}

/// The update that writes `session` as its next version, changing nothing else.
fn next_version(session: &Session) -> SessionUpdate {
    SessionUpdate {
        session: session.clone().with_version(session.version + 1),
        token_hash: None,
        refuse_older_jwts: false,
    }
}

fn feed_of(store: &PostgresStore) -> Arc<dyn RevocationFeed> {
    store.revocation_feed().expect("PostgresStore has a feed")
}

/// The id part of a cursor (`<epoch>:<id>`).
fn cursor_id(cursor: &FeedCursor) -> i64 {
    cursor.0.split_once(':').unwrap().1.parse().unwrap()
}

fn revoked_session(event: &RevocationEvent) -> Option<&SessionId> {
    match event {
        RevocationEvent::Session { session_id, .. } => Some(session_id),
        _ => None,
    }
}

#[tokio::test]
async fn conformance_suite_twice_concurrently_on_one_store() {
    let Some(t) = TestStore::new("conformance2").await else {
        return;
    };
    let clone = t.store.clone();
    tokio::join!(conformance::run_all(&t.store), conformance::run_all(&clone));
}

#[tokio::test]
async fn feed_replays_waits_and_wakes_on_notify() {
    // A long poll interval: a quick wake-up can only come from the notification.
    let Some(t) = TestStore::with("feed", |b| b.poll_interval(Duration::from_secs(5))).await else {
        return;
    };
    let store = &t.store;
    let feed = feed_of(store);
    assert_eq!(feed.retention(), Duration::from_secs(15 * 60));

    let started = Instant::now();
    let empty = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(empty.events.is_empty() && empty.caught_up);
    assert!(started.elapsed() < Duration::from_millis(500), "zero wait");
    // A log made a moment ago knows nothing of revocations before it: its horizon is when it
    // was made, not fifteen minutes ago.
    let now = OffsetDateTime::now_utc();
    assert!(
        empty.horizon <= now && empty.horizon > now - Duration::from_secs(30),
        "horizon {} of a new log",
        empty.horizon
    );

    let before = OffsetDateTime::now_utc();
    let a = created(store, "feed-user", HOUR).await;
    assert!(store.revoke(&a.session.session_id).await.unwrap().is_some());
    let after = OffsetDateTime::now_utc();
    // Revoking again (or an unknown id) records nothing.
    assert!(store.revoke(&a.session.session_id).await.unwrap().is_none());

    let batch = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(batch.caught_up);
    assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
    let (cursor, event) = batch.events[0].clone();
    match event {
        RevocationEvent::Session {
            session_id,
            before: at,
            ended,
            ..
        } => {
            assert_eq!(session_id, a.session.session_id);
            assert!(ended);
            assert!(
                before <= at && at <= after,
                "{at} not in [{before}, {after}]"
            );
        }
        other => panic!("expected a session event, got {other:?}"),
    }

    // Nothing new: a short wait returns an empty, caught-up batch after about the wait.
    let started = Instant::now();
    let batch = feed
        .read(Some(&cursor), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(batch.events.is_empty() && batch.caught_up);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );

    // A revocation by another instance wakes a long read well before the 5 s poll.
    let other = t.another().await;
    let b = created(&other, "feed-user", HOUR).await;
    let revoker = {
        let id = b.session.session_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            other.revoke(&id).await.unwrap().expect("b was live");
        })
    };
    let started = Instant::now();
    let batch = feed
        .read(Some(&cursor), Duration::from_secs(10))
        .await
        .unwrap();
    let woke = started.elapsed();
    revoker.await.unwrap();
    assert!(woke < Duration::from_secs(2), "woke after {woke:?}");
    assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
    assert_eq!(
        revoked_session(&batch.events[0].1),
        Some(&b.session.session_id)
    );
    assert!(cursor_id(&batch.events[0].0) > cursor_id(&cursor));

    // The replay from the start has both, oldest first.
    let all = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(all.events.len(), 2);
    assert_eq!(all.events[0].0, cursor);
    assert_eq!(all.events[1], batch.events[0]);
}

#[tokio::test]
async fn the_table_is_the_truth_when_a_notification_is_lost() {
    let Some(t) = TestStore::with("poll", |b| b.poll_interval(Duration::from_millis(300))).await
    else {
        return;
    };
    let feed = feed_of(&t.store);
    let raw = t.raw().await;
    let id = SessionId::generate().unwrap();
    let event = serde_json::to_string(&RevocationEvent::session_revoked(
        id.clone(),
        OffsetDateTime::now_utc(),
    ))
    .unwrap();
    let key = t.store.feed_lock_key();
    let schema = t.schema.clone();
    let appender = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(200)).await;
        // Appended by the rules (under the feed lock), but no NOTIFY: as if it were lost.
        let mut tx = raw.begin().await.unwrap();
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(key)
            .execute(&mut *tx)
            .await
            .unwrap();
        sqlx::query(&format!(
            "INSERT INTO {schema}.revocations (created_at, event) VALUES (now(), $1::json)"
        ))
        .bind(event)
        .execute(&mut *tx)
        .await
        .unwrap();
        tx.commit().await.unwrap();
    });
    let started = Instant::now();
    let batch = feed.read(None, Duration::from_secs(10)).await.unwrap();
    let took = started.elapsed();
    appender.await.unwrap();
    assert_eq!(batch.events.len(), 1, "{:?}", batch.events);
    assert_eq!(revoked_session(&batch.events[0].1), Some(&id));
    assert!(
        took < Duration::from_secs(2),
        "the poll floor took {took:?}"
    );
}

#[tokio::test]
async fn revoke_all_appends_each_session_and_a_user_cutoff_even_for_nobody() {
    let Some(t) = TestStore::new("revokeall").await else {
        return;
    };
    let store = &t.store;
    let user = "cutoff-user";
    let old = [
        created(store, user, HOUR).await,
        created(store, user, HOUR).await,
    ];
    let mut revoked = store.revoke_all(user, None).await.unwrap();
    revoked.sort();
    let mut expected: Vec<SessionId> = old.iter().map(|r| r.session.session_id.clone()).collect();
    expected.sort();
    assert_eq!(revoked, expected);
    let newer = created(store, user, HOUR).await;

    let feed = feed_of(store);
    let batch = feed.read(None, Duration::ZERO).await.unwrap();
    // One event per session revoked (whatever clock set its start), then the user's cut-off.
    let [
        (
            _,
            RevocationEvent::Session {
                session_id: first,
                ended: true,
                ..
            },
        ),
        (
            _,
            RevocationEvent::Session {
                session_id: second,
                ended: true,
                ..
            },
        ),
        (cursor, RevocationEvent::User { user_id, before }),
    ] = &batch.events[..]
    else {
        panic!(
            "expected two session events and one user event, got {:?}",
            batch.events
        );
    };
    let mut named = vec![first.clone(), second.clone()];
    named.sort();
    assert_eq!(named, expected);
    assert_eq!(user_id, user);
    for rec in &old {
        assert!(rec.session.started_at < *before, "old session not cut off");
    }
    assert!(newer.session.started_at >= *before);
    assert_eq!(
        store
            .list_by_user(user, &PageRequest::default())
            .await
            .unwrap()
            .sessions,
        vec![newer.session]
    );

    assert!(store.revoke_all("nobody", None).await.unwrap().is_empty());
    let more = feed.read(Some(cursor), Duration::ZERO).await.unwrap();
    assert!(
        matches!(&more.events[..], [(_, RevocationEvent::User { user_id, .. })] if user_id == "nobody")
    );
}

#[tokio::test]
async fn a_long_backlog_is_read_in_batches_that_say_so() {
    let Some(t) = TestStore::new("backlog").await else {
        return;
    };
    let raw = t.raw().await;
    let event = serde_json::to_string(&RevocationEvent::user_revoked(
        "backlog-user",
        OffsetDateTime::now_utc(),
    ))
    .unwrap();
    let mut tx = raw.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(t.store.feed_lock_key())
        .execute(&mut *tx)
        .await
        .unwrap();
    sqlx::query(&format!(
        "INSERT INTO {}.revocations (created_at, event) \
         SELECT now(), $1::json FROM generate_series(1, 1500)",
        t.schema
    ))
    .bind(event)
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();

    let feed = feed_of(&t.store);
    let first = feed.read(None, Duration::from_secs(1)).await.unwrap();
    assert_eq!(first.events.len(), 1000);
    assert!(!first.caught_up, "a batch cut short is not caught up");
    let last = first.events.last().unwrap().0.clone();
    let second = feed
        .read(Some(&last), Duration::from_secs(1))
        .await
        .unwrap();
    assert_eq!(second.events.len(), 500);
    assert!(second.caught_up);
    let ids: Vec<i64> = first
        .events
        .iter()
        .chain(&second.events)
        .map(|(c, _)| cursor_id(c))
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ascending ids");
}

/// Reads the feed from `cursor` until `want` events have come (or 20 s), checking that cursors
/// only ascend; returns the events.
async fn read_until(
    feed: &dyn RevocationFeed,
    mut cursor: Option<FeedCursor>,
    want: usize,
) -> Vec<(FeedCursor, RevocationEvent)> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < want && Instant::now() < deadline {
        let batch = feed
            .read(cursor.as_ref(), Duration::from_millis(50))
            .await
            .unwrap();
        for (c, event) in batch.events {
            if let Some(last) = &cursor {
                assert!(cursor_id(&c) > cursor_id(last), "{c:?} after {last:?}");
            }
            cursor = Some(c.clone());
            seen.push((c, event));
        }
    }
    seen
}

/// A transaction that appends one event the way the store does, under the feed lock when
/// `locked`, and then sleeps `hold` before committing. Returns once the event's id is allocated,
/// with the handle of the commit to come.
async fn slow_append(
    t: &TestStore,
    locked: bool,
    hold: Duration,
    marker: &SessionId,
) -> (i64, tokio::task::JoinHandle<()>) {
    let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
    let event = serde_json::to_string(&RevocationEvent::session_revoked(
        marker.clone(),
        OffsetDateTime::now_utc(),
    ))
    .unwrap();
    sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
    if locked {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(t.store.feed_lock_key())
            .execute(&mut conn)
            .await
            .unwrap();
    }
    let id: i64 = sqlx::query(&format!(
        "INSERT INTO {}.revocations (created_at, event) VALUES (now(), $1::json) RETURNING id",
        t.schema
    ))
    .bind(event)
    .fetch_one(&mut conn)
    .await
    .unwrap()
    .get(0);
    let commit = tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        sqlx::query("COMMIT").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    });
    (id, commit)
}

/// The pitfall the feed lock exists for, and the proof that the lock closes it: a slow
/// transaction takes the next id and sleeps before committing while two instances revoke
/// concurrently and a reader follows the feed. The reader must see every event exactly once, in
/// order, the slow one included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_and_a_slow_committer_lose_no_event() {
    // Revocations queued behind the slow transaction hold their connections while they wait:
    // pools large enough, and patient enough, for all of them.
    let patient = |b: PostgresStoreBuilder| {
        b.pool_size(24)
            .connect_timeout(Duration::from_secs(5))
            .statement_timeout(Duration::from_secs(5))
    };
    let Some(t) = TestStore::with("commitorder", patient).await else {
        return;
    };
    let a = t.store.clone();
    let b = patient(builder(&t.url, &t.schema)).build().await.unwrap();
    let feed = feed_of(&t.store);
    let mut records = Vec::new();
    for i in 0..40 {
        let store = if i % 2 == 0 { &a } else { &b };
        records.push(created(store, &format!("order-{}", i % 5), HOUR).await);
    }
    let start = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(start.events.is_empty());

    let marker = SessionId::generate().unwrap();
    let hold = Duration::from_millis(1500);
    let (slow_id, commit) = slow_append(&t, true, hold, &marker).await;
    let slow_since = Instant::now();

    // 40 revocations from two instances, 20 at a time, while the slow transaction holds the
    // lock; plus 5 revoke_all.
    let revocations = async {
        let singles = join_all(records.iter().enumerate().map(|(i, r)| {
            let store = if i % 2 == 0 { &a } else { &b };
            store.revoke(&r.session.session_id)
        }));
        let nobody: Vec<String> = (0..5).map(|u| format!("nobody-{u}")).collect();
        let users = join_all(nobody.iter().map(|u| a.revoke_all(u, None)));
        let (singles, users) = tokio::join!(singles, users);
        for r in singles {
            assert!(r.unwrap().is_some());
        }
        for r in users {
            r.unwrap();
        }
        Instant::now()
    };
    // While the slow transaction still holds the lock: the revocations wait for it, and none
    // has taken an id yet (ids are allocated under the lock, not before it).
    let raw = t.raw().await;
    let probe = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted \
             AND ((classid::bigint << 32) | objid::bigint) = $1",
        )
        .bind(t.store.feed_lock_key())
        .fetch_one(&raw)
        .await
        .unwrap();
        let (last, called): (i64, bool) = sqlx::query_as(&format!(
            "SELECT last_value, is_called FROM {}.revocations_id_seq",
            t.schema
        ))
        .fetch_one(&raw)
        .await
        .unwrap();
        (
            waiting,
            if called { last } else { last - 1 },
            slow_since.elapsed(),
        )
    };
    let want = 1 + records.len() + 5;
    let (finished, seen, (waiting, issued, probed)) =
        tokio::join!(revocations, read_until(&*feed, None, want), probe);
    commit.await.unwrap();
    assert!(probed < hold, "probed after the slow commit ({probed:?})");
    assert!(waiting >= 1, "no revocation was waiting for the feed lock");
    assert_eq!(
        issued, slow_id,
        "{waiting} revocations waiting for the lock, yet ids up to {issued} were handed out"
    );
    // The revocations could not append before the slow transaction committed.
    assert!(
        finished + Duration::from_millis(100) >= slow_since + hold,
        "revocations finished {:?} after the slow transaction began",
        finished - slow_since
    );

    assert_eq!(seen.len(), want, "events seen: {}", seen.len());
    assert_eq!(cursor_id(&seen[0].0), slow_id, "the slow event comes first");
    assert_eq!(revoked_session(&seen[0].1), Some(&marker));
    let sessions: HashSet<&SessionId> = seen[1..]
        .iter()
        .filter_map(|(_, e)| revoked_session(e))
        .collect();
    assert_eq!(
        sessions.len(),
        records.len(),
        "every revocation exactly once"
    );
    for r in &records {
        assert!(sessions.contains(&r.session.session_id));
    }
    let ids: Vec<i64> = seen.iter().map(|(c, _)| cursor_id(c)).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));

    // Nothing more, and a replay from the start reads the same sequence.
    let replay = read_until(&*feed, None, want).await;
    assert_eq!(replay, seen);
}

/// The control experiment: the same slow committer *without* the lock. A reader that reads
/// while it sleeps moves past its id and never sees its event. This is what the lock prevents.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_lock_a_slow_committer_is_skipped() {
    let Some(t) = TestStore::new("nolock").await else {
        return;
    };
    let feed = feed_of(&t.store);
    let marker = SessionId::generate().unwrap();
    let (slow_id, commit) = slow_append(&t, false, Duration::from_millis(500), &marker).await;
    let later = created(&t.store, "nolock-user", HOUR).await;
    t.store.revoke(&later.session.session_id).await.unwrap();

    let batch = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(batch.events.len(), 1);
    let cursor = batch.events[0].0.clone();
    assert!(cursor_id(&cursor) > slow_id);
    commit.await.unwrap();

    let after = feed
        .read(Some(&cursor), Duration::from_millis(200))
        .await
        .unwrap();
    assert!(
        after.events.is_empty(),
        "the reader has moved past the slow event"
    );
    let replay = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(replay.events.len(), 2, "yet it is in the table");
    assert_eq!(revoked_session(&replay.events[0].1), Some(&marker));
}

#[tokio::test]
async fn a_cursor_behind_the_trimmed_range_is_lost_not_trusted() {
    let retention = Duration::from_secs(2);
    let Some(t) = TestStore::with("trim", |b| b.feed_retention(retention)).await else {
        return;
    };
    let store = &t.store;
    let feed = feed_of(store);
    let first = created(store, "trim-user", HOUR).await;
    store.revoke(&first.session.session_id).await.unwrap();
    let old_cursor = feed.read(None, Duration::ZERO).await.unwrap().events[0]
        .0
        .clone();
    let second = created(store, "trim-user", HOUR).await;
    store.revoke(&second.session.session_id).await.unwrap();
    let second_at = OffsetDateTime::now_utc();

    tokio::time::sleep(retention + Duration::from_millis(300)).await;
    // The background trimming may have been first; either way both are gone now.
    store.trim_feed().await.unwrap();
    let third = created(store, "trim-user", HOUR).await;
    store.revoke(&third.session.session_id).await.unwrap();

    assert!(matches!(
        feed.read(Some(&old_cursor), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    let replay = feed.read(None, Duration::ZERO).await.unwrap();
    assert_eq!(replay.events.len(), 1, "{:?}", replay.events);
    assert_eq!(
        revoked_session(&replay.events[0].1),
        Some(&third.session.session_id)
    );
    assert!(replay.horizon >= second_at - Duration::from_millis(500));

    // Cursors of another log, or beyond anything issued, are lost too; the live one works.
    let live = replay.events[0].0.clone();
    let epoch = live.0.split_once(':').unwrap().0.to_owned();
    let foreign: i64 = epoch.parse::<i64>().unwrap() ^ 1;
    for cursor in [
        format!("{foreign}:{}", cursor_id(&live)),
        format!("{epoch}:{}", cursor_id(&live) + 1000),
        "garbage".to_owned(),
    ] {
        assert!(
            matches!(
                feed.read(Some(&FeedCursor(cursor.clone())), Duration::ZERO)
                    .await,
                Err(StoreError::FeedCursorLost)
            ),
            "{cursor}"
        );
    }
    assert!(
        feed.read(Some(&live), Duration::ZERO)
            .await
            .unwrap()
            .events
            .is_empty()
    );
}

#[tokio::test]
async fn another_instance_trimming_sooner_moves_the_horizon() {
    let Some(t) = TestStore::new("horizon").await else {
        return;
    };
    let eager = builder(&t.url, &t.schema)
        .feed_retention(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let rec = created(&t.store, "horizon-user", HOUR).await;
    t.store.revoke(&rec.session.session_id).await.unwrap();
    let revoked_at = OffsetDateTime::now_utc();
    tokio::time::sleep(Duration::from_millis(700)).await;
    eager.trim_feed().await.unwrap();

    // This instance keeps 15 minutes, but the log was trimmed to a later instant than that.
    let batch = feed_of(&t.store).read(None, Duration::ZERO).await.unwrap();
    assert!(batch.events.is_empty());
    assert!(
        batch.horizon >= revoked_at - Duration::from_millis(500),
        "horizon {} before the trimmed revocation at {revoked_at}",
        batch.horizon
    );
}

#[tokio::test]
async fn corrupt_rows_are_errors_not_missing_sessions() {
    let Some(t) = TestStore::new("corrupt").await else {
        return;
    };
    let raw = t.raw().await;
    let s = &t.schema;
    let user = "corrupt-user";
    let rec = created(&t.store, user, HOUR).await;
    let id = &rec.session.session_id;
    let set_session = |json: String| {
        let raw = raw.clone();
        let query = format!("UPDATE {s}.sessions SET session = $1::json WHERE id = $2");
        let id = id.to_string();
        async move {
            sqlx::query(&query)
                .bind(json)
                .bind(id)
                .execute(&raw)
                .await
                .unwrap();
        }
    };
    let all_corrupt = async || {
        assert!(matches!(t.store.get(id).await, Err(StoreError::Corrupt(_))));
        assert!(matches!(
            t.store.find_by_token(&rec.token_hash).await,
            Err(StoreError::Corrupt(_))
        ));
        assert!(matches!(
            t.store.list_by_user(user, &PageRequest::default()).await,
            Err(StoreError::Corrupt(_))
        ));
    };

    // Valid JSON, not a session.
    set_session(r#"{"not":"a session"}"#.to_owned()).await;
    all_corrupt().await;
    set_session("[]".to_owned()).await;
    all_corrupt().await;
    // A valid session, but another one: not handed out under this id.
    let stranger = record(user, HOUR).session;
    set_session(serde_json::to_string(&stranger).unwrap()).await;
    all_corrupt().await;

    // Revoking a damaged (but live) row still deletes it and publishes the revocation, and says
    // the record was damaged.
    let feed = feed_of(&t.store);
    assert!(matches!(
        t.store.revoke(id).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(t.store.get(id).await.unwrap(), None);
    let batch = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(
        matches!(batch.events.last(), Some((_, e)) if revoked_session(e) == Some(id)),
        "{:?}",
        batch.events
    );

    // A malformed id in a user's rows.
    sqlx::query(&format!(
        "INSERT INTO {s}.sessions (id, token_hash, user_id, expires_at, session) \
         VALUES ('bad id!', '\\x00', $1, now() + interval '1 hour', '{{}}')"
    ))
    .bind("bad-id-user")
    .execute(&raw)
    .await
    .unwrap();
    assert!(matches!(
        t.store.revoke_all("bad-id-user", None).await,
        Err(StoreError::Corrupt(_))
    ));

    // Feed: an event that is JSON but no revocation is an error, never skipped.
    sqlx::query(&format!(
        "INSERT INTO {s}.revocations (created_at, event) VALUES (now(), '{{\"kind\":\"nope\"}}')"
    ))
    .execute(&raw)
    .await
    .unwrap();
    assert!(matches!(
        feed.read(None, Duration::ZERO).await,
        Err(StoreError::Corrupt(_))
    ));
    let last = batch.events.last().unwrap().0.clone();
    assert!(matches!(
        feed.read(Some(&last), Duration::from_secs(1)).await,
        Err(StoreError::Corrupt(_))
    ));

    // The feed's state row gone.
    sqlx::query(&format!("DELETE FROM {s}.feed_state"))
        .execute(&raw)
        .await
        .unwrap();
    assert!(matches!(
        feed.read(None, Duration::ZERO).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_starting_together_migrate_once() {
    let url = database_url();
    let schema = unique_schema("migrate");
    let _cleanup = SchemaGuard(url.clone(), schema.clone());
    let builds = join_all((0..8).map(|_| builder(&url, &schema).pool_size(2).build())).await;
    let mut stores = Vec::new();
    for result in builds {
        match result {
            Ok(store) => stores.push(store),
            Err(e @ StoreError::Unavailable(_)) => {
                return unavailable("concurrent migrations", &e.to_string());
            }
            Err(e) => panic!("a concurrent build failed: {e}"),
        }
    }
    let raw = sqlx::PgPool::connect(&url).await.unwrap();
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM {schema}.schema_migrations ORDER BY version"
    ))
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(versions, vec![1, 2]);
    // They all work on the same tables.
    let rec = created(&stores[0], "migrated", HOUR).await;
    for store in &stores {
        assert_eq!(
            store.get(&rec.session.session_id).await.unwrap(),
            Some(rec.session.clone())
        );
    }

    // A schema from a newer build is refused, not guessed at.
    sqlx::query(&format!(
        "INSERT INTO {schema}.schema_migrations (version, description) VALUES (999, 'future')"
    ))
    .execute(&raw)
    .await
    .unwrap();
    assert!(matches!(
        builder(&url, &schema).build().await,
        Err(StoreError::Backend(_))
    ));

    // A schema made beforehand by an administrator is used as it is.
    let premade = unique_schema("premade");
    let _premade = SchemaGuard(url.clone(), premade.clone());
    sqlx::query(&format!("CREATE SCHEMA {premade}"))
        .execute(&raw)
        .await
        .unwrap();
    let store = builder(&url, &premade).build().await.unwrap();
    created(&store, "premade-user", HOUR).await;
}

/// The schema the first release made (migration 1, and its bookkeeping), in `{schema}`.
const SCHEMA_V1: &str = r#"
CREATE SCHEMA {schema};
CREATE TABLE {schema}.sessions (
    id          text        PRIMARY KEY,
    token_hash  bytea       NOT NULL UNIQUE,
    user_id     text        NOT NULL,
    expires_at  timestamptz NOT NULL,
    session     json        NOT NULL
);
CREATE INDEX sessions_user_id ON {schema}.sessions (user_id);
CREATE INDEX sessions_expires_at ON {schema}.sessions (expires_at);
CREATE TABLE {schema}.revocations (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    created_at  timestamptz NOT NULL,
    event       json        NOT NULL
);
CREATE INDEX revocations_created_at ON {schema}.revocations (created_at);
CREATE TABLE {schema}.feed_state (
    singleton        boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    epoch            bigint      NOT NULL,
    trimmed_through  bigint      NOT NULL DEFAULT 0,
    trimmed_until    timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.feed_state (epoch) VALUES (42);
CREATE TABLE {schema}.schema_migrations (
    version integer PRIMARY KEY,
    description text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO {schema}.schema_migrations (version, description) VALUES (1, 'first release');
"#;

#[tokio::test]
async fn a_first_release_schema_gets_its_new_columns_from_the_records() {
    let url = database_url();
    let schema = unique_schema("backfill");
    let _cleanup = SchemaGuard(url.clone(), schema.clone());
    let raw = match sqlx::PgPool::connect(&url).await {
        Ok(raw) => raw,
        Err(e) => return unavailable("backfill", &e.to_string()),
    };
    sqlx::raw_sql(&SCHEMA_V1.replace("{schema}", &schema))
        .execute(&raw)
        .await
        .unwrap();
    let insert = async |id: &str, user: &str, json: &str| {
        sqlx::query(&format!(
            "INSERT INTO {schema}.sessions (id, token_hash, user_id, expires_at, session) \
             VALUES ($1, decode(md5($1), 'hex'), $2, now() + interval '1 hour', $3::json)"
        ))
        .bind(id)
        .bind(user)
        .bind(json)
        .execute(&raw)
        .await
        .unwrap();
    };
    let second =
        OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - Duration::from_secs(600);
    let plus_two = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let minus_five_half = time::UtcOffset::from_hms(-5, -30, 0).unwrap();
    // Sub-millisecond parts that a cast to microseconds would carry into the next millisecond,
    // fractions of every length, offsets that change the day, and several versions.
    let mut sessions = Vec::new();
    for (i, (nanos, offset)) in [
        (0, time::UtcOffset::UTC),
        (1_000_000, time::UtcOffset::UTC),
        (100_000_000, time::UtcOffset::UTC),
        (123_456_789, time::UtcOffset::UTC),
        (123_999_600, time::UtcOffset::UTC),
        (999_999_999, time::UtcOffset::UTC),
        (999_999_600, plus_two),
        (42_000, minus_five_half),
        (7, time::UtcOffset::UTC),
    ]
    .into_iter()
    .enumerate()
    {
        let mut rec = record("backfill-user", HOUR);
        rec.session.started_at =
            (second + Duration::from_secs(i as u64 % 3) + Duration::from_nanos(nanos))
                .to_offset(offset);
        rec.session.last_accessed_at = rec.session.started_at;
        rec.session.version = [0, 1, 7, 1 << 40][i % 4];
        let json = serde_json::to_string(&rec.session).unwrap();
        insert(rec.session.session_id.as_str(), "backfill-user", &json).await;
        sessions.push(rec.session);
    }
    // Rows that hold no session record (one with an impossible date) neither stop the
    // migration nor get values.
    for (id, bad) in [
        ("not-an-object", "[1, 2]"),
        ("no-start", r#"{"session_id": "x"}"#),
        (
            "numeric-start",
            r#"{"started_at": 1790000000, "version": "3"}"#,
        ),
        ("word-start", r#"{"started_at": "now", "version": -1}"#),
        (
            "impossible-date",
            r#"{"started_at": "2026-02-30T25:61:00Z", "version": 1e3}"#,
        ),
    ] {
        insert(id, "backfill-damaged", bad).await;
    }

    let store = builder(&url, &schema).build().await.unwrap();
    let columns = async |id: &str| -> (i64, i64) {
        let row = sqlx::query(&format!(
            "SELECT started_ms, version FROM {schema}.sessions WHERE id = $1"
        ))
        .bind(id)
        .fetch_one(&raw)
        .await
        .unwrap();
        (row.get(0), row.get(1))
    };
    for session in &sessions {
        assert_eq!(
            columns(session.session_id.as_str()).await,
            (
                tower_session_jwt::store::started_ms(session),
                session.version as i64
            ),
            "the columns of a record started at {}",
            session.started_at
        );
    }
    for id in ["not-an-object", "no-start", "numeric-start", "word-start"] {
        assert_eq!(columns(id).await, (0, 0), "row {id}");
    }
    // Whatever its key (it cannot be decoded), its version is no integer.
    assert_eq!(columns("impossible-date").await.1, 0);
    let versions: Vec<i32> = sqlx::query_scalar(&format!(
        "SELECT version FROM {schema}.schema_migrations ORDER BY version"
    ))
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(versions, vec![1, 2]);
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname::text FROM pg_indexes WHERE schemaname = $1 AND tablename = 'sessions' \
         ORDER BY indexname",
    )
    .bind(&schema)
    .fetch_all(&raw)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        vec![
            "sessions_expires_at",
            "sessions_pkey",
            "sessions_token_hash_key",
            "sessions_user_started"
        ]
    );

    // The old sessions page in the listing's order, and update from their versions.
    tower_session_jwt::store::sort_for_listing(&mut sessions);
    let mut listed = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let found = store.list_by_user("backfill-user", &page).await.unwrap();
        listed.extend(found.sessions);
        match found.next {
            Some(next) => page.after = Some(next),
            None => break,
        }
    }
    assert_eq!(listed, sessions);
    for session in &sessions {
        assert_eq!(
            store.update(&next_version(session)).await.unwrap(),
            UpdateOutcome::Updated
        );
    }
    assert!(matches!(
        store
            .list_by_user("backfill-damaged", &PageRequest::default())
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_limit_holds_across_instances() {
    // Logins of one user on two instances at once must not both see the same room.
    let Some(t) = TestStore::new("limit").await else {
        return;
    };
    let (a, b) = (t.store.clone(), t.another().await);
    conformance::limit_holds_across_stores(&a, &b).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_through_two_instances_lose_nothing_and_keep_order() {
    let Some(t) = TestStore::new("feed_across").await else {
        return;
    };
    let (a, b) = (t.store.clone(), t.another().await);
    conformance::feed_holds_concurrent_revocations_across_stores(&a, &b).await;
}

struct SchemaGuard(String, String);

impl Drop for SchemaGuard {
    fn drop(&mut self) {
        postgres_common::drop_schema(&self.0, &self.1);
    }
}

#[tokio::test]
async fn debug_output_and_bad_configuration() {
    let builder = PostgresStore::builder("postgres://app:hunter2@127.0.0.1:5432/app");
    assert!(!format!("{builder:?}").contains("hunter2"));
    for schema in ["", "Upper", "a-b", "x; DROP TABLE y", "1abc"] {
        assert!(
            matches!(
                PostgresStore::builder("postgres://127.0.0.1/x")
                    .schema(schema)
                    .build()
                    .await,
                Err(StoreError::Backend(_))
            ),
            "{schema:?}"
        );
    }
    assert!(matches!(
        PostgresStore::builder("postgres://127.0.0.1/x")
            .feed_retention(Duration::ZERO)
            .build()
            .await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        PostgresStore::connect("not a url").await,
        Err(StoreError::Backend(_))
    ));

    // Nothing listens on the port: an error within a few seconds, not a hang.
    let port = free_port();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        PostgresStore::connect(&format!("postgres://postgres@127.0.0.1:{port}/test")),
    )
    .await
    .expect("connect must not hang");
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(4));

    let Some(t) = TestStore::new("debug").await else {
        return;
    };
    let shown = format!("{:?}", t.store);
    assert!(shown.contains(&t.schema), "{shown}");
    assert!(!shown.contains("postgres://"), "{shown}");
    assert_eq!(t.store.schema(), t.schema);
}

#[tokio::test]
async fn expired_rows_are_purged() {
    let Some(t) = TestStore::new("purge").await else {
        return;
    };
    let raw = t.raw().await;
    let mut dead = record("purge-user", HOUR);
    dead.session.expires_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
    t.store
        .create(dead.clone(), SessionLimit::unlimited())
        .await
        .unwrap();
    let live = created(&t.store, "purge-user", HOUR).await;
    // The store's background round, starting with the store, may have been first.
    let purged = t.store.purge_expired().await.unwrap();
    assert!(purged <= 1, "purged {purged}");
    let ids: Vec<String> = sqlx::query_scalar(&format!("SELECT id FROM {}.sessions", t.schema))
        .fetch_all(&raw)
        .await
        .unwrap();
    assert_eq!(ids, vec![live.session.session_id.to_string()]);
}

/// A TCP proxy in front of the server that counts request turns (every time the client sends
/// after the server has spoken, or first, one round trip has begun) and can stall: hold every
/// byte, both ways, as a frozen server would.
struct Proxy {
    port: u16,
    turns: Arc<AtomicU64>,
    stalled: Arc<AtomicBool>,
}

/// Waits while `stalled` is set.
async fn unless_stalled(stalled: &AtomicBool) {
    while stalled.load(Ordering::Acquire) {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

impl Proxy {
    fn start(target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let turns = Arc::new(AtomicU64::new(0));
        let stalled = Arc::new(AtomicBool::new(false));
        let (counted, stall) = (turns.clone(), stalled.clone());
        // Its own thread and runtime, so that it keeps forwarding whatever the test's runtime
        // is doing.
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((client, _)) = listener.accept().await else {
                        return;
                    };
                    let Ok(server) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let turns = counted.clone();
                    // true while the client spoke last.
                    let client_last = Arc::new(AtomicBool::new(false));
                    let (mut client_r, mut client_w) = client.into_split();
                    let (mut server_r, mut server_w) = server.into_split();
                    let up = client_last.clone();
                    let (stall_up, stall_down) = (stall.clone(), stall.clone());
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = client_r.read(&mut buf).await {
                            unless_stalled(&stall_up).await;
                            if !up.swap(true, Ordering::AcqRel) {
                                turns.fetch_add(1, Ordering::AcqRel);
                            }
                            if server_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 64 * 1024];
                        while let Ok(n @ 1..) = server_r.read(&mut buf).await {
                            unless_stalled(&stall_down).await;
                            client_last.store(false, Ordering::Release);
                            if client_w.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    });
                }
            });
        });
        Self {
            port,
            turns,
            stalled,
        }
    }

    fn turns(&self) -> u64 {
        self.turns.load(Ordering::Acquire)
    }

    fn stall(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::Release);
    }
}

/// The address of the server behind `url`, and `url`'s options pointed at `port` on loopback.
async fn through(url: &str, port: u16) -> (std::net::SocketAddr, sqlx::postgres::PgConnectOptions) {
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let target = tokio::net::lookup_host((options.get_host(), options.get_port()))
        .await
        .unwrap()
        .next()
        .unwrap();
    (target, options.host("127.0.0.1").port(port))
}

/// Counts the round trips of an opaque-token lookup (through a counting proxy) and times it
/// (directly). Run with `--nocapture` to see the figures.
#[tokio::test]
async fn opaque_token_lookup_takes_one_round_trip() {
    let Some(t) = TestStore::new("roundtrip").await else {
        return;
    };
    let (target, _) = through(&t.url, 0).await;
    let proxy = Proxy::start(target);
    let (_, options) = through(&t.url, proxy.port).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(1)
        .test_before_acquire(false)
        .connect_lazy_with(options);
    let counted = PostgresStore::builder_with_pool(pool)
        .schema(&t.schema)
        .build()
        .await
        .unwrap();
    let rec = created(&counted, "rt-user", HOUR).await;
    for _ in 0..20 {
        assert!(
            counted
                .find_by_token(&rec.token_hash)
                .await
                .unwrap()
                .is_some()
        );
    }
    tokio::time::sleep(Duration::from_millis(50)).await;

    const N: u64 = 200;
    let mut awaited = 0;
    let total_before = proxy.turns();
    for _ in 0..N {
        // Wait until the pool has its connection back (sqlx checks it on return).
        while counted.pool().num_idle() < 1 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let before = proxy.turns();
        assert!(
            counted
                .find_by_token(&rec.token_hash)
                .await
                .unwrap()
                .is_some()
        );
        awaited += proxy.turns() - before;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let total = proxy.turns() - total_before;

    // Timing, without the proxy: the store as configured by default, against one `SELECT 1`.
    let mut lookup = Vec::new();
    for _ in 0..1000 {
        let started = Instant::now();
        assert!(
            t.store
                .find_by_token(&rec.token_hash)
                .await
                .unwrap()
                .is_some()
        );
        lookup.push(started.elapsed());
    }
    let mut conn = sqlx::PgConnection::connect(&t.url).await.unwrap();
    let mut ping = Vec::new();
    for _ in 0..1000 {
        let started = Instant::now();
        sqlx::query("SELECT 1").execute(&mut conn).await.unwrap();
        ping.push(started.elapsed());
    }
    lookup.sort();
    ping.sort();
    println!(
        "opaque-token lookup: {:.2} round trips awaited per lookup, {:.2} exchanges per lookup on \
         the wire (the second is sqlx's check of the connection returned to its pool, after the \
         lookup has answered); time p50 {:?}, p99 {:?} (one `SELECT 1` on a connection: p50 {:?})",
        awaited as f64 / N as f64,
        total as f64 / N as f64,
        lookup[lookup.len() / 2],
        lookup[lookup.len() * 99 / 100],
        ping[ping.len() / 2],
    );
    assert_eq!(awaited, N, "one round trip per lookup");
}

/// Runs `call` and asserts it fails as unavailable within a few seconds.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung with PostgreSQL down"));
    let took = started.elapsed();
    eprintln!("{what} with PostgreSQL down: {result:?} after {took:?}");
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what} with PostgreSQL down: {result:?}"
    );
    assert!(took < Duration::from_secs(4), "{what} took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outage_fails_closed_then_recovers_without_a_rebuild() {
    let server = match Server::start(free_port()) {
        Ok(server) => server,
        Err(e) => return unavailable("outage test", &format!("cannot start PostgreSQL: {e}")),
    };
    server.wait_ready().await;
    let store = builder(&server.url(), "outage")
        .build()
        .await
        .expect("store on the private server");
    let feed = feed_of(&store);
    let user = "outage-user";
    let rec = created(&store, user, HOUR).await;
    let revoked = created(&store, user, HOUR).await;
    store.revoke(&revoked.session.session_id).await.unwrap();
    let cursor = feed.read(None, Duration::ZERO).await.unwrap().events[0]
        .0
        .clone();
    // Several pooled connections, all about to go stale.
    join_all((0..4).map(|_| store.get(&rec.session.session_id))).await;

    // A fast shutdown: the server terminates every session ("administrator command").
    server.stop(true);
    let id = &rec.session.session_id;
    fails_fast("get", store.get(id)).await;
    fails_fast("find_by_token", store.find_by_token(&rec.token_hash)).await;
    fails_fast(
        "list_by_user",
        store.list_by_user(user, &PageRequest::default()),
    )
    .await;
    fails_fast(
        "create",
        store.create(record(user, HOUR), SessionLimit::unlimited()),
    )
    .await;
    fails_fast(
        "create with a limit",
        store.create(record(user, HOUR), SessionLimit::default()),
    )
    .await;
    fails_fast("update", store.update(&next_version(&rec.session))).await;
    fails_fast("revoke", store.revoke(id)).await;
    fails_fast("revoke_all", store.revoke_all(user, None)).await;
    fails_fast("revoke_all but one", store.revoke_all(user, Some(id))).await;
    fails_fast(
        "feed read",
        feed.read(Some(&cursor), Duration::from_secs(1)),
    )
    .await;
    fails_fast("feed replay", feed.read(None, Duration::ZERO)).await;
    fails_fast("get again", store.get(id)).await;

    server.start_again().expect("restart PostgreSQL");
    server.wait_ready().await;

    // The same store reconnects by itself; the data survived the restart.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.find_by_token(&rec.token_hash).await {
            Ok(found) => {
                assert_eq!(found, Some(rec.session.clone()));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "store never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let fresh = created(&store, user, HOUR).await;
    assert!(
        store
            .revoke(&fresh.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let batch = loop {
        match feed.read(Some(&cursor), Duration::ZERO).await {
            Ok(batch) => break batch,
            Err(e) => {
                assert!(Instant::now() < deadline, "feed never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        matches!(&batch.events[..], [(_, e)] if revoked_session(e) == Some(&fresh.session.session_id)),
        "{:?}",
        batch.events
    );
}

/// A server that stops answering (its connections open, nothing coming back) makes every call
/// fail as unavailable within the bound, never hang; once it answers again, the same store
/// works, and late answers to abandoned calls are not taken for answers to new ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_server_times_out_then_recovers() {
    let Some(t) = TestStore::new("stall").await else {
        return;
    };
    let (target, _) = through(&t.url, 0).await;
    let proxy = Proxy::start(target);
    let (_, options) = through(&t.url, proxy.port).await;
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(4)
        .acquire_timeout(Duration::from_millis(500))
        .test_before_acquire(false)
        .connect_lazy_with(options);
    let store = PostgresStore::builder_with_pool(pool)
        .schema(&t.schema)
        .connect_timeout(Duration::from_millis(500))
        .statement_timeout(Duration::from_millis(500))
        .build()
        .await
        .unwrap();
    let feed = feed_of(&store);
    let rec = created(&store, "stall-user", HOUR).await;
    let other = created(&store, "stall-user", HOUR).await;
    let cursor = feed
        .read(None, Duration::ZERO)
        .await
        .unwrap()
        .events
        .last()
        .map(|e| e.0.clone());

    proxy.stall(true);
    fails_fast("get (stalled)", store.get(&rec.session.session_id)).await;
    fails_fast(
        "find_by_token (stalled)",
        store.find_by_token(&rec.token_hash),
    )
    .await;
    fails_fast("revoke (stalled)", store.revoke(&rec.session.session_id)).await;
    fails_fast(
        "feed read (stalled)",
        feed.read(cursor.as_ref(), Duration::from_millis(500)),
    )
    .await;
    proxy.stall(false);

    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(&other.session.session_id).await {
            Ok(found) => {
                assert_eq!(found, Some(other.session.clone()));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "store never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // The stalled revoke may or may not have run once the server answered again.
    let found = store.get(&rec.session.session_id).await.unwrap();
    assert!(found.is_none() || found == Some(rec.session.clone()));
    for _ in 0..20 {
        assert_eq!(
            store.find_by_token(&other.token_hash).await.unwrap(),
            Some(other.session.clone())
        );
        assert_eq!(
            store
                .list_by_user("stall-user", &PageRequest::default())
                .await
                .unwrap()
                .sessions
                .len(),
            usize::from(found.is_some()) + 1
        );
    }
}

/// Logins cancelled at every point of their transaction (a client that hangs up) leave no
/// pooled connection inside a transaction: on a pool of one connection, the sessions created
/// after them are committed and visible to another instance at once.
#[tokio::test]
async fn cancelled_logins_leave_no_connection_inside_a_transaction() {
    use tower_session_jwt::store::WhenFull;
    let Some(test) = TestStore::with("cancelled_logins", |b| b.pool_size(1)).await else {
        return;
    };
    let other = test.another().await;
    let limit = SessionLimit::new(1000, WhenFull::RevokeOldest);
    for i in 0..3000u64 {
        // Cancelled anywhere from before the call reaches the server to after it committed.
        let cut = Duration::from_micros((i * 7) % 1500);
        let _ = tokio::time::timeout(
            cut,
            test.store
                .create(record("mallory", Duration::from_secs(3600)), limit),
        )
        .await;
        if i % 50 == 49 {
            // A plain INSERT (no limit), then a look from another instance's pool.
            let rec = record("alice", Duration::from_secs(3600));
            let id = rec.session.session_id.clone();
            tokio::time::timeout(
                Duration::from_secs(10),
                test.store.create(rec, SessionLimit::unlimited()),
            )
            .await
            .unwrap_or_else(|_| panic!("after {} cancelled logins: the login hung", i + 1))
            .unwrap_or_else(|e| panic!("after {} cancelled logins: {e}", i + 1));
            assert!(
                other.get(&id).await.unwrap().is_some(),
                "after {} cancelled logins a session sat uncommitted",
                i + 1
            );
        }
    }
}
