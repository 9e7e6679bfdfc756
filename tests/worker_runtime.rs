//! The job worker runtime against the in-process fake gateway.
use c8dr::config::{ManagementConfig, WorkerConfig};
#[path = "support/fake_gateway.rs"]
mod fake_gateway;
use c8dr::zeebe::{GatewayClient, JobOutcome, Worker, WorkerHandle, handler_fn};
use fake_gateway::{Call, FakeGateway, FakeServer, Via};
use serde_json::{Map, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::oneshot;

const WAIT: Duration = Duration::from_secs(10);

async fn setup() -> (FakeGateway, FakeServer, GatewayClient) {
    let fake = FakeGateway::new();
    let server = fake.serve().await.expect("fake gateway binds");
    let mgmt = ManagementConfig { grpc_address: server.url(), request_timeout_ms: 5_000, ..Default::default() };
    let client = GatewayClient::connect(&mgmt).expect("client");
    (fake, server, client)
}

fn fast_config() -> WorkerConfig {
    WorkerConfig {
        name: "test-worker".into(),
        max_jobs_active: 4,
        job_timeout_ms: 10_000,
        stream_enabled: true,
        request_timeout_ms: 200,
        poll_interval_ms: 20,
        backoff_min_ms: 10,
        backoff_max_ms: 50,
        shutdown_grace_ms: 5_000,
        fail_retry_backoff_ms: 1_234,
        transient_retry: Default::default(),
        metrics_address: String::new(),
        ..WorkerConfig::default()
    }
}

fn complete_empty() -> JobOutcome {
    JobOutcome::Complete(Map::new())
}

fn stop_signal() -> (oneshot::Sender<()>, impl std::future::Future<Output = ()> + Send + 'static) {
    let (tx, rx) = oneshot::channel::<()>();
    (tx, async move {
        let _ = rx.await;
    })
}

fn count(calls: &[Call], f: impl Fn(&Call) -> bool) -> usize {
    calls.iter().filter(|c| f(c)).count()
}

#[tokio::test]
async fn jobs_enqueued_before_the_stream_opens_are_delivered_by_poll() {
    let (fake, _server, client) = setup().await;
    let key = fake.enqueue("c8dr.x", json!({"a": 1}));
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(|job| async move {
                let mut out = Map::new();
                out.insert("seen".into(), job.variables["a"].clone());
                JobOutcome::Complete(out)
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    assert!(fake.wait_for(WAIT, |c| c.contains(&Call::Complete { key, variables: json!({"seen": 1}) })).await);
    assert!(fake.calls().contains(&Call::Delivered { key, via: Via::Poll }));
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn jobs_enqueued_while_the_stream_is_open_are_pushed_by_the_stream() {
    let (fake, _server, client) = setup().await;
    let worker =
        Worker::builder(client, fast_config()).handler("c8dr.x", handler_fn(|_| async { complete_empty() })).build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::StreamOpened { .. }))).await);
    let key = fake.enqueue("c8dr.x", json!({}));
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Complete { key: k, .. } if *k == key))).await);
    assert!(fake.calls().contains(&Call::Delivered { key, via: Via::Stream }));
    // The stream is reopened after the gateway closes it.
    fake.close_streams();
    assert!(fake.wait_for(WAIT, |c| count(c, |c| matches!(c, Call::StreamOpened { .. })) >= 2).await);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn never_more_than_max_jobs_active_handlers_run() {
    let (fake, _server, client) = setup().await;
    let mut cfg = fast_config();
    cfg.max_jobs_active = 3;
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let worker = Worker::builder(client, cfg)
        .handler(
            "c8dr.x",
            handler_fn(move |_| {
                let (r, p) = (r.clone(), p.clone());
                async move {
                    let now = r.fetch_add(1, Ordering::SeqCst) + 1;
                    p.fetch_max(now, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    r.fetch_sub(1, Ordering::SeqCst);
                    JobOutcome::Complete(Map::new())
                }
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    for _ in 0..12 {
        fake.enqueue("c8dr.x", json!({}));
    }
    assert!(fake.wait_for(WAIT, |c| count(c, |c| matches!(c, Call::Complete { .. })) == 12).await);
    let peak = peak.load(Ordering::SeqCst);
    assert!((1..=3).contains(&peak), "peak concurrency {peak}");
    // Polls never ask for more than the free slots.
    for c in fake.calls() {
        if let Call::ActivateJobs { max_jobs, .. } = c {
            assert!((1..=3).contains(&max_jobs), "asked for {max_jobs}");
        }
    }
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn backs_off_after_unavailable_and_recovers() {
    let (fake, _server, client) = setup().await;
    let mut cfg = fast_config();
    cfg.stream_enabled = false;
    fake.fail_next(&["ActivateJobs"], tonic::Code::Unavailable, 3);
    fake.fail_next(&["ActivateJobs"], tonic::Code::ResourceExhausted, 2);
    let key = fake.enqueue("c8dr.x", json!({}));
    let worker = Worker::builder(client, cfg).handler("c8dr.x", handler_fn(|_| async { complete_empty() })).build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Complete { key: k, .. } if *k == key))).await);
    let calls = fake.calls();
    assert_eq!(count(&calls, |c| matches!(c, Call::Rejected { code: tonic::Code::Unavailable, .. })), 3);
    assert_eq!(count(&calls, |c| matches!(c, Call::Rejected { code: tonic::Code::ResourceExhausted, .. })), 2);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn a_failure_sends_retries_minus_one_and_the_retry_backoff() {
    let (fake, _server, client) = setup().await;
    let k1 = fake.enqueue("c8dr.x", json!({"explicit": true}));
    let k2 = fake.enqueue("c8dr.x", json!({"explicit": false}));
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(|job| async move {
                let explicit = job.variables["explicit"].as_bool().unwrap_or(false);
                JobOutcome::fail("target unreachable", explicit.then(|| Duration::from_millis(777)))
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    assert!(fake.wait_for(WAIT, |c| count(c, |c| matches!(c, Call::Fail { .. })) == 2).await);
    let calls = fake.calls();
    assert!(calls.contains(&Call::Fail {
        key: k1,
        retries: 2,
        message: "target unreachable".into(),
        retry_backoff_ms: 777
    }));
    // Without an explicit back-off, worker.fail_retry_backoff_ms is sent.
    assert!(calls.contains(&Call::Fail {
        key: k2,
        retries: 2,
        message: "target unreachable".into(),
        retry_backoff_ms: 1_234
    }));
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn a_bpmn_error_is_thrown_with_code_message_and_variables() {
    let (fake, _server, client) = setup().await;
    let key = fake.enqueue("c8dr.x", json!({}));
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(|_| async {
                let mut vars = Map::new();
                vars.insert("lastError".into(), json!({"code": "INVALID_INPUT"}));
                JobOutcome::BpmnError {
                    code: "INVALID_INPUT".into(),
                    message: "lostRegion must be 0 or 1".into(),
                    variables: vars,
                }
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    let expected = Call::ThrowError {
        key,
        code: "INVALID_INPUT".into(),
        message: "lostRegion must be 0 or 1".into(),
        variables: json!({"lastError": {"code": "INVALID_INPUT"}}),
    };
    assert!(fake.wait_for(WAIT, |c| c.contains(&expected)).await);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn a_slow_handler_gets_its_timeout_extended_while_it_runs() {
    let (fake, _server, client) = setup().await;
    let mut cfg = fast_config();
    cfg.job_timeout_ms = 100;
    let key = fake.enqueue("c8dr.x", json!({}));
    let (release_tx, release_rx) = tokio::sync::watch::channel(false);
    let worker = Worker::builder(client, cfg)
        .handler(
            "c8dr.x",
            handler_fn(move |_| {
                let mut rx = release_rx.clone();
                async move {
                    let _ = rx.wait_for(|r| *r).await;
                    JobOutcome::Complete(Map::new())
                }
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    // Extended at half the timeout, again and again while the handler runs.
    assert!(fake.wait_for(WAIT, |c| count(c, |c| *c == Call::UpdateTimeout { key, timeout_ms: 100 }) >= 2).await);
    release_tx.send(true).unwrap();
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Complete { key: k, .. } if *k == key))).await);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn shutdown_lets_in_flight_jobs_finish_and_stops_activation() {
    let (fake, _server, client) = setup().await;
    let started = Arc::new(AtomicUsize::new(0));
    let s = started.clone();
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(move |_| {
                let s = s.clone();
                async move {
                    s.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    JobOutcome::Complete(Map::new())
                }
            }),
        )
        .build();
    let k1 = fake.enqueue("c8dr.x", json!({}));
    let k2 = fake.enqueue("c8dr.x", json!({}));
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    while started.load(Ordering::SeqCst) < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    handle.join().await.unwrap();
    // Both jobs in flight at shutdown were completed before run() returned.
    let calls = fake.calls();
    for key in [k1, k2] {
        assert!(calls.iter().any(|c| matches!(c, Call::Complete { key: k, .. } if *k == key)), "{key} not completed");
    }
    // Activation stopped: a job enqueued now stays queued.
    fake.enqueue("c8dr.x", json!({}));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(fake.queued("c8dr.x"), 1);
}

#[tokio::test]
async fn a_handler_panic_fails_that_job_and_the_worker_keeps_going() {
    let (fake, _server, client) = setup().await;
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(|job| async move {
                if job.variables["boom"] == json!(true) {
                    panic!("boom in handler");
                }
                JobOutcome::Complete(Map::new())
            }),
        )
        .build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    let bad = fake.enqueue("c8dr.x", json!({"boom": true}));
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Fail { key, message, retries: 2, .. } if *key == bad && message.contains("boom in handler")))).await);
    let good = fake.enqueue("c8dr.x", json!({"boom": false}));
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Complete { key, .. } if *key == good))).await);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn not_found_on_complete_is_not_fatal() {
    let (fake, _server, client) = setup().await;
    fake.fail_next(&["CompleteJob"], tonic::Code::NotFound, 1);
    let worker =
        Worker::builder(client, fast_config()).handler("c8dr.x", handler_fn(|_| async { complete_empty() })).build();
    let (stop, shutdown) = stop_signal();
    let handle = worker.spawn(shutdown);
    fake.enqueue("c8dr.x", json!({}));
    assert!(
        fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Rejected { code: tonic::Code::NotFound, .. })))
            .await
    );
    let next = fake.enqueue("c8dr.x", json!({}));
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Complete { key, .. } if *key == next))).await);
    // NOT_FOUND is not retried.
    assert_eq!(count(&fake.calls(), |c| matches!(c, Call::Complete { .. })), 1);
    stop.send(()).unwrap();
    handle.join().await.unwrap();
}

