//! `c8dr config check`.
use std::process::ExitCode;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Load and validate the configuration; print a summary without secrets.
    Check {},
}

pub async fn run(_cmd: Command, _global: &super::Global) -> anyhow::Result<ExitCode> {
    anyhow::bail!("`c8dr config check` is not available in this build yet")
}
