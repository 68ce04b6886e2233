#![cfg(all(feature = "redis", feature = "conformance"))]
//! RedisStore against a real Redis (`REDIS_URL`, default `redis://127.0.0.1:6379`): the public
//! conformance suite, the revocation feed, TTLs and index hygiene, corrupt records, and an outage.
//!
//! Without a reachable Redis these tests print a note and pass, unless `CI=true`, where they fail.

mod redis_common;

use std::collections::HashSet;
use std::process::Command;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use redis::AsyncCommands as _;
use time::OffsetDateTime;
use tower_session_jwt::Session;
use tower_session_jwt::session::SessionId;
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::conformance::{self, record};
use tower_session_jwt::store::redis::RedisStore;
use tower_session_jwt::store::{
    CreateOutcome, FeedCursor, PageCursor, PageRequest, SessionLimit, SessionRecord, SessionUpdate,
    UpdateOutcome, WhenFull, sort_for_listing,
};
use tower_session_jwt::{SessionStore, StoreError};

use redis_common::{Server, TestStore, delete_prefix, free_port, unavailable, unique_prefix};

const HOUR: Duration = Duration::from_secs(3600);

async fn created(store: &RedisStore, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .expect("create");
    rec
}

/// Every live session of `user`, through every page of the listing.
async fn list(store: &RedisStore, user: &str) -> Result<Vec<Session>, StoreError> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(PageRequest::MAX_LIMIT);
    loop {
        let found = store.list_by_user(user, &page).await?;
        out.extend(found.sessions);
        match found.next {
            Some(next) => page.after = Some(next),
            None => return Ok(out),
        }
    }
}

/// A plain update of `session` to its next version.
fn next_version(session: &Session) -> SessionUpdate {
    SessionUpdate {
        session: session.clone().with_version(session.version + 1),
        token_hash: None,
        refuse_older_jwts: false,
    }
}

fn session_key(t: &TestStore, id: &SessionId) -> String {
    format!("{}s:{}", t.base(), id.as_str())
}

fn token_key(t: &TestStore, rec: &SessionRecord) -> String {
    format!("{}tok:{}", t.base(), rec.token_hash.to_base64url())
}

fn user_key(t: &TestStore, user: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user);
    format!("{}u:{encoded}", t.base())
}

fn listing_key(t: &TestStore, user: &str) -> String {
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user);
    format!("{}us:{encoded}", t.base())
}

fn feed_key(t: &TestStore) -> String {
    format!("{}revocations", t.base())
}

#[tokio::test]
async fn conformance_suite() {
    let Some(t) = TestStore::new("conformance").await else {
        return;
    };
    conformance::run_all(&t.store).await;
}

#[tokio::test]
async fn conformance_suite_twice_concurrently_on_one_store() {
    let Some(t) = TestStore::new("conformance2").await else {
        return;
    };
    let clone = t.store.clone();
    tokio::join!(conformance::run_all(&t.store), conformance::run_all(&clone));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_revocations_through_two_instances_lose_nothing_and_keep_order() {
    let Some(t) = TestStore::new("feed_across").await else {
        return;
    };
    let (a, b) = (t.store.clone(), t.another().await);
    conformance::feed_holds_concurrent_revocations_across_stores(&a, &b).await;
}

#[tokio::test]
async fn feed_replays_then_blocks_until_the_next_revocation() {
    let Some(t) = TestStore::new("feed").await else {
        return;
    };
    let store = &t.store;
    let feed = store.revocation_feed().expect("RedisStore has a feed");
    assert_eq!(feed.retention(), Duration::from_secs(15 * 60));

    let started = Instant::now();
    let empty = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(empty.events.is_empty() && empty.caught_up, "{empty:?}");
    assert!(started.elapsed() < Duration::from_millis(500), "zero wait");

    let before = OffsetDateTime::now_utc();
    let a = created(store, "feed-user", HOUR).await;
    assert!(store.revoke(&a.session.session_id).await.unwrap().is_some());
    let after = OffsetDateTime::now_utc();
    // Revoking again (or an unknown id) records nothing.
    assert!(store.revoke(&a.session.session_id).await.unwrap().is_none());

    let batch = feed.read(None, Duration::ZERO).await.unwrap();
    assert!(batch.caught_up);
    let events = batch.events;
    assert_eq!(events.len(), 1, "{events:?}");
    let (cursor, event) = events[0].clone();
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

    // Nothing new: a short wait returns an empty batch after about the wait.
    let started = Instant::now();
    let quiet = feed
        .read(Some(&cursor), Duration::from_millis(300))
        .await
        .unwrap();
    assert!(quiet.events.is_empty() && quiet.caught_up, "{quiet:?}");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(250) && waited < Duration::from_secs(2),
        "waited {waited:?}"
    );

    // A revocation made meanwhile (on the command connection) wakes a long blocking read.
    let b = created(store, "feed-user", HOUR).await;
    let revoker = {
        let store = store.clone();
        let id = b.session.session_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            store.revoke(&id).await.unwrap().expect("b was live");
        })
    };
    let started = Instant::now();
    let events = feed
        .read(Some(&cursor), Duration::from_secs(10))
        .await
        .unwrap()
        .events;
    let woke = started.elapsed();
    revoker.await.unwrap();
    assert!(
        woke < Duration::from_secs(2),
        "blocking read woke after {woke:?}"
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(
        matches!(&events[0].1, RevocationEvent::Session { session_id, .. } if *session_id == b.session.session_id)
    );
    assert_ne!(events[0].0, cursor);

    // The replay from the start has both, oldest first.
    let all = feed.read(None, Duration::ZERO).await.unwrap().events;
    assert_eq!(all.len(), 2);
    assert_eq!(all[0].0, cursor);
    assert_eq!(all[1], events[0]);
}

