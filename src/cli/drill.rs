//! `c8dr drill trigger`.
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish the c8dr-drill message (correlation key = target).
    Trigger {},
}

pub async fn run(_cmd: Command, _global: &super::Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`c8dr drill trigger` is not available in this build yet")
}
