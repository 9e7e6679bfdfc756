//! Notifications against a local receiver (axum on 127.0.0.1:0): payload shapes of the three
//! kinds, retries after 5xx, bounded attempts, secrets sent as headers but never in payloads,
//! variables or errors, and a required webhook failing the job.
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use c8dr::config::{NotificationsConfig, SecretRef, WebhookConfig, WebhookKind};
use c8dr::notify::{Event, Notifier, notify_step};
use c8dr::procedure::{Done, StepError, StepInput};
use serde_json::{Value, json};
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Received {
    posts: Vec<(HeaderMap, Value)>,
    /// Answer 500 to this many posts first.
    fail_first: usize,
}

type Shared = Arc<Mutex<Received>>;

async fn hook(State(s): State<Shared>, headers: HeaderMap, body: axum::Json<Value>) -> StatusCode {
    let mut r = s.lock().unwrap();
    r.posts.push((headers, body.0));
    if r.posts.len() <= r.fail_first { StatusCode::INTERNAL_SERVER_ERROR } else { StatusCode::ACCEPTED }
}

async fn receiver(fail_first: usize) -> (String, Shared) {
    let shared: Shared = Arc::new(Mutex::new(Received { posts: Vec::new(), fail_first }));
    let app = Router::new().route("/hook", post(hook)).with_state(shared.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/hook"), shared)
}

fn webhook(name: &str, kind: WebhookKind, url: &str) -> WebhookConfig {
    let mut w = c8dr::notify::generic_webhook(name, url);
    w.kind = kind;
    w
}

fn config(webhooks: Vec<WebhookConfig>, max_attempts: u32) -> NotificationsConfig {
    NotificationsConfig { webhooks, max_attempts, backoff_initial_ms: 1, backoff_max_ms: 5 }
}

fn step_failed_input() -> StepInput {
    let mut input = StepInput {
        target_name: "prod".into(),
        step: "c8dr.notify".into(),
        process_instance_key: 2251799813685249,
        element_id: "Notify_Step_Remove".into(),
        ..Default::default()
    };
    input.headers.insert("event".into(), "step-failed".into());
    input.headers.insert("name".into(), "Notify operators".into());
    input.variables.insert(
        "lastError".into(),
        json!({"code": "RETRIES_EXHAUSTED", "step": "RemoveBrokers", "message": "target unavailable: 503"}),
    );
    input
}

fn vars_of(o: Done) -> serde_json::Map<String, Value> {
    match o {
        Done::Complete { variables, .. } => variables,
        other => panic!("expected done, got {other:?}"),
    }
}

/// Unique env var names per test: tests in this binary run in parallel.
fn set_env(name: &str, value: &str) -> SecretRef {
    // SAFETY: each test sets its own variable name once, before any thread reads it.
    unsafe { std::env::set_var(name, value) };
    SecretRef::from_env(name)
}

#[tokio::test]
async fn generic_payload_carries_the_event_and_the_secret_header_but_no_secret() {
    let (url, rx) = receiver(0).await;
    let mut w = webhook("ops", WebhookKind::Generic, &url);
    w.headers.insert("Authorization".into(), set_env("C8DR_TEST_NOTIFY_AUTH_1", "Bearer s3cr3t-token"));
    let n = Notifier::new(config(vec![w], 3));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert_eq!(out["notified"], json!(true));
    assert_eq!(out["notifications"][0]["webhook"], json!("ops"));
    assert!(!Value::Object(out.clone()).to_string().contains("s3cr3t"));
    let r = rx.lock().unwrap();
    assert_eq!(r.posts.len(), 1);
    let (headers, body) = &r.posts[0];
    assert_eq!(headers["authorization"], "Bearer s3cr3t-token");
    assert_eq!(body["event"], "step-failed");
    assert_eq!(body["target"], "prod");
    assert_eq!(body["processInstanceKey"], "2251799813685249");
    assert_eq!(body["elementId"], "Notify_Step_Remove");
    assert_eq!(body["elementName"], "Notify operators");
    assert_eq!(body["severity"], "error");
    assert!(body["message"].as_str().unwrap().contains("RemoveBrokers"), "{body}");
    assert!(chrono::DateTime::parse_from_rfc3339(body["time"].as_str().unwrap()).is_ok());
    assert!(!body.to_string().contains("s3cr3t"), "secret in payload: {body}");
}

#[tokio::test]
async fn slack_payload_has_text_and_blocks() {
    let (url, rx) = receiver(0).await;
    let n = Notifier::new(config(vec![webhook("slack", WebhookKind::Slack, &url)], 3));
    notify_step(Some(&n), &step_failed_input()).await.unwrap();
    let r = rx.lock().unwrap();
    let body = &r.posts[0].1;
    assert!(body["text"].as_str().unwrap().contains("step-failed"), "{body}");
    let blocks = body["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["type"], "header");
    assert_eq!(blocks[0]["text"]["type"], "plain_text");
    assert_eq!(blocks[1]["type"], "section");
    assert!(blocks[1]["text"]["text"].as_str().unwrap().contains("RemoveBrokers"));
    assert_eq!(blocks[2]["type"], "context");
}

#[tokio::test]
async fn pagerduty_payload_is_an_events_v2_trigger_with_a_dedup_key_per_instance_and_event() {
    let (url, rx) = receiver(0).await;
    let mut w = webhook("pd", WebhookKind::Pagerduty, &url);
    w.routing_key = Some(set_env("C8DR_TEST_NOTIFY_PD_KEY", "R0UT1NGKEY0000000000000000000000"));
    let n = Notifier::new(config(vec![w], 3));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert!(!Value::Object(out).to_string().contains("R0UT1NG"), "routing key in variables");
    let r = rx.lock().unwrap();
    let body = &r.posts[0].1;
    assert_eq!(body["routing_key"], "R0UT1NGKEY0000000000000000000000");
    assert_eq!(body["event_action"], "trigger");
    assert_eq!(body["dedup_key"], "c8dr-2251799813685249-step-failed");
    assert_eq!(body["payload"]["severity"], "error");
    assert_eq!(body["payload"]["source"], "c8dr/prod");
    assert!(body["payload"]["summary"].as_str().unwrap().contains("RemoveBrokers"));
    assert!(chrono::DateTime::parse_from_rfc3339(body["payload"]["timestamp"].as_str().unwrap()).is_ok());
}

#[tokio::test]
async fn a_receiver_answering_500_is_retried_until_it_takes_the_post() {
    let (url, rx) = receiver(2).await;
    let n = Notifier::new(config(vec![webhook("ops", WebhookKind::Generic, &url)], 4));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert_eq!(out["notified"], json!(true));
    assert_eq!(out["notifications"][0]["attempts"], json!(3));
    assert_eq!(rx.lock().unwrap().posts.len(), 3);
}

#[tokio::test]
async fn a_receiver_that_keeps_failing_gets_a_bounded_number_of_tries_and_does_not_block_the_process() {
    let (url, rx) = receiver(usize::MAX).await;
    let n = Notifier::new(config(vec![webhook("ops", WebhookKind::Generic, &url)], 3));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert_eq!(out["notified"], json!(false));
    assert_eq!(out["notifications"][0]["delivered"], json!(false));
    assert_eq!(out["notifications"][0]["attempts"], json!(3));
    assert!(out["notifications"][0]["error"].as_str().unwrap().contains("500"));
    assert!(!out["notifications"][0]["error"].as_str().unwrap().contains("127.0.0.1"), "URL in the error");
    assert_eq!(rx.lock().unwrap().posts.len(), 3);
}

#[tokio::test]
async fn a_required_webhook_that_keeps_failing_fails_the_job_without_its_secrets() {
    let (url, _rx) = receiver(usize::MAX).await;
    let mut w = webhook("pager", WebhookKind::Generic, &url);
    w.required = true;
    w.headers.insert("X-Api-Key".into(), set_env("C8DR_TEST_NOTIFY_AUTH_2", "k3y-value"));
    let n = Notifier::new(config(vec![w], 2));
    match notify_step(Some(&n), &step_failed_input()).await {
        Err(StepError::Retry { message }) => {
            assert!(message.contains("pager") && message.contains("2 attempt"), "{message}");
            assert!(!message.contains("k3y") && !message.contains("127.0.0.1"), "{message}");
        }
        other => panic!("expected a job failure, got {other:?}"),
    }
}

#[tokio::test]
async fn a_4xx_is_not_retried_and_unreachable_receivers_do_not_leak_the_url() {
    // a URL that is itself a credential (Slack): given as url_secret, never shown
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener); // nothing listens there now
    let mut w = webhook("slack", WebhookKind::Slack, "http://unused");
    w.url = None;
    w.url_secret =
        Some(set_env("C8DR_TEST_NOTIFY_URL", &format!("http://127.0.0.1:{port}/services/T000/B000/XXXSECRET")));
    let n = Notifier::new(config(vec![w], 2));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert_eq!(out["notified"], json!(false));
    assert_eq!(out["notifications"][0]["attempts"], json!(2));
    assert!(!Value::Object(out).to_string().contains("XXXSECRET"));

    let app = Router::new().route("/hook", post(|| async { StatusCode::BAD_REQUEST }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let n = Notifier::new(config(vec![webhook("ops", WebhookKind::Generic, &format!("http://{addr}/hook"))], 4));
    let out = vars_of(notify_step(Some(&n), &step_failed_input()).await.unwrap());
    assert_eq!(out["notifications"][0]["attempts"], json!(1), "a 400 is a configuration error, not retried");
}

#[tokio::test]
async fn events_go_only_to_webhooks_that_want_them_and_the_outcome_carries_the_recovery_time() {
    let (url_a, rx_a) = receiver(0).await;
    let (url_b, rx_b) = receiver(0).await;
    let mut a = webhook("outcomes", WebhookKind::Generic, &url_a);
    a.events = vec!["outcome".into()];
    let mut b = webhook("other-target", WebhookKind::Generic, &url_b);
    b.targets = vec!["staging".into()];
    let n = Notifier::new(config(vec![a, b], 2));
    // not wanted by either
    notify_step(Some(&n), &step_failed_input()).await.unwrap();
    let report =
        json!({"process": "failover", "outcome": "completed", "recoveryTimeSeconds": 312.5, "outcomeReason": ""});
    let deliveries = n.send(&Event::outcome(&step_failed_input(), &report)).await;
    assert_eq!(deliveries.len(), 1);
    let r = rx_a.lock().unwrap();
    assert_eq!(r.posts.len(), 1);
    let body = &r.posts[0].1;
    assert_eq!(body["event"], "outcome");
    assert_eq!(body["severity"], "info");
    assert_eq!(body["details"]["recoveryTimeSeconds"], json!(312.5));
    assert!(body["message"].as_str().unwrap().contains("312.5 s"), "{body}");
    assert!(!body["message"].as_str().unwrap().contains("reason"), "no empty reason: {body}");
    assert!(rx_b.lock().unwrap().posts.is_empty());
}

#[tokio::test]
async fn without_webhooks_a_notification_is_only_logged() {
    let out = vars_of(notify_step(None, &step_failed_input()).await.unwrap());
    assert_eq!(out["notified"], json!(false));
    assert_eq!(out["notifications"], json!([]));
}

#[test]
fn config_refuses_inline_secrets_and_names_the_missing_pieces() {
    let inline = r#"
[[notifications.webhooks]]
name = "pd"
kind = "pagerduty"
routing_key = "R0UT1NGKEY-INLINE"
"#;
    let err = c8dr::config::Config::from_toml_str(inline, "c8dr.toml").unwrap_err().to_string();
    assert!(!err.contains("R0UT1NGKEY-INLINE"), "{err}");
    assert!(err.contains("reference"), "{err}");

    let cfg: c8dr::config::Config = toml::from_str(
        r#"
[[notifications.webhooks]]
name = "pd"
kind = "pagerduty"

[[notifications.webhooks]]
name = "slack"
kind = "slack"
headers = { "Authorization" = { env = "C8DR_TEST_UNSET_VAR" } }
"#,
    )
    .unwrap();
    let problems = cfg.validate_with_env(&Default::default()).unwrap_err();
    let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
    let has = |f: &str| text.iter().any(|t| t.starts_with(f));
    assert!(has("notifications.webhooks[0].routing_key"), "{text:#?}");
    assert!(has("notifications.webhooks[1].url"), "{text:#?}");
    assert!(has("notifications.webhooks[1].headers.Authorization"), "{text:#?}");
    assert!(!has("notifications.webhooks[0].timeout_ms"), "defaults fit in the job: {text:#?}");

    let slow: c8dr::config::Config = toml::from_str(
        r#"
[worker]
job_timeout_ms = 20000

[[notifications.webhooks]]
name = "slow"
kind = "generic"
url = "https://hooks.example/c8dr"
timeout_ms = 10000
"#,
    )
    .unwrap();
    let problems = slow.validate_with_env(&Default::default()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.field == "notifications.webhooks[0].timeout_ms" && p.problem.contains("job_timeout_ms")),
        "{problems:#?}"
    );
}
