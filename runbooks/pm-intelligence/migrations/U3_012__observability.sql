-- Undoes V3_012: the metrics, errors and spans recorded since are lost.
DROP FUNCTION refresh_observability_views();
DROP MATERIALIZED VIEW error_summary;
DROP MATERIALIZED VIEW performance_metrics_hourly;
DROP TABLE tracing_spans;
DROP TABLE error_occurrences;
DROP FUNCTION error_occurrence_counted();
DROP TABLE error_aggregation;
DROP TABLE performance_metrics;
