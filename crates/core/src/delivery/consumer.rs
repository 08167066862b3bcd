//! The delivery queue's consumer as a state machine: the worker feeds it the messages of one
//! queue batch, asks it for the next collector request, tells it each answer, sends the dead
//! letters it hands out, and finally acknowledges or retries every message as [`Consumer::finish`]
//! says. No I/O and no clock: every retry, dead-letter and acknowledgement decision is made and
//! tested here; the worker only moves bytes.

use std::collections::BTreeMap;

use super::{Answer, Batch, DeadLetter, RetryPolicy, dead_letter_body, pack, reject};
use crate::wire::{self, Kind};

/// Most collector requests one invocation makes (rejections split batches and resend); what is
/// left then is retried later.
pub const MAX_REQUESTS: usize = 64;
/// Delay before a batch is retried when the worker itself is not configured (no secret, no URL).
pub const MISCONFIGURED_DELAY_SECONDS: u32 = 300;

/// One queue message as delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    /// The queue's message id.
    pub id: String,
    /// Deliveries so far, this one included (at least 1).
    pub attempts: u32,
    /// The body, if it is text.
    pub body: Option<String>,
}

/// A signed POST the worker makes for the consumer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorRequest {
    /// Tenant whose beacon key signs it.
    pub tenant: String,
    /// Record kind: the collector path is [`Kind::path`].
    pub kind: Kind,
    /// The body: a JSON array of records.
    pub body: String,
}

/// A dead letter for the worker to send to the dead-letter queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingDeadLetter {
    /// Index of the message it comes from.
    pub message: usize,
    /// The dead-letter queue message body.
    pub body: String,
    /// Records it carries (0 for an undecodable message, kept whole in `body`).
    pub records: usize,
    /// Kind of the records, if known.
    pub kind: Option<Kind>,
    /// Tenant, if known.
    pub tenant: String,
    /// Why the records are dead.
    pub reason: String,
}

/// What becomes of one message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    /// Acknowledge: delivered, or dead-lettered with a trace.
    Ack,
    /// Deliver again after this many seconds.
    Retry {
        /// Delay, seconds.
        delay_seconds: u32,
    },
}

/// The end of one invocation: one settlement per message, and the figures for its log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// One per message, in delivery order.
    pub settlements: Vec<Settlement>,
    /// Records in the decodable messages.
    pub records: usize,
    /// Collector requests made.
    pub collector_requests: usize,
    /// Records sent to the dead-letter queue.
    pub dead_lettered_records: usize,
    /// Longest retry delay asked for, seconds (0 when nothing is retried).
    pub max_retry_delay_seconds: u32,
    /// Most deliveries of any message.
    pub max_attempts: u32,
    /// Why messages are retried: `"<n>x <reason>"` joined with `; `.
    pub retry_reasons: String,
}

impl Outcome {
    /// Messages to be retried.
    pub fn retried(&self) -> usize {
        self.settlements
            .iter()
            .filter(|s| matches!(s, Settlement::Retry { .. }))
            .count()
    }
}

/// One invocation's consumer. Call [`Consumer::next_request`] until it returns `None`, passing
/// each answer to [`Consumer::answer`]; then send [`Consumer::dead_letters`], report each with
/// [`Consumer::dead_letter_sent`], and settle the messages as [`Consumer::finish`] says.
#[derive(Debug)]
pub struct Consumer {
    policy: RetryPolicy,
    attempts: Vec<u32>,
    /// Per message: retry after this many seconds (the largest asked for), with why.
    retries: Vec<Option<(u32, String)>>,
    work: Vec<Batch>,
    in_flight: Option<Batch>,
    requests: usize,
    records: usize,
    dead: Vec<(DeadLetter, Option<u16>)>,
    undecodable: Vec<usize>,
    bodies: Vec<Option<String>>,
    ids: Vec<String>,
    dead_lettered: usize,
}

