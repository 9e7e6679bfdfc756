//! Broker steps: assess-failover, remove-brokers (force), add-brokers (no force, original RF),
//! await-brokers-visible.
use super::api::{
    ApiErrorKind, ClusterView, ExporterStatusKind, Health, Mutation, MutationResult, OperationKind, PendingChange,
    Role, TopologyBroker, TopologyPartition, TopologyView,
};
use super::inputs::{Failback, Failover};
use super::regions::{self, brokers_of};
use super::{Done, StepEnv, StepError, StepResult, errors, exporting, plan, validate, vars};
use serde_json::{Value, json};

/// True when the pending change contains `operation` concerning one of `brokers`.
fn touches(p: &PendingChange, operation: OperationKind, brokers: &[u32]) -> bool {
    p.completed.iter().chain(p.pending.iter()).any(|op| op.concerns(&operation, brokers))
}

/// Our force removal: BROKER_REMOVE of a lost broker, or a force reconfiguration (only a force
/// removal makes those, and only one force request runs at a time).
fn is_our_removal(p: &PendingChange, lost: &[u32]) -> bool {
    touches(p, OperationKind::BrokerRemove, lost)
        || p.completed.iter().chain(p.pending.iter()).any(|op| op.operation == OperationKind::PartitionForceReconfigure)
}

/// Our addition: BROKER_ADD or PARTITION_JOIN of a recreated broker.
fn is_our_addition(p: &PendingChange, ids: &[u32]) -> bool {
    touches(p, OperationKind::BrokerAdd, ids) || touches(p, OperationKind::PartitionJoin, ids)
}

fn present(cluster: &ClusterView, ids: &[u32]) -> Vec<u32> {
    let mut v: Vec<u32> = cluster.brokers.iter().map(|b| b.id).filter(|id| ids.contains(id)).collect();
    v.sort_unstable();
    v
}

fn last_change_id(cluster: &ClusterView) -> Value {
    cluster.last_change.as_ref().map_or(Value::Null, |c| json!(c.id))
}

/// A pending change that is not ours: refuse (docs/target-apis.md §6.3: a new change would get 409).
fn concurrent(p: &PendingChange) -> StepError {
    // guards docs/target-apis.md §6.3
    let ops: Vec<String> = p.pending.iter().take(5).map(|o| o.describe()).collect();
    StepError::refused(
        errors::CONCURRENT_CHANGE,
        format!(
            "another cluster change (id {}, {}) is pending: {ops:?}; wait for it or resolve it first",
            p.id, p.status
        ),
    )
}

/// The lost region's gateway must not answer: if it does, the region is not gone (maybe only
/// partitioned from the survivor) and force-removing its brokers risks split brain. Only no
/// answer (unreachable, timeout, 5xx) counts as silent: a 401/403/404/409 or an unparseable
/// body is an answer from something still running there.
///
/// Some regions answer although the cluster is gone (an ingress default backend answering 404).
/// The check stays; a person who confirmed the loss may accept exactly the observed HTTP answer
/// with the start variable `lostRegionOverride = {"acceptAnswer": "HTTP 404", "reason": ".."}`.
/// The acceptance is journaled and shown in the plan. A management API that lists brokers is
/// never overridable. Returns the evidence (`lostRegionCheck`).
async fn lost_region_silent(env: &StepEnv<'_>, lost: u8) -> Result<Value, StepError> {
    // guards docs/target-apis.md §6.1: force-remove only when the lost region is confirmed gone
    let answer = match env.api.cluster(lost).await {
        Ok(view) => {
            let evidence = json!({"silent": false, "answer": "cluster view", "brokersListed": view.brokers.len(), "overridable": false});
            return Err(StepError::refused(
                errors::SPLIT_BRAIN_RISK,
                format!(
                    "the management API of lost region {lost} still answers ({} brokers listed): the region is not gone; fence it before removing its brokers",
                    view.brokers.len()
                ),
            )
            .with_var("lostRegionCheck", evidence));
        }
        Err(e) if e.kind == ApiErrorKind::Transient => {
            return Ok(json!({"silent": true, "answer": Value::Null, "detail": e.message}));
        }
        Err(e) => e,
    };
    let observed = answer.status.map(|s| format!("HTTP {s}"));
    let shown = observed.clone().unwrap_or_else(|| "an unreadable answer".to_string());
    let over = validate::lost_region_override(&env.input.variables)?;
    if let (Some(o), Some(seen)) = (&over, &observed)
        && o.accept_answer == *seen
    {
        // recorded: the journal (audit trail), the plan (approval form) and the report
        env.journal_call(
            lost,
            "split-brain-check-override",
            &format!("GET /actuator/cluster in lost region {lost} answered {seen}"),
            "accepted",
            &o.reason,
        )?;
        return Ok(json!({
            "silent": false,
            "answer": seen,
            "detail": answer.message,
            "override": {"acceptAnswer": o.accept_answer, "reason": o.reason},
        }));
    }
    let evidence =
        json!({"silent": false, "answer": shown, "detail": answer.message, "overridable": observed.is_some()});
    let hint = match (&observed, &over) {
        (Some(seen), Some(o)) => {
            format!("; lostRegionOverride accepts {:?}, but the region answered {seen:?}", o.accept_answer)
        }
        (Some(seen), None) => format!(
            "; if you confirmed the region is gone and this answer comes from something else (e.g. an ingress default backend), start the failover with lostRegionOverride = {{\"acceptAnswer\": \"{seen}\", \"reason\": \"<who confirmed what>\"}}"
        ),
        (None, _) => String::new(),
    };
    Err(StepError::refused(
        errors::SPLIT_BRAIN_RISK,
        format!(
            "the management API of lost region {lost} still answers ({shown}): the region is not gone; fence it before removing its brokers{hint}"
        ),
    )
    .with_var("lostRegionCheck", evidence))
}

