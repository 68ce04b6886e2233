//! Opaque session tokens.
//!
//! A session token is random bytes from the operating system's CSPRNG, written as unpadded
//! base64url. The server never keeps the token itself: stores index sessions by the token's
//! SHA-256 ([`TokenHash`]), so a leaked store does not leak usable credentials.
//!
//! # Two shapes: tagged and untagged
//!
//! * **Tagged** (48 characters, minted when a [`TokenKey`] is configured with
//!   [`SessionsBuilder::token_key`](crate::SessionsBuilder::token_key)): 36 bytes, laid out as
//!   one byte of key id, 27 random bytes (216 bits) and an 8-byte tag, the first 8 bytes of
//!   HMAC-SHA256 under that key of the first 28 bytes. A token whose tag does not verify under a
//!   configured key with its id was not minted by an instance holding the key, and is refused
//!   ([`AuthError::ForgedToken`](crate::AuthError::ForgedToken)) before any store call: a flood
//!   of random or guessed tokens costs a MAC each, not a store round trip each. The tag only
//!   keeps work off the store; the store still decides whether a session holds the token, so
//!   the key's secrecy does not authenticate anyone, and leaking it costs only that filter.
//! * **Untagged** (43 characters, 32 random bytes): what every token was before tags, and what
//!   is minted without a token key. Once a token key is configured, untagged tokens are refused
//!   without a store call, except until the instant given to
//!   [`accept_untagged_tokens_until`](crate::SessionsBuilder::accept_untagged_tokens_until), so
//!   that sessions started before the upgrade keep working through a migration.
//!
//! Rotation: configure the new key as the current one and keep the old one with
//! [`previous_token_key`](crate::SessionsBuilder::previous_token_key) until the sessions it
//! tagged have ended (their maximum lifetime). Key ids pick the key to check, so give each key
//! its own id; two keys sharing an id are both tried.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};

/// Number of random bytes in an untagged session token.
pub const TOKEN_BYTES: usize = 32;
/// Length of an untagged session token's text form.
pub const TOKEN_LEN: usize = 43;
/// Number of bytes in a tagged session token: key id, random bytes, tag.
pub const TAGGED_TOKEN_BYTES: usize = 36;
/// Length of a tagged session token's text form.
pub const TAGGED_TOKEN_LEN: usize = 48;
/// Bytes of a tagged token the tag covers (key id and random bytes).
const TAGGED_BODY: usize = 28;
/// Bytes of HMAC-SHA256 kept as the tag.
const TAG_BYTES: usize = TAGGED_TOKEN_BYTES - TAGGED_BODY;

/// An opaque session token: the revocable credential a client presents.
///
/// Its [`Debug`] and [`Display`](fmt::Display) output are redacted; call
/// [`expose`](Self::expose) where the token must really be written (a cookie, a response body).
///
/// # Example
///
/// ```
/// use tower_session_jwt::token::SessionToken;
///
/// let token = SessionToken::generate().unwrap();
/// assert_eq!(token.expose().len(), 43);
/// assert_eq!(format!("{token:?}"), "SessionToken(<redacted>)");
/// let parsed = SessionToken::parse(token.expose()).unwrap();
/// assert_eq!(parsed.hash(), token.hash());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

/// Why a string is not a session token, or a token could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The string is neither 43 canonical base64url characters (an untagged token) nor 48
    /// base64url characters (a tagged one).
    #[error("malformed session token")]
    Malformed,
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed")]
    Rng,
    /// A [`TokenKey`] secret shorter than 32 bytes (its length).
    #[error("token key secrets must be at least 32 bytes, got {0}")]
    SecretTooShort(usize),
}

