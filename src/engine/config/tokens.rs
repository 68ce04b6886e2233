//! The builder's settings for opaque token keys: tagging new tokens, keys kept after a
//! rotation, the migration window for untagged tokens.

use super::SessionsBuilder;

/// Opaque token keys.
impl SessionsBuilder {
    /// Tags every new session token with `key`, so that tokens this service did not mint are
    /// refused ([`AuthError::ForgedToken`](crate::AuthError::ForgedToken), `401`) before any
    /// store call: a flood of random or guessed tokens then costs one MAC each instead of one
    /// store round trip each. Every instance needs the same key, like the signing key.
    ///
    /// Once a key is configured, untagged tokens (those minted without one, by this or an
    /// earlier version) are refused too; give them a migration window with
    /// [`accept_untagged_tokens_until`](Self::accept_untagged_tokens_until). The [token
    /// module](crate::token::TokenKey) describes the format.
    ///
    /// ```
    /// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
    /// use tower_session_jwt::token::TokenKey;
    ///
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let sessions = Sessions::builder()
    ///     .store(MemoryStore::new())
    ///     .signing_key(SigningKey::generate_ed25519().unwrap())
    ///     .token_key(TokenKey::new(2, &[0x5a; 32]).unwrap())
    ///     .previous_token_key(TokenKey::new(1, &[0xa5; 32]).unwrap())
    ///     .build()
    ///     .unwrap();
    /// # });
    /// ```
    pub fn token_key(mut self, key: crate::data::token::TokenKey) -> Self {
        self.tokens.current = Some(key);
        self
    }

    /// A token key that no longer tags new tokens but still admits the tokens it tagged: keep
    /// it after a rotation until those sessions have ended. May be called several times.
    pub fn previous_token_key(mut self, key: crate::data::token::TokenKey) -> Self {
        self.tokens.previous.push(key);
        self
    }

    /// While token keys are configured, still admits untagged tokens (minted before the keys
    /// were) until `until`: the migration window. Set it to the upgrade's time plus the
    /// sessions' maximum lifetime; after it, untagged tokens are refused without a store call.
    /// Without token keys every well-formed token goes to the store and this has no effect.
    pub fn accept_untagged_tokens_until(mut self, until: time::OffsetDateTime) -> Self {
        self.tokens.untagged_until = Some(until);
        self
    }
}
