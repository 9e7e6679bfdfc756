//! `c8dr rehearse`: the lab, the rehearsal engine and the real worker in one process on loopback.
//! Deploys `bpmn/`, loses a region, runs failover then failback (or a drill), answers user tasks,
//! and checks the installation is restored.
//!
//! Everything here uses the public pieces like any user would: the lab through [`LabHandle`], the
//! engine through [`EngineHandle`] and gRPC, the worker through [`Worker`] and [`jobs`].
use crate::config::{Config, JournalConfig, ManagementConfig, TransientRetryConfig, WorkerConfig};
use crate::jobs::{self, StepContext};
use crate::procedure::record::{InstanceRecorder, RecordError};
use crate::rehearsal::clock::Clock;
use crate::rehearsal::engine::{CompletionError, Engine, EngineHandle, EngineOptions, InstanceState, UserTaskView};
use crate::rehearsal::lab::{FaultConfig, Lab, LabDurations, LabHandle, LabOptions, RecordEntry};
use crate::rehearsal::progress::Progress;
use crate::rehearsal::report::{PhaseReport, RehearsalReport, StepRow, TaskAnswer};
use crate::zeebe::worker::{Handler, Worker, WorkerHandle};
use crate::zeebe::{GatewayClient, Job, JobOutcome};
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Name of the lab target in the rehearsal's worker configuration.
pub const LAB_TARGET: &str = "lab";
/// The region the rehearsal loses (and later recreates).
pub const LOST_REGION: u8 = 1;

/// What to rehearse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// Lose region 1, run dr-failover, recreate the region, run dr-failback.
    FailoverFailback,
    /// Publish c8dr-drill: the dr-drill process loses, fails over, recreates and fails back.
    Drill,
}

/// Where `--kill-worker-at` kills the worker in the step.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum KillPoint {
    /// After the step made its calls and recorded their outcomes, before CompleteJob.
    #[default]
    AfterAct,
    /// Right after the step recorded the intent of its first mutating call, before the call.
    AfterIntent,
    /// Right after the step's first mutating call was answered, before its outcome was recorded:
    /// the instance holds an intent without outcome for a call that was made.
    AfterCall,
}

/// How user tasks are answered.
#[derive(Debug, Clone, Default)]
pub enum Approver {
    /// Approve and confirm everything; abort on timeouts and step failures.
    #[default]
    Auto,
    /// Ask in the terminal.
    Interactive,
}

/// Everything a rehearsal can vary.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    pub scenario: Scenario,
    /// Simulated seconds per real second.
    pub speed: f64,
    /// Simulated durations of the lab's work.
    pub durations: LabDurations,
    pub faults: Option<FaultConfig>,
    /// Kill the worker right after this job type acted, before it completes; a new worker
    /// takes over once the engine hands the job out again. With several `workers`, the replica
    /// that ran the job is killed and not replaced: another replica takes the job over.
    pub kill_worker_at: Option<String>,
    /// Where in the step `kill_worker_at` kills.
    pub kill_point: KillPoint,
    /// Worker replicas against the engine, each with its own journal file (at least 1).
    pub workers: usize,
    pub approver: Approver,
    /// Answers by formId that replace the automatic ones (e.g. reject an approval).
    pub answers: BTreeMap<String, Map<String, Value>>,
    /// Variables merged into the start variables of every started process (after the defaults).
    pub extra_variables: Map<String, Value>,
    /// Cluster changes that add brokers never complete (a stuck change).
    pub stuck_adds: bool,
    /// An 8.7-migrated installation with Optimize: the legacy `elasticsearchregionN` exporters
    /// are configured and enabled in both regions before the loss.
    pub legacy_exporters: bool,
    pub bpmn_dir: PathBuf,
    /// Give up after this much real time.
    pub real_timeout: Duration,
    /// Job timeout the worker asks for (real time).
    pub job_timeout: Duration,
    /// Print progress lines while running.
    pub progress: bool,
    /// Who starts the processes (start variable `initiatedBy`; four-eyes: cannot approve).
    pub initiator: String,
    /// Who answers user tasks, in turn: the task is assigned to the first, and when the
    /// approval guard denies the completion, to the next one (a second pair of eyes).
    pub approvers: Vec<String>,
    /// `four_eyes` of the lab target (false waives four-eyes, as a drill target may).
    pub four_eyes: bool,
    /// Keep the engine serving and the journal after the rehearsal (`RehearsalReport::kept`).
    pub keep_engine: bool,
    /// How the worker reaches the region APIs (`direct`, or `port-forward` through the lab's
    /// Kubernetes API). The platform is observed through the lab's Kubernetes API either way.
    pub access: crate::config::Access,
}

