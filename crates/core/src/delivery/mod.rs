//! Durable beacon delivery through a queue (Cloudflare Queues at the edge): the message format,
//! how a consumer packs messages into collector batches, and what it does with each answer.
//!
//! The edge sends each isolate window's records of one tenant as an [`Envelope`] (a queue message
//! of at most [`crate::wire::MAX_MESSAGE_BYTES`]). The consumer decodes a batch of messages, [`pack`]s them
//! into signed collector batches of whole messages, and reads every answer with [`classify`]:
//!
//! - [`Answer::Accepted`] (2xx): the messages are acknowledged;
//! - [`Answer::Transient`] (no answer, 5xx, 429, anything unexpected): the messages are retried
//!   after [`RetryPolicy::delay_seconds`], until [`RetryPolicy::exhausted`] sends them to the
//!   dead-letter queue;
//! - [`Answer::Rejected`] (4xx but 429): [`reject`] dead-letters the record the collector named
//!   (or, without an index, isolates the message by resending messages one by one) and resends
//!   the rest at once.
//!
//! Queues deliver at least once; the collector makes redelivery harmless (the first exposure of a
//! tenant, experiment and unit wins; conversions are kept once per event id). Pure: no clock, no
//! I/O: [`consumer::Consumer`] drives these decisions for one queue batch, and the worker's
//! `src/delivery.rs` only carries them out.

use crate::beacon::MAX_BATCH_RECORDS;
use crate::wire::{DeadLetterMessage, ENVELOPE_VERSION, Envelope, ErrorDetail, Kind, RecordJson, records_body};

pub mod consumer;

/// Most bytes of one collector batch body (the collector's default limit is 1 MiB).
pub const MAX_BATCH_BYTES: usize = 900_000;

/// The records of one message inside a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Index of the message in the consumer's batch.
    pub message: usize,
    /// Its records still to be delivered.
    pub records: Vec<RecordJson>,
}

/// One signed request to the collector: whole messages of one tenant and kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Record kind (the endpoint).
    pub kind: Kind,
    /// Tenant.
    pub tenant: String,
    /// The messages it carries.
    pub parts: Vec<Part>,
}

impl Batch {
    /// The request body: a JSON array of every part's records.
    pub fn body(&self) -> String {
        let records: Vec<&RecordJson> = self.parts.iter().flat_map(|p| &p.records).collect();
        records_body(&records)
    }

    /// Number of records.
    pub fn records(&self) -> usize {
        self.parts.iter().map(|p| p.records.len()).sum()
    }

    /// The messages it carries.
    pub fn messages(&self) -> impl Iterator<Item = usize> + '_ {
        self.parts.iter().map(|p| p.message)
    }
}

fn part_bytes(part: &Part) -> usize {
    part.records.iter().map(|r| r.get().len() + 1).sum()
}

/// Packs decoded messages (`(index, envelope)`) into collector batches: per tenant and kind, whole
/// messages, at most [`MAX_BATCH_RECORDS`] records and [`MAX_BATCH_BYTES`] bytes each.
pub fn pack(messages: Vec<(usize, Envelope)>) -> Vec<Batch> {
    let mut messages = messages;
    messages.sort_by(|a, b| (a.1.tenant.as_str(), a.1.kind, a.0).cmp(&(b.1.tenant.as_str(), b.1.kind, b.0)));
    let mut batches: Vec<Batch> = Vec::new();
    let mut bytes = 0;
    for (message, envelope) in messages {
        let part = Part {
            message,
            records: envelope.records,
        };
        let size = part_bytes(&part);
        let fits = batches.last().is_some_and(|b| {
            b.tenant == envelope.tenant
                && b.kind == envelope.kind
                && b.records() + part.records.len() <= MAX_BATCH_RECORDS
                && bytes + size <= MAX_BATCH_BYTES
        });
        if fits {
            bytes += size;
            batches.last_mut().expect("checked").parts.push(part);
        } else {
            bytes = size + 2;
            batches.push(Batch {
                kind: envelope.kind,
                tenant: envelope.tenant,
                parts: vec![part],
            });
        }
    }
    batches
}

/// What the collector's answer to a batch means for its messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx: committed (new or duplicate); acknowledge.
    Accepted,
    /// Worth trying again later: no answer, 5xx, 429 or anything unexpected.
    Transient {
        /// Why, for the log.
        reason: String,
        /// The collector's `Retry-After`, seconds.
        retry_after: Option<u32>,
    },
    /// 4xx other than 429: the collector refuses the data; sending it again cannot help.
    Rejected {
        /// The HTTP status.
        status: u16,
        /// Why, for the log and the dead letter.
        reason: String,
        /// The record the collector named (`error.index`), if any.
        index: Option<usize>,
    },
}

