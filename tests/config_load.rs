//! Configuration loading (file, Camunda env, C8DR_ env) and validation.
use c8dr::config::{AuthConfig, Config, ConfigError, SecretRef};
use std::collections::BTreeMap;
use std::io::Write;

const GOOD: &str = r#"
[management]
grpc_address = "http://127.0.0.1:26500"

[worker]
max_jobs_active = 4

[targets.prod]
cluster_size = 8
replication_factor = 4
helm = { chart_version = "13.0.0", base_values = ["values.yml"], region_values = [["r0.yml"], ["r1.yml"]] }

[[targets.prod.regions]]
name = "region-0"
management_url = "http://r0:9600"
rest_url = "http://r0:8080"
elasticsearch_url = "http://r0:9200"

[[targets.prod.regions]]
name = "region-1"
management_url = "http://r1:9600"
rest_url = "http://r1:8080"
elasticsearch_url = "http://r1:9200"
elasticsearch_auth = { method = "basic", username = "elastic", password = { env = "ES_PASSWORD" } }
"#;

fn file(text: &str) -> tempfile::NamedTempFile {
    let mut f = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    f
}

fn env(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[test]
fn a_good_file_loads_and_validates() {
    let f = file(GOOD);
    let e = env(&[("ES_PASSWORD", "x")]);
    let cfg = Config::load_with_env(Some(f.path()), &e).unwrap();
    assert_eq!(cfg.worker.max_jobs_active, 4);
    assert_eq!(cfg.targets["prod"].regions.len(), 2);
    cfg.validate_with_env(&e).unwrap();
}

#[test]
fn an_explicit_missing_file_is_an_error() {
    let e = Config::load_with_env(Some(std::path::Path::new("/nonexistent/c8dr.toml")), &env(&[])).unwrap_err();
    assert!(matches!(e, ConfigError::NotFound(_)), "{e}");
    assert!(e.to_string().contains("--config"));
}

#[test]
fn an_unknown_key_names_the_key() {
    let f = file("[worker]\nmax_jobs_actve = 3\n");
    let e = Config::load_with_env(Some(f.path()), &env(&[])).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, ConfigError::Parse { .. }), "{text}");
    assert!(text.contains("max_jobs_actve"), "{text}");
}

#[test]
fn c8dr_env_overrides_the_file_and_unknown_env_keys_fail() {
    let f = file(GOOD);
    let cfg = Config::load_with_env(
        Some(f.path()),
        &env(&[
            ("C8DR_WORKER__MAX_JOBS_ACTIVE", "16"),
            ("C8DR_WORKER__STREAM_ENABLED", "false"),
            ("C8DR_CONFIG", "ignored"),
        ]),
    )
    .unwrap();
    assert_eq!(cfg.worker.max_jobs_active, 16);
    assert!(!cfg.worker.stream_enabled);
    assert_eq!(cfg.targets["prod"].regions[1].name, "region-1");
    let e = Config::load_with_env(Some(f.path()), &env(&[("C8DR_WORKER__NOPE", "1")])).unwrap_err();
    assert!(e.to_string().contains("nope") && e.to_string().contains("C8DR_WORKER__NOPE"), "{e}");
}

#[test]
fn camunda_variables_configure_the_management_connection() {
    let e = env(&[
        ("CAMUNDA_GRPC_ADDRESS", "https://zeebe.example:443"),
        ("ZEEBE_GRPC_ADDRESS", "http://ignored:26500"),
        ("ZEEBE_CLIENT_ID", "worker"),
        ("ZEEBE_CLIENT_SECRET", "top-secret"),
        ("CAMUNDA_OAUTH_URL", "https://idp.example/token"),
        ("ZEEBE_TOKEN_AUDIENCE", "zeebe-api"),
        ("CAMUNDA_TOKEN_SCOPE", "camunda"),
        ("CAMUNDA_CA_CERTIFICATE_PATH", "/etc/ca.pem"),
    ]);
    let cfg = Config::load_with_env(None, &e).unwrap();
    assert_eq!(cfg.management.grpc_address, "https://zeebe.example:443");
    assert_eq!(cfg.management.ca_certificate_path.as_deref(), Some(std::path::Path::new("/etc/ca.pem")));
    match &cfg.management.auth {
        AuthConfig::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => {
            assert_eq!(client_id, "worker");
            // A reference to the variable, never its value.
            assert_eq!(client_secret, &SecretRef::from_env("ZEEBE_CLIENT_SECRET"));
            assert_eq!(authorization_server_url, "https://idp.example/token");
            assert_eq!(audience.as_deref(), Some("zeebe-api"));
            assert_eq!(scope.as_deref(), Some("camunda"));
        }
        other => panic!("expected oauth, got {other:?}"),
    }
    let printed = format!("{cfg:?}");
    assert!(!printed.contains("top-secret"));
    // ZEEBE_ADDRESS is host:port: TLS unless the connection is insecure.
    let cfg =
        Config::load_with_env(None, &env(&[("ZEEBE_ADDRESS", "gw:26500"), ("ZEEBE_INSECURE_CONNECTION", "true")]))
            .unwrap();
    assert_eq!(cfg.management.grpc_address, "http://gw:26500");
}