/// The configured cluster size must cover every member of the live cluster: a broker id beyond
/// it would be neither removed nor expected, so a force removal would leave dead members behind.
fn check_cluster_size(env: &StepEnv<'_>, cluster: &ClusterView) -> Result<(), StepError> {
    let n = env.target.cluster_size;
    let mut beyond: Vec<u32> = cluster.brokers.iter().map(|b| b.id).filter(|id| *id >= n).collect();
    if beyond.is_empty() {
        return Ok(());
    }
    beyond.sort_unstable();
    Err(StepError::invalid(
        "cluster_size",
        format!(
            "the cluster has members {beyond:?} but the target config says cluster_size = {n}: set cluster_size (and replication_factor, partition_count) to the cluster's real layout"
        ),
    ))
}

/// Where the safety checks' topology came from.
pub const TOPOLOGY_FROM_REST: &str = "rest-api";
pub const TOPOLOGY_FROM_MANAGEMENT: &str = "management-api";

/// The surviving region's topology for the removal safety checks: `GET /v2/topology`, or, when
/// the REST API refuses or lacks it (401/403 without working `rest_auth`, 404), the members and
/// partitions of `/actuator/cluster` (already read as `cluster`). That fallback has no partition
/// health and no broker hosts: the "lost broker still healthy" and namespace checks cannot run,
/// so the plan says so (`topologySource`, `topologyNote`) and the approver decides with that
/// knowledge. Transient REST errors are retried, not replaced.
async fn safety_topology(
    env: &StepEnv<'_>,
    region: u8,
    cluster: &ClusterView,
) -> Result<(TopologyView, &'static str, Option<String>), StepError> {
    match env.api.topology(region).await {
        Ok(t) => Ok((t, TOPOLOGY_FROM_REST, None)),
        Err(e) if matches!(e.kind, ApiErrorKind::Rejected | ApiErrorKind::NotFound) => {
            let note = format!(
                "REST /v2/topology of region {region} is unavailable ({}{}); the topology comes from the \
                 management API /actuator/cluster, which shows no partition health and no broker hosts: \
                 the lost brokers' health and the namespace cross-check were not verified, only that the \
                 lost region's management API is silent",
                e.status.map(|s| format!("HTTP {s}: ")).unwrap_or_default(),
                e.message
            );
            tracing::warn!(region, "{note}");
            Ok((topology_from_cluster(cluster), TOPOLOGY_FROM_MANAGEMENT, Some(note)))
        }
        Err(e) => Err(e.into()),
    }
}

