//! A revocation storm over many live sessions in Redis: how much memory a session costs, how fast
//! revocations reach another instance, and what a storm does to the JWT fast path.
//!
//! ```sh
//! cargo run --release --example storm --features redis -- \
//!     [--sessions 1000000] [--rate 10000] [--secs 10] [--warm-secs 5] \
//!     [--url redis://127.0.0.1:6379]
//! ```
//!
//! Loopback only, bounded in time. Under a key prefix of its own (`tsjstorm-<random>:`) it:
//!
//! 1. creates `--sessions` live sessions (one user each) through [`Sessions::create`], many at
//!    once, so the store's connection pipelines them; prints the rate, and the bytes per session
//!    from `INFO memory` (before/after) and from `MEMORY USAGE` of a sample's keys;
//! 2. measures opaque-token lookups (`SessionStore::find_by_token`, one Redis script each) for
//!    `--warm-secs`;
//! 3. builds two instances, A and B, sharing the store, and measures JWT authentications per
//!    second on both (the warm path: verification cache, revocation list) for `--warm-secs`;
//! 4. revokes `--rate` sessions per second for `--secs` seconds from a third instance C while A
//!    and B keep serving; the propagation of each revocation is the time from C's `revoke`
//!    returning to B's revocation list refusing the session (polled every millisecond by a thread
//!    of its own), the moment B's fast path starts refusing its JWT;
//! 5. checks that B refuses every revoked session's JWT and accepts a sample of the others;
//! 6. deletes every key under the prefix (`SCAN` + `UNLINK`), also after Ctrl-C, SIGTERM or an
//!    error.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures_util::StreamExt as _;
use futures_util::stream;
use tower_session_jwt::store::redis::RedisStore;
use tower_session_jwt::{NewSession, Session, SessionStore, Sessions, SigningKey, StoreError};

/// Command-line options.
struct Options {
    sessions: usize,
    rate: u64,
    secs: u64,
    warm_secs: u64,
    url: String,
    /// Concurrent calls in flight while creating and revoking.
    concurrency: usize,
}

impl Options {
    fn parse() -> Result<Self, String> {
        let mut options = Self {
            sessions: 1_000_000,
            rate: 10_000,
            secs: 10,
            warm_secs: 5,
            url: "redis://127.0.0.1:6379".to_owned(),
            concurrency: 512,
        };
        let mut args = std::env::args().skip(1);
        while let Some(flag) = args.next() {
            let mut value = || args.next().ok_or(format!("{flag} needs a value"));
            let number = |v: String| v.parse::<u64>().map_err(|e| format!("{flag} {v}: {e}"));
            match flag.as_str() {
                "--sessions" => options.sessions = number(value()?)? as usize,
                "--rate" => options.rate = number(value()?)?.max(1),
                "--secs" => options.secs = number(value()?)?,
                "--warm-secs" => options.warm_secs = number(value()?)?.max(1),
                "--concurrency" => options.concurrency = number(value()?)?.max(1) as usize,
                "--url" => options.url = value()?,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let revocations = options.rate * options.secs;
        if revocations as usize + WARM_POOL > options.sessions {
            return Err(format!(
                "--sessions must exceed rate × secs ({revocations}) + {WARM_POOL} (the warm pool)"
            ));
        }
        Ok(options)
    }
}

/// Sessions whose JWTs the warm-path workers authenticate (never revoked).
const WARM_POOL: usize = 10_000;

/// The store every instance uses. A Redis Cluster store would be chosen here, by a flag.
async fn connect_store(url: &str, prefix: &str) -> Result<RedisStore, StoreError> {
    RedisStore::builder(url)
        .key_prefix(prefix)
        .connect_timeout(Duration::from_secs(2))
        .response_timeout(Duration::from_secs(5))
        .build()
        .await
}

fn instance(store: RedisStore, key: &SigningKey) -> Result<Sessions, String> {
    Sessions::builder()
        .store(store)
        .signing_key(key.clone())
        .session_ttl(Duration::from_secs(30 * 60))
        .build()
        .map_err(|e| e.to_string())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let options = match Options::parse() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("storm: {e}");
            std::process::exit(2);
        }
    };
    let random = tower_session_jwt::session::SessionId::generate().expect("random id");
    let prefix = format!("tsjstorm-{}:", &random.as_str()["session-".len()..][..12]);
    let base = format!("{{{prefix}}}");
    println!("key prefix {base}");
    let outcome = tokio::select! {
        outcome = run(&options, &prefix) => outcome,
        _ = tokio::signal::ctrl_c() => Err("interrupted".to_owned()),
        _ = terminated() => Err("terminated".to_owned()),
    };
    if let Err(e) = &outcome {
        eprintln!("storm: {e}");
    }
    match delete_keys(&options.url, &base).await {
        Ok(n) => println!("cleanup: deleted {n} keys under {base}"),
        Err(e) => eprintln!("cleanup of {base} failed: {e}"),
    }
    if outcome.is_err() {
        std::process::exit(1);
    }
}

