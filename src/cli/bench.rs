//! `c8dr bench`: measurements on this machine.
//! - `activation`: job made available → handler running, streaming vs polling, on loopback
//!   against the rehearsal engine (the real gateway API; a one-task process per job).
//! - `idle-rss`: resident memory of an idle `c8dr worker` (the current executable).
//!
//! Add a sub-bench by adding a variant to [`Bench`] and a function next to the others.
use anyhow::Context;
use c8dr::config::{ManagementConfig, WorkerConfig};
use c8dr::rehearsal::engine::{Engine, EngineHandle, EngineOptions};
use c8dr::zeebe::{GatewayClient, JobOutcome, Worker, handler_fn};
use serde_json::Map;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub bench: Bench,
}

#[derive(Debug, clap::Subcommand)]
pub enum Bench {
    /// Activation latency (job available → handler running), streaming vs polling.
    Activation {
        /// Jobs measured per mode (one at a time).
        #[arg(long, default_value_t = 200)]
        jobs: usize,
    },
    /// Rehearsal overhead: simulated time of failover and failback against the installation's own
    /// work (the union of the lab's busy intervals: cluster operations, snapshots, restores, pod
    /// starts), per phase; realistic lab durations.
    Rehearsal {
        /// Simulated seconds per real second.
        #[arg(long, default_value_t = 50.0)]
        speed: f64,
        /// Rehearsals to run (the table shows each and the mean).
        #[arg(long, default_value_t = 3)]
        runs: usize,
        #[arg(long, default_value = "bpmn")]
        bpmn: std::path::PathBuf,
    },
    /// Resident memory (VmRSS) of an idle `c8dr worker` connected to the rehearsal engine.
    IdleRss {
        /// Seconds to let the worker settle before reading its memory.
        #[arg(long, default_value_t = 3)]
        wait_secs: u64,
        /// The `c8dr` executable to measure (default: this one). Point it at a worker-only build
        /// (`cargo build --release --no-default-features`) to measure the production worker.
        #[arg(long)]
        worker_exe: Option<std::path::PathBuf>,
    },
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    match args.bench {
        Bench::Activation { jobs } => activation(jobs).await,
        Bench::IdleRss { wait_secs, worker_exe } => idle_rss(wait_secs, worker_exe, global).await,
        Bench::Rehearsal { speed, runs, bpmn } => rehearsal(speed, runs, bpmn).await,
    }
}

/// Runs `runs` rehearsals with realistic lab durations and prints, per phase, wall time,
/// simulated time, the lab's own work, the BPMN timer waits and the ratios.
async fn rehearsal(speed: f64, runs: usize, bpmn: std::path::PathBuf) -> anyhow::Result<ExitCode> {
    use c8dr::rehearsal::run::{RehearseOptions, rehearse};
    anyhow::ensure!(runs >= 1, "--runs must be at least 1");
    anyhow::ensure!(speed.is_finite() && speed > 0.0, "--speed must be a positive number");
    println!("rehearsal overhead, realistic lab durations, clock x{speed}, {runs} run(s)");
    println!(
        "{:<4} {:<12} {:>8} {:>10} {:>10} {:>10} {:>10} {:>10}",
        "run", "phase", "wall s", "sim s", "lab work", "waits", "sim/work", "active s"
    );
    let mut totals: std::collections::BTreeMap<String, (f64, f64, f64, f64, usize)> = Default::default();
    for run in 1..=runs {
        let report =
            rehearse(RehearseOptions { speed, bpmn_dir: bpmn.clone(), progress: false, ..RehearseOptions::default() })
                .await?;
        anyhow::ensure!(report.restored(), "rehearsal {run} did not restore the installation:\n{}", report.render());
        for p in &report.phases {
            // time the process was not waiting on a timer: steps, engine, worker, HTTP
            let active = p.simulated_seconds - p.timer_wait_seconds;
            println!(
                "{:<4} {:<12} {:>8.2} {:>10.1} {:>10.1} {:>10.1} {:>10.3} {:>10.1}",
                run,
                p.process,
                p.wall_seconds,
                p.simulated_seconds,
                p.lab_work_seconds,
                p.timer_wait_seconds,
                p.simulated_seconds / p.lab_work_seconds.max(f64::EPSILON),
                active
            );
            let t = totals.entry(p.process.clone()).or_default();
            t.0 += p.wall_seconds;
            t.1 += p.simulated_seconds;
            t.2 += p.lab_work_seconds;
            t.3 += p.timer_wait_seconds;
            t.4 += 1;
        }
    }
    for (phase, (wall, sim, work, waits, n)) in totals {
        let n = n as f64;
        println!(
            "mean {:<12} {:>8.2} {:>10.1} {:>10.1} {:>10.1} {:>10.3} {:>10.1}",
            phase,
            wall / n,
            sim / n,
            work / n,
            waits / n,
            sim / work.max(f64::EPSILON),
            (sim - waits) / n
        );
    }
    println!(
        "sim = simulated time of the phase; lab work = the installation's own work: the time during which at least"
    );
    println!(
        "  one cluster operation, snapshot, restore or pod start (rollouts) runs, at the lab's configured durations;"
    );
    println!("sim/work = orchestration overhead (the limit is 1.000, the goal at most 1.020);");
    println!("waits = BPMN timer waits (verifyInterval); active = sim - waits (steps, worker, engine, HTTP)");
    Ok(ExitCode::SUCCESS)
}

