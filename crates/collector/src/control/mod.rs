//! The control plane: tenants change their own configs through the collector's API. Every change
//! is validated by the engine, stored as a new version with its author and comment, diffed
//! against the version before it, and published to the edge's KV. docs/control-plane.md is the
//! reference for people; this module is its implementation.
//!
//! Writes need an admin token of the tenant ([`cohort_core::MasterSecret::config_admin_token`]);
//! reads take the read token too.

pub mod edge_kv;
pub mod lifecycle;

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use cohort_core::config_diff::{ConfigDiff, diff};
use cohort_core::wire::{ErrorCode, host_key, kv_entries};
use cohort_core::{Tenant, TenantConfig};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::app::AppState;
use crate::auth::{authorize_admin, authorize_results};
use crate::error::ApiError;
use crate::store::{NewVersion, StoreError, StoreVersionError, StoredVersion};
use edge_kv::KvClient;
use lifecycle::LifecycleRequest;

/// Longest comment kept with a version.
pub const MAX_COMMENT_CHARS: usize = 1000;

/// Most versions one history answer lists.
pub const MAX_HISTORY: u32 = 500;

/// Why a collector without a KV target leaves every version not yet live.
const NOT_PUBLISHING: &str = "this collector publishes to no edge KV (see `cohort collector --help`, KV flags)";

/// Publishes configs to the edge, one publish at a time per collector.
#[derive(Debug, Default)]
pub struct Publisher {
    kv: Option<KvClient>,
    one_at_a_time: tokio::sync::Mutex<()>,
}

impl Publisher {
    /// A publisher to `kv`; `None` stores versions without publishing them (they stay not yet
    /// live).
    pub fn new(kv: Option<KvClient>) -> Publisher {
        Publisher {
            kv,
            one_at_a_time: tokio::sync::Mutex::new(()),
        }
    }

    /// Whether this collector publishes anywhere.
    pub fn enabled(&self) -> bool {
        self.kv.is_some()
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

fn unavailable(tenant: &str, error: &StoreError) -> ApiError {
    ApiError::read_unavailable("the tenant's config", tenant, None, error)
}

fn parse_stored(version: &StoredVersion) -> Option<TenantConfig> {
    serde_json::from_str(&version.document).ok()
}

/// Publishes `tenant`'s latest version if it is not live yet, and keeps going until the latest
/// stored version is the one published (a writer may store another meanwhile). Returns the
/// error of the last attempt, if it failed.
///
/// Order (docs/control-plane.md, "Publishing"): first delete the `host:` keys of hostnames the
/// version drops, then write `tenant:` and the `host:` keys of its hostnames in one bulk call, then
/// record the version as live and release the dropped hostnames. A crash between the calls leaves a
/// dropped hostname unrouted (its visitors get the origin untouched), never routed to a tenant
/// that does not claim it; the retry repeats both calls, which are idempotent.
pub async fn publish_latest(state: &AppState, tenant: &str) -> Result<(), String> {
    let Some(kv) = &state.publisher.kv else {
        return Err(NOT_PUBLISHING.to_owned());
    };
    let _one_at_a_time = state.publisher.one_at_a_time.lock().await;
    // The version this call wrote last: when another replica marked a newer version live while
    // this call's older write was in flight, that older write may have landed last, so the newer
    // one is written again.
    let mut wrote: Option<u64> = None;
    loop {
        let latest = state
            .store
            .latest_config(tenant)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("tenant `{tenant}` has no stored config"))?;
        if latest.published_at_ms.is_some() && wrote.is_none_or(|version| version == latest.version) {
            return Ok(());
        }
        let attempt = publish_version(state, kv, &latest).await;
        if let Err(error) = attempt {
            tracing::warn!(tenant, version = latest.version, %error, "publish failed; it will be retried");
            if let Err(store_error) = state.store.mark_publish_failed(tenant, latest.version, &error).await {
                tracing::error!(%store_error, "recording a failed publish failed");
            }
            return Err(error);
        }
        wrote = Some(latest.version);
        state
            .store
            .mark_published(tenant, latest.version, now_ms())
            .await
            .map_err(|e| e.to_string())?;
        tracing::info!(tenant, version = latest.version, "config published");
    }
}

async fn publish_version(state: &AppState, kv: &KvClient, version: &StoredVersion) -> Result<(), String> {
    let tenant = Tenant::from_json(&version.document).map_err(|e| format!("stored version is invalid: {e}"))?;
    let claimed = state
        .store
        .hostname_claims(&tenant.id)
        .await
        .map_err(|e| e.to_string())?;
    let dropped: Vec<String> = claimed
        .iter()
        .filter(|host| !tenant.hostnames.contains(host))
        .map(|host| host_key(host))
        .collect();
    if !dropped.is_empty() {
        kv.delete(&dropped).await?;
    }
    kv.put(&kv_entries(&tenant, &version.document)).await
}

/// Retries every tenant whose latest version is not live, every `interval`, until the task is
/// aborted.
pub fn spawn_publish_retries(state: AppState, interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            let pending = match state.store.latest_configs().await {
                Ok(latest) => latest.into_iter().filter(|v| v.published_at_ms.is_none()),
                Err(error) => {
                    tracing::error!(%error, "listing configs to publish failed");
                    continue;
                }
            };
            for version in pending {
                // A failure is logged and recorded by publish_latest; the next tick tries again.
                let _ = publish_latest(&state, &version.tenant).await;
            }
        }
    })
}

