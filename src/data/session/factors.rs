//! How the user proved who they are: authentication factors and their limits.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Most distinct authentication factors one session records.
pub const MAX_FACTORS: usize = 8;
/// Longest factor type or delivery method, in bytes.
pub const MAX_FACTOR_NAME_LEN: usize = 32;

/// One way the user proved who they are in a session (Stytch's authentication factor).
///
/// # Example
///
/// ```
/// use tower_session_jwt::session::AuthenticationFactor;
///
/// let otp = AuthenticationFactor::new("otp", "sms", time::OffsetDateTime::now_utc()).unwrap();
/// assert_eq!(otp.factor_type, "otp");
/// assert!(AuthenticationFactor::new("pass word", "x", time::OffsetDateTime::now_utc()).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthenticationFactor {
    /// What kind of factor: `password`, `otp`, `totp`, `magic_link`, `webauthn`, `oauth`, …
    #[serde(rename = "type")]
    pub factor_type: String,
    /// How it was delivered or held: `knowledge`, `sms`, `email`, `authenticator_app`, …
    pub delivery_method: String,
    /// When the user last authenticated with it (RFC 3339 in JSON).
    #[serde(with = "time::serde::rfc3339")]
    pub last_authenticated_at: OffsetDateTime,
}

/// The delivery method usual for `factor_type` (see [`AuthenticationFactor::of_type`]). A
/// session JWT names a factor by its type alone when its delivery method is this one.
pub(crate) fn default_delivery(factor_type: &str) -> &str {
    match factor_type {
        "password" => "knowledge",
        "otp" | "totp" => "authenticator_app",
        "sms_otp" => "sms",
        "email_otp" | "magic_link" => "email",
        "webauthn" | "passkey" => "webauthn_registration",
        other => other,
    }
}

/// Whether `name` may be a factor's type or delivery method (see [`InvalidFactor::Name`]).
pub(crate) fn is_factor_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_FACTOR_NAME_LEN
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Why an authentication factor was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidFactor {
    /// The type or the delivery method is empty, longer than [`MAX_FACTOR_NAME_LEN`] bytes, or
    /// not made of lowercase ASCII letters, digits and `_`.
    #[error(
        "a factor's type and delivery method are 1 to {MAX_FACTOR_NAME_LEN} characters of a-z, 0-9 and _"
    )]
    Name,
    /// The session already records [`MAX_FACTORS`] distinct factors.
    #[error("a session records at most {MAX_FACTORS} distinct authentication factors")]
    TooMany,
}

impl AuthenticationFactor {
    /// A factor authenticated at `at`. Both names are 1 to 32 characters of `a-z`, `0-9`, `_`.
    pub fn new(
        factor_type: impl Into<String>,
        delivery_method: impl Into<String>,
        at: OffsetDateTime,
    ) -> Result<Self, InvalidFactor> {
        let factor = Self {
            factor_type: factor_type.into(),
            delivery_method: delivery_method.into(),
            last_authenticated_at: at,
        };
        factor.validate()?;
        Ok(factor)
    }

    /// A factor of `factor_type` with the delivery method usual for it (`password` →
    /// `knowledge`, `otp`/`totp` → `authenticator_app`, `sms_otp` → `sms`, `email_otp` and
    /// `magic_link` → `email`, `webauthn`/`passkey` → `webauthn_registration`, `oauth` →
    /// `oauth`, anything else → its own type), authenticated at `at`.
    pub fn of_type(factor_type: &str, at: OffsetDateTime) -> Result<Self, InvalidFactor> {
        Self::new(factor_type, default_delivery(factor_type), at)
    }

    /// Checks the names (see [`InvalidFactor::Name`]).
    pub fn validate(&self) -> Result<(), InvalidFactor> {
        if is_factor_name(&self.factor_type) && is_factor_name(&self.delivery_method) {
            Ok(())
        } else {
            Err(InvalidFactor::Name)
        }
    }

    /// RFC 8176 values for this factor.
    pub(super) fn amr_values(&self) -> Vec<&str> {
        let by_type = match self.factor_type.as_str() {
            "password" => "pwd",
            "otp" | "totp" | "sms_otp" | "email_otp" => "otp",
            "webauthn" | "passkey" => "hwk",
            other => other,
        };
        let mut values = vec![by_type];
        match self.delivery_method.as_str() {
            "sms" => values.push("sms"),
            "voice" => values.push("tel"),
            _ => {}
        }
        values
    }
}
