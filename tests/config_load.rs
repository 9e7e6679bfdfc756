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
        "PARIS_REST_CLIENT_SECRET",
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

#[test]
fn a_check_watch_that_outlives_the_job_is_refused() {
    let f = file("[worker]\njob_timeout_ms = 10000\ncheck_watch_ms = 5000\n");
    let cfg = Config::load_with_env(Some(f.path()), &env(&[])).unwrap();
    let problems = cfg.validate_with_env(&env(&[])).unwrap_err();
    let watch = problems.iter().find(|p| p.field == "worker.check_watch_ms").expect("check_watch_ms refused");
    assert!(watch.problem.contains("job_timeout_ms"), "{watch}");
    // the defaults (20 s watch, 60 s job timeout) pass
    let cfg = Config::load_with_env(None, &env(&[])).unwrap();
    let problems = cfg.validate_with_env(&env(&[])).err().unwrap_or_default();
    assert!(!problems.iter().any(|p| p.field.starts_with("worker.")), "{problems:?}");
}

/// 12.16: the transient retry window is read from `[worker.transient_retry]` and a back-off
/// schedule that cannot work is refused naming the key.
#[test]
fn the_transient_retry_window_is_configured_and_checked() {
    let f = file("[worker.transient_retry]\nwindow_ms = 300000\ninitial_backoff_ms = 2000\nmax_backoff_ms = 30000\n");
    let cfg = Config::load_with_env(Some(f.path()), &env(&[])).unwrap();
    let tr = &cfg.worker.transient_retry;
    assert_eq!((tr.window_ms, tr.initial_backoff_ms, tr.max_backoff_ms), (300_000, 2_000, 30_000));
    let f = file("[worker.transient_retry]\ninitial_backoff_ms = 0\n");
    let cfg = Config::load_with_env(Some(f.path()), &env(&[])).unwrap();
    let problems = cfg.validate_with_env(&env(&[])).unwrap_err();
    assert!(problems.iter().any(|p| p.field == "worker.transient_retry.initial_backoff_ms"), "{problems:?}");
    let f = file("[worker.transient_retry]\nwindow_minutes = 10\n");
    assert!(Config::load_with_env(Some(f.path()), &env(&[])).is_err(), "unknown keys are refused");
}

const SECRET: &str = "hunter2-Sup3rS3cret";

fn basic_management(password: &str) -> String {
    format!("[management.auth]\nmethod = \"basic\"\nusername = \"u\"\npassword = {password}\n")
}

/// 12.11: a secret written inline was printed in full by the parse error.
#[test]
fn an_inline_secret_is_refused_without_echo() {
    for text in [
        basic_management(&format!("\"{SECRET}\"")),
        // unquoted: a TOML syntax error, whose report quotes the line
        basic_management(SECRET),
        basic_management(&format!("{{ env = \"X\", value = \"{SECRET}\" }}")),
        format!(
            "[targets.prod]\n[[targets.prod.regions]]\nname = \"a\"\nmanagement_url = \"http://a:9600\"\nrest_url = \"http://a:8080\"\nelasticsearch_url = \"http://a:9200\"\nrest_auth = {{ method = \"bearer\", token = \"{SECRET}\" }}\n"
        ),
    ] {
        let e = Config::from_toml_str(&text, "c8dr.toml").unwrap_err();
        let shown = e.to_string();
        assert!(!shown.contains(SECRET) && !shown.contains("hunter2"), "the secret leaked: {shown}");
        assert!(shown.contains("c8dr.toml"), "{shown}");
    }
    let e = Config::from_toml_str(&basic_management(&format!("\"{SECRET}\"")), "c8dr.toml").unwrap_err().to_string();
    assert!(e.contains("management.auth") && e.contains("env = ") && e.contains("file = "), "{e}");
}

/// 12.11: the same through a C8DR_ variable.
#[test]
fn an_inline_secret_in_a_c8dr_variable_is_refused_without_echo() {
    let f = file(&basic_management("{ env = \"PW\" }"));
    let e = Config::load_with_env(Some(f.path()), &env(&[("C8DR_MANAGEMENT__AUTH__PASSWORD", SECRET)]))
        .unwrap_err()
        .to_string();
    assert!(!e.contains(SECRET), "the secret leaked: {e}");
    assert!(e.contains("C8DR_MANAGEMENT__AUTH__PASSWORD") && e.contains("env = "), "{e}");
    // a number is refused the same way (try_parsing turns it into one)
    let e = Config::load_with_env(Some(f.path()), &env(&[("C8DR_MANAGEMENT__AUTH__PASSWORD", "8675309")]))
        .unwrap_err()
        .to_string();
    assert!(!e.contains("8675309"), "the secret leaked: {e}");
}

