//! Reading the payload's JSON without copies: strings borrowed from the decoded payload, and
//! NumericDates in range. Shared by both claim formats.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Visitor};

/// Latest accepted NumericDate: 9999-12-31T23:59:59Z.
pub(super) const MAX_NUMERIC_DATE: i64 = 253_402_300_799;

pub(super) fn numeric_date<E: de::Error>(secs: Option<i64>) -> Result<i64, E> {
    match secs {
        Some(secs) if (0..=MAX_NUMERIC_DATE).contains(&secs) => Ok(secs),
        _ => Err(E::custom("a NumericDate")),
    }
}

/// A JSON string, borrowed from the payload unless it has escapes (serde's own `Cow<str>`
/// always allocates).
pub(super) struct Text<'a>(pub(super) Cow<'a, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(TextVisitor)
    }
}

pub(super) struct TextVisitor;

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
