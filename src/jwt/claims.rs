//! The session JWT's payload: written with serde, read with a strict hand-written visitor so that
//! every malformed, missing, mistyped or duplicated claim has its own typed error.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::JwtError;
use crate::data::session::{AuthenticationFactor, Session, SessionAttributes, SessionId};

/// Latest accepted NumericDate: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// The nested `session` claim as minted: what a handler needs besides id and user.
///
/// The session's attributes (the client's IP address and user agent) are not minted: a JWT is
/// readable by anyone who sees it, and they would only make the cookie larger.
#[derive(Serialize)]
pub(crate) struct SessionClaimRef<'a> {
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) last_accessed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub(crate) expires_at: OffsetDateTime,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub(crate) authentication_factors: &'a [AuthenticationFactor],
    /// The session version the JWT was minted for: a change that refuses older JWTs names the
    /// version from which JWTs are accepted again.
    #[serde(skip_serializing_if = "is_zero")]
    pub(crate) version: u64,
}

fn is_zero(version: &u64) -> bool {
    *version == 0
}

/// The nested `session` claim as read; unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionClaim {
    #[serde(with = "time::serde::rfc3339")]
    started_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_accessed_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    expires_at: OffsetDateTime,
    #[serde(default)]
    authentication_factors: Vec<AuthenticationFactor>,
    #[serde(default)]
    version: u64,
    /// Minted by earlier versions only.
    #[serde(default)]
    attributes: SessionAttributes,
}

/// The claims written into a session JWT.
#[derive(Serialize)]
pub(crate) struct MintClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) sid: &'a str,
    pub(crate) iat: i64,
    pub(crate) nbf: i64,
    pub(crate) exp: i64,
    /// RFC 8176 authentication methods (absent when the session records no factor).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) amr: Vec<String>,
    /// OpenID Connect `auth_time`: when the user last authenticated, Unix seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) auth_time: Option<i64>,
    pub(crate) session: SessionClaimRef<'a>,
    #[serde(flatten)]
    pub(crate) custom: &'a Map<String, Value>,
}

/// Claims as read, before validation against configuration and time.
pub(crate) struct ParsedClaims<'a> {
    pub(crate) iss: Cow<'a, str>,
    pub(crate) aud: Cow<'a, str>,
    pub(crate) iat: i64,
    pub(crate) nbf: i64,
    pub(crate) exp: i64,
    pub(crate) session: Session,
}

pub(crate) fn parse(payload: &[u8]) -> Result<ParsedClaims<'_>, JwtError> {
    let mut typed = None;
    let mut de = serde_json::Deserializer::from_slice(payload);
    let raw = ClaimsSeed { typed: &mut typed }.deserialize(&mut de);
    let raw = match (raw, de.end()) {
        (Ok(raw), Ok(())) => raw,
        // Broken JSON is malformed whatever claim it broke in; otherwise a recorded typed error
        // is more precise than serde's message.
        (Err(e), _) if e.is_syntax() || e.is_eof() => return Err(JwtError::Malformed),
        _ => return Err(typed.unwrap_or(JwtError::Malformed)),
    };
    let iss = raw.iss.ok_or(JwtError::MissingClaim("iss"))?;
    let aud = raw.aud.ok_or(JwtError::MissingClaim("aud"))?;
    let sub = raw.sub.ok_or(JwtError::MissingClaim("sub"))?;
    let sid = raw.sid.ok_or(JwtError::MissingClaim("sid"))?;
    let iat = raw.iat.ok_or(JwtError::MissingClaim("iat"))?;
    let nbf = raw.nbf.ok_or(JwtError::MissingClaim("nbf"))?;
    let exp = raw.exp.ok_or(JwtError::MissingClaim("exp"))?;
    let claim = raw.session.ok_or(JwtError::MissingClaim("session"))?;
    if sub.is_empty() || sub.len() > crate::data::session::MAX_USER_ID_LEN {
        return Err(JwtError::InvalidClaim("sub"));
    }
    let session_id = SessionId::parse(&sid).map_err(|_| JwtError::InvalidClaim("sid"))?;
    Ok(ParsedClaims {
        iss,
        aud,
        iat,
        nbf,
        exp,
        session: Session::new(session_id, sub, claim.started_at, claim.expires_at)
            .with_last_accessed_at(claim.last_accessed_at)
            .with_attributes(claim.attributes)
            .with_custom_claims(raw.custom)
            .with_authentication_factors(claim.authentication_factors)
            .with_version(claim.version),
    })
}

#[derive(Default)]
struct RawClaims<'a> {
    iss: Option<Cow<'a, str>>,
    aud: Option<Cow<'a, str>>,
    sub: Option<Cow<'a, str>>,
    sid: Option<Cow<'a, str>>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    session: Option<SessionClaim>,
    amr: Option<Vec<String>>,
    auth_time: Option<i64>,
    custom: Map<String, Value>,
}

struct ClaimsSeed<'t> {
    typed: &'t mut Option<JwtError>,
}

impl<'de> DeserializeSeed<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsSeed<'_> {
    type Value = RawClaims<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JWT claims object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let typed = self.typed;
        let mut raw = RawClaims::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            macro_rules! take {
                ($field:ident, $name:literal, $ty:ty) => {{
                    if raw.$field.is_some() {
                        return fail(typed, JwtError::DuplicateClaim($name.to_owned()));
                    }
                    match map.next_value::<$ty>() {
                        Ok(v) => raw.$field = Some(v),
                        Err(e) => {
                            // Keep serde's error: it says whether the JSON itself was broken.
                            *typed = Some(JwtError::InvalidClaim($name));
                            return Err(e);
                        }
                    }
                }};
            }
            macro_rules! take_date {
                ($field:ident, $name:literal) => {{
                    take!($field, $name, i64);
                    if !(0..=MAX_NUMERIC_DATE).contains(&raw.$field.unwrap_or(-1)) {
                        return fail(typed, JwtError::InvalidClaim($name));
                    }
                }};
            }
            match key.as_ref() {
                "iss" => take!(iss, "iss", Cow<'de, str>),
                "aud" => take!(aud, "aud", Cow<'de, str>),
                "sub" => take!(sub, "sub", Cow<'de, str>),
                "sid" => take!(sid, "sid", Cow<'de, str>),
                "iat" => take_date!(iat, "iat"),
                "nbf" => take_date!(nbf, "nbf"),
                "exp" => take_date!(exp, "exp"),
                "session" => take!(session, "session", SessionClaim),
                // Derived from the session's factors, which the `session` claim carries: read
                // (so they are typed and never taken for custom claims) and not used.
                "amr" => take!(amr, "amr", Vec<String>),
                "auth_time" => take_date!(auth_time, "auth_time"),
                _ => {
                    let value: Value = map.next_value()?;
                    let name = key.into_owned();
                    if raw.custom.contains_key(&name) {
                        return fail(typed, JwtError::DuplicateClaim(name));
                    }
                    raw.custom.insert(name, value);
                }
            }
        }
        Ok(raw)
    }
}

fn fail<T, E: de::Error>(slot: &mut Option<JwtError>, error: JwtError) -> Result<T, E> {
    let message = error.to_string();
    *slot = Some(error);
    Err(E::custom(message))
}
