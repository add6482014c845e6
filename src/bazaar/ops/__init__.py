"""Operations: health and readiness probes, Prometheus metrics, the offline API docs."""
