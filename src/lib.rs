//! c8dr: disaster recovery for Camunda 8 dual-region installations, run as BPMN.
//!
//! Dependencies point one way: `cli -> jobs -> procedure -> region_api`; `zeebe` is used by the CLI
//! and `jobs`; `rehearsal` uses the public pieces like any user (see docs/DESIGN in ../shared).

/// Code generated from `proto/gateway.proto` (client and server stubs). Only `zeebe` and
/// `rehearsal::engine` use it; the rest of the crate speaks domain types.
pub mod gateway_protocol {
    #![allow(clippy::all, clippy::pedantic, missing_docs)]
    tonic::include_proto!("gateway_protocol");
}

pub mod config;
pub mod jobs;
pub mod notify;
pub mod observe;
pub mod platform;
pub mod procedure;
pub mod region_api;
#[cfg(feature = "rehearsal")]
pub mod rehearsal;
pub mod report;
pub mod zeebe;
