//! Custom claims: the names they may not take and the size cap.

use serde::Serialize;
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
#[non_exhaustive]
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
    /// The claims serialize to a JSON value other than an object.
    #[error("custom claims must serialize to a JSON object, not {found}")]
    NotAnObject {
        /// What they serialize to: `null`, a boolean, a number, a string or an array.
        found: &'static str,
    },
    /// The claims' `Serialize` implementation failed (say, a map with keys that are not
    /// strings); the message is serde's.
    #[error("custom claims could not be serialized: {0}")]
    Unserializable(String),
}

/// The JSON object `claims` serialize to, unchecked otherwise (see [`validate_custom_claims`]).
pub(crate) fn claims_object(
    claims: impl Serialize,
) -> Result<Map<String, Value>, CustomClaimsError> {
    let found = match serde_json::to_value(claims) {
        Ok(Value::Object(map)) => return Ok(map),
        Ok(Value::Null) => "null",
        Ok(Value::Bool(_)) => "a boolean",
        Ok(Value::Number(_)) => "a number",
        Ok(Value::String(_)) => "a string",
        Ok(Value::Array(_)) => "an array",
        Err(e) => return Err(CustomClaimsError::Unserializable(e.to_string())),
    };
    Err(CustomClaimsError::NotAnObject { found })
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

    #[test]
    fn claims_must_serialize_to_an_object() {
        #[derive(Serialize)]
        struct Claims {
            role: &'static str,
            trial: Option<bool>,
        }
        let typed = claims_object(Claims {
            role: "admin",
            trial: None,
        })
        .unwrap();
        assert_eq!(
            Value::Object(typed),
            json!({"role": "admin", "trial": null})
        );
        let map = json!({"org": {"id": 7}}).as_object().unwrap().clone();
        assert_eq!(claims_object(&map), Ok(map));
        for (value, found) in [
            (json!(null), "null"),
            (json!(true), "a boolean"),
            (json!(7), "a number"),
            (json!("admin"), "a string"),
            (json!(["admin"]), "an array"),
        ] {
            assert_eq!(
                claims_object(value),
                Err(CustomClaimsError::NotAnObject { found })
            );
        }
        let bad_keys = std::collections::BTreeMap::from([((1, 2), "x")]);
        assert!(matches!(
            claims_object(bad_keys),
            Err(CustomClaimsError::Unserializable(_))
        ));
    }
}
