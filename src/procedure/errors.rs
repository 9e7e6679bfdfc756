//! BPMN error codes thrown by c8dr steps: the one list both the BPMN (bpmn:error@errorCode) and
//! the handlers use. tests/bpmn_static.rs checks every code in bpmn/ is listed here.
//!
//! A step throws a BPMN error when a precondition is violated and the process can route it to a
//! person; transient target errors fail the job (retried with back-off) instead.

/// Variables, headers or config do not allow the step to run; names the field and the fix.
pub const INVALID_INPUT: &str = "INVALID_INPUT";
/// The target does not set `drill_allowed = true`.
pub const DRILL_NOT_ALLOWED: &str = "DRILL_NOT_ALLOWED";
/// Brokers of the lost region still answer or show healthy: removing them risks split brain.
pub const SPLIT_BRAIN_RISK: &str = "SPLIT_BRAIN_RISK";
/// Brokers of the surviving region are missing or the topology contradicts the region parity.
pub const SURVIVING_REGION_DEGRADED: &str = "SURVIVING_REGION_DEGRADED";
/// Another cluster change (not ours) is pending; a new one would be rejected with 409.
pub const CONCURRENT_CHANGE: &str = "CONCURRENT_CHANGE";
/// The awaited change ended FAILED or CANCELLED.
pub const CHANGE_FAILED: &str = "CHANGE_FAILED";
/// The step needs a person to run a command (helm/kubectl); the error carries `manualCommand`.
pub const MANUAL_STEP_REQUIRED: &str = "MANUAL_STEP_REQUIRED";
/// The recreated region is not clean (Camunda release, PVCs or Camunda indices present).
pub const RECREATED_REGION_NOT_CLEAN: &str = "RECREATED_REGION_NOT_CLEAN";
/// A step ran before the step it depends on (e.g. enable exporter before the restore finished).
pub const PRECONDITION_FAILED: &str = "PRECONDITION_FAILED";
/// The snapshot repository does not exist where the step needs it.
pub const REPOSITORY_MISSING: &str = "REPOSITORY_MISSING";
/// The snapshot ended FAILED, PARTIAL or INCOMPATIBLE, or with failed shards.
pub const SNAPSHOT_FAILED: &str = "SNAPSHOT_FAILED";
/// The snapshot the step needs does not exist.
pub const SNAPSHOT_MISSING: &str = "SNAPSHOT_MISSING";
/// The recreated Elasticsearch has open indices the restore would collide with.
pub const RESTORE_TARGET_NOT_EMPTY: &str = "RESTORE_TARGET_NOT_EMPTY";
/// The restore finished with failed shards.
pub const RESTORE_FAILED: &str = "RESTORE_FAILED";
/// Drill canary instances are missing where they must be visible.
pub const CANARIES_MISSING: &str = "CANARIES_MISSING";

/// The target answered a permanent error (400, 401, 403, 422, ...): retrying cannot help, a
/// person must fix the cause; the message carries the target's answer.
pub const TARGET_REJECTED: &str = "TARGET_REJECTED";

/// Every code above, for checks and documentation.
pub const ALL: &[&str] = &[
    INVALID_INPUT,
    DRILL_NOT_ALLOWED,
    SPLIT_BRAIN_RISK,
    SURVIVING_REGION_DEGRADED,
    CONCURRENT_CHANGE,
    CHANGE_FAILED,
    MANUAL_STEP_REQUIRED,
    RECREATED_REGION_NOT_CLEAN,
    PRECONDITION_FAILED,
    REPOSITORY_MISSING,
    SNAPSHOT_FAILED,
    SNAPSHOT_MISSING,
    RESTORE_TARGET_NOT_EMPTY,
    RESTORE_FAILED,
    CANARIES_MISSING,
    TARGET_REJECTED,
];