impl Default for RehearseOptions {
    fn default() -> Self {
        Self {
            scenario: Scenario::FailoverFailback,
            speed: 20.0,
            durations: LabDurations::default(),
            faults: None,
            kill_worker_at: None,
            kill_point: KillPoint::AfterAct,
            workers: 1,
            approver: Approver::Auto,
            answers: BTreeMap::new(),
            extra_variables: Map::new(),
            stuck_adds: false,
            legacy_exporters: false,
            bpmn_dir: PathBuf::from("bpmn"),
            real_timeout: Duration::from_secs(600),
            // long enough for a check to watch for 150 s of simulated time at x20 (see Watch); a
            // worker killed mid-job (--kill-worker-at) is replaced after this much real time
            job_timeout: Duration::from_secs(15),
            progress: true,
            initiator: "rehearsal-initiator".into(),
            approvers: vec!["rehearsal-approver".into()],
            four_eyes: true,
            keep_engine: false,
            access: crate::config::Access::Direct,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RehearsalError {
    #[error("lab: {0}")]
    Lab(String),
    #[error("engine: {0}")]
    Engine(String),
    #[error("worker: {0}")]
    Worker(String),
    #[error("cannot read the BPMN directory {dir}: {message}")]
    Bpmn { dir: PathBuf, message: String },
    #[error("the rehearsal did not finish within {0:?} (real time)")]
    Timeout(Duration),
}

/// Runs one rehearsal and returns its report (also when the installation is not restored).
pub async fn rehearse(opts: RehearseOptions) -> Result<RehearsalReport, RehearsalError> {
    let clock = Clock::with_speed(opts.speed);
    let real_start = Instant::now();
    let lab = Lab::start(LabOptions {
        clock: clock.clone(),
        durations: opts.durations,
        faults: None,
        stuck_adds: opts.stuck_adds,
        legacy_exporters: opts.legacy_exporters,
        ..LabOptions::default()
    })
    .await
    .map_err(|e| RehearsalError::Lab(e.to_string()))?;
    let engine = Engine::start(EngineOptions { clock: clock.clone(), ..EngineOptions::default() })
        .await
        .map_err(|e| RehearsalError::Engine(e.to_string()))?;
    let journal_dir = tempfile::Builder::new()
        .prefix("c8dr-rehearse-")
        .tempdir()
        .map_err(|e| RehearsalError::Worker(format!("cannot create a journal directory: {e}")))?;
    let kubeconfig = journal_dir.path().join("kubeconfig");
    lab.write_kubeconfig(&kubeconfig).map_err(|e| RehearsalError::Lab(e.to_string()))?;
    let config =
        Arc::new(rehearsal_config(&lab, &engine, &opts, journal_dir.path().join("journal.jsonl"), &kubeconfig));

    let deployed = engine
        .deploy_dir(&opts.bpmn_dir)
        .map_err(|e| RehearsalError::Bpmn { dir: opts.bpmn_dir.clone(), message: e.to_string() })?;
    let progress = Progress::new(opts.progress, clock.clone());
    progress.line(&format!(
        "deployed {} processes from {}; lab and engine on 127.0.0.1; clock x{}",
        deployed.len(),
        opts.bpmn_dir.display(),
        opts.speed
    ));

    // Faults apply to the region APIs only from now on: the procedure, not the setup, is tested.
    lab.set_faults(opts.faults.clone());
    let mut supervisor = WorkerSupervisor::start(config.clone(), lab.control_url(), &opts)?;

    let mut session = Session {
        lab: &lab,
        engine: &engine,
        opts: &opts,
        progress: &progress,
        supervisor: &mut supervisor,
        deadline: Instant::now() + opts.real_timeout,
        phases: Vec::new(),
        clock: clock.clone(),
        lost_at: None,
    };
    let outcome = match opts.scenario {
        Scenario::FailoverFailback => session.failover_failback().await,
        Scenario::Drill => session.drill().await,
    };
    let phases = session.phases;
    let lost_at = session.lost_at;
    supervisor.stop().await;
    lab.set_faults(None);

    let state = lab.state();
    let final_problems = match state.is_restored_dual_region() {
        Ok(()) => Vec::new(),
        Err(problems) => problems,
    };
    let record = lab.record();
    let mut report = RehearsalReport {
        scenario: format!("{:?}", opts.scenario),
        speed: opts.speed,
        wall_seconds: real_start.elapsed().as_secs_f64(),
        simulated_seconds: clock.elapsed().as_secs_f64(),
        phases,
        final_problems,
        mutations_repeated: repeated_mutations(&record),
        mutations: record.iter().filter(|r| is_successful_mutation(r)).count(),
        worker_restarts: supervisor.restarts,
        workers_killed: supervisor.killed,
        incidents: engine
            .incidents()
            .iter()
            .map(|i| format!("{} {}: {}", i.element_id, i.error_type, i.message))
            .collect(),
        error: outcome.err().map(|e| e.to_string()),
        lab_state: serde_json::to_value(&state).unwrap_or(Value::Null),
        dr: Err("not built yet".into()),
        kept: None,
    };
    let journals = supervisor.journals();
    report.dr = dr_report(&config, &journals, &report, lost_at).await;
    if opts.keep_engine {
        report.kept = Some(Arc::new(crate::rehearsal::report::KeptEngine {
            engine: engine.clone(),
            journal: config.journal.path.clone(),
            _dir: journal_dir,
        }));
    } else {
        engine.shutdown();
    }
    lab.shutdown().await;
    Ok(report)
}

fn rehearsal_config(
    lab: &LabHandle,
    engine: &EngineHandle,
    opts: &RehearseOptions,
    journal: PathBuf,
    kubeconfig: &std::path::Path,
) -> Config {
    let mut config = Config {
        management: ManagementConfig {
            grpc_address: engine.grpc_url(),
            rest_address: engine.rest_url(),
            request_timeout_ms: 5_000,
            ..ManagementConfig::default()
        },
        worker: WorkerConfig {
            name: "c8dr-rehearsal".into(),
            max_jobs_active: 8,
            job_timeout_ms: opts.job_timeout.as_millis() as u64,
            stream_enabled: true,
            request_timeout_ms: 1_000,
            poll_interval_ms: 50,
            backoff_min_ms: 20,
            backoff_max_ms: 500,
            shutdown_grace_ms: 2_000,
            // simulated: the engine measures back-offs on its clock
            fail_retry_backoff_ms: 5_000,
            // simulated too: transient failures are retried for 10 simulated minutes
            transient_retry: TransientRetryConfig {
                // the worker pauses in real time: 1 s simulated
                read_pause_ms: real_ms(1_000.0, opts.speed).max(1),
                ..Default::default()
            },
            metrics_address: String::new(),
            // checks keep observing for up to 240 s, every 0.1 s (simulated; the worker runs in real
            // time), within half the job timeout
            check_watch_ms: real_ms(240_000.0, opts.speed)
                .min((opts.job_timeout.as_millis() as u64 / 2).saturating_sub(1)),
            check_poll_ms: real_ms(100.0, opts.speed).max(1),
        },
        // a throwaway journal in a temporary directory: not synced line by line (see Journal::with_fsync)
        journal: JournalConfig { path: journal, fsync: false },
        targets: BTreeMap::new(),
        notifications: Default::default(),
    };
    let mut target = lab.target_config();
    target.four_eyes = opts.four_eyes;
    // the platform (rollouts, pods, profiles, release secrets) is read through the lab's
    // Kubernetes API by the production kube-rs code; with port-forward, every region call too
    for (r, region) in target.regions.iter_mut().enumerate() {
        region.kubeconfig = Some(kubeconfig.to_path_buf());
        region.kube_context = Some(format!("lab-region{r}"));
        if opts.access == crate::config::Access::PortForward {
            region.access = crate::config::Access::PortForward;
            region.management_url = format!("http://{}:9600", crate::platform::k8s::gateway_service(&target_release()));
            region.rest_url = format!("http://{}:8080", crate::platform::k8s::gateway_service(&target_release()));
            region.elasticsearch_url =
                format!("http://{}:9200", crate::platform::k8s::elasticsearch_service(&target_release()));
        }
    }
    config.targets.insert(LAB_TARGET.into(), target);
    config
}

fn target_release() -> String {
    crate::config::defaults::release()
}

/// Real milliseconds that correspond to `simulated_ms` at clock `speed`.
fn real_ms(simulated_ms: f64, speed: f64) -> u64 {
    (simulated_ms / speed).round() as u64
}

/// Start variables: the rehearsal's defaults, the scenario's own, then the caller's extras
/// (which win, so tests can start a process with bad input).
fn start_variables(opts: &RehearseOptions, own: Value) -> Map<String, Value> {
    let mut vars = Map::new();
    vars.insert("target".into(), json!(LAB_TARGET));
    vars.insert("approverGroup".into(), json!("dr-operators"));
    vars.insert("verifyInterval".into(), json!("PT5S"));
    vars.insert("initiatedBy".into(), json!(opts.initiator));
    if let Value::Object(own) = own {
        vars.extend(own);
    }
    for (k, v) in &opts.extra_variables {
        vars.insert(k.clone(), v.clone());
    }
    vars
}

/// What one rehearsal drives: the lab, the engine, the worker and the phases so far.
struct Session<'a> {
    lab: &'a LabHandle,
    engine: &'a EngineHandle,
    opts: &'a RehearseOptions,
    progress: &'a Progress,
    supervisor: &'a mut WorkerSupervisor,
    deadline: Instant,
    phases: Vec<PhaseReport>,
    clock: Clock,
    /// When the region was lost (simulated clock), in the failover-failback scenario.
    lost_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The DR report of the rehearsal: read back from the engine's REST API and the journal exactly
/// as `c8dr report --instance` reads a real run, plus what only the rehearsal knows (the
/// simulated clock, the region loss, the denied completions, the final state of the lab).
async fn dr_report(
    config: &Config,
    journals: &[PathBuf],
    r: &RehearsalReport,
    lost_at: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<crate::report::DrReport, String> {
    let roots: Vec<i64> = r.phases.iter().map(|p| p.instance_key).collect();
    // every replica's journal: together they are the audit trail
    let mut journal = Vec::new();
    for path in journals {
        journal.extend(
            crate::procedure::journal::Journal::with_fsync(path.clone(), false).entries().map_err(|e| e.to_string())?,
        );
    }
    journal.sort_by_key(|e| e.time);
    let observed =
        crate::report::camunda::observe(&config.management, &roots, &journal).await.map_err(|e| e.to_string())?;
    let mut dr = crate::report::build(&observed);
    dr.clock = format!("the rehearsal's simulated clock (x{})", r.speed);
    if let (Some(lost), Some(start)) = (lost_at, dr.start) {
        dr.rto.detect = Some(crate::report::seconds(lost, start).max(0.0));
        dr.rto.total = dr.end.map(|e| crate::report::seconds(lost, e));
        dr.rto.service_back = dr.rto.service_back.map(|s| s + crate::report::seconds(lost, start));
    }
    for p in &r.phases {
        for given in &p.answers {
            if let Some(a) = dr.approvals.iter_mut().find(|a| a.user_task_key == Some(given.user_task_key)) {
                a.decision = given.decision.clone();
                a.reason = given.comment.clone().filter(|c| !c.trim().is_empty());
            }
        }
        for d in &p.denials {
            // "<element id> by <who>: <reason>"
            if let Some((id, rest)) = d.split_once(" by ")
                && let Some(a) =
                    dr.approvals.iter_mut().find(|a| a.element_id == id && a.process_instance_key == p.instance_key)
            {
                a.denied.push(rest.to_string());
            }
        }
    }
    dr.final_state = Some(crate::report::FinalState {
        restored: r.final_problems.is_empty(),
        expected: "8 brokers, replication factor 4, one healthy leader per partition, both exporters enabled, exporting running"
            .into(),
        problems: r.final_problems.clone(),
    });
    for p in &r.final_problems {
        dr.left_to_do.push(format!("Fix: {p}"));
    }
    if let Some(e) = &r.error {
        dr.left_to_do.push(format!("The rehearsal stopped early: {e}"));
    }
    dr.notes.push(format!(
        "Step times are on the rehearsal's simulated clock (x{}); the journal's times (mutating calls) are the worker's wall clock.",
        r.speed
    ));
    dr.notes.push(format!(
        "The simulated installation's APIs saw {} successful mutating calls; the journal lists {}, which also counts Helm and Kubernetes operations. The rehearsal took {:.1} s of real time.",
        r.mutations,
        dr.mutations.len(),
        r.wall_seconds
    ));
    for m in &r.mutations_repeated {
        dr.notes.push(format!("Repeated mutation: {m}"));
    }
    if r.worker_restarts > 0 {
        dr.notes.push(format!("The worker was killed and restarted {} time(s) on purpose.", r.worker_restarts));
    }
    Ok(dr)
}

impl Session<'_> {
    async fn failover_failback(&mut self) -> Result<(), RehearsalError> {
        self.progress.line(&format!("region {LOST_REGION} is lost"));
        self.lost_at = Some(self.clock.now());
        self.lab.lose_region(LOST_REGION as usize).await.map_err(|e| RehearsalError::Lab(e.to_string()))?;
        let vars = start_variables(
            self.opts,
            json!({"lostRegion": LOST_REGION, "reason": "c8dr rehearse: simulated loss of region 1"}),
        );
        let failover = self.start_and_drive("dr-failover", vars).await?;
        // fail back only after a failover that did its job (not rejected, aborted or refused)
        let failover_ok = failover.outcome == "completed" && failover.procedure_outcome == "completed";
        self.phases.push(failover);
        if !failover_ok {
            return Ok(());
        }
        self.progress.line(&format!("region {LOST_REGION} is rebuilt (empty namespace); starting failback"));
        self.lab.recreate_region(LOST_REGION as usize).await.map_err(|e| RehearsalError::Lab(e.to_string()))?;
        let vars = start_variables(self.opts, json!({"recreatedRegion": LOST_REGION}));
        let failback = self.start_and_drive("dr-failback", vars).await?;
        self.phases.push(failback);
        Ok(())
    }

    async fn drill(&mut self) -> Result<(), RehearsalError> {
        let engine = self.engine;
        let vars = start_variables(self.opts, json!({"lostRegion": LOST_REGION, "autoApprove": true}));
        let before: BTreeSet<i64> = engine.process_instances("dr-drill").into_iter().collect();
        engine
            .publish_message("c8dr-drill", LAB_TARGET, Value::Object(vars), Duration::from_secs(3600), None)
            .map_err(|e| RehearsalError::Engine(e.to_string()))?;
        self.progress.line("published message c8dr-drill (correlation key: lab)");
        let key = engine
            .wait_for(Duration::from_secs(10), |e| {
                e.process_instances("dr-drill").into_iter().find(|k| !before.contains(k))
            })
            .await
            .ok_or_else(|| RehearsalError::Engine("the c8dr-drill message started no dr-drill instance".into()))?;
        let phase = self.drive(key, "dr-drill").await?;
        self.phases.push(phase);
        Ok(())
    }

    async fn start_and_drive(
        &mut self,
        process: &str,
        vars: Map<String, Value>,
    ) -> Result<PhaseReport, RehearsalError> {
        let key = self.engine.create_instance(process, vars).map_err(|e| RehearsalError::Engine(e.to_string()))?;
        self.progress.line(&format!("started {process} (instance {key})"));
        self.drive(key, process).await
    }

    /// Answers user tasks and restarts a killed worker until the instance ends (or an incident
    /// stops it, or time runs out), then builds the phase report.
    async fn drive(&mut self, key: i64, process: &str) -> Result<PhaseReport, RehearsalError> {
        let (engine, opts, progress, deadline) = (self.engine, self.opts, self.progress, self.deadline);
        let real_start = Instant::now();
        let mut changes = engine.changes();
        let mut seen_events = engine.event_log().len();
        let mut answered = BTreeSet::new();
        let mut denials = Vec::new();
        let mut answers = Vec::new();
        let outcome = loop {
            self.supervisor.restart_if_killed(progress).await?;
            // one snapshot of the log: events appended between reading and counting would be
            // skipped (a missed "step done" line under load)
            let new = engine.event_log_since(seen_events);
            for event in &new {
                progress.event(engine, event);
            }
            seen_events += new.len();
            match engine.instance_state(key) {
                Some(InstanceState::Completed) => break "completed".to_string(),
                Some(InstanceState::Terminated) => break "terminated".to_string(),
                _ => {}
            }
            let tree = instance_tree(engine, key);
            progress.watch(engine, &tree);
            if let Some(incident) = engine.incidents().into_iter().find(|i| tree.contains(&i.process_instance_key)) {
                progress.line(&format!(
                    "INCIDENT at {} ({}): {} — stopping the rehearsal",
                    incident.element_id, incident.error_type, incident.message
                ));
                break "incident".to_string();
            }
            let mut denied = false;
            for task in engine.open_user_tasks() {
                if !tree.contains(&task.process_instance_key) || !answered.insert(task.key) {
                    continue;
                }
                if matches!(opts.approver, Approver::Interactive) {
                    progress.finish(); // no spinner over the question
                }
                let answer = answer_for(&task, opts).await;
                progress.line(&format!(
                    "answered: {} — {}",
                    task.name.as_deref().unwrap_or(&task.element_id),
                    answer_summary(&answer)
                ));
                let given = TaskAnswer {
                    user_task_key: task.key,
                    element_id: task.element_id.clone(),
                    decision: answer_summary(
                        &answer
                            .iter()
                            .filter(|(k, _)| k.as_str() != "comment")
                            .map(|(k, v)| (k.clone(), v.clone()))
                            .collect(),
                    ),
                    comment: answer.get("comment").and_then(Value::as_str).map(str::to_string),
                };
                if self.complete_as_approvers(&task, answer, &mut denials).await? {
                    answers.push(given);
                } else {
                    if matches!(opts.approver, Approver::Interactive) {
                        answered.remove(&task.key); // ask again, the reason was shown
                    } else {
                        denied = true;
                    }
                }
            }
            if denied {
                progress.line("every approver's completion was denied — stopping the rehearsal");
                break "denied".to_string();
            }
            if Instant::now() > deadline {
                return Err(RehearsalError::Timeout(opts.real_timeout));
            }
            let _ = tokio::time::timeout(Duration::from_millis(25), changes.changed()).await;
        };
        progress.finish();
        let variables = engine.variables(key);
        let steps = step_rows(engine, key);
        let report = variables.get("report").cloned().unwrap_or(Value::Null);
        let sim =
            |from: Option<chrono::DateTime<chrono::Utc>>, to: Option<chrono::DateTime<chrono::Utc>>| match (from, to) {
                (Some(a), Some(b)) => (b - a).num_milliseconds() as f64 / 1000.0,
                _ => 0.0,
            };
        let start = steps.iter().map(|s| s.start).min();
        let end = steps.iter().filter_map(|s| s.end).max();
        let procedure_outcome = report.get("outcome").and_then(Value::as_str).unwrap_or("").to_string();
        let timer_wait_seconds: f64 = instance_tree(engine, key)
            .into_iter()
            .flat_map(|pi| engine.element_instances(pi))
            .filter(|e| e.element_type == "INTERMEDIATE_CATCH_EVENT")
            .map(|e| sim(Some(e.start), e.end))
            .sum();
        progress.line(&format!("{process} {outcome} ({procedure_outcome})"));
        Ok(PhaseReport {
            process: process.to_string(),
            instance_key: key,
            outcome,
            procedure_outcome,
            wall_seconds: real_start.elapsed().as_secs_f64(),
            simulated_seconds: sim(start, end),
            steps,
            lab_work_seconds: match (start, end) {
                // the installation's own work between the phase's first step and its last
                (Some(a), Some(b)) => {
                    self.lab.state().work_ms_within(a.timestamp_millis(), b.timestamp_millis()) as f64 / 1000.0
                }
                _ => 0.0,
            },
            timer_wait_seconds,
            report,
            denials,
            answers,
        })
    }

    /// Completes a user task as the approvers in turn (assigned first, as Tasklist does): true
    /// once a completion went through (or the task was canceled meanwhile), false when the
    /// task listener denied every approver's completion (the reasons go to `denials`).
    async fn complete_as_approvers(
        &mut self,
        task: &UserTaskView,
        answer: Map<String, Value>,
        denials: &mut Vec<String>,
    ) -> Result<bool, RehearsalError> {
        let (engine, opts, progress) = (self.engine, self.opts, self.progress);
        for who in &opts.approvers {
            engine.assign_user_task(task.key, who).map_err(|e| RehearsalError::Engine(e.to_string()))?;
            // the completion waits for the listener job: keep restarting a killed worker meanwhile
            let held = engine.complete_user_task_held(task.key, answer.clone());
            tokio::pin!(held);
            let result = loop {
                tokio::select! {
                    r = &mut held => break r,
                    _ = tokio::time::sleep(Duration::from_millis(25)) => self.supervisor.restart_if_killed(progress).await?,
                }
            };
            match result {
                Ok(()) | Err(CompletionError::Canceled(_)) => return Ok(true),
                Err(CompletionError::Denied { reason, .. }) => {
                    progress.line(&format!("{} completed by {who}: denied — {reason}", task.element_id));
                    denials.push(format!("{} by {who}: {reason}", task.element_id));
                }
                Err(e) => return Err(RehearsalError::Engine(e.to_string())),
            }
        }
        Ok(false)
    }
}

/// The instance and all its call-activity descendants.
fn instance_tree(engine: &EngineHandle, root: i64) -> BTreeSet<i64> {
    let mut tree = BTreeSet::from([root]);
    let mut frontier = vec![root];
    while let Some(k) = frontier.pop() {
        for child in engine.child_instances(k) {
            if tree.insert(child) {
                frontier.push(child);
            }
        }
    }
    tree
}

/// One row per task element instance (service, user, call activity), with attempts = job
/// activations of that element instance.
fn step_rows(engine: &EngineHandle, root: i64) -> Vec<StepRow> {
    let log = engine.event_log();
    let mut rows = Vec::new();
    for pi in instance_tree(engine, root) {
        for e in engine.element_instances(pi) {
            if !matches!(e.element_type.as_str(), "SERVICE_TASK" | "USER_TASK" | "CALL_ACTIVITY") {
                continue;
            }
            let attempts = log
                .iter()
                .filter(|ev| ev.value_type == "JOB" && ev.intent == "ACTIVATED" && ev.process_instance_key == pi)
                .filter(|ev| ev.element_id == e.element_id && ev.detail.contains(&e.key.to_string()))
                .count();
            rows.push(StepRow {
                process_instance_key: pi,
                element_id: e.element_id.clone(),
                name: e.name.clone().unwrap_or_else(|| e.element_id.clone()),
                element_type: e.element_type.clone(),
                start: e.start,
                end: e.end,
                attempts: attempts.max(usize::from(e.element_type == "SERVICE_TASK")),
            });
        }
    }
    rows.sort_by_key(|r| r.start);
    rows
}

/// A user task answer in a few words: the decision (the field a form's gateway reads), then the
/// comment, e.g. `approve ("looks right")`.
pub fn answer_summary(answer: &Map<String, Value>) -> String {
    let mut decision = Vec::new();
    for (k, v) in answer.iter().filter(|(k, _)| k.as_str() != "comment") {
        decision.push(match v {
            Value::String(s) => s.clone(),
            Value::Bool(b) => format!("{} {}", k, if *b { "yes" } else { "no" }),
            other => format!("{k} {other}"),
        });
    }
    let decision = if decision.is_empty() { "no decision".to_string() } else { decision.join(", ") };
    match answer.get("comment").and_then(Value::as_str).filter(|c| !c.trim().is_empty()) {
        Some(c) => format!("{decision} (\"{c}\")"),
        None => decision,
    }
}

async fn answer_for(task: &UserTaskView, opts: &RehearseOptions) -> Map<String, Value> {
    let form = task.form_id.clone().unwrap_or_default();
    if let Some(answer) = opts.answers.get(&form) {
        return answer.clone();
    }
    match opts.approver {
        Approver::Auto => automatic_answer(&form),
        Approver::Interactive => {
            let form_json = load_form(&opts.bpmn_dir, &form);
            crate::rehearsal::interactive::ask(task, form_json.as_ref()).await
        }
    }
}

/// The form `form_id` from `<bpmn_dir>/forms/<form_id>.form`, if it is there and parses.
fn load_form(bpmn_dir: &std::path::Path, form_id: &str) -> Option<Value> {
    if form_id.is_empty() || form_id.contains(['/', '\\']) {
        return None;
    }
    let text = std::fs::read_to_string(bpmn_dir.join("forms").join(format!("{form_id}.form"))).ok()?;
    serde_json::from_str(&text).ok()
}

/// What `c8dr rehearse` answers without `--interactive` (docs/jobs.md, "User tasks and forms").
pub fn automatic_answer(form_id: &str) -> Map<String, Value> {
    let comment = json!("answered by c8dr rehearse");
    let v = match form_id {
        "c8dr-approve-failover" | "c8dr-approve-failback" => json!({"decision": "approve", "comment": comment}),
        "c8dr-confirm-restored" => json!({"decision": "confirm", "comment": comment}),
        "c8dr-confirm-traffic" => json!({"trafficRerouted": true, "comment": comment}),
        "c8dr-verification-timeout" => json!({"timeoutDecision": "abort", "comment": comment}),
        "c8dr-step-failed" => json!({"errorDecision": "abort", "comment": comment}),
        "c8dr-manual-step" => json!({"manualStepDone": true, "comment": comment}),
        _ => json!({"comment": comment}),
    };
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// A successful call that changed the installation. Dry runs and REST searches (POST reads) do
/// not; canary process instances (drills create several on purpose) are not DR operations.
fn is_successful_mutation(r: &RecordEntry) -> bool {
    let read_or_canary = r.path.contains("dryRun=true")
        || r.path.ends_with("/search")
        || (r.method == "POST" && r.path == "/v2/process-instances");
    (200..300).contains(&r.status) && !read_or_canary
}

/// How often a successful call may appear in one rehearsal: once, except the recreated region's
/// repository registration (`PUT /_snapshot/<repo>`), made twice on purpose: read-only for the
/// restore, writable again once the restore is done (docs/elasticsearch.md).
fn allowed_times(r: &RecordEntry) -> usize {
    let repository_put = r.method == "PUT"
        && r.path.strip_prefix("/_snapshot/").is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    if repository_put && r.region == usize::from(LOST_REGION) { 2 } else { 1 }
}

/// Successful mutating calls made more often than allowed with the same region, method and path
/// (and query): the same operation done twice. Dry runs are not mutations.
pub fn repeated_mutations(record: &[RecordEntry]) -> Vec<String> {
    let mut counts: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for r in record.iter().filter(|r| is_successful_mutation(r)) {
        let e = counts.entry(format!("region {} {} {} {}", r.region, r.api.as_str(), r.method, r.path)).or_default();
        e.0 += 1;
        e.1 = allowed_times(r);
    }
    counts.into_iter().filter(|(_, (n, allowed))| n > allowed).map(|(k, (n, _))| format!("{k} ({n} times)")).collect()
}

/// One worker replica: its own step context and journal file.
struct Replica {
    config: Arc<Config>,
    handle: Option<WorkerHandle>,
}

/// Runs the worker replicas; when the kill switch fired, kills the replica that ran the job and
/// (with one replica) starts a new one.
struct WorkerSupervisor {
    lab_control_url: String,
    replicas: Vec<Replica>,
    kill_rx: mpsc::UnboundedReceiver<(usize, String)>,
    kill_tx: mpsc::UnboundedSender<(usize, String)>,
    kill_at: Option<String>,
    kill_point: KillPoint,
    killed_once: Arc<AtomicBool>,
    restarts: usize,
    killed: usize,
}

impl WorkerSupervisor {
    fn start(config: Arc<Config>, lab_control_url: String, opts: &RehearseOptions) -> Result<Self, RehearsalError> {
        let (kill_tx, kill_rx) = mpsc::unbounded_channel();
        let replicas = (0..opts.workers.max(1))
            .map(|i| {
                let mut c = (*config).clone();
                if i > 0 {
                    // each replica its own journal (as pods with their own volume) and name
                    c.journal.path = c.journal.path.with_file_name(format!("journal-{i}.jsonl"));
                    c.worker.name = format!("{}-{i}", c.worker.name);
                }
                Replica { config: Arc::new(c), handle: None }
            })
            .collect();
        let mut s = Self {
            lab_control_url,
            replicas,
            kill_rx,
            kill_tx,
            kill_at: opts.kill_worker_at.clone(),
            kill_point: opts.kill_point,
            killed_once: Arc::new(AtomicBool::new(false)),
            restarts: 0,
            killed: 0,
        };
        for i in 0..s.replicas.len() {
            s.spawn(i)?;
        }
        Ok(s)
    }

    /// The journal files of all replicas.
    fn journals(&self) -> Vec<PathBuf> {
        self.replicas.iter().map(|r| r.config.journal.path.clone()).collect()
    }

    fn spawn(&mut self, i: usize) -> Result<(), RehearsalError> {
        let config = self.replicas[i].config.clone();
        let client = GatewayClient::connect(&config.management).map_err(|e| RehearsalError::Worker(e.to_string()))?;
        let kill_at_record = match (&self.kill_at, self.kill_point) {
            (Some(job_type), KillPoint::AfterIntent | KillPoint::AfterCall)
                if !self.killed_once.load(Ordering::SeqCst) =>
            {
                Some(job_type)
            }
            _ => None,
        };
        let recorder: Arc<dyn InstanceRecorder> = match kill_at_record {
            Some(job_type) => Arc::new(KillAtRecord {
                inner: jobs::GatewayRecorder::new(client.clone()),
                point: self.kill_point,
                job_type: job_type.clone(),
                replica: i,
                kill: self.kill_tx.clone(),
                once: self.killed_once.clone(),
            }),
            None => Arc::new(jobs::GatewayRecorder::new(client.clone())),
        };
        // a restarted replica keeps its journal (its volume survived), records go to the engine
        let ctx = Arc::new(
            StepContext::new(config.clone())
                .with_platforms(crate::rehearsal::lab_platform::factory_kube(self.lab_control_url.clone()))
                .with_recorder(recorder),
        );
        ctx.connect_all();
        let mut builder = Worker::builder(client, config.worker.clone());
        for job_type in jobs::JOB_TYPES {
            let handler = jobs::handler(ctx.clone());
            let handler = match &self.kill_at {
                Some(kill)
                    if kill == job_type
                        && self.kill_point == KillPoint::AfterAct
                        && !self.killed_once.load(Ordering::SeqCst) =>
                {
                    kill_after_act(handler, i, self.kill_tx.clone(), self.killed_once.clone())
                }
                _ => handler,
            };
            builder = builder.handler(*job_type, handler);
        }
        let (_never_tx, never_rx) = tokio::sync::oneshot::channel::<()>();
        std::mem::forget(_never_tx);
        let replica = &mut self.replicas[i];
        replica.handle = Some(builder.build().spawn(async move {
            let _ = never_rx.await;
        }));
        Ok(())
    }

    async fn restart_if_killed(&mut self, progress: &Progress) -> Result<(), RehearsalError> {
        if let Ok((i, job_type)) = self.kill_rx.try_recv() {
            if let Some(h) = self.replicas[i].handle.take() {
                h.abort();
            }
            self.killed += 1;
            let when = match self.kill_point {
                KillPoint::AfterAct => "right after it acted",
                KillPoint::AfterIntent => "between recording its intent and its call",
                KillPoint::AfterCall => "between its call and recording the call's outcome",
            };
            if self.replicas.len() == 1 {
                progress
                    .line(&format!("worker killed in {job_type} {when} (before completing); starting a new worker"));
                self.restarts += 1;
                self.spawn(i)?;
            } else {
                progress.line(&format!(
                    "worker replica {i} killed in {job_type} {when} (before completing); the other replicas take the job over once it times out"
                ));
            }
        }
        Ok(())
    }

    async fn stop(&mut self) {
        for r in &mut self.replicas {
            if let Some(h) = r.handle.take() {
                h.abort();
            }
        }
    }
}

/// Wraps a handler: the first job runs the real step (which acts), then the wrapper reports the
/// kill and never returns, as if the process died before CompleteJob.
fn kill_after_act(
    inner: Handler,
    replica: usize,
    kill: mpsc::UnboundedSender<(usize, String)>,
    once: Arc<AtomicBool>,
) -> Handler {
    Arc::new(move |job: Job| {
        let inner = inner.clone();
        let kill = kill.clone();
        let once = once.clone();
        Box::pin(async move {
            let job_type = job.job_type.clone();
            let outcome: JobOutcome = inner(job).await;
            if !once.swap(true, Ordering::SeqCst) {
                let _ = kill.send((replica, job_type));
                std::future::pending::<()>().await;
            }
            outcome
        })
    })
}

/// Wraps the recorder. [`KillPoint::AfterIntent`]: the first intent of a call of `job_type` is
/// recorded, then the replica reports the kill and never returns, as if the process died between
/// the record and the call. [`KillPoint::AfterCall`]: the first outcome of a call of `job_type`
/// is not recorded: the replica dies after the call was answered and before the record says so.
struct KillAtRecord {
    inner: jobs::GatewayRecorder,
    point: KillPoint,
    job_type: String,
    replica: usize,
    kill: mpsc::UnboundedSender<(usize, String)>,
    once: Arc<AtomicBool>,
}

impl InstanceRecorder for KillAtRecord {
    fn record(
        &self,
        element_instance_key: i64,
        variables: Map<String, Value>,
    ) -> futures::future::BoxFuture<'_, Result<(), RecordError>> {
        Box::pin(async move {
            // a record of ours: an intent (outcome null) or an outcome
            let ours = |outcome_recorded: bool| {
                variables.values().any(|v| {
                    v.get("step").and_then(Value::as_str) == Some(self.job_type.as_str())
                        && v.get("outcome").is_some_and(|o| o.is_null() != outcome_recorded)
                })
            };
            let (kill_before, kill_after) = match self.point {
                KillPoint::AfterCall => (ours(true), false),
                KillPoint::AfterIntent => (false, ours(false)),
                KillPoint::AfterAct => (false, false),
            };
            if kill_before && !self.once.swap(true, Ordering::SeqCst) {
                let _ = self.kill.send((self.replica, self.job_type.clone()));
                std::future::pending::<()>().await;
            }
            self.inner.record(element_instance_key, variables).await?;
            if kill_after && !self.once.swap(true, Ordering::SeqCst) {
                let _ = self.kill.send((self.replica, self.job_type.clone()));
                std::future::pending::<()>().await;
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rehearsal::lab::Api;

    fn call(region: usize, method: &str, path: &str) -> RecordEntry {
        RecordEntry {
            seq: 0,
            time: String::new(),
            region,
            api: Api::Elasticsearch,
            method: method.into(),
            path: path.into(),
            status: 200,
        }
    }

    #[test]
    fn answers_read_as_decision_and_comment_not_json() {
        let a = automatic_answer("c8dr-approve-failover");
        assert_eq!(answer_summary(&a), "approve (\"answered by c8dr rehearse\")");
        let a = automatic_answer("c8dr-confirm-traffic");
        assert_eq!(answer_summary(&a), "trafficRerouted yes (\"answered by c8dr rehearse\")");
        assert_eq!(answer_summary(&Map::new()), "no decision");
    }

    #[test]
    fn the_recreated_regions_repository_may_be_registered_twice_nothing_else() {
        let put = call(1, "PUT", "/_snapshot/camunda_backup");
        assert!(repeated_mutations(&[put.clone(), put.clone()]).is_empty(), "read-only, then writable");
        assert_eq!(repeated_mutations(&[put.clone(), put.clone(), put]).len(), 1);
        let surviving = call(0, "PUT", "/_snapshot/camunda_backup");
        assert_eq!(repeated_mutations(&[surviving.clone(), surviving]).len(), 1);
        let snap = call(1, "PUT", "/_snapshot/camunda_backup/s1");
        assert_eq!(repeated_mutations(&[snap.clone(), snap]).len(), 1);
    }
}