/// Reads the collector's answer: `status` (`Err` with the error when no answer came), its body
/// and its `Retry-After` header.
pub fn classify(status: Result<u16, &str>, body: &str, retry_after: Option<&str>) -> Answer {
    let status = match status {
        Ok(status) => status,
        Err(error) => {
            return Answer::Transient {
                reason: format!("collector unreachable: {error}"),
                retry_after: None,
            };
        }
    };
    if (200..300).contains(&status) {
        return Answer::Accepted;
    }
    let detail = ErrorDetail::from_body(body);
    let mut reason = format!("collector answered {status}");
    if let Some(detail) = &detail {
        reason.push(' ');
        reason.push_str(detail.code.as_str());
    }
    if let Some(detail) = &detail {
        if let Some(index) = detail.index {
            reason.push_str(&format!(" at records[{index}]"));
            if let Some(field) = &detail.field {
                reason.push('.');
                reason.push_str(field);
            }
        }
        if !detail.message.is_empty() {
            reason.push_str(": ");
            reason.push_str(&detail.message);
        }
    }
    if (400..500).contains(&status) && status != 429 {
        return Answer::Rejected {
            status,
            reason,
            index: detail.and_then(|d| d.index),
        };
    }
    let retry_after = retry_after
        .and_then(|v| v.trim().parse().ok())
        .or(detail.and_then(|d| d.retry_after_seconds));
    Answer::Transient { reason, retry_after }
}

/// Records that will never be delivered, with why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The message they came from.
    pub message: usize,
    /// Kind of the records.
    pub kind: Kind,
    /// Tenant.
    pub tenant: String,
    /// The records.
    pub records: Vec<RecordJson>,
    /// Why they are dead.
    pub reason: String,
}

/// After a [`Answer::Rejected`] answer: the dead letters, and the batches to send again at once.
/// With an index, only the named record is dead (its message's other records and every other
/// message are resent); without one, a batch of several messages is split into one batch per
/// message, and a batch of one message is dead as a whole. Each call removes a record or splits
/// a batch, so a consumer repeating it ends after at most (records + messages) rounds.
pub fn reject(batch: Batch, reason: &str, index: Option<usize>) -> (Vec<DeadLetter>, Vec<Batch>) {
    let Batch {
        kind,
        tenant,
        mut parts,
    } = batch;
    if let Some(index) = index {
        let mut offset = 0;
        let found = parts.iter().position(|p| {
            let inside = index < offset + p.records.len();
            if !inside {
                offset += p.records.len();
            }
            inside
        });
        if let Some(position) = found {
            let record = parts[position].records.remove(index - offset);
            let dead = DeadLetter {
                message: parts[position].message,
                kind,
                tenant: tenant.clone(),
                records: vec![record],
                reason: reason.to_owned(),
            };
            parts.retain(|p| !p.records.is_empty());
            let rest = if parts.is_empty() {
                Vec::new()
            } else {
                vec![Batch { kind, tenant, parts }]
            };
            return (vec![dead], rest);
        }
    }
    if parts.len() > 1 {
        let split = parts
            .into_iter()
            .map(|part| Batch {
                kind,
                tenant: tenant.clone(),
                parts: vec![part],
            })
            .collect();
        return (Vec::new(), split);
    }
    let dead = parts
        .into_iter()
        .map(|part| DeadLetter {
            message: part.message,
            kind,
            tenant: tenant.clone(),
            records: part.records,
            reason: reason.to_owned(),
        })
        .collect();
    (dead, Vec::new())
}

/// How often and how patiently a message is retried while the collector cannot take it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Delay after the first failed attempt, seconds; doubles per attempt.
    pub base_delay_seconds: u32,
    /// Longest delay, seconds (Cloudflare allows up to 43,200).
    pub max_delay_seconds: u32,
    /// Attempts after which a message is dead-lettered instead of retried.
    pub max_attempts: u32,
}

impl RetryPolicy {
    /// Production defaults: 10 s doubling to one hour, 100 attempts: about 3.8 days of outage, a
    /// little under Cloudflare Queues' default retention of 4 days.
    pub const DEFAULT: RetryPolicy = RetryPolicy {
        base_delay_seconds: 10,
        max_delay_seconds: 3600,
        max_attempts: 100,
    };