/// Stores each of the collector's start-up configs (`--tenant-config`) whose version is above the
/// tenant's stored one, authored `collector`; returns how many were stored.
pub async fn import_configs(state: &AppState) -> Result<usize, String> {
    let mut stored = 0;
    for document in state.config.tenant_configs.documents() {
        let tenant = Tenant::from_json(document).map_err(|e| e.to_string())?;
        if tenant.version > MAX_VERSION {
            return Err(format!(
                "tenant `{}`: version {} is above {MAX_VERSION}",
                tenant.id, tenant.version
            ));
        }
        let current = state
            .store
            .latest_config(&tenant.id)
            .await
            .map_err(|e| e.to_string())?
            .map_or(0, |v| v.version);
        if tenant.version <= current {
            tracing::info!(
                tenant = tenant.id,
                file_version = tenant.version,
                stored_version = current,
                "start-up config not imported: the stored version is as new"
            );
            state.refit_kept_metrics(&tenant.id).await;
            continue;
        }
        let new = NewVersion {
            tenant: &tenant.id,
            version: tenant.version,
            document,
            hostnames: &tenant.hostnames,
            author: "collector",
            comment: "imported from --tenant-config at start-up",
            created_at_ms: now_ms(),
        };
        match state.store.store_config_version(&new).await {
            Ok(()) => stored += 1,
            Err(StoreVersionError::HostnameClaimed { hostname, owner }) => {
                return Err(format!(
                    "tenant `{}`: hostname `{hostname}` belongs to tenant `{owner}`",
                    tenant.id
                ));
            }
            Err(StoreVersionError::VersionConflict { current }) => {
                tracing::info!(
                    tenant = tenant.id,
                    current,
                    "start-up config raced another writer; kept theirs"
                );
            }
            Err(StoreVersionError::Store(error)) => return Err(error.to_string()),
        }
        state.refit_kept_metrics(&tenant.id).await;
    }
    Ok(stored)
}

/// A stored version as the API shows it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct VersionAnswer {
    /// Tenant id.
    pub tenant: String,
    /// Config version.
    pub version: u64,
    /// Whether the edge's KV has accepted it.
    pub live: bool,
    /// When it went live, Unix milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub published_at_ms: Option<i64>,
    /// Publish attempts so far.
    pub publish_attempts: u64,
    /// Why the last publish attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_error: Option<String>,
    /// Who wrote it.
    pub author: String,
    /// Why.
    pub comment: String,
    /// When it was stored, Unix milliseconds.
    pub created_at_ms: i64,
    /// Changes from the version before it; absent for a tenant's first version.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<ConfigDiff>,
    /// Whether any of those changes moves already assigned units.
    pub moves_units: bool,
    /// The config document (in `GET …/config` and `…/config/versions/{n}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<StoredDocument>")]
    pub config: Option<Box<RawValue>>,
}

/// How the API describes a stored config document: exactly as it was written (by people, tools or
/// the start-up import), so any valid tenant config, defaults left out or not. It is the request
/// shape of [`TenantConfig`], which the OpenAPI description names `TenantConfigInput`
/// ([`crate::openapi`]).
struct StoredDocument;

impl schemars::JsonSchema for StoredDocument {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "StoredConfigDocument".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({"$ref": crate::openapi::TENANT_CONFIG_INPUT})
    }

    fn inline_schema() -> bool {
        true
    }
}