#[tokio::test]
async fn blocking_read_of_an_empty_feed_wakes_on_the_first_event() {
    let Some(t) = TestStore::new("feedempty").await else {
        return;
    };
    let feed = t.store.revocation_feed().unwrap();
    let rec = created(&t.store, "first", HOUR).await;
    let revoker = {
        let store = t.store.clone();
        let id = rec.session.session_id.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            store.revoke(&id).await.unwrap();
        })
    };
    let started = Instant::now();
    let events = feed
        .read(None, Duration::from_secs(10))
        .await
        .unwrap()
        .events;
    assert!(started.elapsed() < Duration::from_secs(2));
    revoker.await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
}

#[tokio::test]
async fn events_are_not_lost_while_the_reader_reconnects() {
    let Some(t) = TestStore::new("feedreconnect").await else {
        return;
    };
    let user = "reconnect-user";
    let recs = [
        created(&t.store, user, HOUR).await,
        created(&t.store, user, HOUR).await,
        created(&t.store, user, HOUR).await,
    ];
    t.store.revoke(&recs[0].session.session_id).await.unwrap();

    // A reader on its own connections (another instance) takes the cursor, then goes away.
    let reader = t.another().await;
    let cursor: FeedCursor = {
        let feed = reader.revocation_feed().unwrap();
        let events = feed.read(None, Duration::ZERO).await.unwrap().events;
        assert_eq!(events.len(), 1);
        events[0].0.clone()
    };
    drop(reader);

    // Meanwhile: two more revocations.
    t.store.revoke(&recs[1].session.session_id).await.unwrap();
    t.store.revoke_all(user, None).await.unwrap();

    // A new connection resumes from the cursor and gets both, in order.
    let reader = t.another().await;
    let feed = reader.revocation_feed().unwrap();
    let events = feed
        .read(Some(&cursor), Duration::from_secs(1))
        .await
        .unwrap()
        .events;
    // The revocation, then `revoke_all`'s: the one session left, by id, and the user's cut-off.
    assert_eq!(events.len(), 3, "{events:?}");
    assert!(
        matches!(&events[0].1, RevocationEvent::Session { session_id, .. } if *session_id == recs[1].session.session_id)
    );
    assert!(
        matches!(&events[1].1, RevocationEvent::Session { session_id, .. } if *session_id == recs[2].session.session_id)
    );
    assert!(matches!(&events[2].1, RevocationEvent::User { user_id, .. } if user_id == user));
    let last = events[2].0.clone();
    let rest = feed.read(Some(&last), Duration::ZERO).await.unwrap();
    assert!(rest.events.is_empty() && rest.caught_up);
}

#[tokio::test]
async fn revoke_all_appends_each_session_and_a_user_cutoff() {
    let Some(t) = TestStore::new("revokeall").await else {
        return;
    };
    let user = "cutoff-user";
    let old = [
        created(&t.store, user, HOUR).await,
        created(&t.store, user, HOUR).await,
    ];
    let other = created(&t.store, "someone-else", HOUR).await;
    let mut revoked = t.store.revoke_all(user, None).await.unwrap();
    revoked.sort();
    let mut expected: Vec<SessionId> = old.iter().map(|r| r.session.session_id.clone()).collect();
    expected.sort();
    assert_eq!(revoked, expected);
    let newer = created(&t.store, user, HOUR).await;

    let feed = t.store.revocation_feed().unwrap();
    let events = feed.read(None, Duration::ZERO).await.unwrap().events;
    // One event per session revoked (whatever clock set its start), then the user's cut-off.
    assert_eq!(events.len(), 3, "{events:?}");
    let mut named: Vec<SessionId> = events[..2]
        .iter()
        .map(|(_, event)| match event {
            RevocationEvent::Session {
                session_id,
                ended: true,
                ..
            } => session_id.clone(),
            other => panic!("expected a session revocation, got {other:?}"),
        })
        .collect();
    named.sort();
    assert_eq!(named, expected);
    let RevocationEvent::User { user_id, before } = &events[2].1 else {
        panic!("expected a user event, got {:?}", events[2].1);
    };
    assert_eq!(user_id, user);
    for rec in &old {
        assert!(rec.session.started_at < *before, "old session not cut off");
    }
    assert!(
        newer.session.started_at >= *before,
        "a session created after revoke_all must not count as revoked"
    );
    assert_eq!(list(&t.store, user).await.unwrap(), vec![newer.session]);
    assert!(
        t.store
            .get(&other.session.session_id)
            .await
            .unwrap()
            .is_some()
    );

    // A user with nothing to revoke still gets an event: a session being created elsewhere at
    // this moment must be cut off too.
    assert!(t.store.revoke_all("nobody", None).await.unwrap().is_empty());
    let more = feed
        .read(Some(&events[2].0), Duration::ZERO)
        .await
        .unwrap()
        .events;
    assert!(
        matches!(&more[..], [(_, RevocationEvent::User { user_id, .. })] if user_id == "nobody")
    );
}

