//! Typed step inputs: what a step reads from the job's variables, deserialized and validated once
//! by the step table ([`super::steps`]) before the step runs. Bad input is INVALID_INPUT naming
//! the variable and the fix; the variable names are the public contract (docs/jobs.md).
//!
//! Each serde struct (`#[serde(rename_all = "camelCase")]`) is read with [`from_vars`], which
//! turns serde's error into the INVALID_INPUT of the variable it is about; cross-field rules
//! (the surviving region is the other one) are checked in the input type's [`FromJob`] impl.
use super::{StepError, StepInput};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};
use std::fmt;

/// One of the two regions of a dual-region installation: exactly 0 or 1. Brokers of region r are
/// the ids with `id % 2 == r`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Region {
    Zero,
    One,
}

impl Region {
    pub const BOTH: [Region; 2] = [Region::Zero, Region::One];

    pub fn from_index(i: u8) -> Option<Region> {
        match i {
            0 => Some(Region::Zero),
            1 => Some(Region::One),
            _ => None,
        }
    }
    /// 0 or 1: the index in the target's `regions` and the broker parity.
    pub fn index(self) -> u8 {
        match self {
            Region::Zero => 0,
            Region::One => 1,
        }
    }
    pub fn other(self) -> Region {
        match self {
            Region::Zero => Region::One,
            Region::One => Region::Zero,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.index())
    }
}

impl From<Region> for u8 {
    fn from(r: Region) -> u8 {
        r.index()
    }
}

impl Serialize for Region {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u8(self.index())
    }
}

/// The number 0 or 1 (a JSON string "0"/"1" is accepted too: Tasklist forms send strings).
impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::Number(n) => n.as_i64().filter(|_| n.is_i64() || n.is_u64()),
            Value::String(s) => s.trim().parse::<i64>().ok(),
            Value::Null => return Err(D::Error::custom("is required: set it to 0 or 1")),
            _ => None,
        };
        n.and_then(|n| u8::try_from(n).ok())
            .and_then(Region::from_index)
            .ok_or_else(|| D::Error::custom(format!("must be the region number 0 or 1, got {}", show(&v))))
    }
}

/// A value as an error message quotes it, truncated (on a char boundary) to 60 characters.
pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 { format!("{}...", s.chars().take(60).collect::<String>()) } else { s }
}

/// What the step table builds from a job before the step runs.
pub trait FromJob: Sized {
    fn from_job(job: &StepInput) -> Result<Self, StepError>;
}

/// A step that reads no variables up front (or reads the whole variable set, as the report does).
impl FromJob for () {
    fn from_job(_: &StepInput) -> Result<Self, StepError> {
        Ok(())
    }
}

impl<A: FromJob, B: FromJob> FromJob for (A, B) {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        Ok((A::from_job(job)?, B::from_job(job)?))
    }
}

impl<A: FromJob, B: FromJob, C: FromJob> FromJob for (A, B, C) {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        Ok((A::from_job(job)?, B::from_job(job)?, C::from_job(job)?))
    }
}

impl<A: FromJob, B: FromJob, C: FromJob, D: FromJob> FromJob for (A, B, C, D) {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        Ok((A::from_job(job)?, B::from_job(job)?, C::from_job(job)?, D::from_job(job)?))
    }
}

/// The fix for a missing required variable, appended to "variable `x` is required".
fn required_hint(field: &str) -> &'static str {
    match field {
        "lostRegion" | "recreatedRegion" | "survivingRegion" => ": set it to 0 or 1",
        "changeId" => ": the change id returned by the step that started the change",
        _ => " (a non-empty string)",
    }
}

/// Deserializes `T` from the job's variables; an error is INVALID_INPUT naming the variable.
pub fn from_vars<T: DeserializeOwned>(vars: &Map<String, Value>) -> Result<T, StepError> {
    serde_path_to_error::deserialize::<_, T>(Value::Object(vars.clone())).map_err(|e| {
        let field = match e.path().iter().next() {
            Some(serde_path_to_error::Segment::Map { key }) => Some(key.clone()),
            _ => None,
        };
        let inner = e.into_inner().to_string();
        if let Some(name) = inner.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            return StepError::invalid(name, format!("variable `{name}` is required{}", required_hint(name)));
        }
        match field {
            Some(f) => StepError::invalid(&f, format!("variable `{f}` {inner}")),
            None => StepError::invalid("variables", format!("the job's variables: {inner}")),
        }
    })
}

