//! Opaque session tokens.
//!
//! A session token is 32 bytes from the operating system's CSPRNG, written as unpadded base64url
//! (43 characters). The server never keeps the token itself: stores index sessions by the token's
//! SHA-256 ([`TokenHash`]), so a leaked store does not leak usable credentials.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Number of random bytes in a session token.
pub const TOKEN_BYTES: usize = 32;
/// Length of a session token's text form.
pub const TOKEN_LEN: usize = 43;

/// An opaque session token: the revocable credential a client presents.
///
/// Its [`Debug`] and [`Display`](fmt::Display) output are redacted; call
/// [`expose`](Self::expose) where the token must really be written (a cookie, a response body).
///
/// # Example
///
/// ```
/// use tower_session_jwt::SessionToken;
///
/// let token = SessionToken::generate().unwrap();
/// assert_eq!(token.expose().len(), 43);
/// assert_eq!(format!("{token:?}"), "SessionToken(<redacted>)");
/// let parsed = SessionToken::parse(token.expose()).unwrap();
/// assert_eq!(parsed.hash(), token.hash());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// Why a string is not a session token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The string is not 43 base64url characters encoding 32 bytes.
    #[error("malformed session token")]
    Malformed,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
}

impl SessionToken {
    /// Draws a new token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| TokenError::Rng)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Checks the shape of a presented token (43 canonical base64url characters).
    ///
    /// Shape only: whether a session exists for it is the store's answer.
    pub fn parse(text: &str) -> Result<Self, TokenError> {
        if is_token_shaped(text) {
            Ok(Self(text.to_owned()))
        } else {
            Err(TokenError::Malformed)
        }
    }

    /// The token's text, for a cookie or a response body. Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// The SHA-256 of the token: the only form a store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(&self.0)
    }
}

/// Whether `text` has the exact shape of a session token, without allocating.
pub(crate) fn is_token_shaped(text: &str) -> bool {
    let bytes = text.as_bytes();
    if bytes.len() != TOKEN_LEN
        || !bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return false;
    }
    // 43 characters carry 258 bits; the last character's two low bits must be zero for the
    // encoding to be canonical, so every 32-byte token has exactly one accepted spelling.
    let mut buf = [0u8; TOKEN_BYTES];
    URL_SAFE_NO_PAD.decode_slice(bytes, &mut buf).is_ok()
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

impl fmt::Display for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// The SHA-256 of a session token, as stores index sessions.
///
/// It is not a credential (the token cannot be recovered from it), so it may be stored; it is
/// still kept out of logs by its [`Debug`] output, which shows only a short prefix.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// Hashes a token's text.
    pub fn of(token: &str) -> Self {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, token.as_bytes());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        Self(out)
    }

    /// Rebuilds a hash from its 32 bytes (for stores that keep it in binary).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The hash's 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The hash as unpadded base64url (43 characters), for text-keyed stores.
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "TokenHash({:02x}{:02x}{:02x}{:02x}…)",
            self.0[0], self.0[1], self.0[2], self.0[3]
        )
    }
}

impl Serialize for TokenHash {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_base64url())
    }
}

impl<'de> Deserialize<'de> for TokenHash {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let mut out = [0u8; 32];
        match URL_SAFE_NO_PAD.decode_slice(text.as_bytes(), &mut out) {
            Ok(32) => Ok(Self(out)),
            _ => Err(serde::de::Error::custom("invalid token hash")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_tokens_are_distinct_and_well_formed() {
        let a = SessionToken::generate().unwrap();
        let b = SessionToken::generate().unwrap();
        assert_ne!(a, b);
        assert!(is_token_shaped(a.expose()));
        assert_eq!(SessionToken::parse(a.expose()).unwrap(), a);
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let good = SessionToken::generate().unwrap();
        for bad in [
            "",
            "short",
            &good.expose()[..42],
            &format!("{}A", good.expose()),
            &format!("{}=", &good.expose()[..42]),
            "+++++++++++++++++++++++++++++++++++++++++++",
            "ééééééééééééééééééééé",
        ] {
            assert_eq!(
                SessionToken::parse(bad),
                Err(TokenError::Malformed),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn non_canonical_last_character_is_refused() {
        // 'B' after 42 'A's sets a trailing bit that encodes nothing.
        let text = format!("{}B", "A".repeat(42));
        assert_eq!(SessionToken::parse(&text), Err(TokenError::Malformed));
        let canonical = format!("{}A", "A".repeat(42));
        assert!(SessionToken::parse(&canonical).is_ok());
    }

    #[test]
    fn secrets_are_redacted() {
        let t = SessionToken::generate().unwrap();
        assert!(!format!("{t:?}").contains(t.expose()));
        assert!(!format!("{t}").contains(t.expose()));
        let h = t.hash();
        assert!(!format!("{h:?}").contains(&h.to_base64url()));
    }

    #[test]
    fn hash_round_trips_through_serde() {
        let h = SessionToken::generate().unwrap().hash();
        let json = serde_json::to_string(&h).unwrap();
        assert_eq!(serde_json::from_str::<TokenHash>(&json).unwrap(), h);
        assert!(serde_json::from_str::<TokenHash>("\"abc\"").is_err());
    }
}
