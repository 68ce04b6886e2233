//! Verification keys: the public half (or HMAC secret) that checks session JWTs.

use std::fmt;
use std::sync::Arc;

use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::{Jwk, PublicKeyUse};

use super::{
    Algorithm, KeyError, SigningKey, Verifier, invalid, rsa_public_key_der, thumbprint,
    validate_kid,
};

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

    pub(super) fn from_decoding_key(
        algorithm: Algorithm,
        key: &DecodingKey,
    ) -> Result<Self, KeyError> {
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

impl fmt::Debug for VerificationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VerificationKey")
            .field("kid", &self.inner.kid)
            .field("algorithm", &self.inner.algorithm)
            .finish_non_exhaustive()
    }
}
