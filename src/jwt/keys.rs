//! Signing and verification keys, parsed once.
//!
//! Keys are loaded with `jsonwebtoken`'s PEM and JWK readers and then held as parsed `aws-lc-rs`
//! key objects, so no request pays for parsing a key (`jsonwebtoken::crypto::verify` re-parses
//! the public key on every call).

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{DecodingKey, EncodingKey};
use zeroize::Zeroizing;

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

/// A key that verifies session JWTs: its algorithm, its `kid`, and its public part.
///
/// Every [`SigningKey`] is also a verification key; add old keys with
/// [`SessionsBuilder::verification_key`](crate::SessionsBuilder::verification_key) so JWTs they
/// signed stay valid during a rotation.
#[derive(Clone)]
pub struct VerificationKey {
    pub(crate) inner: Arc<VerificationInner>,
}

pub(crate) struct VerificationInner {
    pub(crate) kid: String,
    pub(crate) algorithm: Algorithm,
    pub(crate) verifier: Verifier,
    /// The public JWK, `None` for HMAC secrets (never published).
    pub(crate) jwk: Option<Jwk>,
}

impl VerificationKey {
    /// An Ed25519 public key from a `PUBLIC KEY` PEM (SPKI).
    pub fn ed25519_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_ed_pem(pem).map_err(|e| invalid(Algorithm::EdDSA, e))?;
        Self::from_decoding_key(Algorithm::EdDSA, &key)
    }

    /// A P-256 public key from a `PUBLIC KEY` PEM (SPKI).
    pub fn es256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_ec_pem(pem).map_err(|e| invalid(Algorithm::ES256, e))?;
        Self::from_decoding_key(Algorithm::ES256, &key)
    }

    /// An RSA public key (2048 bits or more) from a `PUBLIC KEY` or `RSA PUBLIC KEY` PEM.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = DecodingKey::from_rsa_pem(pem).map_err(|e| invalid(Algorithm::RS256, e))?;
        Self::from_decoding_key(Algorithm::RS256, &key)
    }

    /// A public key from a JWK (`OKP`/Ed25519, `EC`/P-256 or `RSA`), for example one entry of
    /// another deployment's JWKS. The JWK's `kid` is used when present, else its RFC 7638
    /// thumbprint.
    pub fn from_jwk(jwk: &Jwk) -> Result<Self, KeyError> {
        use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve};
        let algorithm = match &jwk.algorithm {
            AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                Algorithm::EdDSA
            }
            AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            AlgorithmParameters::RSA(_) => Algorithm::RS256,
            other => {
                return Err(KeyError::UnsupportedJwk(
                    format!("{other:?}").chars().take(40).collect(),
                ));
            }
        };
        if jwk
            .common
            .public_key_use
            .as_ref()
            .is_some_and(|u| *u != PublicKeyUse::Signature)
        {
            return Err(KeyError::UnsupportedJwk("`use` is not `sig`".into()));
        }
        if let Some(ops) = &jwk.common.key_operations
            && !ops.contains(&jsonwebtoken::jwk::KeyOperations::Verify)
        {
            return Err(KeyError::UnsupportedJwk("`key_ops` lacks `verify`".into()));
        }
        if let Some(declared) = jwk.common.key_algorithm
            && declared != algorithm.jwk_algorithm()
        {
            return Err(KeyError::UnsupportedJwk(format!(
                "alg {declared:?} with this key type"
            )));
        }
        let key = DecodingKey::from_jwk(jwk).map_err(|e| invalid(algorithm, e))?;
        let mut out = Self::from_decoding_key(algorithm, &key)?;
        if let Some(kid) = &jwk.common.key_id {
            validate_kid(kid)?;
            out = out.with_kid(kid.clone())?;
        }
        Ok(out)
    }

    fn from_decoding_key(algorithm: Algorithm, key: &DecodingKey) -> Result<Self, KeyError> {
        let verifier = match key.kind() {
            jsonwebtoken::DecodingKeyKind::SecretOrDer(bytes) => {
                Verifier::for_public_bytes(algorithm, bytes)?
            }
            jsonwebtoken::DecodingKeyKind::RsaModulusExponent { n, e } => {
                // Re-encode (n, e) as a PKCS#1 RSAPublicKey so one parsed-key path serves all.
                Verifier::for_public_bytes(algorithm, &rsa_public_key_der(n, e))?
            }
        };
        let mut jwk = Jwk::from_decoding_key(key, Some(algorithm.jsonwebtoken()))
            .map_err(|e| invalid(algorithm, e))?;
        if let jsonwebtoken::jwk::AlgorithmParameters::RSA(rsa) = &jwk.algorithm {
            use base64::Engine as _;
            let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(rsa.n.as_bytes())
                .map_err(|e| invalid(algorithm, e))?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant < 256 {
                return Err(invalid(algorithm, "RSA keys must be at least 2048 bits"));
            }
        }
        let kid = thumbprint(&jwk, algorithm)?;
        jwk.common.key_id = Some(kid.clone());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        Ok(Self {
            inner: Arc::new(VerificationInner {
                kid,
                algorithm,
                verifier,
                jwk: Some(jwk),
            }),
        })
    }

    /// Replaces the key id (default: the key's RFC 7638 thumbprint).
    pub fn with_kid(self, kid: impl Into<String>) -> Result<Self, KeyError> {
        let kid = kid.into();
        validate_kid(&kid)?;
        let inner = Arc::try_unwrap(self.inner).unwrap_or_else(|shared| VerificationInner {
            kid: shared.kid.clone(),
            algorithm: shared.algorithm,
            verifier: shared.verifier.duplicate(),
            jwk: shared.jwk.clone(),
        });
        let mut jwk = inner.jwk;
        if let Some(jwk) = jwk.as_mut() {
            jwk.common.key_id = Some(kid.clone());
        }
        Ok(Self {
            inner: Arc::new(VerificationInner {
                kid,
                algorithm: inner.algorithm,
                verifier: inner.verifier,
                jwk,
            }),
        })
    }

    /// The key id written in the JWT header.
    pub fn kid(&self) -> &str {
        &self.inner.kid
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.inner.algorithm
    }

    /// The public JWK (`None` for an HS256 secret, which is never published).
    pub fn jwk(&self) -> Option<&Jwk> {
        self.inner.jwk.as_ref()
    }

    /// Checks a raw signature over `message` with this key and its pinned algorithm (for JWS:
    /// the message is `header.payload`, the signature the decoded third segment; ECDSA
    /// signatures are the fixed-size `R‖S` form). This is the primitive session JWT
    /// verification uses.
    pub fn verify_signature(&self, message: &[u8], signature: &[u8]) -> bool {
        self.inner.verifier.verify(message, signature)
    }

    /// An HS256 verification key from a shared secret of at least 32 bytes.
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, KeyError> {
        Ok(SigningKey::hs256(kid, secret)?.verification)
    }
}

