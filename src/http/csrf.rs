//! Refusing cross-site state changes (login CSRF, forced logout): OWASP's Fetch Metadata and
//! origin verification, shared by [`login`](crate::login::login), the logout handlers and
//! handlers of one's own ([`is_cross_site`]).

use http::request::Parts;

use crate::engine::Sessions;
use crate::engine::config::{Settings, without_default_port};

/// Whether a browser sent this request from another site, so that a state change (login,
/// logout, revocation) must be refused with `403`:
///
/// 1. an `Origin` among the [trusted origins](crate::SessionsBuilder::trusted_origins) is
///    allowed;
/// 2. otherwise `Sec-Fetch-Site`, where the browser sent it, decides: `same-origin` and
///    `none` pass, anything else is refused (`cross-site`, and `same-site`: a sibling
///    subdomain is another party);
/// 3. without it (older browsers), an `Origin` (including `null`) must be the request's own:
///    the same host and port as `Host` (or, over HTTP/2, `:authority`), default ports
///    aside, and the scheme `https`, or `http` when the request is known to be plain HTTP,
///    the cookies are not `Secure`, or the host is a loopback name;
/// 4. a request with neither header (not a browser) is not cross-site.
///
/// A browser sends each of these headers once, with one value. Differing values (two header
/// lines, or a list in one, such as `same-origin, cross-site`) were added by someone else,
/// and which one the browser sent is unknown: the request is cross-site. The same value
/// repeated is that value.
///
/// # Example
///
/// ```
/// use tower_session_jwt::csrf::is_cross_site;
/// use tower_session_jwt::{MemoryStore, Sessions, SigningKey};
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let sessions = Sessions::builder()
///     .store(MemoryStore::new())
///     .signing_key(SigningKey::generate_ed25519().unwrap())
///     .trusted_origins(["https://front.example"])
///     .build()
///     .unwrap();
/// // An older browser, with `Origin` but no `Sec-Fetch-Site`.
/// let parts = |origin: &str| {
///     let request = http::Request::post("/login")
///         .header("host", "app.example")
///         .header("origin", origin);
///     request.body(()).unwrap().into_parts().0
/// };
/// assert!(!is_cross_site(&sessions, &parts("https://app.example")));
/// assert!(!is_cross_site(&sessions, &parts("https://front.example")));
/// assert!(is_cross_site(&sessions, &parts("https://evil.example")));
/// assert!(is_cross_site(&sessions, &parts("http://app.example")), "a plain-HTTP page is another origin");
/// # });
/// ```
pub fn is_cross_site(sessions: &Sessions, request: &Parts) -> bool {
    cross_site(request, sessions.settings())
}

/// [`is_cross_site`] with the settings.
pub(crate) fn cross_site(request: &Parts, settings: &Settings) -> bool {
    let headers = &request.headers;
    // RFC 6454 allows a space-separated list of origins; a comma joins repeated lines.
    let origin = match sole_value(
        headers,
        http::header::ORIGIN.as_str(),
        &[',', ' ', '\t'],
        |origin| without_default_port(&origin),
    ) {
        Ok(origin) => origin,
        // Differing origins, or one that is not even text: nobody's.
        Err(Repeated) => return true,
    };
    if let Some(origin) = &origin
        && settings.trusted_origins.iter().any(|o| o == origin)
    {
        return false;
    }
    // Fetch Metadata is set by the browser and cannot be forged by a page: when present it
    // decides. (A page with `Referrer-Policy: no-referrer` makes Chromium send `Origin: null`
    // even on same-origin form posts, so the origin alone would refuse those.)
    match sole_value(headers, "sec-fetch-site", &[','], |site| site) {
        Ok(Some(site)) => return site != "same-origin" && site != "none",
        Ok(None) => {}
        Err(Repeated) => return true,
    }
    match origin {
        Some(origin) => !is_own_origin(&origin, request, settings),
        None => false,
    }
}

/// A header sent with differing values, or with a value that is not text.
#[derive(Debug, PartialEq, Eq)]
struct Repeated;

/// The one value of header `name` over every line of it and every item of each line (split at
/// `separators`), each trimmed, put in lower case and then through `normal`: `None` when
/// absent, [`Repeated`] when two differ (an empty item included) or a line is not text.
fn sole_value(
    headers: &http::HeaderMap,
    name: &str,
    separators: &[char],
    normal: fn(String) -> String,
) -> Result<Option<String>, Repeated> {
    let mut sole: Option<String> = None;
    for line in headers.get_all(name) {
        let line = line.to_str().map_err(|_| Repeated)?.trim();
        for item in line.split(separators) {
            let item = normal(item.trim().to_ascii_lowercase());
            match &sole {
                Some(value) if *value != item => return Err(Repeated),
                Some(_) => {}
                None => sole = Some(item),
            }
        }
    }
    Ok(sole)
}

