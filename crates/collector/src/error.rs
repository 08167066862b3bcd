//! The collector's HTTP errors: a stable code and a short message for the client; the detail
//! goes to the log where the error is made.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use cohort_core::wire::{ErrorCode, ErrorDetail};

/// An error answered to a client: an HTTP status and the wire contract's body, [`ErrorDetail`]
/// (its `code` is also the `reason` label of the rejection metric).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// What the body says.
    pub detail: ErrorDetail,
}

impl ApiError {
    /// An error with no record attached.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: ErrorDetail::new(code, message),
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
        let mut error = ApiError::new(StatusCode::BAD_REQUEST, code, message);
        error.detail.index = Some(index);
        error.detail.field = Some(field.into());
        error
    }

    /// The same error, telling the client to come back in `seconds` (also `Retry-After`).
    pub fn retry_after(mut self, seconds: u32) -> ApiError {
        self.detail.retry_after_seconds = Some(seconds);
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))];
        let mut response = (self.status, body, self.detail.to_body()).into_response();
        if let Some(seconds) = self.detail.retry_after_seconds {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
