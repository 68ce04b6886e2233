//! The verification cache's key: a JWT, hashed by the tail of its signature only.
//!
//! Hashing the whole token (several hundred bytes) was a tenth of the warm path. The signature's
//! last bytes are as good a hash input: only verified JWTs are inserted, so an attacker cannot
//! plant colliding keys, and two JWTs that differ anywhere have different signatures. Equality
//! still compares the whole token, so a JWT whose payload was altered around a genuine
//! signature never matches the genuine entry.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// How many trailing bytes of a JWT are hashed (of its signature: at least 43 for any
/// algorithm this crate signs with).
const HASHED_TAIL: usize = 16;

fn hash_tail<H: Hasher>(jwt: &str, state: &mut H) {
    let bytes = jwt.as_bytes();
    state.write(&bytes[bytes.len().saturating_sub(HASHED_TAIL)..]);
    state.write_usize(bytes.len());
}

/// A JWT as a cache key.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct JwtKey(Arc<str>);

impl JwtKey {
    pub(crate) fn new(jwt: &str) -> Self {
        Self(Arc::from(jwt))
    }

    /// A key holding the same bytes as `jwt` (a JWT minted here, which the token cache may hold
    /// too), without a copy.
    pub(crate) fn shared(jwt: Arc<str>) -> Self {
        Self(jwt)
    }
}

impl Hash for JwtKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_tail(&self.0, state);
    }
}

/// A borrowed JWT to look a [`JwtKey`] up with, without allocating.
pub(crate) struct JwtRef<'a>(pub(crate) &'a str);

impl Hash for JwtRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_tail(self.0, state);
    }
}

impl equivalent::Equivalent<JwtKey> for JwtRef<'_> {
    fn equivalent(&self, key: &JwtKey) -> bool {
        *self.0 == *key.0
    }
}

#[cfg(test)]
mod tests {
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn key_and_borrowed_form_hash_alike_and_compare_whole() {
        let state = std::collections::hash_map::RandomState::new();
        let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        assert_eq!(
            state.hash_one(JwtKey::new(jwt)),
            state.hash_one(JwtRef(jwt))
        );
        let key = JwtKey::new(jwt);
        assert!(equivalent::Equivalent::equivalent(&JwtRef(jwt), &key));
        // The same signature around another payload hashes alike but never matches.
        let altered = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiIn0.c2lnbmF0dXJlLWJ5dGVzLWhlcmU";
        assert_eq!(state.hash_one(JwtRef(altered)), state.hash_one(JwtRef(jwt)));
        assert!(!equivalent::Equivalent::equivalent(&JwtRef(altered), &key));
        // Short input does not panic.
        let _ = state.hash_one(JwtRef("a.b"));
    }
}
