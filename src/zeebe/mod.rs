//! The management Camunda: gRPC client (TLS, OAuth), job worker runtime.
