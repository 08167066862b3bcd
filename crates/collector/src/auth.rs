//! Who is calling: beacon signatures for ingest, bearer read tokens for results, bearer admin
//! tokens for config changes.

use axum::http::{HeaderMap, StatusCode, header};
use cohort_core::beacon::{REPLAY_WINDOW_SECONDS, SIGNATURE_HEADER, TENANT_HEADER, TIMESTAMP_HEADER};
use cohort_core::secrets::{MasterSecret, SignatureError};
use cohort_core::wire::ErrorCode;

use crate::error::ApiError;

fn unauthorized(code: ErrorCode, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, code, message)
}

fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Result<&'a str, ApiError> {
    headers
        .get(name)
        .ok_or_else(|| unauthorized(ErrorCode::MissingSignature, format!("the `{name}` header is missing")))?
        .to_str()
        .map_err(|_| unauthorized(ErrorCode::BadSignature, format!("the `{name}` header is not text")))
}

/// Checks a batch's signature and returns the tenant it was signed for. `now` is Unix seconds.
pub fn authenticate_batch(
    secret: &MasterSecret,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<String, ApiError> {
    let tenant = header_text(headers, TENANT_HEADER)?;
    let timestamp = header_text(headers, TIMESTAMP_HEADER)?;
    let signature = header_text(headers, SIGNATURE_HEADER)?;
    let timestamp: i64 = timestamp.parse().map_err(|_| {
        unauthorized(
            ErrorCode::BadSignature,
            format!("`{TIMESTAMP_HEADER}` is not Unix seconds"),
        )
    })?;
    match secret
        .beacon_key(tenant)
        .verify(timestamp, body, signature, now, REPLAY_WINDOW_SECONDS)
    {
        Ok(()) => Ok(tenant.to_owned()),
        Err(SignatureError::Expired { age_seconds }) => Err(unauthorized(
            ErrorCode::ExpiredSignature,
            format!("signed {age_seconds} s from the collector's clock; the window is {REPLAY_WINDOW_SECONDS} s"),
        )),
        Err(error) => Err(unauthorized(ErrorCode::BadSignature, error.to_string())),
    }
}

fn bearer_token(headers: &HeaderMap) -> Result<&str, ApiError> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .ok_or_else(|| unauthorized(ErrorCode::MissingToken, "expected `Authorization: Bearer <token>`"))
}

/// Checks `Authorization: Bearer <token>` for reading `tenant`'s results and config: its read
/// token, or one of its admin tokens.
pub fn authorize_results(secret: &MasterSecret, headers: &HeaderMap, tenant: &str) -> Result<(), ApiError> {
    let token = bearer_token(headers)?;
    if secret.verify_results_read_token(tenant, token) || secret.verify_config_admin_token(tenant, token).is_some() {
        Ok(())
    } else {
        Err(unauthorized(
            ErrorCode::BadToken,
            "the token is not valid for this tenant",
        ))
    }
}

/// Checks `Authorization: Bearer <admin token>` for changing `tenant`'s config and returns the
/// token's label, the author of the change. A read token is refused with 403.
pub fn authorize_admin(secret: &MasterSecret, headers: &HeaderMap, tenant: &str) -> Result<String, ApiError> {
    let token = bearer_token(headers)?;
    if let Some(author) = secret.verify_config_admin_token(tenant, token) {
        return Ok(author);
    }
    if secret.verify_results_read_token(tenant, token) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            ErrorCode::Forbidden,
            "a read token cannot change configs; use an admin token (`cohort token --admin`)",
        ));
    }
    Err(unauthorized(
        ErrorCode::BadToken,
        "the admin token is not valid for this tenant",
    ))
}
