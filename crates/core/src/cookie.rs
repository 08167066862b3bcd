//! The sticky-assignment cookie: one compact, versioned, authenticated binary value (base64url).
//!
//! Layout of format 1 (all integers little-endian; varints are LEB128):
//!
//! ```text
//! u8      format (1)
//! unit    0x00 ‖ 16 bytes            (a 32-hex-char unit id, stored raw)
//!       | 0x01 ‖ u8 len ‖ len bytes  (any other unit id, UTF-8, 1..=64 bytes)
//! varint  config version the cookie was written under
//! varint  issued at, Unix seconds
//! u8      n, number of assignments
//! n ×     u32 experiment cookie id ‖ u8 (bit 7: exposure sent, bits 0-6: variant index)
//! 8 bytes SipHash-2-4 MAC of everything before it, under the tenant's cookie key
//! ```
//!
//! 30 assignments with a random unit id and a 4-byte config version take 186 bytes: 248 characters.

use std::hash::Hasher;

use siphasher::sip::SipHasher24;

use crate::encoding::{base64url_decode, base64url_encode, hex_decode, hex_encode};
use crate::secrets::{CookieKey, constant_time_eq};

/// The format byte this codec writes and reads.
pub const FORMAT: u8 = 1;
/// Longest free-form unit id stored.
pub const MAX_UNIT_ID_LEN: usize = 64;
/// Most assignments one cookie holds.
pub const MAX_ASSIGNMENTS: usize = 200;
/// Longest cookie value accepted before decoding anything: the longest value [`StickyCookie::encode`]
/// writes (a 64-byte unit id, two 10-byte varints, [`MAX_ASSIGNMENTS`] entries), so a visitor
/// assigned in every experiment of a full tenant keeps its cookie.
pub const MAX_VALUE_LEN: usize =
    ((1 + 2 + MAX_UNIT_ID_LEN + 10 + 10 + 1 + MAX_ASSIGNMENTS * 5 + MAC_LEN) * 4).div_ceil(3);
/// Tolerated clock skew for a cookie issued "in the future" by another POP.
pub const MAX_FUTURE_SKEW_SECS: i64 = 300;

const MAC_LEN: usize = 8;
const EXPOSED_BIT: u8 = 0x80;

/// One experiment's sticky assignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StickyEntry {
    /// The experiment's cookie id ([`crate::Experiment::cookie_id`]).
    pub experiment_id: u32,
    /// Variant index (0..=127).
    pub variant: u8,
    /// Whether the exposure for this assignment was already sent.
    pub exposed: bool,
}

/// The decoded contents of a sticky cookie.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StickyCookie {
    /// The unit id.
    pub unit_id: String,
    /// Config version the cookie was written under.
    pub config_version: u64,
    /// When it was written, Unix seconds.
    pub issued_at: i64,
    /// Sticky assignments.
    pub assignments: Vec<StickyEntry>,
}

/// Why a cookie value was refused. Callers treat every case as "no cookie".
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CookieError {
    /// Longer than [`MAX_VALUE_LEN`].
    Oversized {
        /// Its length.
        len: usize,
    },
    /// Not unpadded base64url.
    NotBase64,
    /// Shorter than its contents claim.
    Truncated,
    /// A format this codec does not read.
    UnsupportedFormat(u8),
    /// The MAC does not verify (forged, or another tenant's cookie).
    BadMac,
    /// A field holds an impossible value.
    Malformed(&'static str),
    /// Issued longer ago than the allowed age.
    Stale {
        /// Age in seconds.
        age_seconds: i64,
    },
}

impl std::fmt::Display for CookieError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CookieError::Oversized { len } => {
                write!(f, "cookie value is {len} characters, over {MAX_VALUE_LEN}")
            }
            CookieError::NotBase64 => f.write_str("cookie value is not base64url"),
            CookieError::Truncated => f.write_str("cookie value is truncated"),
            CookieError::UnsupportedFormat(format) => {
                write!(f, "cookie format {format} is not supported")
            }
            CookieError::BadMac => f.write_str("cookie signature does not verify"),
            CookieError::Malformed(what) => write!(f, "cookie is malformed: {what}"),
            CookieError::Stale { age_seconds } => {
                write!(f, "cookie was issued {age_seconds} s ago, too long ago")
            }
        }
    }
}

