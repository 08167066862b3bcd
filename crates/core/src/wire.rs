//! The wire contracts between Cohort's parts, each defined once: the edge KV layout, the queue
//! envelope between the edge's producer and its consumer, the collector's error body (written by
//! the collector, read by the consumer and by the edge's own endpoints), and a record kept as its
//! JSON text on the way through. The decision JSON is [`crate::Decision`]'s `Serialize`.

use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::beacon::{EVENTS_PATH, EXPOSURES_PATH, MAX_BATCH_RECORDS};

/// KV key of the tenant id serving a hostname: `host:<hostname>` (hostname lowercase).
pub fn host_key(host: &str) -> String {
    format!("host:{host}")
}

/// KV key of a tenant's config JSON: `tenant:<id>`.
pub fn tenant_key(tenant: &str) -> String {
    format!("tenant:{tenant}")
}

/// One KV entry, in the shape of wrangler's and Cloudflare's bulk-write API (`[{key, value}]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KvEntry {
    /// The key.
    pub key: String,
    /// The value.
    pub value: String,
}

/// The KV entries that publish a tenant: its config JSON (`config_json`, exactly as validated)
/// under [`tenant_key`], and its id under [`host_key`] for each of its hostnames.
pub fn kv_entries(tenant: &crate::Tenant, config_json: &str) -> Vec<KvEntry> {
    let config = KvEntry {
        key: tenant_key(&tenant.id),
        value: config_json.to_owned(),
    };
    let hosts = tenant.hostnames.iter().map(|host| KvEntry {
        key: host_key(host),
        value: tenant.id.clone(),
    });
    std::iter::once(config).chain(hosts).collect()
}

/// Most bytes of one queue message body (Cloudflare Queues allows 128 KB including about 100
/// bytes of metadata; this leaves room).
pub const MAX_MESSAGE_BYTES: usize = 100_000;
/// Envelope format version.
pub const ENVELOPE_VERSION: u8 = 1;

/// What a queue message or a collector batch carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// [`crate::Exposure`] records, for `POST /v1/exposures`.
    Exposures,
    /// [`crate::Conversion`] records, for `POST /v1/events`. (The wire keeps the word `events`,
    /// the collector's path and the name queued messages already carry.)
    #[serde(rename = "events")]
    Conversions,
}

impl Kind {
    /// The collector endpoint path.
    pub fn path(self) -> &'static str {
        match self {
            Kind::Exposures => EXPOSURES_PATH,
            Kind::Conversions => EVENTS_PATH,
        }
    }

    /// The name used in messages and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Exposures => "exposures",
            Kind::Conversions => "events",
        }
    }
}

/// One record (an exposure or a conversion) kept as the JSON text it was serialised to, so it
/// crosses the queue and reaches the collector without being parsed and printed again.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordJson(Box<RawValue>);

impl RecordJson {
    /// Serialises `record`.
    pub fn of<T: Serialize + ?Sized>(record: &T) -> serde_json::Result<RecordJson> {
        serde_json::value::to_raw_value(record).map(RecordJson)
    }

    /// A record from JSON text (checked to be JSON).
    pub fn parse(text: &str) -> serde_json::Result<RecordJson> {
        RawValue::from_string(text.to_owned()).map(RecordJson)
    }

    /// The JSON text.
    pub fn get(&self) -> &str {
        self.0.get()
    }

    /// The record's `id` field, if it has one (for logs of dead letters).
    pub fn id(&self) -> Option<String> {
        #[derive(Deserialize)]
        struct WithId {
            id: String,
        }
        serde_json::from_str::<WithId>(self.get()).ok().map(|r| r.id)
    }
}

impl PartialEq for RecordJson {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl Eq for RecordJson {}

/// A JSON array of records: the body of a collector batch.
pub fn records_body(records: &[&RecordJson]) -> String {
    serde_json::to_string(records).expect("records are JSON already")
}

/// One queue message: records of one tenant and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u8,
    /// Record kind.
    pub kind: Kind,
    /// Tenant whose key signs the records.
    pub tenant: String,
    /// The records.
    pub records: Vec<RecordJson>,
}

#[derive(Serialize)]
struct EnvelopeRef<'a> {
    v: u8,
    kind: Kind,
    tenant: &'a str,
    records: &'a [RecordJson],
}

fn envelope_text(kind: Kind, tenant: &str, records: &[RecordJson]) -> String {
    let envelope = EnvelopeRef {
        v: ENVELOPE_VERSION,
        kind,
        tenant,
        records,
    };
    serde_json::to_string(&envelope).expect("records are JSON already")
}

