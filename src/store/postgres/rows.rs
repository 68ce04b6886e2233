//! Encoding sessions into rows and decoding rows into sessions, checked against their columns.

use sqlx::Row as _;
use sqlx::postgres::PgRow;
use time::OffsetDateTime;

use super::error::{corrupt, map_err};
use crate::data::session::{Session, SessionId};
use crate::store::StoreError;
use crate::store::sqlx_common::{decode_session, encode_json};

pub(super) fn encode(session: &Session) -> Result<String, StoreError> {
    encode_json(session, "session")
}

/// A session's version as its `bigint` column.
pub(super) fn version_column(session: &Session) -> Result<i64, StoreError> {
    i64::try_from(session.version)
        .map_err(|_| StoreError::Backend("session version beyond the column's range".into()))
}

/// Checks the events a statement says it appended.
pub(super) fn appended(published: i64, expected: usize) -> Result<(), StoreError> {
    if usize::try_from(published).ok() == Some(expected) {
        Ok(())
    } else {
        Err(StoreError::Backend(
            format!("revocation recorded {published} feed events, not {expected}").into(),
        ))
    }
}

/// Parses the session ids of rows.
pub(super) fn parse_ids(ids: Vec<String>) -> Result<Vec<SessionId>, StoreError> {
    ids.into_iter()
        .map(|id| {
            SessionId::parse(&id).map_err(|_| corrupt(format!("malformed session id {id:?}")))
        })
        .collect()
}

/// Decodes an `(id, user_id, session, version, ...)` row, checking that the JSON is the row's
/// session: a record whose version disagrees with its column would make every update of it
/// stale.
pub(super) fn decode(row: &PgRow) -> Result<Session, StoreError> {
    let id: String = row.try_get(0).map_err(map_err)?;
    let user_id: String = row.try_get(1).map_err(map_err)?;
    let json: String = row.try_get(2).map_err(map_err)?;
    let version: i64 = row.try_get(3).map_err(map_err)?;
    decode_session(&json, Some(&id), |session| {
        session.session_id.as_str() == id
            && session.user_id == user_id
            && u64::try_from(version).ok() == Some(session.version)
    })
}

/// The live sessions among decoded rows (expiry checked again on the exact `expires_at`).
pub(super) fn live(rows: &[PgRow], now: OffsetDateTime) -> Result<Vec<Session>, StoreError> {
    let mut sessions = Vec::with_capacity(rows.len());
    for row in rows {
        let session = decode(row)?;
        if session.is_live_at(now) {
            sessions.push(session);
        }
    }
    Ok(sessions)
}
