//! The engine's two caches: verified JWTs (the whole token string → the session it carries)
//! and opaque-token lookups (token hash → session, trusted for one JWT lifetime).

use std::sync::Arc;

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
            // moka's own TTL runs on real time; freshness is judged on the injected clock too.
            // A session whose JWTs were refused after it was fetched has changed: fetch it again.
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
            let stale: Vec<Arc<TokenHash>> = cache
                .iter()
                .filter(|(_, lookup)| lookup.session.session_id == *session_id)
                .map(|(hash, _)| hash)
                .collect();
            for hash in stale {
                cache.invalidate(&*hash);
            }
        }
    }

    pub(super) fn cache_invalidate(&self, hash: &TokenHash) {
        if let Some(cache) = &self.inner.token_cache {
            cache.invalidate(hash);
        }
    }
}

/// Caches a JWT this instance verified, unless an entry for the same bytes appeared meanwhile:
/// that one may be this instance's own mint of the same JWT (another instance minting for the
/// same session in the same second signs the very same bytes), which must stay "minted here".
/// Returns the entry that is cached.
pub(super) fn remember_verified(
    cache: &moka::sync::Cache<JwtKey, CachedJwt>,
    jwt: &str,
    verified: CachedJwt,
) -> CachedJwt {
    use moka::ops::compute::Op;
    let result = cache
        .entry(JwtKey::new(jwt))
        .and_compute_with(|existing| match existing {
            Some(_) => Op::Nop,
            None => Op::Put(verified.clone()),
        });
    result
        .into_entry()
        .map_or(verified, |entry| entry.into_value())
}