fn problems(text: &str, e: &BTreeMap<String, String>) -> Vec<c8dr::config::ConfigProblem> {
    Config::from_toml_str(text, "t.toml").unwrap().validate_with_env(e).unwrap_err()
}

/// 12.11: credentials inside URLs are refused, naming the key and the fix, never the value.
#[test]
fn credentials_in_urls_are_refused_without_echo() {
    let text = GOOD
        .replace("http://r0:8080", &format!("http://admin:{SECRET}@r0:8080"))
        .replace("http://127.0.0.1:26500", &format!("https://c:{SECRET}@gw:443"));
    let p = problems(&text, &env(&[("ES_PASSWORD", "x")]));
    let shown = format!("{p:?}");
    assert!(!shown.contains(SECRET), "the secret leaked: {shown}");
    let rest = p.iter().find(|p| p.field == "targets.prod.regions[0].rest_url").expect("rest_url refused");
    assert!(rest.problem.contains("targets.prod.regions[0].rest_auth"), "{rest}");
    let grpc = p.iter().find(|p| p.field == "management.grpc_address").expect("grpc_address refused");
    assert!(grpc.problem.contains("management.auth"), "{grpc}");
}

/// 12.14: what breaks a failover is caught by `config check`, each naming the key and the fix.
#[test]
fn validation_catches_what_breaks_a_failover() {
    let e = env(&[("ES_PASSWORD", "x")]);
    // both regions at one URL
    let p = problems(&GOOD.replace("http://r1:8080", "http://r0:8080/"), &e);
    let same = p.iter().find(|p| p.field == "targets.prod.regions[1].rest_url").expect("identical URLs refused");
    assert!(same.problem.contains("same URL as regions[0].rest_url"), "{same}");
    // a journal path that is a directory
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{GOOD}\n[journal]\npath = \"{}\"\n", dir.path().display());
    let p = problems(&text, &e);
    let journal = p.iter().find(|p| p.field == "journal.path").expect("directory refused");
    assert!(journal.problem.contains("is a directory"), "{journal}");
    // a namespace that can never be a DNS label of a broker host, and one region without one
    let text = GOOD.replacen("name = \"region-0\"", "name = \"region-0\"\nnamespace = \"Camunda.London\"", 1);
    let p = problems(&text, &e);
    let ns = p.iter().find(|p| p.field == "targets.prod.regions[0].namespace").expect("namespace refused");
    assert!(ns.problem.contains("split-brain"), "{ns}");
    let text = GOOD.replacen("name = \"region-0\"", "name = \"region-0\"\nnamespace = \"camunda-london\"", 1);
    let p = problems(&text, &e);
    assert!(p.iter().any(|p| p.field == "targets.prod.regions[1].namespace"), "{p:?}");
    // the good file still passes
    Config::from_toml_str(GOOD, "t.toml").unwrap().validate_with_env(&e).unwrap();
}

/// 12.10: targets take OAuth client credentials for the REST API.
#[test]
fn targets_take_oauth_client_credentials() {
    let text = GOOD.replacen(
        "elasticsearch_url = \"http://r0:9200\"",
        "elasticsearch_url = \"http://r0:9200\"\nrest_auth = { method = \"oauth\", client_id = \"c8dr\", client_secret = { env = \"REST_SECRET\" }, authorization_server_url = \"https://idp/token\", audience = \"orchestration-api\" }",
        1,
    );
    let cfg = Config::from_toml_str(&text, "t.toml").unwrap();
    assert!(matches!(cfg.targets["prod"].regions[0].rest_auth, c8dr::config::HttpAuth::Oauth { .. }));
    let p = cfg.validate_with_env(&env(&[("ES_PASSWORD", "x")])).unwrap_err();
    assert!(p.iter().any(|p| p.field == "targets.prod.regions[0].rest_auth.client_secret"), "{p:?}");
    cfg.validate_with_env(&env(&[("ES_PASSWORD", "x"), ("REST_SECRET", "s")])).unwrap();
}

/// Issue 12.5: in modes manual and command a target must pin the chart version and name its
/// values files (base and one list per region). Issue 9.1: a configuration cannot select the lab.
#[test]
fn an_unpinned_helm_target_is_refused_and_the_lab_cannot_be_selected() {
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
    let err = Config::load_with_env(Some(file(&lab).path()), &e).unwrap_err().to_string();
    assert!(err.contains("lab"), "{err}");
}
