//! The lab answers in the contract's shapes: each example response of api-contract.md and of the
//! seed procedure (tests/fixtures/target/*.json) is compared, by shape, with the lab's real
//! answer in the same situation: same HTTP status, same JSON type at every path, every fixture key
//! present (extra lab keys are fine), array elements compared with the fixture's first element,
//! enum-like strings (states, statuses, operations, ES error types) from the contract's sets.
//! Plus the asynchrony claims shapes cannot show (ENABLING/DISABLING, omitted lastChange /
//! pendingChange, pause 200/500, increasing changeIds, dry runs apply nothing).
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::rehearsal::lab::{HelmAction, HelmRequest, Lab, LabDurations, LabHandle, LabOptions};
use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// The shape comparator.

/// Enum-like strings: (normalized path suffix, allowed values). Normalized paths use `[]` for
/// array elements and `*` for entries of maps keyed by names (index names, shard numbers).
type Enums<'a> = &'a [(&'a str, &'a [&'a str])];

const BROKER_STATES: &[&str] = &["UNKNOWN", "ACTIVE", "JOINING", "LEAVING", "LEFT"];
const PARTITION_STATES: &[&str] = &["UNKNOWN", "JOINING", "ACTIVE", "LEAVING"];
const EXPORTER_STATES: &[&str] = &["ENABLED", "DISABLED", "CONFIG_NOT_FOUND"];
const CHANGE_STATUSES: &[&str] = &["IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED"];
const EXPORTER_STATUSES: &[&str] = &["ENABLED", "DISABLED", "ENABLING", "DISABLING", "CONFIG_NOT_FOUND", "UNKNOWN"];
const OPERATIONS: &[&str] = &[
    "BROKER_ADD",
    "BROKER_REMOVE",
    "PARTITION_JOIN",
    "PARTITION_LEAVE",
    "PARTITION_RECONFIGURE_PRIORITY",
    "PARTITION_FORCE_RECONFIGURE",
    "PARTITION_ENABLE_EXPORTER",
    "PARTITION_DISABLE_EXPORTER",
    "PARTITION_DELETE_EXPORTER",
    "START_PARTITION_SCALE_UP",
    "PARTITION_BOOTSTRAP",
    "AWAIT_REDISTRIBUTION_COMPLETION",
    "AWAIT_RELOCATION_COMPLETION",
    "UPDATE_ROUTING_STATE",
    "DELETE_HISTORY",
    "PRE_SCALING",
    "UNKNOWN",
];
const ROLES: &[&str] = &["leader", "follower", "inactive"];
const HEALTHS: &[&str] = &["healthy", "unhealthy", "dead"];
const SNAPSHOT_STATES: &[&str] = &["IN_PROGRESS", "SUCCESS", "FAILED", "PARTIAL", "INCOMPATIBLE"];
/// `_status` also reports running snapshots with the in-progress enum (contract §5).
const SNAPSHOT_STATUS_STATES: &[&str] =
    &["IN_PROGRESS", "SUCCESS", "FAILED", "PARTIAL", "INCOMPATIBLE", "INIT", "STARTED", "ABORTED"];
const SHARD_STAGES: &[&str] = &["DONE", "FAILURE", "FINALIZE", "INIT", "STARTED"];
const ES_HEALTH: &[&str] = &["green", "yellow", "red"];
const RECOVERY_TYPES: &[&str] = &["SNAPSHOT", "PEER", "EXISTING_STORE", "EMPTY_STORE", "LOCAL_SHARDS"];
const RECOVERY_STAGES: &[&str] = &["INIT", "INDEX", "VERIFY_INDEX", "TRANSLOG", "FINALIZE", "DONE"];

const CLUSTER_ENUMS: Enums = &[
    ("brokers[].state", BROKER_STATES),
    ("brokers[].partitions[].state", PARTITION_STATES),
    ("exporters[].state", EXPORTER_STATES),
    ("lastChange.status", CHANGE_STATUSES),
    ("pendingChange.status", CHANGE_STATUSES),
    ("[].operation", OPERATIONS),
];
const PLANNED_ENUMS: Enums = &[
    ("Topology[].state", BROKER_STATES),
    ("Topology[].partitions[].state", PARTITION_STATES),
    ("exporters[].state", EXPORTER_STATES),
    ("plannedChanges[].operation", OPERATIONS),
];
const LAST_CHANGE_ENUMS: Enums = &[(".status", CHANGE_STATUSES)];
const TOPOLOGY_ENUMS: Enums = &[("partitions[].role", ROLES), ("partitions[].health", HEALTHS)];

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

struct Shape<'a> {
    enums: Enums<'a>,
    /// Normalized paths of objects that are maps keyed by names: every lab entry is compared
    /// with the fixture's first entry.
    maps: &'a [&'a str],
    diffs: Vec<String>,
    /// Normalized paths where the fixture has a non-empty array / the lab had one.
    fixture_arrays: BTreeSet<String>,
    lab_arrays: BTreeSet<String>,
}

impl Shape<'_> {
    fn walk(&mut self, want: &Value, got: &Value, path: &str, norm: &str) {
        let (tw, tg) = (type_name(want), type_name(got));
        if tw != tg {
            self.diffs.push(format!("{}: expected {tw}, found {tg} ({got})", show(path)));
            return;
        }
        match (want, got) {
            (Value::Object(w), Value::Object(g)) if self.maps.contains(&norm) => {
                if let Some(first) = w.values().next() {
                    let child = format!("{norm}.*");
                    self.fixture_arrays.insert(child.clone());
                    if !g.is_empty() {
                        self.lab_arrays.insert(child.clone());
                    }
                    for (k, gv) in g {
                        self.walk(first, gv, &format!("{path}.{k}"), &child);
                    }
                }
            }
            (Value::Object(w), Value::Object(g)) => {
                for (k, wv) in w {
                    let (p, n) = (format!("{path}.{k}"), format!("{norm}.{k}"));
                    match g.get(k) {
                        Some(gv) => self.walk(wv, gv, &p, &n),
                        None => self.diffs.push(format!("{}: expected {}, found nothing", show(&p), type_name(wv))),
                    }
                }
            }
            (Value::Array(w), Value::Array(g)) if w.first().is_some_and(|f| f.get("operation").is_some()) => {
                // Operations are heterogeneous (PARTITION_JOIN has partitionId and priority,
                // BROKER_ADD has neither): each lab operation is compared with the fixture's
                // operation of the same name, others with the keys every operation has.
                let n = format!("{norm}[]");
                self.fixture_arrays.insert(n.clone());
                if !g.is_empty() {
                    self.lab_arrays.insert(n.clone());
                }
                let mut common = w[0].clone();
                if let Some(o) = common.as_object_mut() {
                    o.retain(|k, _| ["operation", "brokerId", "completedAt"].contains(&k.as_str()));
                }
                for (i, gv) in g.iter().enumerate() {
                    let same = w.iter().find(|f| f.get("operation") == gv.get("operation")).unwrap_or(&common);
                    self.walk(same, gv, &format!("{path}[{i}]"), &n);
                }
            }
            (Value::Array(w), Value::Array(g)) => {
                if let Some(first) = w.first() {
                    let n = format!("{norm}[]");
                    self.fixture_arrays.insert(n.clone());
                    if !g.is_empty() {
                        self.lab_arrays.insert(n.clone());
                    }
                    for (i, gv) in g.iter().enumerate() {
                        self.walk(first, gv, &format!("{path}[{i}]"), &n);
                    }
                }
            }
            (Value::String(_), Value::String(s)) => {
                if let Some((_, allowed)) = self.enums.iter().find(|(suffix, _)| norm.ends_with(suffix))
                    && !allowed.contains(&s.as_str())
                {
                    self.diffs.push(format!("{}: expected one of {allowed:?}, found {s:?}", show(path)));
                }
            }
            _ => {}
        }
    }
}

