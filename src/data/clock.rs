//! Time as a dependency.
//!
//! Every expiry, leeway and sliding decision reads the time through a [`Clock`], so tests can move
//! time forward with a [`ManualClock`] instead of sleeping.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use time::OffsetDateTime;

/// A source of the current time.
///
/// The crate uses [`SystemClock`] unless you pass another clock to
/// [`SessionsBuilder::clock`](crate::SessionsBuilder::clock) and
/// [`MemoryStore::with_clock`](crate::MemoryStore::with_clock).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// The current time in UTC.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that only moves when told to; clones share the same time.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use tower_session_jwt::clock::{Clock, ManualClock};
///
/// let clock = ManualClock::new(time::macros::datetime!(2026-01-01 00:00 UTC));
/// let before = clock.now();
/// clock.advance(Duration::from_secs(301));
/// assert_eq!((clock.now() - before).whole_seconds(), 301);
/// ```
#[derive(Clone)]
pub struct ManualClock {
    now: Arc<Mutex<OffsetDateTime>>,
}

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: OffsetDateTime) -> Self {
        Self {
            now: Arc::new(Mutex::new(start)),
        }
    }

    /// A clock stopped at the current system time.
    pub fn starting_now() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.lock();
        *now += by;
    }

    /// Sets the clock to `to` (which may be in the past).
    pub fn set(&self, to: OffsetDateTime) {
        *self.lock() = to;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OffsetDateTime> {
        // A poisoned lock only means another thread panicked while holding a plain timestamp.
        self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ManualClock").field(&self.now()).finish()
    }
}

/// A shared clock handle.
pub(crate) type SharedClock = Arc<dyn Clock>;