    /// Delay before the next delivery of a message that has had `attempts` deliveries (1 on the
    /// first), at least the collector's `Retry-After`.
    pub fn delay_seconds(&self, attempts: u32, retry_after: Option<u32>) -> u32 {
        let doublings = attempts.saturating_sub(1).min(31);
        let delay = u64::from(self.base_delay_seconds) << doublings;
        let delay = delay.min(u64::from(self.max_delay_seconds)) as u32;
        delay.max(retry_after.unwrap_or(0).min(self.max_delay_seconds))
    }

    /// Whether a message that has had `attempts` deliveries goes to the dead-letter queue instead.
    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }

    /// Total seconds of waiting before a message is dead-lettered: how long an outage the queue
    /// bridges.
    pub fn patience_seconds(&self) -> u64 {
        (1..self.max_attempts)
            .map(|a| u64::from(self.delay_seconds(a, None)))
            .sum()
    }
}

/// The dead-letter queue message for `dead`.
pub fn dead_letter_body(dead: &DeadLetter, message_id: &str, attempts: u32, status: Option<u16>) -> String {
    DeadLetterMessage {
        v: ENVELOPE_VERSION,
        kind: dead.kind,
        tenant: dead.tenant.clone(),
        reason: dead.reason.clone(),
        status,
        attempts,
        message_id: message_id.to_owned(),
        records: dead.records.clone(),
    }
    .to_text()
}

/// What the dead-letter consumer logs for one dead letter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetterSummary {
    /// Why it is dead.
    pub reason: String,
    /// Tenant, if readable.
    pub tenant: Option<String>,
    /// Kind, if readable.
    pub kind: Option<Kind>,
    /// Number of records, if readable.
    pub records: usize,
    /// Ids of the records (exposure or event ids), if readable.
    pub ids: Vec<String>,
}

fn ids(records: &[RecordJson]) -> Vec<String> {
    records.iter().filter_map(RecordJson::id).collect()
}

