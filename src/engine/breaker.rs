//! The store's circuit breaker: once the store is known to be down, calls fail at once instead
//! of each waiting for its timeout, and one probe at a time finds out when it is back.
//!
//! Closed, every call goes through. After [`CircuitBreaker::failures`] consecutive calls fail
//! as unreachable ([`StoreError::is_unavailable`]: refused, reset, timed out, no connection in
//! the pool), the circuit opens: calls answer [`StoreError::CircuitOpen`] without touching the
//! store. After [`CircuitBreaker::probe_after`], the next call goes through as the only probe
//! (the others keep failing fast while it runs); its success closes the circuit, its failure
//! opens it for another period. Any call that gets an answer from the store (a session, `None`,
//! a refusal, a record it cannot decode) counts as success.
//!
//! A call cancelled before it finished (the server dropped the request's future because its
//! client disconnected or reset the stream) counts as neither: it says nothing about the store,
//! and any client can cancel its own requests at will. A cancelled probe frees the probe slot,
//! so the next call probes, and leaves the circuit as it was.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::time::Duration;

use futures_util::future::BoxFuture;

use super::dyn_store::DynStore;
use crate::data::clock::SharedClock;
use crate::data::session::{Session, SessionId};
use crate::data::token::TokenHash;
use crate::store::{
    CreateOutcome, FeedBatch, FeedCursor, PageRequest, RevocationFeed, SessionLimit, SessionPage,
    SessionRecord, SessionUpdate, StoreError, UpdateOutcome,
};

/// When the engine stops calling a store that keeps failing, and how it finds out the store is
/// back: see [`SessionsBuilder::circuit_breaker`](crate::SessionsBuilder::circuit_breaker).
///
/// ```
/// use std::time::Duration;
/// use tower_session_jwt::sessions::CircuitBreaker;
///
/// let breaker = CircuitBreaker::default();
/// assert_eq!(breaker.failures, 3);
/// assert_eq!(breaker.probe_after, Duration::from_secs(1));
/// let strict = CircuitBreaker { failures: 1, probe_after: Duration::from_millis(250) };
/// # let _ = strict;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CircuitBreaker {
    /// Consecutive failed calls that open the circuit (at least 1). Default 3.
    pub failures: u32,
    /// How long the circuit stays open before one probe call goes through. Default 1 s.
    pub probe_after: Duration,
}

impl Default for CircuitBreaker {
    fn default() -> Self {
        Self {
            failures: 3,
            probe_after: Duration::from_secs(1),
        }
    }
}

/// The breaker's state, shared by every call through one engine.
pub(crate) struct Breaker {
    config: CircuitBreaker,
    clock: SharedClock,
    /// Consecutive failures.
    failures: AtomicU32,
    /// Unix milliseconds (on the engine's clock) until which the circuit is open; `0` closed.
    open_until_ms: AtomicI64,
    /// Whether the one probe of a half-open circuit is in flight.
    probing: AtomicBool,
}

/// The right to make one store call, and the duty to report how it went. Dropped unreported
/// (the call was cancelled), it counts as nothing, but a probe gives its slot back, so a
/// cancelled probe cannot leave the circuit stuck half-open.
struct Permit<'a> {
    breaker: &'a Breaker,
    probe: bool,
    reported: bool,
}

impl Breaker {
    pub(crate) fn new(config: CircuitBreaker, clock: SharedClock) -> Self {
        // Published closed from the start, so that dashboards see the series before any outage.
        crate::engine::metrics::circuit(false);
        Self {
            config,
            clock,
            failures: AtomicU32::new(0),
            open_until_ms: AtomicI64::new(0),
            probing: AtomicBool::new(false),
        }
    }

    fn now_ms(&self) -> i64 {
        (self.clock.now().unix_timestamp_nanos() / 1_000_000) as i64
    }

