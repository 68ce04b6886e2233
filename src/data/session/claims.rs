//! Custom claims: the names they may not take and the size cap.

use serde_json::{Map, Value};

/// Largest accepted custom claims object, serialized as JSON, in bytes.
pub const MAX_CUSTOM_CLAIMS_BYTES: usize = 4096;

/// Claim names custom claims may not take: every name the session JWT writes at its top level
/// (`iss`, `sub`, `aud`, `exp`, `nbf`, `iat`, `sid`, `session`, `amr`, `auth_time`), the
/// session's own `version` (a verifier must never read an application's claim as the session
/// version a JWT was minted for), and the registered names whose meaning a verifier may act on
/// (RFC 7519 `jti`, RFC 7800 `cnf`, RFC 8693 `act` and `scope`, OpenID Connect `acr`, `azp`,
/// `nonce`). A custom claim of one of these names is refused with
/// [`CustomClaimsError::Reserved`], by [`create`](crate::Sessions::create) and every change.
pub const RESERVED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "nbf",
    "iat",
    "jti",
    "sid",
    "session",
    "cnf",
    "act",
    "scope",
    "acr",
    "amr",
    "auth_time",
    "azp",
    "nonce",
    "version",
];

/// Why a set of custom claims was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CustomClaimsError {
    /// A custom claim took a name the session JWT uses itself.
    #[error("custom claim `{0}` is reserved")]
    Reserved(String),
    /// The claims are larger than [`MAX_CUSTOM_CLAIMS_BYTES`] as JSON.
    #[error("custom claims are {size} bytes as JSON; the limit is {max}")]
    TooLarge {
        /// Size of the claims as JSON.
        size: usize,
        /// The limit.
        max: usize,
    },
}

/// Checks custom claims against the reserved names and the size cap.
pub fn validate_custom_claims(claims: &Map<String, Value>) -> Result<(), CustomClaimsError> {
    if let Some(name) = claims
        .keys()
        .find(|k| RESERVED_CLAIMS.contains(&k.as_str()))
    {
        return Err(CustomClaimsError::Reserved(name.clone()));
    }
    let size = serde_json::to_vec(claims)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_CUSTOM_CLAIMS_BYTES {
        return Err(CustomClaimsError::TooLarge {
            size,
            max: MAX_CUSTOM_CLAIMS_BYTES,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reserved_claims_are_refused() {
        for name in RESERVED_CLAIMS {
            let claims = json!({ *name: 1 }).as_object().unwrap().clone();
            assert_eq!(
                validate_custom_claims(&claims),
                Err(CustomClaimsError::Reserved((*name).to_owned()))
            );
        }
        let ok = json!({"role": "admin", "org": {"id": 7}});
        assert!(validate_custom_claims(ok.as_object().unwrap()).is_ok());
    }

    #[test]
    fn oversized_claims_are_refused() {
        let claims = json!({"blob": "x".repeat(MAX_CUSTOM_CLAIMS_BYTES)});
        assert!(matches!(
            validate_custom_claims(claims.as_object().unwrap()),
            Err(CustomClaimsError::TooLarge { .. })
        ));
    }
}