#[tokio::test]
async fn abort_kills_running_handlers_like_a_crash() {
    let (fake, _server, client) = setup().await;
    let finished = Arc::new(AtomicUsize::new(0));
    let f = finished.clone();
    let worker = Worker::builder(client, fast_config())
        .handler(
            "c8dr.x",
            handler_fn(move |_| {
                let f = f.clone();
                async move {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    f.fetch_add(1, Ordering::SeqCst);
                    JobOutcome::Complete(Map::new())
                }
            }),
        )
        .build();
    let (_stop, shutdown) = stop_signal();
    let handle: WorkerHandle = worker.spawn(shutdown);
    let key = fake.enqueue("c8dr.x", json!({}));
    assert!(fake.wait_for(WAIT, |c| c.iter().any(|c| matches!(c, Call::Delivered { key: k, .. } if *k == key))).await);
    handle.abort();
    handle.join().await.unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(finished.load(Ordering::SeqCst), 0, "the handler kept running after abort");
    assert!(!fake.calls().iter().any(|c| matches!(c, Call::Complete { .. })));
}

/// The most calls a back-off schedule allows within `elapsed`: one at once, then one after
/// each delay (`min`, ×1.6 up to `max`, each at least 90% of its base because of the jitter).
fn schedule_bound(elapsed: Duration, min: Duration, max: Duration) -> usize {
    let mut calls = 1;
    let mut at = Duration::ZERO;
    let mut base = min;
    loop {
        at += base.mul_f64(0.9);
        if at > elapsed {
            return calls;
        }
        calls += 1;
        base = base.mul_f64(1.6).min(max);
    }
}