#[test]
fn validation_lists_every_problem_with_field_and_fix() {
    let bad = r#"
[management]
grpc_address = "not a url"

[worker]
max_jobs_active = 0

[targets.broken]
cluster_size = 5
replication_factor = 3

[[targets.broken.regions]]
name = "only-one"
management_url = "http://r0:9600"
rest_url = "ftp://r0"
elasticsearch_url = "http://r0:9200"
elasticsearch_auth = { method = "bearer", token = { env = "MISSING_ES_TOKEN" } }
"#;
    let f = file(bad);
    let cfg = Config::load_with_env(Some(f.path()), &env(&[])).unwrap();
    let problems = cfg.validate_with_env(&env(&[])).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    for expected in [
        "management.grpc_address",
        "worker.max_jobs_active",
        "targets.broken.regions",
        "targets.broken.cluster_size",
        "targets.broken.replication_factor",
        "targets.broken.regions[0].rest_url",
        "targets.broken.regions[0].elasticsearch_auth.token",
    ] {
        assert!(fields.contains(&expected), "{expected} missing in {fields:?}");
    }
    let secret = problems.iter().find(|p| p.field.ends_with("elasticsearch_auth.token")).unwrap();
    assert!(secret.problem.contains("MISSING_ES_TOKEN") && secret.problem.contains("export"), "{secret}");
    let regions = problems.iter().find(|p| p.field == "targets.broken.regions").unwrap();
    assert!(regions.problem.contains("exactly 2"), "{regions}");
}

#[test]
fn oauth_without_secret_env_is_reported() {
    let cfg = Config::load_with_env(None, &env(&[("CAMUNDA_CLIENT_ID", "w")])).unwrap();
    let problems = cfg.validate_with_env(&env(&[("CAMUNDA_CLIENT_ID", "w")])).unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|p| p.field.as_str()).collect();
    assert!(fields.contains(&"management.auth.client_secret"), "{fields:?}");
    assert!(fields.contains(&"management.auth.authorization_server_url"), "{fields:?}");
}

#[test]
fn the_example_in_docs_configuration_md_loads_and_validates() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md")).unwrap();
    let example = doc.split("## Example").nth(1).unwrap();
    let toml = example.split("```toml").nth(1).unwrap().split("```").next().unwrap();
    let f = file(toml);
    let e = env(&[("C8DR_CLIENT_SECRET", "x"), ("ES_PASSWORD_EU", "x"), ("ES_PASSWORD_US", "x")]);
    let cfg = Config::load_with_env(Some(f.path()), &e).unwrap();
    cfg.validate_with_env(&e).unwrap();
    assert_eq!(cfg.targets["prod"].snapshot.kind, "s3");
}

#[test]
fn the_example_in_deploy_loads_and_validates() {
    let path = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/c8dr.example.toml"));
    let secrets = [
        "CAMUNDA_CLIENT_SECRET",
        "LONDON_REST_PASSWORD",
        "LONDON_ES_API_KEY",
        "PARIS_REST_PASSWORD",
        "PARIS_ES_API_KEY",
    ];
    let e = env(&secrets.map(|k| (k, "x")));
    let cfg = Config::load_with_env(Some(path), &e).unwrap();
    cfg.validate_with_env(&e).unwrap();
    let prod = &cfg.targets["prod"];
    assert_eq!(prod.regions.len(), 2);
    assert_eq!(prod.helm.schema_env_index, 12);
    // a missing secret is named, not printed
    let without = env(&[("CAMUNDA_CLIENT_SECRET", "x")]);
    let problems = cfg.validate_with_env(&without).unwrap_err();
    let text = format!("{problems:?}");
    assert!(text.contains("LONDON_REST_PASSWORD"), "{text}");
}

/// Issue 12.5: in modes manual and command a target must pin the chart version and name its
/// values files (base and one list per region); the lab needs none.
#[test]
fn an_unpinned_helm_target_is_refused_outside_the_lab() {
    let e = env(&[("ES_PASSWORD", "x")]);
    let unpinned = GOOD.replace(
        r#"helm = { chart_version = "13.0.0", base_values = ["values.yml"], region_values = [["r0.yml"], ["r1.yml"]] }"#,
        r#"helm = { mode = "command", region_values = [["r0.yml"]] }"#,
    );
    let cfg = Config::load_with_env(Some(file(&unpinned).path()), &e).unwrap();
    let fields: Vec<String> = cfg.validate_with_env(&e).unwrap_err().into_iter().map(|p| p.field).collect();
    for f in ["targets.prod.helm.chart_version", "targets.prod.helm.base_values", "targets.prod.helm.region_values"] {
        assert!(fields.iter().any(|x| x == f), "{f} not named: {fields:?}");
    }
    let lab = GOOD.replace(
        r#"helm = { chart_version = "13.0.0", base_values = ["values.yml"], region_values = [["r0.yml"], ["r1.yml"]] }"#,
        "helm = { mode = \"lab\" }\nlab_control_url = \"http://127.0.0.1:9\"",
    );
    let cfg = Config::load_with_env(Some(file(&lab).path()), &e).unwrap();
    cfg.validate_with_env(&e).unwrap();
}