/// Never resolves: there is no SIGTERM to wait for.
#[cfg(not(unix))]
async fn terminated() {
    std::future::pending().await
}

/// Resolves on SIGTERM (what `timeout` and `kill` send), so the keys are deleted then too.
#[cfg(unix)]
async fn terminated() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            term.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}

async fn run(options: &Options, prefix: &str) -> Result<(), String> {
    let err = |what: &str| {
        let what = what.to_owned();
        move |e: StoreError| format!("{what}: {e}")
    };
    let mut raw = raw_connection(&options.url).await?;
    let key = SigningKey::generate_ed25519().map_err(|e| e.to_string())?;
    let store = connect_store(&options.url, prefix)
        .await
        .map_err(err("connect"))?;
    let creator = instance(store.clone(), &key)?;

    // 1. Sessions.
    let memory_before = used_memory(&mut raw).await?;
    let started = Instant::now();
    let created: Vec<_> = stream::iter(0..options.sessions)
        .map(|i| {
            let creator = &creator;
            async move { creator.create(format!("user-{i}"), NewSession::new()).await }
        })
        .buffer_unordered(options.concurrency)
        .collect()
        .await;
    let took = started.elapsed();
    let mut logins = Vec::with_capacity(created.len());
    for result in created {
        logins.push(result.map_err(|e| format!("create: {e}"))?);
    }
    let memory_after = used_memory(&mut raw).await?;
    let n = logins.len() as f64;
    println!(
        "created {} sessions in {:.1} s: {:.0} sessions/s",
        logins.len(),
        took.as_secs_f64(),
        n / took.as_secs_f64()
    );
    let sampled = sampled_bytes(&mut raw, prefix, &logins).await?;
    println!(
        "memory: used_memory {} → {} bytes: {:.0} bytes/session (INFO memory); \
         {sampled:.0} bytes/session (MEMORY USAGE of a sample's keys)",
        memory_before,
        memory_after,
        memory_after.saturating_sub(memory_before) as f64 / n
    );

    // 2. Opaque-token lookups in Redis (no cache).
    let hashes: Vec<_> = logins[..WARM_POOL].iter().map(|l| l.token.hash()).collect();
    let lookups = AtomicU64::new(0);
    let lookup_failures = AtomicU64::new(0);
    let deadline = Instant::now() + Duration::from_secs(options.warm_secs);
    let lookup_started = Instant::now();
    stream::iter(0..options.concurrency.min(256))
        .for_each_concurrent(None, |w| {
            let (store, hashes) = (&store, &hashes);
            let (lookups, lookup_failures) = (&lookups, &lookup_failures);
            async move {
                let mut i = w;
                while Instant::now() < deadline {
                    match store.find_by_token(&hashes[i % hashes.len()]).await {
                        Ok(Some(_)) => lookups.fetch_add(1, Ordering::Relaxed),
                        Ok(None) | Err(_) => lookup_failures.fetch_add(1, Ordering::Relaxed),
                    };
                    i += 97;
                }
            }
        })
        .await;
    println!(
        "opaque lookups (find_by_token, 256 in flight): {:.0}/s",
        lookups.load(Ordering::Relaxed) as f64 / lookup_started.elapsed().as_secs_f64()
    );
    if lookup_failures.load(Ordering::Relaxed) > 0 {
        return Err(format!(
            "{} lookups of live sessions failed or found nothing",
            lookup_failures.load(Ordering::Relaxed)
        ));
    }

    // 3. Two serving instances and a revoking one, all caught up with the feed.
    let a = instance(
        connect_store(&options.url, prefix)
            .await
            .map_err(err("connect a"))?,
        &key,
    )?;
    let b = instance(
        connect_store(&options.url, prefix)
            .await
            .map_err(err("connect b"))?,
        &key,
    )?;
    let c = instance(store.clone(), &key)?;
    for sessions in [&a, &b, &c] {
        tokio::time::timeout(Duration::from_secs(10), sessions.ready())
            .await
            .map_err(|_| "an instance did not catch up with the feed".to_owned())?;
    }
    let revocations = (options.rate * options.secs) as usize;
    let (targets, rest) = logins.split_at(revocations);
    let pool: Arc<Vec<String>> = Arc::new(
        rest[rest.len() - WARM_POOL..]
            .iter()
            .map(|l| l.jwt.expose().to_owned())
            .collect(),
    );
    // Every pool JWT verified once on each instance, so the measurement is of the warm path.
    for sessions in [&a, &b] {
        for jwt in pool.iter() {
            sessions
                .authenticate_jwt(jwt)
                .await
                .map_err(|e| format!("a live session's JWT was refused: {e}"))?;
        }
    }
    let served = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // The warm path runs on one thread of its own (a current-thread runtime serving A and B in
    // turn), so that on a small machine the other core is left to Redis, the revoker and the
    // feed readers: the storm measures the store and the feed, not a CPU fight with the load
    // generator. The figure is therefore one core's worth of warm-path throughput.
    let worker = {
        let (a, b, pool) = (a.clone(), b.clone(), pool.clone());
        let (served, refused, stop) = (served.clone(), refused.clone(), stop.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("a runtime for the warm-path thread");
            runtime.block_on(async move {
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    for sessions in [&a, &b] {
                        for _ in 0..256 {
                            match sessions.authenticate_jwt(&pool[i % pool.len()]).await {
                                Ok(_) => served.fetch_add(1, Ordering::Relaxed),
                                Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                            };
                            i += 1;
                        }
                    }
                }
            })
        })
    };
    let warm = Duration::from_secs(options.warm_secs);
    let before = throughput(&served, warm).await;
    println!(
        "warm path before the storm (A and B): {before:.0} authentications/s ({} refused)",
        refused.load(Ordering::Relaxed)
    );

    // 4. The storm: C revokes at the target rate; a thread watches B's revocation list.
    let (sent, received) = mpsc::channel::<(Session, Instant)>();
    let watched = b.clone();
    let watcher = std::thread::spawn(move || watch(&watched, received));
    let storm_counter = served.load(Ordering::Relaxed);
    let storm_started = Instant::now();
    let period = Duration::from_secs_f64(1.0 / options.rate as f64);
    let late = AtomicU64::new(0);
    stream::iter(targets.iter().enumerate())
        .map(|(i, login)| {
            let (c, sent, late) = (&c, sent.clone(), &late);
            async move {
                let due = storm_started + period * i as u32;
                if Instant::now() < due {
                    tokio::time::sleep_until(due.into()).await;
                } else if Instant::now() > due + Duration::from_millis(100) {
                    late.fetch_add(1, Ordering::Relaxed);
                }
                let revoked = c.revoke(&login.session.session_id).await;
                let returned = Instant::now();
                match revoked {
                    Ok(Some(session)) => {
                        let _ = sent.send((session, returned));
                        Ok(())
                    }
                    Ok(None) => Err("a session to revoke was missing".to_owned()),
                    Err(e) => Err(format!("revoke: {e}")),
                }
            }
        })
        .buffer_unordered(options.concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<Vec<()>, _>>()?;
    let storm_took = storm_started.elapsed();
    let during = (served.load(Ordering::Relaxed) - storm_counter) as f64 / storm_took.as_secs_f64();
    drop(sent);
    stop.store(true, Ordering::Relaxed);
    worker
        .join()
        .map_err(|_| "the warm-path thread panicked".to_owned())?;
    let mut latencies = watcher
        .join()
        .map_err(|_| "the watcher thread panicked".to_owned())?;
    latencies.sort_unstable();
    let percentile = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "storm: {} revocations in {:.2} s ({:.0}/s achieved, {} started over 100 ms late)",
        revocations,
        storm_took.as_secs_f64(),
        revocations as f64 / storm_took.as_secs_f64(),
        late.load(Ordering::Relaxed)
    );
    println!(
        "propagation to B (revoke returned → B refuses): p50 {:?}, p99 {:?}, max {:?} over {} revocations",
        percentile(0.50),
        percentile(0.99),
        latencies.last().copied().unwrap_or_default(),
        latencies.len()
    );
    println!(
        "warm path during the storm: {during:.0} authentications/s = {:.2} × before",
        during / before
    );
    println!(
        "B's revocation list: {} entries; B fast path trusted: {}",
        b.revocations().len(),
        b.fast_path_trusted()
    );

    let feed_key = format!("{{{prefix}}}revocations");
    /// A stream entry: its id and its fields and values, flat.
    type Entry = (String, Vec<String>);
    let (entries, feed_bytes, last): (u64, Option<u64>, Vec<Entry>) = redis::pipe()
        .cmd("XLEN")
        .arg(&feed_key)
        .cmd("MEMORY")
        .arg("USAGE")
        .arg(&feed_key)
        .arg("SAMPLES")
        .arg(0)
        .cmd("XREVRANGE")
        .arg(&feed_key)
        .arg("+")
        .arg("-")
        .arg("COUNT")
        .arg(1)
        .query_async(&mut raw)
        .await
        .map_err(|e| format!("feed stream: {e}"))?;
    let event_len = last
        .first()
        .and_then(|(_, fields)| fields.get(1))
        .map_or(0, String::len);
    println!(
        "feed stream: {entries} entries, {} bytes in Redis ({:.0} bytes/entry); one event's JSON: {event_len} bytes",
        feed_bytes.unwrap_or_default(),
        feed_bytes.unwrap_or_default() as f64 / entries.max(1) as f64
    );

    // 5. Correctness on B.
    let mut accepted_revoked = 0;
    for login in targets {
        if b.authenticate_jwt(login.jwt.expose()).await.is_ok() {
            accepted_revoked += 1;
        }
    }
    let sample: Vec<_> = rest.iter().step_by((rest.len() / 10_000).max(1)).collect();
    let mut refused_live = 0;
    for login in &sample {
        if b.authenticate_jwt(login.jwt.expose()).await.is_err() {
            refused_live += 1;
        }
    }
    println!(
        "check on B: {accepted_revoked} of {} revoked JWTs accepted, {refused_live} of {} live JWTs refused",
        targets.len(),
        sample.len()
    );
    if accepted_revoked > 0 || refused_live > 0 || latencies.len() != revocations {
        return Err("B's view disagrees with the store".to_owned());
    }
    Ok(())
}

