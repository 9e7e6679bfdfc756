//! THE table of job types: job type -> typed input -> step function -> one-line description.
//!
//! Everything that lists job types derives from [`STEPS`]: [`JOB_TYPES`] (the worker's
//! registration in `c8dr worker` and `c8dr rehearse`), the docs/jobs.md check and the element
//! template check. [`run`] finds the job's row, builds its typed input ([`FromJob`]: INVALID_INPUT
//! naming the variable before the step runs) and calls the step, which returns
//! `Result<Done, StepError>`; `jobs::handle` is the one place that maps that to complete / fail /
//! BPMN error.
use super::inputs::{
    CanaryAction, CanaryVars, ChangeVar, CheckRegions, DrillAction, ExportersExpect, Failback, Failover, FromJob,
    Header, OptionalSnapshotVar, ProcessKind, ProfilesExpect, SnapshotRegion, SnapshotVar, Surviving, TargetRegions,
    TopologyExpect,
};
use super::{StepEnv, StepError, StepResult};
use super::{
    approval, brokers, change, drill, exporters, exporting, platform, report, snapshot, stuck, validate, verify,
};
use crate::platform::HelmAction;
use futures::future::BoxFuture;

/// How the engine calls a job type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A service task's job.
    Service,
    /// A user task listener's job (no element template: it is not a task).
    Listener,
}

/// One row of the table.
pub struct StepSpec {
    pub job_type: &'static str,
    pub kind: StepKind,
    /// One line: what the step does (docs/jobs.md repeats it).
    pub description: &'static str,
    run: for<'a> fn(&'a StepEnv<'a>) -> BoxFuture<'a, StepResult>,
}

impl std::fmt::Debug for StepSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepSpec").field("job_type", &self.job_type).field("kind", &self.kind).finish()
    }
}

macro_rules! steps {
    ($( $job_type:literal, $kind:ident, $input:ty, $step:path, $description:literal; )*) => {
        /// Every job type this worker handles, in process order.
        pub const STEPS: &[StepSpec] = &[$(
            StepSpec {
                job_type: $job_type,
                kind: StepKind::$kind,
                description: $description,
                run: {
                    fn run<'a>(env: &'a StepEnv<'a>) -> BoxFuture<'a, StepResult> {
                        Box::pin(async move {
                            let input = <$input as FromJob>::from_job(env.input)?;
                            $step(env, input).await
                        })
                    }
                    run
                },
            },
        )*];

        /// The job types of [`STEPS`].
        pub const JOB_TYPES: &[&str] = &[$($job_type),*];
    };
}

steps! {
    "c8dr.validate-input", Service, Header<ProcessKind>, validate::validate_input,
        "Validates and normalizes the process inputs (defaults, surviving region, start time).";
    "c8dr.assess-failover", Service, Failover, brokers::assess_failover,
        "Plans the failover: which brokers to remove, after checking the lost region is gone.";
    "c8dr.remove-brokers", Service, Failover, brokers::remove_brokers,
        "Force-removes the lost region's brokers from the cluster.";
    "c8dr.await-change", Service, (Surviving, ChangeVar), change::await_change,
        "Checks whether a cluster change has completed.";
    "c8dr.verify-topology", Service, (Header<TopologyExpect>, Surviving), verify::verify_topology,
        "Checks the topology is the expected degraded or full one.";
    "c8dr.disable-exporters", Service, Failover, exporters::disable_exporters,
        "Disables the lost region's Elasticsearch exporters, one change at a time.";
    "c8dr.verify-exporters", Service, (Header<ExportersExpect>, (Surviving, OptionalSnapshotVar)), verify::verify_exporters,
        "Checks the exporters' states (and enables the legacy exporter next in a failback).";
    "c8dr.preflight-recreated", Service, Failback, platform::preflight_recreated,
        "Checks the recreated region is clean before it is deployed.";
    "c8dr.helm", Service, (Header<HelmAction>, Header<TargetRegions>, Surviving), platform::helm_step,
        "Runs a Helm action in a region (deploy the recreated region, turn the web apps off or on).";
    "c8dr.verify-profiles", Service, (Header<ProfilesExpect>, Header<TargetRegions>, Surviving), platform::verify_profiles,
        "Checks the rollout finished and the pods run the expected profiles.";
    "c8dr.restart-stuck-brokers", Service, (), stuck::restart_stuck_brokers,
        "Restarts the broker pods an operator approved as stuck.";
    "c8dr.await-brokers-visible", Service, Failback, brokers::await_brokers_visible,
        "Checks the recreated region's brokers are visible to the surviving region.";
    "c8dr.pause-exporting", Service, Surviving, exporting::pause_exporting,
        "Pauses exporting in the surviving region.";
    "c8dr.resume-exporting", Service, Surviving, exporting::resume_exporting,
        "Resumes exporting in the surviving region.";
    "c8dr.register-snapshot-repo", Service, (Header<SnapshotRegion>, Surviving, OptionalSnapshotVar), snapshot::register_snapshot_repo,
        "Registers the snapshot repository in the surviving or the recreated region.";
    "c8dr.create-snapshot", Service, (Surviving, SnapshotVar), snapshot::create_snapshot,
        "Starts the Elasticsearch snapshot in the surviving region.";
    "c8dr.await-snapshot", Service, (Surviving, SnapshotVar), snapshot::await_snapshot,
        "Checks whether the snapshot has completed.";
    "c8dr.restore-snapshot", Service, (Failback, SnapshotVar), snapshot::restore_snapshot,
        "Starts the restore of the snapshot in the recreated region.";
    "c8dr.await-restore", Service, (Failback, SnapshotVar), snapshot::await_restore,
        "Checks whether the restore has completed.";
    "c8dr.enable-exporter", Service, (Failback, OptionalSnapshotVar), exporters::enable_exporter,
        "Enables the recreated region's exporter, initialized from the surviving region's.";
    "c8dr.add-brokers", Service, Failback, brokers::add_brokers,
        "Adds the recreated region's brokers back to the cluster.";
    "c8dr.drill-guard", Service, (), drill::drill_guard,
        "Refuses a drill on a target that does not allow drills.";
    "c8dr.drill-canaries", Service, (Header<CanaryAction>, Option<Header<CheckRegions>>, Surviving, CanaryVars), drill::drill_canaries,
        "Creates the drill's canary process instances, or checks they survived.";
    "c8dr.drill-region", Service, (Header<DrillAction>, Failover), drill::drill_region,
        "Loses or recreates a region in a drill.";
    "c8dr.notify", Service, (), report::notify,
        "Logs an event and posts it to the configured webhooks.";
    "c8dr.report", Service, Header<ProcessKind>, report::report,
        "Builds the run's report from the audit journal and posts its outcome.";
    "c8dr.approval-guard", Listener, (), approval::approval_guard,
        "Denies an approval that breaks the four-eyes rule or lacks an answer.";
}

/// The row of `job_type`.
pub fn find(job_type: &str) -> Option<&'static StepSpec> {
    STEPS.iter().find(|s| s.job_type == job_type)
}

/// Runs the step of `env.input.step` with its typed input.
pub async fn run(env: &StepEnv<'_>) -> StepResult {
    match find(&env.input.step) {
        Some(spec) => (spec.run)(env).await,
        None => Err(StepError::invalid(
            "jobType",
            format!("unknown job type `{}`: this worker handles c8dr.* types only", env.input.step),
        )),
    }
}
