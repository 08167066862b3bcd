//! The edge's producer: exposures and conversions gathered per isolate and handed on in batches.
//!
//! Records wait up to [`FLUSH_DELAY_MS`] for company and leave as one batch per kind and tenant,
//! so a busy isolate makes one queue send (or collector request) for many visitors instead of one
//! per visitor; a full batch leaves at once. A batch goes to the delivery queue; when the queue is
//! missing or refuses it, it is POSTed signed straight to the collector ([`direct_next`] decides
//! each attempt), and what cannot be delivered that way is counted as dropped. The worker keeps
//! one [`Outbox`] per isolate and does the sends.

use std::collections::HashMap;

use crate::beacon::MAX_BATCH_RECORDS;
use crate::delivery::Answer;
use crate::secrets::BeaconKey;
use crate::wire::{Kind, RecordJson, records_body};

/// How long records wait for company before their batch leaves.
pub const FLUSH_DELAY_MS: u64 = 100;
/// Attempts of one direct POST before its records are dropped.
pub const DIRECT_ATTEMPTS: u32 = 2;
/// Wait between direct attempts.
pub const DIRECT_RETRY_DELAY_MS: u64 = 250;

/// Records of one kind and tenant, ready to leave.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Exposures or events.
    pub kind: Kind,
    /// Tenant whose key signs the batch.
    pub tenant: String,
    /// Its beacon key.
    pub key: BeaconKey,
    /// The records.
    pub records: Vec<RecordJson>,
}

impl Outgoing {
    /// Bodies of the direct path's signed POSTs: at most [`MAX_BATCH_RECORDS`] records each.
    pub fn direct_bodies(&self) -> Vec<(usize, String)> {
        self.records
            .chunks(MAX_BATCH_RECORDS)
            .map(|chunk| (chunk.len(), records_body(&chunk.iter().collect::<Vec<_>>())))
            .collect()
    }
}

/// What the worker does after [`Outbox::add`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// A full batch is waiting: take it and send it now.
    Now,
    /// These records opened a window: take and send the batch after [`FLUSH_DELAY_MS`].
    After,
    /// A flush of this window is already scheduled.
    Scheduled,
}

#[derive(Debug)]
struct Pending {
    key: BeaconKey,
    records: Vec<RecordJson>,
}

/// Records waiting per (kind, tenant), and the count of records that could not be delivered.
#[derive(Debug, Default)]
pub struct Outbox {
    pending: HashMap<(Kind, String), Pending>,
    dropped: u64,
}

impl Outbox {
    /// Adds `records` of `kind` under `tenant`'s `key`; says when their batch should leave.
    pub fn add(&mut self, kind: Kind, tenant: &str, key: BeaconKey, records: Vec<RecordJson>) -> Flush {
        let slot = (kind, tenant.to_owned());
        let opened = !self.pending.contains_key(&slot);
        let pending = self.pending.entry(slot).or_insert_with(|| Pending {
            key,
            records: Vec::new(),
        });
        pending.records.extend(records);
        if pending.records.len() >= MAX_BATCH_RECORDS {
            Flush::Now
        } else if opened {
            Flush::After
        } else {
            Flush::Scheduled
        }
    }

    /// Everything waiting for (`kind`, `tenant`); the next record opens a new window.
    pub fn take(&mut self, kind: Kind, tenant: &str) -> Option<Outgoing> {
        let pending = self.pending.remove(&(kind, tenant.to_owned()))?;
        Some(Outgoing {
            kind,
            tenant: tenant.to_owned(),
            key: pending.key,
            records: pending.records,
        })
    }

    /// Counts `records` as lost; returns the isolate's total.
    pub fn dropped(&mut self, records: usize) -> u64 {
        self.dropped += records as u64;
        self.dropped
    }
}

/// What to do after attempt `attempt` (1-based) of a direct POST got `answer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectNext {
    /// Committed by the collector.
    Delivered,
    /// Wait [`DIRECT_RETRY_DELAY_MS`] and try again.
    Retry,
    /// Drop the records, with why: the collector refused them (sending them again cannot help)
    /// or the attempts are used up.
    GiveUp(String),
}

/// The direct path's rule, the consumer's reading of the answer ([`crate::delivery::classify`])
/// with a budget of [`DIRECT_ATTEMPTS`].
pub fn direct_next(answer: Answer, attempt: u32) -> DirectNext {
    match answer {
        Answer::Accepted => DirectNext::Delivered,
        Answer::Rejected { reason, .. } => DirectNext::GiveUp(reason),
        Answer::Transient { reason, .. } if attempt >= DIRECT_ATTEMPTS => DirectNext::GiveUp(reason),
        Answer::Transient { .. } => DirectNext::Retry,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MasterSecret;
    use crate::delivery::classify;

    fn records(n: usize) -> Vec<RecordJson> {
        (0..n)
            .map(|i| RecordJson::parse(&format!(r#"{{"id":"r{i}"}}"#)).unwrap())
            .collect()
    }

    #[test]
    fn a_window_opens_fills_and_leaves_whole() {
        let key = MasterSecret::new("s".repeat(32)).unwrap().beacon_key("shop");
        let mut outbox = Outbox::default();
        assert_eq!(outbox.add(Kind::Exposures, "shop", key, records(2)), Flush::After);
        assert_eq!(outbox.add(Kind::Exposures, "shop", key, records(3)), Flush::Scheduled);
        assert_eq!(
            outbox.add(Kind::Conversions, "shop", key, records(1)),
            Flush::After,
            "per kind"
        );
        assert_eq!(
            outbox.add(Kind::Exposures, "news", key, records(1)),
            Flush::After,
            "per tenant"
        );
        let batch = outbox.take(Kind::Exposures, "shop").unwrap();
        assert_eq!(batch.records.len(), 5);
        assert!(outbox.take(Kind::Exposures, "shop").is_none());
        assert_eq!(
            outbox.add(Kind::Exposures, "shop", key, records(1)),
            Flush::After,
            "a new window"
        );
        assert_eq!(
            outbox.add(Kind::Exposures, "shop", key, records(MAX_BATCH_RECORDS)),
            Flush::Now
        );
        let full = outbox.take(Kind::Exposures, "shop").unwrap();
        let bodies = full.direct_bodies();
        assert_eq!(
            bodies.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
            vec![MAX_BATCH_RECORDS, 1]
        );
        assert!(bodies[1].1 == format!(r#"[{{"id":"r{}"}}]"#, MAX_BATCH_RECORDS - 1));
        assert_eq!(outbox.dropped(3), 3);
        assert_eq!(outbox.dropped(2), 5);
    }

    #[test]
    fn the_direct_path_retries_once_and_never_resends_refused_data() {
        assert_eq!(direct_next(classify(Ok(202), "", None), 1), DirectNext::Delivered);
        assert_eq!(direct_next(classify(Ok(503), "", None), 1), DirectNext::Retry);
        assert_eq!(direct_next(classify(Ok(429), "", None), 1), DirectNext::Retry);
        assert_eq!(direct_next(classify(Err("reset"), "", None), 1), DirectNext::Retry);
        assert_eq!(
            direct_next(classify(Ok(503), "", None), 2),
            DirectNext::GiveUp("collector answered 503".into())
        );
        let refused = direct_next(
            classify(Ok(401), r#"{"error":{"code":"bad_signature","message":"no"}}"#, None),
            1,
        );
        assert_eq!(
            refused,
            DirectNext::GiveUp("collector answered 401 bad_signature: no".into())
        );
    }
}