#[tokio::test]
async fn keys_expire_with_the_session() {
    let Some(t) = TestStore::new("ttl").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "ttl-user";
    let rec = created(&t.store, user, HOUR).await;
    let keys = [
        token_key(&t, &rec),
        session_key(&t, &rec.session.session_id),
        user_key(&t, user),
        listing_key(&t, user),
    ];
    let close_to = |pttl: i64, want: Duration| {
        let want = want.as_millis() as i64;
        pttl <= want && pttl > want - 10_000
    };
    for key in &keys {
        let pttl: i64 = raw.pttl(key).await.unwrap();
        assert!(close_to(pttl, HOUR), "{key}: PTTL {pttl}");
    }

    let mut longer = next_version(&rec.session);
    longer.session.expires_at += 2 * HOUR;
    assert_eq!(
        t.store.update(&longer).await.unwrap(),
        UpdateOutcome::Updated
    );
    for key in &keys {
        let pttl: i64 = raw.pttl(key).await.unwrap();
        assert!(close_to(pttl, 3 * HOUR), "{key} after update: PTTL {pttl}");
    }

    // A session created already expired leaves nothing behind.
    let mut dead = record(user, HOUR);
    dead.session.expires_at = OffsetDateTime::now_utc() - Duration::from_secs(1);
    t.store
        .create(dead.clone(), SessionLimit::unlimited())
        .await
        .unwrap();
    let exists: i64 = raw
        .exists(&[
            token_key(&t, &dead),
            session_key(&t, &dead.session.session_id),
        ])
        .await
        .unwrap();
    assert_eq!(exists, 0);

    // Revocation deletes every key of the session, and the index with its last session.
    t.store.revoke(&rec.session.session_id).await.unwrap();
    let exists: i64 = raw.exists(&keys).await.unwrap();
    assert_eq!(exists, 0);
}

/// The ids in a sorted set, sorted by name.
async fn members(raw: &mut redis::aio::MultiplexedConnection, key: &str) -> Vec<String> {
    let mut ids: Vec<String> = raw.zrange(key, 0, -1).await.unwrap();
    ids.sort();
    ids
}

