//! What the gateway answers, as domain types: the CLI and the worker read these, the generated
//! prost types stay inside `zeebe/` (and the rehearsal engine).
use crate::gateway_protocol as pb;

/// The gateway's view of the cluster (`Topology`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    pub gateway_version: String,
    pub cluster_size: i32,
    pub partitions_count: i32,
    pub replication_factor: i32,
    pub brokers: Vec<Broker>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Broker {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub version: String,
    pub partitions: Vec<Partition>,
}

/// One partition as a broker holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partition {
    pub partition_id: i32,
    pub role: Role,
    pub health: Health,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Leader,
    Follower,
    Inactive,
    /// A value this client does not know (a newer gateway).
    Unknown,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Health {
    Healthy,
    Unhealthy,
    Dead,
    /// A value this client does not know (a newer gateway).
    Unknown,
}

/// One `DeployResource`: its key and what it deployed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployment {
    pub key: i64,
    pub resources: Vec<Deployed>,
}

/// One deployed resource.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deployed {
    pub kind: DeployedKind,
    /// BPMN process id, form id, decision id or decision requirements id.
    pub id: String,
    pub version: i32,
    /// Process definition, form, decision or decision requirements key.
    pub key: i64,
    /// Resource name (the decision's name for a decision).
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeployedKind {
    Process,
    Form,
    Decision,
    DecisionRequirements,
    /// Deployment metadata this client does not know.
    Unknown,
}

impl DeployedKind {
    /// A short word for listings (`process`, `form`, `decision`, `drd`).
    pub fn word(self) -> &'static str {
        match self {
            DeployedKind::Process => "process",
            DeployedKind::Form => "form",
            DeployedKind::Decision => "decision",
            DeployedKind::DecisionRequirements => "drd",
            DeployedKind::Unknown => "unknown",
        }
    }
}

/// A started process instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatedInstance {
    pub process_instance_key: i64,
    pub bpmn_process_id: String,
    pub version: i32,
    pub process_definition_key: i64,
}

/// A published message: its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublishedMessage {
    pub key: i64,
}

impl From<pb::TopologyResponse> for Topology {
    fn from(t: pb::TopologyResponse) -> Self {
        Topology {
            gateway_version: t.gateway_version,
            cluster_size: t.cluster_size,
            partitions_count: t.partitions_count,
            replication_factor: t.replication_factor,
            brokers: t
                .brokers
                .into_iter()
                .map(|b| Broker {
                    node_id: b.node_id,
                    host: b.host,
                    port: b.port,
                    version: b.version,
                    partitions: b
                        .partitions
                        .into_iter()
                        .map(|p| Partition {
                            partition_id: p.partition_id,
                            role: role(p.role),
                            health: health(p.health),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

fn role(r: i32) -> Role {
    use pb::partition::PartitionBrokerRole as R;
    match R::try_from(r) {
        Ok(R::Leader) => Role::Leader,
        Ok(R::Follower) => Role::Follower,
        Ok(R::Inactive) => Role::Inactive,
        Err(_) => Role::Unknown,
    }
}

fn health(h: i32) -> Health {
    use pb::partition::PartitionBrokerHealth as H;
    match H::try_from(h) {
        Ok(H::Healthy) => Health::Healthy,
        Ok(H::Unhealthy) => Health::Unhealthy,
        Ok(H::Dead) => Health::Dead,
        Err(_) => Health::Unknown,
    }
}

impl From<pb::DeployResourceResponse> for Deployment {
    fn from(d: pb::DeployResourceResponse) -> Self {
        use pb::deployment::Metadata;
        let resources = d
            .deployments
            .into_iter()
            .map(|x| match x.metadata {
                Some(Metadata::Process(p)) => Deployed {
                    kind: DeployedKind::Process,
                    id: p.bpmn_process_id,
                    version: p.version,
                    key: p.process_definition_key,
                    name: p.resource_name,
                },
                Some(Metadata::Form(f)) => Deployed {
                    kind: DeployedKind::Form,
                    id: f.form_id,
                    version: f.version,
                    key: f.form_key,
                    name: f.resource_name,
                },
                Some(Metadata::Decision(x)) => Deployed {
                    kind: DeployedKind::Decision,
                    id: x.dmn_decision_id,
                    version: x.version,
                    key: x.decision_key,
                    name: x.dmn_decision_name,
                },
                Some(Metadata::DecisionRequirements(x)) => Deployed {
                    kind: DeployedKind::DecisionRequirements,
                    id: x.dmn_decision_requirements_id,
                    version: x.version,
                    key: x.decision_requirements_key,
                    name: x.resource_name,
                },
                None => {
                    Deployed { kind: DeployedKind::Unknown, id: String::new(), version: 0, key: 0, name: String::new() }
                }
            })
            .collect();
        Deployment { key: d.key, resources }
    }
}

impl From<pb::CreateProcessInstanceResponse> for CreatedInstance {
    fn from(c: pb::CreateProcessInstanceResponse) -> Self {
        CreatedInstance {
            process_instance_key: c.process_instance_key,
            bpmn_process_id: c.bpmn_process_id,
            version: c.version,
            process_definition_key: c.process_definition_key,
        }
    }
}

impl From<pb::PublishMessageResponse> for PublishedMessage {
    fn from(m: pb::PublishMessageResponse) -> Self {
        PublishedMessage { key: m.key }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_enum_values_of_a_newer_gateway_are_kept_as_unknown() {
        let t: Topology = pb::TopologyResponse {
            brokers: vec![pb::BrokerInfo {
                node_id: 1,
                partitions: vec![
                    pb::Partition { partition_id: 1, role: 0, health: 0 },
                    pb::Partition { partition_id: 2, role: 42, health: 42 },
                ],
                ..Default::default()
            }],
            ..Default::default()
        }
        .into();
        let p = &t.brokers[0].partitions;
        assert_eq!((p[0].role, p[0].health), (Role::Leader, Health::Healthy));
        assert_eq!((p[1].role, p[1].health), (Role::Unknown, Health::Unknown));
    }
}
