//! DBSC proofs: the compact JWS a browser signs with its device key, parsed and verified.
//!
//! A proof's header is `{"alg": "ES256" | "RS256", "typ": "dbsc+jwt", "jwk": {…}?}` and its
//! payload `{"jti": "<challenge>", "authorization": "<value>"?, "key": {…}?}`; the signature is
//! raw `r‖s` (64 bytes) for ES256 and PKCS #1 v1.5 for RS256. The public key comes from the
//! header's `jwk` or the payload's `key` (the draft names the latter, Chromium sends the former);
//! other draft members (`aud`, `iat`, `sub`) are optional and checked only when present.

use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents, UnparsedPublicKey,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Largest proof accepted, in bytes (an RSA-4096 key in the header and its signature fit with
/// room to spare).
pub const MAX_PROOF_LEN: usize = 8 * 1024;

/// The `typ` a proof's header must carry.
pub const PROOF_TYPE: &str = "dbsc+jwt";

/// A signature algorithm a device key may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum DeviceAlgorithm {
    /// ECDSA over P-256 with SHA-256 (what Chromium's software and TPM keys sign with).
    ES256,
    /// RSASSA-PKCS1-v1_5 with SHA-256, keys of 2048 bits or more.
    RS256,
}

impl DeviceAlgorithm {
    /// The JOSE name: `ES256` or `RS256`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceAlgorithm::ES256 => "ES256",
            DeviceAlgorithm::RS256 => "RS256",
        }
    }

    fn from_name(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(DeviceAlgorithm::ES256),
            "RS256" => Some(DeviceAlgorithm::RS256),
            _ => None,
        }
    }
}

/// A device's public key, as a JWK with only the members that define it.
///
/// Serializes as the JWK: `{"kty":"EC","crv":"P-256","x":…,"y":…}` or
/// `{"kty":"RSA","n":…,"e":…}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum DeviceKey {
    /// A P-256 public key (for ES256).
    #[serde(rename = "EC")]
    P256 {
        /// Always `P-256`.
        crv: String,
        /// The x coordinate, 32 bytes, base64url.
        x: String,
        /// The y coordinate, 32 bytes, base64url.
        y: String,
    },
    /// An RSA public key (for RS256).
    #[serde(rename = "RSA")]
    Rsa {
        /// The modulus, base64url, 2048 to 8192 bits.
        n: String,
        /// The public exponent, base64url.
        e: String,
    },
}

impl DeviceKey {
    /// The algorithm this key verifies.
    pub fn algorithm(&self) -> DeviceAlgorithm {
        match self {
            DeviceKey::P256 { .. } => DeviceAlgorithm::ES256,
            DeviceKey::Rsa { .. } => DeviceAlgorithm::RS256,
        }
    }

    /// The RFC 7638 thumbprint (SHA-256 of the canonical JWK, base64url): a short, stable name
    /// for the key, for logs and listings.
    pub fn thumbprint(&self) -> String {
        let canonical = match self {
            DeviceKey::P256 { crv, x, y } => {
                format!(r#"{{"crv":"{crv}","kty":"EC","x":"{x}","y":"{y}"}}"#)
            }
            DeviceKey::Rsa { n, e } => format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#),
        };
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, canonical.as_bytes());
        URL_SAFE_NO_PAD.encode(digest.as_ref())
    }

    /// Reads a JWK, keeping only its defining members; refuses anything else, private keys
    /// included.
    fn from_jwk(jwk: &Value) -> Result<Self, ProofError> {
        let member = |name: &str| jwk.get(name).and_then(Value::as_str);
        if jwk.get("d").is_some() {
            return Err(ProofError::InvalidKey);
        }
        match member("kty") {
            Some("EC") => {
                let (Some(crv), Some(x), Some(y)) = (member("crv"), member("x"), member("y"))
                else {
                    return Err(ProofError::InvalidKey);
                };
                if crv != "P-256" || decode_exact(x, 32).is_none() || decode_exact(y, 32).is_none()
                {
                    return Err(ProofError::InvalidKey);
                }
                Ok(DeviceKey::P256 {
                    crv: crv.to_owned(),
                    x: x.to_owned(),
                    y: y.to_owned(),
                })
            }
            Some("RSA") => {
                let (Some(n), Some(e)) = (member("n"), member("e")) else {
                    return Err(ProofError::InvalidKey);
                };
                let modulus = decode(n).ok_or(ProofError::InvalidKey)?;
                let exponent = decode(e).ok_or(ProofError::InvalidKey)?;
                let bits = modulus.len() * 8;
                if !(2048..=8192).contains(&bits)
                    || modulus.first() == Some(&0)
                    || exponent.is_empty()
                    || exponent.len() > 8
                {
                    return Err(ProofError::InvalidKey);
                }
                Ok(DeviceKey::Rsa {
                    n: n.to_owned(),
                    e: e.to_owned(),
                })
            }
            _ => Err(ProofError::InvalidKey),
        }
    }

