//! The target clients against the lab with injected faults (dropped connections, 500/503,
//! truncated bodies): every failure is classified as a transient `TargetError` of the right
//! kind (so the worker retries instead of routing a BPMN error), nothing panics, and the calls
//! that are not hit still succeed. Deterministic: the lab's faults follow a seed.
#![cfg(feature = "rehearsal")] // needs the simulator (lab, engine or fake gateway)
use c8dr::region_api::{Api, ErrorKind, Target, TargetError};
use c8dr::rehearsal::lab::{FaultConfig, Lab, LabDurations, LabOptions};
use std::collections::BTreeMap;

#[tokio::test]
async fn injected_faults_are_transient_errors_of_the_right_kind() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let target = Target::from_config("lab", &lab.target_config()).unwrap();
    lab.set_faults(Some(FaultConfig {
        seed: 7,
        error_rate: 0.15,
        drop_rate: 0.15,
        malformed_rate: 0.15,
        ..Default::default()
    }));
    let r0 = target.region(0);

    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    let mut successes = 0;
    for i in 0..90 {
        let result: Result<(), TargetError> = match i % 6 {
            0 => r0.management.get_cluster().await.map(drop),
            1 => r0.management.list_exporters().await.map(drop),
            2 => r0.rest.topology().await.map(drop),
            3 => r0.elasticsearch.cluster_health().await.map(drop),
            4 => r0.elasticsearch.recoveries(true).await.map(drop),
            _ => r0.elasticsearch.camunda_indices().await.map(drop),
        };
        match result {
            Ok(()) => successes += 1,
            Err(e) => {
                assert!(e.is_transient(), "call {i}: {e}");
                assert!(
                    matches!(e.kind, ErrorKind::Server | ErrorKind::Unreachable | ErrorKind::Malformed),
                    "call {i}: {e}"
                );
                if e.kind == ErrorKind::Server {
                    assert!(matches!(e.status, Some(500 | 503)), "call {i}: {e}");
                    assert!(e.message.ends_with("lab: injected fault"), "call {i}: {e}");
                    if e.api == Api::Elasticsearch {
                        assert!(e.is_es_type("lab_injected_fault_exception"), "call {i}: {e}");
                    }
                }
                *kinds.entry(format!("{:?}", e.kind)).or_default() += 1;
            }
        }
    }
    println!("successes {successes}, errors {kinds:?}");
    assert!(successes > 0, "{kinds:?}");
    for kind in ["Server", "Unreachable", "Malformed"] {
        assert!(kinds.contains_key(kind), "no {kind} error seen: {kinds:?}");
    }

    // Without faults every call succeeds again.
    lab.set_faults(None);
    r0.management.get_cluster().await.unwrap();
    r0.elasticsearch.camunda_indices().await.unwrap();
}

/// A permanent rejection (400) from any of the three APIs is an `InvalidRequest` with its
/// status and the server's message, and not transient: the steps route it to a person
/// (TARGET_REJECTED) instead of retrying it.
#[tokio::test]
async fn injected_rejections_are_permanent_errors() {
    let lab = Lab::start(LabOptions { durations: LabDurations::fast(), ..Default::default() }).await.unwrap();
    let target = Target::from_config("lab", &lab.target_config()).unwrap();
    lab.set_faults(Some(FaultConfig { seed: 3, reject_rate: 1.0, ..Default::default() }));
    let r0 = target.region(0);
    let results: Vec<(Api, Result<(), TargetError>)> = vec![
        (Api::Management, r0.management.get_cluster().await.map(drop)),
        (Api::Rest, r0.rest.topology().await.map(drop)),
        (Api::Elasticsearch, r0.elasticsearch.cluster_health().await.map(drop)),
    ];
    for (api, result) in results {
        let e = result.expect_err("every request is rejected");
        assert_eq!((e.api, e.kind, e.status), (api, ErrorKind::InvalidRequest, Some(400)), "{e}");
        assert!(!e.is_transient(), "{e}");
        assert!(e.message.contains("lab: injected fault"), "the server's message is kept: {e}");
    }
}
