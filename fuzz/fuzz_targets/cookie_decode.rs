//! Any cookie value decodes to an error or a cookie that re-encodes to the same value, and any
//! correctly signed body is parsed without panicking.
#![no_main]

use std::hash::Hasher;

use cohort_core::StickyCookie;
use cohort_core::encoding::base64url_encode;
use cohort_core::secrets::CookieKey;
use libfuzzer_sys::fuzz_target;
use siphasher::sip::SipHasher24;

const KEY: CookieKey = CookieKey([0x42; 16]);

fuzz_target!(|data: &[u8]| {
    if let Ok(value) = std::str::from_utf8(data)
        && let Ok(cookie) = StickyCookie::decode(value, &KEY, 1_800_000_000, i64::MAX)
    {
        assert_eq!(cookie.encode(&KEY), value, "a decoded cookie re-encodes identically");
    }
    // Sign the fuzz bytes as a format-1 body so the parser behind the MAC sees them.
    let mut body = vec![cohort_core::cookie::FORMAT];
    body.extend_from_slice(data);
    let mut mac = SipHasher24::new_with_key(&KEY.0);
    mac.write(&body);
    body.extend_from_slice(&mac.finish().to_le_bytes());
    if let Ok(cookie) = StickyCookie::decode(&base64url_encode(&body), &KEY, 1_800_000_000, i64::MAX) {
        assert_eq!(cookie.encode(&KEY), base64url_encode(&body), "canonical encoding");
    }
});
