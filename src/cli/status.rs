//! `c8dr status --target T`: one screen on the state of a dual-region installation. Read only.
//!
//! Per region: reachability, brokers and partitions (management `/actuator/cluster`, REST
//! `/v2/topology`), exporters (`/actuator/exporters`), any pending cluster change, the snapshot
//! repository (Elasticsearch `_snapshot/<repo>`). From the audit journal: whether c8dr paused
//! exporting (no API reports it) and the last drill with its recovery time. From the management
//! Camunda: the running DR process instance and its current step. Anything that cannot be read is
//! shown as unreachable with the error, never as healthy.
use super::common::load_config;
use anyhow::Context;
use c8dr::config::{AuthConfig, Config, HttpAuth, redact_url};
use c8dr::procedure::journal::{EntryKind, Journal, JournalEntry, scrub};
use c8dr::region_api::models::rest::{Health, ProcessInstanceState, Role};
use c8dr::region_api::{HttpAuthResolved, RestClient, Target, region_of_broker};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use std::process::ExitCode;
use std::time::Duration;

/// The DR processes whose running instances are shown.
const DR_PROCESSES: &[&str] = &["dr-failover", "dr-failback", "dr-drill"];

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The configured target (dual-region installation) to show.
    #[arg(long)]
    pub target: String,
    /// Print the status as JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: Args, global: &super::Global) -> anyhow::Result<ExitCode> {
    let config = load_config(global)?;
    let Some(tc) = config.targets.get(&args.target) else {
        let known: Vec<&String> = config.targets.keys().collect();
        anyhow::bail!(
            "--target {:?} is not configured; configured targets: {known:?} (see [targets.NAME] in the config)",
            args.target
        );
    };
    let target = Target::from_config(&args.target, tc)
        .with_context(|| format!("target {} is misconfigured (run `c8dr config check`)", args.target))?;
    let status = collect(&config, &target).await;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    let all_ok = status["regions"].as_array().is_some_and(|r| r.iter().all(|r| r["reachable"] == json!(true)));
    Ok(if all_ok { ExitCode::SUCCESS } else { ExitCode::from(2) })
}

fn err(e: impl std::fmt::Display) -> Value {
    json!({"reachable": false, "error": scrub(&e.to_string())})
}

async fn collect(config: &Config, target: &Target) -> Value {
    let (r0, r1) = tokio::join!(region_status(target, 0), region_status(target, 1));
    let journal = journal_status(config, &target.name);
    let processes = process_status(config).await;
    json!({
        "target": target.name,
        "time": Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        "regions": [r0, r1],
        "exportingPaused": journal.get("exportingPaused").cloned().unwrap_or(Value::Null),
        "runningProcesses": processes,
        "lastDrill": journal.get("lastDrill").cloned().unwrap_or(Value::Null),
        "journal": journal.get("journal").cloned().unwrap_or(Value::Null),
    })
}