/// Implements [`FromJob`] for serde structs read with [`from_vars`] alone.
macro_rules! from_vars_only {
    ($($t:ty),* $(,)?) => {$(
        impl FromJob for $t {
            fn from_job(job: &StepInput) -> Result<Self, StepError> {
                from_vars(&job.variables)
            }
        }
    )*};
}

/// The region variables as a process carries them; [`Failover`], [`Failback`] and [`Surviving`]
/// resolve them.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegionVars {
    #[serde(default)]
    pub lost_region: Option<Region>,
    #[serde(default)]
    pub recreated_region: Option<Region>,
    #[serde(default)]
    pub surviving_region: Option<Region>,
}

fn required(field: &str, r: Option<Region>) -> Result<Region, StepError> {
    r.ok_or_else(|| StepError::invalid(field, format!("variable `{field}` is required: set it to 0 or 1")))
}

/// `survivingRegion` is optional but, when given, must be `expected`.
fn check_surviving(given: Option<Region>, expected: Region) -> Result<Region, StepError> {
    match given {
        Some(s) if s != expected => Err(StepError::invalid(
            "survivingRegion",
            format!("variable `survivingRegion` = {s} contradicts the lost/recreated region: it must be {expected}"),
        )),
        _ => Ok(expected),
    }
}

/// A failover step's regions: `lostRegion` required, `survivingRegion` optional but must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failover {
    pub surviving: Region,
    pub lost: Region,
}

impl FromJob for Failover {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        let v: RegionVars = from_vars(&job.variables)?;
        let lost = required("lostRegion", v.lost_region)?;
        let surviving = check_surviving(v.surviving_region, lost.other())?;
        Ok(Failover { surviving, lost })
    }
}

/// A failback step's regions: `recreatedRegion` required (in a drill the validated inputs set it
/// = lostRegion), `survivingRegion` optional but must agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failback {
    pub surviving: Region,
    pub recreated: Region,
}

impl FromJob for Failback {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        let v: RegionVars = from_vars(&job.variables)?;
        let recreated = required("recreatedRegion", v.recreated_region)?;
        let surviving = check_surviving(v.surviving_region, recreated.other())?;
        Ok(Failback { surviving, recreated })
    }
}

/// The surviving region of a step that runs in either process: `survivingRegion`, else derived
/// from `recreatedRegion` / `lostRegion`; `recreated` is set in a failback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Surviving {
    pub surviving: Region,
    pub recreated: Option<Region>,
}

impl Surviving {
    /// The lost or recreated region.
    pub fn other(&self) -> Region {
        self.surviving.other()
    }
    /// `recreatedRegion`, for a branch that only runs in a failback.
    pub fn recreated(&self) -> Result<Region, StepError> {
        required("recreatedRegion", self.recreated)
    }
}

impl FromJob for Surviving {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        let v: RegionVars = from_vars(&job.variables)?;
        let other = v.recreated_region.or(v.lost_region);
        let surviving = match (v.surviving_region, other) {
            (Some(s), Some(o)) if s == o => {
                return Err(StepError::invalid(
                    "survivingRegion",
                    format!(
                        "variable `survivingRegion` = {s} equals the lost/recreated region: it must be {}",
                        o.other()
                    ),
                ));
            }
            (Some(s), _) => s,
            (None, Some(o)) => o.other(),
            (None, None) => {
                return Err(StepError::invalid(
                    "survivingRegion",
                    "variable `survivingRegion` is required (or `lostRegion` / `recreatedRegion` to derive it): 0 or 1",
                ));
            }
        };
        Ok(Surviving { surviving, recreated: v.recreated_region })
    }
}

/// A change id as a step that started a change completes with: a non-negative integer (a
/// numeric string is accepted), or null when that step changed nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRef {
    /// The step changed nothing: nothing to wait for.
    Nothing,
    Id(i64),
}

impl<'de> Deserialize<'de> for ChangeRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let n = match &v {
            Value::Null => return Ok(ChangeRef::Nothing),
            Value::Number(n) => n.as_i64(),
            Value::String(s) => s.parse().ok(),
            _ => None,
        };
        match n {
            Some(n) if n >= 0 => Ok(ChangeRef::Id(n)),
            _ => Err(D::Error::custom(format!("must be a non-negative integer, got {}", show(&v)))),
        }
    }
}

