-- A unit's figures before an event changed them out of its variant's totals, from their
-- magnitude band (completed by totals_upsert.sql). `valued` only ever rises, so it stays.
INSERT INTO variant_metric_totals (tenant_id, experiment, metric, variant, magnitude, converted_units,
                                   active_before_units, both_units, valued, y_sum, y_squares, x_sum, x_squares, xy_sum)
SELECT OLD.tenant_id, OLD.experiment, OLD.metric, OLD.variant, OLD.magnitude,
       -(CASE WHEN OLD.after_events > 0 THEN 1 ELSE 0 END),
       -(CASE WHEN OLD.before_events > 0 THEN 1 ELSE 0 END),
       -(CASE WHEN OLD.after_events > 0 AND OLD.before_events > 0 THEN 1 ELSE 0 END),
       0,
       -OLD.after_sum, -OLD.after_sum * OLD.after_sum,
       -OLD.before_sum, -OLD.before_sum * OLD.before_sum,
       -OLD.after_sum * OLD.before_sum
WHERE true
