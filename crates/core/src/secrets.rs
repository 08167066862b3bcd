//! Per-tenant keys derived from the platform's one master secret, and beacon signatures.
//!
//! Tenants hold no keys: every key is `HMAC-SHA256(master, "cohort/v1/" ‖ purpose ‖ 0x00 ‖ tenant)`,
//! so one tenant's key never verifies another tenant's data and a key for one purpose is useless
//! for another. The edge and the collector derive the same keys from the same `COHORT_SECRET`.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::encoding::{base64url_encode, hex_decode, hex_encode};

type HmacSha256 = Hmac<Sha256>;

/// Shortest master secret accepted: 32 bytes, the HMAC-SHA256 key size.
pub const MIN_SECRET_LEN: usize = 32;

/// The platform master secret (`COHORT_SECRET`). Its `Debug` form never shows the secret.
#[derive(Clone)]
pub struct MasterSecret(Vec<u8>);

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(..)")
    }
}

/// The master secret was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretError {
    /// Length of the rejected secret in bytes.
    pub len: usize,
}

impl std::fmt::Display for SecretError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "COHORT_SECRET is {} bytes long; it must be at least {MIN_SECRET_LEN} random bytes",
            self.len
        )
    }
}

impl std::error::Error for SecretError {}

impl MasterSecret {
    /// Accepts a secret of at least [`MIN_SECRET_LEN`] bytes.
    pub fn new(secret: impl Into<Vec<u8>>) -> Result<MasterSecret, SecretError> {
        let secret = secret.into();
        if secret.len() < MIN_SECRET_LEN {
            return Err(SecretError { len: secret.len() });
        }
        Ok(MasterSecret(secret))
    }

    fn derive(&self, purpose: &str, tenant: &str) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(b"cohort/v1/");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(tenant.as_bytes());
        mac.finalize().into_bytes().into()
    }

    /// The SipHash-2-4 key that authenticates `tenant`'s sticky cookies.
    pub fn cookie_key(&self, tenant: &str) -> CookieKey {
        let full = self.derive("cookie-mac", tenant);
        let mut key = [0u8; 16];
        key.copy_from_slice(&full[..16]);
        CookieKey(key)
    }

    /// The HMAC-SHA256 key that signs `tenant`'s beacons to the collector.
    pub fn beacon_key(&self, tenant: &str) -> BeaconKey {
        BeaconKey(self.derive("beacon-signing", tenant))
    }

    /// The key that signs `tenant`'s QA preview links.
    pub fn preview_key(&self, tenant: &str) -> [u8; 32] {
        self.derive("preview-link", tenant)
    }

    /// The bearer token that reads `tenant`'s results (and nothing of any other tenant's).
    pub fn results_read_token(&self, tenant: &str) -> String {
        base64url_encode(&self.derive("results-read-token", tenant)[..24])
    }

    /// Checks a presented read token in constant time.
    pub fn verify_results_read_token(&self, tenant: &str, presented: &str) -> bool {
        constant_time_eq(self.results_read_token(tenant).as_bytes(), presented.as_bytes())
    }

    /// The bearer token that lets `label` (a person or a system: it becomes the author of every
    /// config version written with the token) change `tenant`'s config: `<label>~<mac>`. Its
    /// purpose label differs from the read token's, so a read token never writes; the MAC covers
    /// the label, so nobody can sign as someone else. `None` for a label outside
    /// [`is_valid_admin_label`].
    pub fn config_admin_token(&self, tenant: &str, label: &str) -> Option<String> {
        is_valid_admin_label(label).then(|| format!("{label}~{}", self.admin_mac(tenant, label)))
    }

    /// The author label of a presented admin token when it is valid for `tenant`; checked in
    /// constant time.
    pub fn verify_config_admin_token(&self, tenant: &str, presented: &str) -> Option<String> {
        let (label, mac) = presented.rsplit_once(ADMIN_TOKEN_SEPARATOR)?;
        (is_valid_admin_label(label) && constant_time_eq(self.admin_mac(tenant, label).as_bytes(), mac.as_bytes()))
            .then(|| label.to_owned())
    }

    fn admin_mac(&self, tenant: &str, label: &str) -> String {
        // Tenant ids cannot hold a NUL, so the boundary between tenant and label is unambiguous.
        base64url_encode(&self.derive("config-admin-token", &format!("{tenant}\0{label}"))[..24])
    }
}

/// What separates an admin token's label from its MAC.
const ADMIN_TOKEN_SEPARATOR: char = '~';

/// Longest admin token label.
pub const MAX_ADMIN_LABEL_LEN: usize = 64;

/// Whether `label` can name an admin token's holder: 1 to 64 ASCII letters, digits, `.`, `_`,
/// `-` and `@` (an e-mail address or a system name fits).
pub fn is_valid_admin_label(label: &str) -> bool {
    !label.is_empty()
        && label.len() <= MAX_ADMIN_LABEL_LEN
        && label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'@'))
}

/// A tenant's cookie MAC key (SipHash-2-4, 128-bit).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CookieKey(pub [u8; 16]);

impl std::fmt::Debug for CookieKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CookieKey(..)")
    }
}

/// A tenant's beacon signing key (HMAC-SHA256).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct BeaconKey(pub [u8; 32]);

impl std::fmt::Debug for BeaconKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BeaconKey(..)")
    }
}

/// Why a beacon signature was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureError {
    /// The signature is not 64 hex characters.
    Malformed,
    /// The signature does not match the body, timestamp and tenant.
    Mismatch,
    /// The timestamp is outside the replay window around `now`.
    Expired {
        /// Seconds between the beacon's timestamp and `now` (positive: in the past).
        age_seconds: i64,
    },
}

