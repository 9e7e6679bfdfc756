//! Exporter steps: disable-exporters (one exporter per call; the process loops) and
//! enable-exporter (with `initializeFrom` the surviving region's exporter).
use super::api::{ClusterView, ExporterStatusKind, Mutation, MutationResult, OperationKind, PendingChange};
use super::inputs::{Failback, Failover, OptionalSnapshotVar};
use super::{Done, StepEnv, StepError, StepResult, errors, vars};
use serde_json::{Value, json};

fn exporter_change(p: &PendingChange, operation: &OperationKind, ids: &[String]) -> Option<String> {
    p.completed
        .iter()
        .chain(p.pending.iter())
        .filter(|o| o.operation == *operation)
        .find_map(|o| o.exporter_id.clone().filter(|e| ids.contains(e)))
        .or_else(|| {
            // some versions omit exporterId in the operation list: accept the operation alone
            // when only one exporter is in question
            let any = p.completed.iter().chain(p.pending.iter()).any(|o| o.operation == *operation);
            (any && ids.len() == 1).then(|| ids[0].clone())
        })
}

fn change_id_of(r: MutationResult, what: &str) -> StepResult {
    match r {
        MutationResult::Change(c) => Ok(Done::done(vars([("changeId", json!(c.change_id))]))),
        other => Err(StepError::retry(format!("unexpected answer to {what}: {}", other.describe()))),
    }
}

fn pending(c: &ClusterView) -> Option<&PendingChange> {
    c.pending_change.as_ref()
}

/// Fails (retried) when one of `ids` is ENABLING or DISABLING although the cluster, read after
/// the exporter list, has no pending change: the change ended between the two reads, and the
/// list shows the state from before its end. Acting on it would repeat the change.
fn settled(list: &[super::api::ExporterStatus], ids: &[String]) -> Result<(), StepError> {
    for e in list.iter().filter(|e| ids.contains(&e.exporter_id)) {
        if matches!(e.status, ExporterStatusKind::Enabling | ExporterStatusKind::Disabling) {
            return Err(StepError::retry(format!(
                "exporter {} was {} while no cluster change is pending: the change ended while c8dr read the state; observing again",
                e.exporter_id, e.status
            )));
        }
    }
    Ok(())
}

/// `c8dr.disable-exporters`: the lost region's exporter, and its legacy one when enabled.
pub async fn disable_exporters(env: &StepEnv<'_>, input: Failover) -> StepResult {
    let (surviving, lost) = (input.surviving.index(), input.lost.index());
    let candidates =
        [crate::region_api::exporter_id(env.target, lost), crate::region_api::legacy_exporter_id(env.target, lost)];
    let list = env.api.exporters(surviving).await?;
    // guards docs/target-apis.md §6.11: CONFIG_NOT_FOUND / re-enabled exporters must be disabled explicitly
    let to_disable: Vec<String> = candidates
        .iter()
        .filter(|id| list.iter().any(|e| &e.exporter_id == *id && e.status != ExporterStatusKind::Disabled))
        .cloned()
        .collect();
    let cluster = env.api.cluster(surviving).await?;
    if let Some(p) = pending(&cluster) {
        // guards docs/target-apis.md §6.2 / §6.3: adopt our own pending disable, refuse a foreign change
        if let Some(id) = exporter_change(p, &OperationKind::PartitionDisableExporter, &to_disable) {
            let done = to_disable.iter().all(|x| *x == id);
            return Ok(Done::already_done(vars([("changeId", json!(p.id)), ("exportersDone", json!(done))])));
        }
        return Err(StepError::refused(
            errors::CONCURRENT_CHANGE,
            format!("another cluster change (id {}) is pending; exporters can be disabled once it finished", p.id),
        ));
    }
    // the list was read before the cluster: a change that ended in between leaves a
    // transitional status without a pending change; act only on a settled one
    settled(&list, &to_disable)?;
    let Some(first) = to_disable.first().cloned() else {
        return Ok(Done::already_done(vars([("changeId", Value::Null), ("exportersDone", json!(true))])));
    };
    let answer = env.mutate(surviving, Mutation::DisableExporter { exporter_id: first }).await??;
    Ok(change_id_of(answer, "the exporter disable")?.with_var("exportersDone", json!(to_disable.len() == 1)))
}

