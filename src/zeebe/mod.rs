//! The management Camunda: gRPC client (TLS, OAuth), job worker runtime.
pub mod job;

pub use job::{Job, JobOutcome};