impl std::fmt::Display for SignatureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SignatureError::Malformed => f.write_str("signature is not 64 hex characters"),
            SignatureError::Mismatch => f.write_str("signature does not match"),
            SignatureError::Expired { age_seconds } => {
                write!(f, "timestamp is {age_seconds} s from now, outside the replay window")
            }
        }
    }
}

impl std::error::Error for SignatureError {}

impl BeaconKey {
    fn mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = HmacSha256::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// Hex HMAC-SHA256 over `timestamp.body` (timestamp in Unix seconds).
    pub fn sign(&self, timestamp: i64, body: &[u8]) -> String {
        hex_encode(&self.mac(timestamp, body).finalize().into_bytes())
    }

    /// Verifies a signature in constant time and that `timestamp` lies within `window_seconds`
    /// of `now` (either side, for clock skew).
    pub fn verify(
        &self,
        timestamp: i64,
        body: &[u8],
        signature_hex: &str,
        now: i64,
        window_seconds: i64,
    ) -> Result<(), SignatureError> {
        let signature = hex_decode(signature_hex)
            .filter(|s| s.len() == 32)
            .ok_or(SignatureError::Malformed)?;
        self.mac(timestamp, body)
            .verify_slice(&signature)
            .map_err(|_| SignatureError::Mismatch)?;
        let age_seconds = now.saturating_sub(timestamp);
        if age_seconds.saturating_abs() > window_seconds {
            return Err(SignatureError::Expired { age_seconds });
        }
        Ok(())
    }
}

/// Equality that takes the same time wherever the first difference is (`subtle`); only the
/// lengths, which are public, are compared directly.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> MasterSecret {
        MasterSecret::new("test-master-secret-of-at-least-32-bytes!").unwrap()
    }

    #[test]
    fn keys_differ_by_tenant_and_purpose() {
        let s = secret();
        assert_ne!(s.cookie_key("shop"), s.cookie_key("news"));
        assert_ne!(s.beacon_key("shop"), s.beacon_key("news"));
        assert_ne!(s.beacon_key("shop").0[..16], s.cookie_key("shop").0);
        assert_ne!(s.results_read_token("shop"), s.results_read_token("news"));
        assert!(s.verify_results_read_token("shop", &s.results_read_token("shop")));
        assert!(!s.verify_results_read_token("news", &s.results_read_token("shop")));
        // Preview links: a key per tenant, unlike every other purpose's, and bound to the secret.
        assert_ne!(s.preview_key("shop"), s.preview_key("news"));
        assert_ne!(s.preview_key("shop"), s.beacon_key("shop").0);
        let other = MasterSecret::new("another-master-secret-of-32-bytes-or-more").unwrap();
        assert_ne!(s.preview_key("shop"), other.preview_key("shop"));
    }

    /// Secrets and keys never reach logs through `{:?}`; errors say what is wrong.
    #[test]
    fn secrets_do_not_print_and_errors_do() {
        let s = secret();
        assert_eq!(format!("{s:?}"), "MasterSecret(..)");
        for printed in [
            format!("{:?}", s.cookie_key("shop")),
            format!("{:?}", s.beacon_key("shop")),
        ] {
            assert!(printed.ends_with("(..)"), "{printed}");
            assert!(!printed.contains(&crate::encoding::hex_encode(&s.cookie_key("shop").0[..4])));
        }
        assert!(!MasterSecret::new("short").unwrap_err().to_string().is_empty());
    }

    #[test]
    fn constant_time_equality_is_equality() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
        assert!(!constant_time_eq(b"\x01\x02", b"\x02\x01"));
    }

    #[test]
    fn admin_tokens_name_their_holder_and_write_one_tenant_only() {
        let s = secret();
        let token = s.config_admin_token("shop", "ana@shop.example").unwrap();
        assert!(token.starts_with("ana@shop.example~"));
        assert_eq!(
            s.verify_config_admin_token("shop", &token).as_deref(),
            Some("ana@shop.example")
        );
        // Another tenant, a read token, a relabelled MAC and a bad label are all refused.
        assert_eq!(s.verify_config_admin_token("news", &token), None);
        assert_eq!(s.verify_config_admin_token("shop", &s.results_read_token("shop")), None);
        let relabelled = token.replace("ana@", "bob@");
        assert_eq!(s.verify_config_admin_token("shop", &relabelled), None);
        assert_ne!(
            s.config_admin_token("shop", "ana").unwrap(),
            s.config_admin_token("shop", "bob").unwrap()
        );
        assert_eq!(s.config_admin_token("shop", "has space"), None);
        assert_eq!(s.config_admin_token("shop", ""), None);
        assert_eq!(s.config_admin_token("shop", &"a".repeat(65)), None);
    }

    #[test]
    fn short_secrets_are_refused() {
        assert_eq!(MasterSecret::new("short").unwrap_err(), SecretError { len: 5 });
    }

    #[test]
    fn beacon_signatures_bind_tenant_body_and_time() {
        let s = secret();
        let key = s.beacon_key("shop");
        let sig = key.sign(1_800_000_000, b"[]");
        assert_eq!(key.verify(1_800_000_000, b"[]", &sig, 1_800_000_100, 300), Ok(()));
        assert_eq!(
            key.verify(1_800_000_000, b"[1]", &sig, 1_800_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(1_800_000_001, b"[]", &sig, 1_800_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            s.beacon_key("news")
                .verify(1_800_000_000, b"[]", &sig, 1_800_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            key.verify(1_800_000_000, b"[]", &sig, 1_800_000_301, 300),
            Err(SignatureError::Expired { age_seconds: 301 })
        );
        assert_eq!(
            key.verify(1_800_000_000, b"[]", "zz", 1_800_000_000, 300),
            Err(SignatureError::Malformed)
        );
    }
}
