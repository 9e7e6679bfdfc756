//! Checks used in verification loops: verify-topology and verify-exporters. They always
//! complete with `verified: bool` (the process waits and loops).
use super::api::ExporterStatus;
use super::{StepEnv, StepOutcome, StepResult, plan, regions, vars};
use serde_json::json;

pub async fn verify_topology(env: &StepEnv<'_>) -> StepResult {
    let expect = env.header("expect").unwrap_or("");
    let surviving = regions::surviving(env)?;
    let expected = match expect {
        "degraded" => plan::after_failover(env.target, surviving),
        "full" => plan::after_failback(env.target),
        other => {
            return Err(StepOutcome::invalid(
                "expect",
                format!("task header `expect` must be degraded or full, got {other:?}: fix the BPMN"),
            ));
        }
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
    Ok(StepOutcome::done(vars([
        ("verified", json!(problems.is_empty())),
        ("topologyProblems", json!(problems)),
        (
            "topology",
            json!({"brokers": brokers, "clusterSize": t.cluster_size, "replicationFactor": t.replication_factor, "partitionsCount": t.partitions_count}),
        ),
    ])))
}

/// Problems with the exporter list for `expect` (`failover`: surviving ENABLED, the other
/// region's (and its legacy one, when present) DISABLED; `full`: both ENABLED).
pub fn exporter_problems(
    list: &[ExporterStatus],
    prefix: &str,
    legacy_prefix: &str,
    surviving: u8,
    other: u8,
    expect_full: bool,
) -> Vec<String> {
    let status = |id: &str| list.iter().find(|e| e.exporter_id == id).map(|e| e.status.clone());
    let mut problems = Vec::new();
    let mut want = |id: String, wanted: &str, required: bool| match status(&id) {
        Some(s) if s == wanted => {}
        Some(s) => problems.push(format!("exporter {id} is {s}, expected {wanted}")),
        None if required => problems.push(format!("exporter {id} is absent, expected {wanted}")),
        None => {}
    };
    want(format!("{prefix}{surviving}"), "ENABLED", true);
    if expect_full {
        want(format!("{prefix}{other}"), "ENABLED", true);
    } else {
        // guards api-contract §6.11: CONFIG_NOT_FOUND or ENABLED after a restart is not disabled
        want(format!("{prefix}{other}"), "DISABLED", true);
        want(format!("{legacy_prefix}{other}"), "DISABLED", false);
    }
    problems
}

pub async fn verify_exporters(env: &StepEnv<'_>) -> StepResult {
    let expect = env.header("expect").unwrap_or("");
    let full = match expect {
        "failover" => false,
        "full" => true,
        other => {
            return Err(StepOutcome::invalid(
                "expect",
                format!("task header `expect` must be failover or full, got {other:?}: fix the BPMN"),
            ));
        }
    };
    let surviving = regions::surviving(env)?;
    let other = regions::other(env)?;
    let list = env.api.exporters(surviving).await?;
    let mut problems = exporter_problems(
        &list,
        &env.target.exporter_prefix,
        &env.target.legacy_exporter_prefix,
        surviving,
        other,
        full,
    );
    // guards api-contract §6.10: after disabling, the surviving exporter must still be able to
    // write: its Elasticsearch answers and is not red; its Camunda document count is reported
    // so successive checks (and the operator) see new data arriving
    let health = env.api.health(surviving).await?;
    if health.status == "red" {
        problems.push(format!(
            "Elasticsearch of the surviving region {surviving} is red: the surviving exporter cannot write"
        ));
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
    Ok(StepOutcome::done(vars([
        ("verified", json!(problems.is_empty())),
        ("exporters", json!(exporters)),
        ("exporterProblems", json!(problems)),
        ("survivingDocuments", json!(docs)),
    ])))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ex(id: &str, s: &str) -> ExporterStatus {
        ExporterStatus { exporter_id: id.into(), status: s.into() }
    }

    #[test]
    fn exporter_expectations() {
        let p = |l: &[ExporterStatus], full| exporter_problems(l, "camundaregion", "elasticsearchregion", 0, 1, full);
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
    }
}
