//! The gateway client: typed RPCs, errors, Basic and OAuth credentials (token fetch, cache,
//! refresh once on UNAUTHENTICATED) against the fake gateway and a local token endpoint.
use axum::extract::State;
use axum::routing::post;
use c8dr::config::{AuthConfig, ManagementConfig, SecretRef};
#[path = "support/fake_gateway.rs"]
mod fake_gateway;
use c8dr::zeebe::{ClientError, GatewayClient, Message};
use fake_gateway::{Call, FakeGateway, FakeServer};
use serde_json::{Map, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

async fn fake() -> (FakeGateway, FakeServer) {
    let fake = FakeGateway::new();
    let server = fake.serve().await.unwrap();
    (fake, server)
}

fn mgmt(url: &str, auth: AuthConfig) -> ManagementConfig {
    ManagementConfig { grpc_address: url.to_string(), auth, request_timeout_ms: 5_000, ..Default::default() }
}

/// A token endpoint that hands out `t1`, `t2`, ... and records each form it received.
#[derive(Clone, Default)]
struct TokenEndpoint {
    forms: Arc<Mutex<Vec<HashMap<String, String>>>>,
    expires_in: u64,
}

async fn token(
    State(s): State<TokenEndpoint>,
    axum::Form(form): axum::Form<HashMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    if form.get("client_secret").map(String::as_str) != Some("s3cret") {
        return (axum::http::StatusCode::UNAUTHORIZED, "invalid_client").into_response();
    }
    let mut forms = s.forms.lock().unwrap();
    forms.push(form);
    axum::Json(json!({"access_token": format!("t{}", forms.len()), "expires_in": s.expires_in, "token_type": "Bearer"}))
        .into_response()
}

async fn token_endpoint(expires_in: u64) -> (TokenEndpoint, String) {
    let state = TokenEndpoint { expires_in, ..Default::default() };
    let app = axum::Router::new().route("/token", post(token)).with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/token", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (state, url)
}

fn oauth(url: &str, secret_var: &str) -> AuthConfig {
    AuthConfig::Oauth {
        client_id: "c8dr".into(),
        client_secret: SecretRef::from_env(secret_var),
        authorization_server_url: url.into(),
        audience: Some("zeebe-api".into()),
        scope: Some("camunda".into()),
    }
}

#[tokio::test]
async fn typed_calls_reach_the_gateway() {
    let (fake, server) = fake().await;
    let client = GatewayClient::connect(&mgmt(&server.url(), AuthConfig::None)).unwrap();
    let topo = client.topology().await.unwrap();
    assert_eq!(topo.brokers.len(), 1);
    let deployed = client
        .deploy_resources(vec![("dr-failover.bpmn".into(), b"<x/>".to_vec()), ("approve.form".into(), b"{}".to_vec())])
        .await
        .unwrap();
    assert_eq!(deployed.resources.len(), 2);
    let mut vars = Map::new();
    vars.insert("target".into(), json!("prod"));
    let created = client.create_process_instance("dr-failover", &vars).await.unwrap();
    assert!(created.process_instance_key > 0);
    client
        .publish_message(&Message {
            name: "c8dr-drill".into(),
            correlation_key: "prod".into(),
            time_to_live: Duration::from_secs(3600),
            message_id: Some("m1".into()),
            variables: vars.clone(),
        })
        .await
        .unwrap();
    client.cancel_process_instance(5).await.unwrap();
    client.set_variables(6, &vars, true).await.unwrap();
    client.resolve_incident(7).await.unwrap();
    client.update_job_retries(8, 3).await.unwrap();
    client.complete_job(9, &vars).await.unwrap();
    client.fail_job(10, 2, "boom", Some(Duration::from_millis(500))).await.unwrap();
    client.throw_error(11, "CODE", "msg", &Map::new()).await.unwrap();
    client.update_job_timeout(12, Duration::from_secs(60)).await.unwrap();
    let calls = fake.calls();
    assert!(calls.contains(&Call::CreateInstance {
        bpmn_process_id: "dr-failover".into(),
        version: -1,
        variables: json!({"target": "prod"})
    }));
    assert!(calls.contains(&Call::PublishMessage {
        name: "c8dr-drill".into(),
        correlation_key: "prod".into(),
        ttl_ms: 3_600_000,
        message_id: "m1".into(),
        variables: json!({"target": "prod"}),
    }));
    assert!(calls.contains(&Call::Fail { key: 10, retries: 2, message: "boom".into(), retry_backoff_ms: 500 }));
    assert!(calls.contains(&Call::UpdateTimeout { key: 12, timeout_ms: 60_000 }));
    assert!(calls.contains(&Call::Deploy { names: vec!["dr-failover.bpmn".into(), "approve.form".into()] }));
}

#[tokio::test]
async fn errors_name_the_cause() {
    // Nothing listens on this port: unreachable gateway.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = GatewayClient::connect(&mgmt(&url, AuthConfig::None)).unwrap();
    let err = client.topology().await.unwrap_err();
    assert!(matches!(err, ClientError::Unavailable { .. }), "{err:?}");
    assert!(err.to_string().contains("unreachable") && err.to_string().contains("grpc_address"), "{err}");
    assert!(err.is_retryable());

    let bad = GatewayClient::connect(&mgmt("ftp://x:1", AuthConfig::None)).unwrap_err();
    assert!(matches!(bad, ClientError::InvalidAddress { .. }), "{bad:?}");

    let (fake, server) = fake().await;
    let client = GatewayClient::connect(&mgmt(&server.url(), AuthConfig::None)).unwrap();
    fake.fail_next(&["CompleteJob"], tonic::Code::NotFound, 1);
    assert!(matches!(client.complete_job(1, &Map::new()).await.unwrap_err(), ClientError::NotFound { .. }));
    fake.fail_next(&["CreateProcessInstance"], tonic::Code::InvalidArgument, 1);
    let e = client.create_process_instance("x", &Map::new()).await.unwrap_err();
    assert!(matches!(e, ClientError::InvalidArgument { .. }) && !e.is_retryable());
    fake.accept_authorizations(Some(vec!["Bearer nope".into()]));
    let e = client.topology().await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthenticated { .. }) && e.to_string().contains("management.auth"), "{e}");
}