fn show(path: &str) -> &str {
    if path.is_empty() { "$" } else { path }
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Differences between the fixture's shape and the lab's answer (empty = conforms).
fn shape_diffs(want: &Value, got: &Value, enums: Enums, maps: &[&str]) -> Vec<String> {
    let mut s = Shape { enums, maps, diffs: Vec::new(), fixture_arrays: BTreeSet::new(), lab_arrays: BTreeSet::new() };
    s.walk(want, got, "", "");
    for never in s.fixture_arrays.difference(&s.lab_arrays) {
        s.diffs.push(format!("{never}: the fixture has elements here, the lab answer never had any (shape unchecked)"));
    }
    s.diffs
}

/// Asserts the lab's answer `(status, body)` has the shape of fixture `name` answered `status`.
fn conforms(name: &str, want_status: u16, got: &(StatusCode, Value), enums: Enums, maps: &[&str]) {
    conforms_to(name, &fixture(name), want_status, got, enums, maps);
}

/// Like [`conforms`] with the fixture's `null` item fields left out: the fixture is the 8.9
/// form (absent optional fields as `null`, which c8dr must parse too), the lab answers as 8.8
/// (absent fields left out).
fn conforms_8_8(name: &str, want_status: u16, got: &(StatusCode, Value), enums: Enums, maps: &[&str]) {
    let mut want = fixture(name);
    for item in want["items"].as_array_mut().into_iter().flatten().filter_map(Value::as_object_mut) {
        item.retain(|_, v| !v.is_null());
    }
    conforms_to(name, &want, want_status, got, enums, maps);
}

fn conforms_to(name: &str, want: &Value, want_status: u16, got: &(StatusCode, Value), enums: Enums, maps: &[&str]) {
    assert_eq!(got.0.as_u16(), want_status, "{name}: HTTP status; lab answered {}", got.1);
    let diffs = shape_diffs(want, &got.1, enums, maps);
    assert!(
        diffs.is_empty(),
        "{name}: the lab's answer differs in shape:\n  {}\nlab answer: {}",
        diffs.join("\n  "),
        got.1
    );
}

#[test]
fn the_comparator_reports_path_expected_type_and_found() {
    let want = json!({"a": [{"b": 1, "state": "ACTIVE"}], "c": "x", "m": {"k1": {"d": true}}});
    let got = json!({"a": [{"b": 1, "state": "ACTIVE"}, {"b": "1", "state": "BOGUS"}], "extra": 1, "m": {"z": {}}});
    let diffs = shape_diffs(&want, &got, &[("a[].state", BROKER_STATES)], &[".m"]);
    assert_eq!(
        diffs,
        vec![
            ".a[1].b: expected number, found string (\"1\")".to_string(),
            ".a[1].state: expected one of [\"UNKNOWN\", \"ACTIVE\", \"JOINING\", \"LEAVING\", \"LEFT\"], found \"BOGUS\""
                .to_string(),
            ".c: expected string, found nothing".to_string(),
            ".m.z.d: expected boolean, found nothing".to_string(),
        ]
    );
    let diffs = shape_diffs(&json!({"a": [1]}), &json!({"a": []}), &[], &[]);
    assert_eq!(diffs.len(), 1, "{diffs:?}");
    assert!(shape_diffs(&json!([{"x": null}]), &json!([{"x": null, "y": 2}]), &[], &[]).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Driving the lab.

async fn lab() -> LabHandle {
    Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.expect("lab starts")
}

async fn call(c: &Client, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value) {
    let (s, v, _) = call_text(c, method, url, body).await;
    (s, v)
}

/// Also the body as sent: c8-multi-region greps the raw text (contract §1).
async fn call_text(c: &Client, method: Method, url: &str, body: Option<Value>) -> (StatusCode, Value, String) {
    let mut rb = c.request(method.clone(), url);
    if let Some(b) = body {
        rb = rb.json(&b);
    }
    let r = rb.send().await.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let s = r.status();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {url}: body is not JSON ({e}): {text}"));
    (s, v, text)
}

async fn get(c: &Client, url: &str) -> (StatusCode, Value) {
    call(c, Method::GET, url, None).await
}

async fn until<F, Fut>(what: &str, mut check: F) -> Value
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<Value>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Waits until change `id` is the completed lastChange; returns GET /actuator/cluster.
async fn await_change(c: &Client, mgmt: &str, id: i64) -> Value {
    let url = format!("{mgmt}/actuator/cluster");
    let v = until(&format!("change {id}"), || async {
        let (_, v) = get(c, &url).await;
        (v["lastChange"]["id"] == json!(id) && v.get("pendingChange").is_none()).then_some(v)
    })
    .await;
    assert_eq!(v["lastChange"]["status"], "COMPLETED", "{v}");
    v
}

fn exporter_status(list: &Value, id: &str) -> String {
    list.as_array().unwrap().iter().find(|e| e["exporterId"] == id).unwrap_or_else(|| panic!("{id} not listed: {list}"))
        ["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn slow() -> LabDurations {
    LabDurations { broker_op_ms: 600_000, exporter_op_ms: 600_000, ..LabDurations::fast() }
}

// ---------------------------------------------------------------------------------------------
// Management API and REST topology through a failover and a failback.

#[tokio::test]
async fn management_and_topology_answers_have_the_contract_shapes() {
    let lab = lab().await;
    let c = Client::new();
    let (r0, r1) = (lab.region_urls(0), lab.region_urls(1));
    let m = r0.management.clone();
    let cluster_url = format!("{m}/actuator/cluster");
    let exporters_url = format!("{m}/actuator/exporters");

    // Before any change: lastChange and pendingChange are omitted (not null).
    let (s, v) = get(&c, &cluster_url).await;
    assert_eq!(s, 200);
    assert!(v.get("lastChange").is_none() && v.get("pendingChange").is_none(), "{v}");
    let exporters = get(&c, &exporters_url).await;
    conforms("seed_exporters_both_enabled.json", 200, &exporters, &[("status", EXPORTER_STATUSES)], &[]);
    assert_eq!(exporters.1, fixture("seed_exporters_both_enabled.json"), "both exporters ENABLED");
    let topo = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    conforms("contract_rest_topology.json", 200, &topo, TOPOLOGY_ENUMS, &[]);
    conforms("seed_rest_topology_before_failover.json", 200, &topo, TOPOLOGY_ENUMS, &[]);

    // Pause / resume on a complete topology: HTTP 200, body status 204.
    for op in ["pause", "pause?soft=true", "resume"] {
        let ok = call(&c, Method::POST, &format!("{m}/actuator/exporting/{op}"), None).await;
        conforms("contract_pause_ok.json", 200, &ok, &[], &[]);
        assert_eq!(ok.1, fixture("contract_pause_ok.json"), "{op}");
    }

    // Dry run: same 202 shape, applies nothing, changes no id.
    let (_, before) = get(&c, &cluster_url).await;
    let dry = call(
        &c,
        Method::PATCH,
        &format!("{cluster_url}?dryRun=true"),
        Some(json!({"brokers": {"remove": [7]}, "partitions": {"replicationFactor": 3}})),
    )
    .await;
    conforms("contract_cluster_patch_202.json", 202, &dry, PLANNED_ENUMS, &[]);
    let (_, after) = get(&c, &cluster_url).await;
    assert_eq!(before, after, "a dry run changed the cluster");
    assert!(after.get("pendingChange").is_none() && after.get("lastChange").is_none(), "{after}");
    let dry_disable =
        call(&c, Method::POST, &format!("{m}/actuator/exporters/camundaregion1/disable?dryRun=true"), None).await;
    // Main accepts dryRun here too (not verified for 8.8, contract §2.2); the lab does: nothing changes.
    conforms("contract_exporter_disable_202.json", 202, &dry_disable, PLANNED_ENUMS, &[]);
    assert_eq!(get(&c, &cluster_url).await.1, before, "an exporter dry run changed the cluster");
    assert_eq!(get(&c, &exporters_url).await.1, fixture("seed_exporters_both_enabled.json"));

    // Disable camundaregion1: 202, DISABLING while pending, a 409 for anything else meanwhile.
    lab.set_durations(slow());
    let (s, v, text) =
        call_text(&c, Method::POST, &format!("{m}/actuator/exporters/camundaregion1/disable"), None).await;
    assert!(text.contains("DISABLED") && text.contains("PARTITION_DISABLE_EXPORTER"), "{text}");
    let disable = (s, v);
    conforms("contract_exporter_disable_202.json", 202, &disable, PLANNED_ENUMS, &[]);
    for b in disable.1["expectedTopology"].as_array().unwrap() {
        for p in b["partitions"].as_array().unwrap() {
            let ex = p["config"]["exporting"]["exporters"].as_array().unwrap();
            assert!(ex.contains(&json!({"id": "camundaregion1", "state": "DISABLED"})), "{p}");
        }
    }
    let disable_id = disable.1["changeId"].as_i64().unwrap();
    assert!(disable_id >= dry.1["changeId"].as_i64().unwrap(), "a dry run announced a later id than the real change");
    let (_, ex) = get(&c, &exporters_url).await;
    assert_eq!(exporter_status(&ex, "camundaregion1"), "DISABLING", "{ex}");
    assert_eq!(exporter_status(&ex, "camundaregion0"), "ENABLED", "{ex}");
    let pending = get(&c, &cluster_url).await;
    assert_eq!(pending.1["pendingChange"]["id"], disable_id);
    assert!(pending.1.get("lastChange").is_none(), "no change completed yet: {}", pending.1);
    let busy = call(&c, Method::POST, &format!("{m}/actuator/exporters/camundaregion0/disable"), None).await;
    conforms("contract_management_409.json", 409, &busy, &[], &[]);
    let busy = call(&c, Method::PATCH, &cluster_url, Some(json!({"brokers": {"remove": [7]}}))).await;
    conforms("contract_management_409.json", 409, &busy, &[], &[]);
    lab.set_durations(LabDurations::fast());
    let done = await_change(&c, &m, disable_id).await;
    conforms(
        "seed_last_change_after_disable.json",
        200,
        &(StatusCode::OK, done["lastChange"].clone()),
        LAST_CHANGE_ENUMS,
        &[],
    );
    let (_, _, text) = call_text(&c, Method::GET, &exporters_url, None).await;
    assert!(text.contains(r#"{"exporterId":"camundaregion1","status":"DISABLED"}"#), "compact JSON: {text}");
    let ex = get(&c, &exporters_url).await;
    conforms("seed_exporters_region1_disabled.json", 200, &ex, &[("status", EXPORTER_STATUSES)], &[]);
    conforms("contract_exporters_list.json", 200, &ex, &[("status", EXPORTER_STATUSES)], &[]);
    assert_eq!(ex.1, fixture("contract_exporters_list.json"), "compact list, region1 DISABLED");

    // Enable with initializeFrom: 202, ENABLING while pending, changeId increases.
    lab.set_durations(slow());
    let enable = call(
        &c,
        Method::POST,
        &format!("{m}/actuator/exporters/camundaregion1/enable"),
        Some(json!({"initializeFrom": "camundaregion0"})),
    )
    .await;
    conforms("contract_exporter_disable_202.json", 202, &enable, PLANNED_ENUMS, &[]);
    let enable_id = enable.1["changeId"].as_i64().unwrap();
    assert!(enable_id > disable_id, "changeId must increase: {disable_id} then {enable_id}");
    assert!(
        enable.1["plannedChanges"].as_array().unwrap().iter().all(|op| op["operation"] == "PARTITION_ENABLE_EXPORTER")
    );
    let (_, ex) = get(&c, &exporters_url).await;
    assert_eq!(exporter_status(&ex, "camundaregion1"), "ENABLING", "{ex}");
    let (_, v) = get(&c, &cluster_url).await;
    assert_eq!(
        (v["pendingChange"]["id"].as_i64(), v["lastChange"]["id"].as_i64()),
        (Some(enable_id), Some(disable_id))
    );
    lab.set_durations(LabDurations::fast());
    let done = await_change(&c, &m, enable_id).await;
    conforms(
        "seed_last_change_after_enable.json",
        200,
        &(StatusCode::OK, done["lastChange"].clone()),
        LAST_CHANGE_ENUMS,
        &[],
    );
    let ex = get(&c, &exporters_url).await;
    conforms("seed_exporters_after_enable.json", 200, &ex, &[("status", EXPORTER_STATUSES)], &[]);
    assert_eq!(ex.1, fixture("seed_exporters_after_enable.json"));

    // Region 1 lost: pause answers HTTP 200 with body status 500 and pauses nothing.
    lab.lose_region(1).await.unwrap();
    let failed = call(&c, Method::POST, &format!("{m}/actuator/exporting/pause"), None).await;
    conforms("contract_pause_failed.json", 200, &failed, &[], &[]);
    assert_eq!(failed.1["status"], 500);
    assert!(!lab.state().exporting_paused, "a failed pause paused something");

    // Force remove: 202 with PARTITION_FORCE_RECONFIGURE and BROKER_REMOVE.
    let remove = call(
        &c,
        Method::PATCH,
        &format!("{cluster_url}?force=true"),
        Some(json!({"brokers": {"remove": [1, 3, 5, 7]}})),
    )
    .await;
    conforms("contract_cluster_patch_202.json", 202, &remove, PLANNED_ENUMS, &[]);
    let remove_id = remove.1["changeId"].as_i64().unwrap();
    assert!(remove_id > enable_id);
    let ops: BTreeSet<&str> =
        remove.1["plannedChanges"].as_array().unwrap().iter().map(|o| o["operation"].as_str().unwrap()).collect();
    assert!(ops.contains("PARTITION_FORCE_RECONFIGURE") && ops.contains("BROKER_REMOVE"), "{ops:?}");
    let done = await_change(&c, &m, remove_id).await;
    conforms(
        "seed_last_change_after_force_remove.json",
        200,
        &(StatusCode::OK, done["lastChange"].clone()),
        LAST_CHANGE_ENUMS,
        &[],
    );
    let topo = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    conforms("seed_rest_topology_after_force_remove.json", 200, &topo, TOPOLOGY_ENUMS, &[]);
    assert_eq!((topo.1["clusterSize"].as_i64(), topo.1["replicationFactor"].as_i64()), (Some(4), Some(2)));
    assert_eq!(topo.1["lastCompletedChangeId"], remove_id.to_string(), "a string");

    // 400 for force + add, in the same {"message"} body.
    let bad =
        call(&c, Method::PATCH, &format!("{cluster_url}?force=true"), Some(json!({"brokers": {"add": [1, 3, 5, 7]}})))
            .await;
    conforms("contract_management_409.json", 400, &bad, &[], &[]);

    // Recreated region: its brokers gossip with `partitions: []` (pods Ready at once here; the
    // rollout timing is tests/lab_kubernetes.rs's).
    lab.set_durations(LabDurations { pod_restart_ms: 0, ..LabDurations::fast() });
    lab.recreate_region(1).await.unwrap();
    lab.helm(1, HelmRequest { action: HelmAction::Install, webapps: false, create_schema: false }).await.unwrap();
    let topo = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    conforms("seed_rest_topology_recreated_gossip.json", 200, &topo, TOPOLOGY_ENUMS, &[]);
    for b in topo.1["brokers"].as_array().unwrap() {
        let id = b["nodeId"].as_i64().unwrap();
        assert_eq!(b["partitions"], if id % 2 == 1 { json!([]) } else { b["partitions"].clone() }, "{b}");
        assert_eq!(b["partitions"].as_array().unwrap().is_empty(), id % 2 == 1, "{b}");
    }
    let (_, topo1) = get(&c, &format!("{}/v2/topology", r1.rest)).await;
    assert_eq!(topo1["brokers"].as_array().unwrap().len(), 8, "{topo1}");

    // Add back: GET /actuator/cluster while pending has lastChange and pendingChange with both
    // completed and pending operations (the contract's example).
    lab.set_durations(LabDurations { broker_op_ms: 60, ..LabDurations::fast() });
    let (s, v, text) = call_text(
        &c,
        Method::PATCH,
        &cluster_url,
        Some(json!({"brokers": {"add": [1, 3, 5, 7]}, "partitions": {"replicationFactor": 4}})),
    )
    .await;
    assert!(text.contains(r#""id":8,"state":"ACTIVE""#), "c8-multi-region greps this: {text}");
    let add = (s, v);
    conforms("contract_cluster_patch_202.json", 202, &add, PLANNED_ENUMS, &[]);
    let add_id = add.1["changeId"].as_i64().unwrap();
    assert!(add_id > remove_id);
    let mid = until("a pending change with completed and pending operations", || async {
        let (_, v) = get(&c, &cluster_url).await;
        let p = &v["pendingChange"];
        (p["completed"].as_array().is_some_and(|a| !a.is_empty())
            && p["pending"].as_array().is_some_and(|a| !a.is_empty()))
        .then_some(v)
    })
    .await;
    conforms("contract_cluster_get.json", 200, &(StatusCode::OK, mid.clone()), CLUSTER_ENUMS, &[]);
    assert_eq!(mid["pendingChange"]["id"], add_id);
    assert_eq!(mid["pendingChange"]["status"], "IN_PROGRESS");
    assert_eq!(mid["lastChange"]["id"], remove_id);
    lab.set_durations(LabDurations::fast());
    let done = await_change(&c, &m, add_id).await;
    conforms(
        "seed_last_change_after_add.json",
        200,
        &(StatusCode::OK, done["lastChange"].clone()),
        LAST_CHANGE_ENUMS,
        &[],
    );
    let topo = get(&c, &format!("{}/v2/topology", r0.rest)).await;
    conforms("seed_rest_topology_after_failback.json", 200, &topo, TOPOLOGY_ENUMS, &[]);
    assert!(topo.1["brokers"].as_array().unwrap().iter().all(|b| !b["partitions"].as_array().unwrap().is_empty()));
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// Elasticsearch snapshot, restore and monitoring.

fn es_error_enums(ty: &'static [&'static str]) -> [(&'static str, &'static [&'static str]); 2] {
    [("error.type", ty), ("error.root_cause[].type", ty)]
}

#[tokio::test]
async fn elasticsearch_answers_have_the_documented_shapes() {
    let lab = Lab::start(LabOptions {
        durations: LabDurations { snapshot_ms: 400, restore_ms: 3_000, ..LabDurations::fast() },
        ..Default::default()
    })
    .await
    .unwrap();
    let c = Client::new();
    let e0 = lab.region_urls(0).elasticsearch;
    let e1 = lab.region_urls(1).elasticsearch;
    let repo_body =
        json!({"type": "s3", "settings": {"bucket": "b", "client": "camunda", "base_path": "b/8-8-0-backups"}});

    let missing_repo = call(
        &c,
        Method::PUT,
        &format!("{e0}/_snapshot/camunda_backup/failback"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    conforms(
        "contract_es_error_repository_missing.json",
        404,
        &missing_repo,
        &es_error_enums(&["repository_missing_exception"]),
        &[],
    );
    let ack = call(&c, Method::PUT, &format!("{e0}/_snapshot/camunda_backup"), Some(repo_body.clone())).await;
    conforms("contract_es_acknowledged.json", 200, &ack, &[], &[]);
    // Registered read-only (as ES advises for every cluster but the writer): settings come back as strings.
    let mut readonly = repo_body.clone();
    readonly["settings"]["readonly"] = json!(true);
    let ack = call(&c, Method::PUT, &format!("{e1}/_snapshot/camunda_backup"), Some(readonly)).await;
    conforms("contract_es_acknowledged.json", 200, &ack, &[], &[]);
    let repo = get(&c, &format!("{e1}/_snapshot/camunda_backup")).await;
    conforms("es_repository_get.json", 200, &repo, &[], &[]);
    let (s, _) = call(&c, Method::DELETE, &format!("{e1}/_snapshot/camunda_backup"), None).await;
    assert_eq!(s, 200);
    for path in ["_all", "failback", "failback/_status"] {
        let missing = get(&c, &format!("{e1}/_snapshot/camunda_backup/{path}")).await;
        conforms(
            "contract_es_error_repository_missing.json",
            404,
            &missing,
            &es_error_enums(&["repository_missing_exception"]),
            &[],
        );
    }

    let health = get(&c, &format!("{e0}/_cluster/health")).await;
    conforms("es_cluster_health.json", 200, &health, &[("status", ES_HEALTH)], &[]);
    let indices = get(&c, &format!("{e0}/_cat/indices?format=json")).await;
    assert_eq!(indices.0, 200);
    let cat = fixture("es_cat_indices.json");
    for row in indices.1.as_array().unwrap() {
        // Open indices have the first fixture row's shape, closed ones the second's (nulls).
        let want = if row["status"] == "close" { &cat[1] } else { &cat[0] };
        let diffs = shape_diffs(want, row, &[("status", &["open", "close"]), ("health", ES_HEALTH)], &[]);
        assert!(diffs.is_empty(), "es_cat_indices.json: {}\nrow: {row}", diffs.join("\n  "));
    }
    assert!(!indices.1.as_array().unwrap().is_empty());

    // Snapshot without waiting, then GET and _status while running and once done.
    let accepted = call(
        &c,
        Method::PUT,
        &format!("{e0}/_snapshot/camunda_backup/running"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    conforms("contract_es_accepted.json", 200, &accepted, &[], &[]);
    let snap_enums: Enums = &[("snapshots[].state", SNAPSHOT_STATES)];
    let running = get(&c, &format!("{e0}/_snapshot/camunda_backup/running")).await;
    conforms("seed_es_snapshots_all.json", 200, &running, snap_enums, &[]);
    let status_enums: Enums = &[("snapshots[].state", SNAPSHOT_STATUS_STATES), ("shards.*.stage", SHARD_STAGES)];
    let status_maps: &[&str] = &[".snapshots[].indices", ".snapshots[].indices.*.shards"];
    let st = get(&c, &format!("{e0}/_snapshot/camunda_backup/running/_status")).await;
    conforms("seed_es_snapshot_status.json", 200, &st, status_enums, status_maps);

    let wait = call(
        &c,
        Method::PUT,
        &format!("{e0}/_snapshot/camunda_backup/failback?wait_for_completion=true"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    conforms("contract_es_snapshot_wait.json", 200, &wait, &[("snapshot.state", SNAPSHOT_STATES)], &[]);
    assert_eq!(wait.1["snapshot"]["state"], "SUCCESS");
    let all = get(&c, &format!("{e0}/_snapshot/camunda_backup/_all")).await;
    conforms("seed_es_snapshots_all.json", 200, &all, snap_enums, &[]);
    let st = get(&c, &format!("{e0}/_snapshot/camunda_backup/failback/_status")).await;
    conforms("seed_es_snapshot_status.json", 200, &st, status_enums, status_maps);
    assert_eq!(st.1["snapshots"][0]["state"], "SUCCESS");

    let taken = call(&c, Method::PUT, &format!("{e0}/_snapshot/camunda_backup/failback"), Some(json!({}))).await;
    conforms(
        "contract_es_error_snapshot_name.json",
        400,
        &taken,
        &es_error_enums(&["invalid_snapshot_name_exception"]),
        &[],
    );
    let snapshot_missing = es_error_enums(&["snapshot_missing_exception"]);
    for (method, path) in [(Method::GET, "nope"), (Method::GET, "nope/_status"), (Method::POST, "nope/_restore")] {
        let missing = call(&c, method, &format!("{e0}/_snapshot/camunda_backup/{path}"), None).await;
        conforms("contract_es_error_snapshot_missing.json", 404, &missing, &snapshot_missing, &[]);
    }

    // Region 1 still has open Camunda indices: 500 snapshot_restore_exception.
    call(&c, Method::PUT, &format!("{e1}/_snapshot/camunda_backup"), Some(repo_body)).await;
    let restore_url = format!("{e1}/_snapshot/camunda_backup/failback/_restore");
    let (s, _) = call(&c, Method::POST, &format!("{e1}/camunda-web-session-8.8.0_/_close"), None).await;
    assert_eq!(s, 200);
    let (s, rows) = get(&c, &format!("{e1}/_cat/indices?format=json")).await;
    assert_eq!(s, 200);
    let closed = rows.as_array().unwrap().iter().find(|r| r["status"] == "close").expect("a closed index is listed");
    // ES 7.2+ replicates closed indices and reports their health (elastic/elasticsearch#39364);
    // their document counts and sizes are null.
    let diffs = shape_diffs(&cat[1], closed, &[("status", &["open", "close"]), ("health", ES_HEALTH)], &[]);
    assert!(diffs.is_empty(), "es_cat_indices.json (closed): {}\nrow: {closed}", diffs.join("\n  "));
    let open = call(&c, Method::POST, &restore_url, Some(json!({"include_global_state": true}))).await;
    conforms(
        "contract_es_error_restore_open_index.json",
        500,
        &open,
        &es_error_enums(&["snapshot_restore_exception"]),
        &[],
    );

    // Restore without waiting: accepted; _recovery and health while it runs (408 when waiting).
    let (s, _) = call(&c, Method::DELETE, &format!("{e1}/camunda-*,operate-*,tasklist-*"), None).await;
    assert_eq!(s, 200);
    let accepted = call(&c, Method::POST, &restore_url, Some(json!({"include_global_state": true}))).await;
    conforms("contract_es_accepted.json", 200, &accepted, &[], &[]);
    let recovery = get(&c, &format!("{e1}/_recovery?active_only=true")).await;
    let recovery_enums: Enums = &[("shards[].type", RECOVERY_TYPES), ("shards[].stage", RECOVERY_STAGES)];
    conforms("es_recovery_active.json", 200, &recovery, recovery_enums, &[""]);
    let timed_out = get(&c, &format!("{e1}/_cluster/health?wait_for_status=green&timeout=50ms")).await;
    conforms("es_cluster_health_timed_out.json", 408, &timed_out, &[("status", ES_HEALTH)], &[]);
    assert_eq!(timed_out.1["timed_out"], true);
    until("restore finished", || async {
        let (_, h) = get(&c, &format!("{e1}/_cluster/health")).await;
        (h["status"] == "green").then_some(h)
    })
    .await;
    let recovery = get(&c, &format!("{e1}/_recovery")).await;
    conforms("es_recovery_active.json", 200, &recovery, recovery_enums, &[""]);

    // Restore with waiting (indices deleted again): the short summary.
    let (s, _) = call(&c, Method::DELETE, &format!("{e1}/camunda-*,operate-*,tasklist-*"), None).await;
    assert_eq!(s, 200);
    lab.set_durations(LabDurations { snapshot_ms: 400, ..LabDurations::fast() });
    let restored = call(
        &c,
        Method::POST,
        &format!("{restore_url}?wait_for_completion=true"),
        Some(json!({"include_global_state": true})),
    )
    .await;
    conforms("contract_es_restore_wait.json", 200, &restored, &[], &[]);
    assert_eq!(restored.1["snapshot"]["shards"]["failed"], 0);
    lab.shutdown().await;
}

// ---------------------------------------------------------------------------------------------
// REST API end checks (deploy, create, search).

#[tokio::test]
async fn rest_end_check_answers_have_the_documented_shapes() {
    let lab = lab().await;
    let c = Client::new();
    let rest = lab.region_urls(0).rest;
    let bpmn =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/target/single-task.bpmn"))
            .unwrap();
    let part = reqwest::multipart::Part::text(bpmn).file_name("single-task.bpmn");
    let form = reqwest::multipart::Form::new().part("resources", part);
    let r = c.post(format!("{rest}/v2/deployments")).multipart(form).send().await.unwrap();
    let deployed = (r.status(), r.json::<Value>().await.unwrap());
    conforms("rest_deployment.json", 200, &deployed, &[], &[]);
    let created = call(
        &c,
        Method::POST,
        &format!("{rest}/v2/process-instances"),
        Some(json!({"processDefinitionId": "bigVarProcess"})),
    )
    .await;
    conforms("rest_create_instance.json", 200, &created, &[], &[]);
    let found = until("the instance is searchable", || async {
        let (s, v) = call(&c, Method::POST, &format!("{rest}/v2/process-instances/search"), Some(json!({}))).await;
        (s == 200 && v["page"]["totalItems"] == 1).then_some(v)
    })
    .await;
    conforms_8_8(
        "rest_process_instance_search.json",
        200,
        &(StatusCode::OK, found),
        &[("items[].state", &["ACTIVE", "COMPLETED", "TERMINATED"])],
        &[],
    );
    lab.shutdown().await;
}
