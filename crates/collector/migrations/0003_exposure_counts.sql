-- Exposed units counted at ingest, so counting an experiment's units reads a few rows however
-- many units it has (DESIGN.md, "Results at scale"). The writer adds each exposure it stores
-- here, in the same transaction, from the rows its insert reports as new: a redelivered exposure
-- is not new, so it counts once. One row per experiment, variant, config version, country,
-- device and hour of first exposure: the slices results and the timeline ask for.
CREATE TABLE exposure_counts (
    tenant_id TEXT NOT NULL,
    experiment TEXT NOT NULL,
    variant TEXT NOT NULL,
    config_version BIGINT NOT NULL,
    -- '' when the exposure had none (a key column cannot be NULL).
    country TEXT NOT NULL,
    device TEXT NOT NULL,
    -- exposed_at_ms / 3600000.
    exposure_hour BIGINT NOT NULL,
    units BIGINT NOT NULL,
    first_exposed_at_ms BIGINT NOT NULL,
    last_exposed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, experiment, variant, config_version, country, device, exposure_hour)
);

-- The exposures stored before this migration.
INSERT INTO exposure_counts (tenant_id, experiment, variant, config_version, country, device, exposure_hour,
                             units, first_exposed_at_ms, last_exposed_at_ms)
SELECT tenant_id, experiment, variant, config_version, COALESCE(country, ''), COALESCE(device, ''),
       exposed_at_ms / 3600000, COUNT(*), MIN(exposed_at_ms), MAX(exposed_at_ms)
FROM exposures
GROUP BY tenant_id, experiment, variant, config_version, COALESCE(country, ''), COALESCE(device, ''),
         exposed_at_ms / 3600000;
