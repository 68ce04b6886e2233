//! Following a store's revocation feed, and the state that says whether the JWT fast path may be
//! trusted (DESIGN §4): only while this instance knows every revocation that concerns a JWT it
//! could accept.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::RevocationList;
use crate::store::{FeedCursor, RevocationFeed, StoreError};

/// How long a feed read may block before returning empty, for a staleness bound of `bound`
/// ([`SessionsBuilder::feed_staleness`](crate::SessionsBuilder::feed_staleness)).
///
/// A quarter of the bound. Freshness counts from when a read was sent, so on an idle, healthy
/// feed the last caught-up read is at most two waits old (plus a round trip) just before the
/// next one answers: half the bound, which leaves the other half for a slow round trip before
/// the fast path is dropped for nothing. The engines' own poll intervals never stretch a read
/// past its wait, so this also bounds how far apart their polls are.
pub(crate) fn feed_wait(bound: Duration) -> Duration {
    bound / 4
}

/// The revocation list and whether it is complete enough to trust.
pub(crate) struct Revocations {
    pub(crate) list: RevocationList,
    pub(crate) trust: Trust,
}

/// Whether the JWT fast path may be trusted right now, and for which JWTs.
///
/// Two conditions, both required:
/// * **caught up and fresh**: with a feed, the last read reported `caught_up`, and was sent at
///   most the staleness bound ago (a store without a feed is always "caught up": every revocation
///   it can know of is made here);
/// * **after the horizon**: the JWT was issued after the instant from which this instance knows
///   every revocation (the feed's horizon; without a feed, when this instance started). A JWT
///   issued before it, by an earlier process or before the retained past, is confirmed in the
///   store instead.
pub(crate) struct Trust {
    epoch: Instant,
    has_feed: bool,
    /// Milliseconds since `epoch` of the last caught-up read; `u64::MAX` while behind.
    last_caught_up_ms: AtomicU64,
    /// The same, kept while behind (`0`, the epoch, before the first): for the lag metric.
    last_known_ms: AtomicU64,
    /// How old, in milliseconds, the last caught-up read may be while the fast path is trusted.
    staleness_ms: u64,
    /// JWTs issued at or before this instant (Unix seconds) are confirmed in the store.
    horizon_secs: AtomicI64,
    /// Counts the times the horizon moved forward after the first read (a replay after a lost
    /// cursor): what this instance minted before such a move may concern lost revocations.
    generation: AtomicU64,
    /// Woken when the reader catches up, for [`Trust::ready`].
    caught_up: tokio::sync::Notify,
    gauges: crate::engine::metrics::FeedGauges,
    /// The opt-in bounded staleness while the feed is unreachable, in milliseconds (`0`: off).
    grace_ms: u64,
    /// Unix seconds (wall clock) at which the last caught-up read was sent; `i64::MIN` before
    /// the first. JWTs issued before it are what the grace may cover.
    last_caught_up_unix: AtomicI64,
    /// Whether the feed is known to hold events this instance has not applied (a read that was
    /// not caught up, a lost cursor, an event that could not be read): no grace then.
    known_behind: AtomicBool,
}

impl Trust {
    /// Trust for a store without a feed: revocations are known from `started` on.
    pub(crate) fn without_feed(started: OffsetDateTime) -> Self {
        Self {
            epoch: Instant::now(),
            has_feed: false,
            last_caught_up_ms: AtomicU64::new(0),
            last_known_ms: AtomicU64::new(0),
            staleness_ms: u64::MAX,
            horizon_secs: AtomicI64::new(started.unix_timestamp()),
            generation: AtomicU64::new(0),
            caught_up: tokio::sync::Notify::new(),
            gauges: crate::engine::metrics::FeedGauges::register(),
            grace_ms: 0,
            last_caught_up_unix: AtomicI64::new(i64::MIN),
            known_behind: AtomicBool::new(false),
        }
    }

