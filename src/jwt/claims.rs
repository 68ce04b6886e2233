//! The session JWT's payload: written with serde, read with a strict hand-written visitor so that
//! every malformed, missing, mistyped or duplicated claim has its own typed error.
//!
//! # Format 2 (minted since 0.2)
//!
//! ```json
//! {"iss":"…","aud":"…","sub":"alice","sid":"session-…","iat":1765152000,"exp":1765152300,
//!  "session":[2,1765756800,["password"],712],"role":"admin"}
//! ```
//!
//! The registered claims say what they always said (`iat` and `exp` are NumericDate integers);
//! `nbf` is not written (it would repeat `iat`), nor are `amr` and `auth_time` (they repeat the
//! factors; [`Session::amr`] and [`Session::auth_time`] derive them). The `session` claim is an
//! array: the format (`2`), the session's `expires_at`, its factors, then the milliseconds of
//! its start, `started_at`, `last_accessed_at` and `version`, each left out from the end while
//! it says nothing new (milliseconds 0, `started_at` and `last_accessed_at` in `iat`'s second,
//! `version` 0). A factor is its type (`"password"`), or `"type:delivery"` when its delivery
//! method is not the type's usual one, and stands alone when it was authenticated when the
//! session started, else as `[name, time]`.
//!
//! Every time is a NumericDate integer: the whole second below it less the start's
//! milliseconds, which every time the engine records shares (a session starts at a millisecond
//! and records its later times whole seconds after it), so a session reads back from its JWT
//! exactly as the store holds it. Custom claims sit at the top level, as before.
//!
//! # Format 1 (0.1)
//!
//! `nbf`, `amr`, `auth_time` and a `session` object of RFC 3339 strings
//! (`started_at`, `last_accessed_at`, `expires_at`, `authentication_factors`, `version`). Still
//! read, so that JWTs minted by 0.1 instances during a rolling upgrade work until they expire.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::JwtError;
use super::compact::{self, CompactSession};
use super::json::{MAX_NUMERIC_DATE, Text};
use crate::data::session::{AuthenticationFactor, Session, SessionAttributes, SessionId};

/// The claims written into a session JWT (format 2).
#[derive(Serialize)]
pub(crate) struct MintClaims<'a> {
    pub(crate) iss: &'a str,
    pub(crate) aud: &'a str,
    pub(crate) sub: &'a str,
    pub(crate) sid: &'a str,
    pub(crate) iat: i64,
    pub(crate) exp: i64,
    pub(crate) session: CompactSession<'a>,
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
    let Text(iss) = raw.iss.ok_or(JwtError::MissingClaim("iss"))?;
    let Text(aud) = raw.aud.ok_or(JwtError::MissingClaim("aud"))?;
    let Text(sub) = raw.sub.ok_or(JwtError::MissingClaim("sub"))?;
    let Text(sid) = raw.sid.ok_or(JwtError::MissingClaim("sid"))?;
    let iat = raw.iat.ok_or(JwtError::MissingClaim("iat"))?;
    let claim = raw.session.ok_or(JwtError::MissingClaim("session"))?;
    let nbf = match (&claim, raw.nbf) {
        (_, Some(nbf)) => nbf,
        // Format 2 leaves it out: it was `iat`.
        (SessionClaim::Compact(_), None) => iat,
        (SessionClaim::Full(_), None) => return Err(JwtError::MissingClaim("nbf")),
    };
    let exp = raw.exp.ok_or(JwtError::MissingClaim("exp"))?;
    if sub.is_empty() || sub.len() > crate::data::session::MAX_USER_ID_LEN {
        return Err(JwtError::InvalidClaim("sub"));
    }
    let session_id = SessionId::parse(&sid).map_err(|_| JwtError::InvalidClaim("sid"))?;
    let session = match claim {
        SessionClaim::Full(claim) => {
            Session::new(session_id, sub, claim.started_at, claim.expires_at)
                .with_last_accessed_at(claim.last_accessed_at)
                .with_attributes(claim.attributes)
                .with_authentication_factors(claim.authentication_factors)
                .with_version(claim.version)
        }
        SessionClaim::Compact(claim) => claim.into_session(session_id, sub.into_owned(), iat)?,
    };
    Ok(ParsedClaims {
        iss,
        aud,
        iat,
        nbf,
        exp,
        session: session.with_custom_claims(raw.custom),
    })
}

/// The `session` claim as read: format 1's object or format 2's array.
enum SessionClaim {
    Full(FullSessionClaim),
    Compact(compact::CompactClaim),
}

/// Format 1's nested `session` object; unknown fields are refused.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FullSessionClaim {
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
    /// Minted by versions before 0.1's last.
    #[serde(default)]
    attributes: SessionAttributes,
}

/// Reads either form of the `session` claim.
struct SessionClaimSeed;

impl<'de> DeserializeSeed<'de> for SessionClaimSeed {
    type Value = SessionClaim;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for SessionClaimSeed {
    type Value = SessionClaim;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session claim")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        FullSessionClaim::deserialize(de::value::MapAccessDeserializer::new(map))
            .map(SessionClaim::Full)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        compact::read(seq).map(SessionClaim::Compact)
    }
}

#[derive(Default)]
struct RawClaims<'a> {
    iss: Option<Text<'a>>,
    aud: Option<Text<'a>>,
    sub: Option<Text<'a>>,
    sid: Option<Text<'a>>,
    iat: Option<i64>,
    nbf: Option<i64>,
    exp: Option<i64>,
    session: Option<SessionClaim>,
    amr: Option<Vec<Cow<'a, str>>>,
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
        while let Some(Text(key)) = map.next_key::<Text<'de>>()? {
            macro_rules! take_with {
                ($field:ident, $name:literal, $next:expr) => {{
                    if raw.$field.is_some() {
                        return fail(typed, JwtError::DuplicateClaim($name.to_owned()));
                    }
                    match $next {
                        Ok(v) => raw.$field = Some(v),
                        Err(e) => {
                            // Keep serde's error: it says whether the JSON itself was broken.
                            *typed = Some(JwtError::InvalidClaim($name));
                            return Err(e);
                        }
                    }
                }};
            }
            macro_rules! take {
                ($field:ident, $name:literal, $ty:ty) => {
                    take_with!($field, $name, map.next_value::<$ty>())
                };
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
                "iss" => take!(iss, "iss", Text<'de>),
                "aud" => take!(aud, "aud", Text<'de>),
                "sub" => take!(sub, "sub", Text<'de>),
                "sid" => take!(sid, "sid", Text<'de>),
                "iat" => take_date!(iat, "iat"),
                "nbf" => take_date!(nbf, "nbf"),
                "exp" => take_date!(exp, "exp"),
                "session" => take_with!(session, "session", map.next_value_seed(SessionClaimSeed)),
                // Format 1 derived them from the session's factors, which the `session` claim
                // carries: read (so they are typed and never taken for custom claims) and not
                // used.
                "amr" => take!(amr, "amr", Vec<Cow<'de, str>>),
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
