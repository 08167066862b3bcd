-- The first schema. Runs unchanged on SQLite and PostgreSQL (see docs/migrations.md).
-- tenant_id leads every primary key and index: one tenant's rows are contiguous, every query is
-- scoped by tenant, and PostgreSQL can distribute or partition the tables by tenant.

-- The first exposure of a unit to an experiment; later exposures of the same unit are ignored.
CREATE TABLE exposures (
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    exposed_at_ms BIGINT NOT NULL,
    country TEXT,
    device TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, experiment, unit_id)
);

-- Counting units per variant reads this index alone.
CREATE INDEX exposures_by_variant ON exposures (tenant_id, experiment, variant);

-- Conversion events, deduplicated by the sender's event id.
CREATE TABLE conversions (
    tenant_id TEXT NOT NULL,
    event_id TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    metric TEXT NOT NULL,
    value DOUBLE PRECISION,
    occurred_at_ms BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, event_id)
);

-- Results join a unit's conversions to its exposure.
CREATE INDEX conversions_by_unit ON conversions (tenant_id, unit_id, occurred_at_ms);