fn ids_of(records: &[&SessionRecord]) -> Vec<String> {
    let mut ids: Vec<String> = records
        .iter()
        .map(|r| r.session.session_id.to_string())
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn expired_ids_leave_both_user_indexes() {
    let Some(t) = TestStore::new("index").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "index-user";
    let indexes = [user_key(&t, user), listing_key(&t, user)];
    let short = created(&t.store, user, Duration::from_millis(300)).await;
    let long = created(&t.store, user, HOUR).await;
    for index in &indexes {
        assert_eq!(members(&mut raw, index).await, ids_of(&[&short, &long]));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        list(&t.store, user).await.unwrap(),
        vec![long.session.clone()]
    );
    assert_eq!(
        t.store.find_by_token(&short.token_hash).await.unwrap(),
        None
    );
    // Listing purged the expired id from both indexes; a write keeps them in step.
    for index in &indexes {
        assert_eq!(members(&mut raw, index).await, ids_of(&[&long]), "{index}");
    }
    let newer = created(&t.store, user, HOUR).await;
    for index in &indexes {
        assert_eq!(
            members(&mut raw, index).await,
            ids_of(&[&long, &newer]),
            "{index}"
        );
    }

    // A write purges too: an id that expires without a listing leaves with the next create.
    let brief = created(&t.store, user, Duration::from_millis(300)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last = created(&t.store, user, HOUR).await;
    for index in &indexes {
        assert_eq!(
            members(&mut raw, index).await,
            ids_of(&[&long, &newer, &last]),
            "{index}: {brief:?} expired"
        );
    }

    // Revocation removes its id at once; revoking all but one leaves only that one.
    t.store.revoke(&long.session.session_id).await.unwrap();
    for index in &indexes {
        assert_eq!(members(&mut raw, index).await, ids_of(&[&newer, &last]));
    }
    t.store
        .revoke_all(user, Some(&last.session.session_id))
        .await
        .unwrap();
    for index in &indexes {
        assert_eq!(members(&mut raw, index).await, ids_of(&[&last]));
    }
    t.store.revoke_all(user, None).await.unwrap();
    let left: i64 = raw.exists(&indexes).await.unwrap();
    assert_eq!(left, 0, "revoke_all leaves no index behind");
}

/// `calls` of `command` in an `INFO commandstats` reply (0 when it never ran).
fn calls(stats: &str, command: &str) -> u64 {
    let prefix = format!("cmdstat_{command}:calls=");
    stats
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().expect("a call count"))
}

/// A user with 5,000 sessions is listed page by page: every session exactly once, in the
/// listing's order, and one page reads about one page of records, not the user's every session.
/// (On a server of its own: the read count comes from the server-wide `INFO commandstats`.)
#[tokio::test]
async fn one_listing_page_reads_one_page_of_a_large_user() {
    const N: usize = 5000;
    const PAGE: u32 = 50;
    let port = free_port();
    let _server = match Server::start(port) {
        Ok(server) => server,
        Err(e) => {
            unavailable("paging test", &format!("cannot start redis-server: {e}"));
            return;
        }
    };
    Server::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::builder(&url)
        .key_prefix(unique_prefix("paging"))
        .build()
        .await
        .expect("store on the private server");
    let user = "many-sessions";
    let base = OffsetDateTime::now_utc() - HOUR;
    // Three sessions per millisecond, so that pages also end and start inside a millisecond.
    let records: Vec<SessionRecord> = (0..N)
        .map(|i| {
            let mut rec = record(user, HOUR);
            rec.session.started_at = base + Duration::from_millis((i / 3) as u64);
            rec.session.last_accessed_at = rec.session.started_at;
            rec
        })
        .collect();
    for chunk in records.chunks(250) {
        for result in join_all(
            chunk
                .iter()
                .map(|r| store.create(r.clone(), SessionLimit::unlimited())),
        )
        .await
        {
            result.expect("create");
        }
    }
    let neighbour = created(&store, "a-neighbour", HOUR).await;
    let mut expected: Vec<Session> = records.iter().map(|r| r.session.clone()).collect();
    sort_for_listing(&mut expected);

    let mut seen: Vec<Session> = Vec::with_capacity(N);
    let mut page = PageRequest::first(PAGE);
    let mut pages = 0;
    loop {
        let found = store.list_by_user(user, &page).await.expect("a page");
        pages += 1;
        assert!(
            found.sessions.len() <= PAGE as usize,
            "page {pages} too long"
        );
        seen.extend(found.sessions);
        match found.next {
            Some(next) => page = PageRequest::after(next, PAGE),
            None => break,
        }
        assert!(pages <= N, "the listing never ended");
    }
    assert_eq!(pages, N / PAGE as usize, "5,000 sessions in pages of 50");
    let distinct: HashSet<&SessionId> = seen.iter().map(|s| &s.session_id).collect();
    assert_eq!(distinct.len(), seen.len(), "a session listed twice");
    assert_eq!(seen.len(), N, "sessions missing from the listing");
    if let Some(i) = (0..N).find(|&i| seen[i] != expected[i]) {
        panic!(
            "position {i}: listed {:?}, expected {:?}",
            seen[i].session_id, expected[i].session_id
        );
    }
    assert!(!distinct.contains(&neighbour.session.session_id));

    // One page from the middle, counted on the server: records read (HGET/HMGET) and index
    // ranges. Reading every session of the user would take 5,000 record reads.
    let mut raw = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let middle = N / 2;
    let cursor = PageCursor::after(&expected[middle]);
    let () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query_async(&mut raw)
        .await
        .unwrap();
    let found = store
        .list_by_user(user, &PageRequest::after(cursor, PAGE))
        .await
        .unwrap();
    let stats: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert_eq!(
        found.sessions,
        expected[middle + 1..middle + 1 + PAGE as usize].to_vec()
    );
    assert_eq!(
        found.next,
        Some(PageCursor::after(&expected[middle + PAGE as usize]))
    );
    let records_read = calls(&stats, "hget") + calls(&stats, "hmget");
    assert!(
        records_read <= u64::from(PAGE) + 1,
        "one page of {PAGE} read {records_read} records:\n{stats}"
    );
    let ranges = calls(&stats, "zrange")
        + calls(&stats, "zrangebyscore")
        + calls(&stats, "zrevrangebyscore");
    assert!(ranges <= 4, "one page took {ranges} index ranges:\n{stats}");
    println!("one page of {PAGE} over {N} sessions: {records_read} records read, {ranges} ranges");
}

/// Stores `rec` as a version of this crate before the listing index stored sessions: JSON
/// without the fields added since (`authentication_factors`, `version`) and with `started_at`
/// as given, a hash without `start` and `ver`, and the id in the expiry index only. Returns the
/// stored JSON.
async fn store_legacy(
    t: &TestStore,
    raw: &mut redis::aio::MultiplexedConnection,
    rec: &SessionRecord,
    started_at: &str,
) -> String {
    use base64::Engine as _;
    let mut json = serde_json::to_value(&rec.session).unwrap();
    let fields = json.as_object_mut().unwrap();
    fields.remove("authentication_factors");
    fields.remove("version");
    fields.insert("started_at".into(), started_at.into());
    let json = json.to_string();
    let now = OffsetDateTime::now_utc();
    let exp = (rec.session.expires_at.unix_timestamp_nanos() / 1_000_000) as i64;
    let ttl = ((rec.session.expires_at - now).whole_milliseconds() as i64).max(1);
    let user = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&rec.session.user_id);
    let key = session_key(t, &rec.session.session_id);
    let _: () = raw
        .hset_multiple(
            &key,
            &[
                ("session", json.clone()),
                ("token", rec.token_hash.to_base64url()),
                ("user", user),
                ("exp", exp.to_string()),
            ],
        )
        .await
        .unwrap();
    let _: () = raw.pexpire(&key, ttl).await.unwrap();
    let _: () = raw
        .pset_ex(
            token_key(t, rec),
            rec.session.session_id.as_str(),
            ttl as u64,
        )
        .await
        .unwrap();
    let index = user_key(t, &rec.session.user_id);
    let _: () = raw
        .zadd(&index, rec.session.session_id.as_str(), exp)
        .await
        .unwrap();
    let _: () = raw.pexpire(&index, ttl).await.unwrap();
    json
}

/// What a listing returns for a legacy record.
fn decoded(json: &str) -> Session {
    serde_json::from_str(json).expect("a decodable legacy record")
}

