//! Exposures and conversions on their way out, after the response (`ctx.wait_until`).
//!
//! Records are gathered per isolate for [`FLUSH_DELAY`] and handed on as one batch per kind and
//! tenant: a busy isolate makes one queue send (or subrequest) for many visitors instead of one per
//! visitor. The request that opens a window keeps the isolate alive (`wait_until`) until its flush
//! is done. A batch goes to the delivery queue (`BEACONS`, see `src/delivery.rs` for its consumer);
//! if the queue is missing or refuses the send, it is POSTed signed straight to the collector as
//! before (one retry), and what that cannot deliver is logged and counted as dropped.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::time::Duration;

use cohort_core::beacon::{MAX_BATCH_RECORDS, SIGNATURE_HEADER, TENANT_HEADER, TIMESTAMP_HEADER, sign_batch};
use cohort_core::delivery::{self, Kind};
use cohort_core::keys::BeaconKey;
use worker::wasm_bindgen::JsValue;
use worker::{Delay, Fetch, Headers, Method, Queue, QueueContentType, RawMessageBuilder, Request, RequestInit};

use crate::log;

/// Records of one kind and tenant, ready to leave.
pub struct Batch {
    /// Exposures or events.
    pub kind: Kind,
    /// Tenant whose key signs the batch.
    pub tenant: String,
    /// Its beacon key.
    pub key: BeaconKey,
    /// Each record's JSON.
    pub records: Vec<String>,
}

/// Where batches go: the delivery queue if bound, else (and as its fallback) the collector.
#[derive(Clone)]
pub struct Route {
    /// The producer binding of the delivery queue, or why there is none.
    pub queue: Result<Queue, String>,
    /// Collector base URL, for the direct fallback.
    pub collector: Option<String>,
}

/// How long records wait for company before their batch is sent.
pub const FLUSH_DELAY: Duration = Duration::from_millis(100);

/// Records waiting for one (kind, tenant).
struct Pending {
    key: BeaconKey,
    records: Vec<String>,
}

thread_local! {
    static PENDING: RefCell<HashMap<(Kind, String), Pending>> = RefCell::new(HashMap::new());
    /// Records this isolate could deliver neither to the queue nor to the collector.
    static DROPPED: Cell<u64> = const { Cell::new(0) };
}

/// Queues serialised records of `kind` under `tenant`'s key, and makes sure a flush is scheduled:
/// after [`FLUSH_DELAY`], or at once when a full batch is waiting.
pub fn enqueue(ctx: &worker::Context, route: Route, kind: Kind, tenant: &str, key: BeaconKey, records: Vec<String>) {
    let slot = (kind, tenant.to_owned());
    let (schedule, full) = PENDING.with(|pending| {
        let mut pending = pending.borrow_mut();
        let opened = !pending.contains_key(&slot);
        let entry = pending.entry(slot.clone()).or_insert_with(|| Pending {
            key,
            records: Vec::new(),
        });
        entry.records.extend(records);
        (opened, entry.records.len() >= MAX_BATCH_RECORDS)
    });
    if full {
        let batch = take(&slot);
        let route = route.clone();
        ctx.wait_until(async move {
            if let Some(batch) = batch {
                deliver(batch, &route).await;
            }
        });
    } else if schedule {
        ctx.wait_until(async move {
            Delay::from(FLUSH_DELAY).await;
            if let Some(batch) = take(&slot) {
                deliver(batch, &route).await;
            }
        });
    }
}

/// Everything waiting for `slot`; the next record opens a new window.
fn take(slot: &(Kind, String)) -> Option<Batch> {
    let pending = PENDING.with(|pending| pending.borrow_mut().remove(slot))?;
    Some(Batch {
        kind: slot.0,
        tenant: slot.1.clone(),
        key: pending.key,
        records: pending.records,
    })
}