impl Consumer {
    /// A consumer for `messages` under `policy`.
    pub fn new(messages: Vec<Incoming>, policy: RetryPolicy) -> Consumer {
        let mut decoded = Vec::new();
        let mut undecodable = Vec::new();
        for (index, message) in messages.iter().enumerate() {
            match message.body.as_deref().map(wire::decode) {
                Some(Ok(envelope)) => decoded.push((index, envelope)),
                _ => undecodable.push(index),
            }
        }
        let records = decoded.iter().map(|(_, e)| e.records.len()).sum();
        Consumer {
            policy,
            attempts: messages.iter().map(|m| m.attempts.max(1)).collect(),
            retries: vec![None; messages.len()],
            work: pack(decoded),
            in_flight: None,
            requests: 0,
            records,
            dead: Vec::new(),
            undecodable,
            ids: messages.iter().map(|m| m.id.clone()).collect(),
            bodies: messages.into_iter().map(|m| m.body).collect(),
            dead_lettered: 0,
        }
    }

    /// The queue's id of message `message` (for logs).
    pub fn message_id(&self, message: usize) -> &str {
        &self.ids[message]
    }

    /// Holds every message for a later retry because the worker cannot deliver at all (`reason`:
    /// what is missing from its configuration). Nothing is sent, nothing dead-lettered.
    pub fn hold_all(&mut self, reason: &str) {
        self.work.clear();
        self.undecodable.clear();
        for retry in &mut self.retries {
            *retry = Some((MISCONFIGURED_DELAY_SECONDS, reason.to_owned()));
        }
    }

    /// The next collector request, or `None` when there is nothing left to send. Answer each with
    /// [`Consumer::answer`] before asking again.
    pub fn next_request(&mut self) -> Option<CollectorRequest> {
        debug_assert!(self.in_flight.is_none(), "answer the request in flight first");
        while let Some(batch) = self.work.pop() {
            if self.requests >= MAX_REQUESTS {
                let reason = format!("more than {MAX_REQUESTS} collector requests for one queue batch");
                self.transient(batch, &reason, None);
                continue;
            }
            self.requests += 1;
            let request = CollectorRequest {
                tenant: batch.tenant.clone(),
                kind: batch.kind,
                body: batch.body(),
            };
            self.in_flight = Some(batch);
            return Some(request);
        }
        None
    }

    /// The collector's answer to the request in flight.
    pub fn answer(&mut self, answer: Answer) {
        let Some(batch) = self.in_flight.take() else {
            return;
        };
        match answer {
            Answer::Accepted => {}
            Answer::Transient { reason, retry_after } => self.transient(batch, &reason, retry_after),
            Answer::Rejected { status, reason, index } => {
                let (letters, rest) = reject(batch, &reason, index);
                self.dead.extend(letters.into_iter().map(|d| (d, Some(status))));
                self.work.extend(rest);
            }
        }
    }

    /// The collector could not take `batch` now: retry its messages later, or dead-letter those
    /// out of attempts.
    fn transient(&mut self, batch: Batch, reason: &str, retry_after: Option<u32>) {
        let Batch { kind, tenant, parts } = batch;
        for part in parts {
            let attempts = self.attempts[part.message];
            if self.policy.exhausted(attempts) {
                let letter = DeadLetter {
                    message: part.message,
                    kind,
                    tenant: tenant.clone(),
                    records: part.records,
                    reason: format!("gave up after {attempts} attempts: {reason}"),
                };
                self.dead.push((letter, None));
            } else {
                let delay = self.policy.delay_seconds(attempts, retry_after);
                let retry = &mut self.retries[part.message];
                if retry.as_ref().is_none_or(|(d, _)| *d < delay) {
                    *retry = Some((delay, reason.to_owned()));
                }
            }
        }
    }

    /// The dead letters to send, once [`Consumer::next_request`] has returned `None`: undecodable
    /// messages whole, and the records the collector refused or that ran out of attempts.
    pub fn dead_letters(&mut self) -> Vec<OutgoingDeadLetter> {
        let mut letters: Vec<OutgoingDeadLetter> = self
            .undecodable
            .drain(..)
            .map(|message| OutgoingDeadLetter {
                message,
                body: self.bodies[message].clone().unwrap_or_default(),
                records: 0,
                kind: None,
                tenant: String::new(),
                reason: "undecodable message".to_owned(),
            })
            .collect();
        for (letter, status) in self.dead.drain(..) {
            let body = dead_letter_body(
                &letter,
                &self.ids[letter.message],
                self.attempts[letter.message],
                status,
            );
            letters.push(OutgoingDeadLetter {
                message: letter.message,
                body,
                records: letter.records.len(),
                kind: Some(letter.kind),
                tenant: letter.tenant,
                reason: letter.reason,
            });
        }
        letters
    }

