//! Exposures and conversions on their way out, after the response (`ctx.wait_until`): the sends
//! [`cohort_core::edge::outbox`] decides. A batch goes to the delivery queue (`BEACONS`; its
//! consumer is `src/delivery.rs`); if the queue is missing or refuses the send, it is POSTed signed
//! straight to the collector, and what that cannot deliver is logged and counted as dropped.

use std::cell::RefCell;
use std::future::{Future, poll_fn};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use std::time::Duration;

use cohort_core::beacon::{SIGNATURE_HEADER, TENANT_HEADER, TIMESTAMP_HEADER, sign_batch};
use cohort_core::delivery::{Answer, classify};
use cohort_core::edge::outbox::{
    DIRECT_RETRY_DELAY_MS, DirectNext, FLUSH_DELAY_MS, Flush, Outbox, Outgoing, direct_next,
};
use cohort_core::secrets::BeaconKey;
use cohort_core::wire::{self, Kind, RecordJson};
use worker::wasm_bindgen::JsValue;
use worker::{
    AbortController, AbortSignal, Context, Delay, Env, Fetch, Headers, Method, QueueContentType, RawMessageBuilder,
    Request, RequestInit,
};

use crate::log;
use crate::settings::Settings;

thread_local! {
    static OUTBOX: RefCell<Outbox> = RefCell::new(Outbox::default());
}

/// Adds `records` to the isolate's outbox and schedules their batch's send as the outbox says.
pub fn enqueue(
    ctx: &Context,
    env: &Env,
    settings: &Rc<Settings>,
    kind: Kind,
    tenant: &str,
    key: BeaconKey,
    records: Vec<RecordJson>,
) {
    let flush = OUTBOX.with(|outbox| outbox.borrow_mut().add(kind, tenant, key, records));
    let delay = match flush {
        Flush::Scheduled => return,
        Flush::Now => None,
        Flush::After => Some(Duration::from_millis(FLUSH_DELAY_MS)),
    };
    let (env, settings, tenant) = (env.clone(), settings.clone(), tenant.to_owned());
    ctx.wait_until(async move {
        if let Some(delay) = delay {
            Delay::from(delay).await;
        }
        if let Some(batch) = OUTBOX.with(|outbox| outbox.borrow_mut().take(kind, &tenant)) {
            deliver(batch, &env, &settings).await;
        }
    });
}

/// To the queue; if that fails, straight to the collector. Never panics.
async fn deliver(batch: Outgoing, env: &Env, settings: &Settings) {
    let sent = match env.queue(&settings.queue_binding) {
        Ok(queue) => send_to_queue(&queue, &batch).await,
        Err(error) => Err(format!("queue binding {}: {error}", settings.queue_binding)),
    };
    let Err(error) = sent else { return };
    log::event(
        "delivery.queue_failed",
        &[
            ("tenant", &batch.tenant),
            ("kind", batch.kind.as_str()),
            ("records", &batch.records.len().to_string()),
            ("error", &error),
            (
                "fallback",
                if settings.collector_url.is_some() {
                    "direct"
                } else {
                    "none"
                },
            ),
        ],
    );
    match &settings.collector_url {
        Some(collector) => send_direct(&batch, collector, settings.collector_timeout_ms).await,
        None => dropped(
            &batch,
            batch.records.len(),
            "no delivery queue and COLLECTOR_URL is not set",
        ),
    }
}

/// One text message per envelope (usually one). If a later one fails, the whole batch goes the
/// fallback way too; the collector ignores the records sent twice.
async fn send_to_queue(queue: &worker::Queue, batch: &Outgoing) -> Result<(), String> {
    for message in wire::encode(batch.kind, &batch.tenant, &batch.records) {
        let message =
            RawMessageBuilder::new(JsValue::from_str(&message)).build_with_content_type(QueueContentType::Text);
        queue.send_raw(message).await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Logs and counts records that are lost.
fn dropped(batch: &Outgoing, records: usize, reason: &str) {
    let total = OUTBOX.with(|outbox| outbox.borrow_mut().dropped(records));
    log::event(
        "beacon.dropped",
        &[
            ("tenant", &batch.tenant),
            ("kind", batch.kind.as_str()),
            ("records", &records.to_string()),
            ("reason", reason),
            ("dropped_total", &total.to_string()),
        ],
    );
}

/// The direct path: signed POSTs, each attempted as [`direct_next`] says.
async fn send_direct(batch: &Outgoing, collector: &str, timeout_ms: f64) {
    let url = format!("{collector}{}", batch.kind.path());
    for (records, body) in batch.direct_bodies() {
        let mut attempt = 1;
        loop {
            let answer = post(&url, &batch.tenant, &batch.key, body.as_bytes(), timeout_ms).await;
            if !matches!(answer, Answer::Accepted) {
                log::event(
                    "beacon.failed",
                    &[
                        ("tenant", &batch.tenant),
                        ("answer", &format!("{answer:?}")),
                        ("attempt", &attempt.to_string()),
                    ],
                );
            }
            match direct_next(answer, attempt) {
                DirectNext::Delivered => break,
                DirectNext::GiveUp(reason) => {
                    dropped(batch, records, &reason);
                    break;
                }
                DirectNext::Retry => {
                    Delay::from(Duration::from_millis(DIRECT_RETRY_DELAY_MS)).await;
                    attempt += 1;
                }
            }
        }
    }
}

/// POSTs `body` signed for `tenant` to `url`, and reads the answer ([`classify`]). A request that
/// has not been answered in full within `timeout_ms` is aborted and counts as unreachable (retried):
/// a collector that dies mid-answer behind a connection nobody closes would otherwise hold the
/// whole consumer batch until the platform ends it.
pub async fn post(url: &str, tenant: &str, key: &BeaconKey, body: &[u8], timeout_ms: f64) -> Answer {
    let controller = AbortController::default();
    let attempt = try_post(url, tenant, key, body, controller.signal());
    match within(Duration::from_millis(timeout_ms as u64), attempt).await {
        Some(Ok((status, body, retry_after))) => classify(Ok(status), &body, retry_after.as_deref()),
        Some(Err(error)) => classify(Err(&error.to_string()), "", None),
        None => {
            controller.abort();
            classify(Err(&format!("no answer within {} s", timeout_ms / 1000.0)), "", None)
        }
    }
}

/// `work`'s output, or `None` once `limit` has passed first. The timer is this request's own, so
/// workerd never sees it waiting on nothing.
async fn within<T>(limit: Duration, work: impl Future<Output = T>) -> Option<T> {
    let mut work = pin!(work);
    let mut timer = pin!(Delay::from(limit));
    poll_fn(|cx| {
        if let Poll::Ready(output) = work.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        timer.as_mut().poll(cx).map(|()| None)
    })
    .await
}

async fn try_post(
    url: &str,
    tenant: &str,
    key: &BeaconKey,
    body: &[u8],
    signal: AbortSignal,
) -> worker::Result<(u16, String, Option<String>)> {
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
    let mut response = Fetch::Request(request).send_with_signal(&signal).await?;
    let status = response.status_code();
    let retry_after = response.headers().get("retry-after").ok().flatten();
    let body = if (200..300).contains(&status) {
        String::new()
    } else {
        response.text().await.unwrap_or_default()
    };
    Ok((status, body, retry_after))
}
