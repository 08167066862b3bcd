//! Signed beacons to the collector, sent after the response (`ctx.wait_until`).

use std::time::Duration;

use cohort_core::beacon::{SIGNATURE_HEADER, TENANT_HEADER, TIMESTAMP_HEADER};
use cohort_core::keys::BeaconKey;
use worker::{Delay, Fetch, Headers, Method, Request, RequestInit};

use crate::log;

/// Where and how to send one batch.
pub struct Batch {
    /// Collector base URL plus the endpoint path.
    pub url: String,
    /// Tenant whose key signs the batch.
    pub tenant: String,
    /// Its beacon key.
    pub key: BeaconKey,
    /// JSON array of records.
    pub body: Vec<u8>,
    /// Number of records, for the log.
    pub records: usize,
}

/// Sends the batch; on failure waits and tries once more, then logs it as dropped. Never panics.
pub async fn send(batch: Batch) {
    for attempt in 1..=2 {
        match post(&batch).await {
            Ok(status) if (200..300).contains(&status) => return,
            Ok(status) => {
                log::event(
                    "beacon.failed",
                    &[
                        ("tenant", &batch.tenant),
                        ("status", &status.to_string()),
                        ("attempt", &attempt.to_string()),
                    ],
                );
                if (400..500).contains(&status) && status != 429 {
                    break; // the collector refused the data; sending it again cannot help
                }
            }
            Err(error) => {
                log::event(
                    "beacon.failed",
                    &[
                        ("tenant", &batch.tenant),
                        ("error", &error.to_string()),
                        ("attempt", &attempt.to_string()),
                    ],
                );
            }
        }
        if attempt == 1 {
            Delay::from(Duration::from_millis(250)).await;
        }
    }
    log::event(
        "beacon.dropped",
        &[
            ("tenant", &batch.tenant),
            ("records", &batch.records.to_string()),
            ("url", &batch.url),
        ],
    );
}

async fn post(batch: &Batch) -> worker::Result<u16> {
    // Signed at send time, so a retry carries a fresh timestamp inside the replay window.
    let now = (worker::Date::now().as_millis() / 1000) as i64;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    headers.set(TENANT_HEADER, &batch.tenant)?;
    headers.set(TIMESTAMP_HEADER, &now.to_string())?;
    headers.set(SIGNATURE_HEADER, &batch.key.sign(now, &batch.body))?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(worker::js_sys::Uint8Array::from(batch.body.as_slice()).into()));
    let request = Request::new_with_init(&batch.url, &init)?;
    let response = Fetch::Request(request).send().await?;
    Ok(response.status_code())
}
