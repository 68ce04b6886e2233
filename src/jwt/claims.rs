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

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::JwtError;
use crate::data::session::{
    AuthenticationFactor, MAX_FACTORS, Session, SessionAttributes, SessionId, default_delivery,
    is_factor_name,
};

/// Latest accepted NumericDate: 9999-12-31T23:59:59Z.
const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

/// The format this version mints (the first element of the `session` claim).
pub(crate) const FORMAT: u8 = 2;

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

/// The `session` claim of format 2: what a handler needs besides id, user and custom claims.
///
/// The session's attributes (the client's IP address and user agent) are not minted: a JWT is
/// readable by anyone who sees it, and they would only make the cookie larger.
pub(crate) struct CompactSession<'a> {
    pub(crate) session: &'a Session,
    /// The JWT's `iat`, which the times equal to it are left out for.
    pub(crate) iat: i64,
}

impl Serialize for CompactSession<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let session = self.session;
        let grid = Grid::of(session);
        let started = grid.seconds(session.started_at);
        let last = grid.seconds(session.last_accessed_at);
        let len = if session.version != 0 {
            7
        } else if last != self.iat {
            6
        } else if started != self.iat {
            5
        } else if grid.millis != 0 {
            4
        } else {
            3
        };
        let mut seq = serializer.serialize_seq(Some(len))?;
        seq.serialize_element(&FORMAT)?;
        seq.serialize_element(&grid.seconds(session.expires_at))?;
        seq.serialize_element(&Factors {
            factors: &session.authentication_factors,
            started,
            grid,
        })?;
        if len > 3 {
            seq.serialize_element(&grid.millis)?;
        }
        if len > 4 {
            seq.serialize_element(&started)?;
        }
        if len > 5 {
            seq.serialize_element(&last)?;
        }
        if len > 6 {
            seq.serialize_element(&session.version)?;
        }
        seq.end()
    }
}

/// The session's time grid as a JWT carries it: every time as the whole second below it
/// (less the start's milliseconds), and those milliseconds once. Exact for every time on the
/// grid, which is every time the engine records (see `Session::on_grid`); a record built
/// otherwise reads back with each time at or below what it was, within a second.
#[derive(Clone, Copy)]
struct Grid {
    millis: u16,
}

impl Grid {
    fn of(session: &Session) -> Self {
        Self {
            millis: session.started_at.millisecond(),
        }
    }

    fn fraction(self) -> time::Duration {
        time::Duration::milliseconds(i64::from(self.millis))
    }

    fn seconds(self, at: OffsetDateTime) -> i64 {
        (at - self.fraction()).unix_timestamp()
    }

    fn time(self, seconds: i64) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp(seconds)
            .ok()
            .map(|second| second + self.fraction())
    }
}

/// `session` as a JWT minted for it carries it, and any instance reads it back: without the
/// attributes, the device binding and the version from which JWTs are accepted (the store's
/// bookkeeping, never minted), its times on its grid (the identity for every time the engine
/// records).
pub(crate) fn as_minted(session: &Session) -> Session {
    let fraction = Grid::of(session).fraction();
    let grid = |t| crate::data::session::on_grid_of(t, fraction);
    let mut minted = Session {
        attributes: Default::default(),
        device_binding: None,
        jwts_from_version: 0,
        ..session.clone()
    };
    minted.started_at = grid(minted.started_at);
    minted.last_accessed_at = grid(minted.last_accessed_at);
    minted.expires_at = grid(minted.expires_at);
    for factor in &mut minted.authentication_factors {
        factor.last_authenticated_at = grid(factor.last_authenticated_at);
    }
    minted
}

struct Factors<'a> {
    factors: &'a [AuthenticationFactor],
    started: i64,
    grid: Grid,
}

impl Serialize for Factors<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(self.factors.len()))?;
        for factor in self.factors {
            let at = self.grid.seconds(factor.last_authenticated_at);
            if at == self.started {
                seq.serialize_element(&FactorName(factor))?;
            } else {
                seq.serialize_element(&(FactorName(factor), at))?;
            }
        }
        seq.end()
    }
}

/// `type`, or `type:delivery` when the delivery method is not the type's usual one.
struct FactorName<'a>(&'a AuthenticationFactor);

impl Serialize for FactorName<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl fmt::Display for FactorName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let factor = self.0;
        f.write_str(&factor.factor_type)?;
        if factor.delivery_method != default_delivery(&factor.factor_type) {
            f.write_str(":")?;
            f.write_str(&factor.delivery_method)?;
        }
        Ok(())
    }
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
    Compact(CompactClaim),
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

/// Format 2's `session` array as read, its factors already built (their times filled in once
/// `started_at` is known).
struct CompactClaim {
    expires_at: i64,
    factors: Vec<AuthenticationFactor>,
    /// Bit `i`: factor `i` was authenticated when the session started.
    at_start: u16,
    /// The start's milliseconds, which every time of the session shares.
    millis: u16,
    started_at: Option<i64>,
    last_accessed_at: Option<i64>,
    version: u64,
}

