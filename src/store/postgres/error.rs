//! How the store's calls are bounded in time, and how `sqlx` errors become [`StoreError`]s.

use std::future::Future;
use std::time::Duration;

use crate::store::StoreError;
pub(super) use crate::store::sqlx_common::corrupt;
use crate::store::sqlx_common::no_connection;

/// Runs `fut`, turning a timeout into [`StoreError::Unavailable`].
pub(super) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(
            format!("PostgreSQL did not answer within {limit:?}").into(),
        )),
    }
}

/// SQLSTATEs that mean "not now" rather than "no": the server is unreachable, shutting down,
/// starting, out of resources, read-only (a standby), or gave up on a timeout or a conflict.
fn transient_sqlstate(code: &str) -> bool {
    code.starts_with("08") // connection exception
        || code.starts_with("53") // insufficient resources (too many connections, disk full)
        || code.starts_with("57P") // admin / crash shutdown, cannot connect now, …
        || code.starts_with("58") // system error (I/O) on the server
        || matches!(
            code,
            "57014" // query_canceled (statement timeout)
                | "55P03" // lock_not_available
                | "40001" // serialization_failure
                | "40P01" // deadlock_detected
                | "25006" // read_only_sql_transaction (a standby after failover)
                | "25P03" // idle_in_transaction_session_timeout
        )
}

/// Whether `error` means the connection it ran on is gone (so a read may retry on another).
pub(super) fn connection_broke(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) => true,
        sqlx::Error::Database(e) => e
            .code()
            .is_some_and(|c| c.starts_with("08") || matches!(&*c, "57P01" | "57P02")),
        _ => false,
    }
}

/// Sorts an `sqlx` error into the store's error kinds.
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    let unavailable = match &error {
        e if no_connection(e) => true,
        sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(e) => e.code().is_some_and(|c| transient_sqlstate(&c)),
        _ => false,
    };
    match error {
        _ if unavailable => StoreError::Unavailable(Box::new(error)),
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
            StoreError::Corrupt(Box::new(error))
        }
        _ => StoreError::Backend(Box::new(error)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlstates_are_sorted() {
        for code in [
            "08006", "57P01", "57P03", "53300", "57014", "40001", "25006",
        ] {
            assert!(transient_sqlstate(code), "{code}");
        }
        for code in ["23505", "42P01", "22P02", "42501"] {
            assert!(!transient_sqlstate(code), "{code}");
        }
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Backend(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::Decode("bad".into())),
            StoreError::Corrupt(_)
        ));
    }
}