/// Reads a dead-letter queue message: one written by [`dead_letter_body`], or an original
/// [`Envelope`] the queue itself moved there (its consumer kept failing), or anything else.
pub fn summarize_dead_letter(body: &str) -> DeadLetterSummary {
    if let Ok(dead) = serde_json::from_str::<DeadLetterMessage>(body) {
        return DeadLetterSummary {
            reason: dead.reason,
            tenant: Some(dead.tenant),
            kind: Some(dead.kind),
            records: dead.records.len(),
            ids: ids(&dead.records),
        };
    }
    if let Ok(wire) = serde_json::from_str::<Envelope>(body) {
        return DeadLetterSummary {
            reason: "moved by the queue: its consumer failed on every attempt".into(),
            tenant: Some(wire.tenant),
            kind: Some(wire.kind),
            records: wire.records.len(),
            ids: ids(&wire.records),
        };
    }
    DeadLetterSummary {
        reason: "undecodable message".into(),
        tenant: None,
        kind: None,
        records: 0,
        ids: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{MAX_MESSAGE_BYTES, decode, encode};
    use serde_json::Value;

    fn records(n: usize, pad: usize) -> Vec<RecordJson> {
        (0..n)
            .map(|i| RecordJson::parse(&format!(r#"{{"id":"r{i}","pad":"{}"}}"#, "x".repeat(pad))).unwrap())
            .collect()
    }

    fn envelope(tenant: &str, kind: Kind, n: usize) -> Envelope {
        Envelope {
            v: ENVELOPE_VERSION,
            kind,
            tenant: tenant.into(),
            records: records(n, 0),
        }
    }

    #[test]
    fn encode_and_decode_round_trip() {
        let records = records(3, 4);
        let messages = encode(Kind::Exposures, "shop", &records);
        assert_eq!(messages.len(), 1);
        let envelope = decode(&messages[0]).unwrap();
        assert_eq!(envelope.kind, Kind::Exposures);
        assert_eq!(envelope.tenant, "shop");
        assert_eq!(envelope.records, records);
    }

    #[test]
    fn encode_splits_by_bytes_and_records() {
        let big = records(50, 5_000);
        let messages = encode(Kind::Conversions, "news", &big);
        assert!(messages.len() > 1);
        assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        let back: Vec<RecordJson> = messages.iter().flat_map(|m| decode(m).unwrap().records).collect();
        assert_eq!(back, big);
        let many = records(2_500, 0);
        let messages = encode(Kind::Exposures, "shop", &many);
        assert_eq!(messages.len(), 3);
        assert!(
            messages
                .iter()
                .all(|m| decode(m).unwrap().records.len() <= MAX_BATCH_RECORDS)
        );
    }

    #[test]
    fn decode_refuses_what_it_cannot_deliver() {
        assert!(decode("not json").unwrap_err().contains("undecodable"));
        assert!(decode(r#"{"v":2,"kind":"events","tenant":"a","records":[{}]}"#).is_err());
        assert!(decode(r#"{"v":1,"kind":"events","tenant":"a","records":[]}"#).is_err());
        assert!(decode(r#"{"v":1,"kind":"clicks","tenant":"a","records":[{}]}"#).is_err());
    }

    #[test]
    fn pack_groups_whole_messages_per_tenant_and_kind() {
        let batches = pack(vec![
            (0, envelope("shop", Kind::Exposures, 600)),
            (1, envelope("news", Kind::Exposures, 10)),
            (2, envelope("shop", Kind::Exposures, 300)),
            (3, envelope("shop", Kind::Conversions, 2)),
            (4, envelope("shop", Kind::Exposures, 200)),
        ]);
        let shape: Vec<(&str, Kind, Vec<usize>)> = batches
            .iter()
            .map(|b| (b.tenant.as_str(), b.kind, b.messages().collect()))
            .collect();
        assert_eq!(
            shape,
            vec![
                ("news", Kind::Exposures, vec![1]),
                ("shop", Kind::Exposures, vec![0, 2]),
                ("shop", Kind::Exposures, vec![4]),
                ("shop", Kind::Conversions, vec![3]),
            ]
        );
        assert!(batches.iter().all(|b| b.records() <= MAX_BATCH_RECORDS));
        let body: Value = serde_json::from_str(&batches[1].body()).unwrap();
        assert_eq!(body.as_array().unwrap().len(), 900);
    }

    /// Batches stay within the collector's body limit by bytes as well as records, and each is
    /// filled as far as the next whole message allows.
    #[test]
    fn pack_fills_batches_up_to_the_byte_limit_and_no_further() {
        // Nine messages of ten ~11 KB records: about 990 KB in all, more than one batch holds.
        let messages: Vec<(usize, Envelope)> = (0..9)
            .map(|i| {
                let envelope = Envelope {
                    records: records(10, 11_000),
                    ..envelope("shop", Kind::Conversions, 0)
                };
                (i, envelope)
            })
            .collect();
        let message_bytes = messages[0].1.records.iter().map(|r| r.get().len() + 1).sum::<usize>();
        let batches = pack(messages);
        assert_eq!(batches.len(), 2);
        for batch in &batches {
            assert!(batch.body().len() <= MAX_BATCH_BYTES, "{} bytes", batch.body().len());
            let body: Value = serde_json::from_str(&batch.body()).unwrap();
            assert_eq!(body.as_array().unwrap().len(), batch.records());
        }
        assert!(
            batches[0].body().len() + message_bytes > MAX_BATCH_BYTES,
            "the first batch had room for another message"
        );
        assert_eq!(batches.iter().map(Batch::records).sum::<usize>(), 90);
    }

    #[test]
    fn classify_reads_status_and_error_body() {
        assert_eq!(classify(Ok(200), "{}", None), Answer::Accepted);
        assert!(matches!(
            classify(Err("refused"), "", None),
            Answer::Transient { retry_after: None, .. }
        ));
        assert!(matches!(classify(Ok(503), "", None), Answer::Transient { .. }));
        let limited = r#"{"error":{"code":"rate_limited","message":"slow down","retry_after_seconds":7}}"#;
        assert_eq!(
            classify(Ok(429), limited, None),
            Answer::Transient {
                reason: "collector answered 429 rate_limited: slow down".into(),
                retry_after: Some(7)
            }
        );
        assert!(matches!(
            classify(Ok(429), limited, Some("3")),
            Answer::Transient {
                retry_after: Some(3),
                ..
            }
        ));
        let invalid = r#"{"error":{"code":"invalid_record","message":"bad metric","index":4,"field":"metric"}}"#;
        assert_eq!(
            classify(Ok(400), invalid, None),
            Answer::Rejected {
                status: 400,
                reason: "collector answered 400 invalid_record at records[4].metric: bad metric".into(),
                index: Some(4)
            }
        );
        assert_eq!(
            classify(Ok(401), "nope", None),
            Answer::Rejected {
                status: 401,
                reason: "collector answered 401".into(),
                index: None
            }
        );
    }

    #[test]
    fn reject_with_index_dead_letters_one_record_and_resends_the_rest() {
        let batch = pack(vec![
            (0, envelope("shop", Kind::Conversions, 3)),
            (1, envelope("shop", Kind::Conversions, 2)),
        ])
        .remove(0);
        // records[4] is message 1's second record.
        let (dead, rest) = reject(batch, "bad", Some(4));
        assert_eq!(dead.len(), 1);
        assert_eq!(
            (dead[0].message, dead[0].records.clone()),
            (1, vec![RecordJson::parse(r#"{"id":"r1","pad":""}"#).unwrap()])
        );
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].records(), 4);
        // A message whose only record is dead leaves the batch.
        let single = pack(vec![
            (0, envelope("shop", Kind::Conversions, 1)),
            (1, envelope("shop", Kind::Conversions, 1)),
        ])
        .remove(0);
        let (dead, rest) = reject(single, "bad", Some(0));
        assert_eq!(dead[0].message, 0);
        assert_eq!(rest[0].messages().collect::<Vec<_>>(), vec![1]);
        let last = Batch {
            kind: Kind::Conversions,
            tenant: "shop".into(),
            parts: vec![Part {
                message: 5,
                records: vec![RecordJson::parse("{}").unwrap()],
            }],
        };
        let (dead, rest) = reject(last, "bad", Some(0));
        assert_eq!(dead.len(), 1);
        assert!(rest.is_empty());
    }

    #[test]
    fn reject_without_index_isolates_messages_then_dead_letters_one() {
        let batch = pack(vec![
            (0, envelope("shop", Kind::Conversions, 3)),
            (1, envelope("shop", Kind::Conversions, 2)),
        ])
        .remove(0);
        let (dead, split) = reject(batch.clone(), "bad", None);
        assert!(dead.is_empty());
        assert_eq!(split.len(), 2);
        let (dead, rest) = reject(split[1].clone(), "bad", None);
        assert_eq!((dead.len(), dead[0].message, dead[0].records.len()), (1, 1, 2));
        assert!(rest.is_empty());
        // An index past the end is treated as no index.
        let (dead, split) = reject(batch, "bad", Some(99));
        assert!(dead.is_empty());
        assert_eq!(split.len(), 2);
    }

    #[test]
    fn rejecting_repeatedly_terminates() {
        let mut work = pack((0..20).map(|i| (i, envelope("shop", Kind::Conversions, 5))).collect());
        let mut rounds = 0;
        let mut dead = 0;
        while let Some(batch) = work.pop() {
            rounds += 1;
            let (d, rest) = reject(batch, "bad", None);
            dead += d.iter().map(|d| d.records.len()).sum::<usize>();
            work.extend(rest);
        }
        assert_eq!(dead, 100);
        assert!(rounds <= 100 + 20);
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap_and_respects_retry_after() {
        let policy = RetryPolicy {
            base_delay_seconds: 10,
            max_delay_seconds: 3600,
            max_attempts: 100,
        };
        let delays: Vec<u32> = (1..=11).map(|a| policy.delay_seconds(a, None)).collect();
        assert_eq!(delays, vec![10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]);
        assert_eq!(policy.delay_seconds(1, Some(30)), 30);
        assert_eq!(policy.delay_seconds(1, Some(1_000_000)), 3600);
        assert_eq!(policy.delay_seconds(u32::MAX, None), 3600);
        assert!(!policy.exhausted(99));
        assert!(policy.exhausted(100));
        assert_eq!(RetryPolicy::DEFAULT, policy);
        // About 3.8 days: the queue's default retention (4 days) is the limit, not the retries.
        let days = policy.patience_seconds() as f64 / 86_400.0;
        assert!((3.7..4.0).contains(&days), "{days}");
    }

    #[test]
    fn dead_letters_carry_reason_and_records() {
        let dead = DeadLetter {
            message: 0,
            kind: Kind::Conversions,
            tenant: "shop".into(),
            records: vec![RecordJson::parse(r#"{"id":"order-9","metric":"poison"}"#).unwrap()],
            reason: "collector answered 400 invalid_record".into(),
        };
        let body = dead_letter_body(&dead, "m-1", 3, Some(400));
        let value: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(value["status"], 400);
        assert_eq!(value["attempts"], 3);
        assert_eq!(value["records"][0]["metric"], "poison");
        let summary = summarize_dead_letter(&body);
        assert_eq!(summary.reason, "collector answered 400 invalid_record");
        assert_eq!(summary.ids, vec!["order-9".to_owned()]);
        assert_eq!(summary.kind, Some(Kind::Conversions));
        let moved = summarize_dead_letter(&encode(Kind::Exposures, "shop", &records(2, 0))[0]);
        assert!(moved.reason.contains("moved by the queue"));
        assert_eq!(moved.records, 2);
        assert_eq!(summarize_dead_letter("garbage").reason, "undecodable message");
    }
}