impl VersionAnswer {
    /// A version not live on a collector that publishes nowhere says so, though no attempt was
    /// recorded.
    fn explained(mut self, publisher: &Publisher) -> VersionAnswer {
        if !self.live && self.publish_error.is_none() && !publisher.enabled() {
            self.publish_error = Some(NOT_PUBLISHING.to_owned());
        }
        self
    }

    fn new(version: StoredVersion, previous: Option<&StoredVersion>, with_config: bool) -> VersionAnswer {
        let changes = previous
            .and_then(parse_stored)
            .zip(parse_stored(&version))
            .map(|(before, after)| diff(&before, &after));
        let config = with_config
            .then(|| RawValue::from_string(version.document.clone()).ok())
            .flatten();
        VersionAnswer {
            moves_units: changes.as_ref().is_some_and(ConfigDiff::moves_units),
            diff: changes,
            tenant: version.tenant,
            version: version.version,
            live: version.published_at_ms.is_some(),
            published_at_ms: version.published_at_ms,
            publish_attempts: version.publish_attempts,
            publish_error: version.publish_error,
            author: version.author,
            comment: version.comment,
            created_at_ms: version.created_at_ms,
            config,
        }
    }
}

fn no_config(tenant: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        ErrorCode::NotFound,
        format!("tenant `{tenant}` has no stored config"),
    )
}

/// `GET /v1/tenants/{tenant}/config`: the latest version, live or not, with its document.
pub async fn get_config(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<VersionAnswer>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let history = state
        .store
        .config_history(&tenant, 2)
        .await
        .map_err(|e| unavailable(&tenant, &e))?;
    let mut versions = history.into_iter();
    let latest = versions.next().ok_or_else(|| no_config(&tenant))?;
    let previous = versions.next();
    Ok(Json(
        VersionAnswer::new(latest, previous.as_ref(), true).explained(&state.publisher),
    ))
}

/// `GET /v1/tenants/{tenant}/config/versions/{version}`: one stored version with its document.
pub async fn get_version(
    State(state): State<AppState>,
    Path((tenant, version)): Path<(String, u64)>,
    headers: HeaderMap,
) -> Result<Json<VersionAnswer>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let stored = state
        .store
        .config_version(&tenant, version)
        .await
        .map_err(|e| unavailable(&tenant, &e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("tenant `{tenant}` has no config version {version}"),
            )
        })?;
    let previous = state
        .store
        .previous_config_version(&tenant, version)
        .await
        .map_err(|e| unavailable(&tenant, &e))?;
    Ok(Json(
        VersionAnswer::new(stored, previous.as_ref(), true).explained(&state.publisher),
    ))
}

/// Query of the history.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Most versions to list, newest first; default and maximum [`MAX_HISTORY`].
    #[serde(default)]
    limit: Option<u32>,
}

/// The history answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HistoryAnswer {
    /// Tenant id.
    pub tenant: String,
    /// Versions, newest first, without their documents.
    pub versions: Vec<VersionAnswer>,
}

/// `GET /v1/tenants/{tenant}/config/history`: every version, newest first, each with its diff.
pub async fn history(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Json<HistoryAnswer>, ApiError> {
    authorize_results(&state.config.secret, &headers, &tenant)?;
    let Query(query) = query.map_err(|e| ApiError::bad_query(e.body_text()))?;
    let limit = query.limit.unwrap_or(MAX_HISTORY);
    if limit == 0 || limit > MAX_HISTORY {
        return Err(ApiError::bad_query(format!(
            "limit: expected 1 to {MAX_HISTORY}, got {limit}"
        )));
    }
    // One more than listed, so the oldest listed version has its diff too.
    let stored = state
        .store
        .config_history(&tenant, limit + 1)
        .await
        .map_err(|e| unavailable(&tenant, &e))?;
    if stored.is_empty() {
        return Err(no_config(&tenant));
    }
    let versions = stored
        .iter()
        .take(limit as usize)
        .enumerate()
        .map(|(i, version)| VersionAnswer::new(version.clone(), stored.get(i + 1), false).explained(&state.publisher))
        .collect();
    Ok(Json(HistoryAnswer { tenant, versions }))
}

/// Fields every change request shares.
#[derive(Debug, Clone, Default)]
struct ChangeOptions {
    comment: String,
    force: bool,
    dry_run: bool,
}

fn change_options(comment: Option<String>, force: bool, dry_run: bool) -> Result<ChangeOptions, ApiError> {
    let comment = comment.unwrap_or_default();
    if comment.chars().count() > MAX_COMMENT_CHARS || comment.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::MalformedJson,
            format!("comment: at most {MAX_COMMENT_CHARS} characters, no control characters but newlines"),
        ));
    }
    Ok(ChangeOptions {
        comment,
        force,
        dry_run,
    })
}

