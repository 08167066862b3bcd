//! QA preview links: `?cohort_preview=<token>` forces variants for whoever holds a token signed for
//! the tenant and not yet expired. Anything else is ignored by the edge.
//!
//! Token: `base64url(payload) "." base64url(tag)`, payload the JSON
//! `{"t": tenant, "x": expiry (Unix seconds), "f": {experiment: variant}}`, tag the first 16 bytes
//! of HMAC-SHA256 under the tenant's preview key.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::encoding::{base64url_decode, base64url_encode};
use crate::secrets::constant_time_eq;

/// Longest token accepted before any decoding.
pub const MAX_TOKEN_LEN: usize = 2048;
const TAG_LEN: usize = 16;

/// What a preview token grants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preview {
    /// Tenant the token was signed for.
    #[serde(rename = "t")]
    pub tenant: String,
    /// Expiry, Unix seconds.
    #[serde(rename = "x")]
    pub expires: i64,
    /// Forced variants, experiment key → variant key.
    #[serde(rename = "f")]
    pub forced: BTreeMap<String, String>,
}

/// Why a token was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PreviewError {
    /// Not `payload.tag` in base64url, or too long.
    Malformed,
    /// The tag does not verify under this tenant's key.
    BadSignature,
    /// Signed for another tenant.
    WrongTenant,
    /// Past its expiry.
    Expired,
}

impl std::fmt::Display for PreviewError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PreviewError::Malformed => "preview token is malformed",
            PreviewError::BadSignature => "preview token signature does not verify",
            PreviewError::WrongTenant => "preview token is for another tenant",
            PreviewError::Expired => "preview token has expired",
        })
    }
}

impl std::error::Error for PreviewError {}

fn tag(key: &[u8; 32], payload: &[u8]) -> [u8; TAG_LEN] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(payload);
    let full = mac.finalize().into_bytes();
    let mut out = [0u8; TAG_LEN];
    out.copy_from_slice(&full[..TAG_LEN]);
    out
}

impl Preview {
    /// Signs the preview with the tenant's preview key ([`crate::MasterSecret::preview_key`]).
    pub fn sign(&self, key: &[u8; 32]) -> String {
        let payload = serde_json::to_vec(self).expect("a preview serialises");
        format!(
            "{}.{}",
            base64url_encode(&payload),
            base64url_encode(&tag(key, &payload))
        )
    }

    /// Verifies a token for `tenant` at `now` (Unix seconds).
    pub fn verify(token: &str, key: &[u8; 32], tenant: &str, now: i64) -> Result<Preview, PreviewError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(PreviewError::Malformed);
        }
        let (payload, presented) = token.split_once('.').ok_or(PreviewError::Malformed)?;
        let payload = base64url_decode(payload).ok_or(PreviewError::Malformed)?;
        let presented = base64url_decode(presented).ok_or(PreviewError::Malformed)?;
        if !constant_time_eq(&tag(key, &payload), &presented) {
            return Err(PreviewError::BadSignature);
        }
        let preview: Preview = serde_json::from_slice(&payload).map_err(|_| PreviewError::Malformed)?;
        if preview.tenant != tenant {
            return Err(PreviewError::WrongTenant);
        }
        if now >= preview.expires {
            return Err(PreviewError::Expired);
        }
        Ok(preview)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_verify_only_for_their_tenant_key_and_time() {
        let preview = Preview {
            tenant: "shop".into(),
            expires: 1_800_003_600,
            forced: BTreeMap::from([("checkout-flow".to_string(), "one-page".to_string())]),
        };
        let key = [1u8; 32];
        let token = preview.sign(&key);
        assert_eq!(
            Preview::verify(&token, &key, "shop", 1_800_000_000),
            Ok(preview.clone())
        );
        assert_eq!(
            Preview::verify(&token, &[2u8; 32], "shop", 1_800_000_000),
            Err(PreviewError::BadSignature)
        );
        assert_eq!(
            Preview::verify(&token, &key, "news", 1_800_000_000),
            Err(PreviewError::WrongTenant)
        );
        assert_eq!(
            Preview::verify(&token, &key, "shop", 1_800_003_600),
            Err(PreviewError::Expired)
        );
        assert_eq!(
            Preview::verify("garbage", &key, "shop", 0),
            Err(PreviewError::Malformed)
        );
        let (payload, _) = token.split_once('.').unwrap();
        let forged = format!("{payload}.{}", base64url_encode(&[0; 16]));
        assert_eq!(
            Preview::verify(&forged, &key, "shop", 0),
            Err(PreviewError::BadSignature)
        );
    }
}
