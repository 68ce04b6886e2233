//! SqliteStore on temporary database files: the public conformance suite, restarts, several
//! stores (processes) on one file, the feed's lost cursors, purging, corrupt rows, and a locked
//! database.
#![cfg(all(feature = "sqlite", feature = "conformance"))]

mod common;
mod sqlite_common;

use std::time::{Duration, Instant};

use sqlite_common::{OnTempFile, TempDb, quantile, read_all, session_of};
use time::OffsetDateTime;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::conformance::{self, record};
use tower_session_jwt::store::sqlite::SqliteStore;
use tower_session_jwt::store::{PageRequest, SessionLimit, SessionRecord, SessionUpdate};
use tower_session_jwt::{AuthError, NewSession, Sessions, SigningKey};
use tower_session_jwt::{SessionStore, StoreError};

const HOUR: Duration = Duration::from_secs(3600);

tower_session_jwt::session_store_conformance!(sqlite_store, OnTempFile::new("conformance").await);

async fn created(store: &SqliteStore, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .expect("create");
    rec
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_twice_concurrently_through_two_stores_on_one_file() {
    // Two stores on one file behave like two processes: each check must still hold while the
    // other store's checks write to the same tables and feed.
    let db = TempDb::new("conformance-two");
    let (a, b) = (db.store().await, db.store().await);
    tokio::join!(conformance::run_all(&a), conformance::run_all(&b));
}

#[tokio::test]
async fn sessions_survive_a_reopen() {
    let db = TempDb::new("reopen");
    let store = db.store().await;
    let rec = created(&store, "restart-user", HOUR).await;
    let gone = created(&store, "restart-user", HOUR).await;
    store.revoke(&gone.session.session_id).await.unwrap();
    let cursor = read_all(&*store.revocation_feed().unwrap(), None)
        .await
        .unwrap()
        .pop()
        .map(|(cursor, _)| cursor);
    drop(store);

    let store = db.store().await;
    assert_eq!(
        store.find_by_token(&rec.token_hash).await.unwrap(),
        Some(rec.session.clone()),
        "a session outlives the process that created it"
    );
    assert_eq!(store.find_by_token(&gone.token_hash).await.unwrap(), None);
    // The feed outlives it too, and a cursor from before the restart is still good.
    let feed = store.revocation_feed().unwrap();
    let replay = read_all(&*feed, None).await.unwrap();
    assert_eq!(replay.len(), 1);
    assert_eq!(session_of(&replay[0].1), &gone.session.session_id);
    assert!(read_all(&*feed, cursor).await.unwrap().is_empty());
}

#[tokio::test]
async fn stores_opened_at_once_migrate_once_and_a_newer_schema_is_refused() {
    let db = TempDb::new("migrate");
    let (a, b) = tokio::join!(SqliteStore::open(db.path()), SqliteStore::open(db.path()));
    let (a, b) = (a.unwrap(), b.unwrap());
    let rec = created(&a, "migrate-user", HOUR).await;
    assert!(b.get(&rec.session.session_id).await.unwrap().is_some());
    let raw = db.raw().await;
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM tsj_schema_version ORDER BY version")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2]);

    sqlx::query("INSERT INTO tsj_schema_version (version, applied_ms) VALUES (999, 0)")
        .execute(&raw)
        .await
        .unwrap();
    match SqliteStore::open(db.path()).await {
        Err(StoreError::Backend(e)) => assert!(e.to_string().contains("999"), "{e}"),
        other => panic!("a newer schema must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_stores_opened_at_once_on_a_new_file_all_open() {
    // Processes that start together race to create the file, switch it to WAL and migrate it;
    // none may fail for finding the database locked by another one doing so.
    for round in 0..25 {
        let db = TempDb::new("open-race");
        // Spawned, so that the opens also run on both worker threads at once.
        let opened = futures_util::future::join_all(
            (0..8).map(|_| tokio::spawn(SqliteStore::open(db.path().to_owned()))),
        )
        .await;
        let stores: Vec<SqliteStore> = opened
            .into_iter()
            .enumerate()
            .map(|(i, store)| {
                store
                    .unwrap()
                    .unwrap_or_else(|e| panic!("round {round}: store {i} failed to open: {e:?}"))
            })
            .collect();
        let rec = created(&stores[0], "open-race-user", HOUR).await;
        for store in &stores {
            assert!(store.get(&rec.session.session_id).await.unwrap().is_some());
        }
        let versions: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM tsj_schema_version ORDER BY version")
                .fetch_all(&db.raw().await)
                .await
                .unwrap();
        assert_eq!(versions, vec![1, 2], "each migration applied once");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_limit_holds_across_two_stores_on_one_file() {
    // Two processes logging one user in at once must not see the same room twice.
    let db = TempDb::new("limit-two");
    let (a, b) = (db.store().await, db.store().await);
    conformance::limit_holds_across_stores(&a, &b).await;
}

/// The schema of the first release (migration 1), as a database made by it holds it.
const SCHEMA_V1: &str = "
    CREATE TABLE tsj_sessions (
        session_id TEXT PRIMARY KEY NOT NULL,
        token_hash BLOB NOT NULL UNIQUE,
        user_id    TEXT NOT NULL,
        expires_ms INTEGER NOT NULL,
        session    TEXT NOT NULL
    );
    CREATE INDEX tsj_sessions_user ON tsj_sessions (user_id);
    CREATE INDEX tsj_sessions_expiry ON tsj_sessions (expires_ms);
    CREATE TABLE tsj_revocations (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        created_ms INTEGER NOT NULL,
        event      TEXT NOT NULL
    );
    CREATE TABLE tsj_feed_meta (
        singleton  INTEGER PRIMARY KEY NOT NULL CHECK (singleton = 1),
        epoch      TEXT NOT NULL,
        started_ms INTEGER NOT NULL,
        trimmed_id INTEGER NOT NULL,
        trimmed_ms INTEGER NOT NULL
    );
    CREATE TABLE tsj_schema_version (
        version    INTEGER PRIMARY KEY NOT NULL,
        applied_ms INTEGER NOT NULL
    );
    INSERT INTO tsj_schema_version (version, applied_ms) VALUES (1, 0);
";

#[tokio::test]
async fn a_first_release_database_gets_its_sort_keys_from_the_records() {
    let db = TempDb::new("backfill");
    let raw = sqlx::SqlitePool::connect_with(
        sqlx::sqlite::SqliteConnectOptions::new()
            .filename(db.path())
            .create_if_missing(true),
    )
    .await
    .unwrap();
    sqlx::raw_sql(SCHEMA_V1).execute(&raw).await.unwrap();
    let insert = async |id: &str, user: &str, expires_ms: i64, json: &str| {
        sqlx::query(
            "INSERT INTO tsj_sessions (session_id, token_hash, user_id, expires_ms, session)
             VALUES (?1, randomblob(32), ?2, ?3, ?4)",
        )
        .bind(id)
        .bind(user)
        .bind(expires_ms)
        .bind(json)
        .execute(&raw)
        .await
        .unwrap();
    };
    let now = OffsetDateTime::now_utc();
    let second = now.replace_nanosecond(0).unwrap() - Duration::from_secs(600);
    let plus_two = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let minus_five_half = time::UtcOffset::from_hms(-5, -30, 0).unwrap();
    // Sub-millisecond parts of half a millisecond or more (which SQLite's date functions round
    // up), fractions of every length, and offsets that change the day.
    let mut sessions = Vec::new();
    for (i, (nanos, offset)) in [
        (0, time::UtcOffset::UTC),
        (1_000_000, time::UtcOffset::UTC),
        (100_000_000, time::UtcOffset::UTC),
        (123_456_789, time::UtcOffset::UTC),
        (123_500_000, time::UtcOffset::UTC),
        (999_999_999, time::UtcOffset::UTC),
        (999_600_000, plus_two),
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
        let json = serde_json::to_string(&rec.session).unwrap();
        let expires_ms = (rec.session.expires_at.unix_timestamp_nanos() / 1_000_000) as i64;
        insert(
            rec.session.session_id.as_str(),
            "backfill-user",
            expires_ms,
            &json,
        )
        .await;
        sessions.push(rec.session);
    }
    // Written by hand: a one-digit fraction, and none at all with an offset.
    let hand = record("backfill-hand", HOUR).session;
    let mut value = serde_json::to_value(&hand).unwrap();
    for (id, started_at) in [
        ("hand-fraction", "2026-09-21T12:00:00.5Z"),
        ("hand-offset", "2026-09-21T13:00:00+01:00"),
    ] {
        value["session_id"] = id.into();
        value["started_at"] = started_at.into();
        insert(id, "backfill-hand", i64::MAX, &value.to_string()).await;
    }
    // Rows that hold no session record neither stop the migration nor get a key.
    for (id, bad) in [
        ("not-json", "{not json"),
        ("not-an-object", "[1, 2]"),
        ("no-start", "{\"session_id\": \"x\"}"),
        ("numeric-start", "{\"started_at\": 1790000000}"),
        ("word-start", "{\"started_at\": \"now\"}"),
    ] {
        insert(id, "backfill-damaged", i64::MAX, bad).await;
    }
    drop(raw);

    let store = db.store().await;
    let raw = db.raw().await;
    let key = async |id: &str| -> i64 {
        sqlx::query_scalar("SELECT started_ms FROM tsj_sessions WHERE session_id = ?1")
            .bind(id)
            .fetch_one(&raw)
            .await
            .unwrap()
    };
    for session in &sessions {
        assert_eq!(
            key(session.session_id.as_str()).await,
            tower_session_jwt::store::started_ms(session),
            "the key of a row started at {}",
            session.started_at
        );
    }
    assert_eq!(key("hand-fraction").await, 1_789_992_000_500);
    assert_eq!(key("hand-offset").await, 1_789_992_000_000);
    for id in [
        "not-json",
        "not-an-object",
        "no-start",
        "numeric-start",
        "word-start",
    ] {
        assert_eq!(key(id).await, 0, "row {id}");
    }
    let versions: Vec<i64> =
        sqlx::query_scalar("SELECT version FROM tsj_schema_version ORDER BY version")
            .fetch_all(&raw)
            .await
            .unwrap();
    assert_eq!(versions, vec![1, 2]);

    // The old sessions page in the listing's order through the store.
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
    assert!(matches!(
        store
            .list_by_user("backfill-damaged", &PageRequest::default())
            .await,
        Err(StoreError::Corrupt(_))
    ));
}

/// Revokes `N` sessions through one store, one at a time, while a reader follows the other
/// store's feed; returns the p50 and p99 of the time from commit to the reader's batch.
async fn feed_latency(poll: Duration) -> (Duration, Duration) {
    let db = TempDb::new("latency");
    let a = db.store().await;
    let b = SqliteStore::builder(db.path())
        .poll_interval(poll)
        .purge_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let feed = b.revocation_feed().unwrap();
    let start = read_all(&*feed, None).await.unwrap().pop().map(|(c, _)| c);

    // B follows its feed the way Sessions does: long waits, resumed from the last cursor.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(SessionId, Instant)>();
    let reader = tokio::spawn(async move {
        let mut cursor = start;
        loop {
            let batch = feed
                .read(cursor.as_ref(), Duration::from_secs(1))
                .await
                .unwrap();
            let now = Instant::now();
            for (at, event) in batch.events {
                if tx.send((session_of(&event).clone(), now)).is_err() {
                    return;
                }
                cursor = Some(at);
            }
        }
    });

    const N: u32 = 50;
    let mut latencies = Vec::new();
    for i in 0..N {
        let rec = created(&a, "latency-user", HOUR).await;
        // Revocations land at varied points of B's poll cycle.
        tokio::time::sleep(poll * ((i * 37) % 100) / 90).await;
        a.revoke(&rec.session.session_id).await.unwrap();
        let committed = Instant::now();
        assert_eq!(
            b.find_by_token(&rec.token_hash).await.unwrap(),
            None,
            "the opaque token fails through the other store at once"
        );
        let (id, seen) = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .expect("the revocation reached the other store's feed")
            .unwrap();
        assert_eq!(id, rec.session.session_id);
        latencies.push(seen.saturating_duration_since(committed));
    }
    reader.abort();
    let p50 = quantile(&mut latencies, 0.5);
    let p99 = quantile(&mut latencies, 0.99);
    println!(
        "feed latency across two stores on one file ({N} revocations, {poll:?} polls): \
         p50 {p50:?}, p99 {p99:?}"
    );
    (p50, p99)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revocation_through_one_store_reaches_the_other_stores_feed_within_a_poll() {
    for poll in [Duration::from_millis(250), Duration::from_millis(20)] {
        let (_, p99) = feed_latency(poll).await;
        assert!(p99 < poll + Duration::from_millis(500), "p99 {p99:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jwt_revoked_through_one_instance_fails_on_the_other() {
    let db = TempDb::new("instances");
    let instance = |store: SqliteStore| {
        Sessions::builder()
            .store(store)
            .signing_key(SigningKey::ed25519_pem(common::ED_PEM).unwrap())
            .issuer("https://app.example")
            .audience("app")
            .build()
            .unwrap()
    };
    let a = instance(db.store().await);
    let b = instance(db.store().await);
    a.ready().await;
    b.ready().await;

    let login = a.create("alice", NewSession::new()).await.unwrap();
    b.authenticate_jwt(login.jwt.expose()).await.unwrap();
    b.authenticate_token(login.token.expose()).await.unwrap();

    a.revoke(&login.session.session_id).await.unwrap();
    assert!(b.authenticate_token(login.token.expose()).await.is_err());
    let started = Instant::now();
    while !matches!(
        b.authenticate_jwt(login.jwt.expose()).await,
        Err(AuthError::Revoked)
    ) {
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "the revoked JWT still passed on the other instance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Two instances on one file, each with a store of its own (as two processes would have, so the
/// other's writes reach it only through its poll): after a revocation or a claims change on A,
/// how long B still accepts the JWT minted before. Reports p50 and p99 over 40 trials; asserts
/// only that every trial ends within the staleness bound (1 s by default), whatever the speed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_jwt_fails_on_the_other_instance_within_the_poll() {
    let db = TempDb::new("propagation");
    let a = common::instance(db.store().await);
    let b = common::instance(db.store().await);
    a.ready().await;
    b.ready().await;
    // JWTs issued in the second of B's feed horizon are confirmed in the store even when B is
    // caught up; the trials are about the fast path.
    tokio::time::sleep(Duration::from_millis(1100)).await;

    const TRIALS: u64 = 40;
    let mut samples = Vec::new();
    for i in 0..TRIALS {
        let login = a.create("alice", NewSession::new()).await.unwrap();
        b.authenticate_jwt(login.jwt.expose()).await.unwrap();
        assert!(b.fast_path_trusted(), "B's feed is not caught up");
        // Changes land at varied points of B's poll cycle.
        tokio::time::sleep(Duration::from_millis(i * 37 % 50)).await;
        if i % 2 == 0 {
            a.revoke(&login.session.session_id).await.unwrap();
        } else {
            let mut patch = serde_json::Map::new();
            patch.insert("trial".into(), i.into());
            a.update_claims(&login.session.session_id, patch)
                .await
                .unwrap();
        }
        let took = common::until(Duration::from_secs(1), async || {
            match b.authenticate_jwt(login.jwt.expose()).await {
                Ok(_) => false,
                Err(AuthError::Store(e)) => panic!("the store failed: {e}"),
                Err(_) => true,
            }
        })
        .await;
        samples.push(took);
    }
    let p50 = quantile(&mut samples, 0.5);
    let p99 = quantile(&mut samples, 0.99);
    println!(
        "an older JWT still accepted on the other instance after a change ({TRIALS} trials): \
         p50 {p50:?}, p99 {p99:?}, max {:?}",
        samples.last().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_through_two_stores_lose_nothing_and_keep_order() {
    let db = TempDb::new("concurrent");
    let (a, b) = (db.store().await, db.store().await);
    conformance::feed_holds_concurrent_revocations_across_stores(&a, &b).await;
}

#[tokio::test]
async fn a_cursor_behind_the_trimmed_edge_is_lost() {
    let db = TempDb::new("trim");
    let short = SqliteStore::builder(db.path())
        .feed_retention(Duration::from_millis(100))
        .purge_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    // A second process that keeps events longer, but shares the file and so its trimming.
    let long = db.store().await;
    let mut last_old_revoked = OffsetDateTime::UNIX_EPOCH;
    for _ in 0..3 {
        let rec = created(&short, "trim-user", HOUR).await;
        last_old_revoked = OffsetDateTime::now_utc();
        short.revoke(&rec.session.session_id).await.unwrap();
    }
    let feed = short.revocation_feed().unwrap();
    let old = read_all(&*feed, None).await.unwrap();
    assert_eq!(old.len(), 3);
    assert_eq!(
        short.trim_feed().await.unwrap(),
        0,
        "nothing is old enough yet"
    );

    tokio::time::sleep(Duration::from_millis(150)).await;
    let fresh = created(&short, "trim-user", HOUR).await;
    let fresh_revoked = OffsetDateTime::now_utc();
    short.revoke(&fresh.session.session_id).await.unwrap();
    assert_eq!(short.trim_feed().await.unwrap(), 3);

    for feed in [feed.clone(), long.revocation_feed().unwrap()] {
        assert!(
            matches!(
                feed.read(Some(&old[0].0), Duration::ZERO).await,
                Err(StoreError::FeedCursorLost)
            ),
            "a cursor whose successors were trimmed must be lost"
        );
        // The last trimmed event's cursor lost nothing.
        let after = read_all(&*feed, Some(old[2].0.clone())).await.unwrap();
        assert_eq!(after.len(), 1);
        let replay = feed.read(None, Duration::ZERO).await.unwrap();
        assert_eq!(replay.events.len(), 1);
        assert_eq!(session_of(&replay.events[0].1), &fresh.session.session_id);
        assert!(replay.caught_up);
        assert!(
            replay.horizon > last_old_revoked && replay.horizon <= fresh_revoked,
            "the horizon {} must be after the events trimmed (even for the longer retention) \
             and not after the events kept",
            replay.horizon
        );
    }
}

#[tokio::test]
async fn a_cursor_from_a_replaced_or_restored_file_is_lost() {
    let db = TempDb::new("replaced");
    let other = TempDb::new("replaced-other");
    let store = db.store().await;
    let rec = created(&store, "replaced-user", HOUR).await;
    store.revoke(&rec.session.session_id).await.unwrap();

    // A backup taken now knows one event.
    let backup = TempDb::new("replaced-backup");
    sqlx::query(&format!("VACUUM INTO '{}'", backup.path().display()))
        .execute(&db.raw().await)
        .await
        .unwrap();
    for _ in 0..2 {
        let rec = created(&store, "replaced-user", HOUR).await;
        store.revoke(&rec.session.session_id).await.unwrap();
    }
    let feed = store.revocation_feed().unwrap();
    let cursor = read_all(&*feed, None).await.unwrap().pop().unwrap().0;

    // Another database entirely: its feed never issued this cursor.
    let elsewhere = other.store().await;
    assert!(matches!(
        elsewhere
            .revocation_feed()
            .unwrap()
            .read(Some(&cursor), Duration::ZERO)
            .await,
        Err(StoreError::FeedCursorLost)
    ));

    // The file restored from the backup: same feed, but it never reached the cursor.
    drop((store, feed));
    db.remove_files();
    std::fs::copy(backup.path(), db.path()).unwrap();
    let restored = db.store().await;
    let feed = restored.revocation_feed().unwrap();
    assert!(matches!(
        feed.read(Some(&cursor), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    assert_eq!(read_all(&*feed, None).await.unwrap().len(), 1);
}

#[tokio::test]
async fn purge_removes_expired_rows_in_bounded_passes() {
    let db = TempDb::new("purge");
    let store = SqliteStore::builder(db.path())
        .purge_interval(Duration::ZERO)
        .purge_batch(100)
        .build()
        .await
        .unwrap();
    let past = OffsetDateTime::now_utc() - Duration::from_secs(10);
    for _ in 0..250 {
        let mut rec = record("purge-expired", HOUR);
        rec.session.started_at = past - HOUR;
        rec.session.last_accessed_at = rec.session.started_at;
        rec.session.expires_at = past;
        store.create(rec, SessionLimit::unlimited()).await.unwrap();
    }
    let live = created(&store, "purge-live", HOUR).await;
    let count = async || -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM tsj_sessions")
            .fetch_one(&db.raw().await)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 251);
    assert!(
        store
            .list_by_user("purge-expired", &PageRequest::default())
            .await
            .unwrap()
            .sessions
            .is_empty()
    );

    let passes = [
        store.purge_expired().await.unwrap(),
        store.purge_expired().await.unwrap(),
        store.purge_expired().await.unwrap(),
        store.purge_expired().await.unwrap(),
    ];
    assert_eq!(
        passes,
        [100, 100, 50, 0],
        "each pass removes at most one batch"
    );
    assert_eq!(count().await, 1);
    assert_eq!(
        store.find_by_token(&live.token_hash).await.unwrap(),
        Some(live.session)
    );
}

#[tokio::test]
async fn the_background_purge_runs_on_its_own() {
    let db = TempDb::new("background");
    let store = SqliteStore::builder(db.path())
        .purge_interval(Duration::from_millis(50))
        .build()
        .await
        .unwrap();
    let rec = created(&store, "background-user", Duration::from_millis(10)).await;
    let raw = db.raw().await;
    let started = Instant::now();
    loop {
        let left: i64 =
            sqlx::query_scalar("SELECT count(*) FROM tsj_sessions WHERE session_id = ?1")
                .bind(rec.session.session_id.as_str())
                .fetch_one(&raw)
                .await
                .unwrap();
        if left == 0 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "never purged");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn corrupt_rows_are_corrupt_errors() {
    let db = TempDb::new("corrupt");
    let store = db.store().await;
    let raw = db.raw().await;
    let damage = async |rec: &SessionRecord, json: &str| {
        sqlx::query("UPDATE tsj_sessions SET session = ?2 WHERE session_id = ?1")
            .bind(rec.session.session_id.as_str())
            .bind(json)
            .execute(&raw)
            .await
            .unwrap();
    };
    let is_corrupt = |r: Result<_, StoreError>| matches!(r, Err(StoreError::Corrupt(_)));

    let bad = created(&store, "corrupt-user", HOUR).await;
    damage(&bad, "{not json").await;
    assert!(is_corrupt(
        store.find_by_token(&bad.token_hash).await.map(|_| ())
    ));
    assert!(is_corrupt(
        store.get(&bad.session.session_id).await.map(|_| ())
    ));
    assert!(is_corrupt(
        store
            .list_by_user("corrupt-user", &PageRequest::default())
            .await
            .map(|_| ())
    ));
    let next = SessionUpdate {
        session: bad.session.clone().with_version(bad.session.version + 1),
        token_hash: None,
        refuse_older_jwts: false,
    };
    assert!(is_corrupt(store.update(&next).await.map(|_| ())));

    // A well-formed record under another session's row.
    let swapped = created(&store, "corrupt-user-2", HOUR).await;
    let other = record("corrupt-user-2", HOUR);
    damage(&swapped, &serde_json::to_string(&other.session).unwrap()).await;
    assert!(is_corrupt(
        store.find_by_token(&swapped.token_hash).await.map(|_| ())
    ));
    assert!(is_corrupt(
        store.get(&swapped.session.session_id).await.map(|_| ())
    ));

    // Revoking a damaged record still deletes it and publishes it, then says it was damaged.
    let feed = store.revocation_feed().unwrap();
    let start = read_all(&*feed, None).await.unwrap().pop().map(|(c, _)| c);
    assert!(is_corrupt(
        store.revoke(&bad.session.session_id).await.map(|_| ())
    ));
    assert_eq!(store.revoke(&bad.session.session_id).await.unwrap(), None);
    let published = read_all(&*feed, start.clone()).await.unwrap();
    assert_eq!(published.len(), 1);
    assert_eq!(session_of(&published[0].1), &bad.session.session_id);

    // An undecodable feed event stops the reader: it is never skipped.
    sqlx::query("INSERT INTO tsj_revocations (created_ms, event) VALUES (?1, 'garbage')")
        .bind(OffsetDateTime::now_utc().unix_timestamp() * 1000)
        .execute(&raw)
        .await
        .unwrap();
    assert!(is_corrupt(
        feed.read(start.as_ref(), Duration::ZERO).await.map(|_| ())
    ));
    // A damaged bookkeeping row too.
    sqlx::query("UPDATE tsj_feed_meta SET trimmed_id = 'x'")
        .execute(&raw)
        .await
        .unwrap();
    assert!(is_corrupt(
        feed.read(None, Duration::ZERO).await.map(|_| ())
    ));
}

#[tokio::test]
async fn a_locked_database_is_unavailable_within_the_busy_timeout() {
    let db = TempDb::new("locked");
    let store = SqliteStore::builder(db.path())
        .busy_timeout(Duration::from_millis(200))
        .purge_interval(Duration::ZERO)
        .build()
        .await
        .unwrap();
    let rec = created(&store, "locked-user", HOUR).await;

    // Another process holds the write lock.
    let raw = db.raw().await;
    let mut holder = raw.acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let started = Instant::now();
    let result = store.revoke(&rec.session.session_id).await;
    let took = started.elapsed();
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "a locked database is unavailable, got {result:?}"
    );
    assert!(took < Duration::from_secs(2), "took {took:?}");
    // Readers are not blocked by a writer (WAL).
    assert!(store.get(&rec.session.session_id).await.unwrap().is_some());
    sqlx::query("ROLLBACK").execute(&mut *holder).await.unwrap();
    assert!(
        store
            .revoke(&rec.session.session_id)
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn an_unopenable_path_is_unavailable_and_a_bad_url_is_refused() {
    let missing_dir = std::env::temp_dir()
        .join("tsj-no-such-dir-for-sure")
        .join("x.db");
    assert!(matches!(
        SqliteStore::open(&missing_dir).await,
        Err(StoreError::Unavailable(_))
    ));
    assert!(matches!(
        SqliteStore::connect("postgres://nope").await,
        Err(StoreError::Backend(_))
    ));
}

#[tokio::test]
async fn in_memory_databases_work_and_are_private() {
    let store = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert!(
        !store.is_shared(),
        "no other process can reach an in-memory database"
    );
    let rec = created(&store, "memory-user", HOUR).await;
    assert!(store.get(&rec.session.session_id).await.unwrap().is_some());
    let other = SqliteStore::connect("sqlite::memory:").await.unwrap();
    assert!(other.get(&rec.session.session_id).await.unwrap().is_none());
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn opaque_lookup_time() {
    let db = TempDb::new("lookup");
    let store = db.store().await;
    let records: Vec<SessionRecord> = (0..2000)
        .map(|i| record(&format!("lookup-{}", i % 200), HOUR))
        .collect();
    for chunk in records.chunks(100) {
        futures_util::future::join_all(
            chunk
                .iter()
                .map(|r| store.create(r.clone(), SessionLimit::unlimited())),
        )
        .await;
    }
    let mut samples = Vec::with_capacity(records.len());
    for rec in &records {
        let started = Instant::now();
        let found = store.find_by_token(&rec.token_hash).await.unwrap();
        samples.push(started.elapsed());
        assert!(found.is_some());
    }
    let p50 = quantile(&mut samples, 0.5);
    let p99 = quantile(&mut samples, 0.99);
    println!("find_by_token over 2000 sessions: p50 {p50:?}, p99 {p99:?}");
}