#[tokio::test]
async fn basic_auth_sends_base64_user_and_password() {
    // SAFETY: test-only env var with a unique name, set before any thread reads it.
    unsafe { std::env::set_var("C8DR_TEST_BASIC_PASSWORD", "pa:ss") };
    let (fake, server) = fake().await;
    fake.accept_authorizations(Some(vec!["Basic ZGVtbzpwYTpzcw==".into()]));
    let auth = AuthConfig::Basic { username: "demo".into(), password: SecretRef::from_env("C8DR_TEST_BASIC_PASSWORD") };
    let client = GatewayClient::connect(&mgmt(&server.url(), auth)).unwrap();
    client.topology().await.unwrap();
}

#[tokio::test]
async fn oauth_token_is_fetched_cached_and_sent_as_bearer() {
    // SAFETY: test-only env var with a unique name.
    unsafe { std::env::set_var("C8DR_TEST_OAUTH_SECRET_A", "s3cret") };
    let (endpoint, token_url) = token_endpoint(3600).await;
    let (fake, server) = fake().await;
    fake.accept_authorizations(Some(vec!["Bearer t1".into()]));
    let client = GatewayClient::connect(&mgmt(&server.url(), oauth(&token_url, "C8DR_TEST_OAUTH_SECRET_A"))).unwrap();
    client.topology().await.unwrap();
    client.topology().await.unwrap();
    let forms = endpoint.forms.lock().unwrap().clone();
    assert_eq!(forms.len(), 1, "the token is cached");
    let f = &forms[0];
    assert_eq!(f["grant_type"], "client_credentials");
    assert_eq!(f["client_id"], "c8dr");
    assert_eq!(f["audience"], "zeebe-api");
    assert_eq!(f["scope"], "camunda");
    assert_eq!(fake.seen_authorizations(), vec!["Bearer t1".to_string(), "Bearer t1".to_string()]);
}

#[tokio::test]
async fn oauth_token_is_refreshed_before_expiry() {
    // SAFETY: test-only env var with a unique name.
    unsafe { std::env::set_var("C8DR_TEST_OAUTH_SECRET_B", "s3cret") };
    // expires_in below the 30 s refresh margin: every call needs a fresh token.
    let (endpoint, token_url) = token_endpoint(10).await;
    let (fake, server) = fake().await;
    let client = GatewayClient::connect(&mgmt(&server.url(), oauth(&token_url, "C8DR_TEST_OAUTH_SECRET_B"))).unwrap();
    client.topology().await.unwrap();
    client.topology().await.unwrap();
    assert_eq!(endpoint.forms.lock().unwrap().len(), 2);
    assert_eq!(fake.seen_authorizations(), vec!["Bearer t1".to_string(), "Bearer t2".to_string()]);
}