impl SessionToken {
    /// Draws a new untagged token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, TokenError> {
        let mut bytes = [0u8; TOKEN_BYTES];
        getrandom::fill(&mut bytes).map_err(|_| TokenError::Rng)?;
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Draws a new token tagged with `key` (see [`TokenKey`]).
    ///
    /// ```
    /// use tower_session_jwt::token::{SessionToken, TokenKey};
    ///
    /// let key = TokenKey::new(1, &[7u8; 32]).unwrap();
    /// let token = SessionToken::generate_tagged(&key).unwrap();
    /// assert_eq!(token.expose().len(), 48);
    /// assert!(key.verifies(token.expose()));
    /// assert!(!TokenKey::new(1, &[8u8; 32]).unwrap().verifies(token.expose()));
    /// ```
    pub fn generate_tagged(key: &TokenKey) -> Result<Self, TokenError> {
        let mut bytes = [0u8; TAGGED_TOKEN_BYTES];
        bytes[0] = key.id;
        getrandom::fill(&mut bytes[1..TAGGED_BODY]).map_err(|_| TokenError::Rng)?;
        let tag = aws_lc_rs::hmac::sign(&key.key, &bytes[..TAGGED_BODY]);
        bytes[TAGGED_BODY..].copy_from_slice(&tag.as_ref()[..TAG_BYTES]);
        Ok(Self(URL_SAFE_NO_PAD.encode(bytes)))
    }

    /// Checks the shape of a presented token: 43 canonical base64url characters (untagged) or
    /// 48 (tagged).
    ///
    /// Shape only: the tag is checked by [`TokenKey::verifies`], and whether a session exists
    /// for the token is the store's answer.
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

/// Whether `text` has the exact shape of a session token (either shape), without allocating.
pub(crate) fn is_token_shaped(text: &str) -> bool {
    shape_of(text).is_some()
}

/// The two shapes a token comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// 43 characters, 32 random bytes: no tag.
    Untagged,
    /// 48 characters: key id, random bytes, tag.
    Tagged([u8; TAGGED_TOKEN_BYTES]),
}

/// The shape of `text`, or `None` when it is not a token.
pub(crate) fn shape_of(text: &str) -> Option<Shape> {
    let bytes = text.as_bytes();
    if !matches!(bytes.len(), TOKEN_LEN | TAGGED_TOKEN_LEN) {
        return None;
    }
    // The decoder refuses any byte outside the base64url alphabet (and padding).
    let mut buf = [0u8; TAGGED_TOKEN_BYTES];
    // 43 characters carry 258 bits; the last character's two low bits must be zero for the
    // encoding to be canonical, so every 32-byte token has exactly one accepted spelling. 48
    // characters carry exactly 36 bytes, so every spelling is canonical.
    match URL_SAFE_NO_PAD.decode_slice(bytes, &mut buf) {
        Ok(TOKEN_BYTES) => Some(Shape::Untagged),
        Ok(TAGGED_TOKEN_BYTES) => Some(Shape::Tagged(buf)),
        _ => None,
    }
}

/// A key that tags the session tokens this service mints, so that tokens it did not mint are
/// refused before any store call.
///
/// # Two shapes: tagged and untagged
///
/// * **Tagged** (48 characters, minted when a [`TokenKey`] is configured with
///   [`SessionsBuilder::token_key`](crate::SessionsBuilder::token_key)): 36 bytes, laid out as
///   one byte of key id, 27 random bytes (216 bits) and an 8-byte tag, the first 8 bytes of
///   HMAC-SHA256 under that key of the first 28 bytes. A token whose tag does not verify under a
///   configured key with its id was not minted by an instance holding the key, and is refused
///   ([`AuthError::ForgedToken`](crate::AuthError::ForgedToken)) before any store call: a flood
///   of random or guessed tokens costs a MAC each, not a store round trip each. The tag only
///   keeps work off the store; the store still decides whether a session holds the token, so
///   the key's secrecy does not authenticate anyone, and leaking it costs only that filter.
/// * **Untagged** (43 characters, 32 random bytes): what every token was before tags, and what
///   is minted without a token key. Once a token key is configured, untagged tokens are refused
///   without a store call, except until the instant given to
///   [`accept_untagged_tokens_until`](crate::SessionsBuilder::accept_untagged_tokens_until), so
///   that sessions started before the upgrade keep working through a migration.
///
/// Rotation: configure the new key as the current one and keep the old one with
/// [`previous_token_key`](crate::SessionsBuilder::previous_token_key) until the sessions it
/// tagged have ended (their maximum lifetime). Key ids pick the key to check, so give each key
/// its own id; two keys sharing an id are both tried.
///
/// Every instance serving the same sessions needs the same keys, like the signing key. The
/// secret is at least 32 bytes; the id (one byte) names the key inside each token, so that a
/// rotation can keep the previous key with another id.
///
/// # Example
///
/// ```
/// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
/// use tower_session_jwt::token::TokenKey;
///
/// # tokio::runtime::Runtime::new().unwrap().block_on(async {
/// let secret = [42u8; 32]; // in production: 32 random bytes every instance reads
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .token_key(TokenKey::new(1, &secret).unwrap())
///     .build()
///     .unwrap();
/// let created = sessions.create("alice", tower_session_jwt::NewSession::new()).await.unwrap();
/// assert_eq!(created.token.expose().len(), 48);
/// # });
/// ```
#[derive(Clone)]
pub struct TokenKey {
    id: u8,
    key: aws_lc_rs::hmac::Key,
}

