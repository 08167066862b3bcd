//! `testdata/cookies.json`, written by `testdata/reference.py`.

use serde::{Deserialize, Serialize};

/// The maximum cookie age, in seconds, valid cookies are decoded with (400 days, the longest
/// lifetime browsers allow a cookie).
pub const MAX_AGE_SECONDS: i64 = 34_560_000;

/// Sticky cookie (format 1) vectors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieVectors {
    /// How to run the cases, for readers of the file.
    pub description: String,
    /// The key every valid value is signed with, 32 lowercase hex digits.
    pub cookie_key: String,
    /// Cookies whose encoding under `cookie_key` is exactly `value`, and which decode back.
    pub valid: Vec<ValidCookie>,
    /// Values a decoder must refuse.
    pub invalid: Vec<InvalidCookie>,
}

/// A cookie and its exact encoding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidCookie {
    /// What the case shows.
    pub name: String,
    /// The unit id (32 lowercase hex digits are packed into 16 bytes; anything else is stored as
    /// text).
    pub unit: String,
    /// The config version the cookie was written under.
    pub config_version: u64,
    /// When it was written, Unix seconds; also the `now` it is decoded at.
    pub issued_at: i64,
    /// Sticky assignments, in cookie order.
    pub assignments: Vec<CookieAssignment>,
    /// The cookie value: base64url without padding.
    pub value: String,
}

/// One sticky assignment in a cookie.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieAssignment {
    /// The experiment's 32-bit cookie id.
    pub experiment_id: u32,
    /// The variant index (below 128: the top bit of its byte is `exposed`).
    pub variant: u8,
    /// Whether the exposure was already sent.
    pub exposed: bool,
}

/// A value the decoder refuses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvalidCookie {
    /// What is wrong with it.
    pub name: String,
    /// The cookie value.
    pub value: String,
    /// The kind of error the decoder must report.
    pub error: CookieErrorKind,
}

/// The kinds of error a cookie decoder reports, as the file spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CookieErrorKind {
    /// Longer than any value an encoder writes.
    Oversized,
    /// Not unpadded base64url.
    NotBase64,
    /// Shorter than its contents claim.
    Truncated,
    /// A format byte the decoder does not read.
    UnsupportedFormat,
    /// The MAC does not verify.
    BadMac,
    /// A field holds an impossible value.
    Malformed,
    /// Issued longer ago than the maximum age.
    Stale,
    /// Any error: the case only requires that the value is refused.
    Any,
}

impl CookieErrorKind {
    /// Whether a decoder that reported `reported` met this expectation.
    pub fn admits(self, reported: CookieErrorKind) -> bool {
        self == CookieErrorKind::Any || self == reported
    }
}

impl CookieVectors {
    /// Parses the file's text.
    pub fn from_json(text: &str) -> Result<Self, String> {
        serde_json::from_str(text).map_err(|e| e.to_string())
    }
}