impl std::error::Error for CookieError {}

fn mac(key: &CookieKey, bytes: &[u8]) -> [u8; MAC_LEN] {
    let mut hasher = SipHasher24::new_with_key(&key.0);
    hasher.write(bytes);
    hasher.finish().to_le_bytes()
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

/// A cursor over the cookie body that reports truncation instead of panicking.
struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], CookieError> {
        if self.bytes.len() < n {
            return Err(CookieError::Truncated);
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    fn byte(&mut self) -> Result<u8, CookieError> {
        Ok(self.take(1)?[0])
    }

    fn varint(&mut self) -> Result<u64, CookieError> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(CookieError::Malformed("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                // One encoding per value: a trailing zero group is a padded (non-minimal) varint.
                if byte == 0 && shift > 0 {
                    return Err(CookieError::Malformed("non-minimal varint"));
                }
                return Ok(value);
            }
        }
        Err(CookieError::Malformed("varint longer than 10 bytes"))
    }
}

impl StickyCookie {
    /// Encodes and signs the cookie value.
    ///
    /// # Panics
    /// Never for values produced by evaluation. Unit ids over [`MAX_UNIT_ID_LEN`] bytes and
    /// assignment lists over [`MAX_ASSIGNMENTS`] are truncated to the limits instead.
    pub fn encode(&self, key: &CookieKey) -> String {
        let mut out = Vec::with_capacity(32 + self.assignments.len() * 5);
        out.push(FORMAT);
        match raw_unit_id(&self.unit_id) {
            Some(raw) => {
                out.push(0);
                out.extend_from_slice(&raw);
            }
            None => {
                let mut len = self.unit_id.len().min(MAX_UNIT_ID_LEN);
                while !self.unit_id.is_char_boundary(len) {
                    len -= 1;
                }
                out.push(1);
                out.push(len as u8);
                out.extend_from_slice(&self.unit_id.as_bytes()[..len]);
            }
        }
        put_varint(&mut out, self.config_version);
        put_varint(&mut out, self.issued_at.max(0) as u64);
        let assignments = &self.assignments[..self.assignments.len().min(MAX_ASSIGNMENTS)];
        out.push(assignments.len() as u8);
        for entry in assignments {
            out.extend_from_slice(&entry.experiment_id.to_le_bytes());
            out.push((entry.variant & !EXPOSED_BIT) | if entry.exposed { EXPOSED_BIT } else { 0 });
        }
        seal(key, out)
    }