impl Verifier {
    fn duplicate(&self) -> Self {
        match self {
            Verifier::Public(key) => Verifier::Public(key.clone()),
            Verifier::Hmac(key) => Verifier::Hmac(key.clone()),
        }
    }
}

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.inner.kid)
            .field("algorithm", &self.inner.algorithm)
            .finish_non_exhaustive()
    }
}

/// The key that signs new session JWTs, with its `kid`.
///
/// Ed25519 is the default choice: [`SigningKey::ed25519_pem`] for a shared key,
/// [`SigningKey::generate_ed25519`] for development.
///
/// # Example
///
/// ```
/// use tower_session_jwt::SigningKey;
///
/// let key = SigningKey::generate_ed25519().unwrap();
/// let pem = key.to_pkcs8_pem().unwrap();          // keep this secret; share it between instances
/// let same = SigningKey::ed25519_pem(pem.as_bytes()).unwrap();
/// assert_eq!(key.kid(), same.kid());               // the kid is the key's RFC 7638 thumbprint
/// assert_eq!(format!("{same:?}").contains("PRIVATE"), false);
/// ```
#[derive(Clone)]
pub struct SigningKey {
    signer: Arc<Signer>,
    /// The PKCS#8 (or HMAC secret) bytes, kept for export; never printed.
    secret: Arc<Zeroizing<Vec<u8>>>,
    verification: VerificationKey,
}