const MANY_TYPES: usize = 20;

fn many_handlers(client: GatewayClient, cfg: WorkerConfig) -> Worker {
    let mut b = Worker::builder(client, cfg);
    for i in 0..MANY_TYPES {
        b = b.handler(format!("c8dr.t{i}"), handler_fn(|_| async { complete_empty() }));
    }
    b.build()
}

/// 12.13: a token endpoint answering 401 got 602 requests in 15 s from one worker (every loop
/// of every job type asked on its own). Now failed token requests back off in one place.
#[tokio::test]
async fn a_rejecting_token_endpoint_is_not_hammered() {
    use axum::routing::post;
    use c8dr::config::SecretRef;
    use c8dr::zeebe::auth::{Credentials, OAuthProvider, OAuthSettings};
    let (hits_tx, mut hits) = tokio::sync::watch::channel(0usize);
    let hits_tx = Arc::new(hits_tx);
    let app = axum::Router::new().route(
        "/token",
        post(move || {
            let hits_tx = hits_tx.clone();
            async move {
                hits_tx.send_modify(|n| *n += 1);
                (axum::http::StatusCode::UNAUTHORIZED, "invalid_client")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let token_url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // SAFETY: test-only variable with a unique name.
    unsafe { std::env::set_var("C8DR_TEST_WORKER_TOKEN_SECRET", "not-the-right-one") };

    let fake = FakeGateway::new();
    let server = fake.serve().await.unwrap();
    let (min, max) = (Duration::from_millis(100), Duration::from_millis(400));
    let provider = OAuthProvider::new(OAuthSettings {
        token_url,
        client_id: "c8dr".into(),
        client_secret: SecretRef::from_env("C8DR_TEST_WORKER_TOKEN_SECRET"),
        audience: None,
        scope: None,
    })
    .unwrap()
    .with_failure_backoff(min, max);
    let mgmt = ManagementConfig { grpc_address: server.url(), request_timeout_ms: 5_000, ..Default::default() };
    let client = GatewayClient::with_credentials(&mgmt, Credentials::OAuth(Box::new(provider))).unwrap();

    let started = std::time::Instant::now();
    let (stop, shutdown) = stop_signal();
    let handle = many_handlers(client, fast_config()).spawn(shutdown);
    // wait (bounded) until the endpoint was asked a few times, then stop
    let _ = tokio::time::timeout(WAIT, hits.wait_for(|n| *n >= 3)).await;
    stop.send(()).unwrap();
    handle.join().await.unwrap();
    let elapsed = started.elapsed();
    let requests = *hits.borrow();
    let bound = schedule_bound(elapsed, min, max);
    assert!(requests >= 3, "the token endpoint was asked {requests} times in {elapsed:?}");
    assert!(
        requests <= bound,
        "{requests} token requests in {elapsed:?} from {MANY_TYPES} job types; the back-off allows at most {bound}"
    );
    // no gateway call went out without a token
    assert!(fake.calls().is_empty(), "{:?}", fake.calls());
}

/// 12.13: an unreachable gateway got one call per loop per local back-off (746 WARN lines in
/// 30 s). Now connection errors close one gate for all loops: one probe per back-off step.
#[tokio::test]
async fn an_unavailable_gateway_gets_one_probe_per_backoff_step() {
    let (fake, _server, client) = setup().await;
    fake.fail_next(&["ActivateJobs", "StreamActivatedJobs"], tonic::Code::Unavailable, 100_000);
    let cfg = WorkerConfig { backoff_min_ms: 20, backoff_max_ms: 50, ..fast_config() };
    let loops = 2 * MANY_TYPES; // a stream and a poll loop per job type
    let started = std::time::Instant::now();
    let (stop, shutdown) = stop_signal();
    let handle = many_handlers(client, cfg).spawn(shutdown);
    let rejected = |c: &[Call]| count(c, |c| matches!(c, Call::Rejected { code: tonic::Code::Unavailable, .. }));
    assert!(fake.wait_for(WAIT, |c| rejected(c) >= loops + 4).await, "the gateway was not retried");
    stop.send(()).unwrap();
    handle.join().await.unwrap();
    let elapsed = started.elapsed();
    let calls = rejected(&fake.calls());
    // every loop may have had one call in flight when the gate closed; after that, one probe per
    // step of the shared schedule (20 ms, x1.6, up to 30 s)
    let bound = loops + schedule_bound(elapsed, Duration::from_millis(20), c8dr::zeebe::worker::CONNECTION_BACKOFF_MAX);
    assert!(
        calls <= bound,
        "{calls} calls in {elapsed:?} from {loops} loops; the shared back-off allows at most {bound}"
    );
}
