-- The figures of the events stored before this migration (no metric has a window row yet); the
-- figures' triggers sum them into the totals.
INSERT INTO unit_metric_figures (tenant_id, experiment, unit_id, metric, variant,
                                 after_events, after_sum, before_events, before_sum, valued)
SELECT tenant_id, experiment, unit_id, metric, variant, after_events, after_sum, before_events, before_sum, valued
FROM unit_metric_figures_from_events;