    /// Trust for a store with a feed: nothing is trusted before the first caught-up read, nor
    /// once the last one was sent more than `staleness` ago. `grace` is the opt-in bounded
    /// staleness while the feed is unreachable (zero: none).
    pub(crate) fn with_feed(staleness: Duration, grace: Duration) -> Self {
        Self {
            epoch: Instant::now(),
            has_feed: true,
            last_caught_up_ms: AtomicU64::new(u64::MAX),
            last_known_ms: AtomicU64::new(0),
            staleness_ms: staleness.as_millis() as u64,
            horizon_secs: AtomicI64::new(i64::MAX),
            generation: AtomicU64::new(0),
            caught_up: tokio::sync::Notify::new(),
            gauges: crate::engine::metrics::FeedGauges::register(),
            grace_ms: grace.as_millis() as u64,
            last_caught_up_unix: AtomicI64::new(i64::MIN),
            known_behind: AtomicBool::new(false),
        }
    }

    /// Whether a JWT issued at `issued_at` (Unix seconds), accepted otherwise, may skip the
    /// store: caught up and after the horizon (or minted here), or else within the opt-in
    /// grace of a feed outage.
    pub(crate) fn trusts(&self, issued_at: i64, minted_here: bool) -> bool {
        if self.caught_up() {
            return minted_here || self.after_horizon(issued_at);
        }
        self.within_grace(issued_at, minted_here)
    }

    /// The bounded staleness of [`SessionsBuilder::feed_outage_grace`](crate::SessionsBuilder::feed_outage_grace):
    /// the feed has been caught up before, is not known to hold unread events (it is silent or
    /// failing, not behind), its last caught-up read was sent at most the grace ago, and the
    /// JWT was issued before that read's second (and after the horizon, or minted here).
    fn within_grace(&self, issued_at: i64, minted_here: bool) -> bool {
        if self.grace_ms == 0 || self.known_behind.load(Ordering::Acquire) {
            return false;
        }
        let last_unix = self.last_caught_up_unix.load(Ordering::Acquire);
        last_unix != i64::MIN
            && issued_at < last_unix
            && (minted_here || self.after_horizon(issued_at))
            && self
                .elapsed_ms()
                .saturating_sub(self.last_known_ms.load(Ordering::Acquire))
                <= self.grace_ms
    }

    /// Whether every revocation of the retained past has been applied, recently enough.
    pub(crate) fn caught_up(&self) -> bool {
        if !self.has_feed {
            return true;
        }
        let last = self.last_caught_up_ms.load(Ordering::Acquire);
        last != u64::MAX && self.elapsed_ms().saturating_sub(last) <= self.staleness_ms
    }

    /// Whether a JWT issued at `issued_at` (`iat`, Unix seconds) is after the horizon. The
    /// horizon's own second is not: `iat` cannot tell which side of it the JWT was minted on.
    pub(crate) fn after_horizon(&self, issued_at: i64) -> bool {
        issued_at > self.horizon_secs.load(Ordering::Acquire)
    }

    /// Waits until caught up (at once without a feed).
    pub(crate) async fn ready(&self) {
        loop {
            let notified = self.caught_up.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.caught_up() {
                return;
            }
            notified.await;
        }
    }

    fn elapsed_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// The horizon's generation; see [`Trust::after_horizon`].
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Records a caught-up read that was sent `sent_ms` after the epoch: freshness counts from
    /// when the feed was asked, not from when it answered.
    fn mark_caught_up(&self, sent_ms: u64, sent_unix: i64) {
        self.last_caught_up_ms.store(sent_ms, Ordering::Release);
        self.last_known_ms.store(sent_ms, Ordering::Release);
        self.last_caught_up_unix.store(sent_unix, Ordering::Release);
        self.known_behind.store(false, Ordering::Release);
        // Every time, not only after being behind: a waiter may have come while the last read
        // was merely stale.
        self.caught_up.notify_waiters();
    }

    /// Not caught up. `known` when the feed is known to hold unread events; a feed that merely
    /// failed to answer is not known to (the grace may cover it).
    fn mark_behind(&self, known: bool) {
        self.last_caught_up_ms.store(u64::MAX, Ordering::Release);
        if known {
            self.known_behind.store(true, Ordering::Release);
        }
    }

