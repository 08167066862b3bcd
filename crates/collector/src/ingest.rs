//! `POST /v1/exposures` and `POST /v1/events`: size limit, signature, parse, rate limit,
//! validation, then one all-or-nothing write. Every refusal happens before the write.

use cohort_core::wire::ErrorCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use cohort_core::beacon::MAX_BATCH_RECORDS;
use cohort_core::{Conversion, Exposure, RecordError};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_path_to_error::Segment;

use crate::app::AppState;
use crate::auth::authenticate_batch;
use crate::error::ApiError;
use crate::metrics::RecordKind;
use crate::store::Batch;

/// The answer to an accepted batch: it is committed.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Accepted {
    /// Records in the batch.
    pub accepted: usize,
    /// Records newly stored.
    pub inserted: u64,
    /// Records already stored before (re-sends), left unchanged.
    pub duplicates: u64,
}

/// A record type the ingest endpoints take.
trait IngestRecord: DeserializeOwned {
    const KIND: RecordKind;
    fn tenant(&self) -> &str;
    /// Core validation plus the collector's storage limits.
    fn check(&self) -> Result<(), RecordError>;
    fn into_batch(records: Vec<Self>) -> Batch;
}

impl IngestRecord for Exposure {
    const KIND: RecordKind = RecordKind::Exposures;
    fn tenant(&self) -> &str {
        &self.tenant
    }
    fn check(&self) -> Result<(), RecordError> {
        self.validate()?;
        if i64::try_from(self.config_version).is_err() {
            return Err(RecordError {
                field: "config_version",
                reason: format!(
                    "{} is above the largest storable version {}",
                    self.config_version,
                    i64::MAX
                ),
            });
        }
        Ok(())
    }
    fn into_batch(records: Vec<Self>) -> Batch {
        Batch::Exposures(records)
    }
}

impl IngestRecord for Conversion {
    const KIND: RecordKind = RecordKind::Conversions;
    fn tenant(&self) -> &str {
        &self.tenant
    }
    fn check(&self) -> Result<(), RecordError> {
        self.validate()
    }
    fn into_batch(records: Vec<Self>) -> Batch {
        Batch::Conversions(records)
    }
}

pub(crate) async fn exposures(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    observe_rejection(&state, ingest::<Exposure>(&state, &headers, body).await)
}

pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    observe_rejection(&state, ingest::<Conversion>(&state, &headers, body).await)
}

fn observe_rejection<T>(state: &AppState, result: Result<T, ApiError>) -> Result<T, ApiError> {
    if let Err(error) = &result {
        let detail = &error.detail;
        state.metrics.record_rejection(detail.code.as_str());
        tracing::info!(status = error.status.as_u16(), code = detail.code.as_str(), index = detail.index, field = detail.field, message = %detail.message, "batch refused");
    }
    result
}

fn unix_now() -> (i64, i64) {
    let since_epoch = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    (since_epoch.as_secs() as i64, since_epoch.as_millis() as i64)
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::BodyTooLarge,
        format!("the body is over the {limit}-byte limit"),
    )
}

/// Reads the body, refusing by its declared length before reading anything and otherwise
/// stopping as soon as it passes the limit.
async fn read_body(headers: &HeaderMap, body: Body, limit: usize) -> Result<axum::body::Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > limit as u64) {
        return Err(too_large(limit));
    }
    axum::body::to_bytes(body, limit).await.map_err(|error| {
        let over_limit =
            std::error::Error::source(&error).is_some_and(|source| source.is::<http_body_util::LengthLimitError>());
        if over_limit {
            too_large(limit)
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::BodyUnreadable,
                format!("reading the body failed: {error}"),
            )
        }
    })
}

/// The field a serde error is about: the last map key on its path, or the name in
/// "missing field `x`" / "unknown field `x`" (which serde reports at the record itself).
fn field_of(path: &serde_path_to_error::Path, message: &str) -> Option<String> {
    let named_in_message = ["missing field `", "unknown field `"].iter().find_map(|prefix| {
        let rest = message.strip_prefix(prefix)?;
        Some(rest[..rest.find('`')?].to_owned())
    });
    let last_key = path.iter().rev().find_map(|segment| match segment {
        Segment::Map { key } => Some(key.clone()),
        _ => None,
    });
    named_in_message.or(last_key)
}