    /// Verifies and decodes a cookie value issued at most `max_age_seconds` before `now` (Unix
    /// seconds). Every failure is an error, never a panic.
    pub fn decode(value: &str, key: &CookieKey, now: i64, max_age_seconds: i64) -> Result<StickyCookie, CookieError> {
        if value.len() > MAX_VALUE_LEN {
            return Err(CookieError::Oversized { len: value.len() });
        }
        let bytes = base64url_decode(value).ok_or(CookieError::NotBase64)?;
        if bytes.len() < 1 + MAC_LEN {
            return Err(CookieError::Truncated);
        }
        if bytes[0] != FORMAT {
            return Err(CookieError::UnsupportedFormat(bytes[0]));
        }
        let (body, tag) = bytes.split_at(bytes.len() - MAC_LEN);
        if !constant_time_eq(&mac(key, body), tag) {
            return Err(CookieError::BadMac);
        }
        let mut reader = Reader { bytes: &body[1..] };
        let unit_id = match reader.byte()? {
            0 => hex_encode(reader.take(16)?),
            1 => {
                let len = usize::from(reader.byte()?);
                if len == 0 || len > MAX_UNIT_ID_LEN {
                    return Err(CookieError::Malformed("unit id length"));
                }
                let unit_id = std::str::from_utf8(reader.take(len)?)
                    .map_err(|_| CookieError::Malformed("unit id is not UTF-8"))?;
                if raw_unit_id(unit_id).is_some() {
                    return Err(CookieError::Malformed("hex unit id stored as text"));
                }
                unit_id.to_owned()
            }
            _ => return Err(CookieError::Malformed("unknown unit id kind")),
        };
        let config_version = reader.varint()?;
        let issued_at = i64::try_from(reader.varint()?).map_err(|_| CookieError::Malformed("issue time"))?;
        if issued_at > now.saturating_add(MAX_FUTURE_SKEW_SECS) {
            return Err(CookieError::Malformed("issued in the future"));
        }
        let age_seconds = now.saturating_sub(issued_at);
        if age_seconds > max_age_seconds {
            return Err(CookieError::Stale { age_seconds });
        }
        let count = usize::from(reader.byte()?);
        if count > MAX_ASSIGNMENTS {
            return Err(CookieError::Malformed("too many assignments"));
        }
        let mut assignments = Vec::with_capacity(count);
        for _ in 0..count {
            let id = reader.take(4)?;
            let experiment_id = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
            let packed = reader.byte()?;
            if assignments
                .iter()
                .any(|e: &StickyEntry| e.experiment_id == experiment_id)
            {
                return Err(CookieError::Malformed("an experiment appears twice"));
            }
            assignments.push(StickyEntry {
                experiment_id,
                variant: packed & !EXPOSED_BIT,
                exposed: packed & EXPOSED_BIT != 0,
            });
        }
        if !reader.bytes.is_empty() {
            return Err(CookieError::Malformed("trailing bytes"));
        }
        Ok(StickyCookie {
            unit_id,
            config_version,
            issued_at,
            assignments,
        })
    }
}

/// Appends the MAC of `body` (format byte onward) under `key` and encodes the cookie value: the last
/// step of [`StickyCookie::encode`], public so tests and fuzzers can sign any body and reach the
/// parser behind the MAC.
pub fn seal(key: &CookieKey, mut body: Vec<u8>) -> String {
    let tag = mac(key, &body);
    body.extend_from_slice(&tag);
    base64url_encode(&body)
}

/// A 32-lowercase-hex-character unit id (what the edge mints) stores as 16 raw bytes.
fn raw_unit_id(unit_id: &str) -> Option<[u8; 16]> {
    if unit_id.len() != 32 || unit_id.bytes().any(|b| b.is_ascii_uppercase()) {
        return None;
    }
    hex_decode(unit_id)?.try_into().ok()
}