/// `changeId`: required (null = nothing changed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeVar {
    pub change_id: ChangeRef,
}

/// A snapshot name: Elasticsearch's rules (lower case, no spaces, none of `\/*?"<>|,#`, not
/// starting with `_` or `-`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotName(pub String);

impl<'de> Deserialize<'de> for SnapshotName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let name = match &v {
            Value::String(s) if !s.trim().is_empty() => s.clone(),
            Value::Null => return Err(D::Error::custom("is required (a non-empty string)")),
            _ => return Err(D::Error::custom(format!("must be a non-empty string, got {}", show(&v)))),
        };
        let bad = name.chars().any(|c| c.is_ascii_uppercase() || c.is_whitespace() || "\\/*?\"<>|,#".contains(c))
            || name.starts_with('_')
            || name.starts_with('-');
        if bad {
            return Err(D::Error::custom(format!(
                "= {name:?} is not a valid snapshot name: lower case, no spaces or \\/*?\"<>|,#, not starting with _ or -"
            )));
        }
        Ok(SnapshotName(name))
    }
}

impl SnapshotName {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// `snapshotName`: required.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SnapshotVar {
    pub snapshot_name: SnapshotName,
}

/// `snapshotName`: optional (validated when given).
#[derive(Debug, Clone, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OptionalSnapshotVar {
    #[serde(default)]
    pub snapshot_name: Option<SnapshotName>,
}

impl OptionalSnapshotVar {
    /// `snapshotName`, for a branch that needs it.
    pub fn required(self) -> Result<SnapshotName, StepError> {
        self.snapshot_name.ok_or_else(|| {
            StepError::invalid("snapshotName", "variable `snapshotName` is required (a non-empty string)")
        })
    }
}

/// `canaryCount`: 1..100, default 6.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CanaryCount(pub usize);

impl Default for CanaryCount {
    fn default() -> Self {
        CanaryCount(6)
    }
}

impl<'de> Deserialize<'de> for CanaryCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if v.is_null() {
            return Ok(CanaryCount::default());
        }
        match v.as_i64() {
            Some(n @ 1..=100) => Ok(CanaryCount(n as usize)),
            _ => Err(D::Error::custom(format!("must be an integer 1..100, got {}", show(&v)))),
        }
    }
}

/// The drill's canaries: `canaryCount`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryVars {
    #[serde(default)]
    pub canary_count: CanaryCount,
}

from_vars_only!(ChangeVar, SnapshotVar, OptionalSnapshotVar, CanaryVars);

/// A task header with a closed set of values, set in the BPMN (the element templates list them).
pub trait HeaderValue: Sized + Copy + 'static {
    /// The header's name.
    const NAME: &'static str;
    /// The values, as the BPMN spells them.
    const VALUES: &'static [(&'static str, Self)];
}

/// The task header `T::NAME`, parsed: a missing or unknown value is INVALID_INPUT naming the
/// header ("fix the BPMN").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<T>(pub T);

impl<T: HeaderValue> Header<T> {
    fn parse(got: &str) -> Result<Self, StepError> {
        if let Some((_, v)) = T::VALUES.iter().find(|(name, _)| *name == got) {
            return Ok(Header(*v));
        }
        let names: Vec<&str> = T::VALUES.iter().map(|(n, _)| *n).collect();
        let expected = match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} or {last}", rest.join(", ")),
            _ => names.join(""),
        };
        Err(StepError::invalid(
            T::NAME,
            format!("task header `{}` must be {expected}, got {got:?}: fix the BPMN", T::NAME),
        ))
    }

    /// The header, for a branch that needs it: an absent one is INVALID_INPUT as a bad one is.
    pub fn required(header: Option<Header<T>>) -> Result<T, StepError> {
        match header {
            Some(Header(v)) => Ok(v),
            None => Self::parse("").map(|h| h.0),
        }
    }
}

impl<T: HeaderValue> FromJob for Header<T> {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        Self::parse(job.headers.get(T::NAME).map(String::as_str).unwrap_or(""))
    }
}

/// A header only some branches of a step read: absent is None, present must be valid.
impl<T: HeaderValue> FromJob for Option<Header<T>> {
    fn from_job(job: &StepInput) -> Result<Self, StepError> {
        job.headers.get(T::NAME).map(|v| Header::parse(v)).transpose()
    }
}