#[tokio::test]
async fn oauth_token_is_refreshed_once_on_unauthenticated() {
    // SAFETY: test-only env var with a unique name.
    unsafe { std::env::set_var("C8DR_TEST_OAUTH_SECRET_C", "s3cret") };
    let (endpoint, token_url) = token_endpoint(3600).await;
    let (fake, server) = fake().await;
    // The gateway rejects the first token (e.g. revoked) and accepts the next.
    fake.accept_authorizations(Some(vec!["Bearer t2".into()]));
    let client = GatewayClient::connect(&mgmt(&server.url(), oauth(&token_url, "C8DR_TEST_OAUTH_SECRET_C"))).unwrap();
    client.topology().await.unwrap();
    assert_eq!(fake.seen_authorizations(), vec!["Bearer t1".to_string(), "Bearer t2".to_string()]);
    // Only once: a gateway that rejects every token yields UNAUTHENTICATED after one refresh.
    fake.accept_authorizations(Some(vec!["Bearer never".into()]));
    let e = client.topology().await.unwrap_err();
    assert!(matches!(e, ClientError::Unauthenticated { .. }), "{e:?}");
    assert_eq!(endpoint.forms.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn rejected_client_credentials_are_reported() {
    // SAFETY: test-only env var with a unique name.
    unsafe { std::env::set_var("C8DR_TEST_OAUTH_SECRET_D", "wrong") };
    let (_endpoint, token_url) = token_endpoint(3600).await;
    let (_fake, server) = fake().await;
    let client = GatewayClient::connect(&mgmt(&server.url(), oauth(&token_url, "C8DR_TEST_OAUTH_SECRET_D"))).unwrap();
    let e = client.topology().await.unwrap_err();
    assert!(matches!(e, ClientError::TokenRejected { status: 401, .. }), "{e:?}");
    assert!(!e.to_string().contains("wrong"), "the secret leaked into the error: {e}");
    let missing =
        GatewayClient::connect(&mgmt(&server.url(), oauth(&token_url, "C8DR_TEST_UNSET_SECRET_VAR"))).unwrap();
    let e = missing.topology().await.unwrap_err();
    assert!(matches!(e, ClientError::Secret(_)) && e.to_string().contains("C8DR_TEST_UNSET_SECRET_VAR"), "{e}");
}

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tls").join(name)
}

#[tokio::test]
async fn tls_with_a_configured_ca_certificate() {
    // The fake's TLS server uses rustls' process-level provider (see FakeGateway::serve_tls).
    let _ = rustls::crypto::ring::default_provider().install_default();
    let cert = std::fs::read(fixture("server.pem")).unwrap();
    let key = std::fs::read(fixture("server.key")).unwrap();
    let fake = FakeGateway::new();
    let server = fake.serve_tls(&cert, &key).await.unwrap();
    assert!(server.url().starts_with("https://127.0.0.1:"));
    let mut cfg = mgmt(&server.url(), AuthConfig::None);
    cfg.ca_certificate_path = Some(fixture("ca.pem"));
    let client = GatewayClient::connect(&cfg).unwrap();
    client.topology().await.unwrap();
    assert!(fake.calls().contains(&Call::Topology));

    // Without the CA the server certificate is not trusted.
    let untrusted = GatewayClient::connect(&mgmt(&server.url(), AuthConfig::None)).unwrap();
    let e = untrusted.topology().await.unwrap_err();
    assert!(matches!(e, ClientError::Unavailable { .. }), "{e:?}");

    let mut missing = mgmt(&server.url(), AuthConfig::None);
    missing.ca_certificate_path = Some(fixture("absent.pem"));
    let e = GatewayClient::connect(&missing).unwrap_err();
    assert!(matches!(e, ClientError::CaCertificate { .. }) && e.to_string().contains("ca_certificate_path"), "{e}");
}

/// 10.6: `grpc_address` pointed at an HTTP port (the REST API, 8080) answered "gRPC status
/// Unimplemented ... HTTP 404". The error now says what it looks like and names the fix.
#[tokio::test]
async fn a_grpc_address_at_an_http_port_names_the_grpc_port() {
    let app = axum::Router::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = GatewayClient::connect(&mgmt(&url, AuthConfig::None)).unwrap();
    let e = client.topology().await.unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ClientError::NotGrpc { .. }), "{e:?}");
    assert!(text.contains("REST port") && text.contains("26500") && text.contains("management.grpc_address"), "{text}");
}

/// The mapping itself, as tonic reports an HTTP answer without grpc-status.
#[test]
fn http_404_without_grpc_status_is_not_grpc() {
    let status =
        tonic::Status::new(tonic::Code::Unimplemented, "grpc-status header missing, mapped from HTTP status code 404");
    let e = ClientError::from_status("Topology", "http://gw:8080", &status);
    assert!(e.to_string().contains("usually 26500"), "{e}");
    // a real Unimplemented from a gateway stays what it is
    let e = ClientError::from_status("Topology", "http://gw:26500", &tonic::Status::unimplemented("no such rpc"));
    assert!(matches!(e, ClientError::Other { .. }), "{e:?}");
}

/// 12.11: credentials inside the gateway URL are refused, and never shown.
#[test]
fn credentials_in_the_grpc_address_are_refused_without_echo() {
    let e = GatewayClient::connect(&mgmt("https://worker:hunter2@gw.example:443", AuthConfig::None)).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ClientError::InvalidAddress { .. }), "{e:?}");
    assert!(!text.contains("hunter2") && !text.contains("worker:"), "{text}");
    assert!(text.contains("management.auth"), "{text}");
}