/// A topology view built from `/actuator/cluster`: members and their partitions, role and
/// health `unknown`, no hosts.
pub fn topology_from_cluster(cluster: &ClusterView) -> TopologyView {
    let mut replicas: std::collections::BTreeMap<u32, u32> = std::collections::BTreeMap::new();
    for b in &cluster.brokers {
        for p in &b.partitions {
            *replicas.entry(p.id).or_default() += 1;
        }
    }
    TopologyView {
        brokers: cluster
            .brokers
            .iter()
            .map(|b| TopologyBroker {
                node_id: b.id,
                host: String::new(),
                // the management API does not say which version a broker runs
                version: String::new(),
                partitions: b
                    .partitions
                    .iter()
                    .map(|p| TopologyPartition {
                        partition_id: p.id,
                        role: Role::from_wire("unknown"),
                        health: Health::from_wire("unknown"),
                    })
                    .collect(),
            })
            .collect(),
        cluster_size: cluster.brokers.len() as u32,
        partitions_count: replicas.len() as u32,
        replication_factor: replicas.values().copied().max().unwrap_or(0),
    }
}

/// `c8dr.assess-failover`: topology of the surviving region, lost brokers by parity, dry run.
pub async fn assess_failover(env: &StepEnv<'_>, input: Failover) -> StepResult {
    let (surviving, lost) = (input.surviving.index(), input.lost.index());
    let n = env.target.cluster_size;
    let cluster = match env.api.cluster(surviving).await {
        Ok(c) => c,
        Err(e) if e.is_transient() && e.status.is_none() => return Err(surviving_silent(env, surviving, lost, e).await),
        Err(e) => return Err(e.into()),
    };
    check_cluster_size(env, &cluster)?;
    let (topology, topology_source, topology_note) = safety_topology(env, surviving, &cluster).await?;
    let to_remove = present(&cluster, &brokers_of(lost, n));
    let expected = plan::after_failover(env.target, surviving);
    let mut planned = Vec::new();
    let mut lost_check = Value::Null;
    let already;
    match &cluster.pending_change {
        Some(p) if is_our_removal(p, &brokers_of(lost, n)) => {
            already = true; // our own removal is under way; remove-brokers adopts it
        }
        Some(p) => return Err(concurrent(p)),
        None if to_remove.is_empty() => {
            already = true;
            regions::check_removal(env.target, &topology, surviving, &[])?;
        }
        None => {
            already = false;
            regions::check_removal(env.target, &topology, surviving, &to_remove)?;
            lost_check = lost_region_silent(env, lost).await?;
            let dry = env.api.dry_run_remove(surviving, to_remove.clone()).await?;
            planned = dry.planned_changes;
        }
    }
    let mut plan = json!({
        "survivingRegion": surviving,
        "lostRegion": lost,
        "brokersToRemove": to_remove,
        "survivingBrokers": brokers_of(surviving, n),
        "currentClusterSize": cluster.brokers.len(),
        "expectedClusterSize": expected.cluster_size,
        "expectedReplicationFactor": expected.replication_factor,
        "plannedOperations": planned.len(),
        "plannedChanges": planned.iter().take(20).map(|o| o.describe()).collect::<Vec<_>>(),
        "alreadyFailedOver": already,
        "topologySource": topology_source,
        "lostRegionCheck": lost_check,
    });
    if let Some(note) = topology_note {
        plan["topologyNote"] = json!(note);
    }
    Ok(Done::complete(vars([("plan", plan)]), already))
}

/// The region given as surviving does not answer. When the region given as lost answers with
/// brokers, the variables are most likely swapped: a person must start again with the right
/// `lostRegion` (PRECONDITION_FAILED, nothing changed). Otherwise the surviving region is only
/// unreachable for now: a retry, saying which region and API.
async fn surviving_silent(env: &StepEnv<'_>, surviving: u8, lost: u8, e: crate::procedure::api::ApiError) -> StepError {
    match env.api.cluster(lost).await {
        Ok(c) if !c.brokers.is_empty() => StepError::refused(
            errors::PRECONDITION_FAILED,
            format!(
                "region {surviving}, given as the surviving region, does not answer ({}), while region {lost}, given as lost, answers with brokers {:?}: is lostRegion right? If region {surviving} is the one that is down, start the failover again with lostRegion = {surviving}; nothing was changed",
                e.message,
                c.brokers.iter().map(|b| b.id).collect::<Vec<_>>()
            ),
        ),
        _ => StepError::retry(format!(
            "target unavailable: the management API of region {surviving} (the surviving region) does not answer: {}; check regions[{surviving}].management_url and that the region runs",
            e.message
        )),
    }
}

