//! Cookie parsing: `Cookie` headers assembled from pieces with the real cookie names (and
//! near-misses), arbitrary separators and values; split on 0xFF into cookies and on 0xFE into
//! separate `Cookie` headers.
#![no_main]

use http::header::COOKIE;
use libfuzzer_sys::fuzz_target;
use tower_session_jwt_fuzz::{check_request, expand, fixture};

const NAMES: &[&[u8]] = &[
    b"session_jwt=",
    b"session_token=",
    b"__Host-session_jwt=",
    b"__Secure-session_token=",
    b"Session_JWT=",
    b" session_jwt = ",
    b"session_jwt",
    b"",
];
const SEPARATORS: &[&[u8]] = &[b"; ", b";", b" ;", b", ", b";\t", b""];

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (data, carried) = expand(f, data);
    let mut headers = Vec::new();
    for header in data.split(|b| *b == 0xFE).take(4) {
        let mut value = Vec::new();
        for (i, cookie) in header.split(|b| *b == 0xFF).take(16).enumerate() {
            let Some((selector, rest)) = cookie.split_first() else {
                continue;
            };
            if i > 0 {
                value.extend_from_slice(SEPARATORS[usize::from(selector >> 4) % SEPARATORS.len()]);
            }
            value.extend_from_slice(NAMES[usize::from(selector & 0x0F) % NAMES.len()]);
            value.extend_from_slice(rest);
        }
        headers.push((COOKIE, value));
    }
    check_request(f, &headers, carried);
});
