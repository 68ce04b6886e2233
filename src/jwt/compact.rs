//! Format 2's `session` claim (see [`super::claims`]): the session's times on its grid, its
//! factors by type and time, written and read.

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Serialize, Serializer};
use time::OffsetDateTime;

use super::JwtError;
use super::json::{Text, TextVisitor, numeric_date};
use crate::data::session::{
    AuthenticationFactor, MAX_FACTORS, Session, SessionId, default_delivery, is_factor_name,
};

/// The format this version mints (the first element of the `session` claim).
pub(crate) const FORMAT: u8 = 2;

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
    let mut minted = Session {
        attributes: Default::default(),
        device_binding: None,
        jwts_from_version: 0,
        ..session.clone()
    };
    minted.started_at = session.on_grid(session.started_at);
    minted.last_accessed_at = session.on_grid(session.last_accessed_at);
    minted.expires_at = session.on_grid(session.expires_at);
    for factor in &mut minted.authentication_factors {
        factor.last_authenticated_at = session.on_grid(factor.last_authenticated_at);
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

/// Format 2's `session` array as read, its factors already built (their times filled in once
/// `started_at` is known).
pub(super) struct CompactClaim {
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
    pub(super) fn into_session(
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

/// Reads format 2's `session` array (after its opening bracket).
pub(super) fn read<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<CompactClaim, A::Error> {
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
    // Each later element is there only when the one before it is.
    let started_at = next_date(&mut seq, millis.is_some())?;
    let last_accessed_at = next_date(&mut seq, started_at.is_some())?;
    let version = match last_accessed_at {
        Some(_) => seq.next_element()?.unwrap_or(0),
        None => 0,
    };
    if seq.next_element::<IgnoredAny>()?.is_some() {
        return Err(de::Error::custom("too many elements"));
    }
    Ok(CompactClaim {
        expires_at,
        factors,
        at_start,
        millis: millis.unwrap_or(0),
        started_at,
        last_accessed_at,
        version,
    })
}

/// The next element of the array as a NumericDate, if `present` (else the array ended before
/// it).
fn next_date<'de, A: SeqAccess<'de>>(seq: &mut A, present: bool) -> Result<Option<i64>, A::Error> {
    if !present {
        return Ok(None);
    }
    seq.next_element()?
        .map(|secs| numeric_date(Some(secs)))
        .transpose()
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

impl<'a> FactorEntry<'a> {
    /// A factor authenticated when the session started: its name alone.
    fn named(Text(name): Text<'a>) -> Self {
        Self { name, at: None }
    }
}

struct FactorEntryVisitor;

impl<'de> Visitor<'de> for FactorEntryVisitor {
    type Value = FactorEntry<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a factor name, or a name and a time")
    }

    fn visit_borrowed_str<E: de::Error>(self, name: &'de str) -> Result<Self::Value, E> {
        TextVisitor.visit_borrowed_str(name).map(FactorEntry::named)
    }

    fn visit_str<E: de::Error>(self, name: &str) -> Result<Self::Value, E> {
        TextVisitor.visit_str(name).map(FactorEntry::named)
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
