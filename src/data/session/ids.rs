//! Session ids and user ids: their limits and checks.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Longest accepted user id, in bytes.
pub const MAX_USER_ID_LEN: usize = 256;
/// Longest accepted session id, in bytes.
pub const MAX_SESSION_ID_LEN: usize = 64;

/// Why a user id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidUserId {
    /// Empty, or longer than [`MAX_USER_ID_LEN`] bytes.
    #[error("user id must be 1 to {MAX_USER_ID_LEN} bytes")]
    Length,
    /// Holds a control character (NUL, newline, …) or an invisible formatting character
    /// (bidirectional overrides and isolates, zero-width characters), which could make one id
    /// look like another in a listing or a log.
    #[error("user id contains a control or invisible formatting character")]
    Character,
}

/// Checks a user id: 1 to [`MAX_USER_ID_LEN`] bytes, no control characters and no invisible
/// formatting characters (Unicode `Cc` and `Cf`: NUL, bidi overrides, zero-width joiners).
///
/// # Example
///
/// ```
/// use tower_session_jwt::session::{InvalidUserId, validate_user_id};
///
/// assert!(validate_user_id("alice@example.com").is_ok());
/// assert_eq!(validate_user_id("admin\u{202e}txt"), Err(InvalidUserId::Character));
/// assert_eq!(validate_user_id(""), Err(InvalidUserId::Length));
/// ```
pub fn validate_user_id(user_id: &str) -> Result<(), InvalidUserId> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_LEN {
        return Err(InvalidUserId::Length);
    }
    if user_id.chars().any(|c| c.is_control() || is_format(c)) {
        return Err(InvalidUserId::Character);
    }
    Ok(())
}

/// Unicode general category `Cf` (format), the invisible characters that reorder or join text.
fn is_format(c: char) -> bool {
    matches!(c,
        '\u{ad}' | '\u{600}'..='\u{605}' | '\u{61c}' | '\u{6dd}' | '\u{70f}' | '\u{890}'..='\u{891}'
        | '\u{8e2}' | '\u{180e}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}'
        | '\u{2060}'..='\u{2064}' | '\u{2066}'..='\u{206f}' | '\u{feff}' | '\u{fff9}'..='\u{fffb}'
        | '\u{110bd}' | '\u{110cd}' | '\u{13430}'..='\u{1343f}' | '\u{1bca0}'..='\u{1bca3}'
        | '\u{1d173}'..='\u{1d17a}' | '\u{e0001}' | '\u{e0020}'..='\u{e007f}')
}

/// A session's identifier: 128 random bits as base64url, e.g. `session-2xK…`.
///
/// Not a secret: it appears in session JWTs and in session listings, and it is how a user names a
/// session to revoke. Parsing bounds its length and alphabet, so an id taken from a URL is safe to
/// hand to any store.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct SessionId(String);

/// Why a string is not a session id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed session id")]
pub struct InvalidSessionId;

impl SessionId {
    /// A fresh random session id.
    pub fn generate() -> Result<Self, crate::data::token::TokenError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| crate::data::token::TokenError::Rng)?;
        Ok(Self(format!("session-{}", URL_SAFE_NO_PAD.encode(bytes))))
    }

    /// Checks a presented id: 1 to 64 characters of `[A-Za-z0-9_-]`.
    pub fn parse(text: &str) -> Result<Self, InvalidSessionId> {
        if !text.is_empty()
            && text.len() <= MAX_SESSION_ID_LEN
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            Ok(Self(text.to_owned()))
        } else {
            Err(InvalidSessionId)
        }
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for SessionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&text).map_err(serde::de::Error::custom)
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for SessionId {
    type Err = InvalidSessionId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_ids_are_bounded() {
        let id = SessionId::generate().unwrap();
        assert_eq!(SessionId::parse(id.as_str()).unwrap(), id);
        for bad in [
            "",
            "a b",
            "../etc",
            "x".repeat(65).as_str(),
            "sess\u{e9}",
            "a\nb",
        ] {
            assert!(SessionId::parse(bad).is_err(), "{bad:?}");
        }
        assert!(serde_json::from_value::<SessionId>(json!("bad id")).is_err());
    }

    #[test]
    fn user_ids_refuse_control_and_invisible_characters() {
        for bad in [
            "",
            "a\0b",
            "line\nbreak",
            "rtl\u{202e}gpj.exe",
            "iso\u{2067}x",
            "zw\u{200b}j",
        ] {
            assert!(validate_user_id(bad).is_err(), "{bad:?}");
        }
        assert!(validate_user_id(&"x".repeat(MAX_USER_ID_LEN + 1)).is_err());
        for good in ["alice", "Zoë", "user@example.com", "用户", "a b"] {
            assert!(validate_user_id(good).is_ok(), "{good:?}");
        }
    }
}
