-- A unit's figures from its events, grouped per experiment, unit and metric: the SELECT of the
-- view unit_metric_figures_from_events up to the exposures it joins (followed by a table of
-- exposures named `e`, then figures_group.sql). PostgreSQL's exposure trigger joins its
-- statement's new rows instead.
SELECT e.tenant_id AS tenant_id, e.experiment AS experiment, e.unit_id AS unit_id, c.metric AS metric,
       e.variant AS variant,
       SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN 1 ELSE 0 END) AS after_events,
       SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN 0.0
                WHEN c.value > 1e9 THEN 1e9 WHEN c.value < -1e9 THEN -1e9
                ELSE COALESCE(c.value, 0.0) END) AS after_sum,
       SUM(CASE WHEN c.occurred_at_ms < e.exposed_at_ms THEN 1 ELSE 0 END) AS before_events,
       SUM(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms THEN 0.0
                WHEN c.value > 1e9 THEN 1e9 WHEN c.value < -1e9 THEN -1e9
                ELSE COALESCE(c.value, 0.0) END) AS before_sum,
       MAX(CASE WHEN c.occurred_at_ms >= e.exposed_at_ms AND c.value IS NOT NULL THEN 1 ELSE 0 END) AS valued
FROM conversions c
JOIN 