fn rfc3339(at: OffsetDateTime, offset: time::UtcOffset) -> String {
    at.to_offset(offset)
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Sessions stored before the listing index existed are listed, in order and on every page,
/// with their `started_at` read from JSON in any RFC 3339 form the crate can parse; they update
/// from version 0 and make room for new sessions oldest first.
#[tokio::test]
async fn sessions_stored_before_the_listing_index_are_listed() {
    let Some(t) = TestStore::new("legacy").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "legacy-user";
    let base = OffsetDateTime::now_utc() - HOUR;
    let utc = time::UtcOffset::UTC;
    let plus_two = time::UtcOffset::from_hms(2, 0, 0).unwrap();
    let minus_five_thirty = time::UtcOffset::from_hms(-5, -30, 0).unwrap();
    let whole_second = base.replace_nanosecond(0).unwrap() + Duration::from_secs(3);
    let starts = [
        rfc3339(base, utc),
        rfc3339(base + Duration::from_millis(1), plus_two),
        rfc3339(base + Duration::from_micros(2_500), minus_five_thirty),
        rfc3339(whole_second, utc),
        rfc3339(whole_second + Duration::from_millis(500), plus_two),
        // The same millisecond as the first: the id breaks the tie.
        rfc3339(base, minus_five_thirty),
        // Before 1970, with and without digits below the millisecond (truncated toward zero).
        "1969-12-31T23:59:59.9995Z".to_owned(),
        "1969-12-31T23:59:58.250Z".to_owned(),
    ];
    let mut expected = Vec::new();
    let mut legacy = Vec::new();
    for start in &starts {
        let rec = record(user, HOUR);
        let json = store_legacy(&t, &mut raw, &rec, start).await;
        expected.push(decoded(&json));
        legacy.push(rec);
    }
    sort_for_listing(&mut expected);
    let listing = listing_key(&t, user);
    assert_eq!(raw.exists::<_, i64>(&listing).await.unwrap(), 0);

    assert_eq!(list(&t.store, user).await.unwrap(), expected);
    // Pages of two, starting and ending inside the tied millisecond too.
    let mut paged = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let found = t.store.list_by_user(user, &page).await.unwrap();
        paged.extend(found.sessions);
        match found.next {
            Some(next) => page = PageRequest::after(next, 2),
            None => break,
        }
    }
    assert_eq!(paged, expected);
    // The listing index was built, and expires with the user's sessions.
    assert_eq!(
        members(&mut raw, &listing).await,
        members(&mut raw, &user_key(&t, user)).await
    );
    let pttl: i64 = raw.pttl(&listing).await.unwrap();
    assert!(pttl > 0 && pttl <= HOUR.as_millis() as i64, "PTTL {pttl}");

    // A legacy record is version 0: it updates to 1, once.
    let first = &legacy[0].session.session_id;
    let stored = t
        .store
        .get(first)
        .await
        .unwrap()
        .expect("a live legacy session");
    assert_eq!(stored.version, 0);
    let update = next_version(&stored);
    assert_eq!(
        t.store.update(&update).await.unwrap(),
        UpdateOutcome::Updated
    );
    assert_eq!(t.store.update(&update).await.unwrap(), UpdateOutcome::Stale);
    let ver: String = raw.hget(session_key(&t, first), "ver").await.unwrap();
    assert_eq!(ver, "1");

    // New sessions join the old ones; at the limit the oldest (the two from 1969) make room.
    let fresh = created(&t.store, user, HOUR).await;
    let newest = record(user, HOUR);
    let limit = SessionLimit::new(starts.len() as u32, WhenFull::RevokeOldest);
    let CreateOutcome::Created { evicted } = t.store.create(newest.clone(), limit).await.unwrap()
    else {
        panic!("RevokeOldest never refuses");
    };
    let oldest: Vec<SessionId> = expected
        .iter()
        .rev()
        .take(2)
        .map(|s| s.session_id.clone())
        .collect();
    assert_eq!(evicted, oldest, "the oldest two, oldest first");
    let mut now_expected: Vec<Session> = expected[..expected.len() - 2].to_vec();
    now_expected[expected
        .iter()
        .position(|s| s.session_id == *first)
        .unwrap()] = update.session.clone();
    now_expected.push(fresh.session);
    now_expected.push(newest.session);
    sort_for_listing(&mut now_expected);
    assert_eq!(list(&t.store, user).await.unwrap(), now_expected);
}

/// While instances of the earlier version still run, they add sessions to the expiry index
/// only and remove them from it only; a listing still shows exactly the user's sessions.
#[tokio::test]
async fn the_listing_index_catches_up_with_earlier_version_writers() {
    let Some(t) = TestStore::new("rolling").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "rolling-user";
    let new = created(&t.store, user, HOUR).await;
    let gone = created(&t.store, user, HOUR).await;
    // The earlier version revokes `gone`: its keys and its expiry index entry, nothing more.
    let _: () = raw
        .del(&[
            session_key(&t, &gone.session.session_id),
            token_key(&t, &gone),
        ])
        .await
        .unwrap();
    let _: () = raw
        .zrem(user_key(&t, user), gone.session.session_id.as_str())
        .await
        .unwrap();
    // And creates two sessions.
    let mut expected = vec![new.session.clone()];
    for _ in 0..2 {
        let rec = record(user, HOUR);
        let started = rfc3339(rec.session.started_at, time::UtcOffset::UTC);
        expected.push(decoded(&store_legacy(&t, &mut raw, &rec, &started).await));
    }
    sort_for_listing(&mut expected);
    assert_eq!(list(&t.store, user).await.unwrap(), expected);
    assert_eq!(
        members(&mut raw, &listing_key(&t, user)).await,
        members(&mut raw, &user_key(&t, user)).await,
        "the listing index holds exactly the expiry index's ids again"
    );
}

/// A record stored before the listing index whose start cannot be read is an error, not a
/// session left out; a create that does not need the oldest session is unaffected.
#[tokio::test]
async fn an_unreadable_start_is_corrupt_not_unlisted() {
    let Some(t) = TestStore::new("legacybad").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "legacy-bad";
    let bad = record(user, HOUR);
    store_legacy(&t, &mut raw, &bad, "yesterday").await;
    let good = record(user, HOUR);
    let started = rfc3339(good.session.started_at, time::UtcOffset::UTC);
    store_legacy(&t, &mut raw, &good, &started).await;

    assert!(matches!(
        t.store.list_by_user(user, &PageRequest::default()).await,
        Err(StoreError::Corrupt(_))
    ));
    let full = SessionLimit::new(2, WhenFull::RevokeOldest);
    assert!(matches!(
        t.store.create(record(user, HOUR), full).await,
        Err(StoreError::Corrupt(_))
    ));
    let refusing = SessionLimit::new(2, WhenFull::Refuse);
    assert_eq!(
        t.store.create(record(user, HOUR), refusing).await.unwrap(),
        CreateOutcome::LimitReached
    );
    let unlimited = created(&t.store, user, HOUR).await;
    // Revoking the damaged record clears the way (and reports the damage).
    assert!(matches!(
        t.store.revoke(&bad.session.session_id).await,
        Err(StoreError::Corrupt(_))
    ));
    let listed: HashSet<SessionId> = list(&t.store, user)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.session_id)
        .collect();
    assert_eq!(
        listed,
        HashSet::from([good.session.session_id, unlimited.session.session_id])
    );
}

