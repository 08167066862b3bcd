//! The control plane's tables: config versions and hostname claims (migration 0002).
//!
//! Writes run in their own transactions on the pool, not through the batch writer: they are rare,
//! small, and must see the rows they check (the current version, the hostname's owner) inside the
//! same transaction as the insert.

use sqlx::{Any, Row};

use super::{Context, Store, StoreError};

/// One stored version of a tenant's config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredVersion {
    /// Tenant id.
    pub tenant: String,
    /// Config version (the document's `version`).
    pub version: u64,
    /// The config JSON as the edge receives it.
    pub document: String,
    /// Who wrote it: an admin token's label, or `collector` for configs imported at start-up.
    pub author: String,
    /// Why, in the author's words; may be empty.
    pub comment: String,
    /// When it was stored, Unix milliseconds.
    pub created_at_ms: i64,
    /// When the edge's KV accepted it; `None` while it is not yet live.
    pub published_at_ms: Option<i64>,
    /// Publish attempts so far.
    pub publish_attempts: u64,
    /// Why the last publish attempt failed, if it did.
    pub publish_error: Option<String>,
}

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewVersion<'a> {
    /// Tenant id.
    pub tenant: &'a str,
    /// The version; must be above the stored latest (the API asks for exactly one above).
    pub version: u64,
    /// The validated config JSON.
    pub document: &'a str,
    /// Hostnames the config claims.
    pub hostnames: &'a [String],
    /// Author label.
    pub author: &'a str,
    /// Comment.
    pub comment: &'a str,
    /// Now, Unix milliseconds.
    pub created_at_ms: i64,
}

/// Why a version was not stored. Nothing was written.
#[derive(Debug)]
pub enum StoreVersionError {
    /// Another writer stored a version first, or the version is not above the stored one.
    VersionConflict {
        /// The latest stored version (0 when none).
        current: u64,
    },
    /// A hostname belongs to another tenant.
    HostnameClaimed {
        /// The hostname.
        hostname: String,
        /// Its owner.
        owner: String,
    },
    /// The database failed.
    Store(StoreError),
}

impl From<StoreError> for StoreVersionError {
    fn from(error: StoreError) -> Self {
        StoreVersionError::Store(error)
    }
}

const VERSION_COLUMNS: &str = "tenant_id, version, document, author, comment, created_at_ms, published_at_ms, \
                               publish_attempts, publish_error";

fn stored_version(row: &sqlx::any::AnyRow) -> Result<StoredVersion, sqlx::Error> {
    let version: i64 = row.try_get("version")?;
    let attempts: i64 = row.try_get("publish_attempts")?;
    Ok(StoredVersion {
        tenant: row.try_get("tenant_id")?,
        version: u64::try_from(version).unwrap_or(0),
        document: row.try_get("document")?,
        author: row.try_get("author")?,
        comment: row.try_get("comment")?,
        created_at_ms: row.try_get("created_at_ms")?,
        published_at_ms: row.try_get("published_at_ms")?,
        publish_attempts: u64::try_from(attempts).unwrap_or(0),
        publish_error: row.try_get("publish_error")?,
    })
}

