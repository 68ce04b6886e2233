//! Proof of possession: verifying the signed proofs (JWS) by which a client shows it holds the
//! private key its session is bound to. The proofs of [Device Bound Session
//! Credentials](crate::dbsc) live here; nothing in this layer reads a request or knows a
//! session store.

mod dbsc;

pub(crate) use dbsc::unquote;
pub use dbsc::{DeviceAlgorithm, DeviceKey, MAX_PROOF_LEN, PROOF_TYPE, Proof, ProofError};