async fn region_status(target: &Target, id: u8) -> Value {
    let r = target.region(id);
    let repo = &target.config.snapshot.repository;
    let (cluster, topo, exporters, snap) = tokio::join!(
        r.management.get_cluster(),
        r.rest.topology(),
        r.management.list_exporters(),
        r.elasticsearch.get_repository(repo),
    );
    let management = match cluster {
        Ok(c) => {
            let brokers: Vec<Value> = c
                .brokers
                .iter()
                .map(|b| {
                    json!({"id": b.id, "region": region_of_broker(b.id), "state": b.state.to_string(), "partitions": b.partitions.len()})
                })
                .collect();
            let pending = c.pending_change.as_ref().map(|p| {
                json!({"id": p.id, "status": p.status.to_string(), "completedOperations": p.completed.len(), "pendingOperations": p.pending.len()})
            });
            json!({"reachable": true, "clusterVersion": c.version, "brokers": brokers, "pendingChange": pending,
                   "lastChange": c.last_change.as_ref().map(|l| json!({"id": l.id, "status": l.status.to_string()}))})
        }
        Err(e) => err(e),
    };
    let rest = match topo {
        Ok(t) => {
            let mut partitions: std::collections::BTreeMap<u32, (u32, u32, Vec<String>)> = Default::default();
            for b in &t.brokers {
                for p in &b.partitions {
                    let e = partitions.entry(p.partition_id).or_default();
                    e.0 += 1;
                    if p.role == Role::Leader {
                        e.1 += 1;
                    }
                    if p.health != Health::Healthy {
                        e.2.push(format!("broker {} {}", b.node_id, p.health));
                    }
                }
            }
            let members = t.brokers.iter().filter(|b| !b.partitions.is_empty()).count();
            let healthy_leaders = (1..=t.partitions_count)
                .filter(|id| partitions.get(id).is_some_and(|p| p.1 >= 1 && p.2.is_empty()))
                .count();
            json!({
                "reachable": true,
                "clusterSize": t.cluster_size,
                "partitionsCount": t.partitions_count,
                "replicationFactor": t.replication_factor,
                "gatewayVersion": t.gateway_version,
                "brokersWithPartitions": members,
                "brokersListed": t.brokers.len(),
                "partitionsWithHealthyLeader": healthy_leaders,
                "partitions": partitions.iter().map(|(id, (replicas, leaders, unhealthy))| json!({
                    "id": id, "replicas": replicas, "leaders": leaders, "unhealthy": unhealthy,
                })).collect::<Vec<_>>(),
            })
        }
        Err(e) => err(e),
    };
    let exporters = match exporters {
        Ok(list) => {
            json!({"reachable": true, "exporters": list.iter().map(|e| json!({"id": e.exporter_id, "status": e.status.to_string()})).collect::<Vec<_>>()})
        }
        Err(e) => err(e),
    };
    let snapshot = match snap {
        Ok(Some(info)) => json!({"reachable": true, "repository": repo, "registered": true, "type": info.kind}),
        Ok(None) => json!({"reachable": true, "repository": repo, "registered": false}),
        Err(e) => err(e),
    };
    let reachable = [&management, &rest, &exporters, &snapshot].iter().all(|v| v["reachable"] == json!(true));
    json!({
        "id": id,
        "name": r.name,
        "reachable": reachable,
        "management": management,
        "rest": rest,
        "exporters": exporters,
        "snapshotRepository": snapshot,
    })
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Exporting pause state and the last drill, from the audit journal of this target.
fn journal_status(config: &Config, target: &str) -> serde_json::Map<String, Value> {
    let mut out = serde_json::Map::new();
    let journal = Journal::new(config.journal.path.clone());
    let entries: Vec<JournalEntry> = match journal.entries() {
        Ok(e) => e.into_iter().filter(|e| e.target == target).collect(),
        Err(e) => {
            let v = json!({"known": false, "error": scrub(&e.to_string())});
            out.insert("exportingPaused".into(), v.clone());
            out.insert("lastDrill".into(), v.clone());
            out.insert(
                "journal".into(),
                json!({"path": config.journal.path.display().to_string(), "error": scrub(&e.to_string())}),
            );
            return out;
        }
    };
    out.insert(
        "journal".into(),
        json!({"path": config.journal.path.display().to_string(), "entriesForTarget": entries.len()}),
    );
    // the last successful pause/resume per region decides
    let mut paused = Vec::new();
    for region in [0u8, 1] {
        let last = entries.iter().rev().find(|e| {
            e.kind == EntryKind::Call
                && e.status == "ok"
                && e.region == Some(region)
                && matches!(e.action.as_str(), "pause-exporting" | "resume-exporting")
        });
        paused.push(match last {
            Some(e) => json!({
                "region": region,
                "paused": e.action == "pause-exporting",
                "since": rfc(e.time),
                "processInstanceKey": e.process_instance_key.to_string(),
            }),
            None => json!({"region": region, "paused": false, "since": null, "note": "c8dr never paused exporting here (per the journal)"}),
        });
    }
    out.insert("exportingPaused".into(), json!({"known": true, "source": "journal", "regions": paused}));
    // last drill: the last region loss c8dr simulated, and the first failover report after it
    let lose =
        entries.iter().rev().find(|e| e.kind == EntryKind::Call && e.action == "drill-lose-region" && e.status == "ok");
    let drill = match lose {
        None => Value::Null,
        Some(l) => {
            let recovered = entries.iter().find(|e| {
                e.time >= l.time
                    && e.kind == EntryKind::Outcome
                    && e.step == "c8dr.report"
                    && e.action == "done"
                    && e.process_instance_key != l.process_instance_key
                    && entries
                        .iter()
                        .any(|x| x.process_instance_key == e.process_instance_key && x.step == "c8dr.remove-brokers")
            });
            let done = entries.iter().rev().find(|e| {
                e.process_instance_key == l.process_instance_key
                    && e.step == "c8dr.report"
                    && e.kind == EntryKind::Outcome
            });
            json!({
                "processInstanceKey": l.process_instance_key.to_string(),
                "regionLostAt": rfc(l.time),
                "recoveryTimeSeconds": recovered.map(|r| (r.time - l.time).num_milliseconds() as f64 / 1000.0),
                "completedAt": done.map(|d| rfc(d.time)),
            })
        }
    };
    out.insert("lastDrill".into(), drill);
    out
}

fn management_auth(auth: &AuthConfig) -> HttpAuth {
    match auth.clone() {
        AuthConfig::None => HttpAuth::None,
        AuthConfig::Basic { username, password } => HttpAuth::Basic { username, password },
        AuthConfig::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => {
            HttpAuth::Oauth { client_id, client_secret, authorization_server_url, audience, scope }
        }
    }
}

/// Running DR process instances and their current steps, from the management Camunda's REST API.
async fn process_status(config: &Config) -> Value {
    let m = &config.management;
    let where_ = redact_url(&m.rest_address);
    let auth = match HttpAuthResolved::resolve(&management_auth(&m.auth)) {
        Ok(a) => a,
        Err(e) => return json!({"reachable": false, "at": where_, "error": format!("management.auth: {e}")}),
    };
    let client = match RestClient::new(&m.rest_address, auth, Duration::from_millis(m.request_timeout_ms)) {
        Ok(c) => c,
        Err(e) => return json!({"reachable": false, "at": where_, "error": scrub(&e.to_string())}),
    };
    let mut instances = Vec::new();
    for id in DR_PROCESSES {
        let page =
            match client.search_process_instances(json!({"processDefinitionId": id, "state": "ACTIVE"}), 20).await {
                Ok(p) => p,
                Err(e) => return json!({"reachable": false, "at": where_, "error": scrub(&e.to_string())}),
            };
        // the filter is checked again here: a server that ignored it must not invent a running failover
        for pi in
            page.items.into_iter().filter(|p| p.process_definition_id == *id && p.state == ProcessInstanceState::Active)
        {
            let steps = match client
                .search_element_instances(json!({"processInstanceKey": pi.process_instance_key, "state": "ACTIVE"}), 50)
                .await
            {
                Ok(p) => json!(
                    p.items
                        .into_iter()
                        .filter(|e| e["state"] == "ACTIVE"
                            && e["processInstanceKey"].as_str() == Some(pi.process_instance_key.as_str())
                            && !matches!(e["type"].as_str(), Some("PROCESS" | "SUB_PROCESS" | "CALL_ACTIVITY")))
                        .map(|e| json!({
                            "elementId": e["elementId"], "elementName": e["elementName"], "type": e["type"],
                            "since": e["startDate"], "incident": e["hasIncident"],
                        }))
                        .collect::<Vec<_>>()
                ),
                Err(e) => json!({"error": scrub(&e.to_string())}),
            };
            instances.push(json!({
                "processInstanceKey": pi.process_instance_key,
                "process": pi.process_definition_id,
                "startedAt": pi.start_date,
                "hasIncident": pi.has_incident,
                "currentSteps": steps,
            }));
        }
    }
    json!({"reachable": true, "at": where_, "instances": instances})
}

/// The human screen.
fn render(s: &Value) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let _ = writeln!(
        o,
        "c8dr status: target {} at {}",
        s["target"].as_str().unwrap_or("?"),
        s["time"].as_str().unwrap_or("")
    );
    for r in s["regions"].as_array().into_iter().flatten() {
        let _ = writeln!(
            o,
            "\nregion {} ({}): {}",
            r["id"],
            r["name"].as_str().unwrap_or("?"),
            if r["reachable"] == json!(true) { "reachable" } else { "NOT fully reachable" }
        );
        let m = &r["management"];
        if m["reachable"] == json!(true) {
            let brokers = m["brokers"].as_array().cloned().unwrap_or_default();
            let ids: Vec<String> =
                brokers.iter().map(|b| format!("{}({})", b["id"], b["state"].as_str().unwrap_or("?"))).collect();
            let _ = writeln!(o, "  cluster members  {} brokers: {}", brokers.len(), ids.join(" "));
            match m["pendingChange"].as_object() {
                Some(p) => {
                    let _ = writeln!(
                        o,
                        "  pending change   {} {}: {} of {} operations done",
                        p["id"],
                        p["status"].as_str().unwrap_or("?"),
                        p["completedOperations"],
                        p["completedOperations"].as_u64().unwrap_or(0) + p["pendingOperations"].as_u64().unwrap_or(0)
                    );
                }
                None => {
                    let _ = writeln!(o, "  pending change   none");
                }
            }
        } else {
            let _ = writeln!(o, "  management API   UNREACHABLE: {}", m["error"].as_str().unwrap_or("?"));
        }
        let t = &r["rest"];
        if t["reachable"] == json!(true) {
            let _ = writeln!(
                o,
                "  topology         {} of {} brokers hold partitions; {} of {} partitions have a healthy leader (RF {}, gateway {})",
                t["brokersWithPartitions"],
                t["clusterSize"],
                t["partitionsWithHealthyLeader"],
                t["partitionsCount"],
                t["replicationFactor"],
                t["gatewayVersion"].as_str().unwrap_or("?")
            );
            for p in t["partitions"].as_array().into_iter().flatten() {
                let unhealthy = p["unhealthy"].as_array().map(|a| a.len()).unwrap_or(0);
                if p["leaders"] != json!(1) || unhealthy > 0 {
                    let list: Vec<&str> =
                        p["unhealthy"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
                    let _ = writeln!(
                        o,
                        "    partition {}: {} replicas, {} leaders{}",
                        p["id"],
                        p["replicas"],
                        p["leaders"],
                        if list.is_empty() { String::new() } else { format!("; {}", list.join(", ")) }
                    );
                }
            }
        } else {
            let _ = writeln!(o, "  REST topology    UNREACHABLE: {}", t["error"].as_str().unwrap_or("?"));
        }
        let e = &r["exporters"];
        if e["reachable"] == json!(true) {
            let list: Vec<String> = e["exporters"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{} {}", x["id"].as_str().unwrap_or("?"), x["status"].as_str().unwrap_or("?")))
                .collect();
            let _ = writeln!(o, "  exporters        {}", if list.is_empty() { "none".into() } else { list.join(", ") });
        } else {
            let _ = writeln!(o, "  exporters        UNREACHABLE: {}", e["error"].as_str().unwrap_or("?"));
        }
        let sn = &r["snapshotRepository"];
        if sn["reachable"] == json!(true) {
            let _ = writeln!(
                o,
                "  snapshot repo    {}: {}",
                sn["repository"].as_str().unwrap_or("?"),
                if sn["registered"] == json!(true) {
                    format!("registered ({})", sn["type"].as_str().unwrap_or("?"))
                } else {
                    "not registered".into()
                }
            );
        } else {
            let _ = writeln!(o, "  Elasticsearch    UNREACHABLE: {}", sn["error"].as_str().unwrap_or("?"));
        }
    }
    let ep = &s["exportingPaused"];
    let _ = writeln!(o);
    if ep["known"] == json!(true) {
        for r in ep["regions"].as_array().into_iter().flatten() {
            let paused = r["paused"] == json!(true);
            let _ = if paused {
                writeln!(
                    o,
                    "exporting, region {}: PAUSED by c8dr since {} (process instance {})",
                    r["region"],
                    r["since"].as_str().unwrap_or("?"),
                    r["processInstanceKey"].as_str().unwrap_or("?")
                )
            } else {
                writeln!(
                    o,
                    "exporting, region {}: not paused by c8dr (journal; no API reports a pause made by hand)",
                    r["region"]
                )
            };
        }
    } else {
        let _ = writeln!(o, "exporting paused: UNKNOWN (journal unreadable: {})", ep["error"].as_str().unwrap_or("?"));
    }
    let p = &s["runningProcesses"];
    if p["reachable"] == json!(true) {
        let list = p["instances"].as_array().cloned().unwrap_or_default();
        if list.is_empty() {
            let _ = writeln!(o, "running DR processes: none");
        }
        for i in list {
            let steps: Vec<String> = i["currentSteps"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|s| s["elementName"].as_str().or(s["elementId"].as_str()).unwrap_or("?").to_string())
                .collect();
            let _ = writeln!(
                o,
                "running: {} {} since {}{}; now at: {}",
                i["process"].as_str().unwrap_or("?"),
                i["processInstanceKey"].as_str().unwrap_or("?"),
                i["startedAt"].as_str().unwrap_or("?"),
                if i["hasIncident"] == json!(true) { " (INCIDENT)" } else { "" },
                if steps.is_empty() { "?".into() } else { steps.join(", ") }
            );
        }
    } else {
        let _ = writeln!(
            o,
            "running DR processes: UNKNOWN (management Camunda at {} unreachable: {})",
            p["at"].as_str().unwrap_or("?"),
            p["error"].as_str().unwrap_or("?")
        );
    }
    let d = &s["lastDrill"];
    if d.is_null() {
        let _ = writeln!(o, "last drill: none in the journal");
    } else if d.get("error").is_some() {
        let _ = writeln!(o, "last drill: UNKNOWN (journal unreadable)");
    } else {
        let rto = d["recoveryTimeSeconds"]
            .as_f64()
            .map_or("not recovered yet".to_string(), |s| format!("recovery time {s:.1} s"));
        let _ = writeln!(
            o,
            "last drill: region lost at {} (process instance {}), {}",
            d["regionLostAt"].as_str().unwrap_or("?"),
            d["processInstanceKey"].as_str().unwrap_or("?"),
            rto
        );
    }
    o
}
