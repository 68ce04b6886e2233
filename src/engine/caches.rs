//! The engine's two caches: verified JWTs (the whole token string → the session it carries)
//! and opaque-token lookups (token hash → session, trusted for one JWT lifetime).
//!
//! Both are `quick_cache` caches: a hit is a read lock on one shard and a hash lookup, about a
//! sixth of what a moka lookup (its read log, its clock) costs on the request path. Neither
//! needs the cache to expire entries: every hit is judged on the injected clock (a JWT by its
//! `exp`, a lookup by when it was fetched), and [`Sweep`] drops what can no longer be used at
//! most once per JWT lifetime, so memory follows the recent past rather than the capacity.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::OffsetDateTime;

use super::Sessions;
use super::jwt_key::JwtKey;
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::jwt::SessionJwt;

#[derive(Clone)]
pub(super) struct CachedJwt {
    pub(super) session: Arc<Session>,
    /// The JWT's `iat` and `exp`, Unix seconds.
    pub(super) issued_at: i64,
    pub(super) expires_at: i64,
    /// Minted by this instance in this horizon generation, so after the horizon whatever `iat`
    /// says (`iat` has whole seconds only, and the horizon's second is otherwise ambiguous).
    pub(super) minted_in: Option<u64>,
}

#[derive(Clone)]
pub(super) struct CachedLookup {
    pub(super) session: Arc<Session>,
    /// When the store last confirmed the session; the entry is trusted for one JWT lifetime
    /// from then.
    pub(super) fetched_at: OffsetDateTime,
    /// The JWT last minted for this token, reused while it has half its lifetime left, so a
    /// client that only sends the opaque token does not cost a signature per request.
    pub(super) jwt: Option<SessionJwt>,
}

impl Sessions {
    /// A cached token lookup, if fresh. Over a shared store, only while the revocation feed is
    /// caught up: a revocation made elsewhere reaches this cache only through the feed.
    pub(super) fn cache_get(&self, hash: &TokenHash, now: OffsetDateTime) -> Option<CachedLookup> {
        let cache = self.inner.token_cache.as_ref()?;
        if self.inner.shared_store && !self.inner.revocations.trust.caught_up() {
            return None;
        }
        let hit = cache.get(hash).filter(|hit| {
            // Fresh for one JWT lifetime from the fetch, on the injected clock. A session whose
            // JWTs were refused after it was fetched has changed: fetch it again.
            let list = self.revocation_list();
            now - hit.fetched_at < self.inner.settings.jwt_ttl
                && (list.is_revoked(&hit.session) || !list.refuses_jwt(&hit.session))
        });
        self.inner
            .metrics
            .cache(crate::engine::metrics::Cache::Token, hit.is_some());
        hit
    }

    pub(super) fn cache_insert(
        &self,
        hash: TokenHash,
        session: Arc<Session>,
        fetched_at: OffsetDateTime,
        jwt: Option<SessionJwt>,
    ) {
        if let Some(cache) = &self.inner.token_cache {
            self.sweep_if_due(fetched_at);
            cache.insert(
                hash,
                CachedLookup {
                    session,
                    fetched_at,
                    jwt,
                },
            );
        }
    }

    /// [`cache_insert`](Self::cache_insert) for a lookup that began when
    /// [`lookups_forgotten`](Self::lookups_forgotten) read `forgotten`: skipped when lookups
    /// were dropped since, so that a lookup racing a device binding does not put the record
    /// from before the binding back (its token would then mint from the cache).
    pub(super) fn cache_insert_since(
        &self,
        forgotten: u64,
        hash: TokenHash,
        session: Arc<Session>,
        fetched_at: OffsetDateTime,
        jwt: Option<SessionJwt>,
    ) {
        if self.lookups_forgotten() != forgotten {
            return;
        }
        let key = hash;
        self.cache_insert(hash, session, fetched_at, jwt);
        // A drop that ran between the check and the insert did not see this entry.
        if self.lookups_forgotten() != forgotten {
            self.cache_invalidate(&key);
        }
    }

    pub(super) fn lookups_forgotten(&self) -> u64 {
        self.inner
            .lookups_forgotten
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// Drops every cached token lookup of one session (a scan: for rare events such as a
    /// device binding), and keeps lookups in flight from putting theirs back.
    pub(super) fn forget_cached_lookups(&self, session_id: &SessionId) {
        self.inner
            .lookups_forgotten
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        if let Some(cache) = &self.inner.token_cache {
            cache.retain(|_, lookup| lookup.session.session_id != *session_id);
        }
    }

    pub(super) fn cache_invalidate(&self, hash: &TokenHash) {
        if let Some(cache) = &self.inner.token_cache {
            cache.remove(hash);
        }
    }

    /// Runs [`Sweep`] when due: from the insert paths, so an idle instance does no work.
    pub(super) fn sweep_if_due(&self, now: OffsetDateTime) {
        let inner = &self.inner;
        if !inner.sweep.due(now.unix_timestamp()) {
            return;
        }
        let unix_now = now.unix_timestamp();
        let jwt_ttl = inner.settings.jwt_ttl;
        let leeway = inner.codec.leeway_secs();
        let (jwts, lookups) = (inner.jwt_cache.clone(), inner.token_cache.clone());
        let sweep = move || {
            if let Some(cache) = jwts {
                cache.retain(|_, jwt| unix_now < jwt.expires_at + leeway);
            }
            if let Some(cache) = lookups {
                cache.retain(|_, lookup| now - lookup.fetched_at < jwt_ttl);
            }
        };
        // Off the request's thread where a runtime can take it.
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(sweep)),
            Err(_) => sweep(),
        }
    }
}

/// Caches a JWT this instance verified, unless an entry for the same bytes appeared meanwhile:
/// that one may be this instance's own mint of the same JWT (another instance minting for the
/// same session in the same second signs the very same bytes), which must stay "minted here".
/// Returns the entry that is cached.
pub(super) fn remember_verified(cache: &JwtCache, jwt: &str, verified: CachedJwt) -> CachedJwt {
    cache
        .get_or_insert_with(&JwtKey::new(jwt), || {
            Ok::<_, std::convert::Infallible>(verified.clone())
        })
        .unwrap_or(verified)
}

/// The verification cache.
pub(super) type JwtCache = Arc<quick_cache::sync::Cache<JwtKey, CachedJwt>>;
/// The token cache.
pub(super) type TokenCache = Arc<quick_cache::sync::Cache<TokenHash, CachedLookup>>;

/// When the caches were last swept of entries no request can use any more (JWTs past their
/// `exp` and leeway, lookups older than a JWT lifetime): at most once per JWT lifetime.
pub(super) struct Sweep {
    /// Unix seconds of the last sweep.
    last: AtomicI64,
    every_secs: i64,
}

impl Sweep {
    pub(super) fn new(now: OffsetDateTime, every: std::time::Duration) -> Self {
        Self {
            last: AtomicI64::new(now.unix_timestamp()),
            every_secs: i64::try_from(every.as_secs()).unwrap_or(i64::MAX).max(1),
        }
    }

    /// Whether a sweep is due at `now`; the one caller that gets `true` runs it.
    fn due(&self, now: i64) -> bool {
        let last = self.last.load(Ordering::Relaxed);
        now.saturating_sub(last) >= self.every_secs
            && self
                .last
                .compare_exchange(last, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
    }
}
