//! Reading credentials from a request and writing the session cookies (RFC 6265, through the
//! `cookie` crate).

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};
use time::OffsetDateTime;

use crate::config::{CookieConfig, Settings};
use crate::error::AuthError;
use crate::jwt::SessionJwt;
use crate::token::SessionToken;

/// Largest `Cookie` or `Authorization` header value examined, in bytes.
pub const MAX_CREDENTIAL_HEADER_LEN: usize = 16 * 1024;

/// The credentials a request presented, borrowed from its headers.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Credentials<'a> {
    pub(crate) jwt: Option<&'a str>,
    pub(crate) token: Option<&'a str>,
}

impl Credentials<'_> {
    pub(crate) fn is_empty(&self) -> bool {
        self.jwt.is_none() && self.token.is_none()
    }
}

/// Records `value` in `slot`; a second, different value is a conflict.
fn put<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Result<(), AuthError> {
    match slot {
        Some(existing) if *existing != value => Err(AuthError::ConflictingCredentials),
        _ => {
            *slot = Some(value);
            Ok(())
        }
    }
}

/// Finds the session JWT and opaque token in the cookies and `Authorization: Bearer`.
///
/// Query strings are never read. Duplicates that disagree (two cookies, or cookie and header)
/// are refused. A bearer credential with two dots is a JWT; anything else is an opaque token.
pub(crate) fn extract<'a>(
    headers: &'a HeaderMap,
    settings: &Settings,
) -> Result<Credentials<'a>, AuthError> {
    let mut found = Credentials::default();
    for value in headers.get_all(COOKIE) {
        if value.len() > MAX_CREDENTIAL_HEADER_LEN {
            return Err(AuthError::CredentialTooLarge);
        }
        // Pairs are read one by one, so a byte that is not UTF-8 in someone else's cookie
        // hides only that cookie, never ours (whose values are always base64url).
        for pair in value.as_bytes().split(|b| *b == b';') {
            let Ok(pair) = std::str::from_utf8(pair) else {
                continue;
            };
            let Ok(cookie) = cookie::Cookie::parse(pair) else {
                continue;
            };
            let (name, value) = cookie.name_value_trimmed();
            if name == settings.jwt_cookie {
                put(&mut found.jwt, borrowed(pair, value))?;
            } else if name == settings.token_cookie {
                put(&mut found.token, borrowed(pair, value))?;
            }
        }
    }
    let mut authorization = headers.get_all(AUTHORIZATION).iter();
    if let Some(value) = authorization.next() {
        if authorization.next().is_some() {
            return Err(AuthError::ConflictingCredentials);
        }
        if value.len() > MAX_CREDENTIAL_HEADER_LEN {
            return Err(AuthError::CredentialTooLarge);
        }
        if let Some(bearer) = bearer(value) {
            if bearer.is_jwt {
                put(&mut found.jwt, bearer.credential)?;
            } else {
                put(&mut found.token, bearer.credential)?;
            }
        }
    }
    Ok(found)
}

/// Bytes allowed in an RFC 6750 `b64token` (without the trailing `=` padding, which no
/// credential of this crate carries).
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// A bearer credential and whether it has the two dots of a compact JWT.
struct Bearer<'a> {
    credential: &'a str,
    is_jwt: bool,
}

/// The credential of `Authorization: Bearer <credential>` (scheme case-insensitive, RFC 6750
/// `b64token` characters only), read in one pass over the bytes; `None` for other schemes or
/// malformed values.
fn bearer(value: &HeaderValue) -> Option<Bearer<'_>> {
    let bytes = value.as_bytes();
    let scheme = bytes.get(..7)?;
    if !scheme.eq_ignore_ascii_case(b"bearer ") {
        return None;
    }
    let rest = &bytes[7..];
    let start = rest.iter().position(|b| *b != b' ')?;
    let end = rest.iter().rposition(|b| *b != b' ')? + 1;
    let credential = &rest[start..end];
    let mut dots = 0usize;
    for &b in credential {
        if !B64TOKEN[b as usize] {
            return None;
        }
        dots += usize::from(b == b'.');
    }
    // Every byte is ASCII, so this cannot fail.
    let credential = std::str::from_utf8(credential).ok()?;
    Some(Bearer {
        credential,
        is_jwt: dots == 2,
    })
}

/// `value` as a slice of `text` (the cookie crate hands back a slice of its input).
fn borrowed<'a>(text: &'a str, value: &str) -> &'a str {
    let start = value.as_ptr() as usize - text.as_ptr() as usize;
    &text[start..start + value.len()]
}

fn cookie_header(
    cookies: &CookieConfig,
    name: &str,
    value: &str,
    max_age: time::Duration,
    expires: Option<OffsetDateTime>,
) -> HeaderValue {
    let mut builder = cookie::Cookie::build((name, value))
        .http_only(true)
        .secure(cookies.is_secure())
        .same_site(cookie::SameSite::Lax)
        .path("/")
        .max_age(max_age);
    if let Some(domain) = cookies.cookie_domain() {
        builder = builder.domain(domain);
    }
    if let Some(expires) = expires {
        builder = builder.expires(expires);
    }
    // Names and domains are validated when `Sessions` is built and values are base64url, so
    // the header is always valid.
    HeaderValue::from_str(&builder.build().to_string())
        .unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` values for the credentials given; `Max-Age` is the session's remaining
/// lifetime.
pub(crate) fn session_cookies(
    settings: &Settings,
    token: Option<&SessionToken>,
    jwt: &SessionJwt,
    session_expires_at: OffsetDateTime,
    now: OffsetDateTime,
) -> Vec<HeaderValue> {
    let max_age = (session_expires_at - now).max(time::Duration::ZERO);
    let cookies = &settings.cookies;
    let mut out = Vec::with_capacity(2);
    if let Some(token) = token {
        out.push(cookie_header(
            cookies,
            &settings.token_cookie,
            token.expose(),
            max_age,
            None,
        ));
    }
    out.push(cookie_header(
        cookies,
        &settings.jwt_cookie,
        jwt.expose(),
        max_age,
        None,
    ));
    out
}

/// `Set-Cookie` values that delete both session cookies: same name, `Path` and `Domain`,
/// `Max-Age=0` and an `Expires` in the past.
pub fn strip_session_cookies(cookies: &CookieConfig) -> [HeaderValue; 2] {
    let removal = |name: String| {
        cookie_header(
            cookies,
            &name,
            "",
            time::Duration::ZERO,
            Some(OffsetDateTime::UNIX_EPOCH),
        )
    };
    [removal(cookies.token_name()), removal(cookies.jwt_name())]
}
