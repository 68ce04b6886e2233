//! Reading a request's session credentials from its headers: the two session cookies and
//! `Authorization: Bearer`, borrowed, without allocating. Query strings are never read.

use http::header::{AUTHORIZATION, COOKIE};
use http::{HeaderMap, HeaderValue};

use crate::engine::config::Settings;
use crate::engine::credentials::{CredentialKind, CredentialSource, Credentials};
use crate::engine::error::AuthError;
use crate::engine::{Presented, Sessions};

/// Reads the session credentials of a request from its headers: the JWT and token cookies
/// and `Authorization: Bearer`, for [`Sessions::authenticate`] (the layer does this for every
/// request). Query strings are never read.
///
/// # Errors
///
/// [`AuthError::ConflictingCredentials`] for two different values of one credential (two
/// cookies, or a cookie and the header) or two `Authorization` headers;
/// [`AuthError::CredentialTooLarge`] for a header over 16 KiB.
///
/// # Example
///
/// ```
/// use tower_session_jwt::cookies::credentials;
/// use tower_session_jwt::sessions::CredentialSource;
/// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .build()
///     .unwrap();
/// let mut headers = http::HeaderMap::new();
/// headers.insert("cookie", "session_token=abc; theme=dark".parse().unwrap());
/// let found = credentials(&sessions, &headers).unwrap();
/// assert_eq!(found.token(), Some(("abc", CredentialSource::Cookie)));
/// assert_eq!(found.source(), Some(CredentialSource::Cookie));
/// # });
/// ```
pub fn credentials<'a>(
    sessions: &Sessions,
    headers: &'a HeaderMap,
) -> Result<Credentials<'a>, AuthError> {
    read(headers, sessions.settings())
}

/// Every session credential value the request presents (cookies and header, at most a few of
/// each kind), for a logout to revoke. Oversized headers name nothing.
pub(crate) fn presented<'a>(headers: &'a HeaderMap, settings: &Settings) -> Presented<'a> {
    let mut presented = Presented::default();
    let _ = each_presented(headers, settings, |kind, value, _| {
        presented.add(kind, value);
        true
    });
    presented
}

/// Largest `Cookie` or `Authorization` header value examined, in bytes.
pub const MAX_CREDENTIAL_HEADER_LEN: usize = 16 * 1024;

/// Records `value` in `slot`; a second, different value is a conflict.
fn record_once<'a>(slot: &mut Option<&'a str>, value: &'a str) -> Result<(), AuthError> {
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
/// Query strings are never read. Two different cookie values for one credential are refused;
/// the header's credential is kept apart from the cookies (the authentication decides between
/// them). A bearer credential with two dots is a JWT; anything else is an opaque token.
pub(crate) fn read<'a>(
    headers: &'a HeaderMap,
    settings: &Settings,
) -> Result<Credentials<'a>, AuthError> {
    let mut found = Credentials::default();
    let mut error = None;
    found.presents_bearer = each_presented(headers, settings, |kind, value, source| {
        let result = match (source, kind) {
            (CredentialSource::Header, kind) => {
                found.header = Some((kind, value));
                Ok(())
            }
            (CredentialSource::Cookie, CredentialKind::Jwt) => {
                record_once(&mut found.cookie_jwt, value)
            }
            (CredentialSource::Cookie, CredentialKind::Token) => {
                record_once(&mut found.cookie_token, value)
            }
        };
        match result {
            Ok(()) => true,
            Err(e) => {
                error = Some(e);
                false
            }
        }
    })?;
    match error {
        Some(e) => Err(e),
        None => Ok(found),
    }
}

