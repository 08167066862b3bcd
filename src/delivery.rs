//! The delivery queue's consumer (same worker script, `queue` handler): the I/O of
//! [`cohort_core::delivery::consumer::Consumer`], which decides every acknowledgement, retry and
//! dead letter. Batches from the dead-letter queue (`DEAD_LETTER_QUEUE`) are logged, one structured
//! line per dead letter, and acknowledged.
//!
//! The handler is a plain `wasm_bindgen` export rather than `#[event(queue)]`: worker 0.8.7's
//! `Message` does not expose `attempts` (needed for the increasing delay and the dead-letter
//! decision), so it reads the JS messages itself; worker-build turns the `queue` export into the
//! worker class's `queue` method either way. It never returns an error (the generated glue would
//! turn one into a panic); whatever it cannot decide leaves the message to be retried.

use cohort_core::delivery::consumer::{Consumer, Incoming, MISCONFIGURED_DELAY_SECONDS, Outcome, Settlement};
use cohort_core::delivery::summarize_dead_letter;
use worker::js_sys::Array;
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Context as ContextSys, Message, MessageBatch};
use worker::{Env, QueueContentType, RawMessageBuilder};

use crate::settings::settings;
use crate::{beacon, js, log};

/// The worker's queue handler (exported as `queue`; `src/entry.mjs` guards it against traps).
#[wasm_bindgen(
    js_name = queue,
    wasm_bindgen = ::worker::wasm_bindgen,
    wasm_bindgen_futures = ::worker::wasm_bindgen_futures,
    js_sys = ::worker::js_sys
)]
pub async fn queue_handler(batch: MessageBatch, env: Env, _ctx: ContextSys) -> Result<JsValue, JsValue> {
    consume(&batch, &env).await;
    Ok(JsValue::UNDEFINED)
}

fn retry_options(delay_seconds: u32) -> JsValue {
    js::object("delaySeconds", JsValue::from(delay_seconds))
}

async fn consume(batch: &MessageBatch, env: &Env) {
    let queue = batch.queue().map(String::from).unwrap_or_default();
    let values: Vec<JsValue> = batch.messages().unwrap_or_else(|_| Array::new()).iter().collect();
    let incoming: Vec<Incoming> = values
        .iter()
        .map(|value| Incoming {
            id: js::text(value, "id"),
            attempts: js::field(value, "attempts").as_f64().unwrap_or(1.0).max(1.0) as u32,
            body: js::field(value, "body").as_string(),
        })
        .collect();
    let messages: Vec<&Message> = values.iter().map(|value| value.unchecked_ref::<Message>()).collect();
    let settings = match settings(env) {
        Ok(settings) => settings,
        Err(error) => {
            log::event("delivery.misconfigured", &[("queue", &queue), ("error", &error)]);
            let _ = batch.retry_all(retry_options(MISCONFIGURED_DELAY_SECONDS));
            return;
        }
    };
    if queue == settings.dead_letter_queue {
        log_dead_letters(&queue, &incoming, &messages);
        return;
    }
    let backlog = js::field(&js::field(&js::field(batch, "metadata"), "metrics"), "backlogCount").as_f64();
    let mut consumer = Consumer::new(incoming, settings.retry);
    match settings.collector_url.as_deref() {
        None => {
            log::event(
                "delivery.misconfigured",
                &[("queue", &queue), ("error", "COLLECTOR_URL is not set")],
            );
            consumer.hold_all("COLLECTOR_URL is not set");
        }
        Some(collector) => {
            while let Some(request) = consumer.next_request() {
                let key = settings.secret.beacon_key(&request.tenant);
                let url = format!("{collector}{}", request.kind.path());
                let answer = beacon::post(
                    &url,
                    &request.tenant,
                    &key,
                    request.body.as_bytes(),
                    settings.collector_timeout_ms,
                )
                .await;
                // Lets the end-to-end suite prove a trap in the consumer loses nothing.
                if settings.test_panics.delivery_tenant.as_deref() == Some(request.tenant.as_str()) {
                    panic!("deliberate panic in the queue consumer, for the fail-open test");
                }
                consumer.answer(answer);
            }
        }
    }
    let letters = consumer.dead_letters();
    let dlq = env.queue(&settings.dead_letter_binding).ok();
    for letter in &letters {
        let id = consumer.message_id(letter.message).to_owned();
        let sent = match &dlq {
            Some(dlq) => {
                let raw = RawMessageBuilder::new(JsValue::from_str(&letter.body))
                    .build_with_content_type(QueueContentType::Text);
                dlq.send_raw(raw).await.map_err(|e| e.to_string())
            }
            None => Err(format!("no dead-letter queue binding {}", settings.dead_letter_binding)),
        };
        match &sent {
            Ok(()) => log::event(
                "delivery.dead_lettered",
                &[
                    ("queue", &queue),
                    ("message_id", &id),
                    ("tenant", &letter.tenant),
                    ("kind", letter.kind.map_or("", |k| k.as_str())),
                    ("records", &letter.records.to_string()),
                    ("reason", &letter.reason),
                ],
            ),
            Err(error) => log::event(
                "delivery.dead_letter_failed",
                &[("queue", &queue), ("message_id", &id), ("error", error)],
            ),
        }
        consumer.dead_letter_sent(letter, sent.as_ref().map(|_| ()).map_err(String::as_str));
    }
    settle(&queue, &messages, consumer.finish(), backlog);
}

/// The dead-letter queue's consumer: one line per dead letter, then acknowledged.
fn log_dead_letters(queue: &str, incoming: &[Incoming], messages: &[&Message]) {
    for (message, raw) in incoming.iter().zip(messages) {
        let body = message.body.as_deref().unwrap_or("");
        let summary = summarize_dead_letter(body);
        log::event(
            "delivery.dead_letter",
            &[
                ("queue", queue),
                ("message_id", &message.id),
                ("reason", &summary.reason),
                ("tenant", summary.tenant.as_deref().unwrap_or("")),
                ("kind", summary.kind.map_or("", |k| k.as_str())),
                ("records", &summary.records.to_string()),
                ("ids", &summary.ids.join(",")),
                ("body", body),
            ],
        );
        let _ = raw.ack();
    }
}

/// Acknowledges or retries every message as decided, and logs the batch.
fn settle(queue: &str, messages: &[&Message], outcome: Outcome, backlog: Option<f64>) {
    for (message, settlement) in messages.iter().zip(&outcome.settlements) {
        let _ = match settlement {
            Settlement::Ack => message.ack(),
            Settlement::Retry { delay_seconds } => message.retry(retry_options(*delay_seconds)),
        };
    }
    let retried = outcome.retried();
    log::event(
        "delivery.batch",
        &[
            ("queue", queue),
            ("messages", &messages.len().to_string()),
            ("records", &outcome.records.to_string()),
            ("acked", &(messages.len() - retried).to_string()),
            ("retried", &retried.to_string()),
            ("retry_delay_seconds", &outcome.max_retry_delay_seconds.to_string()),
            ("dead_lettered_records", &outcome.dead_lettered_records.to_string()),
            ("max_attempts", &outcome.max_attempts.to_string()),
            ("collector_requests", &outcome.collector_requests.to_string()),
            ("backlog", &backlog.map_or("unknown".to_owned(), |b| b.to_string())),
            ("retry_reasons", &outcome.retry_reasons),
        ],
    );
}