/// A session whose record Redis lost (evicted under memory pressure) does not count against the
/// limit, and the index entry it left is dropped.
#[tokio::test]
async fn a_lost_record_does_not_count_against_the_limit() {
    let Some(t) = TestStore::new("dangling").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "dangling-user";
    let limit = SessionLimit::new(2, WhenFull::Refuse);
    let kept = record(user, HOUR);
    let lost = record(user, HOUR);
    for rec in [&kept, &lost] {
        assert_eq!(
            t.store.create(rec.clone(), limit).await.unwrap(),
            CreateOutcome::Created { evicted: vec![] }
        );
    }
    let _: () = raw
        .del(session_key(&t, &lost.session.session_id))
        .await
        .unwrap();
    let third = record(user, HOUR);
    assert_eq!(
        t.store.create(third.clone(), limit).await.unwrap(),
        CreateOutcome::Created { evicted: vec![] },
        "a lost record counted against the limit"
    );
    for index in [user_key(&t, user), listing_key(&t, user)] {
        assert_eq!(
            members(&mut raw, &index).await,
            ids_of(&[&kept, &third]),
            "{index}"
        );
    }
    assert_eq!(
        t.store.create(record(user, HOUR), limit).await.unwrap(),
        CreateOutcome::LimitReached
    );
}

/// Updates are checked against the stored record: its version field, its user and its start;
/// a rotation may not take another session's token.
#[tokio::test]
async fn updates_are_checked_against_the_stored_record() {
    let Some(t) = TestStore::new("update").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "update-user";
    let rec = created(&t.store, user, HOUR).await;
    let key = session_key(&t, &rec.session.session_id);
    let ver: String = raw.hget(&key, "ver").await.unwrap();
    assert_eq!(ver, "0");

    let mut moved = next_version(&rec.session);
    moved.session.started_at -= Duration::from_secs(60);
    assert!(matches!(
        t.store.update(&moved).await,
        Err(StoreError::Backend(_))
    ));
    let mut elsewhere = next_version(&rec.session);
    elsewhere.session.user_id = "someone-else".into();
    assert!(matches!(
        t.store.update(&elsewhere).await,
        Err(StoreError::Backend(_))
    ));
    let other = created(&t.store, user, HOUR).await;
    let mut taken = next_version(&rec.session);
    taken.token_hash = Some(other.token_hash);
    assert!(matches!(
        t.store.update(&taken).await,
        Err(StoreError::Backend(_))
    ));
    assert_eq!(
        t.store.find_by_token(&other.token_hash).await.unwrap(),
        Some(other.session.clone()),
        "a refused rotation took another session's token"
    );
    assert_eq!(
        t.store.find_by_token(&rec.token_hash).await.unwrap(),
        Some(rec.session.clone()),
        "a refused rotation dropped the session's own token"
    );
    // A version 0 update follows nothing.
    let mut zero = next_version(&rec.session);
    zero.session.version = 0;
    assert_eq!(t.store.update(&zero).await.unwrap(), UpdateOutcome::Stale);

    let _: () = raw.hset(&key, "ver", "one").await.unwrap();
    assert!(matches!(
        t.store.update(&next_version(&rec.session)).await,
        Err(StoreError::Corrupt(_))
    ));
    let _: () = raw.hset(&key, "ver", "0").await.unwrap();
    assert_eq!(
        t.store.update(&next_version(&rec.session)).await.unwrap(),
        UpdateOutcome::Updated
    );
}

