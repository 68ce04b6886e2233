//! Talking to Redis: bounded calls, error kinds, and decoding of replies, shared by the store
//! and its feed.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use redis::{ErrorKind, RedisError, ServerErrorKind, Value};

use crate::data::session::Session;
use crate::store::StoreError;

/// Runs `fut`, turning a timeout into [`StoreError::Unavailable`].
pub(super) async fn bounded<T>(
    limit: Duration,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable(
            format!("Redis did not answer within {limit:?}").into(),
        )),
    }
}

/// Sorts a Redis error into the store's error kinds.
pub(super) fn map_err(error: RedisError) -> StoreError {
    let unavailable = error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        // A cluster client with no connection to any node that serves the key.
        || error.kind() == ErrorKind::ClusterConnectionNotFound
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        );
    if unavailable {
        StoreError::Unavailable(Box::new(error))
    } else {
        StoreError::Backend(Box::new(error))
    }
}

/// A [`StoreError::Corrupt`] saying `what`.
pub(super) fn corrupt(what: impl fmt::Display) -> StoreError {
    StoreError::Corrupt(what.to_string().into())
}

/// The bytes of a string-like reply.
pub(super) fn bytes_of(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(b) => Some(b),
        Value::SimpleString(s) => Some(s.as_bytes()),
        Value::VerbatimString { text, .. } => Some(text.as_bytes()),
        _ => None,
    }
}

/// Checks a reply for an embedded error before it is decoded.
pub(super) fn server_error(value: &Value) -> Option<StoreError> {
    match value {
        Value::ServerError(e) => Some(map_err(RedisError::from(e.clone()))),
        _ => None,
    }
}

/// Decodes a stored session, checking that it is the one asked for.
pub(super) fn decode_session(
    value: &Value,
    check: impl Fn(&Session) -> bool,
) -> Result<Session, StoreError> {
    if let Some(e) = server_error(value) {
        return Err(e);
    }
    let bytes = bytes_of(value).ok_or_else(|| corrupt("session record is not a string"))?;
    let session: Session = serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("undecodable session record: {e}").into()))?;
    if check(&session) {
        Ok(session)
    } else {
        Err(corrupt("session record does not match its key"))
    }
}

/// An integer reply.
pub(super) fn int_of(value: &Value) -> Result<i64, StoreError> {
    if let Some(e) = server_error(value) {
        return Err(e);
    }
    match value {
        Value::Int(n) => Ok(*n),
        other => bytes_of(other)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("expected an integer reply")),
    }
}

/// The elements of an array reply (nil reads as empty).
pub(super) fn array_of(value: Value) -> Result<Vec<Value>, StoreError> {
    if let Some(e) = server_error(&value) {
        return Err(e);
    }
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Array(items) | Value::Set(items) => Ok(items),
        _ => Err(corrupt("expected an array reply")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odd_session_replies_are_errors_not_panics() {
        assert!(decode_session(&Value::Int(1), |_| true).is_err());
        assert!(decode_session(&Value::Nil, |_| true).is_err());
        assert!(decode_session(&Value::BulkString(b"{".to_vec()), |_| true).is_err());
        assert!(int_of(&Value::Array(vec![])).is_err());
        assert!(array_of(Value::Int(1)).is_err());
    }

    #[test]
    fn unreachable_nodes_are_unavailable_and_error_replies_are_not() {
        let error = |kind| RedisError::from((kind, "test"));
        for kind in [
            ErrorKind::Io,
            ErrorKind::ClusterConnectionNotFound,
            ErrorKind::Server(ServerErrorKind::ClusterDown),
            ErrorKind::Server(ServerErrorKind::ReadOnly),
        ] {
            assert!(map_err(error(kind)).is_unavailable(), "{kind:?}");
        }
        for kind in [
            ErrorKind::Server(ServerErrorKind::ResponseError),
            ErrorKind::Server(ServerErrorKind::NoScript),
            ErrorKind::UnexpectedReturnType,
        ] {
            assert!(!map_err(error(kind)).is_unavailable(), "{kind:?}");
        }
    }
}
