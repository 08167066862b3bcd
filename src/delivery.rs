//! The delivery queue's consumer (same worker script, `queue` handler): forwards message batches
//! to the collector as signed batches and acknowledges only what the collector committed.
//!
//! Every decision is `cohort_core::delivery`'s; this module reads the messages, makes the POSTs
//! and carries out ack / retry (with increasing delay) / dead-letter. Batches from the dead-letter
//! queue (`DEAD_LETTER_QUEUE`) are logged, one structured line per dead letter, and acknowledged.
//!
//! The handler is a plain `wasm_bindgen` export rather than `#[event(queue)]`: worker 0.8.7's
//! `Message` does not expose `attempts` (needed for the increasing delay and the dead-letter
//! decision), so it reads the JS messages itself; worker-build turns the `queue` export into the
//! worker class's `queue` method either way. It never returns an error (the generated glue would
//! turn one into a panic); whatever it cannot decide leaves the message to be retried.

use std::collections::BTreeMap;

use cohort_core::delivery::{self, Answer, DeadLetter, RetryPolicy};
use worker::js_sys::{Array, Object, Reflect};
use worker::wasm_bindgen::prelude::*;
use worker::wasm_bindgen::{JsCast, JsValue};
use worker::worker_sys::{Context as ContextSys, Message, MessageBatch};
use worker::{Env, QueueContentType, RawMessageBuilder};

use crate::beacon;
use crate::js_field;
use crate::log;
use crate::settings::{Settings, settings};

/// Most collector requests one invocation makes (rejections split batches and resend); what is
/// left then is retried later.
const MAX_REQUESTS: usize = 64;
/// Delay before a batch is retried when the worker itself is not configured (no secret, no URL).
const MISCONFIGURED_DELAY_SECONDS: u32 = 300;

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

/// One message as delivered.
struct Incoming {
    message: Message,
    id: String,
    attempts: u32,
    body: Option<String>,
}

/// What becomes of a message at the end of the invocation.
#[derive(Default)]
struct Fate {
    /// Retry after this many seconds (the largest asked for), with why.
    retry: Option<(u32, String)>,
}

fn incoming(batch: &MessageBatch) -> Vec<Incoming> {
    let messages = batch.messages().unwrap_or_else(|_| Array::new());
    messages
        .iter()
        .map(|value| {
            let id = js_field(&value, "id").as_string().unwrap_or_default();
            let attempts = js_field(&value, "attempts").as_f64().unwrap_or(1.0).max(1.0) as u32;
            let body = js_field(&value, "body").as_string();
            Incoming {
                message: value.unchecked_into::<Message>(),
                id,
                attempts,
                body,
            }
        })
        .collect()
}

/// `batch.metadata.metrics.backlogCount`, where the runtime reports it.
fn backlog(batch: &MessageBatch) -> Option<f64> {
    js_field(&js_field(&js_field(batch, "metadata"), "metrics"), "backlogCount").as_f64()
}

fn retry_options(delay_seconds: u32) -> JsValue {
    let options = Object::new();
    let _ = Reflect::set(
        &options,
        &JsValue::from_str("delaySeconds"),
        &JsValue::from(delay_seconds),
    );
    options.into()
}

async fn consume(batch: &MessageBatch, env: &Env) {
    let queue = batch.queue().map(String::from).unwrap_or_default();
    let messages = incoming(batch);
    let settings = match settings(env) {
        Ok(settings) => settings,
        Err(error) => {
            log::event(
                "delivery.misconfigured",
                &[("queue", &queue), ("error", &error.to_string())],
            );
            let _ = batch.retry_all(retry_options(MISCONFIGURED_DELAY_SECONDS));
            return;
        }
    };
    if queue == settings.dead_letter_queue {
        log_dead_letters(&queue, &messages);
        return;
    }
    deliver(&queue, &messages, &settings, env, backlog(batch)).await;
}

