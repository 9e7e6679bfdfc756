//! `c8dr lab`: run the simulated dual-region installation standalone until Ctrl-C.
use std::process::ExitCode;

use c8dr::rehearsal::clock::Clock;
use c8dr::rehearsal::lab::{FaultConfig, Lab, LabOptions};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Simulated time runs this many times faster than real time.
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Also configure the legacy 8.7 `elasticsearchregionN` exporters.
    #[arg(long)]
    pub legacy_exporters: bool,
    /// Share of region API requests answered 500/503 (0..1).
    #[arg(long, default_value_t = 0.0)]
    pub faults_error_rate: f64,
    /// Seed of the fault generator (same seed, same faults).
    #[arg(long, default_value_t = 0)]
    pub faults_seed: u64,
    /// Fixed ports: region 0 on PORT..PORT+2 (management, REST, Elasticsearch), region 1 on
    /// PORT+3..PORT+5, control on PORT+6. Default: free ports.
    #[arg(long)]
    pub base_port: Option<u16>,
    /// Require HTTP Basic demo:demo on the REST API.
    #[arg(long)]
    pub rest_auth: bool,
    /// Where to write the kubeconfig of the lab's Kubernetes API (contexts `lab-region0`,
    /// `lab-region1`). Default: `kubeconfig` in a new directory under the system temp dir.
    #[arg(long)]
    pub kubeconfig: Option<std::path::PathBuf>,
}

pub async fn run(args: Args, _global: &super::Global) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number, got {}", args.speed);
    }
    if !(0.0..=1.0).contains(&args.faults_error_rate) {
        anyhow::bail!("--faults-error-rate must be between 0 and 1, got {}", args.faults_error_rate);
    }
    let faults = (args.faults_error_rate > 0.0).then(|| FaultConfig {
        seed: args.faults_seed,
        error_rate: args.faults_error_rate,
        ..Default::default()
    });
    let lab = Lab::start(LabOptions {
        clock: Clock::with_speed(args.speed),
        legacy_exporters: args.legacy_exporters,
        rest_basic_auth: args.rest_auth.then(|| ("demo".to_string(), "demo".to_string())),
        faults,
        base_port: args.base_port,
        ..Default::default()
    })
    .await?;
    let kubeconfig = match args.kubeconfig {
        Some(p) => p,
        None => {
            let dir = std::env::temp_dir().join(format!("c8dr-lab-{}", std::process::id()));
            std::fs::create_dir_all(&dir).map_err(|e| {
                anyhow::anyhow!("cannot create {}: {e} (choose a path with --kubeconfig)", dir.display())
            })?;
            dir.join("kubeconfig")
        }
    };
    if let Some(dir) = kubeconfig.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e} (choose another --kubeconfig)", dir.display()))?;
    }
    lab.write_kubeconfig(&kubeconfig).map_err(|e| {
        anyhow::anyhow!("cannot write the kubeconfig {}: {e} (choose another --kubeconfig)", kubeconfig.display())
    })?;
    println!("c8dr lab running (speed x{}):", args.speed);
    let kube = lab.kube_urls();
    for (r, kube_url) in kube.iter().enumerate() {
        let u = lab.region_urls(r);
        println!("  region {r}: management {}  rest {}  elasticsearch {}", u.management, u.rest, u.elasticsearch);
        println!("            kubernetes {kube_url} (context lab-region{r})");
    }
    println!("kubeconfig: {}", kubeconfig.display());
    let control = lab.control_url();
    let m0 = lab.region_urls(0).management;
    let e0 = lab.region_urls(0).elasticsearch;
    let r0 = lab.region_urls(0).rest;
    println!("  control:  {control}");
    println!();
    println!("Try:");
    println!("  curl -s {m0}/actuator/cluster");
    println!("  curl -s {r0}/v2/topology");
    println!("  curl -s -X POST {control}/control/regions/1/lose");
    println!(
        "  curl -s -X PATCH '{m0}/actuator/cluster?force=true' -H 'Content-Type: application/json' -d '{{\"brokers\":{{\"remove\":[1,3,5,7]}}}}'"
    );
    println!("  curl -s -X POST {m0}/actuator/exporters/camundaregion1/disable");
    println!("  curl -s '{e0}/_cat/indices?v'");
    println!("  curl -s {control}/control/state");
    println!("  kubectl --kubeconfig {} --context lab-region0 get pods", kubeconfig.display());
    println!("  kubectl --kubeconfig {} --context lab-region0 logs camunda-zeebe-0", kubeconfig.display());
    println!();
    println!("Ctrl-C to stop.");
    tokio::signal::ctrl_c().await?;
    lab.shutdown().await;
    Ok(ExitCode::SUCCESS)
}
