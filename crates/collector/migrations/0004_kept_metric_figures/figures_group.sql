ON e.tenant_id = c.tenant_id AND e.unit_id = c.unit_id
LEFT JOIN metric_windows w ON w.tenant_id = c.tenant_id AND w.metric = c.metric
WHERE c.occurred_at_ms >= e.exposed_at_ms - 1209600000
  AND (c.occurred_at_ms < e.exposed_at_ms OR w.window_ms IS NULL
       OR c.occurred_at_ms - e.exposed_at_ms < w.window_ms)
GROUP BY e.tenant_id, e.experiment, e.unit_id, c.metric, e.variant;
