//! A device key pair for the device-binding (DBSC) tests, signing proofs as a browser would.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};

/// A device key pair, as a browser would hold one.
pub enum Device {
    Es(EcdsaKeyPair),
    Rs(RsaKeyPair),
}

impl Device {
    pub fn es256() -> Self {
        Device::Es(EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap())
    }

    pub fn rs256() -> Self {
        Device::Rs(RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Device::Es(_) => "ES256",
            Device::Rs(_) => "RS256",
        }
    }

    pub fn jwk(&self) -> Value {
        match self {
            Device::Es(key) => {
                let point = key.public_key().as_ref();
                json!({
                    "kty": "EC",
                    "crv": "P-256",
                    "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                    "y": URL_SAFE_NO_PAD.encode(&point[33..65]),
                })
            }
            Device::Rs(key) => {
                let public: PublicKeyComponents<Vec<u8>> = key.public_key().into();
                json!({
                    "kty": "RSA",
                    "n": URL_SAFE_NO_PAD.encode(&public.n),
                    "e": URL_SAFE_NO_PAD.encode(&public.e),
                })
            }
        }
    }

    pub fn sign(&self, input: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match self {
            Device::Es(key) => key.sign(&rng, input).unwrap().as_ref().to_vec(),
            Device::Rs(key) => {
                let mut signature = vec![0; key.public_modulus_len()];
                key.sign(&RSA_PKCS1_SHA256, &rng, input, &mut signature)
                    .unwrap();
                signature
            }
        }
    }

    /// A compact JWS of `header` and `payload`, signed with this key.
    pub fn jws(&self, header: Value, payload: Value) -> String {
        let input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload.to_string())
        );
        let signature = self.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    /// A registration proof as Chromium 156 sends it: the JWK in the header.
    pub fn registration(&self, challenge: &str, authorization: &str) -> String {
        self.jws(
            json!({"alg": self.alg(), "typ": "dbsc+jwt", "jwk": self.jwk()}),
            json!({"jti": challenge, "authorization": authorization}),
        )
    }

    /// A refresh proof: the challenge only.
    pub fn refresh(&self, challenge: &str) -> String {
        self.jws(
            json!({"alg": self.alg(), "typ": "dbsc+jwt"}),
            json!({"jti": challenge}),
        )
    }
}
