//! The collector's HTTP errors: a stable code and a short message for the client; the detail
//! goes to the log where the error is made.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cohort_core::wire::{ErrorCode, ErrorDetail};

/// An error answered to a client; its body is the wire contract [`ErrorDetail`].
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `bad_signature`; also the `reason` label of the
    /// rejection metric.
    pub code: ErrorCode,
    /// What is wrong, for a person.
    pub message: String,
    /// Index of the offending record in the batch, if one record is at fault.
    pub index: Option<usize>,
    /// The offending field of that record.
    pub field: Option<String>,
    /// Seconds until a rate-limited tenant may send again (also the `Retry-After` header).
    pub retry_after_seconds: Option<u32>,
}

impl ApiError {
    /// An error with no record attached.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            index: None,
            field: None,
            retry_after_seconds: None,
        }
    }

    /// A 400 for a query parameter that cannot be used; the message starts with its name.
    pub fn bad_query(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::BadQuery, message)
    }

    /// A 503 for a failed read: the detail goes to the log, the client hears to retry.
    pub(crate) fn read_unavailable(
        what: &'static str,
        tenant: &str,
        experiment: Option<&str>,
        error: &crate::store::StoreError,
    ) -> ApiError {
        tracing::error!(%error, tenant, experiment, "reading {what} failed");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::StorageUnavailable,
            format!("could not read {what}; retry later"),
        )
    }

    /// A 400 naming the record and field at fault.
    pub fn invalid_record(
        code: ErrorCode,
        index: usize,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            index: Some(index),
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, code, message)
        }
    }
}

impl ApiError {
    /// The body as the wire contract has it.
    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code,
            message: self.message.clone(),
            index: self.index,
            field: self.field.clone(),
            retry_after_seconds: self.retry_after_seconds,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let mut response = (self.status, body, self.detail().to_body()).into_response();
        if let Some(seconds) = self.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