/// Queue message bodies for `records`: as few as fit, each at most [`MAX_MESSAGE_BYTES`] and
/// [`MAX_BATCH_RECORDS`] records (a single record larger than that still gets a message of its own,
/// which the queue will refuse).
pub fn encode(kind: Kind, tenant: &str, records: &[RecordJson]) -> Vec<String> {
    let overhead = envelope_text(kind, tenant, &[]).len();
    let mut messages = Vec::new();
    let mut start = 0;
    let mut bytes = overhead;
    for (i, record) in records.iter().enumerate() {
        let size = record.get().len() + 1;
        if i > start && (bytes + size > MAX_MESSAGE_BYTES || i - start >= MAX_BATCH_RECORDS) {
            messages.push(envelope_text(kind, tenant, &records[start..i]));
            start = i;
            bytes = overhead;
        }
        bytes += size;
    }
    if start < records.len() {
        messages.push(envelope_text(kind, tenant, &records[start..]));
    }
    messages
}

/// Reads a message body written by [`encode`]; the error says why it cannot be delivered.
pub fn decode(body: &str) -> Result<Envelope, String> {
    let envelope: Envelope = serde_json::from_str(body).map_err(|e| format!("undecodable message: {e}"))?;
    if envelope.v != ENVELOPE_VERSION {
        return Err(format!("unsupported message version {}", envelope.v));
    }
    if envelope.records.is_empty() || envelope.records.len() > MAX_BATCH_RECORDS {
        return Err(format!("{} records in one message", envelope.records.len()));
    }
    Ok(envelope)
}

/// A message on the dead-letter queue: the reason, where the records came from, and the records
/// themselves (so they can be replayed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadLetterMessage {
    /// Format version, [`ENVELOPE_VERSION`].
    pub v: u8,
    /// Record kind.
    pub kind: Kind,
    /// Tenant.
    pub tenant: String,
    /// Why the records are dead.
    pub reason: String,
    /// The collector's status when it refused them (none when it never answered).
    pub status: Option<u16>,
    /// Deliveries of the message before it was given up.
    pub attempts: u32,
    /// The queue message they came from.
    pub message_id: String,
    /// The records.
    pub records: Vec<RecordJson>,
}

impl DeadLetterMessage {
    /// The message body.
    pub fn to_text(&self) -> String {
        serde_json::to_string(self).expect("records are JSON already")
    }
}

