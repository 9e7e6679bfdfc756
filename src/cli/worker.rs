//! `c8dr worker`: loads the configuration, connects to the management Camunda, serves
//! `/metrics`, `/healthz`, `/readyz` and runs the job worker until SIGTERM / Ctrl-C.
use super::common::{Scope, connect, load_valid_config};
use anyhow::Context;
use c8dr::config::Config;
use c8dr::observe::{self, Health, Metrics};
use c8dr::zeebe::{Worker, WorkerBuilder};
use futures::FutureExt;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// How often the worker calls Topology for `/readyz`.
const TOPOLOGY_INTERVAL: Duration = Duration::from_secs(10);
/// `/readyz` is ready when Topology answered within this window.
const READY_WINDOW: Duration = Duration::from_secs(30);

#[derive(Debug, clap::Args)]
pub struct Args {}

/// Registers the step handlers: every job type of `c8dr::jobs::JOB_TYPES`, all sharing one
/// step context (target clients, audit journal at `journal.path`).
fn register_step_handlers(
    mut builder: WorkerBuilder,
    config: &Config,
    client: &c8dr::zeebe::GatewayClient,
) -> WorkerBuilder {
    c8dr::notify::install(config.notifications.clone());
    let recorder = Arc::new(c8dr::jobs::GatewayRecorder::new(client.clone()));
    let ctx = Arc::new(c8dr::jobs::StepContext::new(Arc::new(config.clone())).with_recorder(recorder));
    ctx.connect_all();
    for job_type in c8dr::jobs::JOB_TYPES {
        builder = builder.handler(*job_type, c8dr::jobs::handler(ctx.clone()));
    }
    builder
}

/// Completes on SIGTERM or Ctrl-C. The SIGTERM handler is installed when this is called, so
/// a SIGTERM during start-up is not lost.
fn termination_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
    async move {
        #[cfg(unix)]
        match term {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!("SIGTERM received"),
                    _ = tokio::signal::ctrl_c() => tracing::info!("Ctrl-C received"),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only Ctrl-C stops the worker");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

pub async fn run(_args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let shutdown = termination_signal().shared();
    observe::init_tracing(&global.log_format).map_err(anyhow::Error::msg)?;
    let config = load_valid_config(global, Scope::All)?;
    let client = connect(&config)?;
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::new(READY_WINDOW));

    let endpoint = if config.worker.metrics_address.is_empty() {
        None
    } else {
        let (address, task) =
            observe::serve(&config.worker.metrics_address, metrics.clone(), health.clone(), shutdown.clone())
                .await
                .context("cannot start the metrics endpoint")?;
        tracing::info!(%address, "serving /metrics, /healthz and /readyz");
        Some(task)
    };

    let builder =
        Worker::builder(client.clone(), config.worker.clone()).metrics(metrics).health(health, TOPOLOGY_INTERVAL);
    let builder = register_step_handlers(builder, &config, &client);
    tracing::info!(gateway = %client.address(), job_types = ?builder.job_types(), "starting the job worker");
    builder.build().run(shutdown).await?;
    if let Some(task) = endpoint {
        let _ = tokio::time::timeout(Duration::from_secs(2), task).await;
    }
    Ok(ExitCode::SUCCESS)
}
