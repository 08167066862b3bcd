-- A unit's first exposure to an experiment (the trigger fires for inserted rows only, so never
-- for a redelivery): its figures from the events it already has, e.g. conversions posted
-- before the exposure arrived. The figures' own triggers add them to the totals.
INSERT INTO unit_metric_figures (tenant_id, experiment, unit_id, metric, variant,
                                 after_events, after_sum, before_events, before_sum, valued)
SELECT tenant_id, experiment, unit_id, metric, variant, after_events, after_sum, before_events, before_sum, valued
FROM unit_metric_figures_from_events
WHERE tenant_id = NEW.tenant_id AND experiment = NEW.experiment AND unit_id = NEW.unit_id;