/// The stable, machine-readable code of an error answer. Unknown codes (from a newer collector)
/// read as [`ErrorCode::Other`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request body is not the JSON expected.
    MalformedJson,
    /// The body could not be read.
    BodyUnreadable,
    /// The body is over the size limit.
    BodyTooLarge,
    /// More records than one batch may carry.
    TooManyRecords,
    /// One record is invalid (`index` and `field` name it).
    InvalidRecord,
    /// A record names a tenant other than the signer.
    TenantMismatch,
    /// A conversion posted to the edge's track endpoint is invalid.
    InvalidEvent,
    /// A signature header is missing.
    MissingSignature,
    /// The signature does not verify.
    BadSignature,
    /// The signature's timestamp is outside the replay window.
    ExpiredSignature,
    /// No read token was sent.
    MissingToken,
    /// The read token is not valid for the tenant.
    BadToken,
    /// The tenant is over its rate limit (`retry_after_seconds` says when to come back).
    RateLimited,
    /// A query parameter cannot be used.
    BadQuery,
    /// A path segment cannot be used.
    BadPath,
    /// Nothing is there.
    NotFound,
    /// Storage could not be read or written; try again later.
    StorageUnavailable,
    /// The token may read but not write (a read token, or an admin token of another tenant).
    Forbidden,
    /// A tenant config is invalid (`field` is the JSON path at fault).
    InvalidConfig,
    /// The config changed since the writer read it (`current_version` is the stored one).
    VersionConflict,
    /// A hostname belongs to another tenant.
    HostnameClaimed,
    /// The change would move units already assigned; send it again with `"force": true` to
    /// apply it anyway.
    MovesUnits,
    /// A lifecycle change does not apply to the experiment as it stands.
    InvalidTransition,
    /// A code this build does not know.
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as written on the wire (and as the collector's rejection metric label).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedJson => "malformed_json",
            ErrorCode::BodyUnreadable => "body_unreadable",
            ErrorCode::BodyTooLarge => "body_too_large",
            ErrorCode::TooManyRecords => "too_many_records",
            ErrorCode::InvalidRecord => "invalid_record",
            ErrorCode::TenantMismatch => "tenant_mismatch",
            ErrorCode::InvalidEvent => "invalid_event",
            ErrorCode::MissingSignature => "missing_signature",
            ErrorCode::BadSignature => "bad_signature",
            ErrorCode::ExpiredSignature => "expired_signature",
            ErrorCode::MissingToken => "missing_token",
            ErrorCode::BadToken => "bad_token",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BadQuery => "bad_query",
            ErrorCode::BadPath => "bad_path",
            ErrorCode::NotFound => "not_found",
            ErrorCode::StorageUnavailable => "storage_unavailable",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidConfig => "invalid_config",
            ErrorCode::VersionConflict => "version_conflict",
            ErrorCode::HostnameClaimed => "hostname_claimed",
            ErrorCode::MovesUnits => "moves_units",
            ErrorCode::InvalidTransition => "invalid_transition",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an error answer says: `{"error": {...}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ErrorDetail {
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// What is wrong, for a person.
    #[serde(default)]
    pub message: String,
    /// Index of the offending record in the batch, if one record is at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The offending field of that record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// Seconds until a rate-limited sender may send again (also the `Retry-After` header).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_seconds: Option<u32>,
    /// With `version_conflict`: the tenant's stored config version, to read and retry from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_version: Option<u64>,
}

impl ErrorDetail {
    /// An error with no record attached.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ErrorDetail {
        ErrorDetail {
            code,
            message: message.into(),
            index: None,
            field: None,
            retry_after_seconds: None,
            current_version: None,
        }
    }

    /// The answer's body.
    pub fn to_body(&self) -> String {
        #[derive(Serialize)]
        struct Body<'a> {
            error: &'a ErrorDetail,
        }
        serde_json::to_string(&Body { error: self }).expect("plain data")
    }

    /// Reads an answer's body; `None` if it is not an error body.
    pub fn from_body(body: &str) -> Option<ErrorDetail> {
        #[derive(Deserialize)]
        struct Body {
            error: ErrorDetail,
        }
        serde_json::from_str::<Body>(body).ok().map(|b| b.error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kv_keys() {
        assert_eq!(host_key("shop.example"), "host:shop.example");
        assert_eq!(tenant_key("shop"), "tenant:shop");
        let json = r#"{"schema":1,"tenant":"shop","version":2,"hostnames":["shop.example","www.shop.example"],
            "hash_key":"000102030405060708090a0b0c0d0e0f","experiments":[]}"#;
        let tenant = crate::Tenant::from_json(json).unwrap();
        let entries = kv_entries(&tenant, json);
        let pairs: Vec<(&str, &str)> = entries.iter().map(|e| (e.key.as_str(), e.value.as_str())).collect();
        assert_eq!(
            pairs,
            vec![
                ("tenant:shop", json),
                ("host:shop.example", "shop"),
                ("host:www.shop.example", "shop")
            ]
        );
    }

    #[test]
    fn error_body_round_trips_and_reads_unknown_codes() {
        let detail = ErrorDetail {
            index: Some(3),
            field: Some("unit".into()),
            ..ErrorDetail::new(ErrorCode::InvalidRecord, "record 3: unit is empty")
        };
        let body = detail.to_body();
        assert_eq!(
            body,
            r#"{"error":{"code":"invalid_record","message":"record 3: unit is empty","index":3,"field":"unit"}}"#
        );
        assert_eq!(ErrorDetail::from_body(&body), Some(detail));
        let newer = ErrorDetail::from_body(r#"{"error":{"code":"quota_exceeded","retry_after_seconds":9}}"#).unwrap();
        assert_eq!((newer.code, newer.retry_after_seconds), (ErrorCode::Other, Some(9)));
        assert_eq!(ErrorDetail::from_body("<html>"), None);
    }

    #[test]
    fn every_code_is_written_as_serde_writes_it() {
        for code in [
            ErrorCode::MalformedJson,
            ErrorCode::BodyUnreadable,
            ErrorCode::BodyTooLarge,
            ErrorCode::TooManyRecords,
            ErrorCode::InvalidRecord,
            ErrorCode::TenantMismatch,
            ErrorCode::InvalidEvent,
            ErrorCode::MissingSignature,
            ErrorCode::BadSignature,
            ErrorCode::ExpiredSignature,
            ErrorCode::MissingToken,
            ErrorCode::BadToken,
            ErrorCode::RateLimited,
            ErrorCode::BadQuery,
            ErrorCode::BadPath,
            ErrorCode::NotFound,
            ErrorCode::StorageUnavailable,
            ErrorCode::Other,
        ] {
            assert_eq!(serde_json::to_string(&code).unwrap(), format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn records_keep_their_text() {
        let record = RecordJson::parse(r#"{"id":"e1","value":1.5}"#).unwrap();
        assert_eq!(record.id().as_deref(), Some("e1"));
        assert_eq!(
            records_body(&[&record, &record]),
            r#"[{"id":"e1","value":1.5},{"id":"e1","value":1.5}]"#
        );
        assert!(RecordJson::parse("{oops").is_err());
    }
}