/// `c8dr.remove-brokers`: force-remove the lost region's brokers -> `changeId`.
pub async fn remove_brokers(env: &StepEnv<'_>, input: Failover) -> StepResult {
    let (surviving, lost) = (input.surviving.index(), input.lost.index());
    let lost_ids = brokers_of(lost, env.target.cluster_size);
    let cluster = env.api.cluster(surviving).await?;
    // guards docs/target-apis.md §6.2: observe first; re-running force-remove after success fails
    if let Some(p) = &cluster.pending_change {
        if is_our_removal(p, &lost_ids) {
            return Ok(Done::already_done(vars([("changeId", json!(p.id))])));
        }
        return Err(concurrent(p));
    }
    check_cluster_size(env, &cluster)?;
    let to_remove = present(&cluster, &lost_ids);
    if to_remove.is_empty() {
        return Ok(Done::already_done(vars([("changeId", last_change_id(&cluster))])));
    }
    // guards docs/target-apis.md §6.1: cross-check ids against the live topology before forcing
    let (topology, _, _) = safety_topology(env, surviving, &cluster).await?;
    regions::check_removal(env.target, &topology, surviving, &to_remove)?;
    let lost_check = lost_region_silent(env, lost).await?;
    match env.mutate(surviving, Mutation::ForceRemoveBrokers { ids: to_remove }).await?? {
        MutationResult::Change(c) => {
            Ok(Done::done(vars([("changeId", json!(c.change_id)), ("lostRegionCheck", lost_check)])))
        }
        other => Err(StepError::retry(format!("unexpected answer to the removal: {}", other.describe()))),
    }
}

/// Refuses (PRECONDITION_FAILED, routed to a person by the step's catch-all) when the brokers
/// of the two regions report different versions, or a recreated broker reports none.
fn check_versions(
    topology: &super::api::TopologyView,
    surviving: u8,
    recreated: u8,
    cluster_size: u32,
) -> Result<(), StepError> {
    let versions = |region: u8| -> std::collections::BTreeMap<String, Vec<u32>> {
        let ids = brokers_of(region, cluster_size);
        let mut m: std::collections::BTreeMap<String, Vec<u32>> = Default::default();
        for b in topology.brokers.iter().filter(|b| ids.contains(&b.node_id)) {
            m.entry(b.version.clone()).or_default().push(b.node_id);
        }
        m
    };
    let (s, r) = (versions(surviving), versions(recreated));
    let known = |m: &std::collections::BTreeMap<String, Vec<u32>>| m.keys().all(|v| !v.is_empty());
    let same = s.len() == 1 && r.len() == 1 && s.keys().next() == r.keys().next() && known(&s);
    if same {
        return Ok(());
    }
    let show = |m: &std::collections::BTreeMap<String, Vec<u32>>| {
        m.iter()
            .map(|(v, ids)| format!("{} on brokers {ids:?}", if v.is_empty() { "unknown version" } else { v }))
            .collect::<Vec<_>>()
            .join(", ")
    };
    Err(StepError::refused(
        errors::PRECONDITION_FAILED,
        format!(
            "broker versions differ: surviving region {surviving} runs {}, recreated region {recreated} runs {}: deploy the recreated region with the surviving region's chart version and values (helm.chart_version) before adding its brokers",
            show(&s),
            show(&r)
        ),
    )
    .with_var("brokerVersions", json!({"surviving": s, "recreated": r})))
}

