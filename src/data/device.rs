//! A session's device binding as data: the key it is bound to and the challenge its next proof
//! must sign. Verifying proofs is [`crate::proof`]'s; binding sessions is the engine's.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::data::token::TokenError;
use crate::proof::{DeviceKey, Proof, ProofError};

/// A session's device binding: the key it is bound to, once registered, and the challenge the
/// next proof must sign.
///
/// A session offered registration carries a binding with a challenge and no key until the
/// browser registers; [`Session::is_device_bound`](crate::Session::is_device_bound) tells
/// whether it is bound.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceBinding {
    /// The device's public key, once registered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<DeviceKey>,
    /// When the key was registered (RFC 3339 in JSON).
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub bound_at: Option<OffsetDateTime>,
    /// The challenge the next proof must sign: single use, valid for the configured challenge
    /// lifetime. Not a secret (signing it needs the device's key), but of no use to clients.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub challenge: Option<DeviceChallenge>,
}

/// A challenge issued for a session's next DBSC proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceChallenge {
    /// The challenge: 128 random bits, base64url.
    pub value: String,
    /// When it was issued (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub issued_at: OffsetDateTime,
}

impl DeviceChallenge {
    /// A fresh random challenge issued at `now`.
    pub(crate) fn generate(now: OffsetDateTime) -> Result<Self, TokenError> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).map_err(|_| TokenError::Rng)?;
        Ok(Self {
            value: URL_SAFE_NO_PAD.encode(bytes),
            issued_at: now,
        })
    }

    /// Whether it is still usable at `now`.
    pub(crate) fn is_fresh(&self, now: OffsetDateTime, ttl: Duration) -> bool {
        now >= self.issued_at - time::Duration::seconds(5) && now - self.issued_at <= ttl
    }

    /// Checks that `proof` signs this challenge, in time. Compares in constant time.
    pub(crate) fn check(
        &self,
        proof: &Proof,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<(), ProofError> {
        aws_lc_rs::constant_time::verify_slices_are_equal(
            proof.challenge().as_bytes(),
            self.value.as_bytes(),
        )
        .map_err(|_| ProofError::UnknownChallenge)?;
        if !self.is_fresh(now, ttl) {
            return Err(ProofError::ExpiredChallenge);
        }
        // A proof's own `iat`, when it has one: within the lifetime, a minute of skew allowed.
        if let Some(iat) = proof.issued_at() {
            let age = now.unix_timestamp().saturating_sub(iat);
            let ttl = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
            if !(-60..=ttl).contains(&age) {
                return Err(ProofError::ExpiredChallenge);
            }
        }
        Ok(())
    }
}