impl SigningKey {
    /// An Ed25519 private key from a `PRIVATE KEY` PEM (PKCS#8).
    pub fn ed25519_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = EncodingKey::from_ed_pem(pem).map_err(|e| invalid(Algorithm::EdDSA, e))?;
        Self::ed25519_pkcs8(key.as_bytes())
    }

    fn ed25519_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = sig::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
            .map_err(|e| invalid(Algorithm::EdDSA, e))?;
        let public = pair.public_key().as_ref().to_vec();
        Self::assemble(
            Algorithm::EdDSA,
            Signer::Ed25519(pair),
            der.to_vec(),
            DecodingKey::from_ed_der(&public),
        )
    }

    /// A P-256 private key from a `PRIVATE KEY` PEM (PKCS#8).
    pub fn es256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = EncodingKey::from_ec_pem(pem).map_err(|e| invalid(Algorithm::ES256, e))?;
        Self::es256_pkcs8(key.as_bytes())
    }

    fn es256_pkcs8(der: &[u8]) -> Result<Self, KeyError> {
        let pair = sig::EcdsaKeyPair::from_pkcs8(&sig::ECDSA_P256_SHA256_FIXED_SIGNING, der)
            .map_err(|e| invalid(Algorithm::ES256, e))?;
        let public = pair.public_key().as_ref().to_vec();
        Self::assemble(
            Algorithm::ES256,
            Signer::Ecdsa(pair),
            der.to_vec(),
            DecodingKey::from_ec_der(&public),
        )
    }

    /// An RSA private key (2048 bits or more) from a `PRIVATE KEY` (PKCS#8) or
    /// `RSA PRIVATE KEY` (PKCS#1) PEM.
    pub fn rs256_pem(pem: &[u8]) -> Result<Self, KeyError> {
        let key = EncodingKey::from_rsa_pem(pem).map_err(|e| invalid(Algorithm::RS256, e))?;
        let pair =
            sig::RsaKeyPair::from_der(key.as_bytes()).map_err(|e| invalid(Algorithm::RS256, e))?;
        if pair.public_modulus_len() < 256 {
            return Err(invalid(
                Algorithm::RS256,
                "RSA keys must be at least 2048 bits",
            ));
        }
        let public = pair.public_key().as_ref().to_vec();
        Self::assemble(
            Algorithm::RS256,
            Signer::Rsa(pair),
            key.as_bytes().to_vec(),
            DecodingKey::from_rsa_der(&public),
        )
    }

    /// An HS256 shared secret of at least 32 bytes, with an explicit key id.
    ///
    /// # ⚠️ Warning: shared secret
    ///
    /// Every party that can verify an HS256 JWT can also forge one. Prefer Ed25519 unless every
    /// verifier is this service itself. The secret never appears in [`Sessions::jwks`](crate::Sessions::jwks).
    pub fn hs256(kid: impl Into<String>, secret: &[u8]) -> Result<Self, KeyError> {
        if secret.len() < 32 {
            return Err(KeyError::SecretTooShort(secret.len()));
        }
        let kid = kid.into();
        validate_kid(&kid)?;
        let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret);
        Ok(Self {
            signer: Arc::new(Signer::Hmac(Box::new(key.clone()))),
            secret: Arc::new(Zeroizing::new(secret.to_vec())),
            verification: VerificationKey {
                inner: Arc::new(VerificationInner {
                    kid,
                    algorithm: Algorithm::HS256,
                    verifier: Verifier::Hmac(Box::new(key)),
                    jwk: None,
                }),
            },
        })
    }

    /// A fresh Ed25519 key, for development and tests. Instances that must accept each other's
    /// JWTs need the same key: export it with [`to_pkcs8_pem`](Self::to_pkcs8_pem).
    pub fn generate_ed25519() -> Result<Self, KeyError> {
        let doc = sig::Ed25519KeyPair::generate_pkcs8(&aws_lc_rs::rand::SystemRandom::new())
            .map_err(|_| KeyError::Generation)?;
        Self::ed25519_pkcs8(doc.as_ref())
    }

    /// A fresh P-256 key, for development and tests.
    pub fn generate_es256() -> Result<Self, KeyError> {
        let doc = sig::EcdsaKeyPair::generate_pkcs8(
            &sig::ECDSA_P256_SHA256_FIXED_SIGNING,
            &aws_lc_rs::rand::SystemRandom::new(),
        )
        .map_err(|_| KeyError::Generation)?;
        Self::es256_pkcs8(doc.as_ref())
    }

    /// A fresh 2048-bit RSA key, for development and tests (slow: about a second).
    pub fn generate_rs256() -> Result<Self, KeyError> {
        use aws_lc_rs::encoding::AsDer as _;
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .map_err(|_| KeyError::Generation)?;
        let der = pair.as_der().map_err(|_| KeyError::Generation)?;
        let pem = pem::encode(&pem::Pem::new("PRIVATE KEY", der.as_ref().to_vec()));
        Self::rs256_pem(pem.as_bytes())
    }

    fn assemble(
        algorithm: Algorithm,
        signer: Signer,
        secret: Vec<u8>,
        public: DecodingKey,
    ) -> Result<Self, KeyError> {
        Ok(Self {
            signer: Arc::new(signer),
            secret: Arc::new(Zeroizing::new(secret)),
            verification: VerificationKey::from_decoding_key(algorithm, &public)?,
        })
    }

    /// Replaces the key id (default: the public key's RFC 7638 thumbprint).
    pub fn with_kid(mut self, kid: impl Into<String>) -> Result<Self, KeyError> {
        self.verification = self.verification.with_kid(kid)?;
        Ok(self)
    }

    /// The private key as a PKCS#8 `PRIVATE KEY` PEM (`None` for HS256). Treat it as a secret.
    pub fn to_pkcs8_pem(&self) -> Option<String> {
        match &*self.signer {
            Signer::Hmac(_) => None,
            Signer::Rsa(_) => {
                // `secret` holds PKCS#1 for RSA; wrap it as PKCS#8 for a uniform export.
                let pair = aws_lc_rs::rsa::KeyPair::from_der(&self.secret[..]).ok()?;
                use aws_lc_rs::encoding::AsDer as _;
                let der = pair.as_der().ok()?;
                Some(pem::encode(&pem::Pem::new(
                    "PRIVATE KEY",
                    der.as_ref().to_vec(),
                )))
            }
            _ => Some(pem::encode(&pem::Pem::new(
                "PRIVATE KEY",
                self.secret.to_vec(),
            ))),
        }
    }

    /// The key id written in the JWT header.
    pub fn kid(&self) -> &str {
        self.verification.kid()
    }

    /// The key's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.verification.algorithm()
    }

    /// The verification half of this key.
    pub fn verification_key(&self) -> &VerificationKey {
        &self.verification
    }

    pub(crate) fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SignError> {
        Ok(match &*self.signer {
            Signer::Ed25519(pair) => pair.sign(message).as_ref().to_vec(),
            Signer::Ecdsa(pair) => pair
                .sign(&aws_lc_rs::rand::SystemRandom::new(), message)
                .map_err(|_| SignError)?
                .as_ref()
                .to_vec(),
            Signer::Rsa(pair) => {
                let mut out = vec![0; pair.public_modulus_len()];
                pair.sign(
                    &sig::RSA_PKCS1_SHA256,
                    &aws_lc_rs::rand::SystemRandom::new(),
                    message,
                    &mut out,
                )
                .map_err(|_| SignError)?;
                out
            }
            Signer::Hmac(key) => aws_lc_rs::hmac::sign(key, message).as_ref().to_vec(),
        })
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid())
            .field("algorithm", &self.algorithm())
            .field("private_key", &"<redacted>")
            .finish()
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