impl TokenKey {
    /// A key with the id `id` and a secret of at least 32 bytes.
    ///
    /// # Errors
    ///
    /// [`TokenError::SecretTooShort`] for a shorter secret.
    pub fn new(id: u8, secret: &[u8]) -> Result<Self, TokenError> {
        if secret.len() < 32 {
            return Err(TokenError::SecretTooShort(secret.len()));
        }
        Ok(Self {
            id,
            key: aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
        })
    }

    /// The key's id, as written in the first byte of the tokens it tags.
    pub fn id(&self) -> u8 {
        self.id
    }

    /// Whether `token` is a tagged token whose tag this key made.
    pub fn verifies(&self, token: &str) -> bool {
        match shape_of(token) {
            Some(Shape::Tagged(bytes)) => self.verifies_bytes(&bytes),
            _ => false,
        }
    }

    pub(crate) fn verifies_bytes(&self, bytes: &[u8; TAGGED_TOKEN_BYTES]) -> bool {
        if bytes[0] != self.id {
            return false;
        }
        let tag = aws_lc_rs::hmac::sign(&self.key, &bytes[..TAGGED_BODY]);
        aws_lc_rs::constant_time::verify_slices_are_equal(
            &tag.as_ref()[..TAG_BYTES],
            &bytes[TAGGED_BODY..],
        )
        .is_ok()
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// How an engine mints and admits tokens: its token keys and the untagged-token window.
#[derive(Debug, Clone, Default)]
pub(crate) struct TokenPolicy {
    /// The key that tags new tokens; `None` mints untagged tokens.
    pub(crate) current: Option<TokenKey>,
    /// Keys that still verify tags, not used to mint.
    pub(crate) previous: Vec<TokenKey>,
    /// Until when untagged tokens are still admitted while keys are configured.
    pub(crate) untagged_until: Option<time::OffsetDateTime>,
}

/// Why a presented token is refused before the store sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inadmissible {
    /// Not shaped like a token.
    Malformed,
    /// A tag no configured key made, or an untagged token past the migration window.
    Forged,
}

impl TokenPolicy {
    /// Whether any token key is configured.
    fn keyed(&self) -> bool {
        self.current.is_some() || !self.previous.is_empty()
    }

    /// A new token: tagged with the current key, or untagged without one.
    pub(crate) fn generate(&self) -> Result<SessionToken, TokenError> {
        match &self.current {
            Some(key) => SessionToken::generate_tagged(key),
            None => SessionToken::generate(),
        }
    }