    fn admit(&self) -> Result<Permit<'_>, StoreError> {
        let until = self.open_until_ms.load(Ordering::Acquire);
        if until == 0 {
            return Ok(Permit {
                breaker: self,
                probe: false,
                reported: false,
            });
        }
        if self.now_ms() >= until
            && self
                .probing
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            return Ok(Permit {
                breaker: self,
                probe: true,
                reported: false,
            });
        }
        Err(StoreError::CircuitOpen)
    }

    fn failed(&self, probe: bool) {
        let failures = self
            .failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        if probe || failures >= self.config.failures.max(1) {
            let until = self.now_ms() + self.config.probe_after.as_millis() as i64;
            if self.open_until_ms.swap(until.max(1), Ordering::AcqRel) == 0 {
                tracing::warn!(
                    failures,
                    "session store unreachable; failing fast until a probe succeeds"
                );
                crate::engine::metrics::circuit(true);
            }
        }
        if probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    fn succeeded(&self, probe: bool) {
        self.failures.store(0, Ordering::Release);
        if self.open_until_ms.swap(0, Ordering::AcqRel) != 0 {
            tracing::info!("session store answers again; circuit closed");
            crate::engine::metrics::circuit(false);
        }
        if probe {
            self.probing.store(false, Ordering::Release);
        }
    }

    /// Runs `call` under the breaker.
    async fn run<T>(
        &self,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut permit = self.admit()?;
        let result = call.await;
        permit.reported = true;
        match &result {
            Err(error) if error.is_unavailable() => self.failed(permit.probe),
            _ => self.succeeded(permit.probe),
        }
        result
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported && self.probe {
            self.breaker.probing.store(false, Ordering::Release);
        }
    }
}

/// A store behind a [`Breaker`].
pub(crate) struct Guarded {
    pub(crate) inner: Arc<dyn DynStore>,
    pub(crate) breaker: Arc<Breaker>,
}

impl DynStore for Guarded {
    fn create(
        &self,
        record: SessionRecord,
        limit: SessionLimit,
    ) -> BoxFuture<'_, Result<CreateOutcome, StoreError>> {
        Box::pin(self.breaker.run(self.inner.create(record, limit)))
    }
    fn find_by_token<'a>(
        &'a self,
        token_hash: &'a TokenHash,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(self.breaker.run(self.inner.find_by_token(token_hash)))
    }
    fn get<'a>(&'a self, id: &'a SessionId) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(self.breaker.run(self.inner.get(id)))
    }
    fn list_by_user<'a>(
        &'a self,
        user_id: &'a str,
        page: &'a PageRequest,
    ) -> BoxFuture<'a, Result<SessionPage, StoreError>> {
        Box::pin(self.breaker.run(self.inner.list_by_user(user_id, page)))
    }
    fn update<'a>(
        &'a self,
        update: &'a SessionUpdate,
    ) -> BoxFuture<'a, Result<UpdateOutcome, StoreError>> {
        Box::pin(self.breaker.run(self.inner.update(update)))
    }
    fn revoke<'a>(
        &'a self,
        id: &'a SessionId,
    ) -> BoxFuture<'a, Result<Option<Session>, StoreError>> {
        Box::pin(self.breaker.run(self.inner.revoke(id)))
    }
    fn revoke_all<'a>(
        &'a self,
        user_id: &'a str,
        except: Option<&'a SessionId>,
    ) -> BoxFuture<'a, Result<Vec<SessionId>, StoreError>> {
        Box::pin(self.breaker.run(self.inner.revoke_all(user_id, except)))
    }
    fn revocation_feed(&self) -> Option<Arc<dyn RevocationFeed>> {
        let feed = self.inner.revocation_feed()?;
        Some(Arc::new(WatchedFeed {
            feed,
            breaker: self.breaker.clone(),
        }))
    }
    fn is_shared(&self) -> bool {
        self.inner.is_shared()
    }
}

/// The store's feed, read past the breaker (the follower has its own backoff and must keep
/// trying), whose answers close the circuit: a feed that answers is a store that is back, so
/// requests need not wait for the next probe.
struct WatchedFeed {
    feed: Arc<dyn RevocationFeed>,
    breaker: Arc<Breaker>,
}

impl RevocationFeed for WatchedFeed {
    fn retention(&self) -> Duration {
        self.feed.retention()
    }