    /// Whether sending `letter` worked. A message whose dead letter could not be sent is retried
    /// instead, so nothing is acknowledged without a trace.
    pub fn dead_letter_sent(&mut self, letter: &OutgoingDeadLetter, sent: Result<(), &str>) {
        match sent {
            Ok(()) => self.dead_lettered += letter.records,
            Err(error) => {
                let delay = self.policy.delay_seconds(self.attempts[letter.message], None);
                self.retries[letter.message] = Some((delay, format!("dead-letter queue: {error}")));
            }
        }
    }

    /// Settles every message: retried if anything of it is to be retried, acknowledged otherwise.
    pub fn finish(self) -> Outcome {
        let mut reasons: BTreeMap<&str, usize> = BTreeMap::new();
        let mut max_retry_delay_seconds = 0;
        let settlements = self
            .retries
            .iter()
            .map(|retry| match retry {
                Some((delay, reason)) => {
                    max_retry_delay_seconds = max_retry_delay_seconds.max(*delay);
                    *reasons.entry(reason.as_str()).or_default() += 1;
                    Settlement::Retry { delay_seconds: *delay }
                }
                None => Settlement::Ack,
            })
            .collect();
        let retry_reasons = reasons
            .iter()
            .map(|(reason, n)| format!("{n}x {reason}"))
            .collect::<Vec<_>>()
            .join("; ");
        Outcome {
            settlements,
            records: self.records,
            collector_requests: self.requests,
            dead_lettered_records: self.dead_lettered,
            max_retry_delay_seconds,
            max_attempts: self.attempts.iter().copied().max().unwrap_or(0),
            retry_reasons,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::classify;
    use crate::wire::{DeadLetterMessage, RecordJson, encode};

    const POLICY: RetryPolicy = RetryPolicy {
        base_delay_seconds: 10,
        max_delay_seconds: 3600,
        max_attempts: 5,
    };

    fn message(id: &str, attempts: u32, tenant: &str, ids: &[&str]) -> Incoming {
        let records: Vec<RecordJson> = ids
            .iter()
            .map(|id| RecordJson::parse(&format!(r#"{{"id":"{id}"}}"#)).unwrap())
            .collect();
        Incoming {
            id: id.into(),
            attempts,
            body: Some(encode(Kind::Exposures, tenant, &records).remove(0)),
        }
    }

    /// Runs the consumer against a collector that answers each request with `collector(body)`.
    fn run(consumer: &mut Consumer, mut collector: impl FnMut(&CollectorRequest) -> Answer) -> Vec<CollectorRequest> {
        let mut sent = Vec::new();
        while let Some(request) = consumer.next_request() {
            let answer = collector(&request);
            sent.push(request);
            consumer.answer(answer);
        }
        sent
    }

    #[test]
    fn accepted_batches_are_acknowledged() {
        let mut consumer = Consumer::new(
            vec![message("m1", 1, "shop", &["a", "b"]), message("m2", 1, "shop", &["c"])],
            POLICY,
        );
        let sent = run(&mut consumer, |_| Answer::Accepted);
        assert_eq!(sent.len(), 1, "one tenant and kind: one request");
        assert_eq!(sent[0].body, r#"[{"id":"a"},{"id":"b"},{"id":"c"}]"#);
        assert!(consumer.dead_letters().is_empty());
        let outcome = consumer.finish();
        assert_eq!(outcome.settlements, vec![Settlement::Ack, Settlement::Ack]);
        assert_eq!(
            (outcome.records, outcome.collector_requests, outcome.retried()),
            (3, 1, 0)
        );
    }

    #[test]
    fn transient_answers_retry_with_the_longest_delay_until_attempts_run_out() {
        let mut consumer = Consumer::new(
            vec![message("m1", 1, "shop", &["a"]), message("m2", 5, "news", &["b"])],
            POLICY,
        );
        run(&mut consumer, |_| classify(Ok(503), "", Some("120")));
        let letters = consumer.dead_letters();
        assert_eq!(letters.len(), 1, "m2 is out of attempts");
        assert_eq!((letters[0].message, letters[0].records), (1, 1));
        assert!(
            letters[0]
                .reason
                .starts_with("gave up after 5 attempts: collector answered 503")
        );
        let body: DeadLetterMessage = serde_json::from_str(&letters[0].body).unwrap();
        assert_eq!((body.message_id.as_str(), body.status, body.attempts), ("m2", None, 5));
        consumer.dead_letter_sent(&letters[0], Ok(()));
        let outcome = consumer.finish();
        assert_eq!(
            outcome.settlements,
            vec![Settlement::Retry { delay_seconds: 120 }, Settlement::Ack]
        );
        assert_eq!(outcome.dead_lettered_records, 1);
        assert_eq!(outcome.retry_reasons, "1x collector answered 503");
    }

    #[test]
    fn a_rejected_record_is_dead_lettered_and_the_rest_resent() {
        let mut consumer = Consumer::new(vec![message("m1", 1, "shop", &["a", "bad", "c"])], POLICY);
        let mut bodies = Vec::new();
        run(&mut consumer, |request| {
            bodies.push(request.body.clone());
            if request.body.contains("bad") {
                classify(
                    Ok(400),
                    r#"{"error":{"code":"invalid_record","message":"no","index":1,"field":"unit"}}"#,
                    None,
                )
            } else {
                Answer::Accepted
            }
        });
        assert_eq!(
            bodies,
            vec![r#"[{"id":"a"},{"id":"bad"},{"id":"c"}]"#, r#"[{"id":"a"},{"id":"c"}]"#]
        );
        let letters = consumer.dead_letters();
        assert_eq!(letters.len(), 1);
        let body: DeadLetterMessage = serde_json::from_str(&letters[0].body).unwrap();
        assert_eq!(body.status, Some(400));
        assert_eq!(body.records[0].get(), r#"{"id":"bad"}"#);
        consumer.dead_letter_sent(&letters[0], Ok(()));
        assert_eq!(consumer.finish().settlements, vec![Settlement::Ack]);
    }

    #[test]
    fn a_dead_letter_that_cannot_be_sent_keeps_its_message_for_a_retry() {
        let mut consumer = Consumer::new(
            vec![
                Incoming {
                    id: "junk".into(),
                    attempts: 2,
                    body: Some("not an envelope".into()),
                },
                message("m2", 1, "shop", &["a"]),
            ],
            POLICY,
        );
        run(&mut consumer, |_| Answer::Accepted);
        let letters = consumer.dead_letters();
        assert_eq!(letters.len(), 1);
        assert_eq!((letters[0].body.as_str(), letters[0].records), ("not an envelope", 0));
        consumer.dead_letter_sent(&letters[0], Err("queue refused"));
        let outcome = consumer.finish();
        assert_eq!(
            outcome.settlements,
            vec![Settlement::Retry { delay_seconds: 20 }, Settlement::Ack]
        );
        assert_eq!(outcome.retry_reasons, "1x dead-letter queue: queue refused");
    }

    #[test]
    fn requests_are_capped_per_invocation_and_the_rest_retried() {
        let messages: Vec<Incoming> = (0..MAX_REQUESTS + 3)
            .map(|i| message(&format!("m{i}"), 1, &format!("t{i:03}"), &["a"]))
            .collect();
        let mut consumer = Consumer::new(messages, POLICY);
        let sent = run(&mut consumer, |_| Answer::Accepted);
        assert_eq!(sent.len(), MAX_REQUESTS);
        let outcome = consumer.finish();
        assert_eq!(outcome.retried(), 3);
        assert_eq!(outcome.collector_requests, MAX_REQUESTS);
    }

    #[test]
    fn a_misconfigured_worker_holds_everything() {
        let mut consumer = Consumer::new(
            vec![
                message("m1", 1, "shop", &["a"]),
                Incoming {
                    id: "x".into(),
                    attempts: 1,
                    body: None,
                },
            ],
            POLICY,
        );
        consumer.hold_all("COLLECTOR_URL is not set");
        assert_eq!(consumer.next_request(), None);
        assert!(consumer.dead_letters().is_empty());
        let outcome = consumer.finish();
        let hold = Settlement::Retry {
            delay_seconds: MISCONFIGURED_DELAY_SECONDS,
        };
        assert_eq!(outcome.settlements, vec![hold, hold]);
        assert_eq!(outcome.retry_reasons, "2x COLLECTOR_URL is not set");
    }
}