/// Latency statistics of one mode, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// The job type the activation bench's process creates.
const BENCH_JOB_TYPE: &str = "c8dr.bench";
/// Its process: start -> one service task of [`BENCH_JOB_TYPE`] -> end.
const BENCH_PROCESS_ID: &str = "c8dr-bench-activation";

fn bench_bpmn() -> String {
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
  xmlns:zeebe="http://camunda.org/schema/zeebe/1.0" id="bench" targetNamespace="http://c8dr">
<bpmn:process id="{BENCH_PROCESS_ID}" isExecutable="true">
  <bpmn:startEvent id="start"/>
  <bpmn:serviceTask id="job"><bpmn:extensionElements><zeebe:taskDefinition type="{BENCH_JOB_TYPE}" retries="3"/></bpmn:extensionElements></bpmn:serviceTask>
  <bpmn:endEvent id="end"/>
  <bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="job"/>
  <bpmn:sequenceFlow id="f2" sourceRef="job" targetRef="end"/>
</bpmn:process>
</bpmn:definitions>"#
    )
}

/// The rehearsal engine on loopback (free ports, real clock) with the bench process deployed.
async fn bench_engine() -> anyhow::Result<EngineHandle> {
    let engine = Engine::start(EngineOptions::default()).await.context("starting the rehearsal engine")?;
    engine
        .deploy(vec![("c8dr-bench.bpmn".to_string(), bench_bpmn().into_bytes())])
        .context("deploying the bench process")?;
    Ok(engine)
}