/// True when this process instance asked to enable exporter `id` and that is the last thing
/// it did to it (the record `c8drCall_exporter_<id>`, shared by enable and disable): answered,
/// possibly applied with an unreadable answer, or unknown (intent without outcome: the enable
/// may have been sent; the exporter's ENABLED state alone cannot tell who enabled it, so the
/// enable is taken as ours rather than disabling an exporter that may be initialized). A 4xx
/// rejection does not count. No record: this instance never asked (an intent is recorded
/// before every call, so the absence is knowledge).
fn enabled_by_this_instance(env: &StepEnv<'_>, id: &str) -> Result<bool, StepError> {
    let fact = super::mutation_fact(0, &super::api::Mutation::DisableExporter { exporter_id: id.to_string() });
    Ok(env.recorded(&fact)?.is_some_and(|r| r.action == "enable-exporter" && r.possibly_applied()))
}

/// Exporters of `region` (as seen from `surviving`) that were disabled by the failover but are
/// enabled again although this process instance did not enable them: a broker restart after a
/// helm upgrade re-enabled them (#52260). Starts disabling the first one when no change is
/// pending. Returns the ids found. An exporter this instance enabled (the main one, or the
/// legacy one of an Optimize installation) is never disabled.
pub async fn redisable_flipped(env: &StepEnv<'_>, surviving: u8, region: u8) -> Result<Vec<String>, StepError> {
    // guards docs/target-apis.md §6.11: re-check exporters after any helm upgrade / restart
    let main = crate::region_api::exporter_id(env.target, region);
    let legacy = crate::region_api::legacy_exporter_id(env.target, region);
    let list = env.api.exporters(surviving).await?;
    let mut flipped = Vec::new();
    for e in &list {
        if (e.exporter_id == main || e.exporter_id == legacy)
            // an unknown status is not "still disabled": reported (never verified), not mutated
            && matches!(
                e.status,
                ExporterStatusKind::Enabled
                    | ExporterStatusKind::ConfigNotFound
                    | ExporterStatusKind::Disabling
                    | ExporterStatusKind::Unknown(_)
            )
            && !enabled_by_this_instance(env, &e.exporter_id)?
        {
            flipped.push(e.exporter_id.clone());
        }
    }
    let Some(first) = flipped.iter().find(|id| {
        list.iter().any(|e| {
            &e.exporter_id == *id
                && matches!(e.status, ExporterStatusKind::Enabled | ExporterStatusKind::ConfigNotFound)
        })
    }) else {
        return Ok(flipped);
    };
    let cluster = env.api.cluster(surviving).await?;
    if cluster.pending_change.is_none() {
        env.mutate(surviving, Mutation::DisableExporter { exporter_id: first.clone() }).await??;
    }
    Ok(flipped)
}

/// The exporters the failback enables in the recreated region, each with the surviving
/// exporter it is initialized from: the main pair, and (seed failback step 5, installations
/// migrated from 8.7 with Optimize) the legacy pair when the surviving region's legacy exporter
/// is enabled.
pub fn failback_pairs(
    target: &crate::config::TargetConfig,
    list: &[super::api::ExporterStatus],
    surviving: u8,
    recreated: u8,
) -> Vec<(String, String)> {
    let mut pairs =
        vec![(crate::region_api::exporter_id(target, recreated), crate::region_api::exporter_id(target, surviving))];
    let legacy_from = crate::region_api::legacy_exporter_id(target, surviving);
    if list.iter().any(|e| e.exporter_id == legacy_from && e.status == ExporterStatusKind::Enabled) {
        pairs.push((crate::region_api::legacy_exporter_id(target, recreated), legacy_from));
    }
    pairs
}

/// What [`enable_next`] did.
#[derive(Debug, Clone, PartialEq)]
pub enum EnableStep {
    /// Enabled this exporter; the change to await.
    Issued { exporter_id: String, change_id: Value },
    /// An enable of ours is pending.
    Pending { change_id: i64 },
    /// Every exporter of the pairs is enabled by this instance.
    AllEnabled,
}