/// `c8dr.add-brokers`: add the recreated region's brokers with the original replication factor.
pub async fn add_brokers(env: &StepEnv<'_>, input: Failback) -> StepResult {
    let (surviving, recreated) = (input.surviving.index(), input.recreated.index());
    let ids = brokers_of(recreated, env.target.cluster_size);
    let cluster = env.api.cluster(surviving).await?;
    if let Some(p) = &cluster.pending_change {
        if is_our_addition(p, &ids) {
            return Ok(Done::already_done(vars([("changeId", json!(p.id))])));
        }
        return Err(concurrent(p));
    }
    let missing: Vec<u32> = ids.iter().copied().filter(|id| !cluster.brokers.iter().any(|b| b.id == *id)).collect();
    if missing.is_empty() {
        return Ok(Done::already_done(vars([("changeId", last_change_id(&cluster))])));
    }
    // guards docs/target-apis.md §6.7: only after the brokers run, the exporter is enabled and exporting resumed
    let topology = env.api.topology(surviving).await?;
    let invisible: Vec<u32> =
        missing.iter().copied().filter(|id| !topology.brokers.iter().any(|b| b.node_id == *id)).collect();
    if !invisible.is_empty() {
        return Err(StepError::refused(
            errors::PRECONDITION_FAILED,
            format!(
                "brokers {invisible:?} of the recreated region are not visible in the topology yet: deploy the region and await them first"
            ),
        ));
    }
    // the recreated region must run the surviving region's Camunda version: re-adding brokers
    // of another version (chart or image drift in the recreated region's values) mixes versions
    // in one cluster
    check_versions(&topology, surviving, recreated, env.target.cluster_size)?;
    let exporter = crate::region_api::exporter_id(env.target, recreated);
    let exporters = env.api.exporters(surviving).await?;
    let status = exporters.iter().find(|e| e.exporter_id == exporter).map(|e| &e.status);
    if status != Some(&ExporterStatusKind::Enabled) {
        return Err(StepError::refused(
            errors::PRECONDITION_FAILED,
            format!(
                "exporter {exporter} is {} (expected ENABLED): enable it with initializeFrom before adding brokers",
                status.map_or("absent", ExporterStatusKind::as_str)
            ),
        ));
    }
    // seed failback step 5: on an 8.7-migrated installation (Optimize) the legacy pair too
    let pairs = super::exporters::failback_pairs(env.target, &exporters, surviving, recreated);
    if let Some((legacy, _)) = pairs.get(1) {
        let status = exporters.iter().find(|e| &e.exporter_id == legacy).map(|e| &e.status);
        if status != Some(&ExporterStatusKind::Enabled) {
            return Err(StepError::refused(
                errors::PRECONDITION_FAILED,
                format!(
                    "legacy exporter {legacy} is {} while the surviving region's is ENABLED: enable it with initializeFrom before adding brokers",
                    status.map_or("absent", ExporterStatusKind::as_str)
                ),
            ));
        }
    }
    if exporting::paused_by_this_instance(env, surviving)? {
        return Err(StepError::refused(
            errors::PRECONDITION_FAILED,
            "exporting is paused by this process: resume exporting before adding brokers",
        ));
    }
    // the replication factor comes from the config: it must be the one the failover halved
    let halved = (env.target.replication_factor / 2).max(1);
    if topology.replication_factor != halved {
        return Err(StepError::invalid(
            "replication_factor",
            format!(
                "the cluster runs with replication factor {} but the target config says replication_factor = {} (halved by the failover: {halved}): set replication_factor to the cluster's original factor",
                topology.replication_factor, env.target.replication_factor
            ),
        ));
    }
    // guards docs/target-apis.md §6.6: no force on add; include the original replication factor
    let m = Mutation::AddBrokers { ids: missing, replication_factor: env.target.replication_factor };
    match env.mutate(surviving, m).await?? {
        MutationResult::Change(c) => Ok(Done::done(vars([("changeId", json!(c.change_id))]))),
        other => Err(StepError::retry(format!("unexpected answer to the addition: {}", other.describe()))),
    }
}

/// `c8dr.await-brokers-visible`: the recreated region's brokers gossip into the topology.
pub async fn await_brokers_visible(env: &StepEnv<'_>, input: Failback) -> StepResult {
    let (surviving, recreated) = (input.surviving.index(), input.recreated.index());
    let ids = brokers_of(recreated, env.target.cluster_size);
    let topology = env.api.topology(surviving).await?;
    let mut visible: Vec<u32> = topology.brokers.iter().map(|b| b.node_id).filter(|id| ids.contains(id)).collect();
    visible.sort_unstable();
    let verified = visible == ids;
    // brokers of the recreated region stuck Running-not-Ready (camunda/camunda#55038) are shown to
    // a person; the listing is information only: an unobservable platform lists none
    let stuck = if verified {
        Vec::new()
    } else {
        match env.platform.status(env.target, recreated).await {
            Ok(s) => super::platform::stuck_brokers(env.target, recreated, &s, chrono::Utc::now()),
            Err(e) => {
                tracing::debug!(region = recreated, error = %e, "platform not observed for stuck brokers");
                Vec::new()
            }
        }
    };
    Ok(Done::done(vars([
        ("verified", json!(verified)),
        ("visibleBrokers", json!(visible)),
        ("stuckBrokers", json!(stuck)),
    ])))
}
