//! A conformance suite for [`SessionStore`] implementations (feature `conformance`).
//!
//! Every check uses fresh random user and session ids, so one store instance can run them all,
//! concurrently with other tests, without being emptied first. A failing check panics with what
//! the store did wrong.
//!
//! The checks read the store only through the trait and judge expiry by the system clock: give
//! the store under test the system clock (the default of [`MemoryStore`](crate::MemoryStore)).
//!
//! The `feed_*` checks test the [revocation feed contract](super::RevocationFeed) through
//! [`SessionStore::revocation_feed`]; for a store without a feed (`None`) they return at once.
//! They pick out their own events by their own random session and user ids, so other writers
//! on the same store do not disturb them. [`feed_batches_until_caught_up`] makes 2,500
//! revocations, so that a feed that reads in batches needs several.
//!
//! # Example
//!
//! Run everything from one test:
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! tower_session_jwt::store::conformance::run_all(&tower_session_jwt::MemoryStore::new()).await;
//! # });
//! ```
//!
//! or one `#[tokio::test]` per check, so a failure names its check:
//!
//! ```ignore
//! tower_session_jwt::session_store_conformance!(my_store_tests, MyStore::new());
//! ```

mod feed;
mod feed_stores;
mod limits;
mod lookups;
mod paging;
mod revocation;
mod updates;

use std::time::Duration;

use serde_json::json;
use time::OffsetDateTime;

pub use self::feed::{
    feed_batches_until_caught_up, feed_ignores_unknown_revokes, feed_keeps_order,
    feed_late_reader_sees_earlier_revocations, feed_records_evictions, feed_records_refused_jwts,
    feed_records_revoke_all, feed_records_revoke_others, feed_replays_from_start,
    feed_reports_caught_up, feed_resumes_from_cursor, feed_revoke_all_holds_across_skewed_clocks,
};
pub use self::feed_stores::feed_holds_concurrent_revocations_across_stores;
pub use self::limits::{
    limit_holds_across_stores, limit_holds_under_concurrent_creates, limit_refuses_when_full,
    limit_revokes_the_oldest,
};
pub use self::lookups::{
    create_then_find, expire_in_real_time, expired_are_never_returned, list_is_per_user,
    unknown_lookups_find_nothing,
};
pub use self::paging::list_pages_newest_first;
pub use self::revocation::{
    concurrent_creates_and_revokes, revoke_all_but_one, revoke_all_is_per_user,
    revoke_removes_everywhere,
};
pub use self::updates::{
    update_checks_the_version, update_is_visible, update_never_resurrects, update_rotates_the_token,
};
use super::{CreateOutcome, PageRequest, SessionLimit, SessionRecord, SessionStore, SessionUpdate};
use crate::data::session::{Session, SessionAttributes, SessionId};
use crate::data::token::SessionToken;

/// The one list of the checks, in the order [`run_all`] runs them: hands their names to the
/// macro named in brackets, after the tokens in parentheses. [`CHECKS`], [`run_all`] and
/// [`session_store_conformance!`](crate::session_store_conformance) are all made from it.
#[doc(hidden)]
#[macro_export]
macro_rules! __session_store_checks {
    ([$($callback:tt)*] ($($args:tt)*)) => {
        $($callback)*!($($args)*
            create_then_find, unknown_lookups_find_nothing, list_is_per_user,
            update_is_visible, update_never_resurrects, update_checks_the_version,
            update_rotates_the_token, revoke_removes_everywhere, revoke_all_is_per_user,
            revoke_all_but_one, expired_are_never_returned, expire_in_real_time,
            concurrent_creates_and_revokes, list_pages_newest_first, limit_revokes_the_oldest,
            limit_refuses_when_full, limit_holds_under_concurrent_creates,
            feed_replays_from_start, feed_resumes_from_cursor,
            feed_batches_until_caught_up, feed_reports_caught_up, feed_keeps_order,
            feed_records_revoke_all, feed_revoke_all_holds_across_skewed_clocks,
            feed_late_reader_sees_earlier_revocations,
            feed_ignores_unknown_revokes, feed_records_refused_jwts, feed_records_evictions,
            feed_records_revoke_others);
    };
}