/// The dead-letter queue's consumer: one line per dead letter, then acknowledged.
fn log_dead_letters(queue: &str, messages: &[Incoming]) {
    for incoming in messages {
        let summary = delivery::summarize_dead_letter(incoming.body.as_deref().unwrap_or(""));
        log::event(
            "delivery.dead_letter",
            &[
                ("queue", queue),
                ("message_id", &incoming.id),
                ("reason", &summary.reason),
                ("tenant", summary.tenant.as_deref().unwrap_or("")),
                ("kind", summary.kind.map_or("", |k| k.as_str())),
                ("records", &summary.records.to_string()),
                ("ids", &summary.ids.join(",")),
                ("body", incoming.body.as_deref().unwrap_or("")),
            ],
        );
        let _ = incoming.message.ack();
    }
}

async fn deliver(queue: &str, messages: &[Incoming], settings: &Settings, env: &Env, backlog: Option<f64>) {
    let mut fates: Vec<Fate> = messages.iter().map(|_| Fate::default()).collect();
    let mut dead: Vec<(DeadLetter, Option<u16>)> = Vec::new();
    let mut undecodable: Vec<usize> = Vec::new();
    let mut decoded = Vec::new();
    for (index, incoming) in messages.iter().enumerate() {
        match incoming.body.as_deref().map(delivery::decode) {
            Some(Ok(envelope)) => decoded.push((index, envelope)),
            _ => undecodable.push(index),
        }
    }
    let records: usize = decoded.iter().map(|(_, e)| e.records.len()).sum();
    let Some(collector) = settings.collector_url.as_deref() else {
        log::event(
            "delivery.misconfigured",
            &[("queue", queue), ("error", "COLLECTOR_URL is not set")],
        );
        for fate in &mut fates {
            fate.retry = Some((MISCONFIGURED_DELAY_SECONDS, "COLLECTOR_URL is not set".into()));
        }
        finish(queue, messages, &fates, 0, records, backlog, 0);
        return;
    };

    let mut work = delivery::pack(decoded);
    let mut requests = 0;
    while let Some(batch) = work.pop() {
        let answer = if requests >= MAX_REQUESTS {
            Answer::Transient {
                reason: format!("more than {MAX_REQUESTS} collector requests for one queue batch"),
                retry_after: None,
            }
        } else {
            requests += 1;
            let key = settings.secret.beacon_key(&batch.tenant);
            let url = format!("{collector}{}", batch.kind.path());
            match beacon::post(&url, &batch.tenant, &key, batch.body().as_bytes()).await {
                Ok(answer) => delivery::classify(Ok(answer.status), &answer.body, answer.retry_after.as_deref()),
                Err(error) => delivery::classify(Err(&error.to_string()), "", None),
            }
        };
        match answer {
            Answer::Accepted => {}
            Answer::Transient { reason, retry_after } => {
                transient(
                    batch,
                    &reason,
                    retry_after,
                    messages,
                    &settings.retry,
                    &mut fates,
                    &mut dead,
                );
            }
            Answer::Rejected { status, reason, index } => {
                let (letters, rest) = delivery::reject(batch, &reason, index);
                dead.extend(letters.into_iter().map(|d| (d, Some(status))));
                work.extend(rest);
            }
        }
    }

    let dead_lettered = send_dead_letters(queue, messages, &undecodable, dead, settings, env, &mut fates).await;
    finish(queue, messages, &fates, requests, records, backlog, dead_lettered);
}

/// The collector could not take `batch` now: retry its messages later, or dead-letter those out
/// of attempts.
fn transient(
    batch: delivery::Batch,
    reason: &str,
    retry_after: Option<u32>,
    messages: &[Incoming],
    policy: &RetryPolicy,
    fates: &mut [Fate],
    dead: &mut Vec<(DeadLetter, Option<u16>)>,
) {
    let delivery::Batch { kind, tenant, parts } = batch;
    for part in parts {
        let attempts = messages[part.message].attempts;
        if policy.exhausted(attempts) {
            let letter = DeadLetter {
                message: part.message,
                kind,
                tenant: tenant.clone(),
                records: part.records,
                reason: format!("gave up after {attempts} attempts: {reason}"),
            };
            dead.push((letter, None));
        } else {
            let delay = policy.delay_seconds(attempts, retry_after);
            let fate = &mut fates[part.message];
            if fate.retry.as_ref().is_none_or(|(d, _)| *d < delay) {
                fate.retry = Some((delay, reason.to_owned()));
            }
        }
    }
}

