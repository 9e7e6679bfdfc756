//! The foundation subcommands end to end: the real binary against the fake gateway.
use c8dr::zeebe::fake_gateway::{Call, FakeGateway, FakeServer};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_c8dr")
}

fn write_config(dir: &Path, grpc: &str, extra: &str) -> PathBuf {
    let path = dir.join("c8dr.toml");
    let text = format!(
        r#"
[management]
grpc_address = "{grpc}"

[worker]
metrics_address = ""

[journal]
path = "{journal}"

[targets.lab]
drill_allowed = true
[targets.lab.helm]
chart_version = "13.0.0"
base_values = ["values.yml"]
region_values = [["r0.yml"], ["r1.yml"]]

[[targets.lab.regions]]
name = "region-0"
management_url = "http://127.0.0.1:1/r0"
rest_url = "http://127.0.0.1:1/r0"
elasticsearch_url = "http://127.0.0.1:1/r0"

[[targets.lab.regions]]
name = "region-1"
management_url = "http://127.0.0.1:1/r1"
rest_url = "http://127.0.0.1:1/r1"
elasticsearch_url = "http://127.0.0.1:1/r1"
{extra}"#,
        journal = dir.join("journal.jsonl").display()
    );
    std::fs::write(&path, text).unwrap();
    path
}

async fn c8dr(config: &Path, args: &[&str]) -> Output {
    let config = config.to_path_buf();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config")
            .arg(&config)
            .args(&args)
            .env_remove("C8DR_CONFIG")
            .env_remove("CAMUNDA_GRPC_ADDRESS")
            .env_remove("ZEEBE_ADDRESS")
            .env_remove("CAMUNDA_CLIENT_ID")
            .env_remove("ZEEBE_CLIENT_ID")
            .output()
            .unwrap()
    })
    .await
    .unwrap()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

async fn fake() -> (FakeGateway, FakeServer) {
    let fake = FakeGateway::new();
    let server = fake.serve().await.unwrap();
    (fake, server)
}

#[tokio::test]
async fn config_check_prints_a_summary_or_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let good = write_config(dir.path(), "http://127.0.0.1:26500", "");
    let out = c8dr(&good, &["config", "check"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("configuration OK"));

    let bad = write_config(dir.path(), "nonsense", "\n[targets.other]\ncluster_size = 3\nregions = []\n");
    let out = c8dr(&bad, &["config", "check"]).await;
    assert!(!out.status.success());
    let t = text(&out);
    for needle in ["management.grpc_address", "targets.other.regions", "targets.other.cluster_size"] {
        assert!(t.contains(needle), "{needle} missing in {t}");
    }

    let missing = dir.path().join("absent.toml");
    let out = c8dr(&missing, &["config", "check"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("does not exist"), "{}", text(&out));
}

#[tokio::test]
async fn deploy_start_drill_and_topology_talk_to_the_gateway() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.url(), "");
    let bpmn = dir.path().join("bpmn");
    std::fs::create_dir_all(bpmn.join("forms")).unwrap();
    std::fs::write(bpmn.join("dr-failover.bpmn"), "<definitions/>").unwrap();
    std::fs::write(bpmn.join("forms/c8dr-manual-step.form"), "{}").unwrap();
    std::fs::write(bpmn.join("README.md"), "not deployed").unwrap();

    let out = c8dr(&config, &["deploy", bpmn.to_str().unwrap()]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("dr-failover"), "{}", text(&out));
    assert!(
        fake.calls()
            .contains(&Call::Deploy { names: vec!["dr-failover.bpmn".into(), "forms/c8dr-manual-step.form".into()] })
    );

    let out = c8dr(
        &config,
        &["start", "failover", "--target", "lab", "--lost-region", "1", "--reason", "drill", "--var", "canaryCount=3"],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("process instance"), "{}", text(&out));
    assert!(fake.calls().contains(&Call::CreateInstance {
        bpmn_process_id: "dr-failover".into(),
        version: -1,
        variables: json!({"target": "lab", "lostRegion": 1, "reason": "drill", "canaryCount": 3}),
    }));

    let out = c8dr(&config, &["start", "failback", "--target", "nope", "--recreated-region", "0"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("not in the configuration"), "{}", text(&out));
    let out = c8dr(&config, &["start", "failback", "--target", "lab", "--recreated-region", "2"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("0 or 1"), "{}", text(&out));

    let out = c8dr(&config, &["drill", "trigger", "--target", "lab", "--lost-region", "0", "--auto-approve"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let published: Vec<Call> = fake.calls().into_iter().filter(|c| matches!(c, Call::PublishMessage { .. })).collect();
    match published.as_slice() {
        [Call::PublishMessage { name, correlation_key, ttl_ms, message_id, variables }] => {
            assert_eq!(name, "c8dr-drill");
            assert_eq!(correlation_key, "lab");
            assert_eq!(*ttl_ms, 3_600_000);
            assert!(!message_id.is_empty());
            assert_eq!(
                variables,
                &json!({"target": "lab", "lostRegion": 0, "approverGroup": "dr-operators", "autoApprove": true})
            );
        }
        other => panic!("expected one PublishMessage, got {other:?}"),
    }

    let out = c8dr(&config, &["topology"]).await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("1:L"), "{}", text(&out));
}

#[tokio::test]
async fn an_unreachable_gateway_is_named_with_the_fix() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &url, "");
    let out = c8dr(&config, &["topology"]).await;
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("unreachable") && t.contains("management.grpc_address"), "{t}");
}

#[tokio::test]
async fn the_worker_serves_health_metrics_and_stops_on_sigterm() {
    let (_fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = write_config(dir.path(), &server.url(), "");
    let text_cfg = std::fs::read_to_string(&config)
        .unwrap()
        .replace("metrics_address = \"\"", &format!("metrics_address = \"127.0.0.1:{port}\""));
    std::fs::write(&config, text_cfg).unwrap();
    let mut child = tokio::process::Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("worker")
        .env_remove("C8DR_CONFIG")
        .kill_on_drop(true)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut ready = false;
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/readyz")).send().await
            && r.status() == 200
        {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ready, "/readyz never answered 200");
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = http.get(format!("{base}/metrics")).send().await.unwrap().text().await.unwrap();
    let registered = format!("c8dr_worker_handlers {}", c8dr::jobs::JOB_TYPES.len());
    assert!(metrics.contains(&registered), "every c8dr job type is registered: {metrics}");

    let pid = child.id().unwrap().to_string();
    let killed = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(killed.success());
    let status =
        tokio::time::timeout(Duration::from_secs(20), child.wait()).await.expect("worker did not stop").unwrap();
    assert!(status.success(), "worker exit status {status}");
}
