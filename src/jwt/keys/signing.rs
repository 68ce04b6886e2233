//! Signing keys: the key that signs new session JWTs, with its verification half.

use std::fmt;
use std::sync::Arc;

use aws_lc_rs::signature::{self as sig, KeyPair as _};
use jsonwebtoken::{DecodingKey, EncodingKey};
use zeroize::Zeroizing;

use super::{
    Algorithm, KeyError, SignError, Signer, VerificationInner, VerificationKey, Verifier, invalid,
    validate_kid,
};

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
    pub(super) verification: VerificationKey,
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
