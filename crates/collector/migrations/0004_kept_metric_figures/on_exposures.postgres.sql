-- PostgreSQL's form of on_exposure.sql, once per statement over the rows it inserted
-- (`new_exposures`, the statement's transition table): a row trigger's PL/pgSQL call per exposure
-- took more than half of PostgreSQL's exposure ingest. Followed by figures_select.sql,
-- `new_exposures e` and figures_group.sql.
INSERT INTO unit_metric_figures (tenant_id, experiment, unit_id, metric, variant,
                                 after_events, after_sum, before_events, before_sum, valued)
