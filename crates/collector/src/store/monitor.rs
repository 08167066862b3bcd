//! Queries of the collector's own monitoring (the scheduled sample-ratio check), which look across
//! tenants rather than inside one.

use sqlx::{Any, Row};

use super::{Context, Store, StoreError};

impl Store {
    /// Every tenant with at least one stored exposure, sorted.
    pub async fn tenants_with_exposures(&self) -> Result<Vec<String>, StoreError> {
        // A loose index scan: each step asks the primary key (tenant_id leads it) for the next
        // larger tenant, so the cost grows with the number of tenants, not of exposures. A plain
        // SELECT DISTINCT would read every row of the index once a minute.
        let rows = sqlx::query::<Any>(
            "WITH RECURSIVE tenants (tenant_id) AS ( \
                 SELECT MIN(tenant_id) FROM exposures \
                 UNION ALL \
                 SELECT (SELECT MIN(next.tenant_id) FROM exposures next WHERE next.tenant_id > tenants.tenant_id) \
                 FROM tenants WHERE tenants.tenant_id IS NOT NULL) \
             SELECT tenant_id FROM tenants WHERE tenant_id IS NOT NULL",
        )
        .fetch_all(&self.readers)
        .await
        .context("listing tenants with exposures")?;
        rows.iter()
            .map(|row| row.try_get("tenant_id"))
            .collect::<Result<_, sqlx::Error>>()
            .context("reading tenants with exposures")
    }
}
