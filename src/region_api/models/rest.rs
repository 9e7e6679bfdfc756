//! Orchestration Cluster REST API models (`/v2/topology`, deployments, process instances),
//! docs/target-apis.md §3. Keys are strings in 8.8; numbers are accepted too.
use super::{key_string, open_enum, opt_key_string};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

open_enum! {
    /// Role of a broker for a partition.
    pub enum Role {
        Leader => "leader",
        Follower => "follower",
        Inactive => "inactive",
    }
}

open_enum! {
    /// Health of a partition replica.
    pub enum Health {
        Healthy => "healthy",
        Unhealthy => "unhealthy",
        Dead => "dead",
    }
}

open_enum! {
    /// State of a process instance.
    pub enum ProcessInstanceState {
        Active => "ACTIVE",
        Completed => "COMPLETED",
        Terminated => "TERMINATED",
    }
}

/// `GET /v2/topology`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestTopology {
    pub brokers: Vec<RestBroker>,
    pub cluster_size: u32,
    pub partitions_count: u32,
    pub replication_factor: u32,
    pub gateway_version: String,
    /// A string in 8.8 (`"-1"` or `""` when none was seen).
    #[serde(deserialize_with = "opt_key_string", skip_serializing_if = "Option::is_none")]
    pub last_completed_change_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<String>,
}

impl RestTopology {
    /// Brokers that hold at least one partition: real cluster members. Re-created brokers that
    /// only gossip show up with `"partitions": []` and are not counted.
    pub fn member_brokers(&self) -> impl Iterator<Item = &RestBroker> {
        self.brokers.iter().filter(|b| !b.partitions.is_empty())
    }

    /// For every partition id seen, the brokers that are its **healthy** leader.
    pub fn healthy_leaders(&self) -> BTreeMap<u32, Vec<u32>> {
        let mut map: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for broker in &self.brokers {
            for p in &broker.partitions {
                let entry = map.entry(p.partition_id).or_default();
                if p.role == Role::Leader && p.health == Health::Healthy {
                    entry.push(broker.node_id);
                }
            }
        }
        map
    }

    /// Partitions in `1..=partitions_count` that do not have exactly one healthy leader.
    pub fn partitions_without_single_healthy_leader(&self) -> Vec<u32> {
        let leaders = self.healthy_leaders();
        (1..=self.partitions_count).filter(|p| leaders.get(p).map(Vec::len) != Some(1)).collect()
    }

    /// The last completed change id as a number, when the server sent one (`-1`/`""` → `None`).
    pub fn last_completed_change(&self) -> Option<i64> {
        self.last_completed_change_id.as_deref()?.trim().parse::<i64>().ok().filter(|id| *id >= 0)
    }
}

/// One broker of `/v2/topology`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestBroker {
    pub node_id: u32,
    pub host: String,
    pub port: u16,
    pub partitions: Vec<RestPartition>,
    pub version: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RestPartition {
    pub partition_id: u32,
    pub role: Role,
    pub health: Health,
}

/// `POST /v2/deployments` (200).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentResult {
    #[serde(deserialize_with = "key_string")]
    pub deployment_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    pub deployments: Vec<DeploymentEntry>,
}

impl DeploymentResult {
    /// The deployed process definitions.
    pub fn processes(&self) -> impl Iterator<Item = &DeployedProcess> {
        self.deployments.iter().filter_map(|d| d.process_definition.as_ref())
    }
}

/// One deployed resource; only process definitions are modelled, other kinds are skipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeploymentEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_definition: Option<DeployedProcess>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DeployedProcess {
    pub process_definition_id: String,
    #[serde(deserialize_with = "key_string")]
    pub process_definition_key: String,
    pub process_definition_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// `POST /v2/process-instances` (200).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreatedInstance {
    #[serde(deserialize_with = "key_string")]
    pub process_instance_key: String,
    #[serde(deserialize_with = "key_string")]
    pub process_definition_key: String,
    pub process_definition_id: String,
    pub process_definition_version: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// One item of `POST /v2/process-instances/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessInstance {
    #[serde(deserialize_with = "key_string")]
    pub process_instance_key: String,
    pub process_definition_id: String,
    #[serde(deserialize_with = "key_string")]
    pub process_definition_key: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_definition_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub process_definition_version: Option<i32>,
    pub state: ProcessInstanceState,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_incident: Option<bool>,
}

/// One item of `POST /v2/process-definitions/search`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ProcessDefinition {
    #[serde(deserialize_with = "key_string")]
    pub process_definition_key: String,
    pub process_definition_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant_id: Option<String>,
}

/// A page of search results.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SearchPage<T> {
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    #[serde(default)]
    pub page: PageInfo,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PageInfo {
    pub total_items: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub has_more_total_items: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8.8 leaves absent optional fields out; 8.9 sends them as `null` (camunda/camunda#46183).
    /// c8dr reads both the same way.
    #[test]
    fn process_instance_search_parses_absent_and_null_optional_fields_alike() {
        let absent = r#"{"items":[{"processInstanceKey":"2251799813685249","processDefinitionId":"p",
            "processDefinitionKey":"2251799813685248","processDefinitionVersion":1,"state":"ACTIVE",
            "startDate":"2026-01-01T00:00:00.000Z","hasIncident":false,"tenantId":"<default>"}],
            "page":{"totalItems":1}}"#;
        let null = r#"{"items":[{"processInstanceKey":"2251799813685249","processDefinitionId":"p",
            "processDefinitionKey":"2251799813685248","processDefinitionVersion":1,"state":"ACTIVE",
            "startDate":"2026-01-01T00:00:00.000Z","hasIncident":false,"tenantId":"<default>",
            "processDefinitionName":null,"processDefinitionVersionTag":null,"endDate":null,
            "parentProcessInstanceKey":null,"parentElementInstanceKey":null}],
            "page":{"totalItems":1,"startCursor":null,"endCursor":null}}"#;
        let a: SearchPage<ProcessInstance> = serde_json::from_str(absent).expect("absent fields parse");
        let n: SearchPage<ProcessInstance> = serde_json::from_str(null).expect("null fields parse");
        assert_eq!(a, n);
        assert_eq!(a.items[0].end_date, None);
        assert_eq!(a.items[0].process_definition_name, None);
        assert_eq!(a.page.total_items, 1);
    }

    #[test]
    fn process_definition_search_parses_absent_and_null_optional_fields_alike() {
        let absent = r#"{"items":[{"processDefinitionKey":"1","processDefinitionId":"p","version":2,
            "tenantId":"<default>","hasStartForm":false}],"page":{"totalItems":1}}"#;
        let null = r#"{"items":[{"processDefinitionKey":"1","processDefinitionId":"p","version":2,
            "tenantId":"<default>","hasStartForm":false,"name":null,"resourceName":null,"versionTag":null}],
            "page":{"totalItems":1,"startCursor":null,"endCursor":null,"hasMoreTotalItems":null}}"#;
        let a: SearchPage<ProcessDefinition> = serde_json::from_str(absent).expect("absent fields parse");
        let n: SearchPage<ProcessDefinition> = serde_json::from_str(null).expect("null fields parse");
        assert_eq!(a, n);
        assert_eq!(a.items[0].name, None);
    }
}