fn json_body<T>(body: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    body.map(|Json(value)| value)
        .map_err(|rejection| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::MalformedJson, rejection.body_text()))
}

/// What a change answers: the version it made (or would make, on a dry run) and its diff.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ChangeAnswer {
    /// Tenant id.
    pub tenant: String,
    /// The new version.
    pub version: u64,
    /// Whether anything was stored (false on a dry run).
    pub stored: bool,
    /// Whether the edge's KV accepted it already.
    pub live: bool,
    /// Why publishing failed (the version stays stored and is retried).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_error: Option<String>,
    /// Changes from the latest version before it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<ConfigDiff>,
    /// The unit-moving changes, in words (applied only with `force`).
    pub moves_units: Vec<String>,
    /// The config document of the new version.
    pub config: TenantConfig,
}

fn invalid_config(error: &cohort_core::ConfigError) -> ApiError {
    let mut api_error = ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidConfig, error.to_string());
    if !error.path.is_empty() {
        api_error.detail.field = Some(error.path.clone());
    }
    api_error
}

fn version_conflict(current: u64, message: String) -> ApiError {
    let mut error = ApiError::new(StatusCode::CONFLICT, ErrorCode::VersionConflict, message);
    error.detail.current_version = Some(current);
    error
}

/// Validates `candidate`, checks it against the latest stored version, stores it and publishes
/// it. Nothing is stored when any check fails or on a dry run.
async fn write_version(
    state: &AppState,
    tenant: &str,
    author: &str,
    candidate: serde_json::Value,
    latest: Option<&StoredVersion>,
    options: ChangeOptions,
) -> Result<Response, ApiError> {
    let compiled = Tenant::from_value(candidate.clone()).map_err(|e| invalid_config(&e))?;
    let config: TenantConfig = serde_json::from_value(candidate)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, ErrorCode::InvalidConfig, e.to_string()))?;
    crate::selectors::check_selectors(&config).map_err(|e| invalid_config(&e))?;
    if compiled.id != tenant {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidConfig,
            format!("tenant: the config is tenant `{}`'s, not `{tenant}`'s", compiled.id),
        );
        error.detail.field = Some("tenant".to_owned());
        return Err(error);
    }
    if config.version > MAX_VERSION {
        let mut error = ApiError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidConfig,
            format!(
                "version: {} is above {MAX_VERSION}, the largest version every client reads exactly",
                config.version
            ),
        );
        error.detail.field = Some("version".to_owned());
        return Err(error);
    }
    let current = latest.map_or(0, |v| v.version);
    if current > 0 && config.version != current + 1 {
        return Err(version_conflict(
            current,
            format!(
                "version: {} is not the next version; the stored version is {current}, so send {}",
                config.version,
                current + 1
            ),
        ));
    }
    let before = match latest {
        Some(stored) => Some(parse_stored(stored).ok_or_else(|| unreadable(tenant, stored.version))?),
        None => None,
    };
    let changes = before.as_ref().map(|before| diff(before, &config));
    let mut moves = changes.as_ref().map(ConfigDiff::unit_moves).unwrap_or_default();
    moves.extend(restart_moves(state, tenant, before.as_ref(), &config).await?);
    if !moves.is_empty() && !options.force {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            ErrorCode::MovesUnits,
            format!(
                "this change moves units already assigned: {}; send it with \"force\": true to apply it anyway",
                moves.join("; ")
            ),
        ));
    }
    let mut answer = ChangeAnswer {
        tenant: tenant.to_owned(),
        version: config.version,
        stored: false,
        live: false,
        publish_error: None,
        diff: changes,
        moves_units: moves,
        config,
    };
    if options.dry_run {
        // The store checks claims when it writes; a dry run asks the same question read-only.
        let held = state
            .store
            .hostnames_held_by_others(tenant, &compiled.hostnames)
            .await
            .map_err(|e| unavailable(tenant, &e))?;
        if let Some((hostname, _)) = held.first() {
            return Err(hostname_claimed(hostname));
        }
        return Ok((StatusCode::OK, Json(answer)).into_response());
    }
    let document = serde_json::to_string(&answer.config).map_err(|e| {
        tracing::error!(%e, "serialising a config failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Other,
            "could not store the config",
        )
    })?;
    let new = NewVersion {
        tenant,
        version: answer.version,
        document: &document,
        hostnames: &compiled.hostnames,
        author,
        comment: &options.comment,
        created_at_ms: now_ms(),
    };
    match state.store.store_config_version(&new).await {
        Ok(()) => {}
        Err(StoreVersionError::VersionConflict { current }) => {
            return Err(version_conflict(
                current,
                format!("another writer stored version {current} first; read it and apply your change again"),
            ));
        }
        Err(StoreVersionError::HostnameClaimed { hostname, .. }) => return Err(hostname_claimed(&hostname)),
        Err(StoreVersionError::Store(error)) => {
            tracing::error!(%error, tenant, "storing a config version failed");
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::StorageUnavailable,
                "could not store the config; retry later",
            ));
        }
    }
    answer.stored = true;
    tracing::info!(tenant, version = answer.version, author, "config version stored");
    state.refit_kept_metrics(tenant).await;
    match publish_latest(state, tenant).await {
        Ok(()) => answer.live = true,
        Err(error) => answer.publish_error = Some(error),
    }
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// Largest config version accepted: 2^53 − 1, the largest integer JSON readers in JavaScript (the
/// dashboard, the edge's tooling) hold exactly, and far below the database's `BIGINT`.
pub const MAX_VERSION: u64 = (1 << 53) - 1;

