//! Session JWTs: keys, minting, local verification and JWKS export.
//!
//! # The pinned header
//!
//! This crate verifies only JWTs it minted itself, so it knows the exact base64url header segment
//! of every configured key (`{"alg":…,"typ":"JWT","kid":…}`). Verification compares the presented
//! header segment byte for byte with those and refuses anything else before parsing it. The
//! algorithm therefore always comes from the key, never from the token, and the whole class of
//! header attacks (`alg: none`, algorithm confusion, `jwk`/`jku`/`x5u` key injection, hostile
//! `kid`, `crit`, `b64`, `cty`) is closed by construction. A refused header is parsed afterwards
//! only to name the reason in the error.

mod claims;
mod compact;
mod error;
mod json;
pub(crate) mod keys;

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use time::OffsetDateTime;

pub use error::JwtError;
pub use keys::{Algorithm, KeyError, SignError};
pub(crate) use keys::{SigningKey, VerificationKey};

use crate::data::session::Session;
use claims::MintClaims;
use compact::CompactSession;
use keys::VerificationInner;

/// Largest signature of any supported algorithm (RSA-8192), in bytes.
const MAX_SIGNATURE_BYTES: usize = 1024;

/// Payloads up to this size (decoded) are decoded on the stack.
const PAYLOAD_ON_STACK: usize = 3072;

/// A signed session JWT. Its [`Debug`] and [`Display`](fmt::Display) output are redacted.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionJwt {
    token: std::sync::Arc<str>,
    expires_at: OffsetDateTime,
}

impl SessionJwt {
    /// The compact JWT, for a cookie or a response body. Never log it.
    pub fn expose(&self) -> &str {
        &self.token
    }

    /// When the JWT expires (`exp`).
    pub fn expires_at(&self) -> OffsetDateTime {
        self.expires_at
    }

    /// The compact JWT, shared: a cache keyed by it holds the same bytes, not a copy.
    pub(crate) fn shared(&self) -> std::sync::Arc<str> {
        self.token.clone()
    }
}

impl fmt::Debug for SessionJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionJwt")
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

impl fmt::Display for SessionJwt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

pub(crate) use compact::as_minted;

/// What a verified JWT tells.
#[derive(Debug, Clone)]
pub(crate) struct VerifiedJwt {
    pub(crate) session: Session,
    /// `iat` of the JWT, in Unix seconds.
    pub(crate) issued_at: i64,
    /// `exp` of the JWT itself, in Unix seconds.
    pub(crate) expires_at: i64,
}

impl VerifiedJwt {
    /// Whether the JWT has expired at `now` (Unix seconds), leeway included.
    pub(crate) fn expired_at(&self, now: i64, leeway_secs: i64) -> bool {
        now >= self.expires_at + leeway_secs
    }
}

/// Whether `exp` is enforced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Expiry {
    Enforce,
    /// For revocation by JWT: an expired but genuine JWT still names its session.
    Ignore,
}

struct PinnedKey {
    /// `base64url(header JSON)`: the only header segment accepted for this key.
    header: String,
    key: VerificationKey,
}

impl PinnedKey {
    fn inner(&self) -> &VerificationInner {
        &self.key.inner
    }
}

/// Validation settings, fixed when [`Sessions`](crate::Sessions) is built.
#[derive(Debug, Clone)]
pub(crate) struct JwtSettings {
    pub(crate) issuer: String,
    pub(crate) audience: String,
    pub(crate) ttl_secs: i64,
    pub(crate) leeway_secs: i64,
    pub(crate) max_len: usize,
}

/// The key set plus settings: mints and verifies session JWTs.
pub(crate) struct JwtCodec {
    signing: SigningKey,
    /// The signing key first, then verification-only keys.
    keys: Vec<PinnedKey>,
    settings: JwtSettings,
}