/// To the queue; if that fails, straight to the collector. Never panics.
pub async fn deliver(batch: Batch, route: &Route) {
    let sent = match &route.queue {
        Ok(queue) => send_to_queue(queue, &batch).await.map_err(|e| e.to_string()),
        Err(missing) => Err(missing.clone()),
    };
    match sent {
        Ok(()) => return,
        Err(error) => log::event(
            "delivery.queue_failed",
            &[
                ("tenant", &batch.tenant),
                ("kind", batch.kind.as_str()),
                ("records", &batch.records.len().to_string()),
                ("error", &error),
                ("fallback", if route.collector.is_some() { "direct" } else { "none" }),
            ],
        ),
    }
    match &route.collector {
        Some(collector) => send_direct(batch, collector).await,
        None => dropped(&batch, "no delivery queue and COLLECTOR_URL is not set"),
    }
}

/// One text message per [`delivery::encode`] chunk (usually one). If a later chunk fails, the
/// whole batch goes the fallback way too; the collector ignores the records sent twice.
async fn send_to_queue(queue: &Queue, batch: &Batch) -> worker::Result<()> {
    for message in delivery::encode(batch.kind, &batch.tenant, &batch.records) {
        let message =
            RawMessageBuilder::new(JsValue::from_str(&message)).build_with_content_type(QueueContentType::Text);
        queue.send_raw(message).await?;
    }
    Ok(())
}

/// Logs and counts records that are lost.
pub fn dropped(batch: &Batch, reason: &str) {
    let total = DROPPED.with(|d| {
        d.set(d.get() + batch.records.len() as u64);
        d.get()
    });
    log::event(
        "beacon.dropped",
        &[
            ("tenant", &batch.tenant),
            ("kind", batch.kind.as_str()),
            ("records", &batch.records.len().to_string()),
            ("reason", reason),
            ("dropped_total", &total.to_string()),
        ],
    );
}

/// The direct path: signed POSTs of at most [`MAX_BATCH_RECORDS`] records; on failure waits and
/// tries once more, then logs the records as dropped.
async fn send_direct(batch: Batch, collector: &str) {
    let url = format!("{collector}{}", batch.kind.path());
    for chunk in batch.records.chunks(MAX_BATCH_RECORDS) {
        let body = format!("[{}]", chunk.join(",")).into_bytes();
        let mut reason = String::new();
        for attempt in 1..=2 {
            match post(&url, &batch.tenant, &batch.key, &body).await {
                Ok(answer) if (200..300).contains(&answer.status) => {
                    reason.clear();
                    break;
                }
                Ok(answer) => {
                    reason = format!("collector answered {}", answer.status);
                    log::event(
                        "beacon.failed",
                        &[
                            ("tenant", &batch.tenant),
                            ("status", &answer.status.to_string()),
                            ("attempt", &attempt.to_string()),
                        ],
                    );
                    if (400..500).contains(&answer.status) && answer.status != 429 {
                        break; // the collector refused the data; sending it again cannot help
                    }
                }
                Err(error) => {
                    reason = format!("collector unreachable: {error}");
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
        if !reason.is_empty() {
            let lost = Batch {
                kind: batch.kind,
                tenant: batch.tenant.clone(),
                key: batch.key,
                records: chunk.to_vec(),
            };
            dropped(&lost, &reason);
        }
    }
}

/// The collector's answer to one POST.
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response body (error details).
    pub body: String,
    /// `Retry-After`, if sent.
    pub retry_after: Option<String>,
}

/// POSTs `body` signed for `tenant` to `url`.
pub async fn post(url: &str, tenant: &str, key: &BeaconKey, body: &[u8]) -> worker::Result<Answer> {
    // Signed at send time, so a retry carries a fresh timestamp inside the replay window.
    let now = (worker::Date::now().as_millis() / 1000) as i64;
    let headers = Headers::new();
    headers.set("content-type", "application/json")?;
    let signed = sign_batch(key, tenant, now, body);
    headers.set(TENANT_HEADER, &signed.tenant)?;
    headers.set(TIMESTAMP_HEADER, &signed.timestamp)?;
    headers.set(SIGNATURE_HEADER, &signed.signature)?;
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(worker::js_sys::Uint8Array::from(body).into()));
    let request = Request::new_with_init(url, &init)?;
    let mut response = Fetch::Request(request).send().await?;
    let status = response.status_code();
    let retry_after = response.headers().get("retry-after").ok().flatten();
    let body = if (200..300).contains(&status) {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    Ok(Answer {
        status,
        body,
        retry_after,
    })
}