macro_rules! header_values {
    ($(#[$doc:meta])* $name:ident, $header:literal, { $($variant:ident = $value:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($variant),+ }

        impl HeaderValue for $name {
            const NAME: &'static str = $header;
            const VALUES: &'static [(&'static str, Self)] = &[$(($value, $name::$variant)),+];
        }

        impl $name {
            /// The value as the BPMN spells it.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $value),+ }
            }
        }
    };
}

header_values!(
    /// `process` of `c8dr.validate-input` and `c8dr.report`.
    ProcessKind, "process", { Failover = "failover", Failback = "failback", Drill = "drill" }
);
header_values!(
    /// `expect` of `c8dr.verify-topology`.
    TopologyExpect, "expect", { Degraded = "degraded", Full = "full" }
);
header_values!(
    /// `expect` of `c8dr.verify-exporters`.
    ExportersExpect, "expect", { Failover = "failover", Full = "full" }
);
header_values!(
    /// `expect` of `c8dr.verify-profiles`.
    ProfilesExpect, "expect", { WebappsOff = "webapps-off", WebappsOn = "webapps-on" }
);
header_values!(
    /// `action` of `c8dr.drill-region`.
    DrillAction, "action", { Lose = "lose", Recreate = "recreate" }
);
header_values!(
    /// `action` of `c8dr.drill-canaries`.
    CanaryAction, "action", { Create = "create", Check = "check" }
);
header_values!(
    /// `region` of `c8dr.helm` and `c8dr.verify-profiles`.
    TargetRegions, "region", { Surviving = "surviving", Recreated = "recreated", Both = "both" }
);
header_values!(
    /// `region` of `c8dr.drill-canaries` (action check).
    CheckRegions, "region", { Surviving = "surviving", Both = "both" }
);
header_values!(
    /// `region` of `c8dr.register-snapshot-repo`.
    SnapshotRegion, "region", { Surviving = "surviving", Recreated = "recreated" }
);

/// `action` of `c8dr.helm`.
impl HeaderValue for crate::platform::HelmAction {
    const NAME: &'static str = "action";
    const VALUES: &'static [(&'static str, Self)] = &[
        ("deploy-recreated", Self::DeployRecreated),
        ("disable-webapps", Self::DisableWebapps),
        ("enable-webapps", Self::EnableWebapps),
    ];
}

