-- The exposures' key becomes (tenant_id, unit_id, experiment): the same uniqueness, in an order
-- that also finds every exposure of one unit, which a conversion's figures need. A second index
-- by unit instead halved exposure ingest (measured: 29,000 to 16,000 rows/s). SQLite cannot
-- change a table's key in place, so the table is copied.
CREATE TABLE exposures_keyed_by_unit (
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    unit_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    exposed_at_ms BIGINT NOT NULL,
    country TEXT,
    device TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, unit_id, experiment)
);
INSERT INTO exposures_keyed_by_unit (tenant_id, experiment, unit_id, variant, config_version, exposed_at_ms,
                                     country, device, received_at_ms)
SELECT tenant_id, experiment, unit_id, variant, config_version, exposed_at_ms, country, device, received_at_ms
FROM exposures;
DROP TABLE exposures;
ALTER TABLE exposures_keyed_by_unit RENAME TO exposures;
CREATE INDEX exposures_by_variant ON exposures (tenant_id, experiment, variant);