fn hostname_claimed(hostname: &str) -> ApiError {
    let mut error = ApiError::new(
        StatusCode::CONFLICT,
        ErrorCode::HostnameClaimed,
        format!(
            "hostnames: `{hostname}` belongs to another tenant (a hostname is released only once the \
             version that drops it is live)"
        ),
    );
    error.detail.field = Some("hostnames".to_owned());
    error
}

/// Unit moves of experiments that (re)start assigning in `after` while `before` has them stopped,
/// draft or absent: stopping, drafting or removing an experiment keeps its units' sticky entries
/// until they return, so its bucketing is compared with the last stored version in which it
/// assigned units.
async fn restart_moves(
    state: &AppState,
    tenant: &str,
    before: Option<&TenantConfig>,
    after: &TenantConfig,
) -> Result<Vec<String>, ApiError> {
    let restarting: Vec<&cohort_core::config::ExperimentConfig> = after
        .experiments
        .iter()
        .filter(|e| cohort_core::config_diff::assigns_units(e.status))
        .filter(|e| {
            !before
                .and_then(|b| b.experiments.iter().find(|old| old.key == e.key))
                .is_some_and(|old| cohort_core::config_diff::assigns_units(old.status))
        })
        .collect();
    if restarting.is_empty() || before.is_none() {
        return Ok(Vec::new());
    }
    let history = state
        .store
        .config_history(tenant, u32::MAX)
        .await
        .map_err(|e| unavailable(tenant, &e))?;
    let mut moves = Vec::new();
    for experiment in restarting {
        let last_assigning = history.iter().find_map(|stored| {
            parse_stored(stored)?
                .experiments
                .into_iter()
                .find(|old| old.key == experiment.key && cohort_core::config_diff::assigns_units(old.status))
                .map(|old| (stored.version, old))
        });
        if let Some((version, old)) = last_assigning {
            moves.extend(
                cohort_core::config_diff::experiment_moves(&old, experiment)
                    .into_iter()
                    .map(|m| {
                        format!(
                            "experiment `{}`: {} (since version {version}, when it last ran)",
                            experiment.key,
                            m.explain()
                        )
                    }),
            );
        }
    }
    Ok(moves)
}

async fn latest(state: &AppState, tenant: &str) -> Result<Option<StoredVersion>, ApiError> {
    state
        .store
        .latest_config(tenant)
        .await
        .map_err(|e| unavailable(tenant, &e))
}

/// The body of `PUT /v1/tenants/{tenant}/config`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PutConfigRequest {
    /// The whole config; its `version` must be the stored version + 1 (any, for a first config).
    #[schemars(with = "cohort_core::TenantConfig")]
    config: serde_json::Value,
    /// Why, for the history.
    #[serde(default)]
    comment: Option<String>,
    /// Apply even if the change moves already assigned units.
    #[serde(default)]
    force: bool,
    /// Answer the diff without storing anything.
    #[serde(default)]
    dry_run: bool,
}

