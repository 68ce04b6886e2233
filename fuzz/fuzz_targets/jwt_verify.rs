//! `Sessions::authenticate_jwt` on arbitrary strings (markers expanded to real JWTs).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_session_jwt_fuzz::{check_jwt, expand, fixture};

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let (data, _) = expand(f, data);
    check_jwt(f, &String::from_utf8_lossy(&data));
});