    /// Whether `token` may go to the store: its shape, and with keys configured its tag (or the
    /// untagged window). Costs one HMAC for a tagged token; no allocation.
    pub(crate) fn admit(&self, token: &str, now: time::OffsetDateTime) -> Result<(), Inadmissible> {
        match shape_of(token).ok_or(Inadmissible::Malformed)? {
            _ if !self.keyed() => Ok(()),
            Shape::Untagged => match self.untagged_until {
                Some(until) if now < until => Ok(()),
                _ => Err(Inadmissible::Forged),
            },
            Shape::Tagged(bytes) => {
                if self
                    .current
                    .iter()
                    .chain(&self.previous)
                    .any(|key| key.verifies_bytes(&bytes))
                {
                    Ok(())
                } else {
                    Err(Inadmissible::Forged)
                }
            }
        }
    }
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
    fn tagged_tokens_verify_only_under_their_key() {
        let key = TokenKey::new(3, &[1u8; 32]).unwrap();
        let token = SessionToken::generate_tagged(&key).unwrap();
        assert_eq!(token.expose().len(), TAGGED_TOKEN_LEN);
        assert_eq!(SessionToken::parse(token.expose()).unwrap(), token);
        assert!(key.verifies(token.expose()));
        // Same secret, other id: the id is covered by the tag and picks the key.
        assert!(
            !TokenKey::new(4, &[1u8; 32])
                .unwrap()
                .verifies(token.expose())
        );
        assert!(
            !TokenKey::new(3, &[2u8; 32])
                .unwrap()
                .verifies(token.expose())
        );
        // Every single-character change breaks the tag.
        let text = token.expose();
        for i in 0..text.len() {
            let mut altered = text.as_bytes().to_vec();
            altered[i] = if altered[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert!(!key.verifies(&altered), "position {i}");
        }
        assert!(!key.verifies(SessionToken::generate().unwrap().expose()));
        assert!(TokenKey::new(1, &[0u8; 31]).is_err());
        assert!(!format!("{key:?}").contains("1, 1"));
    }

    #[test]
    fn the_policy_admits_by_shape_tag_and_window() {
        use time::macros::datetime;
        let now = datetime!(2026-12-03 12:00 UTC);
        let old = TokenKey::new(1, &[1u8; 32]).unwrap();
        let new = TokenKey::new(2, &[2u8; 32]).unwrap();
        let stranger = TokenKey::new(2, &[9u8; 32]).unwrap();
        let untagged = SessionToken::generate().unwrap();
        let by_old = SessionToken::generate_tagged(&old).unwrap();
        let by_new = SessionToken::generate_tagged(&new).unwrap();
        let forged = SessionToken::generate_tagged(&stranger).unwrap();

        let open = TokenPolicy::default();
        for t in [&untagged, &by_old, &by_new, &forged] {
            assert_eq!(open.admit(t.expose(), now), Ok(()));
        }
        assert_eq!(open.admit("nope", now), Err(Inadmissible::Malformed));
        assert_eq!(open.generate().unwrap().expose().len(), TOKEN_LEN);

        let rotated = TokenPolicy {
            current: Some(new.clone()),
            previous: vec![old.clone()],
            untagged_until: None,
        };
        assert_eq!(rotated.generate().unwrap().expose().len(), TAGGED_TOKEN_LEN);
        assert!(new.verifies(rotated.generate().unwrap().expose()));
        assert_eq!(rotated.admit(by_old.expose(), now), Ok(()));
        assert_eq!(rotated.admit(by_new.expose(), now), Ok(()));
        assert_eq!(
            rotated.admit(forged.expose(), now),
            Err(Inadmissible::Forged)
        );
        assert_eq!(
            rotated.admit(untagged.expose(), now),
            Err(Inadmissible::Forged)
        );
        assert_eq!(rotated.admit("nope", now), Err(Inadmissible::Malformed));

        let migrating = TokenPolicy {
            untagged_until: Some(now + time::Duration::seconds(1)),
            ..rotated
        };
        assert_eq!(migrating.admit(untagged.expose(), now), Ok(()));
        assert_eq!(
            migrating.admit(untagged.expose(), now + time::Duration::seconds(1)),
            Err(Inadmissible::Forged)
        );
        assert_eq!(
            migrating.admit(forged.expose(), now),
            Err(Inadmissible::Forged)
        );
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