/// Calls `each` for every session credential value in the cookies and `Authorization`, in
/// that order, until it returns `false`. Oversized headers and a repeated `Authorization` are
/// errors. Returns whether `Authorization` has the `Bearer` scheme, well formed or not (when
/// `each` stopped the walk early, `false`: the caller is on its way to an error).
pub(crate) fn each_presented<'a>(
    headers: &'a HeaderMap,
    settings: &Settings,
    mut each: impl FnMut(CredentialKind, &'a str, CredentialSource) -> bool,
) -> Result<bool, AuthError> {
    for value in headers.get_all(COOKIE) {
        if value.len() > MAX_CREDENTIAL_HEADER_LEN {
            return Err(AuthError::CredentialTooLarge);
        }
        // One pass over the header: a vectorised search from `;` to `;`, comparing each
        // pair's name with our two. The site's other cookies (analytics, preferences, a
        // JWT-sized one) are neither decoded nor checked, and a byte that is not UTF-8 in
        // someone else's cookie hides only that cookie, never ours. Our values are yielded as
        // the slices the search delimited.
        let names = [
            settings.jwt_cookie.as_bytes(),
            settings.token_cookie.as_bytes(),
        ];
        let mut stopped = false;
        each_cookie_named(value.as_bytes(), names, |which, value| {
            let kind = match which {
                0 => CredentialKind::Jwt,
                _ => CredentialKind::Token,
            };
            // Ours are base64url; anything else (not UTF-8, say) is not a credential.
            match std::str::from_utf8(value) {
                Ok(value) => {
                    stopped = !each(kind, value, CredentialSource::Cookie);
                    !stopped
                }
                Err(_) => true,
            }
        });
        if stopped {
            return Ok(false);
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
        let presents_bearer = is_bearer_scheme(value.as_bytes());
        match bearer(value) {
            Some(bearer) => {
                let kind = if bearer.is_jwt {
                    CredentialKind::Jwt
                } else {
                    CredentialKind::Token
                };
                each(kind, bearer.credential, CredentialSource::Header);
            }
            // `Bearer` with nothing usable after it (empty, a tab, bytes outside b64token):
            // the client chose a header credential and it is broken. Refused, never read past
            // to the cookies beside it, whose session the answer could not hand back cookies
            // for (a bearer's answer gets none).
            None if presents_bearer => return Err(AuthError::MalformedToken),
            None => {}
        }
        return Ok(presents_bearer);
    }
    Ok(false)
}

/// Marks the request's credential headers sensitive, so that `Debug` output and tracing layers
/// downstream print `Sensitive` instead of the session's credentials. One pass over the headers:
/// `HeaderMap::entry` would reserve room (and may reallocate) on every request.
pub(crate) fn mark_sensitive(headers: &mut HeaderMap) {
    for (name, value) in headers.iter_mut() {
        if name == AUTHORIZATION || name == COOKIE {
            value.set_sensitive(true);
        }
    }
}

/// A bearer credential and whether it has the two dots of a compact JWT.
struct Bearer<'a> {
    credential: &'a str,
    is_jwt: bool,
}

/// The credential of `Authorization: Bearer <credential>` (scheme case-insensitive, spaces
/// around it trimmed); `None` for other schemes, an empty credential or bytes that are not
/// UTF-8.
///
/// The credential's characters are checked where it is used, without another pass over it: an
/// opaque token by its shape (base64url of a fixed length, stricter than RFC 6750's
/// `b64token`) before anything else, a JWT by the codec (its pinned header and base64url
/// segments) unless it is found in the verification cache, where it is byte for byte a JWT this
/// crate verified. Anything else is refused there, as a malformed token or an invalid JWT.
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
    let is_jwt = memchr::memchr_iter(b'.', credential).take(3).count() == 2;
    let credential = std::str::from_utf8(credential).ok()?;
    Some(Bearer { credential, is_jwt })
}

/// Calls `each` with the index of the name and the value of every cookie named one of `names`
/// in one `Cookie` header value, in order, until it returns `false`: a pair whose name, trimmed
/// of spaces and tabs, is that name (so neither `xname=` nor a value that contains `name=`);
/// the value as [`cookie_pair`] gives it. One pass: the pairs are delimited by a vectorised
/// search for `;`, and only each pair's name is looked at byte by byte.
fn each_cookie_named<'a, const N: usize>(
    header: &'a [u8],
    names: [&[u8]; N],
    mut each: impl FnMut(usize, &'a [u8]) -> bool,
) {
    let mut rest = header;
    loop {
        let end = memchr::memchr(b';', rest).unwrap_or(rest.len());
        let pair = &rest[..end];
        // Most pairs are someone else's: a prefix compare turns them away before the pair is
        // parsed.
        let start = trim_spaces_start(pair);
        if let Some(which) = names.iter().position(|name| {
            !name.is_empty()
                && start.starts_with(name)
                && matches!(trim_spaces_start(&start[name.len()..]).first(), Some(b'='))
        }) && let Some((_, value)) = cookie_pair(pair)
            && !each(which, value)
        {
            return;
        }
        match rest.get(end + 1..) {
            Some(next) => rest = next,
            None => return,
        }
    }
}

/// One `name=value` pair of a `Cookie` header, both trimmed of spaces and tabs, the value of
/// one pair of surrounding double quotes (RFC 6265 §4.1.1 allows them); `None` without `=` or
/// with an empty name.
fn cookie_pair(pair: &[u8]) -> Option<(&[u8], &[u8])> {
    let equals = pair.iter().position(|b| *b == b'=')?;
    let name = trim_spaces(&pair[..equals]);
    if name.is_empty() {
        return None;
    }
    let mut value = trim_spaces(&pair[equals + 1..]);
    if let [b'"', inner @ .., b'"'] = value {
        value = inner;
    }
    Some((name, value))
}

fn trim_spaces_start(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    bytes
}

