//! Command-line interface: clap definitions and dispatch. One file per subcommand.
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[cfg(feature = "rehearsal")]
pub mod bench;
pub mod common;
pub mod config_check;
pub mod deploy;
pub mod drill;
#[cfg(feature = "rehearsal")]
pub mod engine;
#[cfg(feature = "rehearsal")]
pub mod lab;
#[cfg(feature = "rehearsal")]
pub mod rehearse;
pub mod report;
pub mod start;
pub mod status;
pub mod topology;
pub mod worker;

/// Options every subcommand understands.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// Configuration file (TOML). Environment variables override it (see README).
    #[arg(long, global = true, default_value = "c8dr.toml", env = "C8DR_CONFIG")]
    pub config: PathBuf,
    /// Log format: human or json.
    #[arg(long, global = true, default_value = "human", env = "C8DR_LOG_FORMAT")]
    pub log_format: String,
}

#[derive(Debug, Parser)]
#[command(name = "c8dr", version, about = "Disaster recovery for Camunda 8 dual-region installations, run as BPMN")]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the job worker: executes c8dr.* service tasks against the configured targets.
    Worker(worker::Args),
    /// Deploy every .bpmn and .form under DIR to the management Camunda in one deployment.
    Deploy(deploy::Args),
    /// Start a failover or failback process instance with validated variables.
    Start(start::Args),
    /// DR drills: publish the c8dr-drill message that starts a drill.
    #[command(subcommand)]
    Drill(drill::Command),
    /// One screen on a target: regions, brokers, partitions, exporters, pending change, snapshot
    /// repository, paused exporting, the running DR process and the last drill.
    Status(status::Args),
    /// Write the DR report (one self-contained HTML file) of a failover, failback or drill
    /// process instance, from the management Camunda's REST API and the audit journal.
    Report(report::Args),
    /// Show the management Camunda's topology (checks connectivity and credentials).
    Topology(topology::Args),
    /// Configuration tools.
    #[command(subcommand)]
    Config(config_check::Command),
    /// Run the simulated dual-region installation (the lab) standalone and print its URLs.
    #[cfg(feature = "rehearsal")]
    Lab(lab::Args),
    /// Run the rehearsal engine alone (Zeebe gRPC gateway + REST v2 subset).
    #[cfg(feature = "rehearsal")]
    Engine(engine::Args),
    /// Rehearse failover and failback (or a drill) end to end on this machine.
    #[cfg(feature = "rehearsal")]
    Rehearse(rehearse::Args),
    /// Measure activation latency, worker memory and rehearsal overhead.
    #[cfg(feature = "rehearsal")]
    Bench(bench::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `c8dr worker` waits on the network and runs a handful of jobs at a time: one runtime thread
    // serves it (DNS lookups go to tokio's blocking pool; the journal's fsync holds the thread
    // for milliseconds), where one thread per core (tokio's default) costs a stack and a malloc
    // arena each (idle RSS, issue 13.3). The other commands (the rehearsal runs a lab, an engine
    // and workers in one process) keep all cores.
    let mut builder = if matches!(cli.command, Command::Worker(_)) {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        let g = cli.global;
        match cli.command {
            Command::Worker(a) => worker::run(a, &g).await,
            Command::Deploy(a) => deploy::run(a, &g).await,
            Command::Start(a) => start::run(a, &g).await,
            Command::Drill(c) => drill::run(c, &g).await,
            Command::Topology(a) => topology::run(a, &g).await,
            Command::Status(a) => status::run(a, &g).await,
            Command::Report(a) => report::run(a, &g).await,
            Command::Config(c) => config_check::run(c, &g).await,
            #[cfg(feature = "rehearsal")]
            Command::Lab(a) => lab::run(a, &g).await,
            #[cfg(feature = "rehearsal")]
            Command::Engine(a) => engine::run(a, &g).await,
            #[cfg(feature = "rehearsal")]
            Command::Rehearse(a) => rehearse::run(a, &g).await,
            #[cfg(feature = "rehearsal")]
            Command::Bench(a) => bench::run(a, &g).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
