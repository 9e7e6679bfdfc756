//! The management Camunda: gRPC client (TLS, OAuth), job worker runtime.
pub mod auth;
pub mod backoff;
pub mod client;
pub mod error;
pub mod job;
pub mod model;
pub mod worker;

pub use client::{GatewayClient, Message};
pub use error::ClientError;
pub use job::{Job, JobOutcome};
pub use worker::{Handler, Worker, WorkerBuilder, WorkerError, WorkerHandle, handler_fn};
