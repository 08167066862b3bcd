//! Signed beacons to the collector, sent after the response (`ctx.wait_until`).
//!
//! Records are gathered per isolate for [`FLUSH_DELAY`] and sent as one batch per collector
//! endpoint and tenant: a busy isolate makes one subrequest for many visitors instead of one per
//! visitor, which is most of what a new visitor costs the edge. The request that opens a window
//! keeps the isolate alive (`wait_until`) until its flush has been sent.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use cohort_core::beacon::MAX_BATCH_RECORDS;

use cohort_core::beacon::{SIGNATURE_HEADER, TENANT_HEADER, TIMESTAMP_HEADER, sign_batch};
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

/// How long records wait for company before their batch is sent.
pub const FLUSH_DELAY: Duration = Duration::from_millis(100);

/// Records waiting for one (collector URL, tenant).
struct Pending {
    key: BeaconKey,
    records: Vec<String>,
    flush_scheduled: bool,
}

thread_local! {
    static PENDING: RefCell<HashMap<(String, String), Pending>> = RefCell::new(HashMap::new());
}

/// Queues serialised records for `url` (collector base URL plus endpoint path) under `tenant`'s
/// key, and makes sure a flush is scheduled: after [`FLUSH_DELAY`], or at once when a full batch
/// is waiting.
pub fn enqueue(ctx: &worker::Context, url: String, tenant: &str, key: BeaconKey, records: Vec<String>) {
    let slot = (url, tenant.to_owned());
    let (schedule, full) = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let entry = pending.entry(slot.clone()).or_insert_with(|| Pending {
            key,
            records: Vec::new(),
            flush_scheduled: false,
        });
        entry.records.extend(records);
        let schedule = !entry.flush_scheduled;
        entry.flush_scheduled = true;
        (schedule, entry.records.len() >= MAX_BATCH_RECORDS)
    });
    if full {
        let batches = take(&slot);
        ctx.wait_until(async move {
            for batch in batches {
                send(batch).await;
            }
        });
    }
    if schedule {
        ctx.wait_until(async move {
            Delay::from(FLUSH_DELAY).await;
            for batch in take(&slot) {
                send(batch).await;
            }
        });
    }
}

/// Everything waiting for `slot`, in batches of at most [`MAX_BATCH_RECORDS`]; the next record
/// opens a new window.
fn take(slot: &(String, String)) -> Vec<Batch> {
    let Some(pending) = PENDING.with(|pending| pending.borrow_mut().remove(slot)) else {
        return Vec::new();
    };
    pending
        .records
        .chunks(MAX_BATCH_RECORDS)
        .map(|chunk| Batch {
            url: slot.0.clone(),
            tenant: slot.1.clone(),
            key: pending.key,
            body: format!("[{}]", chunk.join(",")).into_bytes(),
            records: chunk.len(),
        })
        .collect()
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
    let signed = sign_batch(&batch.key, &batch.tenant, now, &batch.body);
    headers.set(TENANT_HEADER, &signed.tenant)?;
    headers.set(TIMESTAMP_HEADER, &signed.timestamp)?;
    headers.set(SIGNATURE_HEADER, &signed.signature)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(worker::js_sys::Uint8Array::from(batch.body.as_slice()).into()));
    let request = Request::new_with_init(&batch.url, &init)?;
    let response = Fetch::Request(request).send().await?;
    Ok(response.status_code())
}
