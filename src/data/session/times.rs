//! The times a session records, on one grid: it starts at a millisecond, and every later time
//! it records (last access, expiry, each factor's authentication) falls a whole number of
//! seconds after its start. A session JWT then carries each time as a NumericDate integer plus
//! the start's milliseconds once, and a session reads back from its JWT exactly as the store
//! holds it, while sessions started in the same second still sort, and meet a user's
//! "sign out everywhere" cutoff, to the millisecond.

use time::{Duration, OffsetDateTime};

use super::Session;

/// `at` to the millisecond below: the precision a session starts at.
pub(crate) fn to_millisecond(at: OffsetDateTime) -> OffsetDateTime {
    at.replace_nanosecond(at.nanosecond() / 1_000_000 * 1_000_000)
        .unwrap_or(at)
}

/// `at` as a grid of `fraction` carries it: the whole second below `at - fraction`, plus
/// `fraction` (the identity for a time on the grid).
fn on_grid_of(at: OffsetDateTime, fraction: Duration) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp((at - fraction).unix_timestamp())
        .map_or(at, |second| second + fraction)
}

impl Session {
    /// The sub-second part every time of the session shares: its start's milliseconds.
    pub(crate) fn grid_fraction(&self) -> Duration {
        Duration::milliseconds(i64::from(self.started_at.millisecond()))
    }

    /// The latest instant at or before `at` that is a whole number of seconds after the
    /// session's start (its milliseconds): what the session records for a time `at`.
    pub(crate) fn on_grid(&self, at: OffsetDateTime) -> OffsetDateTime {
        on_grid_of(at, self.grid_fraction())
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;
    use crate::data::session::SessionId;

    #[test]
    fn times_fall_whole_seconds_after_the_start() {
        let start = to_millisecond(datetime!(2026-12-01 09:30:15.712_985_728 UTC));
        assert_eq!(start, datetime!(2026-12-01 09:30:15.712 UTC));
        let session = Session::new(
            SessionId::parse("session-abc").unwrap(),
            "alice",
            start,
            start + Duration::days(7),
        );
        assert_eq!(session.on_grid(start), start);
        assert_eq!(
            session.on_grid(datetime!(2026-12-01 09:31:00.9 UTC)),
            datetime!(2026-12-01 09:31:00.712 UTC)
        );
        // Before the start's milliseconds in a second: the second before.
        assert_eq!(
            session.on_grid(datetime!(2026-12-01 09:31:00.5 UTC)),
            datetime!(2026-12-01 09:30:59.712 UTC)
        );
    }
}
