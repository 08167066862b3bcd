-- The control plane: every version of every tenant's config, who wrote it, and whether it is live
-- at the edge. Runs unchanged on SQLite and PostgreSQL (see docs/migrations.md); additive only.

-- One row per stored version. A version is immutable once written; only its publish state moves
-- (published_at_ms stays NULL until the edge's KV has accepted it).
CREATE TABLE config_versions (
    tenant_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    document TEXT NOT NULL,
    author TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at_ms BIGINT NOT NULL,
    published_at_ms BIGINT,
    publish_attempts BIGINT NOT NULL DEFAULT 0,
    publish_error TEXT,
    PRIMARY KEY (tenant_id, version)
);

-- Which tenant owns each hostname. Keyed by hostname, the one table not led by tenant_id: a
-- hostname belongs to at most one tenant across the platform, and the key enforces it. A claim is
-- released only once a version that drops the hostname is live, so no other tenant can take a
-- hostname the edge still routes to its old owner.
CREATE TABLE hostname_claims (
    hostname TEXT PRIMARY KEY,
    tenant_id TEXT NOT NULL
);

CREATE INDEX hostname_claims_by_tenant ON hostname_claims (tenant_id, hostname);
