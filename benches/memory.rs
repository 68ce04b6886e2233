//! Memory per live session in the MemoryStore, per token-cache entry, per cached JWT verification
//! and per revocation-list entry, measured with a counting global allocator: live heap bytes
//! before and after adding N entries, divided by N. Prints a table; no timing.
//!
//! Run: `cargo bench --bench memory`.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use tower_session_jwt::SessionStore;
use tower_session_jwt::session::{SessionAttributes, SessionId};
use tower_session_jwt::store::RevocationEvent;
use tower_session_jwt::store::{SessionLimit, SessionRecord};
use tower_session_jwt::token::TokenHash;
use tower_session_jwt::{MemoryStore, NewSession, Session, Sessions, SigningKey};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: forwarded with the caller's guarantees.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

const ISS: &str = "https://app.example";
const AUD: &str = "app";
const UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";

fn sessions(store: MemoryStore, key: SigningKey, token_cache: Option<u64>) -> Sessions {
    let mut builder = Sessions::builder()
        .store(store)
        .signing_key(key)
        .issuer(ISS)
        .audience(AUD);
    if let Some(capacity) = token_cache {
        builder = builder.token_cache_capacity(capacity);
    }
    builder.build().unwrap()
}

fn ed25519() -> SigningKey {
    SigningKey::ed25519_pem(include_bytes!("../tests/keys/ed25519.pem")).unwrap()
}

fn record(i: u64, now: time::OffsetDateTime, attributes: bool) -> SessionRecord {
    let mut hash = [0u8; 32];
    hash[..8].copy_from_slice(&i.to_le_bytes());
    SessionRecord {
        session: Session::new(
            SessionId::generate().unwrap(),
            format!("user-{i}"),
            now,
            now + time::Duration::days(1),
        )
        .with_attributes(if attributes {
            SessionAttributes::new("203.0.113.9", UA)
        } else {
            SessionAttributes::default()
        }),
        token_hash: TokenHash::from_bytes(hash),
    }
}

fn row(what: &str, n: u64, bytes: isize) {
    println!(
        "{what:<72} {n:>9} {:>12} {:>9.0}",
        bytes,
        bytes as f64 / n as f64
    );
}

fn main() {
    // Criterion-style arguments (`--bench`, filters) are accepted and ignored.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let _runtime = rt.enter();
    let now = time::OffsetDateTime::now_utc();
    println!(
        "{:<72} {:>9} {:>12} {:>9}",
        "what", "N", "live bytes", "bytes/N"
    );

    // MemoryStore, records added through the store trait.
    for (n, attributes) in [
        (100_000u64, false),
        (1_000_000, false),
        (100_000, true),
        (1_000_000, true),
    ] {
        let store = MemoryStore::new();
        let before = live();
        rt.block_on(async {
            for i in 0..n {
                store
                    .create(record(i, now, attributes), SessionLimit::unlimited())
                    .await
                    .unwrap();
            }
        });
        let what = if attributes {
            "MemoryStore: live session (IP + 70-byte user agent)"
        } else {
            "MemoryStore: live session (no attributes)"
        };
        row(what, n, live() - before);
        drop(store);
    }

    // Sessions::create: store only (token cache off) and store + token-cache entry (default).
    let n = 50_000u64;
    for (label, cache) in [
        ("Sessions::create, token cache off: store", Some(0)),
        (
            "Sessions::create, default token cache: store + token cache",
            None,
        ),
    ] {
        let sessions = sessions(MemoryStore::new(), ed25519(), cache);
        rt.block_on(sessions.ready());
        let before = live();
        rt.block_on(async {
            for i in 0..n {
                sessions
                    .create(format!("user-{i}"), NewSession::new())
                    .await
                    .unwrap();
            }
        });
        let sizes = sessions.cache_sizes();
        row(
            &format!("{label} ({} cached)", sizes.token_lookups),
            n,
            live() - before,
        );
    }

    // The verification cache: N JWTs seen for the first time.
    for (alg, key) in [
        ("EdDSA", ed25519()),
        (
            "RS256",
            SigningKey::rs256_pem(include_bytes!("../tests/keys/rsa2048.pem")).unwrap(),
        ),
    ] {
        let sessions = sessions(MemoryStore::new(), key, Some(0));
        rt.block_on(sessions.ready());
        let jwts: Vec<String> = rt.block_on(async {
            let mut jwts = Vec::with_capacity(n as usize);
            for i in 0..n {
                let created = sessions
                    .create(format!("user-{i}"), NewSession::new())
                    .await
                    .unwrap();
                jwts.push(created.jwt.expose().to_owned());
            }
            jwts
        });
        let before = live();
        rt.block_on(async {
            for jwt in &jwts {
                sessions.authenticate_jwt(jwt).await.unwrap();
            }
        });
        let sizes = sessions.cache_sizes();
        row(
            &format!(
                "verification cache: cached JWT, {alg} ({}-byte JWT, {} cached)",
                jwts[0].len(),
                sizes.verified_jwts
            ),
            n,
            live() - before,
        );
    }

    // The revocation list.
    let sessions = sessions(MemoryStore::new(), ed25519(), None);
    let n = 100_000u64;
    let before = live();
    for _ in 0..n {
        sessions
            .revocations()
            .apply(&RevocationEvent::session_revoked(
                SessionId::generate().unwrap(),
                now,
            ));
    }
    row("revocation list: revoked session id", n, live() - before);
}
