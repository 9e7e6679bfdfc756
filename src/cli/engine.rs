//! `c8dr engine`: serve the rehearsal engine alone (Zeebe gRPC gateway + REST v2 subset), so
//! Camunda's own clients (zbctl, the SDKs, `c8dr worker`) can point at it.
use anyhow::Context;
use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::engine::{Engine, EngineOptions};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// gRPC (Zeebe gateway) port; 0 picks a free port.
    #[arg(long, default_value_t = 26500)]
    pub grpc_port: u16,
    /// REST v2 port; 0 picks a free port.
    #[arg(long, default_value_t = 8080)]
    pub rest_port: u16,
    /// Address to listen on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
    /// Clock speed: simulated seconds per real second (timers, back-offs, message TTLs).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Deploy every .bpmn and .form under DIR (and DIR/forms) at start.
    #[arg(long, value_name = "DIR")]
    pub deploy: Option<PathBuf>,
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    c8dr::observe::init_tracing(&global.log_format).map_err(anyhow::Error::msg)?;
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number (e.g. 1, 60, 1000), got {}", args.speed);
    }
    let engine = Engine::start(EngineOptions {
        clock: Clock::with_speed(args.speed),
        grpc_addr: SocketAddr::new(args.bind, args.grpc_port),
        rest_addr: SocketAddr::new(args.bind, args.rest_port),
    })
    .await
    .context("starting the rehearsal engine (use --grpc-port 0 / --rest-port 0 for free ports)")?;
    if let Some(dir) = &args.deploy {
        let deployed = engine.deploy_dir(dir).with_context(|| format!("deploying {}", dir.display()))?;
        for p in deployed {
            println!("deployed {} version {} ({})", p.bpmn_process_id, p.version, p.resource_name);
        }
    }
    println!("gRPC gateway: {}", engine.grpc_url());
    println!("REST API:     {}/v2", engine.rest_url());
    println!("clock speed:  {}x; Ctrl-C to stop", args.speed);
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    engine.shutdown();
    Ok(ExitCode::SUCCESS)
}