/// Sends dead letters (with their reason) to the dead-letter queue; a message whose dead letter
/// cannot be sent is retried instead, so nothing is acknowledged without a trace. Returns how many
/// records were dead-lettered.
async fn send_dead_letters(
    queue: &str,
    messages: &[Incoming],
    undecodable: &[usize],
    dead: Vec<(DeadLetter, Option<u16>)>,
    settings: &Settings,
    env: &Env,
    fates: &mut [Fate],
) -> usize {
    if dead.is_empty() && undecodable.is_empty() {
        return 0;
    }
    let dlq = env.queue(&settings.dead_letter_binding).ok();
    let mut bodies: Vec<(usize, String, usize, &str, String, String)> = undecodable
        .iter()
        .map(|&i| {
            let body = messages[i].body.clone().unwrap_or_default();
            (i, body, 0, "", String::new(), "undecodable message".to_owned())
        })
        .collect();
    for (letter, status) in &dead {
        let incoming = &messages[letter.message];
        let body = delivery::dead_letter_body(letter, &incoming.id, incoming.attempts, *status);
        bodies.push((
            letter.message,
            body,
            letter.records.len(),
            letter.kind.as_str(),
            letter.tenant.clone(),
            letter.reason.clone(),
        ));
    }
    let mut count = 0;
    for (message, body, records, kind, tenant, reason) in bodies {
        let sent = match &dlq {
            Some(dlq) => {
                let raw =
                    RawMessageBuilder::new(JsValue::from_str(&body)).build_with_content_type(QueueContentType::Text);
                dlq.send_raw(raw).await.map_err(|e| e.to_string())
            }
            None => Err(format!("no dead-letter queue binding {}", settings.dead_letter_binding)),
        };
        match sent {
            Ok(()) => {
                count += records;
                log::event(
                    "delivery.dead_lettered",
                    &[
                        ("queue", queue),
                        ("message_id", &messages[message].id),
                        ("tenant", &tenant),
                        ("kind", kind),
                        ("records", &records.to_string()),
                        ("reason", &reason),
                    ],
                );
            }
            Err(error) => {
                log::event(
                    "delivery.dead_letter_failed",
                    &[
                        ("queue", queue),
                        ("message_id", &messages[message].id),
                        ("error", &error),
                    ],
                );
                let delay = settings.retry.delay_seconds(messages[message].attempts, None);
                fates[message].retry = Some((delay, format!("dead-letter queue: {error}")));
            }
        }
    }
    count
}

/// Acknowledges or retries every message and logs the batch.
fn finish(
    queue: &str,
    messages: &[Incoming],
    fates: &[Fate],
    requests: usize,
    records: usize,
    backlog: Option<f64>,
    dead_lettered: usize,
) {
    let mut retried = 0;
    let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
    let mut max_delay = 0;
    for (incoming, fate) in messages.iter().zip(fates) {
        match &fate.retry {
            Some((delay, reason)) => {
                retried += 1;
                max_delay = max_delay.max(*delay);
                *reasons.entry(reason.as_str()).or_default() += 1;
                let _ = incoming.message.retry(retry_options(*delay));
            }
            None => {
                let _ = incoming.message.ack();
            }
        }
    }
    let max_attempts = messages.iter().map(|m| m.attempts).max().unwrap_or(0);
    let reasons = reasons
        .iter()
        .map(|(reason, n)| format!("{n}x {reason}"))
        .collect::<Vec<_>>()
        .join("; ");
    log::event(
        "delivery.batch",
        &[
            ("queue", queue),
            ("messages", &messages.len().to_string()),
            ("records", &records.to_string()),
            ("acked", &(messages.len() - retried).to_string()),
            ("retried", &retried.to_string()),
            ("retry_delay_seconds", &max_delay.to_string()),
            ("dead_lettered_records", &dead_lettered.to_string()),
            ("max_attempts", &max_attempts.to_string()),
            ("collector_requests", &requests.to_string()),
            ("backlog", &backlog.map_or("unknown".to_owned(), |b| b.to_string())),
            ("retry_reasons", &reasons),
        ],
    );
}
