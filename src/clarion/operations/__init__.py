"""Operations: the Prometheus endpoint and the database gauges it reads, retention, and the
workers' metrics port (docs/integration.md, "Metrics", "Logs", "Retention")."""
