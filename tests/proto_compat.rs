//! Wire compatibility of proto/gateway.proto with Camunda's official gateway protocol.
//!
//! The oracle is `package/dist/proto/zeebe.proto` of the npm package `@camunda8/sdk@8.8.13`
//! (8.6-level content), fetched with `npm pack` into a temporary directory at test time and
//! never committed. Every message, field, enum value and RPC present in both must agree; the
//! 8.7/8.8 additions the package lacks are pinned by explicit assertions below.
//! Without npm (or without access to the npm registry) this test FAILS: it is the only check
//! of our hand-written field numbers.
use prost_reflect::{Cardinality, DescriptorPool, FieldDescriptor, Kind, MessageDescriptor};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

const SDK: &str = "@camunda8/sdk@8.8.13";
const SDK_PROTO: &str = "package/dist/proto/zeebe.proto";

fn fetch_sdk_proto(dir: &Path) -> PathBuf {
    let pack = Command::new("npm")
        .args(["pack", SDK, "--pack-destination"])
        .arg(dir)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run npm ({e}): install Node.js/npm; this test compares proto/gateway.proto with {SDK}")
        });
    assert!(
        pack.status.success(),
        "`npm pack {SDK}` failed ({}): {}\nThis test needs npm and access to the npm registry.",
        pack.status,
        String::from_utf8_lossy(&pack.stderr)
    );
    let tarball = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "tgz"))
        .unwrap_or_else(|| panic!("npm pack produced no .tgz in {}", dir.display()));
    let untar = Command::new("tar")
        .arg("-xzf")
        .arg(&tarball)
        .arg("-C")
        .arg(dir)
        .arg(SDK_PROTO)
        .output()
        .expect("cannot run tar");
    assert!(untar.status.success(), "tar failed: {}", String::from_utf8_lossy(&untar.stderr));
    dir.join(SDK_PROTO)
}

fn compile(file: &Path) -> DescriptorPool {
    let dir = file.parent().unwrap();
    let name = file.file_name().unwrap();
    let fds = protox::compile([name], [dir]).unwrap_or_else(|e| panic!("cannot compile {}: {e}", file.display()));
    DescriptorPool::from_file_descriptor_set(fds).unwrap()
}

fn type_name(f: &FieldDescriptor) -> String {
    match f.kind() {
        Kind::Message(m) => format!("message {}", m.full_name()),
        Kind::Enum(e) => format!("enum {}", e.full_name()),
        k => format!("{k:?}"),
    }
}

fn label(f: &FieldDescriptor) -> String {
    let card = match f.cardinality() {
        Cardinality::Optional => "singular",
        Cardinality::Required => "required",
        Cardinality::Repeated => "repeated",
    };
    let explicit = if f.field_descriptor_proto().proto3_optional() { " optional" } else { "" };
    let oneof =
        f.containing_oneof().filter(|o| !o.is_synthetic()).map(|o| format!(" oneof {}", o.name())).unwrap_or_default();
    format!("{card}{explicit}{oneof}")
}

fn ours() -> DescriptorPool {
    compile(&Path::new(env!("CARGO_MANIFEST_DIR")).join("proto/gateway.proto"))
}

fn field(pool: &DescriptorPool, message: &str, name: &str) -> FieldDescriptor {
    let m = pool
        .get_message_by_name(&format!("gateway_protocol.{message}"))
        .unwrap_or_else(|| panic!("no message {message}"));
    m.get_field_by_name(name).unwrap_or_else(|| panic!("no field {message}.{name}"))
}

fn all_messages(pool: &DescriptorPool) -> Vec<MessageDescriptor> {
    pool.all_messages().collect()
}