/// Waits (bounded) until the engine has an open job stream of `job_type`.
async fn await_job_stream(engine: &EngineHandle, job_type: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !engine.job_streams().iter().any(|t| t == job_type) {
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// Measures activation latency of `jobs` jobs, one at a time, with streaming on or off: from
/// creating a process instance whose first element is the job (the engine makes the job
/// available at once) to the handler running in a `c8dr` worker connected over gRPC.
pub async fn measure_activation(jobs: usize, stream: bool) -> anyhow::Result<Latency> {
    let engine = bench_engine().await?;
    let client = GatewayClient::connect(&ManagementConfig { grpc_address: engine.grpc_url(), ..Default::default() })?;
    let config = WorkerConfig { stream_enabled: stream, metrics_address: String::new(), ..WorkerConfig::default() };
    let (tx, mut rx) = mpsc::unbounded_channel::<(i64, Instant)>();
    let worker = Worker::builder(client, config)
        .handler(
            BENCH_JOB_TYPE,
            handler_fn(move |job| {
                let _ = tx.send((job.process_instance_key, Instant::now()));
                async { JobOutcome::Complete(Map::new()) }
            }),
        )
        .build();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let handle = worker.spawn(async move {
        let _ = stop_rx.await;
    });
    if stream {
        anyhow::ensure!(await_job_stream(&engine, BENCH_JOB_TYPE).await, "the worker did not open its job stream");
    }
    // Let the first long poll reach the gateway.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut samples = Vec::with_capacity(jobs);
    for _ in 0..jobs {
        let t0 = Instant::now();
        let instance = engine.create_instance(BENCH_PROCESS_ID, Map::new()).context("creating a bench instance")?;
        loop {
            let (k, at) = tokio::time::timeout(Duration::from_secs(30), rx.recv())
                .await
                .context("a job was not handled within 30 s")?
                .context("the worker stopped")?;
            if k == instance {
                samples.push(at.duration_since(t0).as_secs_f64() * 1000.0);
                break;
            }
        }
    }
    let _ = stop_tx.send(());
    handle.join().await?;
    engine.shutdown();
    samples.sort_by(|a, b| a.total_cmp(b));
    Ok(Latency {
        p50_ms: percentile(&samples, 0.50),
        p99_ms: percentile(&samples, 0.99),
        mean_ms: samples.iter().sum::<f64>() / samples.len().max(1) as f64,
    })
}

async fn activation(jobs: usize) -> anyhow::Result<ExitCode> {
    anyhow::ensure!(jobs > 0, "--jobs must be at least 1");
    let stream = measure_activation(jobs, true).await?;
    let poll = measure_activation(jobs, false).await?;
    println!("activation latency: job available -> handler running ({jobs} jobs per mode, loopback, rehearsal engine)");
    println!("{:<28} {:>10} {:>10} {:>10}", "mode", "p50 ms", "p99 ms", "mean ms");
    println!(
        "{:<28} {:>10.3} {:>10.3} {:>10.3}",
        "stream (StreamActivatedJobs)", stream.p50_ms, stream.p99_ms, stream.mean_ms
    );
    println!(
        "{:<28} {:>10.3} {:>10.3} {:>10.3}",
        "poll (long-poll ActivateJobs)", poll.p50_ms, poll.p99_ms, poll.mean_ms
    );
    println!(
        "ratio poll/stream: p50 x{:.2}, p99 x{:.2}",
        poll.p50_ms / stream.p50_ms.max(1e-9),
        poll.p99_ms / stream.p99_ms.max(1e-9)
    );
    Ok(ExitCode::SUCCESS)
}

/// VmRSS of `pid` in KiB (Linux).
pub fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status (Linux only)"))?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS line in /proc status")?;
    line.split_whitespace().nth(1).context("malformed VmRSS line")?.parse().context("malformed VmRSS value")
}