/// B's view: for each revocation (session, when C's call returned), the time until B's
/// revocation list refuses the session. Polls every millisecond; ends when the sender is dropped and
/// nothing is pending.
fn watch(b: &Sessions, received: mpsc::Receiver<(Session, Instant)>) -> Vec<Duration> {
    let mut pending: VecDeque<(Session, Instant)> = VecDeque::new();
    let mut latencies = Vec::new();
    let mut open = true;
    let give_up = Duration::from_secs(30);
    while open || !pending.is_empty() {
        loop {
            match received.try_recv() {
                Ok(item) => pending.push_back(item),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let now = Instant::now();
        pending.retain(|(session, returned)| {
            if b.revocations().refuses_jwt(session) {
                latencies.push(now.saturating_duration_since(*returned));
                false
            } else {
                // Never seen: counted as missing by the caller.
                now.duration_since(*returned) < give_up
            }
        });
        std::thread::sleep(Duration::from_millis(1));
    }
    latencies
}

/// Authentications per second counted by `served` over `period`.
async fn throughput(served: &AtomicU64, period: Duration) -> f64 {
    let start = served.load(Ordering::Relaxed);
    let started = Instant::now();
    tokio::time::sleep(period).await;
    (served.load(Ordering::Relaxed) - start) as f64 / started.elapsed().as_secs_f64()
}

async fn raw_connection(url: &str) -> Result<redis::aio::MultiplexedConnection, String> {
    redis::Client::open(url)
        .map_err(|e| e.to_string())?
        .get_multiplexed_async_connection()
        .await
        .map_err(|e| format!("connect to {url}: {e}"))
}

/// `used_memory` from `INFO memory`.
async fn used_memory(raw: &mut redis::aio::MultiplexedConnection) -> Result<u64, String> {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(raw)
        .await
        .map_err(|e| e.to_string())?;
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| "no used_memory in INFO memory".to_owned())
}

/// Mean `MEMORY USAGE` of the four keys of a session (token, record, two user indexes) over a
/// sample of 1000 sessions: the keys' own cost, without the keyspace's hash table.
async fn sampled_bytes(
    raw: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
    logins: &[tower_session_jwt::sessions::Created],
) -> Result<f64, String> {
    use base64::Engine as _;
    let encode = |user: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(user);
    let step = (logins.len() / 1000).max(1);
    let mut pipe = redis::pipe();
    let mut sessions = 0;
    for login in logins.iter().step_by(step) {
        let s = &login.session;
        let base = format!("{{{prefix}}}");
        for key in [
            format!("{base}tok:{}", login.token.hash().to_base64url()),
            format!("{base}s:{}", s.session_id.as_str()),
            format!("{base}u:{}", encode(&s.user_id)),
            format!("{base}us:{}", encode(&s.user_id)),
        ] {
            pipe.cmd("MEMORY")
                .arg("USAGE")
                .arg(key)
                .arg("SAMPLES")
                .arg(0);
        }
        sessions += 1;
    }
    let sizes: Vec<Option<u64>> = pipe.query_async(raw).await.map_err(|e| e.to_string())?;
    Ok(sizes.iter().flatten().sum::<u64>() as f64 / f64::from(sessions))
}

/// Deletes every key beginning with `base`, in batches (`SCAN` + `UNLINK`).
async fn delete_keys(url: &str, base: &str) -> Result<u64, String> {
    let mut raw = raw_connection(url).await?;
    let mut cursor: u64 = 0;
    let mut deleted = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{base}*"))
            .arg("COUNT")
            .arg(10_000)
            .query_async(&mut raw)
            .await
            .map_err(|e| e.to_string())?;
        if !keys.is_empty() {
            let n: u64 = redis::cmd("UNLINK")
                .arg(&keys)
                .query_async(&mut raw)
                .await
                .map_err(|e| e.to_string())?;
            deleted += n;
        }
        if next == 0 {
            return Ok(deleted);
        }
        cursor = next;
    }
}
