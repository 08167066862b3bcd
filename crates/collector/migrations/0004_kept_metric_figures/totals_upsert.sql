ON CONFLICT (tenant_id, experiment, metric, variant, magnitude) DO UPDATE SET
    converted_units = variant_metric_totals.converted_units + excluded.converted_units,
    active_before_units = variant_metric_totals.active_before_units + excluded.active_before_units,
    both_units = variant_metric_totals.both_units + excluded.both_units,
    valued = CASE WHEN excluded.valued > variant_metric_totals.valued THEN excluded.valued
                  ELSE variant_metric_totals.valued END,
    y_sum = variant_metric_totals.y_sum + excluded.y_sum,
    y_squares = variant_metric_totals.y_squares + excluded.y_squares,
    x_sum = variant_metric_totals.x_sum + excluded.x_sum,
    x_squares = variant_metric_totals.x_squares + excluded.x_squares,
    xy_sum = variant_metric_totals.xy_sum + excluded.xy_sum;
