-- A unit's figures into its variant's totals, in their magnitude band (completed by
-- totals_upsert.sql).
INSERT INTO variant_metric_totals (tenant_id, experiment, metric, variant, magnitude, converted_units,
                                   active_before_units, both_units, valued, y_sum, y_squares, x_sum, x_squares, xy_sum)
SELECT NEW.tenant_id, NEW.experiment, NEW.metric, NEW.variant, NEW.magnitude,
       (CASE WHEN NEW.after_events > 0 THEN 1 ELSE 0 END),
       (CASE WHEN NEW.before_events > 0 THEN 1 ELSE 0 END),
       (CASE WHEN NEW.after_events > 0 AND NEW.before_events > 0 THEN 1 ELSE 0 END),
       NEW.valued,
       NEW.after_sum, NEW.after_sum * NEW.after_sum,
       NEW.before_sum, NEW.before_sum * NEW.before_sum,
       NEW.after_sum * NEW.before_sum
WHERE true