fn trim_spaces(mut bytes: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = bytes {
        bytes = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = bytes {
        bytes = rest;
    }
    bytes
}

/// The one rule for session cookies: a request that presents `Authorization: Bearer` (on any
/// header line, whatever the value) gets none back, not even a removal. Its client chose a
/// header credential for each request; a cookie would make that credential ambient (sent by a
/// browser on its own, so CSRF-prone), or replace the browser's own session beside it.
///
/// Every path that writes session cookies asks here: the layer (for every response behind it,
/// whatever the handler set), the logout handlers, [`login`](crate::login::login), the DBSC
/// endpoints, and [`SessionCookies`](crate::cookies::SessionCookies) for handlers of one's own. A header that
/// merely looks like a bearer (a malformed value) counts too: the rule fails closed.
pub(crate) fn allows_session_cookies(request: &HeaderMap) -> bool {
    !request
        .get_all(AUTHORIZATION)
        .iter()
        .any(|value| is_bearer_scheme(value.as_bytes()))
}

/// Whether an `Authorization` value has the `Bearer` scheme, whatever follows it.
fn is_bearer_scheme(value: &[u8]) -> bool {
    value
        .get(..6)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case(b"bearer"))
        && matches!(value.get(6), None | Some(b' ' | b'\t'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn cookie_pairs_are_trimmed_and_unquoted() {
        let pair = |text: &[u8]| cookie_pair(text).map(|(n, v)| (n.to_vec(), v.to_vec()));
        let owned = |n: &str, v: &str| Some((n.as_bytes().to_vec(), v.as_bytes().to_vec()));
        assert_eq!(pair(b" session_jwt=abc"), owned("session_jwt", "abc"));
        assert_eq!(pair(b"\tname = value \t"), owned("name", "value"));
        assert_eq!(pair(b"name=\"quoted\""), owned("name", "quoted"));
        assert_eq!(pair(b"name=a=b"), owned("name", "a=b"));
        assert_eq!(pair(b"name="), owned("name", ""));
        assert_eq!(pair(b"name=\""), owned("name", "\""));
        assert_eq!(pair(b"=value"), None);
        assert_eq!(pair(b"  =value"), None);
        assert_eq!(pair(b"novalue"), None);
        assert_eq!(pair(b""), None);
    }

    #[test]
    fn cookies_are_found_by_exact_name_only() {
        let named = |header: &[u8], name: &str| {
            let mut found = Vec::new();
            each_cookie_named(header, [name.as_bytes()], |_, v| {
                found.push(String::from_utf8_lossy(v).into_owned());
                true
            });
            found
        };
        let header = b"_ga=1; x_session_jwt=no; session_jwt=a; other=session_jwt=no; \
                       session_jwtx=no;session_jwt = \"b\" ; __Host-session_jwt=c";
        assert_eq!(named(header, "session_jwt"), ["a", "b"]);
        assert_eq!(named(header, "__Host-session_jwt"), ["c"]);
        assert_eq!(named(b"session_jwt", "session_jwt"), Vec::<String>::new());
        assert_eq!(named(b"session_jwt=", "session_jwt"), [""]);
        assert_eq!(named(b"a=\xff; session_jwt=ok", "session_jwt"), ["ok"]);
        assert_eq!(named(b"", "session_jwt"), Vec::<String>::new());
        // Stops when told to.
        let mut seen = 0;
        each_cookie_named(b"n=1; n=2; n=3", [b"n"], |_, _| {
            seen += 1;
            seen < 2
        });
        assert_eq!(seen, 2);
        // Two names in one pass, in the header's order.
        let mut both = Vec::new();
        each_cookie_named(b"b=1; x=0; a=2; b=3", [b"a", b"b"], |which, v| {
            both.push((which, v.to_vec()));
            true
        });
        assert_eq!(
            both,
            [(1, b"1".to_vec()), (0, b"2".to_vec()), (1, b"3".to_vec())]
        );
    }

    #[test]
    fn bearer_values_are_split_from_their_scheme() {
        let value = |text: &str| HeaderValue::from_str(text).unwrap();
        let header = value("Bearer aa.bb.cc");
        let jwt = bearer(&header).unwrap();
        assert!(jwt.is_jwt);
        assert_eq!(jwt.credential, "aa.bb.cc");
        let header = value("bearer   A-b_c~d+e/f  ");
        let token = bearer(&header).unwrap();
        assert!(!token.is_jwt);
        assert_eq!(token.credential, "A-b_c~d+e/f");
        // Read as credentials, and refused where they are used (tests/layer.rs).
        let header = value("Bearer a,b");
        assert_eq!(bearer(&header).unwrap().credential, "a,b");
        for bad in ["Basic abc", "Bearer ", "Bearer", "Bearer\tabc"] {
            assert!(bearer(&value(bad)).is_none(), "{bad}");
        }
        assert!(bearer(&HeaderValue::from_bytes(b"Bearer a\xffb").unwrap()).is_none());
    }
}