/// `PUT /v1/tenants/{tenant}/config`: stores a whole new version.
pub async fn put_config(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<PutConfigRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let author = authorize_admin(&state.config.secret, &headers, &tenant)?;
    let request = json_body(body)?;
    let options = change_options(request.comment, request.force, request.dry_run)?;
    let latest = latest(&state, &tenant).await?;
    write_version(&state, &tenant, &author, request.config, latest.as_ref(), options).await
}

/// `POST /v1/tenants/{tenant}/experiments/{experiment}/lifecycle`: start, pause, stop, ramp or
/// reweight one experiment of the latest version, as a new version.
pub async fn lifecycle(
    State(state): State<AppState>,
    Path((tenant, experiment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Result<Json<LifecycleRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let author = authorize_admin(&state.config.secret, &headers, &tenant)?;
    let request = json_body(body)?;
    let options = change_options(request.comment.clone(), request.force, request.dry_run)?;
    let latest = latest(&state, &tenant).await?.ok_or_else(|| no_config(&tenant))?;
    let mut config = parse_stored(&latest).ok_or_else(|| unreadable(&tenant, latest.version))?;
    lifecycle::apply(&mut config, &experiment, &request)
        .map_err(|reason| ApiError::new(StatusCode::CONFLICT, ErrorCode::InvalidTransition, reason))?;
    config.version = latest.version + 1;
    let candidate = to_value(&config)?;
    write_version(&state, &tenant, &author, candidate, Some(&latest), options).await
}

fn unreadable(tenant: &str, version: u64) -> ApiError {
    tracing::error!(tenant, version, "a stored config version does not parse");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::Other,
        format!("stored version {version} cannot be read"),
    )
}

fn to_value(config: &TenantConfig) -> Result<serde_json::Value, ApiError> {
    serde_json::to_value(config).map_err(|e| {
        tracing::error!(%e, "serialising a config failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Other,
            "could not build the config",
        )
    })
}

/// The body of `POST /v1/tenants/{tenant}/config/rollback`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackRequest {
    /// The version whose content becomes the new version.
    to: u64,
    /// Why, for the history; default "rollback to version N".
    #[serde(default)]
    comment: Option<String>,
    /// Apply even if going back moves already assigned units.
    #[serde(default)]
    force: bool,
    /// Answer the diff without storing anything.
    #[serde(default)]
    dry_run: bool,
}

/// `POST /v1/tenants/{tenant}/config/rollback`: stores version N's content as a new version.
pub async fn rollback(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Json<RollbackRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let author = authorize_admin(&state.config.secret, &headers, &tenant)?;
    let request = json_body(body)?;
    let comment = request
        .comment
        .or_else(|| Some(format!("rollback to version {}", request.to)));
    let options = change_options(comment, request.force, request.dry_run)?;
    let latest = latest(&state, &tenant).await?.ok_or_else(|| no_config(&tenant))?;
    let target = state
        .store
        .config_version(&tenant, request.to)
        .await
        .map_err(|e| unavailable(&tenant, &e))?
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::NOT_FOUND,
                ErrorCode::NotFound,
                format!("to: tenant `{tenant}` has no config version {}", request.to),
            )
        })?;
    let mut config = parse_stored(&target).ok_or_else(|| unreadable(&tenant, target.version))?;
    config.version = latest.version + 1;
    let candidate = to_value(&config)?;
    write_version(&state, &tenant, &author, candidate, Some(&latest), options).await
}

/// What `POST …/config/publish` answers.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PublishAnswer {
    /// Tenant id.
    pub tenant: String,
    /// The latest version.
    pub version: u64,
    /// Whether it is live now.
    pub live: bool,
    /// Why publishing failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub publish_error: Option<String>,
}

/// `POST /v1/tenants/{tenant}/config/publish`: publishes the latest version now if it is not live
/// (the collector also retries on its own).
pub async fn publish(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Result<Json<PublishAnswer>, ApiError> {
    authorize_admin(&state.config.secret, &headers, &tenant)?;
    let version = latest(&state, &tenant)
        .await?
        .ok_or_else(|| no_config(&tenant))?
        .version;
    let outcome = publish_latest(&state, &tenant).await;
    let stored = latest(&state, &tenant).await?.ok_or_else(|| no_config(&tenant))?;
    Ok(Json(PublishAnswer {
        tenant,
        version: stored.version.max(version),
        live: outcome.is_ok() && stored.published_at_ms.is_some(),
        publish_error: outcome.err(),
    }))
}