/// Enables the next exporter of [`failback_pairs`] that this instance has not enabled yet
/// (with `initializeFrom`, after the restore finished). One change at a time.
pub async fn enable_next(
    env: &StepEnv<'_>,
    surviving: u8,
    recreated: u8,
    snapshot: Option<&str>,
) -> Result<EnableStep, StepError> {
    let list = env.api.exporters(surviving).await?;
    let pairs = failback_pairs(env.target, &list, surviving, recreated);
    let ids: Vec<String> = pairs.iter().map(|(id, _)| id.clone()).collect();
    let cluster = env.api.cluster(surviving).await?;
    if let Some(p) = pending(&cluster) {
        if exporter_change(p, &OperationKind::PartitionEnableExporter, &ids).is_some() {
            return Ok(EnableStep::Pending { change_id: p.id });
        }
        if let Some(id) = exporter_change(p, &OperationKind::PartitionDisableExporter, &ids) {
            return Err(StepError::retry(format!(
                "exporter {id} is being disabled (change {}); the enable follows once it completed",
                p.id
            )));
        }
        // guards docs/target-apis.md §6.3
        return Err(StepError::refused(
            errors::CONCURRENT_CHANGE,
            format!("another cluster change (id {}) is pending; enable {} once it finished", p.id, ids.join(", ")),
        ));
    }
    settled(&list, &ids)?;
    for (id, from) in pairs {
        let status = list.iter().find(|e| e.exporter_id == id).map(|e| &e.status);
        match status {
            Some(ExporterStatusKind::Enabled | ExporterStatusKind::Disabled) => {}
            // fail closed: enable only an exporter that is known to be disabled
            Some(ExporterStatusKind::ConfigNotFound) | None => {
                return Err(StepError::refused(
                    errors::PRECONDITION_FAILED,
                    format!(
                        "exporter {id} is {}: the surviving region's brokers do not have it configured; configure it (Helm values of region {surviving}) before the failback enables it",
                        status.map_or("absent from /actuator/exporters".to_string(), |s| s.to_string())
                    ),
                ));
            }
            Some(other) => {
                return Err(StepError::retry(format!(
                    "exporter {id} is {other}, a state c8dr does not enable from; observing again"
                )));
            }
        }
        if status == Some(&ExporterStatusKind::Enabled) {
            if enabled_by_this_instance(env, &id)? {
                continue;
            }
            // guards docs/target-apis.md §6.11 / §6.9: ENABLED although we never enabled it: a broker
            // restart re-enabled it (#52260) without initializeFrom; disable it, enable it
            // properly on the next attempt
            let answer = env.mutate(surviving, Mutation::DisableExporter { exporter_id: id.clone() }).await??;
            return Err(StepError::retry(format!(
                "exporter {id} was re-enabled by a broker restart without initializeFrom: disabling it first ({}); the enable follows",
                answer.describe()
            )));
        }
        // the restore must be finished: the exporter starts writing into the recreated ES
        let recoveries = env.api.recoveries(recreated).await?;
        let repo = &env.target.snapshot.repository;
        let active: Vec<_> =
            recoveries.iter().filter(|r| r.kind.eq_ignore_ascii_case("snapshot") && r.is_active()).collect();
        let restored = snapshot.is_none_or(|s| recoveries.iter().any(|r| r.is_from_snapshot(repo, s)));
        if !active.is_empty() || !restored {
            return Err(StepError::refused(
                errors::PRECONDITION_FAILED,
                format!(
                    "the restore into region {recreated} is not finished ({} active snapshot recoveries{}): await the restore first",
                    active.len(),
                    if restored { "" } else { ", none from our snapshot" }
                ),
            ));
        }
        // guards docs/target-apis.md §6.9: enable with initializeFrom, never without
        let m = Mutation::EnableExporter { exporter_id: id.clone(), initialize_from: Some(from) };
        let answer = env.mutate(surviving, m).await??;
        let change_id = match answer {
            MutationResult::Change(c) => json!(c.change_id),
            other => {
                return Err(StepError::retry(format!(
                    "unexpected answer to the exporter enable: {}",
                    other.describe()
                )));
            }
        };
        return Ok(EnableStep::Issued { exporter_id: id, change_id });
    }
    Ok(EnableStep::AllEnabled)
}

/// `c8dr.enable-exporter`: the recreated region's exporter (and, on Optimize installations, its
/// legacy exporter), initialized from the survivor's. One enable per call: the process awaits
/// the change, and verify-exporters (expect full) enables the legacy exporter next.
pub async fn enable_exporter(env: &StepEnv<'_>, (at, snapshot): (Failback, OptionalSnapshotVar)) -> StepResult {
    let (surviving, recreated) = (at.surviving.index(), at.recreated.index());
    let snapshot = snapshot.snapshot_name.map(|s| s.0);
    match enable_next(env, surviving, recreated, snapshot.as_deref()).await? {
        EnableStep::Issued { exporter_id, change_id } => {
            Ok(Done::done(vars([("changeId", change_id), ("exporterEnabled", json!(exporter_id))])))
        }
        EnableStep::Pending { change_id } => Ok(Done::already_done(vars([("changeId", json!(change_id))]))),
        EnableStep::AllEnabled => Ok(Done::already_done(vars([("changeId", Value::Null)]))),
    }
}
