//! Checks used in verification loops: verify-topology and verify-exporters. They always
//! complete with `verified: bool` (the process waits and loops).
use super::api::{ExporterStatus, ExporterStatusKind, HealthStatus};
use super::exporters::{self, EnableStep};
use super::inputs::{ExportersExpect, Header, OptionalSnapshotVar, Region, Surviving, TopologyExpect};
use super::{Done, StepEnv, StepResult, plan, vars};
use serde_json::{Value, json};

pub async fn verify_topology(
    env: &StepEnv<'_>,
    (Header(expect), input): (Header<TopologyExpect>, Surviving),
) -> StepResult {
    let surviving = input.surviving.index();
    let expected = match expect {
        TopologyExpect::Degraded => plan::after_failover(env.target, surviving),
        TopologyExpect::Full => plan::after_failback(env.target),
    };
    let t = env.api.topology(surviving).await?;
    let problems = expected.problems(&t);
    let brokers: Vec<_> = t
        .brokers
        .iter()
        .map(|b| {
            json!({
                "nodeId": b.node_id,
                "host": b.host,
                "partitions": b.partitions.iter().map(|p| json!({"partitionId": p.partition_id, "role": p.role, "health": p.health})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Ok(Done::done(vars([
        ("verified", json!(problems.is_empty())),
        ("topologyProblems", json!(problems)),
        (
            "topology",
            json!({"brokers": brokers, "clusterSize": t.cluster_size, "replicationFactor": t.replication_factor, "partitionsCount": t.partitions_count}),
        ),
    ])))
}

/// Problems with the exporter list for `expect` (`failover`: surviving ENABLED, the other
/// region's (and its legacy one, when present) DISABLED; `full`: both ENABLED, and both legacy
/// exporters when the surviving region's legacy exporter is enabled).
pub fn exporter_problems(
    list: &[ExporterStatus],
    target: &crate::config::TargetConfig,
    surviving: u8,
    other: u8,
    expect_full: bool,
) -> Vec<String> {
    let status = |id: &str| list.iter().find(|e| e.exporter_id == id).map(|e| e.status.clone());
    let mut problems = Vec::new();
    // an unknown status never equals the wanted one: it is a problem, never "verified"
    let mut want = |id: String, wanted: ExporterStatusKind, required: bool| match status(&id) {
        Some(s) if s == wanted => {}
        Some(s) => problems.push(format!("exporter {id} is {s}, expected {wanted}")),
        None if required => problems.push(format!("exporter {id} is absent, expected {wanted}")),
        None => {}
    };
    use crate::region_api::{exporter_id, legacy_exporter_id};
    want(exporter_id(target, surviving), ExporterStatusKind::Enabled, true);
    if expect_full {
        want(exporter_id(target, other), ExporterStatusKind::Enabled, true);
        // seed failback step 5: an 8.7-migrated installation (Optimize) keeps its legacy pair
        match status(&legacy_exporter_id(target, surviving)) {
            Some(ExporterStatusKind::Enabled) => {
                want(legacy_exporter_id(target, other), ExporterStatusKind::Enabled, true);
            }
            // unknown: c8dr cannot tell whether the legacy pair must be enabled
            Some(ExporterStatusKind::Unknown(s)) => problems.push(format!(
                "exporter {} is {s}, a status c8dr does not know: cannot tell whether the legacy exporter {} must be enabled",
                legacy_exporter_id(target, surviving),
                legacy_exporter_id(target, other)
            )),
            _ => {}
        }
    } else {
        // guards docs/target-apis.md §6.11: CONFIG_NOT_FOUND or ENABLED after a restart is not disabled
        want(exporter_id(target, other), ExporterStatusKind::Disabled, true);
        want(legacy_exporter_id(target, other), ExporterStatusKind::Disabled, false);
    }
    problems
}

pub async fn verify_exporters(
    env: &StepEnv<'_>,
    (Header(expect), (at, snapshot)): (Header<ExportersExpect>, (Surviving, OptionalSnapshotVar)),
) -> StepResult {
    let full = expect == ExportersExpect::Full;
    let surviving = at.surviving.index();
    let other = at.other().index();
    // during a failback, once the main exporter of the recreated region is enabled (by this
    // instance, after the restore), the legacy one follows here: one change at a time, the
    // process loops on this check until both pairs are enabled
    let mut issued = Value::Null;
    if full && let Some(recreated) = at.recreated.map(Region::index) {
        let list = env.api.exporters(surviving).await?;
        let main = crate::region_api::exporter_id(env.target, recreated);
        let main_enabled = list.iter().any(|e| e.exporter_id == main && e.status == ExporterStatusKind::Enabled);
        if main_enabled && exporters::failback_pairs(env.target, &list, surviving, recreated).len() > 1 {
            let snapshot = snapshot.snapshot_name.map(|s| s.0);
            if let EnableStep::Issued { exporter_id, change_id } =
                exporters::enable_next(env, surviving, recreated, snapshot.as_deref()).await?
            {
                issued = json!({"exporterId": exporter_id, "changeId": change_id});
            }
        }
    }
    let list = env.api.exporters(surviving).await?;
    let mut problems = exporter_problems(&list, env.target, surviving, other, full);
    // guards docs/target-apis.md §6.10: after disabling, the surviving exporter must still be able to
    // write: its Elasticsearch answers and is not red; its Camunda document count is reported
    // so successive checks (and the operator) see new data arriving
    let health = env.api.health(surviving).await?;
    match &health.status {
        HealthStatus::Green | HealthStatus::Yellow => {}
        HealthStatus::Red => problems.push(format!(
            "Elasticsearch of the surviving region {surviving} is red: the surviving exporter cannot write"
        )),
        // unknown is never "can write"
        HealthStatus::Unknown(s) => problems.push(format!(
            "Elasticsearch of the surviving region {surviving} reports health {s:?}, which c8dr does not know: the surviving exporter may not be able to write"
        )),
    }
    let docs: u64 = env
        .api
        .indices(surviving)
        .await?
        .iter()
        .filter(|i| super::snapshot::is_camunda_index(&i.name))
        .filter_map(|i| i.docs)
        .sum();
    let exporters: Vec<_> = list.iter().map(|e| json!({"exporterId": e.exporter_id, "status": e.status})).collect();
    if !issued.is_null() {
        problems.push(format!("enabling exporter {} (change {})", issued["exporterId"], issued["changeId"]));
    }
    Ok(Done::done(vars([
        ("verified", json!(problems.is_empty())),
        ("exporterEnabled", issued),
        ("exporters", json!(exporters)),
        ("exporterProblems", json!(problems)),
        ("survivingDocuments", json!(docs)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: &str, s: &str) -> ExporterStatus {
        ExporterStatus { exporter_id: id.into(), status: ExporterStatusKind::from_wire(s) }
    }

    #[test]
    fn exporter_expectations() {
        let target = crate::procedure::regions::tests_support::target();
        let p = |l: &[ExporterStatus], full| exporter_problems(l, &target, 0, 1, full);
        assert!(p(&[ex("camundaregion0", "ENABLED"), ex("camundaregion1", "DISABLED")], false).is_empty());
        assert_eq!(p(&[ex("camundaregion0", "ENABLED"), ex("camundaregion1", "CONFIG_NOT_FOUND")], false).len(), 1);
        assert_eq!(
            p(
                &[
                    ex("camundaregion0", "ENABLED"),
                    ex("camundaregion1", "DISABLED"),
                    ex("elasticsearchregion1", "ENABLED")
                ],
                false
            )
            .len(),
            1
        );
        assert!(p(&[ex("camundaregion0", "ENABLED"), ex("camundaregion1", "ENABLED")], true).is_empty());
        assert_eq!(p(&[ex("camundaregion0", "ENABLED")], true).len(), 1);
        // full: the legacy pair counts when the surviving legacy exporter is enabled
        let main = [ex("camundaregion0", "ENABLED"), ex("camundaregion1", "ENABLED")];
        let with = |l1: &str| {
            let mut v = main.to_vec();
            v.extend([ex("elasticsearchregion0", "ENABLED"), ex("elasticsearchregion1", l1)]);
            v
        };
        assert_eq!(p(&with("DISABLED"), true), vec!["exporter elasticsearchregion1 is DISABLED, expected ENABLED"]);
        assert!(p(&with("ENABLED"), true).is_empty());
        let unused =
            [main.to_vec(), vec![ex("elasticsearchregion0", "DISABLED"), ex("elasticsearchregion1", "DISABLED")]]
                .concat();
        assert!(p(&unused, true).is_empty(), "legacy exporters not in use");
    }

    /// Issue 9.4: a status this version does not know is never the wanted one.
    #[test]
    fn unknown_exporter_statuses_are_problems() {
        let target = crate::procedure::regions::tests_support::target();
        let p = |l: &[ExporterStatus], full| exporter_problems(l, &target, 0, 1, full);
        // failover: the lost region's exporter in an unknown state is not DISABLED
        assert_eq!(
            p(&[ex("camundaregion0", "ENABLED"), ex("camundaregion1", "DISABLED_SOMEHOW")], false),
            vec!["exporter camundaregion1 is DISABLED_SOMEHOW, expected DISABLED"]
        );
        // the surviving exporter in an unknown state is not ENABLED
        assert_eq!(p(&[ex("camundaregion0", "RUNNING"), ex("camundaregion1", "DISABLED")], false).len(), 1);
        // full: an unknown surviving legacy exporter cannot tell whether the legacy pair is in use
        let l = [ex("camundaregion0", "ENABLED"), ex("camundaregion1", "ENABLED"), ex("elasticsearchregion0", "NEW")];
        let problems = p(&l, true);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("elasticsearchregion0 is NEW"), "{problems:?}");
    }
}