/// Whether `origin` (lower case) is the origin the request was sent to.
fn is_own_origin(origin: &str, request: &Parts, settings: &Settings) -> bool {
    let Some((scheme, authority)) = origin.split_once("://") else {
        return false;
    };
    let host = request
        .headers
        .get(http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .or_else(|| request.uri.authority().map(|a| a.as_str()));
    let Some(host) = host else {
        return false;
    };
    let host = without_default_port(&format!("{scheme}://{}", host.trim().to_ascii_lowercase()));
    if host.split_once("://").map(|(_, h)| h) != Some(authority) {
        return false;
    }
    match (scheme, request.uri.scheme_str()) {
        (scheme, Some(known)) => scheme.eq_ignore_ascii_case(known),
        ("https", None) => true,
        ("http", None) => !settings.cookies.is_secure() || is_loopback(authority),
        _ => false,
    }
}

/// `localhost`, `*.localhost`, `127.x.y.z` or `[::1]`, with or without a port: origins that
/// browsers treat as secure over plain HTTP.
fn is_loopback(authority: &str) -> bool {
    let host = match authority.strip_prefix('[') {
        Some(v6) => return v6.starts_with("::1]"),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost"
        || host.ends_with(".localhost")
        || host
            .parse::<std::net::Ipv4Addr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_the_same_origin() {
        assert_eq!(
            without_default_port("https://a.example:443"),
            "https://a.example"
        );
        assert_eq!(
            without_default_port("http://a.example:80"),
            "http://a.example"
        );
        assert_eq!(
            without_default_port("https://a.example:80"),
            "https://a.example:80"
        );
        assert_eq!(
            without_default_port("http://[::1]:8080"),
            "http://[::1]:8080"
        );
    }

    #[test]
    fn a_header_counts_once_only_when_every_value_agrees() {
        let headers = |lines: &[&str]| {
            let mut map = http::HeaderMap::new();
            for line in lines {
                map.append("sec-fetch-site", line.parse().unwrap());
            }
            map
        };
        let site = |lines: &[&str]| sole_value(&headers(lines), "sec-fetch-site", &[','], |s| s);
        assert_eq!(site(&[]), Ok(None));
        assert_eq!(site(&["Same-Origin "]), Ok(Some("same-origin".into())));
        assert_eq!(
            site(&["same-origin", "SAME-ORIGIN"]),
            Ok(Some("same-origin".into()))
        );
        assert_eq!(
            site(&["same-origin, same-origin"]),
            Ok(Some("same-origin".into()))
        );
        for differing in [
            &["same-origin, cross-site"][..],
            &["cross-site,same-origin"],
            &["same-origin", "cross-site"],
            &["none", "same-site"],
            &["same-origin,"],
            &["same-origin", ""],
        ] {
            assert_eq!(site(differing), Err(Repeated), "{differing:?}");
        }
        let mut not_text = http::HeaderMap::new();
        not_text.append("sec-fetch-site", "same-origin".parse().unwrap());
        not_text.append(
            "sec-fetch-site",
            http::HeaderValue::from_bytes(b"same-origin\xff").unwrap(),
        );
        assert_eq!(
            sole_value(&not_text, "sec-fetch-site", &[','], |s| s),
            Err(Repeated)
        );
    }

    fn post(headers: &[(&str, &str)]) -> Parts {
        let mut request = http::Request::post("/login").header("host", "app.example");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.body(()).unwrap().into_parts().0
    }

    /// Sessions for `https://app.example`, trusting `https://front.example` too.
    fn sessions() -> Sessions {
        Sessions::builder()
            .store(crate::store::memory::MemoryStore::new())
            .signing_key(crate::jwt::keys::SigningKey::generate_ed25519().unwrap())
            .trusted_origins(["https://front.example"])
            .build()
            .unwrap()
    }

    #[tokio::test]
    async fn repeated_fetch_metadata_with_differing_values_is_cross_site() {
        let sessions = sessions();
        for headers in [
            &[("sec-fetch-site", "same-origin, cross-site")][..],
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "cross-site"),
            ],
            &[("sec-fetch-site", "none"), ("sec-fetch-site", "same-site")],
        ] {
            assert!(is_cross_site(&sessions, &post(headers)), "{headers:?}");
        }
        for headers in [
            &[("sec-fetch-site", "same-origin")][..],
            &[
                ("sec-fetch-site", "same-origin"),
                ("sec-fetch-site", "same-origin"),
            ],
            &[("sec-fetch-site", "none")],
        ] {
            assert!(!is_cross_site(&sessions, &post(headers)), "{headers:?}");
        }
    }

    #[tokio::test]
    async fn repeated_origins_with_differing_values_are_cross_site() {
        let sessions = sessions();
        for headers in [
            // A trusted origin first no longer vouches for the second.
            &[
                ("origin", "https://front.example"),
                ("origin", "https://evil.example"),
            ][..],
            &[("origin", "https://front.example, https://evil.example")],
            &[("origin", "https://front.example https://evil.example")],
            &[
                ("origin", "https://app.example"),
                ("origin", "https://evil.example"),
            ],
            // Agreeing Fetch Metadata does not excuse differing origins.
            &[
                ("origin", "https://app.example"),
                ("origin", "https://evil.example"),
                ("sec-fetch-site", "same-origin"),
            ],
        ] {
            assert!(is_cross_site(&sessions, &post(headers)), "{headers:?}");
        }
        for headers in [
            &[
                ("origin", "https://front.example"),
                ("origin", "https://front.example:443"),
            ][..],
            &[
                ("origin", "https://app.example"),
                ("origin", "https://APP.example"),
            ],
            &[("origin", "https://app.example")],
        ] {
            assert!(!is_cross_site(&sessions, &post(headers)), "{headers:?}");
        }
    }

    #[test]
    fn loopback_names() {
        for yes in [
            "localhost:3000",
            "127.0.0.1:3000",
            "127.1.2.3",
            "[::1]:8080",
            "a.localhost",
        ] {
            assert!(is_loopback(yes), "{yes}");
        }
        for no in [
            "app.example",
            "10.0.0.1:80",
            "[::2]:1",
            "localhost.evil.example",
        ] {
            assert!(!is_loopback(no), "{no}");
        }
    }
}