/// Makes [`CHECKS`] and [`run_all`] from the list of checks.
macro_rules! checks_and_run_all {
    ($($check:ident),*) => {
        /// The names of every check, in the order [`run_all`] runs them.
        pub const CHECKS: &[&str] = &[$(stringify!($check)),*];

        /// Runs every check against `store`.
        pub async fn run_all<S: SessionStore>(store: &S) {
            $($check(store).await;)*
        }
    };
}

crate::__session_store_checks!([checks_and_run_all]());

/// Generates one `#[tokio::test]` per conformance check in a module named `$module`.
/// `$store` is an expression evaluated afresh in each test.
#[macro_export]
#[cfg_attr(docsrs, doc(cfg(feature = "conformance")))]
macro_rules! session_store_conformance {
    ($module:ident, $store:expr) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $crate::__session_store_checks!(
                [$crate::session_store_conformance] (@tests $store;)
            );
        }
    };
    (@tests $store:expr; $($check:ident),*) => {
        $(
            #[tokio::test]
            async fn $check() {
                let store = $store;
                $crate::store::conformance::$check(&store).await;
            }
        )*
    };
}

fn unique_user(label: &str) -> String {
    format!(
        "conformance-{label}-{}",
        SessionId::generate().unwrap().as_str()
    )
}

/// A record for `user` expiring `ttl` from now, with attributes and custom claims set so that
/// round trips are checked field by field.
pub fn record(user: &str, ttl: Duration) -> SessionRecord {
    let now = OffsetDateTime::now_utc();
    SessionRecord {
        session: Session::new(SessionId::generate().unwrap(), user, now, now + ttl)
            .with_attributes(SessionAttributes::new(
                "2001:db8::1",
                "conformance/1.0 (ünïcode)",
            ))
            .with_custom_claims(
                json!({"role": "tester", "n": 7, "nested": {"ok": true}})
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
            .with_authentication_factors(vec![
                crate::data::session::AuthenticationFactor::of_type("password", now)
                    .expect("a valid factor"),
            ]),
        token_hash: SessionToken::generate().unwrap().hash(),
    }
}

const HOUR: Duration = Duration::from_secs(3600);

async fn created<S: SessionStore>(store: &S, user: &str, ttl: Duration) -> SessionRecord {
    let rec = record(user, ttl);
    create(store, &rec).await;
    rec
}

/// Creates `rec` with no session limit.
async fn create<S: SessionStore>(store: &S, rec: &SessionRecord) {
    let outcome = store
        .create(rec.clone(), SessionLimit::unlimited())
        .await
        .unwrap_or_else(|e| panic!("create failed: {e}"));
    assert_eq!(
        outcome,
        CreateOutcome::Created { evicted: vec![] },
        "an unlimited create evicts nothing"
    );
}

/// Every live session of `user` through the paginated listing (pages of 1,000).
async fn list<S: SessionStore>(store: &S, user: &str) -> Vec<Session> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(1000);
    page.limit = 1000;
    loop {
        let found = store
            .list_by_user(user, &page)
            .await
            .unwrap_or_else(|e| panic!("list_by_user failed: {e}"));
        out.extend(found.sessions);
        match found.next {
            Some(next) => page.after = Some(next),
            None => return out,
        }
    }
}

/// `session` with its version one higher, as an update writes it.
fn next_version(session: &Session) -> Session {
    Session {
        version: session.version + 1,
        ..session.clone()
    }
}

fn plain_update(session: Session) -> SessionUpdate {
    SessionUpdate {
        session,
        token_hash: None,
        refuse_older_jwts: false,
    }
}

fn sorted(mut sessions: Vec<Session>) -> Vec<Session> {
    sessions.sort_by(|a, b| a.session_id.cmp(&b.session_id));
    sessions
}

/// A record of `user` that started `ago` before now (for listing order).
fn started_ago(user: &str, ago: Duration) -> SessionRecord {
    let mut rec = record(user, HOUR);
    rec.session.started_at -= ago;
    rec.session.last_accessed_at = rec.session.started_at;
    rec
}