/// Mints a unit id from 16 random bytes supplied by the caller (the engine has no randomness).
pub fn unit_id_from_random(bytes: [u8; 16]) -> String {
    hex_encode(&bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: CookieKey = CookieKey([7; 16]);

    fn sample(assignments: usize) -> StickyCookie {
        StickyCookie {
            unit_id: unit_id_from_random([0xab; 16]),
            config_version: 42,
            issued_at: 1_800_000_000,
            assignments: (0..assignments as u32)
                .map(|i| StickyEntry {
                    experiment_id: i.wrapping_mul(0x9e37_79b9),
                    variant: (i % 3) as u8,
                    exposed: i % 2 == 0,
                })
                .collect(),
        }
    }

    /// Unit ids keep their exact text: a long one is cut at a character boundary, and only a
    /// lowercase 32-hex id is stored as raw bytes (an uppercase one would come back lowercased).
    #[test]
    fn unit_ids_keep_their_text() {
        let decode = |unit_id: String| {
            let cookie = StickyCookie { unit_id, ..sample(1) };
            StickyCookie::decode(&cookie.encode(&KEY), &KEY, 1_800_000_010, 3600)
                .unwrap()
                .unit_id
        };
        let upper = "ABCDEF0123456789ABCDEF0123456789".to_owned();
        assert_eq!(decode(upper.clone()), upper);
        let lower = upper.to_lowercase();
        assert_eq!(decode(lower.clone()), lower);
        let accented = format!("{}é", "a".repeat(MAX_UNIT_ID_LEN - 1));
        assert_eq!(decode(accented), "a".repeat(MAX_UNIT_ID_LEN - 1));
    }

    /// Zero is one byte, not a padded varint: version 0 and time 0 round-trip.
    #[test]
    fn zero_values_round_trip() {
        let cookie = StickyCookie {
            config_version: 0,
            issued_at: 0,
            ..sample(2)
        };
        assert_eq!(StickyCookie::decode(&cookie.encode(&KEY), &KEY, 0, 3600), Ok(cookie));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert!(CookieError::BadMac.to_string().contains("signature"));
        assert!(CookieError::Oversized { len: 9999 }.to_string().contains("9999"));
        assert!(!CookieError::Truncated.to_string().is_empty());
    }

    #[test]
    fn round_trips() {
        let cookie = sample(5);
        let value = cookie.encode(&KEY);
        assert_eq!(StickyCookie::decode(&value, &KEY, 1_800_000_010, 3600), Ok(cookie));
        let free_form = StickyCookie {
            unit_id: "user-42@example".into(),
            ..sample(0)
        };
        assert_eq!(
            StickyCookie::decode(&free_form.encode(&KEY), &KEY, 1_800_000_000, 60),
            Ok(free_form)
        );
    }

    #[test]
    fn thirty_experiments_fit_the_budget() {
        let value = sample(30).encode(&KEY);
        assert!(value.len() < 400, "{} characters", value.len());
        assert_eq!(value.len(), 244);
    }

    #[test]
    fn the_longest_value_encode_writes_is_accepted() {
        let longest = StickyCookie {
            unit_id: "u".repeat(MAX_UNIT_ID_LEN),
            config_version: u64::MAX,
            issued_at: i64::MAX,
            assignments: (0..MAX_ASSIGNMENTS as u32)
                .map(|experiment_id| StickyEntry {
                    experiment_id: experiment_id | 0x8000_0000,
                    variant: 127,
                    exposed: true,
                })
                .collect(),
        };
        let value = longest.encode(&KEY);
        // The limit allows 10 bytes for each varint; issued_at, a non-negative i64, needs 9: no
        // more slack than that, and one character beyond the limit is refused unread.
        assert!(
            value.len() <= MAX_VALUE_LEN && MAX_VALUE_LEN - value.len() <= 2,
            "{} of {MAX_VALUE_LEN} characters",
            value.len()
        );
        assert_eq!(StickyCookie::decode(&value, &KEY, i64::MAX, 0), Ok(longest));
        assert_eq!(
            StickyCookie::decode(&"A".repeat(MAX_VALUE_LEN + 1), &KEY, i64::MAX, 0),
            Err(CookieError::Oversized { len: MAX_VALUE_LEN + 1 })
        );
    }

    #[test]
    fn refuses_forged_stale_and_truncated_values() {
        let value = sample(3).encode(&KEY);
        let other = CookieKey([8; 16]);
        assert_eq!(
            StickyCookie::decode(&value, &other, 1_800_000_000, 60),
            Err(CookieError::BadMac)
        );
        assert_eq!(
            StickyCookie::decode(&value, &KEY, 1_800_000_061, 60),
            Err(CookieError::Stale { age_seconds: 61 })
        );
        for cut in 0..value.len() {
            assert!(
                StickyCookie::decode(&value[..cut], &KEY, 1_800_000_000, 60).is_err(),
                "cut at {cut}"
            );
        }
        assert_eq!(
            StickyCookie::decode(&"A".repeat(2000), &KEY, 0, 60),
            Err(CookieError::Oversized { len: 2000 })
        );
        assert_eq!(StickyCookie::decode("!!!", &KEY, 0, 60), Err(CookieError::NotBase64));
    }
}
