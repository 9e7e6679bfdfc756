//! The foundation subcommands end to end: the real binary against the fake gateway.
#![cfg(feature = "rehearsal")] // the binary's full command set (the fake gateway itself is test support)
#[path = "support/fake_gateway.rs"]
mod fake_gateway;
use fake_gateway::{Call, FakeGateway, FakeServer};
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
        &[
            "start",
            "failover",
            "--target",
            "lab",
            "--lost-region",
            "1",
            "--reason",
            "drill",
            "--var",
            "verifyInterval=PT10S",
            "--initiated-by",
            "alice",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("process instance"), "{}", text(&out));
    assert!(fake.calls().contains(&Call::CreateInstance {
        bpmn_process_id: "dr-failover".into(),
        version: -1,
        variables: json!({"target": "lab", "lostRegion": 1, "reason": "drill", "verifyInterval": "PT10S", "initiatedBy": "alice"}),
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

/// 12.14: a `--var` the process does not read (a typo keeps the default silently) is refused.
#[tokio::test]
async fn start_refuses_unknown_var_names() {
    let (fake, server) = fake().await;
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &server.url(), "");
    let args = ["start", "failover", "--target", "lab", "--lost-region", "1", "--var", "approvaldue=PT2H"];
    let out = c8dr(&config, &args).await;
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("--var approvaldue") && t.contains("did you mean approvalDue"), "{t}");
    let out =
        c8dr(&config, &["start", "failback", "--target", "lab", "--recreated-region", "1", "--var", "target=x"]).await;
    assert!(!out.status.success());
    assert!(text(&out).contains("--target"), "{}", text(&out));
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::CreateInstance { .. })));
}

/// 10.6: `start` against an unreachable gateway said "is it deployed?"; it now says the gateway
/// is unreachable, names the address and the key.
#[tokio::test]
async fn start_against_an_unreachable_gateway_says_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), &url, "");
    let out =
        c8dr(&config, &["start", "failover", "--target", "lab", "--lost-region", "1", "--initiated-by", "alice"]).await;
    assert!(!out.status.success());
    let t = text(&out);
    assert!(!t.contains("deployed"), "{t}");
    assert!(t.contains("unreachable") && t.contains(&url) && t.contains("management.grpc_address"), "{t}");
}

/// 12.11: `config check` printed URLs with their credentials; it now refuses them and shows
/// neither the password nor the user info.
#[tokio::test]
async fn config_check_never_prints_credentials_in_urls() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://worker:Pa55w0rd-xyz@127.0.0.1:26500", "");
    let text_in = std::fs::read_to_string(&config)
        .unwrap()
        .replace("rest_url = \"http://127.0.0.1:1/r0\"", "rest_url = \"http://admin:Pa55w0rd-xyz@127.0.0.1:1/r0\"");
    std::fs::write(&config, text_in).unwrap();
    let out = c8dr(&config, &["config", "check"]).await;
    assert!(!out.status.success());
    let t = text(&out);
    assert!(!t.contains("Pa55w0rd-xyz"), "{t}");
    assert!(t.contains("targets.lab.regions[0].rest_url") && t.contains("rest_auth"), "{t}");
    assert!(t.contains("management.grpc_address"), "{t}");
    // topology refuses before connecting, without echo
    let out = c8dr(&config, &["topology"]).await;
    assert!(!out.status.success());
    assert!(!text(&out).contains("Pa55w0rd-xyz"), "{}", text(&out));
}

/// 10.6: log lines carry no colour codes when stderr is not a terminal.
#[tokio::test]
async fn logs_have_no_ansi_codes_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let config = write_config(dir.path(), &url, "");
    // the worker logs at start-up, then is stopped
    let mut child = tokio::process::Command::new(bin())
        .arg("--config")
        .arg(&config)
        .arg("worker")
        .env_remove("C8DR_CONFIG")
        .env_remove("NO_COLOR")
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stderr));
    let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line()).await.unwrap().unwrap().unwrap();
    child.start_kill().unwrap();
    let _ = child.wait().await;
    assert!(line.contains("INFO"), "{line}");
    assert!(!line.contains('\u{1b}'), "ANSI escape in a piped log line: {line:?}");
}

