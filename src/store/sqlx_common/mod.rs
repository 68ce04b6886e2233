//! What the SQLite and PostgreSQL stores share: their defaults, how a session record goes into
//! and comes out of its JSON column, how sqlx errors that mean "no connection" are told apart,
//! and the batched maintenance both run in the background.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use crate::data::session::Session;
use crate::store::StoreError;

/// Default retention of the revocation feed.
pub(super) const DEFAULT_FEED_RETENTION: Duration = Duration::from_secs(15 * 60);

/// A [`StoreError::Corrupt`] saying `what`.
pub(super) fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string().into())
}

/// A duplicate session id or token hash.
pub(super) fn duplicate() -> StoreError {
    // Ids and token hashes are 128/256 random bits; a collision means a broken RNG, and
    // replacing the old session would hand its owner's session to someone else.
    StoreError::Backend("duplicate session id or token".into())
}

/// Whether `error` is a uniqueness violation (a duplicate session id or token hash).
pub(super) fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// Whether `error` says no connection could be had or used: the pool gave none in time or is
/// closed, the connection failed (I/O), or its worker died. Always [`StoreError::Unavailable`].
pub(super) fn no_connection(error: &sqlx::Error) -> bool {
    matches!(
        error,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::WorkerCrashed
    )
}

/// Encodes a value stored as JSON; failing means a bug, not bad data.
pub(super) fn encode_json(value: &impl serde::Serialize, what: &str) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Backend(format!("cannot encode {what}: {e}").into()))
}

/// Decodes a stored session, checking that it is the one its row's columns say it is. `id`, the
/// row's session id when the caller has it at hand, names the record in the error.
pub(super) fn decode_session(
    json: &str,
    id: Option<&str>,
    check: impl FnOnce(&Session) -> bool,
) -> Result<Session, StoreError> {
    let session: Session = serde_json::from_str(json).map_err(|e| {
        let message = match id {
            Some(id) => format!("undecodable session record {id:?}: {e}"),
            None => format!("undecodable session record: {e}"),
        };
        StoreError::Corrupt(message.into())
    })?;
    if check(&session) {
        Ok(session)
    } else {
        Err(corrupt(match id {
            Some(id) => format!("session record {id:?} does not match its row"),
            None => "session record does not match its row".to_owned(),
        }))
    }
}

/// Runs `pass` (one bounded deletion, answering how many rows it removed) again while it removes
/// a whole `batch`, at most `rounds` times, yielding between passes; answers the rows removed.
/// The first error ends the run.
pub(super) async fn in_batches<F, Fut>(
    rounds: usize,
    batch: u64,
    mut pass: F,
) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    for _ in 0..rounds {
        let removed = pass().await?;
        total += removed;
        if removed < batch {
            break;
        }
        tokio::task::yield_now().await;
    }
    Ok(total)
}