/// The regions a `region` header value names (`surviving`, `lost` / `recreated` = the other
/// one, `both`), as indexes.
pub fn named_regions(value: &str, surviving: Region) -> Vec<u8> {
    match value {
        "surviving" => vec![surviving.index()],
        "both" => vec![0, 1],
        _ => vec![surviving.other().index()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn job(v: Value) -> StepInput {
        StepInput { variables: v.as_object().unwrap().clone(), ..Default::default() }
    }

    fn refusal(e: StepError) -> (String, String) {
        match e {
            StepError::Refused { code, field, message, .. } => {
                assert_eq!(code, "INVALID_INPUT");
                (field.unwrap_or_default(), message)
            }
            other => panic!("expected INVALID_INPUT, got {other:?}"),
        }
    }

    #[test]
    fn a_region_is_0_or_1_and_knows_the_other() {
        assert_eq!(Region::Zero.other(), Region::One);
        assert_eq!(Region::One.index(), 1);
        assert_eq!(Region::One.to_string(), "1");
        assert_eq!(serde_json::to_value(Region::One).unwrap(), json!(1));
        let f = Failover::from_job(&job(json!({"lostRegion": "1"}))).unwrap();
        assert_eq!(f, Failover { surviving: Region::Zero, lost: Region::One });
        for bad in [json!(2), json!(-1), json!("one"), json!(0.5), json!(true), json!("é".repeat(40))] {
            let (field, message) = refusal(Failover::from_job(&job(json!({ "lostRegion": bad }))).unwrap_err());
            assert_eq!(field, "lostRegion");
            assert!(message.starts_with("variable `lostRegion` must be the region number 0 or 1, got"), "{message}");
        }
        for missing in [json!({}), json!({"lostRegion": null})] {
            let (field, message) = refusal(Failover::from_job(&job(missing)).unwrap_err());
            assert_eq!(
                (field.as_str(), message.as_str()),
                ("lostRegion", "variable `lostRegion` is required: set it to 0 or 1")
            );
        }
    }

    #[test]
    fn the_surviving_region_must_be_the_other_one() {
        let (field, message) =
            refusal(Failback::from_job(&job(json!({"recreatedRegion": 1, "survivingRegion": 1}))).unwrap_err());
        assert_eq!(field, "survivingRegion");
        assert!(message.contains("it must be 0"), "{message}");
        let s = Surviving::from_job(&job(json!({"recreatedRegion": 1}))).unwrap();
        assert_eq!((s.surviving, s.recreated, s.other()), (Region::Zero, Some(Region::One), Region::One));
        let s = Surviving::from_job(&job(json!({"survivingRegion": 1, "lostRegion": 0}))).unwrap();
        assert_eq!(s.surviving, Region::One);
        assert_eq!(refusal(Surviving::from_job(&job(json!({}))).unwrap_err()).0, "survivingRegion");
        assert_eq!(
            refusal(Surviving::from_job(&job(json!({"lostRegion": 0, "survivingRegion": 0}))).unwrap_err()).0,
            "survivingRegion"
        );
        // a bad region is named even where it is optional
        assert_eq!(refusal(Surviving::from_job(&job(json!({"recreatedRegion": 9}))).unwrap_err()).0, "recreatedRegion");
    }

    #[test]
    fn headers_are_one_of_their_values() {
        let with =
            |k: &str, v: &str| StepInput { headers: [(k.to_string(), v.to_string())].into(), ..Default::default() };
        assert_eq!(Header::<TopologyExpect>::from_job(&with("expect", "full")).unwrap().0, TopologyExpect::Full);
        assert_eq!(ProfilesExpect::WebappsOff.as_str(), "webapps-off");
        let (field, message) = refusal(Header::<TopologyExpect>::from_job(&with("expect", "fully")).unwrap_err());
        assert_eq!(field, "expect");
        assert_eq!(message, "task header `expect` must be degraded or full, got \"fully\": fix the BPMN");
        let (field, _) = refusal(Header::<DrillAction>::from_job(&StepInput::default()).unwrap_err());
        assert_eq!(field, "action");
        // a header only one branch reads: absent is fine, bad is not, and the branch requires it
        assert_eq!(Option::<Header<CheckRegions>>::from_job(&StepInput::default()).unwrap(), None);
        assert_eq!(
            refusal(Option::<Header<CheckRegions>>::from_job(&with("region", "recreated")).unwrap_err()).0,
            "region"
        );
        assert_eq!(refusal(Header::<CheckRegions>::required(None).unwrap_err()).0, "region");
        assert_eq!(named_regions(TargetRegions::Recreated.as_str(), Region::One), vec![0]);
        assert_eq!(named_regions(TargetRegions::Both.as_str(), Region::One), vec![0, 1]);
    }

    #[test]
    fn change_ids_snapshot_names_and_canary_counts() {
        assert_eq!(ChangeVar::from_job(&job(json!({"changeId": "7"}))).unwrap().change_id, ChangeRef::Id(7));
        assert_eq!(ChangeVar::from_job(&job(json!({"changeId": null}))).unwrap().change_id, ChangeRef::Nothing);
        let (field, message) = refusal(ChangeVar::from_job(&job(json!({}))).unwrap_err());
        assert_eq!(field, "changeId");
        assert!(message.contains("is required: the change id"), "{message}");
        assert_eq!(refusal(ChangeVar::from_job(&job(json!({"changeId": -3}))).unwrap_err()).0, "changeId");
        let ok = SnapshotVar::from_job(&job(json!({"snapshotName": "c8dr-failback-1"}))).unwrap();
        assert_eq!(ok.snapshot_name.as_str(), "c8dr-failback-1");
        let (field, message) = refusal(SnapshotVar::from_job(&job(json!({"snapshotName": "Bad Name"}))).unwrap_err());
        assert_eq!(field, "snapshotName");
        assert!(
            message.starts_with("variable `snapshotName` = \"Bad Name\" is not a valid snapshot name"),
            "{message}"
        );
        assert_eq!(OptionalSnapshotVar::from_job(&job(json!({}))).unwrap().snapshot_name, None);
        assert_eq!(CanaryVars::from_job(&job(json!({}))).unwrap().canary_count, CanaryCount(6));
        assert_eq!(refusal(CanaryVars::from_job(&job(json!({"canaryCount": 101}))).unwrap_err()).0, "canaryCount");
    }
}