async fn idle_rss(
    wait_secs: u64,
    worker_exe: Option<std::path::PathBuf>,
    global: &super::Global,
) -> anyhow::Result<ExitCode> {
    let engine = bench_engine().await?;
    let dir = std::env::temp_dir().join(format!("c8dr-bench-{}-{:08x}", std::process::id(), rand::random::<u32>()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let config_path = dir.join("c8dr.toml");
    std::fs::write(
        &config_path,
        format!(
            "[management]\ngrpc_address = \"{}\"\n\n[worker]\nmetrics_address = \"127.0.0.1:0\"\n\n[journal]\npath = \"{}\"\n",
            engine.grpc_url(),
            dir.join("journal.jsonl").display()
        ),
    )?;
    let exe = match worker_exe {
        Some(p) => p,
        None => std::env::current_exe().context("cannot find the current executable")?,
    };
    let mut child = tokio::process::Command::new(&exe)
        .arg("--config")
        .arg(&config_path)
        .arg("--log-format")
        .arg(&global.log_format)
        .arg("worker")
        .env("RUST_LOG", "warn")
        .env_remove("C8DR_CONFIG")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| format!("cannot start {} worker", exe.display()))?;
    let pid = child.id().context("the worker exited at once")?;
    tokio::time::sleep(Duration::from_secs(wait_secs)).await;
    if let Some(status) = child.try_wait()? {
        let out = child.wait_with_output().await?;
        anyhow::bail!("the worker exited early ({status}): {}", String::from_utf8_lossy(&out.stderr));
    }
    let rss = vm_rss_kib(pid)?;
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).unwrap_or_default();
    let threads = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("Threads:")).map(|l| l[8..].trim().to_string()))
        .unwrap_or_else(|| "?".into());
    let exe_path = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap_or_else(|_| exe.clone());
    let parts = rss_breakdown(&smaps, &exe_path.to_string_lossy());
    let streams = engine.job_streams().len();
    child.start_kill()?;
    let _ = child.wait().await;
    let _ = std::fs::remove_dir_all(&dir);
    engine.shutdown();
    println!("idle worker {} (pid {pid}, {wait_secs} s after start, {streams} job stream(s) open):", exe.display());
    println!(
        "VmRSS {:.1} MiB ({rss} KiB); goal (DESIGN §9): at most 10 MiB for the worker-only build",
        rss as f64 / 1024.0
    );
    println!("where it is (Rss from /proc/{pid}/smaps, {threads} threads):");
    for (what, kib) in &parts {
        println!("  {what:<52} {:>6.2} MiB", *kib as f64 / 1024.0);
    }
    Ok(ExitCode::SUCCESS)
}

/// Resident KiB of a process by kind of mapping, from its `/proc/PID/smaps` text: the
/// executable's code, read-only data and writable data, shared libraries, the heap, the main
/// stack, and anonymous mappings (thread stacks and malloc arenas).
fn rss_breakdown(smaps: &str, exe: &str) -> Vec<(&'static str, u64)> {
    const KINDS: [&str; 7] = [
        "executable: code (r-x)",
        "executable: read-only data, relocations (r--)",
        "executable: writable data (rw-)",
        "shared libraries (libc, libm, ld.so, libgcc_s)",
        "[heap] (main malloc arena)",
        "anonymous (thread stacks, other malloc arenas)",
        "[stack] and kernel ([vdso], [vvar])",
    ];
    let mut kib = [0u64; 7];
    let mut current: Option<usize> = None;
    for line in smaps.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
            let perms = fields.next().unwrap_or("");
            let path = fields.nth(3).unwrap_or("");
            current = Some(if path == exe {
                if perms.contains('x') {
                    0
                } else if perms.contains('w') {
                    2
                } else {
                    1
                }
            } else if path.starts_with('/') {
                3
            } else if path == "[heap]" {
                4
            } else if path.is_empty() {
                5
            } else {
                6
            });
        } else if first == "Rss:"
            && let Some(k) = current
        {
            kib[k] += fields.next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        }
    }
    KINDS.into_iter().zip(kib).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn rss_breakdown_sorts_the_mappings_by_kind() {
        let smaps = "\
55e0a0000000-55e0a0100000 r--p 00000000 fd:01 1234 /opt/c8dr
Size:               1024 kB
Rss:                 100 kB
55e0a0100000-55e0a0900000 r-xp 00100000 fd:01 1234 /opt/c8dr
Rss:                5000 kB
55e0a0900000-55e0a0a00000 rw-p 00900000 fd:01 1234 /opt/c8dr
Rss:                  20 kB
55e0a0a00000-55e0a0b00000 rw-p 00000000 00:00 0                  [heap]
Rss:                 300 kB
7f0000000000-7f0000100000 rw-p 00000000 00:00 0
Rss:                  40 kB
7f0000100000-7f0000200000 r-xp 00028000 fd:01 99 /usr/lib/x86_64-linux-gnu/libc.so.6
Rss:                 900 kB
7ffc00000000-7ffc00021000 rw-p 00000000 00:00 0                  [stack]
Rss:                  30 kB
";
        let parts: Vec<u64> = super::rss_breakdown(smaps, "/opt/c8dr").into_iter().map(|(_, k)| k).collect();
        assert_eq!(parts, [5000, 100, 20, 900, 300, 40, 30]);
    }
}
