//! Compact JSON with the field order Camunda uses. `serde_json::Value` sorts object keys; the
//! real APIs write them in declaration order (`{"id":8,"state":"ACTIVE",...}`), and some tools
//! match substrings of the body, so the lab writes objects in the documented order.
use serde_json::Value;

/// Known object shapes, in wire order. An object takes the first shape that has all its keys.
const SHAPES: &[&[&str]] = &[
    &["version", "brokers", "lastChange", "pendingChange", "routing", "clusterId"],
    &["id", "state", "version", "lastUpdatedAt", "partitions"],
    &["id", "state", "priority", "config"],
    &["id", "status", "startedAt", "completedAt", "completed", "pending"],
    &["operation", "brokerId", "partitionId", "priority", "brokers", "exporterId", "completedAt"],
    &["changeId", "currentTopology", "plannedChanges", "expectedTopology"],
    &["exporterId", "status"],
    &["body", "status", "contentType"],
    &["brokers", "clusterSize", "partitionsCount", "replicationFactor", "gatewayVersion", "lastCompletedChangeId"],
    &["nodeId", "host", "port", "partitions", "version"],
    &["partitionId", "role", "health"],
    &["version", "requestHandling", "messageCorrelation"],
    &["strategy", "partitionCount"],
    &["total", "failed", "successful"],
    &["snapshots", "total", "remaining"],
    &["type", "title", "status", "detail", "instance"],
    &["items", "page"],
    &["deploymentKey", "tenantId", "deployments"],
    &[
        "processDefinitionId",
        "processDefinitionVersion",
        "resourceName",
        "tenantId",
        "variables",
        "processDefinitionKey",
        "processInstanceKey",
        "tags",
    ],
];

fn rank(shape: &[&str], key: &str) -> usize {
    shape.iter().position(|k| *k == key).unwrap_or(usize::MAX)
}

/// Writes `v` as compact JSON, objects in wire order.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(x, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            let shape = SHAPES.iter().find(|s| m.keys().all(|k| s.contains(&k.as_str()))).copied().unwrap_or(&[]);
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort_by(|a, b| rank(shape, a).cmp(&rank(shape, b)).then(a.cmp(b)));
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(&m[k], out);
            }
            out.push('}');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_follow_the_wire_order() {
        let v = json!({"partitions": [{"config": {}, "priority": 1, "state": "ACTIVE", "id": 8}], "id": 0, "state": "ACTIVE", "version": 2, "lastUpdatedAt": "x"});
        let s = to_string(&v);
        assert!(
            s.starts_with(
                r#"{"id":0,"state":"ACTIVE","version":2,"lastUpdatedAt":"x","partitions":[{"id":8,"state":"ACTIVE""#
            ),
            "{s}"
        );
        assert_eq!(
            to_string(&json!({"status": 204, "contentType": null, "body": null})),
            r#"{"body":null,"status":204,"contentType":null}"#
        );
        assert_eq!(serde_json::from_str::<Value>(&s).unwrap(), v);
        assert_eq!(to_string(&json!({"b": "\"q\"", "a": [1.5, true]})), r#"{"a":[1.5,true],"b":"\"q\""}"#);
    }
}
