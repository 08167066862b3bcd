-- A new conversion event (never a redelivered one: the trigger fires for inserted rows only)
-- changes its unit's figures in every experiment the unit was exposed to, where it falls within
-- the window after the exposure (side a) or the lookback before it (side b). The figures' own
-- triggers move the totals.
INSERT INTO unit_metric_figures (tenant_id, experiment, unit_id, metric, variant,
                                 after_events, after_sum, before_events, before_sum, valued)
SELECT tenant_id, experiment, unit_id, NEW.metric, variant,
       a, a * v, b, b * v, CASE WHEN NEW.value IS NOT NULL THEN a ELSE 0 END
FROM (SELECT e.tenant_id AS tenant_id, e.experiment AS experiment, e.unit_id AS unit_id, e.variant AS variant,
             CASE WHEN NEW.occurred_at_ms >= e.exposed_at_ms
                       AND (w.window_ms IS NULL OR NEW.occurred_at_ms - e.exposed_at_ms < w.window_ms)
                  THEN 1 ELSE 0 END AS a,
             CASE WHEN NEW.occurred_at_ms < e.exposed_at_ms
                       AND NEW.occurred_at_ms >= e.exposed_at_ms - 1209600000
                  THEN 1 ELSE 0 END AS b,
             CASE WHEN NEW.value > 1e9 THEN 1e9 WHEN NEW.value < -1e9 THEN -1e9
                  ELSE COALESCE(NEW.value, 0.0) END AS v
      FROM exposures e
      LEFT JOIN metric_windows w ON w.tenant_id = e.tenant_id AND w.metric = NEW.metric
      WHERE e.tenant_id = NEW.tenant_id AND e.unit_id = NEW.unit_id) s
WHERE a + b > 0
ON CONFLICT (tenant_id, experiment, unit_id, metric) DO UPDATE SET
    after_events = unit_metric_figures.after_events + excluded.after_events,
    after_sum = unit_metric_figures.after_sum + excluded.after_sum,
    before_events = unit_metric_figures.before_events + excluded.before_events,
    before_sum = unit_metric_figures.before_sum + excluded.before_sum,
    valued = CASE WHEN excluded.valued > unit_metric_figures.valued THEN excluded.valued
                  ELSE unit_metric_figures.valued END;
