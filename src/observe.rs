//! Tracing setup, Prometheus metrics and the health endpoints.