    /// Checks `signature` over `message` with this key.
    fn verify(&self, message: &[u8], signature: &[u8]) -> Result<(), ProofError> {
        match self {
            DeviceKey::P256 { x, y, .. } => {
                let (Some(x), Some(y)) = (decode_exact(x, 32), decode_exact(y, 32)) else {
                    return Err(ProofError::InvalidKey);
                };
                if signature.len() != 64 {
                    return Err(ProofError::BadSignature);
                }
                let mut point = Vec::with_capacity(65);
                point.push(0x04);
                point.extend_from_slice(&x);
                point.extend_from_slice(&y);
                UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, point)
                    .verify(message, signature)
                    .map_err(|_| ProofError::BadSignature)
            }
            DeviceKey::Rsa { n, e } => {
                let (Some(n), Some(e)) = (decode(n), decode(e)) else {
                    return Err(ProofError::InvalidKey);
                };
                RsaPublicKeyComponents { n: &n, e: &e }
                    .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
                    .map_err(|_| ProofError::BadSignature)
            }
        }
    }
}

/// Why a DBSC proof was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// Not a compact JWS of base64url JSON segments, larger than [`MAX_PROOF_LEN`], or
    /// missing `jti`.
    #[error("malformed DBSC proof")]
    Malformed,
    /// The header's `typ` is not `dbsc+jwt`.
    #[error("DBSC proof has the wrong typ")]
    WrongType,
    /// The header's `alg` is not one this server offers, or does not fit the key.
    #[error("DBSC proof algorithm not accepted")]
    UnsupportedAlgorithm,
    /// A registration proof carries no public key, or the key is malformed, private, too
    /// small, of another type, or two different keys are given.
    #[error("DBSC proof key missing or invalid")]
    InvalidKey,
    /// The signature does not verify with the key (for a refresh: the key the session is bound
    /// to).
    #[error("DBSC proof signature does not verify")]
    BadSignature,
    /// The proof signs a challenge this server did not issue for this session, or one already
    /// used.
    #[error("DBSC proof signs an unknown or used challenge")]
    UnknownChallenge,
    /// The challenge (or the proof's own `iat`) is older than the challenge lifetime.
    #[error("DBSC proof challenge expired")]
    ExpiredChallenge,
    /// The proof's `authorization` (or `sub`) names another session.
    #[error("DBSC proof authorization does not match the session")]
    WrongAuthorization,
    /// Registration for a session already bound to a device key.
    #[error("session already bound to a device")]
    AlreadyBound,
    /// Refresh for a session that is not bound to a device key.
    #[error("session not bound to a device")]
    NotBound,
    /// The session is bound to a device key, and a JWT for it is handed out only for a proof
    /// of that key (a DBSC refresh): no other path mints one.
    #[error("session bound to a device: only a proof of its key gets a new JWT")]
    ProofRequired,
}

impl ProofError {
    /// A short stable name for logs and error bodies.
    pub fn reason(self) -> &'static str {
        match self {
            ProofError::Malformed => "malformed_proof",
            ProofError::WrongType => "wrong_proof_type",
            ProofError::UnsupportedAlgorithm => "unsupported_algorithm",
            ProofError::InvalidKey => "invalid_key",
            ProofError::BadSignature => "bad_signature",
            ProofError::UnknownChallenge => "unknown_challenge",
            ProofError::ExpiredChallenge => "expired_challenge",
            ProofError::WrongAuthorization => "wrong_authorization",
            ProofError::AlreadyBound => "already_bound",
            ProofError::NotBound => "not_bound",
            ProofError::ProofRequired => "proof_required",
        }
    }

    /// Whether a fresh challenge may put it right (the browser signs again): the challenge was
    /// unknown, used or expired. Every other refusal is final.
    pub fn is_challenge(self) -> bool {
        matches!(
            self,
            ProofError::UnknownChallenge | ProofError::ExpiredChallenge
        )
    }
}

/// A proof whose shape was checked and whose signature is still to be verified.
#[derive(Debug, Clone)]
pub struct Proof {
    algorithm: DeviceAlgorithm,
    /// The key the proof carries, if any.
    key: Option<DeviceKey>,
    /// The challenge signed.
    challenge: String,
    authorization: Option<String>,
    subject: Option<String>,
    issued_at: Option<i64>,
    signing_input: String,
    signature: Vec<u8>,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    typ: Option<String>,
    #[serde(default)]
    jwk: Option<Value>,
}