#[test]
fn gateway_proto_agrees_with_the_official_sdk_proto() {
    let tmp = tempfile::tempdir().unwrap();
    let sdk_path = fetch_sdk_proto(tmp.path());
    let sdk = compile(&sdk_path);
    let ours = ours();
    let mut problems = Vec::new();
    let mut ours_only_messages = BTreeSet::new();
    let mut ours_only_fields = BTreeSet::new();
    let mut compared_fields = 0;

    for m in all_messages(&ours) {
        let Some(theirs) = sdk.get_message_by_name(m.full_name()) else {
            ours_only_messages.insert(m.full_name().trim_start_matches("gateway_protocol.").to_string());
            continue;
        };
        for f in m.fields() {
            let Some(tf) = theirs.get_field_by_name(f.name()) else {
                if let Some(by_number) = theirs.get_field(f.number()) {
                    problems.push(format!(
                        "{}.{} = {}: the SDK has number {} as {:?}",
                        m.full_name(),
                        f.name(),
                        f.number(),
                        f.number(),
                        by_number.name()
                    ));
                }
                ours_only_fields.insert(format!("{}.{}", m.name(), f.name()));
                continue;
            };
            compared_fields += 1;
            if f.number() != tf.number() {
                problems.push(format!("{}.{}: number {} vs SDK {}", m.full_name(), f.name(), f.number(), tf.number()));
            }
            if type_name(&f) != type_name(&tf) {
                problems.push(format!(
                    "{}.{}: type {} vs SDK {}",
                    m.full_name(),
                    f.name(),
                    type_name(&f),
                    type_name(&tf)
                ));
            }
            if label(&f) != label(&tf) {
                problems.push(format!("{}.{}: label {} vs SDK {}", m.full_name(), f.name(), label(&f), label(&tf)));
            }
        }
    }
    for e in ours.all_enums() {
        let Some(theirs) = sdk.get_enum_by_name(e.full_name()) else {
            continue;
        };
        for v in e.values() {
            match theirs.get_value_by_name(v.name()) {
                Some(tv) if tv.number() == v.number() => {}
                Some(tv) => {
                    problems.push(format!("{}.{}: {} vs SDK {}", e.full_name(), v.name(), v.number(), tv.number()))
                }
                None => problems.push(format!("{}.{}: not in the SDK enum", e.full_name(), v.name())),
            }
        }
    }
    let ours_service = ours.get_service_by_name("gateway_protocol.Gateway").expect("service Gateway");
    let sdk_service = sdk.get_service_by_name("gateway_protocol.Gateway").expect("SDK service Gateway");
    let mut rpcs_compared = 0;
    for method in ours_service.methods() {
        let Some(tm) = sdk_service.methods().find(|t| t.name() == method.name()) else {
            problems.push(format!("rpc {} is not in the SDK proto", method.name()));
            continue;
        };
        rpcs_compared += 1;
        if method.input().full_name() != tm.input().full_name()
            || method.output().full_name() != tm.output().full_name()
        {
            problems.push(format!("rpc {}: request/response types differ", method.name()));
        }
        if method.is_client_streaming() != tm.is_client_streaming()
            || method.is_server_streaming() != tm.is_server_streaming()
        {
            problems.push(format!("rpc {}: streaming flags differ", method.name()));
        }
    }
    assert!(problems.is_empty(), "proto/gateway.proto disagrees with {SDK}:\n{}", problems.join("\n"));
    assert!(compared_fields > 100, "only {compared_fields} fields compared");
    assert_eq!(rpcs_compared, 15);

    // What the SDK (8.6 level) lacks is exactly the 8.7/8.8 additions pinned below.
    let expected_messages: BTreeSet<String> = [
        "UserTaskProperties",
        "JobResult",
        "JobResultCorrections",
        "JobResultActivateElement",
        "StringList",
        "ProcessInstanceCreationRuntimeInstruction",
        "ProcessInstanceCreationTerminateInstruction",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(ours_only_messages, expected_messages);
    let expected_fields: BTreeSet<String> = [
        "ActivatedJob.userTask",
        "ActivatedJob.kind",
        "ActivatedJob.listenerEventType",
        "CompleteJobRequest.result",
        "CreateProcessInstanceRequest.runtimeInstructions",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(ours_only_fields, expected_fields);
}

fn pin(pool: &DescriptorPool, message: &str, name: &str, number: u32, ty: &str, lbl: &str) {
    let f = field(pool, message, name);
    assert_eq!(f.number(), number, "{message}.{name} number");
    assert_eq!(type_name(&f), ty, "{message}.{name} type");
    assert_eq!(label(&f), lbl, "{message}.{name} label");
}

#[test]
fn the_8_8_additions_are_pinned() {
    let p = ours();
    let gp = |s: &str| format!("message gateway_protocol.{s}");
    pin(&p, "ActivatedJob", "userTask", 15, &gp("UserTaskProperties"), "singular optional");
    pin(&p, "ActivatedJob", "kind", 16, "enum gateway_protocol.ActivatedJob.JobKind", "singular");
    pin(
        &p,
        "ActivatedJob",
        "listenerEventType",
        17,
        "enum gateway_protocol.ActivatedJob.ListenerEventType",
        "singular",
    );

    let kind = p.get_enum_by_name("gateway_protocol.ActivatedJob.JobKind").unwrap();
    let values: Vec<(String, i32)> = kind.values().map(|v| (v.name().to_string(), v.number())).collect();
    assert_eq!(
        values,
        [("BPMN_ELEMENT", 0), ("EXECUTION_LISTENER", 1), ("TASK_LISTENER", 2), ("AD_HOC_SUB_PROCESS", 3)]
            .map(|(n, v)| (n.to_string(), v))
    );
    let ev = p.get_enum_by_name("gateway_protocol.ActivatedJob.ListenerEventType").unwrap();
    let values: Vec<(String, i32)> = ev.values().map(|v| (v.name().to_string(), v.number())).collect();
    assert_eq!(
        values,
        [
            ("ASSIGNING", 0),
            ("CANCELING", 1),
            ("COMPLETING", 2),
            ("CREATING", 3),
            ("END", 4),
            ("START", 5),
            ("UNSPECIFIED", 6),
            ("UPDATING", 7)
        ]
        .map(|(n, v)| (n.to_string(), v))
    );

    for (name, number, ty, lbl) in [
        ("action", 1, "string", "singular optional"),
        ("assignee", 2, "string", "singular optional"),
        ("candidateGroups", 3, "string", "repeated"),
        ("candidateUsers", 4, "string", "repeated"),
        ("changedAttributes", 5, "string", "repeated"),
        ("dueDate", 6, "string", "singular optional"),
        ("followUpDate", 7, "string", "singular optional"),
        ("formKey", 8, "int64", "singular optional"),
        ("priority", 9, "int32", "singular optional"),
        ("userTaskKey", 10, "int64", "singular optional"),
    ] {
        pin(&p, "UserTaskProperties", name, number, ty, lbl);
    }

    pin(&p, "CompleteJobRequest", "result", 3, &gp("JobResult"), "singular optional");
    for (name, number, ty, lbl) in [
        ("denied", 1, "bool".to_string(), "singular optional"),
        ("corrections", 2, gp("JobResultCorrections"), "singular optional"),
        ("deniedReason", 3, "string".to_string(), "singular optional"),
        ("type", 4, "string".to_string(), "singular optional"),
        ("activateElements", 5, gp("JobResultActivateElement"), "repeated"),
        ("isCompletionConditionFulfilled", 6, "bool".to_string(), "singular optional"),
        ("isCancelRemainingInstances", 7, "bool".to_string(), "singular optional"),
    ] {
        pin(&p, "JobResult", name, number, &ty, lbl);
    }
    for (name, number, ty) in [
        ("assignee", 1, "string".to_string()),
        ("dueDate", 2, "string".to_string()),
        ("followUpDate", 3, "string".to_string()),
        ("candidateUsers", 4, gp("StringList")),
        ("candidateGroups", 5, gp("StringList")),
        ("priority", 6, "int32".to_string()),
    ] {
        pin(&p, "JobResultCorrections", name, number, &ty, "singular optional");
    }
    pin(&p, "JobResultActivateElement", "elementId", 1, "string", "singular");
    pin(&p, "JobResultActivateElement", "variables", 2, "string", "singular");
    pin(&p, "StringList", "values", 1, "string", "repeated");

    pin(
        &p,
        "CreateProcessInstanceRequest",
        "runtimeInstructions",
        8,
        &gp("ProcessInstanceCreationRuntimeInstruction"),
        "repeated",
    );
    pin(
        &p,
        "ProcessInstanceCreationRuntimeInstruction",
        "terminate",
        1,
        &gp("ProcessInstanceCreationTerminateInstruction"),
        "singular oneof instruction",
    );
    pin(&p, "ProcessInstanceCreationTerminateInstruction", "afterElementId", 1, "string", "singular");

    // StreamActivatedJobsRequest has no field 4 (the SDK comparison checks the rest).
    let stream_req = p.get_message_by_name("gateway_protocol.StreamActivatedJobsRequest").unwrap();
    assert!(stream_req.get_field(4).is_none());
}
