//! Structured mutation of a valid session JWT: bit flips, deletions, insertions, truncation,
//! segment swaps and duplications, driven by the input. Anything but the original is refused.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tower_session_jwt_fuzz::{check_jwt, fixture};

const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let mut token = f.alice_jwt.as_bytes().to_vec();
    for op in data.chunks_exact(3).take(16) {
        let len = token.len().max(1);
        let pos = (usize::from(op[1]) * 256 + usize::from(op[2])) % len;
        match op[0] % 8 {
            0 => {
                if let Some(b) = token.get_mut(pos) {
                    *b ^= 1 << (op[2] % 8);
                }
            }
            1 => {
                if pos < token.len() {
                    token.remove(pos);
                }
            }
            2 => token.insert(
                pos.min(token.len()),
                ALPHABET[usize::from(op[2]) % ALPHABET.len()],
            ),
            3 => token.truncate(pos),
            4 | 5 => {
                let text = String::from_utf8_lossy(&token).into_owned();
                let mut parts: Vec<&str> = text.split('.').collect();
                let n = parts.len();
                let (a, b) = (usize::from(op[1]) % n, usize::from(op[2]) % n);
                if op[0] % 8 == 4 {
                    parts.swap(a, b);
                } else {
                    let part = parts[a];
                    parts.insert(b, part);
                }
                token = parts.join(".").into_bytes();
            }
            6 => {
                if let Some(b) = token.get_mut(pos) {
                    *b = ALPHABET[usize::from(op[2]) % ALPHABET.len()];
                }
            }
            _ => {
                // Splice in bob's JWT segment at the same index.
                let text = String::from_utf8_lossy(&token).into_owned();
                let mut parts: Vec<String> = text.split('.').map(str::to_owned).collect();
                let bob: Vec<&str> = f.bob_jwt.split('.').collect();
                let i = usize::from(op[1]) % parts.len().min(bob.len());
                parts[i] = bob[i].to_owned();
                token = parts.join(".").into_bytes();
            }
        }
    }
    check_jwt(f, &String::from_utf8_lossy(&token));
});