impl CompactClaim {
    fn into_session(
        mut self,
        session_id: SessionId,
        user_id: String,
        iat: i64,
    ) -> Result<Session, JwtError> {
        let grid = Grid {
            millis: self.millis,
        };
        let date = |secs: i64| grid.time(secs).ok_or(JwtError::InvalidClaim("session"));
        let started_at = date(self.started_at.unwrap_or(iat))?;
        for (i, factor) in self.factors.iter_mut().enumerate() {
            factor.last_authenticated_at = if self.at_start & (1 << i) != 0 {
                started_at
            } else {
                // Read as a whole second: put on the grid.
                factor.last_authenticated_at + grid.fraction()
            };
        }
        Ok(
            Session::new(session_id, user_id, started_at, date(self.expires_at)?)
                .with_last_accessed_at(date(self.last_accessed_at.unwrap_or(iat))?)
                .with_authentication_factors(self.factors)
                .with_version(self.version),
        )
    }
}

/// Reads either form of the `session` claim.
struct SessionClaimSeed;

impl<'de> DeserializeSeed<'de> for SessionClaimSeed {
    type Value = SessionClaim;
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

fn numeric_date<E: de::Error>(secs: Option<i64>) -> Result<i64, E> {
    match secs {
        Some(secs) if (0..=MAX_NUMERIC_DATE).contains(&secs) => Ok(secs),
        _ => Err(E::custom("a NumericDate")),
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

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let format: Option<u8> = seq.next_element()?;
        if format != Some(FORMAT) {
            return Err(de::Error::custom("an unknown session JWT format"));
        }
        let expires_at = numeric_date(seq.next_element()?)?;
        let (factors, at_start) = seq
            .next_element_seed(FactorsSeed)?
            .ok_or_else(|| de::Error::custom("factors"))?;
        let millis: Option<u16> = seq.next_element()?;
        if millis.is_some_and(|m| m > 999) {
            return Err(de::Error::custom("milliseconds"));
        }
        let started_at = match millis {
            Some(_) => seq
                .next_element()?
                .map(|s| numeric_date(Some(s)))
                .transpose()?,
            None => None,
        };
        let last_accessed_at = match started_at {
            Some(_) => seq
                .next_element()?
                .map(|s| numeric_date(Some(s)))
                .transpose()?,
            None => None,
        };
        let version = match last_accessed_at {
            Some(_) => seq.next_element()?.unwrap_or(0),
            None => 0,
        };
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("too many elements"));
        }
        Ok(SessionClaim::Compact(CompactClaim {
            expires_at,
            factors,
            at_start,
            millis: millis.unwrap_or(0),
            started_at,
            last_accessed_at,
            version,
        }))
    }
}

/// Format 2's factor list: each `name` or `[name, time]`, at most [`MAX_FACTORS`].
struct FactorsSeed;

impl<'de> DeserializeSeed<'de> for FactorsSeed {
    type Value = (Vec<AuthenticationFactor>, u16);
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FactorsSeed {
    type Value = (Vec<AuthenticationFactor>, u16);

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of authentication factors")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut factors = Vec::new();
        let mut at_start = 0u16;
        while let Some(entry) = seq.next_element::<FactorEntry<'de>>()? {
            if factors.len() >= MAX_FACTORS {
                return Err(de::Error::custom("too many factors"));
            }
            let (factor_type, delivery) = match entry.name.split_once(':') {
                Some((factor_type, delivery)) => (factor_type, delivery),
                None => (&*entry.name, default_delivery(&entry.name)),
            };
            if !is_factor_name(factor_type) || !is_factor_name(delivery) {
                return Err(de::Error::custom("a factor name"));
            }
            let at = match entry.at {
                Some(at) => OffsetDateTime::from_unix_timestamp(numeric_date(Some(at))?)
                    .map_err(de::Error::custom)?,
                None => {
                    at_start |= 1 << factors.len();
                    OffsetDateTime::UNIX_EPOCH
                }
            };
            factors.push(AuthenticationFactor {
                factor_type: factor_type.to_owned(),
                delivery_method: delivery.to_owned(),
                last_authenticated_at: at,
            });
        }
        // The session keeps this vector for as long as it is cached: no spare capacity.
        factors.shrink_to_fit();
        Ok((factors, at_start))
    }
}

/// One factor of format 2: `name` or `[name, time]`.
struct FactorEntry<'a> {
    name: Cow<'a, str>,
    at: Option<i64>,
}

impl<'de> Deserialize<'de> for FactorEntry<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FactorEntryVisitor)
    }
}

struct FactorEntryVisitor;

impl<'de> Visitor<'de> for FactorEntryVisitor {
    type Value = FactorEntry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a factor name, or a name and a time")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        Ok(FactorEntry {
            name: Cow::Borrowed(name),
            at: None,
        })
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        Ok(FactorEntry {
            name: Cow::Owned(name.to_owned()),
            at: None,
        })
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let Text(name) = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("a factor name"))?;
        let at: i64 = seq
            .next_element()?
            .ok_or_else(|| de::Error::custom("a factor time"))?;
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("too many elements"));
        }
        Ok(FactorEntry { name, at: Some(at) })
    }
}

/// A JSON string, borrowed from the payload unless it has escapes (serde's own `Cow<str>`
/// always allocates).
struct Text<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

struct TextVisitor;

impl<'de> Visitor<'de> for TextVisitor {
    type Value = Text<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, text: &'de str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Borrowed(text)))
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Text(Cow::Owned(text.to_owned())))
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