    fn read<'a>(
        &'a self,
        after: Option<&'a FeedCursor>,
        wait: Duration,
    ) -> BoxFuture<'a, Result<FeedBatch, StoreError>> {
        Box::pin(async move {
            let result = self.feed.read(after, wait).await;
            if result.is_ok() && self.breaker.open_until_ms.load(Ordering::Acquire) != 0 {
                self.breaker.succeeded(false);
            }
            result
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::clock::ManualClock;

    fn breaker(clock: &ManualClock) -> Breaker {
        Breaker::new(
            CircuitBreaker {
                failures: 2,
                probe_after: Duration::from_secs(1),
            },
            Arc::new(clock.clone()),
        )
    }

    fn down() -> Result<(), StoreError> {
        Err(StoreError::Unavailable("down".into()))
    }

    #[tokio::test]
    async fn opens_after_consecutive_failures_and_probes_once() {
        let clock = ManualClock::starting_now();
        let b = breaker(&clock);
        assert!(b.run(async { down() }).await.is_err());
        // An answer in between resets the count.
        b.run(async { Ok(()) }).await.unwrap();
        assert!(b.run(async { down() }).await.is_err());
        assert!(matches!(
            b.run(async { down() }).await,
            Err(StoreError::Unavailable(_))
        ));
        // Open: the call is not made.
        let mut made = false;
        let refused = b
            .run(async {
                made = true;
                Ok(())
            })
            .await;
        assert!(matches!(refused, Err(StoreError::CircuitOpen)));
        assert!(!made);
        // After the period one probe goes; while it runs, the others fail fast.
        clock.advance(Duration::from_secs(1));
        let probe = b.admit().unwrap();
        assert!(probe.probe);
        assert!(matches!(b.admit(), Err(StoreError::CircuitOpen)));
        // A probe dropped unreported (a cancelled request) gives its slot back and leaves the
        // circuit half-open: the next call is the probe.
        drop(probe);
        let probe = b.admit().unwrap();
        assert!(probe.probe);
        drop(probe);
        // A refusal by the store is an answer: it closes the circuit.
        let answered: Result<(), StoreError> = b
            .run(async { Err(StoreError::Corrupt("bad".into())) })
            .await;
        assert!(matches!(answered, Err(StoreError::Corrupt(_))));
        let mut made = false;
        b.run(async {
            made = true;
            Ok(())
        })
        .await
        .unwrap();
        assert!(made);
    }

    #[tokio::test]
    async fn a_cancelled_call_neither_counts_nor_resets() {
        let clock = ManualClock::starting_now();
        let b = breaker(&clock);
        assert!(b.run(async { down() }).await.is_err());
        for _ in 0..1000 {
            drop(b.admit().unwrap());
        }
        // Still one failure: the next opens the circuit.
        assert!(b.run(async { down() }).await.is_err());
        assert!(matches!(b.admit(), Err(StoreError::CircuitOpen)));
    }

    #[tokio::test]
    async fn only_unreachable_counts_as_a_failure() {
        let clock = ManualClock::starting_now();
        let b = breaker(&clock);
        for _ in 0..10 {
            let answered: Result<(), StoreError> = b
                .run(async { Err(StoreError::Backend("duplicate token".into())) })
                .await;
            assert!(matches!(answered, Err(StoreError::Backend(_))));
        }
        assert!(!b.admit().unwrap().probe);
    }

    #[tokio::test]
    async fn a_failed_probe_opens_for_another_period() {
        let clock = ManualClock::starting_now();
        let b = breaker(&clock);
        for _ in 0..2 {
            let _ = b.run(async { down() }).await;
        }
        clock.advance(Duration::from_millis(1000));
        assert!(matches!(
            b.run(async { down() }).await,
            Err(StoreError::Unavailable(_))
        ));
        assert!(matches!(
            b.run(async { Ok(()) }).await,
            Err(StoreError::CircuitOpen)
        ));
        clock.advance(Duration::from_millis(999));
        assert!(matches!(
            b.run(async { Ok(()) }).await,
            Err(StoreError::CircuitOpen)
        ));
        clock.advance(Duration::from_millis(1));
        b.run(async { Ok(()) }).await.unwrap();
        b.run(async { Ok(()) }).await.unwrap();
    }
}
