//! Regions and broker parity: brokers of region r are the ids with `id % 2 == r`, and the
//! cross-check of a planned removal against the live topology (docs/target-apis.md §6.1).
use super::api::{Health, TopologyView};
use super::{StepError, errors};
use crate::config::TargetConfig;

pub use crate::region_api::{brokers_of_region as brokers_of, region_of_broker as region_of};

/// Problems that make removing `to_remove` unsafe (docs/target-apis.md §6.1), judged on the surviving
/// region's `/v2/topology`: a broker to remove that still shows healthy partitions (the lost
/// region may not be gone: SPLIT_BRAIN_RISK), a broker to remove whose host is in the surviving
/// namespace, or surviving brokers missing / hosted in the lost namespace (parity contradicted:
/// SURVIVING_REGION_DEGRADED).
pub fn check_removal(
    target: &TargetConfig,
    topology: &TopologyView,
    surviving: u8,
    to_remove: &[u32],
) -> Result<(), StepError> {
    // guards docs/target-apis.md §6.1: never remove a broker of the surviving region
    if let Some(id) = to_remove.iter().find(|id| region_of(**id) == surviving) {
        return Err(StepError::refused(
            errors::SPLIT_BRAIN_RISK,
            format!("refusing to remove broker {id}: it belongs to the surviving region {surviving} by parity"),
        ));
    }
    let raw = |r: u8| target.regions.get(usize::from(r)).map(|c| c.namespace.as_str()).filter(|n| !n.is_empty());
    // the same namespace name in both regions (two Kubernetes clusters): hosts tell nothing
    let distinct = raw(0) != raw(1);
    let ns = |r: u8| raw(r).filter(|_| distinct);
    // a namespace is one DNS label of the host (`camunda-zeebe-0.camunda-zeebe.<ns>.svc...`),
    // never a substring: namespace `camunda` is a substring of every Zeebe host name
    let in_ns = |host: &str, r: u8| ns(r).is_some_and(|n| host.split('.').any(|label| label == n));
    for b in &topology.brokers {
        if to_remove.contains(&b.node_id) {
            if in_ns(&b.host, surviving) {
                return Err(StepError::refused(
                    errors::SURVIVING_REGION_DEGRADED,
                    format!(
                        "broker {} (host {}) is in the surviving region's namespace but has the lost region's parity: node ids contradict the region layout",
                        b.node_id, b.host
                    ),
                ));
            }
            if b.partitions.iter().any(|p| p.health == Health::Healthy) {
                return Err(StepError::refused(
                    errors::SPLIT_BRAIN_RISK,
                    format!(
                        "broker {} of the lost region still reports healthy partitions: the region may not be gone; fence it before removing",
                        b.node_id
                    ),
                ));
            }
        }
    }
    let expected = brokers_of(surviving, target.cluster_size);
    let mut missing = Vec::new();
    for id in &expected {
        match topology.brokers.iter().find(|b| b.node_id == *id) {
            None => missing.push(*id),
            Some(b) if b.partitions.is_empty() => missing.push(*id),
            Some(b) if in_ns(&b.host, 1 - surviving) => {
                return Err(StepError::refused(
                    errors::SURVIVING_REGION_DEGRADED,
                    format!(
                        "broker {} (host {}) has the surviving region's parity but runs in the lost region's namespace",
                        b.node_id, b.host
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    if !missing.is_empty() {
        return Err(StepError::refused(
            errors::SURVIVING_REGION_DEGRADED,
            format!(
                "surviving region {surviving} is missing brokers {missing:?} (expected {expected:?} with partitions)"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
pub(crate) mod tests_support {
    use crate::config::TargetConfig;

    pub(crate) fn target() -> TargetConfig {
        toml::from_str(
            r#"
            [[regions]]
            name = "a"
            namespace = "camunda-a"
            management_url = "http://x"
            rest_url = "http://x"
            elasticsearch_url = "http://x"
            [[regions]]
            name = "b"
            namespace = "camunda-b"
            management_url = "http://y"
            rest_url = "http://y"
            elasticsearch_url = "http://y"
            "#,
        )
        .unwrap()
    }
}

#[cfg(test)]
mod tests {
    use super::tests_support::target;
    use super::*;
    use crate::procedure::api::{Health, Role, TopologyBroker, TopologyPartition};

    #[test]
    fn parity() {
        assert_eq!(brokers_of(0, 8), vec![0, 2, 4, 6]);
        assert_eq!(brokers_of(1, 8), vec![1, 3, 5, 7]);
        assert_eq!(region_of(7), 1);
    }

    fn broker(id: u32, ns: &str, health: &str) -> TopologyBroker {
        TopologyBroker {
            node_id: id,
            host: format!("camunda-zeebe-{}.camunda-zeebe.{ns}", id / 2),
            partitions: vec![TopologyPartition {
                partition_id: 1,
                role: Role::Follower,
                health: Health::from_wire(health),
            }],
            version: "8.8.0".into(),
        }
    }

    fn topo(brokers: Vec<TopologyBroker>) -> TopologyView {
        TopologyView { brokers, cluster_size: 8, partitions_count: 8, replication_factor: 4 }
    }

    fn code(r: Result<(), StepError>) -> &'static str {
        match r {
            Err(StepError::Refused { code, .. }) => code,
            Ok(()) => "ok",
            Err(o) => panic!("{o:?}"),
        }
    }

    #[test]
    fn removal_cross_checks_topology() {
        let t = target();
        let healthy_a: Vec<_> = [0, 2, 4, 6].iter().map(|i| broker(*i, "camunda-a", "healthy")).collect();
        assert_eq!(code(check_removal(&t, &topo(healthy_a.clone()), 0, &[1, 3, 5, 7])), "ok");
        // never remove surviving brokers
        assert_eq!(code(check_removal(&t, &topo(healthy_a.clone()), 0, &[0, 2])), "SPLIT_BRAIN_RISK");
        // the lost region's brokers still healthy
        let mut alive = healthy_a.clone();
        alive.push(broker(3, "camunda-b", "healthy"));
        assert_eq!(code(check_removal(&t, &topo(alive), 0, &[1, 3, 5, 7])), "SPLIT_BRAIN_RISK");
        // dead lost brokers are fine
        let mut dead = healthy_a.clone();
        dead.push(broker(3, "camunda-b", "dead"));
        assert_eq!(code(check_removal(&t, &topo(dead), 0, &[1, 3, 5, 7])), "ok");
        // a surviving broker missing
        assert_eq!(
            code(check_removal(&t, &topo(healthy_a[..3].to_vec()), 0, &[1, 3, 5, 7])),
            "SURVIVING_REGION_DEGRADED"
        );
        // parity contradicted by hosts
        let mut swapped = healthy_a.clone();
        swapped[0] = broker(0, "camunda-b", "healthy");
        assert_eq!(code(check_removal(&t, &topo(swapped), 0, &[1, 3, 5, 7])), "SURVIVING_REGION_DEGRADED");
        let mut odd_in_a = healthy_a;
        odd_in_a.push(broker(5, "camunda-a", "dead"));
        assert_eq!(code(check_removal(&t, &topo(odd_in_a), 0, &[1, 3, 5, 7])), "SURVIVING_REGION_DEGRADED");
    }

    /// Two Kubernetes clusters often use the same namespace name: hosts cannot tell the regions
    /// apart then, and the namespace cross-check must not block every failover.
    #[test]
    fn same_namespace_in_both_regions_skips_the_host_check() {
        let mut t = target();
        t.regions[0].namespace = "camunda".into();
        t.regions[1].namespace = "camunda".into();
        let mut brokers: Vec<_> = [0, 2, 4, 6].iter().map(|i| broker(*i, "camunda", "healthy")).collect();
        brokers.push(broker(3, "camunda", "dead"));
        assert_eq!(code(check_removal(&t, &topo(brokers), 0, &[1, 3, 5, 7])), "ok");
    }

    /// A namespace is a DNS label of the host, not a substring: namespace `camunda` is a substring
    /// of every Zeebe host (`camunda-zeebe-0.camunda-zeebe.<ns>`) and of `camunda-paris`.
    #[test]
    fn namespaces_match_host_labels_not_substrings() {
        let mut t = target();
        t.regions[0].namespace = "camunda".into();
        t.regions[1].namespace = "camunda-paris".into();
        let fqdn = |id: u32, ns: &str, health: &str| {
            let mut b = broker(id, ns, health);
            b.host.push_str(".svc.cluster.local");
            b
        };
        let mut london: Vec<_> = [0, 2, 4, 6].iter().map(|i| fqdn(*i, "camunda", "healthy")).collect();
        london.push(fqdn(3, "camunda-paris", "dead"));
        assert_eq!(code(check_removal(&t, &topo(london.clone()), 0, &[1, 3, 5, 7])), "ok");
        // a contradiction is still found
        london.push(fqdn(5, "camunda", "dead"));
        assert_eq!(code(check_removal(&t, &topo(london), 0, &[1, 3, 5, 7])), "SURVIVING_REGION_DEGRADED");
        // and the other way round: Paris survives
        let mut paris: Vec<_> = [1, 3, 5, 7].iter().map(|i| fqdn(*i, "camunda-paris", "healthy")).collect();
        paris.push(fqdn(2, "camunda", "dead"));
        assert_eq!(code(check_removal(&t, &topo(paris), 1, &[0, 2, 4, 6])), "ok");
    }
}
