//! Expected topologies: after failover the surviving half (N/2 brokers, RF/2), after failback
//! the full cluster (N, RF). And the check of a live `/v2/topology` against them
//! (docs/target-apis.md §6.16: count only brokers with partitions; one healthy leader per partition).
use super::api::{Health, Role, TopologyView};
use super::regions::brokers_of;
use crate::config::TargetConfig;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedTopology {
    pub brokers: Vec<u32>,
    pub cluster_size: u32,
    pub replication_factor: u32,
    pub partition_count: u32,
}

/// After failover: only the surviving region's brokers, replication factor halved.
pub fn after_failover(target: &TargetConfig, surviving: u8) -> ExpectedTopology {
    ExpectedTopology {
        brokers: brokers_of(surviving, target.cluster_size),
        cluster_size: target.cluster_size / 2,
        replication_factor: (target.replication_factor / 2).max(1),
        partition_count: target.partition_count,
    }
}

/// After failback: the full configured cluster.
pub fn after_failback(target: &TargetConfig) -> ExpectedTopology {
    ExpectedTopology {
        brokers: (0..target.cluster_size).collect(),
        cluster_size: target.cluster_size,
        replication_factor: target.replication_factor,
        partition_count: target.partition_count,
    }
}

impl ExpectedTopology {
    /// Human-readable problems; empty when the topology matches.
    pub fn problems(&self, t: &TopologyView) -> Vec<String> {
        // guards docs/target-apis.md §6.16: non-member brokers (empty partitions) do not count
        let mut p = Vec::new();
        let mut members: Vec<u32> = t.brokers.iter().filter(|b| !b.partitions.is_empty()).map(|b| b.node_id).collect();
        members.sort_unstable();
        if members != self.brokers {
            p.push(format!("brokers with partitions are {members:?}, expected {:?}", self.brokers));
        }
        if t.cluster_size != self.cluster_size {
            p.push(format!("clusterSize is {}, expected {}", t.cluster_size, self.cluster_size));
        }
        if t.replication_factor != self.replication_factor {
            p.push(format!("replicationFactor is {}, expected {}", t.replication_factor, self.replication_factor));
        }
        if t.partitions_count != self.partition_count {
            p.push(format!("partitionsCount is {}, expected {}", t.partitions_count, self.partition_count));
        }
        // every partition the cluster has, not only the configured ones
        let mut pids: Vec<u32> = (1..=self.partition_count.max(t.partitions_count)).collect();
        for b in &t.brokers {
            pids.extend(b.partitions.iter().map(|x| x.partition_id));
        }
        pids.sort_unstable();
        pids.dedup();
        for pid in pids {
            let replicas: Vec<_> = t
                .brokers
                .iter()
                .flat_map(|b| b.partitions.iter().filter(|x| x.partition_id == pid).map(move |x| (b.node_id, x)))
                .collect();
            let healthy_leaders =
                replicas.iter().filter(|(_, x)| x.role == Role::Leader && x.health == Health::Healthy).count();
            if healthy_leaders != 1 {
                p.push(format!("partition {pid} has {healthy_leaders} healthy leaders, expected 1"));
            }
            if replicas.len() as u32 != self.replication_factor {
                p.push(format!(
                    "partition {pid} has {} replicas, expected {}",
                    replicas.len(),
                    self.replication_factor
                ));
            }
            let unhealthy: Vec<u32> =
                replicas.iter().filter(|(_, x)| x.health != Health::Healthy).map(|(b, _)| *b).collect();
            if !unhealthy.is_empty() {
                p.push(format!("partition {pid} is not healthy on brokers {unhealthy:?}"));
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::procedure::api::{Role, TopologyBroker, TopologyPartition};

    fn target() -> TargetConfig {
        let mut t = crate::procedure::regions::tests_support::target();
        t.cluster_size = 4;
        t.partition_count = 2;
        t.replication_factor = 2;
        t
    }

    fn topo(brokers: &[u32], partitions: u32, rf: u32, size: u32) -> TopologyView {
        let mut out: Vec<TopologyBroker> = brokers
            .iter()
            .map(|id| TopologyBroker { node_id: *id, host: String::new(), partitions: vec![], version: String::new() })
            .collect();
        for pid in 1..=partitions {
            for r in 0..rf as usize {
                let b = &mut out[(pid as usize * rf as usize + r) % brokers.len()];
                b.partitions.push(TopologyPartition {
                    partition_id: pid,
                    role: if r == 0 { Role::Leader } else { Role::Follower },
                    health: Health::Healthy,
                });
            }
        }
        TopologyView { brokers: out, cluster_size: size, partitions_count: partitions, replication_factor: rf }
    }

    #[test]
    fn expectations() {
        let t = target();
        let fo = after_failover(&t, 1);
        assert_eq!(fo.brokers, vec![1, 3]);
        assert_eq!((fo.cluster_size, fo.replication_factor), (2, 1));
        let fb = after_failback(&t);
        assert_eq!(fb.brokers, vec![0, 1, 2, 3]);
        assert!(fb.problems(&topo(&[0, 1, 2, 3], 2, 2, 4)).is_empty());
        assert!(fo.problems(&topo(&[1, 3], 2, 1, 2)).is_empty());
        // gossiping non-members do not count
        let mut with_ghost = topo(&[1, 3], 2, 1, 2);
        with_ghost.brokers.push(TopologyBroker {
            node_id: 0,
            host: String::new(),
            partitions: vec![],
            version: String::new(),
        });
        assert!(fo.problems(&with_ghost).is_empty());
        assert!(!fb.problems(&with_ghost).is_empty());
        // a missing leader
        let mut no_leader = topo(&[0, 1, 2, 3], 2, 2, 4);
        for b in &mut no_leader.brokers {
            for p in &mut b.partitions {
                if p.partition_id == 2 {
                    p.role = Role::Follower;
                }
            }
        }
        let probs = fb.problems(&no_leader);
        assert!(probs.iter().any(|p| p.contains("partition 2 has 0 healthy leaders")), "{probs:?}");
    }

    /// Partitions beyond the configured partition_count are checked too: a config with fewer
    /// partitions than the cluster must not verify a topology with a leaderless partition.
    #[test]
    fn partitions_beyond_the_configured_count_are_not_ignored() {
        let t = target(); // partition_count = 2
        let fb = after_failback(&t);
        let mut three = topo(&[0, 1, 2, 3], 3, 2, 4);
        for b in &mut three.brokers {
            for p in &mut b.partitions {
                if p.partition_id == 3 {
                    p.role = Role::Follower;
                }
            }
        }
        let probs = fb.problems(&three);
        assert!(probs.iter().any(|p| p.contains("partitionsCount is 3, expected 2")), "{probs:?}");
        assert!(probs.iter().any(|p| p.contains("partition 3 has 0 healthy leaders")), "{probs:?}");
    }
}