#[derive(Deserialize)]
struct Payload {
    jti: String,
    #[serde(default)]
    authorization: Option<String>,
    #[serde(default)]
    key: Option<Value>,
    #[serde(default)]
    sub: Option<String>,
    #[serde(default)]
    iat: Option<i64>,
}

impl Proof {
    /// Parses a proof as it arrives in `Secure-Session-Response` (quoted as an sf-string, or
    /// bare), accepting only the algorithms in `accepted`.
    ///
    /// # Example
    ///
    /// ```
    /// use tower_session_jwt::proof::{DeviceAlgorithm, Proof, ProofError};
    ///
    /// let err = Proof::parse("not.a.proof", &[DeviceAlgorithm::ES256]).unwrap_err();
    /// assert_eq!(err, ProofError::Malformed);
    /// ```
    pub fn parse(text: &str, accepted: &[DeviceAlgorithm]) -> Result<Self, ProofError> {
        let text = unquote(text.trim());
        if text.len() > MAX_PROOF_LEN {
            return Err(ProofError::Malformed);
        }
        let mut parts = text.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(ProofError::Malformed);
        };
        let header: Header = decode(header_b64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ProofError::Malformed)?;
        let payload: Payload = decode(payload_b64)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or(ProofError::Malformed)?;
        let signature = decode(signature_b64).ok_or(ProofError::Malformed)?;
        if !header
            .typ
            .as_deref()
            .is_some_and(|t| t.eq_ignore_ascii_case(PROOF_TYPE))
        {
            return Err(ProofError::WrongType);
        }
        let algorithm = DeviceAlgorithm::from_name(&header.alg)
            .filter(|a| accepted.contains(a))
            .ok_or(ProofError::UnsupportedAlgorithm)?;
        if payload.jti.is_empty() || payload.jti.len() > 256 {
            return Err(ProofError::Malformed);
        }
        let from_header = header.jwk.as_ref().map(DeviceKey::from_jwk).transpose()?;
        let from_payload = payload.key.as_ref().map(DeviceKey::from_jwk).transpose()?;
        let key = match (from_header, from_payload) {
            (Some(a), Some(b)) if a != b => return Err(ProofError::InvalidKey),
            (a, b) => a.or(b),
        };
        if key.as_ref().is_some_and(|k| k.algorithm() != algorithm) {
            return Err(ProofError::UnsupportedAlgorithm);
        }
        Ok(Self {
            algorithm,
            key,
            challenge: payload.jti,
            authorization: payload.authorization,
            subject: payload.sub,
            issued_at: payload.iat,
            signing_input: text[..header_b64.len() + 1 + payload_b64.len()].to_owned(),
            signature,
        })
    }

    /// The challenge the proof signs (its `jti`).
    pub fn challenge(&self) -> &str {
        &self.challenge
    }

    /// The key the proof carries (a registration's), if any.
    pub fn key(&self) -> Option<&DeviceKey> {
        self.key.as_ref()
    }

    /// The algorithm the proof is signed with.
    pub fn algorithm(&self) -> DeviceAlgorithm {
        self.algorithm
    }

    /// The `authorization` the proof echoes, if any.
    pub fn authorization(&self) -> Option<&str> {
        self.authorization.as_deref()
    }

    /// The proof's `iat` (Unix seconds), if it has one.
    pub fn issued_at(&self) -> Option<i64> {
        self.issued_at
    }

    /// The proof's `sub`, if any.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// Verifies the signature with `key` (a refresh: the key the session is bound to). A key
    /// carried in the proof must be that same key.
    pub fn verify_with(&self, key: &DeviceKey) -> Result<(), ProofError> {
        if key.algorithm() != self.algorithm {
            return Err(ProofError::UnsupportedAlgorithm);
        }
        if self.key.as_ref().is_some_and(|k| k != key) {
            return Err(ProofError::BadSignature);
        }
        key.verify(self.signing_input.as_bytes(), &self.signature)
    }

    /// Verifies the signature with the key the proof carries (a registration) and returns
    /// that key.
    pub fn verify_own_key(&self) -> Result<&DeviceKey, ProofError> {
        let key = self.key.as_ref().ok_or(ProofError::InvalidKey)?;
        key.verify(self.signing_input.as_bytes(), &self.signature)?;
        Ok(key)
    }
}

/// An sf-string's content (`"abc"` → `abc`; a bare value as it is). Backslash escapes do not
/// occur in the values this module reads (base64url and session ids).
pub(crate) fn unquote(text: &str) -> &str {
    text.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(text)
}

fn decode(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(text.trim_end_matches('=')).ok()
}

fn decode_exact(text: &str, len: usize) -> Option<Vec<u8>> {
    decode(text).filter(|b| b.len() == len)
}