/// 10.6 and 12.10: a wrong REST password names `rest_auth`; OAuth client credentials for a
/// target fetch a token, send it, and refresh it once on 401.
#[tokio::test]
async fn target_rest_auth_errors_name_the_key_and_oauth_refreshes_once() {
    use axum::routing::{get, post};
    use c8dr::config::{HttpAuth, SecretRef};
    use c8dr::region_api::{HttpAuthResolved, RestClient};
    use std::sync::{Arc, Mutex};
    let tokens = Arc::new(Mutex::new(0u32));
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let (t, s) = (tokens.clone(), seen.clone());
    let refused = Arc::new(Mutex::new(0u32));
    let r = refused.clone();
    let app = axum::Router::new()
        .route(
            "/token-refusing",
            post(move || {
                let r = r.clone();
                async move {
                    *r.lock().unwrap() += 1;
                    (axum::http::StatusCode::UNAUTHORIZED, "invalid_client")
                }
            }),
        )
        .route(
            "/token",
            post(move || {
                let t = t.clone();
                async move {
                    let mut n = t.lock().unwrap();
                    *n += 1;
                    axum::Json(json!({"access_token": format!("tok{n}"), "expires_in": 3600}))
                }
            }),
        )
        .route(
            "/v2/topology",
            get(move |headers: axum::http::HeaderMap| {
                let s = s.clone();
                async move {
                    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                    s.lock().unwrap().push(auth.clone());
                    // the first token is "revoked": only tok2 is accepted
                    if auth == "Bearer tok2" {
                        axum::Json(json!({"brokers": [], "clusterSize": 0, "partitionsCount": 0, "replicationFactor": 0, "gatewayVersion": "8.8.0", "lastCompletedChangeId": "-1"})).into_response()
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, "bad credentials").into_response()
                    }
                }
            }),
        );
    use axum::response::IntoResponse;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // SAFETY: test-only variables with unique names.
    unsafe {
        std::env::set_var("C8DR_TEST_REST_PW", "wrong-password-123");
        std::env::set_var("C8DR_TEST_REST_OAUTH", "client-secret-456");
    }
    let basic = HttpAuth::Basic { username: "demo".into(), password: SecretRef::from_env("C8DR_TEST_REST_PW") };
    let rest = RestClient::new(&base, HttpAuthResolved::resolve(&basic).unwrap(), Duration::from_secs(5)).unwrap();
    let e = rest.topology().await.unwrap_err().to_string();
    assert!(e.contains("rest_auth") && e.contains("HTTP 401"), "{e}");
    assert!(!e.contains("wrong-password-123"), "{e}");

    let oauth = HttpAuth::Oauth {
        client_id: "c8dr".into(),
        client_secret: SecretRef::from_env("C8DR_TEST_REST_OAUTH"),
        authorization_server_url: format!("{base}/token"),
        audience: Some("orchestration-api".into()),
        scope: None,
    };
    let rest = RestClient::new(&base, HttpAuthResolved::resolve(&oauth).unwrap(), Duration::from_secs(5)).unwrap();
    rest.topology().await.unwrap();
    rest.topology().await.unwrap();
    assert_eq!(*tokens.lock().unwrap(), 2, "one token, one refresh after the 401, then cached");
    assert_eq!(seen.lock().unwrap()[1..], ["Bearer tok1", "Bearer tok2", "Bearer tok2"]);

    // an identity provider refusing the client: the error names rest_auth, never the secret,
    // and the next call within the back-off does not ask again
    let refusing = HttpAuth::Oauth {
        client_id: "c8dr".into(),
        client_secret: SecretRef::from_env("C8DR_TEST_REST_OAUTH"),
        authorization_server_url: format!("{base}/token-refusing"),
        audience: None,
        scope: None,
    };
    let rest = RestClient::new(&base, HttpAuthResolved::resolve(&refusing).unwrap(), Duration::from_secs(5)).unwrap();
    let e = rest.topology().await.unwrap_err();
    let shown = e.to_string();
    assert_eq!(e.kind, c8dr::region_api::ErrorKind::Unauthorized, "{shown}");
    assert!(shown.contains("rest_auth") && shown.contains("HTTP 401"), "{shown}");
    assert!(!shown.contains("client-secret-456"), "{shown}");
    assert!(rest.topology().await.is_err());
    assert_eq!(*refused.lock().unwrap(), 1, "a refused token request is backed off");
}

/// 12.14: a namespace that matches no broker host silently disabled the split-brain host check.
/// `config check --online` reads the live topology and names it.
#[tokio::test]
async fn config_check_online_names_a_namespace_that_matches_no_broker_host() {
    use axum::routing::get;
    let topology = || async {
        axum::Json(json!({
            "brokers": [
                {"nodeId": 0, "host": "camunda-zeebe-0.camunda-zeebe.camunda-a.svc", "port": 26501, "partitions": [], "version": "8.8.0"},
                {"nodeId": 1, "host": "camunda-zeebe-0.camunda-zeebe.camunda-b.svc", "port": 26501, "partitions": [], "version": "8.8.0"}
            ],
            "clusterSize": 2, "partitionsCount": 1, "replicationFactor": 2, "gatewayVersion": "8.8.0",
            "lastCompletedChangeId": "-1"
        }))
    };
    let app = axum::Router::new().route("/r0/v2/topology", get(topology)).route("/r1/v2/topology", get(topology));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let dir = tempfile::tempdir().unwrap();
    let write = |ns1: &str| {
        let path = write_config(dir.path(), "http://127.0.0.1:26500", "");
        let text = std::fs::read_to_string(&path)
            .unwrap()
            .replace(
                "rest_url = \"http://127.0.0.1:1/r0\"",
                &format!("rest_url = \"{base}/r0\"\nnamespace = \"camunda-a\""),
            )
            .replace(
                "rest_url = \"http://127.0.0.1:1/r1\"",
                &format!("rest_url = \"{base}/r1\"\nnamespace = \"{ns1}\""),
            );
        std::fs::write(&path, text).unwrap();
        path
    };
    let bad = write("camunda-x");
    // offline, nothing can tell
    let out = c8dr(&bad, &["config", "check"]).await;
    assert!(out.status.success(), "{}", text(&out));
    let out = c8dr(&bad, &["config", "check", "--online"]).await;
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("targets.lab.regions[1].namespace") && t.contains("matches no broker host"), "{t}");
    assert!(!t.contains("regions[0].namespace"), "{t}");
    let good = write("camunda-b");
    let out = c8dr(&good, &["config", "check", "--online"]).await;
    assert!(out.status.success(), "{}", text(&out));
}

/// Issue 10.4: with four-eyes on, `start` refuses to start a process nobody is known to have
/// started (no --initiated-by, no $USER/$LOGNAME): every approval would be denied later.
#[tokio::test]
async fn start_without_an_initiator_is_refused_under_four_eyes() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "http://127.0.0.1:9", "");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(bin())
            .arg("--config")
            .arg(&config)
            .args(["start", "failover", "--target", "lab", "--lost-region", "1"])
            .env_remove("C8DR_CONFIG")
            .env_remove("USER")
            .env_remove("LOGNAME")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(!out.status.success());
    let t = text(&out);
    assert!(t.contains("--initiated-by") && t.contains("four-eyes"), "{t}");
}