    /// Publishes the feed metrics: whether the fast path is trusted, and how old the knowledge
    /// of revocations is (since the last caught-up read was sent; while behind, since the last
    /// one ever, or since start).
    pub(crate) fn report(&self) {
        let now = self.elapsed_ms();
        let since = match self.last_caught_up_ms.load(Ordering::Acquire) {
            u64::MAX => self.last_known_ms.load(Ordering::Acquire),
            last => last,
        };
        let lag = Duration::from_millis(now.saturating_sub(since));
        self.gauges.set(self.caught_up(), lag);
    }

    /// Moves the horizon to `horizon` after a read from the start of the feed (it only moves
    /// forward: a later read from the start knows no more of the past than the first one did).
    ///
    /// The generation moves on a `replay` (the first read after a lost cursor) and whenever the
    /// horizon itself moved, for then revocations between the two horizons may be unknown here.
    /// It does not move on an ordinary read from the start that finds the same horizon: a
    /// reader of a feed that has had no event yet reads from the start every time, and taking
    /// each such read for a loss made this instance forget which JWTs it had minted, so those
    /// issued in the horizon's second fell off the fast path.
    fn set_horizon(&self, horizon: OffsetDateTime, first: bool, replay: bool) {
        let secs = horizon.unix_timestamp();
        if first {
            self.horizon_secs.store(secs, Ordering::Release);
        } else {
            let before = self.horizon_secs.fetch_max(secs, Ordering::AcqRel);
            if replay || secs > before {
                self.generation.fetch_add(1, Ordering::AcqRel);
            }
        }
    }
}

/// Reads the store's revocation feed for as long as `state` lives, applying every event to the
/// revocation list and keeping [`Trust`] honest about whether anything may be missing. Each
/// caught-up read waits up to `feed_wait` for news ([`feed_wait`] of the staleness bound).
pub(crate) async fn follow(
    state: Weak<Revocations>,
    feed: Arc<dyn RevocationFeed>,
    feed_wait: Duration,
) {
    let mut cursor: Option<FeedCursor> = None;
    let mut first = true;
    // Set by a lost cursor: the next read from the start is a replay. (The cursor alone cannot
    // tell: an empty feed leaves it at `None` without anything being lost.)
    let mut replay = false;
    let mut backoff = Duration::from_millis(100);
    // Until caught up, read on at once; then wait for news.
    let mut wait = Duration::ZERO;
    loop {
        let started = Instant::now();
        let (sent_ms, sent_unix) = match state.upgrade() {
            Some(state) => (state.trust.elapsed_ms(), state.list.now().unix_timestamp()),
            None => return,
        };
        let result = feed.read(cursor.as_ref(), wait).await;
        let waited = !wait.is_zero();
        let Some(state) = state.upgrade() else {
            return;
        };
        match result {
            Ok(batch) => {
                backoff = Duration::from_millis(100);
                if cursor.is_none() {
                    state.trust.set_horizon(batch.horizon, first, replay);
                    first = false;
                    replay = false;
                }
                let empty = batch.events.is_empty();
                for (at, event) in batch.events {
                    state.list.apply(&event);
                    crate::engine::metrics::feed_event(&event);
                    cursor = Some(at);
                }
                if batch.caught_up {
                    state.trust.mark_caught_up(sent_ms, sent_unix);
                    wait = feed_wait;
                } else {
                    // More is retained than one read returned: not trusted until it is read.
                    state.trust.mark_behind(true);
                    wait = Duration::ZERO;
                }
                state.trust.report();
                drop(state);
                if empty && waited && started.elapsed() < feed_wait / 4 {
                    // A feed that answers "nothing" without waiting must not be polled hot.
                    tokio::time::sleep(feed_wait / 4).await;
                }
            }
            Err(StoreError::FeedCursorLost) => {
                state.trust.mark_behind(true);
                state.trust.report();
                drop(state);
                tracing::warn!(
                    "revocation feed cursor fell out of the retention; replaying the feed"
                );
                cursor = None;
                replay = true;
                wait = Duration::ZERO;
            }
            Err(error) => {
                // Unreachable is an outage the grace may cover; an answer that could not be
                // read (a corrupt event, say) means events are there and unknown.
                state
                    .trust
                    .mark_behind(!matches!(error, StoreError::Unavailable(_)));
                state.trust.report();
                drop(state);
                tracing::warn!(%error, "revocation feed read failed; confirming JWTs in the store until it recovers");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
            }
        }
    }
}
