//! gRPC answers for gRPC requests: the layer and the guards speak gRPC to gRPC clients.
//!
//! A gRPC client (tonic, grpc-go, grpcurl, …) does not read HTTP statuses: it reads the
//! `grpc-status` and `grpc-message` of a response. So a request whose `content-type` is
//! `application/grpc` (or `application/grpc+proto`, …) that the layer refuses gets a
//! *trailers-only* gRPC response: HTTP `200`, `content-type: application/grpc`, the code in
//! `grpc-status` and the reason in `grpc-message`, and an empty body. Every other request gets
//! the HTTP answers documented on [`AuthError`], unchanged.
//!
//! | refusal | gRPC code |
//! |---|---|
//! | no credential, or one refused (malformed, expired, forged, revoked, conflicting, too large) | `UNAUTHENTICATED` (16) |
//! | the store failed ([`AuthError::Store`]) | `UNAVAILABLE` (14): clients may retry |
//! | minting a JWT failed ([`AuthError::Signing`]) | `INTERNAL` (13) |
//! | the session lacks what the route requires ([`StepUpRequired`](crate::step_up::StepUpRequired)) | `PERMISSION_DENIED` (7) |
//!
//! The message names the reason (`"session revoked"`, `"session store unavailable"`) and never a
//! credential or a store's error text. Credentials come from the `authorization` metadata
//! (`Bearer <session JWT or token>`), which is the HTTP/2 `authorization` header the layer reads.
//!
//! # Example
//!
//! ```
//! use tower_session_jwt::AuthError;
//! use tower_session_jwt::grpc::{self, GrpcCode};
//!
//! let error = AuthError::Revoked;
//! assert_eq!(grpc::code_of(&error), GrpcCode::Unauthenticated);
//! let response = grpc::refusal::<String>(GrpcCode::Unauthenticated, &grpc::message_of(&error));
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["grpc-status"], "16");
//! assert_eq!(response.headers()["grpc-message"], "session revoked");
//! ```

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, Response, StatusCode};

use crate::engine::error::AuthError;
use crate::http::refusal::Refusal;

/// The gRPC status codes this crate answers with (the numbers are gRPC's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum GrpcCode {
    /// `PERMISSION_DENIED` (7): authenticated, but the session does not allow this call.
    PermissionDenied,
    /// `INTERNAL` (13): the server failed (a JWT could not be signed).
    Internal,
    /// `UNAVAILABLE` (14): the session store failed; retrying may succeed.
    Unavailable,
    /// `UNAUTHENTICATED` (16): no valid session credential.
    Unauthenticated,
}

impl GrpcCode {
    /// The numeric code, as sent in `grpc-status`.
    pub fn as_u8(self) -> u8 {
        match self {
            GrpcCode::PermissionDenied => 7,
            GrpcCode::Internal => 13,
            GrpcCode::Unavailable => 14,
            GrpcCode::Unauthenticated => 16,
        }
    }

    pub(crate) fn header(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            GrpcCode::PermissionDenied => "7",
            GrpcCode::Internal => "13",
            GrpcCode::Unavailable => "14",
            GrpcCode::Unauthenticated => "16",
        })
    }
}

/// Whether a request is a gRPC call: its `content-type` is `application/grpc` or starts with
/// `application/grpc+` / `application/grpc;` (gRPC-Web's `application/grpc-web` is not: its
/// clients read HTTP statuses through a proxy that translates).
pub fn is_grpc(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    let prefix = b"application/grpc";
    value.len() >= prefix.len()
        && value[..prefix.len()].eq_ignore_ascii_case(prefix)
        && matches!(value.get(prefix.len()), None | Some(b'+' | b';'))
}

/// The gRPC code for an authentication refusal; see the [module docs](self).
pub fn code_of(error: &AuthError) -> GrpcCode {
    match error {
        AuthError::Store(_) => GrpcCode::Unavailable,
        AuthError::Signing(_) => GrpcCode::Internal,
        _ => GrpcCode::Unauthenticated,
    }
}

/// The `grpc-message` for an authentication refusal: the reason, never a credential, and not
/// the store's own error text (it may name hosts or queries).
pub fn message_of(error: &AuthError) -> String {
    match error {
        AuthError::Store(_) => "session store unavailable".to_owned(),
        AuthError::Signing(_) => "could not sign a session JWT".to_owned(),
        other => other.to_string(),
    }
}

/// A trailers-only gRPC response: HTTP `200` with `grpc-status` and `grpc-message`
/// (percent-encoded as gRPC requires) and an empty body.
pub fn refusal<B: Default>(code: GrpcCode, message: &str) -> Response<B> {
    let mut response = Refusal::new(StatusCode::OK)
        .content_type("application/grpc")
        .empty();
    let headers = response.headers_mut();
    headers.insert("grpc-status", code.header());
    if let Ok(value) = HeaderValue::from_str(&percent_encode(message)) {
        headers.insert("grpc-message", value);
    }
    response
}

/// The answer to a request refused for `error`: a gRPC status for a gRPC call, else
/// [`AuthError::to_response`]. The layer's and the guards' one choice between the two.
pub(crate) fn auth_refusal<B: Default>(error: &AuthError, request: &HeaderMap) -> Response<B> {
    if is_grpc(request) {
        refusal(code_of(error), &message_of(error))
    } else {
        error.to_response()
    }
}

/// gRPC's percent-encoding of `grpc-message`: every byte outside printable ASCII (space
/// included in it), and `%`.
pub(crate) fn percent_encode(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    for byte in message.bytes() {
        if (0x20..=0x7e).contains(&byte) && byte != b'%' {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    #[test]
    fn recognises_grpc_content_types_only() {
        for yes in [
            "application/grpc",
            "application/grpc+proto",
            "Application/GRPC+json",
            "application/grpc;charset=utf-8",
        ] {
            assert!(is_grpc(&headers(yes)), "{yes}");
        }
        for no in [
            "application/grpc-web",
            "application/grpcx",
            "application/json",
            "text/html",
        ] {
            assert!(!is_grpc(&headers(no)), "{no}");
        }
        assert!(!is_grpc(&HeaderMap::new()));
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("a b%c\u{e9}\n"), "a b%25c%C3%A9%0A");
        let response = refusal::<String>(GrpcCode::Unavailable, "store down");
        assert_eq!(response.headers()["grpc-status"], "14");
        assert_eq!(response.headers()["grpc-message"], "store down");
        assert_eq!(response.headers()["content-type"], "application/grpc");
    }

    #[test]
    fn store_errors_name_no_detail() {
        let error = AuthError::Store(crate::store::StoreError::Backend(
            "connection to db.internal:5432 refused".into(),
        ));
        assert_eq!(code_of(&error), GrpcCode::Unavailable);
        assert!(!message_of(&error).contains("db.internal"));
    }
}
