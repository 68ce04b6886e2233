//! Signing and verification keys, parsed once.
//!
//! Keys are loaded with `jsonwebtoken`'s PEM and JWK readers and then held as parsed `aws-lc-rs`
//! key objects, so no request pays for parsing a key (`jsonwebtoken::crypto::verify` re-parses
//! the public key on every call).

use std::fmt;

use aws_lc_rs::signature as sig;
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, ThumbprintHash};

mod signing;
mod verification;

pub use signing::SigningKey;
pub(crate) use verification::VerificationInner;
pub use verification::VerificationKey;

/// The signature algorithms this crate signs and verifies with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Algorithm {
    /// Ed25519 (`EdDSA`), the default: small keys, small signatures, fast signing.
    EdDSA,
    /// ECDSA on P-256 with SHA-256 (`ES256`).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), keys of 2048 bits or more.
    RS256,
    /// HMAC-SHA-256 (`HS256`), a shared secret of at least 32 bytes; never published in JWKS.
    HS256,
}

impl Algorithm {
    /// The JOSE name (`"EdDSA"`, `"ES256"`, `"RS256"`, `"HS256"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::EdDSA => "EdDSA",
            Algorithm::ES256 => "ES256",
            Algorithm::RS256 => "RS256",
            Algorithm::HS256 => "HS256",
        }
    }

    fn jwk_algorithm(self) -> KeyAlgorithm {
        match self {
            Algorithm::EdDSA => KeyAlgorithm::EdDSA,
            Algorithm::ES256 => KeyAlgorithm::ES256,
            Algorithm::RS256 => KeyAlgorithm::RS256,
            Algorithm::HS256 => KeyAlgorithm::HS256,
        }
    }

    fn jsonwebtoken(self) -> jsonwebtoken::Algorithm {
        match self {
            Algorithm::EdDSA => jsonwebtoken::Algorithm::EdDSA,
            Algorithm::ES256 => jsonwebtoken::Algorithm::ES256,
            Algorithm::RS256 => jsonwebtoken::Algorithm::RS256,
            Algorithm::HS256 => jsonwebtoken::Algorithm::HS256,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The PEM or DER could not be read as a key of the expected kind.
    #[error("invalid {algorithm} key: {reason}")]
    Invalid {
        /// The algorithm the key was loaded for.
        algorithm: Algorithm,
        /// What was wrong (never contains key material).
        reason: String,
    },
    /// An HS256 secret shorter than 32 bytes.
    #[error("HS256 secrets must be at least 32 bytes, got {0}")]
    SecretTooShort(usize),
    /// A key id that is empty, longer than 64 bytes, or not `[A-Za-z0-9._-]`.
    #[error("key id must be 1 to 64 characters of [A-Za-z0-9._-]")]
    InvalidKeyId,
    /// Key generation failed in the crypto library.
    #[error("key generation failed")]
    Generation,
    /// The JWK uses an algorithm or curve this crate does not verify.
    #[error("unsupported JWK: {0}")]
    UnsupportedJwk(String),
}

fn invalid(algorithm: Algorithm, reason: impl fmt::Display) -> KeyError {
    KeyError::Invalid {
        algorithm,
        reason: reason.to_string(),
    }
}

pub(crate) fn validate_kid(kid: &str) -> Result<(), KeyError> {
    if !kid.is_empty()
        && kid.len() <= 64
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(())
    } else {
        Err(KeyError::InvalidKeyId)
    }
}

/// A public key (or HMAC secret), parsed once, that checks signatures.
pub(crate) enum Verifier {
    Public(sig::ParsedPublicKey),
    // Boxed: an HMAC key holds precomputed contexts (over 1 KiB).
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

impl Verifier {
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self {
            Verifier::Public(key) => key.verify_sig(message, signature).is_ok(),
            Verifier::Hmac(key) => aws_lc_rs::hmac::verify(key, message, signature).is_ok(),
        }
    }

    fn public(
        algorithm: Algorithm,
        alg: &'static dyn sig::VerificationAlgorithm,
        bytes: &[u8],
    ) -> Result<Self, KeyError> {
        sig::ParsedPublicKey::new(alg, bytes)
            .map(Verifier::Public)
            .map_err(|e| invalid(algorithm, e))
    }

    fn for_public_bytes(algorithm: Algorithm, bytes: &[u8]) -> Result<Self, KeyError> {
        match algorithm {
            Algorithm::EdDSA => Self::public(algorithm, &sig::ED25519, bytes),
            Algorithm::ES256 => Self::public(algorithm, &sig::ECDSA_P256_SHA256_FIXED, bytes),
            Algorithm::RS256 => Self::public(algorithm, &sig::RSA_PKCS1_2048_8192_SHA256, bytes),
            Algorithm::HS256 => Ok(Verifier::Hmac(Box::new(aws_lc_rs::hmac::Key::new(
                aws_lc_rs::hmac::HMAC_SHA256,
                bytes,
            )))),
        }
    }
}

enum Signer {
    Ed25519(sig::Ed25519KeyPair),
    Ecdsa(sig::EcdsaKeyPair),
    Rsa(sig::RsaKeyPair),
    // Boxed: an HMAC key holds precomputed contexts (over 1 KiB).
    Hmac(Box<aws_lc_rs::hmac::Key>),
}

impl Verifier {
    fn duplicate(&self) -> Self {
        match self {
            Verifier::Public(key) => Verifier::Public(key.clone()),
            Verifier::Hmac(key) => Verifier::Hmac(key.clone()),
        }
    }
}

/// Signing failed inside the crypto library.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("signing the session JWT failed")]
pub struct SignError;

fn thumbprint(jwk: &Jwk, algorithm: Algorithm) -> Result<String, KeyError> {
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|e| invalid(algorithm, e))
}

/// DER of a PKCS#1 `RSAPublicKey { modulus, publicExponent }`.
fn rsa_public_key_der(n: &[u8], e: &[u8]) -> Vec<u8> {
    fn integer(bytes: &[u8]) -> Vec<u8> {
        let trimmed: &[u8] = {
            let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
            &bytes[first..]
        };
        let mut content = Vec::with_capacity(trimmed.len() + 1);
        if trimmed.first().is_none_or(|b| b & 0x80 != 0) {
            content.push(0);
        }
        content.extend_from_slice(trimmed);
        tlv(0x02, &content)
    }
    fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = content.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            let bytes = len.to_be_bytes();
            let skip = bytes
                .iter()
                .position(|b| *b != 0)
                .unwrap_or(bytes.len() - 1);
            out.push(0x80 | (bytes.len() - skip) as u8);
            out.extend_from_slice(&bytes[skip..]);
        }
        out.extend_from_slice(content);
        out
    }
    let mut body = integer(n);
    body.extend(integer(e));
    tlv(0x30, &body)
}