fn parse_batch<R: IngestRecord>(body: &[u8]) -> Result<Vec<R>, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let index = error.path().iter().find_map(|segment| match segment {
            Segment::Seq { index } => Some(*index),
            _ => None,
        });
        let message = error.inner().to_string();
        // Broken JSON, or anything but an array, is `malformed_json` (with the record index when
        // the break is inside one); a record with a wrong or missing field is `invalid_record`.
        let code = match error.inner().classify() {
            serde_json::error::Category::Data => ErrorCode::InvalidRecord,
            _ => ErrorCode::MalformedJson,
        };
        match index {
            Some(index) => {
                let mut invalid = ApiError::invalid_record(code, index, "", format!("record {index}: {message}"));
                invalid.detail.field = field_of(error.path(), &message);
                invalid
            }
            None => ApiError::new(
                StatusCode::BAD_REQUEST,
                ErrorCode::MalformedJson,
                format!("expected a JSON array of records: {message}"),
            ),
        }
    })
}

fn check_records<R: IngestRecord>(records: &[R], tenant: &str) -> Result<(), ApiError> {
    for (index, record) in records.iter().enumerate() {
        if record.tenant() != tenant {
            return Err(ApiError::invalid_record(
                ErrorCode::TenantMismatch,
                index,
                "tenant",
                format!(
                    "record {index} belongs to `{}`, the batch is signed for `{tenant}`",
                    record.tenant()
                ),
            ));
        }
        record.check().map_err(|error| {
            ApiError::invalid_record(
                ErrorCode::InvalidRecord,
                index,
                error.field,
                format!("record {index}: {error}"),
            )
        })?;
    }
    Ok(())
}

async fn ingest<R: IngestRecord>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<Json<Accepted>, ApiError> {
    let body = read_body(headers, body, state.config.max_body_bytes).await?;
    let (now_seconds, now_ms) = unix_now();
    let tenant = authenticate_batch(&state.config.secret, headers, &body, now_seconds)?;
    let records = parse_batch::<R>(&body)?;
    if records.len() > MAX_BATCH_RECORDS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::TooManyRecords,
            format!("{} records in one batch; at most {MAX_BATCH_RECORDS}", records.len()),
        ));
    }
    if let Err(wait) = state.rate_limiter.try_acquire(&tenant, records.len(), Instant::now()) {
        state.metrics.record_rate_limited(&tenant);
        let seconds = wait.as_secs_f64().ceil().max(1.0) as u32;
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            format!("tenant `{tenant}` is over its rate limit; retry in {seconds} s"),
        )
        .retry_after(seconds));
    }
    check_records(&records, &tenant)?;

    let accepted = records.len();
    let started = Instant::now();
    let outcome = state
        .store
        .insert(R::into_batch(records), now_ms)
        .await
        .map_err(|error| {
            tracing::error!(%error, tenant, records = accepted, "batch not stored");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "the batch was not stored; retry later",
            )
        })?;
    let duplicates = accepted as u64 - outcome.inserted;
    state
        .metrics
        .record_commit(R::KIND, outcome.inserted, duplicates, started.elapsed());
    if R::KIND == RecordKind::Exposures {
        let (_, committed_ms) = unix_now();
        state
            .metrics
            .record_delivery_lag(&outcome.new_exposure_timestamps_ms, committed_ms);
        state.srm_trigger.record_stored_exposures(outcome.inserted);
    }
    Ok(Json(Accepted {
        accepted,
        inserted: outcome.inserted,
        duplicates,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_errors_name_the_record_and_field() {
        let error =
            parse_batch::<Conversion>(br#"[{"id":"a","tenant":"t","unit":"u","metric":"m","timestamp":1},{"id":"b"}]"#)
                .unwrap_err();
        assert_eq!(
            (error.detail.index, error.detail.field.as_deref()),
            (Some(1), Some("tenant"))
        );
        let error = parse_batch::<Conversion>(br#"[{"id":"a","tenant":"t","unit":"u","metric":"m","timestamp":"x"}]"#)
            .unwrap_err();
        assert_eq!(
            (error.detail.index, error.detail.field.as_deref()),
            (Some(0), Some("timestamp"))
        );
        let error = parse_batch::<Conversion>(br#"{"id":"a"}"#).unwrap_err();
        assert_eq!(
            (error.detail.code, error.detail.index),
            (ErrorCode::MalformedJson, None)
        );
    }
}
