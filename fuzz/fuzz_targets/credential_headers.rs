//! Credential extraction from headers: arbitrary `Cookie` and `Authorization` values (several of
//! each), split on NUL bytes; the first byte of each part picks the header name.
#![no_main]

use http::header::{AUTHORIZATION, COOKIE};
use libfuzzer_sys::fuzz_target;
use tower_session_jwt_fuzz::{check_request, expand, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (data, carried) = expand(f, data);
    let headers: Vec<_> = data
        .split(|b| *b == 0)
        .take(8)
        .filter_map(|part| {
            let (selector, value) = part.split_first()?;
            let name = if selector % 2 == 0 {
                COOKIE
            } else {
                AUTHORIZATION
            };
            Some((name, value.to_vec()))
        })
        .collect();
    check_request(f, &headers, carried);
});
