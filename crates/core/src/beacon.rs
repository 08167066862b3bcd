//! The beacon wire contract between the edge and the collector.
//!
//! `POST /v1/exposures` carries a JSON array of [`crate::Exposure`]; `POST /v1/events` a JSON array
//! of [`crate::Conversion`]. Every batch holds records of one tenant, named in [`TENANT_HEADER`],
//! and is signed with that tenant's beacon key: [`SIGNATURE_HEADER`] is the hex HMAC-SHA256 of
//! `"{timestamp}.{body}"`, [`TIMESTAMP_HEADER`] the Unix seconds it was signed at. The collector
//! refuses a timestamp more than [`REPLAY_WINDOW_SECONDS`] from its clock.

use crate::secrets::BeaconKey;

/// Request header naming the tenant whose key signed the batch.
pub const TENANT_HEADER: &str = "cohort-tenant";
/// Request header with the signing time, Unix seconds.
pub const TIMESTAMP_HEADER: &str = "cohort-timestamp";
/// Request header with the hex HMAC-SHA256 signature of `timestamp.body`.
pub const SIGNATURE_HEADER: &str = "cohort-signature";
/// How far a batch's timestamp may be from the collector's clock, either way.
pub const REPLAY_WINDOW_SECONDS: i64 = 300;
/// Most records in one batch.
pub const MAX_BATCH_RECORDS: usize = 1000;
/// Path of the exposure ingest endpoint.
pub const EXPOSURES_PATH: &str = "/v1/exposures";
/// Path of the conversion-event ingest endpoint.
pub const EVENTS_PATH: &str = "/v1/events";

/// The three headers that authenticate one batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedHeaders {
    /// Value of [`TENANT_HEADER`].
    pub tenant: String,
    /// Value of [`TIMESTAMP_HEADER`].
    pub timestamp: String,
    /// Value of [`SIGNATURE_HEADER`].
    pub signature: String,
}

/// Signs a batch body for `tenant` at `now` (Unix seconds) with the tenant's beacon key
/// ([`crate::MasterSecret::beacon_key`]).
pub fn sign_batch(key: &BeaconKey, tenant: &str, now: i64, body: &[u8]) -> SignedHeaders {
    SignedHeaders {
        tenant: tenant.to_owned(),
        timestamp: now.to_string(),
        signature: key.sign(now, body),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SignatureError;

    #[test]
    fn signed_batches_verify_for_their_tenant_only() {
        let secret = crate::MasterSecret::new("a-platform-secret-that-is-long-enough").unwrap();
        let headers = sign_batch(&secret.beacon_key("shop"), "shop", 1_800_000_000, b"[]");
        let timestamp: i64 = headers.timestamp.parse().unwrap();
        let verify = |tenant: &str| {
            secret.beacon_key(tenant).verify(
                timestamp,
                b"[]",
                &headers.signature,
                1_800_000_010,
                REPLAY_WINDOW_SECONDS,
            )
        };
        assert!(verify("shop").is_ok());
        assert!(verify("news").is_err());
    }

    #[test]
    fn the_replay_window_holds_its_edges_and_nothing_beyond() {
        // docs/collector.md and DESIGN.md quote the window in seconds.
        assert_eq!(REPLAY_WINDOW_SECONDS, 300);
        let secret = crate::MasterSecret::new("a-platform-secret-that-is-long-enough").unwrap();
        let key = secret.beacon_key("shop");
        let now = 1_800_000_000;
        let verify_signed_at = |signed_at: i64| {
            let headers = sign_batch(&key, "shop", signed_at, b"[]");
            let timestamp: i64 = headers.timestamp.parse().unwrap();
            key.verify(timestamp, b"[]", &headers.signature, now, REPLAY_WINDOW_SECONDS)
        };
        for skew in [-REPLAY_WINDOW_SECONDS, -1, 0, 1, REPLAY_WINDOW_SECONDS] {
            assert_eq!(verify_signed_at(now + skew), Ok(()), "signed {skew} s from now");
        }
        // Positive ages are in the past; a clock running ahead gives a negative one.
        assert_eq!(
            verify_signed_at(now - REPLAY_WINDOW_SECONDS - 1),
            Err(SignatureError::Expired { age_seconds: 301 })
        );
        assert_eq!(
            verify_signed_at(now + REPLAY_WINDOW_SECONDS + 1),
            Err(SignatureError::Expired { age_seconds: -301 })
        );
        // The far ends of the clock saturate instead of overflowing into the window.
        assert_eq!(
            verify_signed_at(i64::MIN),
            Err(SignatureError::Expired { age_seconds: i64::MAX })
        );
        assert_eq!(
            verify_signed_at(i64::MAX),
            Err(SignatureError::Expired {
                age_seconds: now - i64::MAX
            })
        );
    }
}