fn pinned_header(key: &VerificationKey) -> String {
    // kid is validated to [A-Za-z0-9._-], so it needs no JSON escaping.
    let json = format!(
        r#"{{"alg":"{}","typ":"JWT","kid":"{}"}}"#,
        key.algorithm().as_str(),
        key.kid()
    );
    URL_SAFE_NO_PAD.encode(json)
}

/// Two keys share a `kid` (the engine reports it as a configuration error).
#[derive(Debug)]
pub(crate) struct DuplicateKeyId(pub(crate) String);

impl JwtCodec {
    pub(crate) fn new(
        signing: SigningKey,
        verification: Vec<VerificationKey>,
        settings: JwtSettings,
    ) -> Result<Self, DuplicateKeyId> {
        let mut keys = vec![PinnedKey {
            header: pinned_header(signing.verification_key()),
            key: signing.verification_key().clone(),
        }];
        for key in verification {
            if keys.iter().any(|k| k.key.kid() == key.kid()) {
                return Err(DuplicateKeyId(key.kid().to_owned()));
            }
            keys.push(PinnedKey {
                header: pinned_header(&key),
                key,
            });
        }
        Ok(Self {
            signing,
            keys,
            settings,
        })
    }

    /// Mints a JWT for `session` at `now`: `exp = min(iat + ttl, session.expires_at)`.
    pub(crate) fn mint(
        &self,
        session: &Session,
        now: OffsetDateTime,
    ) -> Result<SessionJwt, SignError> {
        let iat = now.unix_timestamp();
        let exp = (iat + self.settings.ttl_secs).min(session.expires_at.unix_timestamp());
        let claims = MintClaims {
            iss: &self.settings.issuer,
            aud: &self.settings.audience,
            sub: &session.user_id,
            sid: session.session_id.as_str(),
            iat,
            exp,
            session: CompactSession { session, iat },
            custom: &session.custom_claims,
        };
        let payload = serde_json::to_vec(&claims).map_err(|_| SignError)?;
        let header = &self.keys[0].header;
        let mut token = String::with_capacity(header.len() + payload.len() * 4 / 3 + 100);
        token.push_str(header);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&payload, &mut token);
        let signature = self.signing.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut token);
        let expires_at = OffsetDateTime::from_unix_timestamp(exp).map_err(|_| SignError)?;
        Ok(SessionJwt {
            token: token.into(),
            expires_at,
        })
    }

    /// Verifies `token` at `now`; see the module docs for the checks.
    pub(crate) fn verify(
        &self,
        token: &str,
        now: OffsetDateTime,
        expiry: Expiry,
    ) -> Result<VerifiedJwt, JwtError> {
        let settings = &self.settings;
        if token.len() > settings.max_len {
            return Err(JwtError::TooLong {
                len: token.len(),
                max: settings.max_len,
            });
        }
        let (signing_input, signature_b64) = token.rsplit_once('.').ok_or(JwtError::Malformed)?;
        let (header_b64, payload_b64) = signing_input.split_once('.').ok_or(JwtError::Malformed)?;
        if payload_b64.contains('.') {
            return Err(JwtError::Malformed);
        }
        let Some(pinned) = self.keys.iter().find(|k| k.header == header_b64) else {
            return Err(self.diagnose_header(header_b64));
        };

        let mut signature = [0u8; MAX_SIGNATURE_BYTES];
        let sig_len = URL_SAFE_NO_PAD
            .decode_slice(signature_b64, &mut signature)
            .map_err(|_| JwtError::Malformed)?;
        if !pinned
            .inner()
            .verifier
            .verify(signing_input.as_bytes(), &signature[..sig_len])
        {
            return Err(JwtError::InvalidSignature);
        }

        // Decoded on the stack: a session JWT's payload fits (the heap only for a configured
        // maximum length beyond it).
        let mut stack = [0u8; PAYLOAD_ON_STACK];
        let heap;
        let payload = match URL_SAFE_NO_PAD.decode_slice(payload_b64, &mut stack) {
            Ok(len) => &stack[..len],
            Err(base64::DecodeSliceError::OutputSliceTooSmall) => {
                heap = URL_SAFE_NO_PAD
                    .decode(payload_b64)
                    .map_err(|_| JwtError::Malformed)?;
                &heap[..]
            }
            Err(base64::DecodeSliceError::DecodeError(_)) => return Err(JwtError::Malformed),
        };
        let claims = claims::parse(payload)?;
        if claims.iss != settings.issuer {
            return Err(JwtError::InvalidIssuer);
        }
        if claims.aud != settings.audience {
            return Err(JwtError::InvalidAudience);
        }
        if claims.exp < claims.iat {
            return Err(JwtError::InvalidClaim("exp"));
        }
        if claims.exp - claims.iat > settings.ttl_secs {
            return Err(JwtError::LifetimeTooLong);
        }
        let now = now.unix_timestamp();
        let leeway = settings.leeway_secs;
        if claims.iat > now + leeway {
            return Err(JwtError::IssuedInFuture);
        }
        if claims.nbf > now + leeway {
            return Err(JwtError::NotYetValid);
        }
        let verified = VerifiedJwt {
            session: claims.session,
            issued_at: claims.iat,
            expires_at: claims.exp,
        };
        if expiry == Expiry::Enforce && verified.expired_at(now, leeway) {
            return Err(JwtError::Expired);
        }
        Ok(verified)
    }

    /// Names the reason a header segment was refused. Runs only on the failure path; the decision
    /// to refuse is already made.
    fn diagnose_header(&self, header_b64: &str) -> JwtError {
        if header_b64.len() > 1024 {
            return JwtError::UnexpectedHeader;
        }
        let Ok(bytes) = URL_SAFE_NO_PAD.decode(header_b64) else {
            return JwtError::Malformed;
        };
        let Ok(header) =
            serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&bytes)
        else {
            return JwtError::Malformed;
        };
        let kid_key = header
            .get("kid")
            .and_then(|k| k.as_str())
            .and_then(|kid| self.keys.iter().find(|k| k.key.kid() == kid));
        let alg = header.get("alg").and_then(|a| a.as_str());
        let alg_ok = match (alg, kid_key) {
            (Some(alg), Some(key)) => alg == key.key.algorithm().as_str(),
            // No key to compare with: any algorithm this crate knows is an unknown-kid problem.
            (Some(alg), None) => ["EdDSA", "ES256", "RS256", "HS256"].contains(&alg),
            (None, _) => false,
        };
        if !alg_ok {
            let found = match header.get("alg") {
                Some(serde_json::Value::String(s)) => s.chars().take(16).collect(),
                Some(other) => other.to_string().chars().take(16).collect(),
                None => String::new(),
            };
            return JwtError::AlgorithmMismatch {
                found,
                expected: kid_key.map(|k| k.key.algorithm()),
            };
        }
        if kid_key.is_none() {
            return JwtError::UnknownKeyId;
        }
        if header.contains_key("crit") {
            return JwtError::CriticalHeader;
        }
        if header.get("typ").and_then(|t| t.as_str()) != Some("JWT") {
            return JwtError::InvalidType;
        }
        JwtError::UnexpectedHeader
    }

    /// The public keys as a JWKS document (HS256 secrets are never included).
    pub(crate) fn jwks(&self) -> JwkSet {
        JwkSet {
            keys: self
                .keys
                .iter()
                .filter_map(|k| k.inner().jwk.clone())
                .collect(),
        }
    }

    pub(crate) fn max_len(&self) -> usize {
        self.settings.max_len
    }

    pub(crate) fn leeway_secs(&self) -> i64 {
        self.settings.leeway_secs
    }

    pub(crate) fn signing_key(&self) -> &SigningKey {
        &self.signing
    }
}

#[cfg(test)]
mod tests;
