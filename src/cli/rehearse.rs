//! `c8dr rehearse`: the lab, the rehearsal engine and the worker in one process on loopback.
use anyhow::Context;
use c8dr::rehearsal::lab::{FaultConfig, LabDurations};
use c8dr::rehearsal::run::{Approver, KillPoint, RehearseOptions, Scenario, rehearse};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// failover-failback: lose region 1, fail over, recreate it, fail back.
    /// drill: publish c8dr-drill and let the dr-drill process do all of it.
    #[arg(long, value_enum, default_value = "failover-failback")]
    pub scenario: Scenario,
    /// Simulated seconds per real second (lab work, BPMN timers and waits).
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Inject faults on every lab endpoint (management, REST, Elasticsearch): share of requests
    /// answered 500/503, e.g. 0.1.
    #[arg(long, value_name = "RATE")]
    pub faults: Option<f64>,
    /// Seed for the injected faults (same seed, same faults).
    #[arg(long, default_value_t = 8)]
    pub faults_seed: u64,
    /// Kill the worker right after this job type acted (e.g. c8dr.remove-brokers), before it
    /// completes the job; a new worker takes over (with --workers 2 or more, another replica).
    #[arg(long, value_name = "JOB_TYPE")]
    pub kill_worker_at: Option<String>,
    /// Where --kill-worker-at kills: after the step acted and recorded its outcome, between
    /// recording the intent of its first mutating call and the call, or between that call and
    /// recording its outcome.
    #[arg(long, value_enum, default_value_t = KillPoint::AfterAct)]
    pub kill_point: KillPoint,
    /// Worker replicas running against the engine, each with its own journal file.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=8))]
    pub workers: u16,
    /// Answer user tasks in the terminal instead of approving automatically.
    #[arg(long)]
    pub interactive: bool,
    /// Rehearse an 8.7-migrated installation with Optimize: the legacy `elasticsearchregionN`
    /// exporters are enabled in both regions before the loss and must be again at the end.
    #[arg(long)]
    pub legacy_exporters: bool,
    /// Use short lab durations (seconds instead of minutes of simulated work).
    #[arg(long)]
    pub fast: bool,
    /// BPMN directory to deploy.
    #[arg(long, default_value = "bpmn")]
    pub bpmn: PathBuf,
    /// Give up after this many real seconds.
    #[arg(long, default_value_t = 600)]
    pub timeout_secs: u64,
    /// Also write the full report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Also write the DR report (one self-contained HTML file with a timeline) to this file.
    #[arg(long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// No progress lines, only the report.
    #[arg(long)]
    pub quiet: bool,
    /// How the worker reaches the lab's region APIs: `direct` (their URLs) or `port-forward`
    /// (every call through a short-lived port-forward of the lab's Kubernetes API, as c8dr
    /// reaches an unexposed management API).
    #[arg(long, value_enum, default_value = "direct")]
    pub access: AccessArg,
    /// Post the rehearsal's notifications (generic JSON webhook) to this URL.
    #[arg(long, value_name = "URL")]
    pub notify_url: Option<String>,
}

/// `--access`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessArg {
    Direct,
    PortForward,
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    if !(args.speed.is_finite() && args.speed > 0.0) {
        anyhow::bail!("--speed must be a positive number (got {})", args.speed);
    }
    if let Some(rate) = args.faults
        && !(0.0..=0.9).contains(&rate)
    {
        anyhow::bail!("--faults takes a share of requests between 0 and 0.9 (got {rate})");
    }
    if let Some(job_type) = &args.kill_worker_at
        && !c8dr::jobs::JOB_TYPES.contains(&job_type.as_str())
    {
        anyhow::bail!("--kill-worker-at {job_type}: unknown job type; one of {}", c8dr::jobs::JOB_TYPES.join(", "));
    }
    if !args.bpmn.is_dir() {
        anyhow::bail!(
            "BPMN directory {} not found: run from the repository root or pass --bpmn DIR",
            args.bpmn.display()
        );
    }
    // the rehearsal's progress lines are the output; worker logs only when something is wrong
    // (RUST_LOG=info shows them all)
    c8dr::observe::init_tracing_with_default(&global.log_format, "warn,kube_client=off").map_err(anyhow::Error::msg)?;
    if let Some(url) = args.notify_url {
        c8dr::notify::install(c8dr::config::NotificationsConfig {
            webhooks: vec![c8dr::notify::generic_webhook("rehearsal", &url)],
            ..Default::default()
        });
    }
    let opts = RehearseOptions {
        scenario: args.scenario,
        speed: args.speed,
        durations: if args.fast { LabDurations::fast() } else { LabDurations::default() },
        faults: args.faults.map(|rate| FaultConfig {
            seed: args.faults_seed,
            error_rate: rate,
            ..FaultConfig::default()
        }),
        kill_worker_at: args.kill_worker_at,
        kill_point: args.kill_point,
        workers: usize::from(args.workers),
        legacy_exporters: args.legacy_exporters,
        approver: if args.interactive { Approver::Interactive } else { Approver::Auto },
        bpmn_dir: args.bpmn,
        real_timeout: Duration::from_secs(args.timeout_secs),
        progress: !args.quiet,
        access: match args.access {
            AccessArg::Direct => c8dr::config::Access::Direct,
            AccessArg::PortForward => c8dr::config::Access::PortForward,
        },
        ..RehearseOptions::default()
    };
    let report = rehearse(opts).await?;
    println!("{}", report.render());
    if let Some(path) = args.json {
        let text = serde_json::to_string_pretty(&report)?;
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = args.report {
        match &report.dr {
            Ok(dr) => {
                std::fs::write(&path, c8dr::report::html::render(dr))
                    .with_context(|| format!("cannot write {}", path.display()))?;
                eprintln!("DR report written to {}", path.display());
            }
            Err(e) => anyhow::bail!("cannot build the DR report for {}: {e}", path.display()),
        }
    }
    Ok(if report.restored() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
