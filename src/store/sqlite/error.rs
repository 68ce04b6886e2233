//! Sorting sqlx errors into the store's error kinds, and decoding stored rows.

use sqlx::error::DatabaseError;

use crate::data::session::Session;
use crate::store::StoreError;
use crate::store::sqlx_common::no_connection;
pub(super) use crate::store::sqlx_common::{corrupt, encode_json, is_unique_violation};

/// SQLite's primary result codes that mean "not now" rather than "wrong": the database is
/// locked by another connection or process (`SQLITE_BUSY`, `SQLITE_LOCKED`), or the file could
/// not be read, written or opened (`SQLITE_IOERR`, `SQLITE_FULL`, `SQLITE_CANTOPEN`,
/// `SQLITE_PROTOCOL`).
const UNAVAILABLE_CODES: [i64; 6] = [5, 6, 10, 13, 14, 15];
/// SQLite's primary result codes for a damaged file: `SQLITE_CORRUPT`, `SQLITE_NOTADB`.
const CORRUPT_CODES: [i64; 2] = [11, 26];

/// Sorts an sqlx error into the store's error kinds: no connection in time, I/O and a locked
/// database are [`StoreError::Unavailable`]; a damaged file or a row that cannot be decoded is
/// [`StoreError::Corrupt`]; anything else is [`StoreError::Backend`].
pub(super) fn map_err(error: sqlx::Error) -> StoreError {
    use sqlx::Error as E;
    if no_connection(&error) {
        return StoreError::Unavailable(Box::new(error));
    }
    match error {
        E::Database(ref db) => match primary_code(db.as_ref()) {
            Some(code) if UNAVAILABLE_CODES.contains(&code) => {
                StoreError::Unavailable(Box::new(error))
            }
            Some(code) if CORRUPT_CODES.contains(&code) => StoreError::Corrupt(Box::new(error)),
            _ => StoreError::Backend(Box::new(error)),
        },
        E::ColumnDecode { .. }
        | E::ColumnNotFound(_)
        | E::ColumnIndexOutOfBounds { .. }
        | E::Decode(_)
        | E::TypeNotFound { .. } => StoreError::Corrupt(Box::new(error)),
        _ => StoreError::Backend(Box::new(error)),
    }
}

/// The primary result code (the low byte of SQLite's extended result code).
fn primary_code(error: &dyn DatabaseError) -> Option<i64> {
    error
        .code()
        .and_then(|code| code.parse::<i64>().ok())
        .map(|code| code & 0xff)
}

/// Whether `error` says the database is locked by another connection (`SQLITE_BUSY`,
/// `SQLITE_LOCKED`): worth another try shortly.
pub(super) fn is_busy(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if matches!(primary_code(db.as_ref()), Some(5 | 6)))
}

/// Decodes a stored session, checking that it is the one its row's keys say it is.
pub(super) fn decode_session(
    json: &str,
    check: impl FnOnce(&Session) -> bool,
) -> Result<Session, StoreError> {
    crate::store::sqlx_common::decode_session(json, None, check)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undecodable_sessions_are_corrupt_not_panics() {
        for bad in ["", "{", "null", "[]", "{\"session_id\":1}"] {
            assert!(
                matches!(decode_session(bad, |_| true), Err(StoreError::Corrupt(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn pool_and_io_failures_are_unavailable() {
        assert!(matches!(
            map_err(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::Io(std::io::Error::other("disk"))),
            StoreError::Unavailable(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::RowNotFound),
            StoreError::Backend(_)
        ));
        assert!(matches!(
            map_err(sqlx::Error::ColumnNotFound("session".into())),
            StoreError::Corrupt(_)
        ));
    }
}