#[tokio::test]
async fn corrupt_records_are_errors_not_missing_sessions() {
    let Some(t) = TestStore::new("corrupt").await else {
        return;
    };
    let mut raw = t.raw().await;
    let user = "corrupt-user";
    let rec = created(&t.store, user, HOUR).await;
    let id = &rec.session.session_id;
    let key = session_key(&t, id);

    let _: () = raw.hset(&key, "session", "{not json").await.unwrap();
    assert!(matches!(t.store.get(id).await, Err(StoreError::Corrupt(_))));
    assert!(matches!(
        t.store.find_by_token(&rec.token_hash).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        list(&t.store, user).await,
        Err(StoreError::Corrupt(_))
    ));

    // Valid JSON, but of another session: not handed out under this id.
    let stranger = record(user, HOUR).session;
    let _: () = raw
        .hset(&key, "session", serde_json::to_string(&stranger).unwrap())
        .await
        .unwrap();
    assert!(matches!(t.store.get(id).await, Err(StoreError::Corrupt(_))));

    // A token key pointing at a session of another token.
    let other = created(&t.store, user, HOUR).await;
    let _: () = raw
        .set(token_key(&t, &rec), other.session.session_id.as_str())
        .await
        .unwrap();
    assert!(matches!(
        t.store.find_by_token(&rec.token_hash).await,
        Err(StoreError::Corrupt(_))
    ));

    // A key of the wrong type is an error reply from Redis.
    let _: () = raw.del(&key).await.unwrap();
    let _: () = raw.set(&key, "a string, not a hash").await.unwrap();
    assert!(matches!(t.store.get(id).await, Err(StoreError::Backend(_))));

    // A record that lost its expiry: update refuses it as corrupt; revoke still deletes it and
    // publishes the revocation (it might have been live).
    let feed = t.store.revocation_feed().unwrap();
    let damaged = created(&t.store, user, HOUR).await;
    let damaged_id = &damaged.session.session_id;
    let _: () = raw.hdel(session_key(&t, damaged_id), "exp").await.unwrap();
    assert!(matches!(
        t.store.update(&next_version(&damaged.session)).await,
        Err(StoreError::Corrupt(_))
    ));
    assert_eq!(
        t.store.revoke(damaged_id).await.unwrap(),
        Some(damaged.session.clone())
    );
    let events = feed.read(None, Duration::ZERO).await.unwrap().events;
    assert!(
        matches!(events.last(), Some((_, RevocationEvent::Session { session_id, .. })) if session_id == damaged_id),
        "{events:?}"
    );
    let before_garbage = events.last().unwrap().0.clone();

    // Feed: an undecodable event.
    let _: String = redis::cmd("XADD")
        .arg(feed_key(&t))
        .arg("*")
        .arg("event")
        .arg("garbage")
        .query_async(&mut raw)
        .await
        .unwrap();
    assert!(matches!(
        feed.read(None, Duration::ZERO).await,
        Err(StoreError::Corrupt(_))
    ));
    assert!(matches!(
        feed.read(Some(&before_garbage), Duration::from_secs(1))
            .await,
        Err(StoreError::Corrupt(_))
    ));
    // A cursor this feed cannot have issued: the reader must start over, not stall.
    for foreign in ["$", "not a cursor", "0-0"] {
        assert!(matches!(
            feed.read(Some(&FeedCursor(foreign.into())), Duration::ZERO)
                .await,
            Err(StoreError::FeedCursorLost)
        ));
    }
}

#[tokio::test]
async fn feed_entry_without_event_field_is_corrupt() {
    let Some(t) = TestStore::new("corruptfeed").await else {
        return;
    };
    let mut raw = t.raw().await;
    let _: String = redis::cmd("XADD")
        .arg(feed_key(&t))
        .arg("*")
        .arg("other")
        .arg("1")
        .query_async(&mut raw)
        .await
        .unwrap();
    let feed = t.store.revocation_feed().unwrap();
    assert!(matches!(
        feed.read(None, Duration::ZERO).await,
        Err(StoreError::Corrupt(_))
    ));
}

#[tokio::test]
async fn debug_output_and_bad_configuration() {
    let builder = RedisStore::builder("redis://:hunter2@127.0.0.1:6379/");
    assert!(!format!("{builder:?}").contains("hunter2"));
    assert!(matches!(
        builder.key_prefix("a{b}").build().await,
        Err(StoreError::Backend(_))
    ));
    assert!(matches!(
        RedisStore::connect("not a url").await,
        Err(StoreError::Backend(_) | StoreError::Unavailable(_))
    ));

    // Nothing listens on the port: an error within a few seconds, not a hang.
    let port = free_port();
    let started = Instant::now();
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        RedisStore::connect(&format!("redis://127.0.0.1:{port}")),
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
    assert!(shown.contains(&t.prefix), "{shown}");
    assert!(!shown.contains("redis://"), "{shown}");
    assert_eq!(t.store.key_base(), t.base());
}

/// Runs `call` and asserts it fails as unavailable within a few seconds.
async fn fails_fast<T: std::fmt::Debug>(
    what: &str,
    call: impl std::future::Future<Output = Result<T, StoreError>>,
) {
    let started = Instant::now();
    let result = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .unwrap_or_else(|_| panic!("{what} hung with Redis down"));
    let took = started.elapsed();
    eprintln!("{what} with Redis down: {result:?} after {took:?}");
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{what} with Redis down: {result:?}"
    );
    assert!(took < Duration::from_secs(4), "{what} took {took:?}");
}