fn to_i64(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

impl Store {
    /// A transaction that writes. SQLite's takes the write lock at once (`BEGIN IMMEDIATE`): a
    /// deferred one that read first could not upgrade once another writer committed, and would fail
    /// instead of waiting. PostgreSQL's unique keys settle concurrent writers inside the statement.
    async fn begin_write(&self, tenant: &str) -> Result<sqlx::Transaction<'static, Any>, StoreError> {
        let statement = match self.backend {
            super::Backend::Sqlite => "BEGIN IMMEDIATE",
            super::Backend::Postgres => "BEGIN",
        };
        let mut transaction = self
            .readers
            .begin_with(statement)
            .await
            .context("beginning a transaction")?;
        if self.backend == super::Backend::Postgres {
            // One writer per tenant at a time, across collectors: storing a version and marking one
            // live must not interleave (a release decided on a version that is no longer the latest).
            sqlx::query::<Any>("SELECT CAST(pg_advisory_xact_lock(hashtext($1)) AS TEXT)")
                .bind(tenant.to_owned())
                .execute(&mut *transaction)
                .await
                .context("locking the tenant's config")?;
        }
        Ok(transaction)
    }

    /// A tenant's latest config version, if it has any.
    pub async fn latest_config(&self, tenant: &str) -> Result<Option<StoredVersion>, StoreError> {
        let sql =
            format!("SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant_id = $1 ORDER BY version DESC LIMIT 1");
        let row = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .fetch_optional(&self.readers)
            .await
            .context("reading the latest config version")?;
        row.as_ref()
            .map(stored_version)
            .transpose()
            .context("reading a config version")
    }

    /// One stored version of a tenant's config.
    pub async fn config_version(&self, tenant: &str, version: u64) -> Result<Option<StoredVersion>, StoreError> {
        let sql = format!("SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant_id = $1 AND version = $2");
        let row = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(to_i64(version))
            .fetch_optional(&self.readers)
            .await
            .context("reading a config version")?;
        row.as_ref()
            .map(stored_version)
            .transpose()
            .context("reading a config version")
    }

    /// Every stored version of a tenant's config, newest first, at most `limit`.
    pub async fn config_history(&self, tenant: &str, limit: u32) -> Result<Vec<StoredVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant_id = $1 ORDER BY version DESC LIMIT $2"
        );
        let rows = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(i64::from(limit))
            .fetch_all(&self.readers)
            .await
            .context("reading config history")?;
        rows.iter()
            .map(stored_version)
            .collect::<Result<_, _>>()
            .context("reading config history")
    }

    /// The latest version of every tenant that has one, sorted by tenant.
    pub async fn latest_configs(&self) -> Result<Vec<StoredVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM config_versions c WHERE version = \
             (SELECT MAX(version) FROM config_versions l WHERE l.tenant_id = c.tenant_id) ORDER BY tenant_id"
        );
        let rows = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .fetch_all(&self.readers)
            .await
            .context("reading every tenant's latest config")?;
        rows.iter()
            .map(stored_version)
            .collect::<Result<_, _>>()
            .context("reading every tenant's latest config")
    }

    /// Stores a new version and claims its hostnames, all or nothing: refused when it is not above
    /// the stored latest (a concurrent writer got there first) or a hostname is another tenant's.
    pub async fn store_config_version(&self, new: &NewVersion<'_>) -> Result<(), StoreVersionError> {
        let mut transaction = self.begin_write(new.tenant).await?;
        let current: Option<i64> =
            sqlx::query_scalar::<Any, Option<i64>>("SELECT MAX(version) FROM config_versions WHERE tenant_id = $1")
                .bind(new.tenant.to_owned())
                .fetch_one(&mut *transaction)
                .await
                .context("reading the current version")?;
        let current = current.map_or(0, |v| u64::try_from(v).unwrap_or(0));
        if new.version <= current {
            return Err(StoreVersionError::VersionConflict { current });
        }
        let inserted = sqlx::query::<Any>(
            "INSERT INTO config_versions (tenant_id, version, document, author, comment, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant_id, version) DO NOTHING",
        )
        .bind(new.tenant.to_owned())
        .bind(to_i64(new.version))
        .bind(new.document.to_owned())
        .bind(new.author.to_owned())
        .bind(new.comment.to_owned())
        .bind(new.created_at_ms)
        .execute(&mut *transaction)
        .await
        .context("storing a config version")?;
        if inserted.rows_affected() == 0 {
            return Err(StoreVersionError::VersionConflict {
                current: current.max(new.version),
            });
        }
        for hostname in new.hostnames {
            sqlx::query::<Any>(
                "INSERT INTO hostname_claims (hostname, tenant_id) VALUES ($1, $2) ON CONFLICT (hostname) DO NOTHING",
            )
            .bind(hostname.clone())
            .bind(new.tenant.to_owned())
            .execute(&mut *transaction)
            .await
            .context("claiming a hostname")?;
            let owner: String =
                sqlx::query_scalar::<Any, String>("SELECT tenant_id FROM hostname_claims WHERE hostname = $1")
                    .bind(hostname.clone())
                    .fetch_one(&mut *transaction)
                    .await
                    .context("reading a hostname's owner")?;
            if owner != new.tenant {
                return Err(StoreVersionError::HostnameClaimed {
                    hostname: hostname.clone(),
                    owner,
                });
            }
        }
        transaction.commit().await.context("committing a config version")?;
        Ok(())
    }

    /// The hostnames a tenant holds claims on, sorted.
    pub async fn hostname_claims(&self, tenant: &str) -> Result<Vec<String>, StoreError> {
        sqlx::query_scalar::<Any, String>("SELECT hostname FROM hostname_claims WHERE tenant_id = $1 ORDER BY hostname")
            .bind(tenant.to_owned())
            .fetch_all(&self.readers)
            .await
            .context("reading hostname claims")
    }

    /// Records that `version` is live at the edge and releases the tenant's claims on hostnames
    /// that neither it nor the tenant's latest stored version lists, in one transaction (a newer
    /// version stored meanwhile may claim a hostname again; its claim must survive).
    pub async fn mark_published(&self, tenant: &str, version: u64, published_at_ms: i64) -> Result<(), StoreError> {
        let mut transaction = self.begin_write(tenant).await?;
        sqlx::query::<Any>(
            "UPDATE config_versions SET published_at_ms = $3, publish_error = NULL, \
             publish_attempts = publish_attempts + 1 WHERE tenant_id = $1 AND version = $2",
        )
        .bind(tenant.to_owned())
        .bind(to_i64(version))
        .bind(published_at_ms)
        .execute(&mut *transaction)
        .await
        .context("marking a version live")?;
        let documents: Vec<String> = sqlx::query_scalar::<Any, String>(
            "SELECT document FROM config_versions WHERE tenant_id = $1 AND (version = $2 OR version = \
             (SELECT MAX(version) FROM config_versions WHERE tenant_id = $1))",
        )
        .bind(tenant.to_owned())
        .bind(to_i64(version))
        .fetch_all(&mut *transaction)
        .await
        .context("reading the live and the latest version")?;
        let mut kept: Vec<String> = Vec::new();
        for document in &documents {
            let listed = serde_json::from_str::<serde_json::Value>(document)
                .ok()
                .and_then(|config| serde_json::from_value::<Vec<String>>(config["hostnames"].clone()).ok());
            // A version that cannot be read releases nothing.
            let Some(listed) = listed else {
                return transaction.commit().await.context("committing a publish");
            };
            kept.extend(listed);
        }
        let claimed: Vec<String> =
            sqlx::query_scalar::<Any, String>("SELECT hostname FROM hostname_claims WHERE tenant_id = $1")
                .bind(tenant.to_owned())
                .fetch_all(&mut *transaction)
                .await
                .context("reading hostname claims")?;
        for released in claimed.iter().filter(|host| !kept.contains(host)) {
            sqlx::query::<Any>("DELETE FROM hostname_claims WHERE hostname = $1 AND tenant_id = $2")
                .bind(released.clone())
                .bind(tenant.to_owned())
                .execute(&mut *transaction)
                .await
                .context("releasing a hostname")?;
        }
        transaction.commit().await.context("committing a publish")
    }

    /// Hostnames among `hostnames` that another tenant holds, with their owners.
    pub async fn hostnames_held_by_others(
        &self,
        tenant: &str,
        hostnames: &[String],
    ) -> Result<Vec<(String, String)>, StoreError> {
        let mut held = Vec::new();
        for hostname in hostnames {
            let owner: Option<String> =
                sqlx::query_scalar::<Any, String>("SELECT tenant_id FROM hostname_claims WHERE hostname = $1")
                    .bind(hostname.clone())
                    .fetch_optional(&self.readers)
                    .await
                    .context("reading a hostname's owner")?;
            if let Some(owner) = owner.filter(|owner| owner != tenant) {
                held.push((hostname.clone(), owner));
            }
        }
        Ok(held)
    }

    /// The stored version right before `version` (the highest below it), if any.
    pub async fn previous_config_version(
        &self,
        tenant: &str,
        version: u64,
    ) -> Result<Option<StoredVersion>, StoreError> {
        let sql = format!(
            "SELECT {VERSION_COLUMNS} FROM config_versions WHERE tenant_id = $1 AND version < $2 \
             ORDER BY version DESC LIMIT 1"
        );
        let row = sqlx::query::<Any>(sqlx::AssertSqlSafe(sql))
            .bind(tenant.to_owned())
            .bind(to_i64(version))
            .fetch_optional(&self.readers)
            .await
            .context("reading the previous config version")?;
        row.as_ref()
            .map(stored_version)
            .transpose()
            .context("reading a config version")
    }

    /// Records a failed publish attempt of `version`; it stays not yet live.
    pub async fn mark_publish_failed(&self, tenant: &str, version: u64, error: &str) -> Result<(), StoreError> {
        sqlx::query::<Any>(
            "UPDATE config_versions SET publish_error = $3, publish_attempts = publish_attempts + 1 \
             WHERE tenant_id = $1 AND version = $2",
        )
        .bind(tenant.to_owned())
        .bind(to_i64(version))
        .bind(error.to_owned())
        .execute(&self.readers)
        .await
        .context("recording a failed publish")
        .map(drop)
    }
}