#[tokio::test]
async fn outage_fails_closed_then_recovers_without_a_rebuild() {
    let port = free_port();
    let mut server = match Server::start(port) {
        Ok(server) => server,
        Err(e) => {
            unavailable("outage test", &format!("cannot start redis-server: {e}"));
            return;
        }
    };
    Server::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let prefix = unique_prefix("outage");
    let store = RedisStore::builder(&url)
        .key_prefix(&prefix)
        .build()
        .await
        .expect("store on the private server");
    let feed = store.revocation_feed().unwrap();
    let user = "outage-user";
    let rec = created(&store, user, HOUR).await;
    let revoked = created(&store, user, HOUR).await;
    store.revoke(&revoked.session.session_id).await.unwrap();
    let cursor = feed.read(None, Duration::ZERO).await.unwrap().events[0]
        .0
        .clone();

    server.kill();

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
        store.create(record(user, HOUR), SessionLimit::default()),
    )
    .await;
    fails_fast("update", store.update(&next_version(&rec.session))).await;
    fails_fast("revoke", store.revoke(id)).await;
    fails_fast("revoke_all", store.revoke_all(user, None)).await;
    fails_fast(
        "feed read",
        feed.read(Some(&cursor), Duration::from_secs(1)),
    )
    .await;
    fails_fast("feed replay", feed.read(None, Duration::ZERO)).await;
    // Still failing, still fast, on repeated calls (reconnection attempts in between).
    fails_fast("get again", store.get(id)).await;

    let _server = Server::start(port).expect("restart redis-server");
    Server::wait_ready(port).await;

    // The same store reconnects by itself (the restarted server is empty and has no scripts).
    let deadline = Instant::now() + Duration::from_secs(10);
    let fresh = loop {
        let candidate = record(user, HOUR);
        match store
            .create(candidate.clone(), SessionLimit::unlimited())
            .await
        {
            Ok(_) => break candidate,
            Err(e) => {
                assert!(Instant::now() < deadline, "store never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert_eq!(
        store.find_by_token(&fresh.token_hash).await.unwrap(),
        Some(fresh.session.clone())
    );
    assert_eq!(
        list(&store, user).await.unwrap(),
        vec![fresh.session.clone()]
    );
    assert!(
        store
            .revoke(&fresh.session.session_id)
            .await
            .unwrap()
            .is_some()
    );

    // The feed connection recovers too.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events = loop {
        match feed.read(None, Duration::ZERO).await {
            Ok(batch) => break batch.events,
            Err(e) => {
                assert!(Instant::now() < deadline, "feed never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        matches!(&events[..], [(_, RevocationEvent::Session { session_id, .. })] if *session_id == fresh.session.session_id),
        "{events:?}"
    );
    // The restarted server lost the stream the old cursor pointed into.
    assert!(matches!(
        feed.read(Some(&cursor), Duration::ZERO).await,
        Err(StoreError::FeedCursorLost)
    ));
    delete_prefix(&url, &format!("{{{prefix}}}"));
}

#[tokio::test]
async fn stalled_server_times_out_then_recovers() {
    let port = free_port();
    let server = match Server::start(port) {
        Ok(server) => server,
        Err(e) => {
            unavailable(
                "stalled server test",
                &format!("cannot start redis-server: {e}"),
            );
            return;
        }
    };
    Server::wait_ready(port).await;
    let url = format!("redis://127.0.0.1:{port}");
    let store = RedisStore::builder(&url)
        .key_prefix(unique_prefix("stall"))
        .build()
        .await
        .expect("store on the private server");
    let feed = store.revocation_feed().unwrap();
    let rec = created(&store, "stall-user", HOUR).await;
    let pid = server.child.id().to_string();
    let signal = |sig: &str| {
        let status = Command::new("kill").args([sig, &pid]).status();
        assert!(status.is_ok_and(|s| s.success()), "kill {sig} {pid}");
    };

    // The process is alive and its socket open, but it answers nothing.
    signal("-STOP");
    fails_fast("get (stalled)", store.get(&rec.session.session_id)).await;
    fails_fast("revoke (stalled)", store.revoke(&rec.session.session_id)).await;
    fails_fast(
        "feed read (stalled)",
        feed.read(Some(&FeedCursor("0-0".into())), Duration::from_millis(500)),
    )
    .await;
    signal("-CONT");

    // Late answers to the abandoned calls must not be mistaken for answers to new ones.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match store.get(&rec.session.session_id).await {
            Ok(found) => {
                // The stalled revoke may or may not have run once the server resumed.
                assert!(found.is_none() || found == Some(rec.session.clone()));
                break;
            }
            Err(e) => {
                assert!(Instant::now() < deadline, "store never recovered: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let other = created(&store, "stall-user-2", HOUR).await;
    assert_eq!(
        store.find_by_token(&other.token_hash).await.unwrap(),
        Some(other.session.clone())
    );
    assert_eq!(
        list(&store, "stall-user-2").await.unwrap(),
        vec![other.session]
    );
    drop(server);
}

#[tokio::test]
async fn revocation_reaches_another_instance_through_the_feed() {
    use tower_session_jwt::{NewSession, Sessions, SigningKey};

    let Some(t) = TestStore::new("e2e").await else {
        return;
    };
    let key = SigningKey::generate_ed25519().unwrap();
    let instance = |store: RedisStore| {
        Sessions::builder()
            .store(store)
            .signing_key(key.clone())
            .build()
            .expect("sessions over RedisStore")
    };
    let a = instance(t.store.clone());
    let b = instance(t.another().await);
    for sessions in [&a, &b] {
        tokio::time::timeout(Duration::from_secs(5), sessions.ready())
            .await
            .expect("caught up with the feed");
    }

    let login = a.create("e2e-user", NewSession::new()).await.unwrap();
    assert!(b.authenticate_jwt(login.jwt.expose()).await.is_ok());
    assert!(a.revoke(&login.session.session_id).await.unwrap().is_some());
    // The opaque token fails everywhere at once; the JWT fails on b as soon as b reads the feed.
    assert!(b.authenticate_token(login.token.expose()).await.is_err());
    let revoked_within = |jwt: String| {
        let b = &b;
        async move {
            let started = Instant::now();
            while b.authenticate_jwt(&jwt).await.is_ok() {
                assert!(
                    started.elapsed() < Duration::from_secs(3),
                    "revoked JWT still accepted on the other instance"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    revoked_within(login.jwt.expose().to_owned()).await;

    // revoke_all on a cuts off b's earlier sessions of that user, not later ones.
    let earlier = b.create("e2e-all", NewSession::new()).await.unwrap();
    assert!(a.authenticate_jwt(earlier.jwt.expose()).await.is_ok());
    assert_eq!(a.revoke_all("e2e-all").await.unwrap(), 1);
    revoked_within(earlier.jwt.expose().to_owned()).await;
    let later = b.create("e2e-all", NewSession::new()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(a.authenticate_jwt(later.jwt.expose()).await.is_ok());
    assert!(b.authenticate_jwt(later.jwt.expose()).await.is_ok());
}
