//! Variables -> typed inputs. Every error is INVALID_INPUT naming the field and the fix.
//! Also the `c8dr.validate-input` step, which normalizes the process inputs.
use super::inputs::{Header, ProcessKind, Region, show};
use super::{Done, StepEnv, StepError, StepResult};
use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

type Vars = Map<String, Value>;

/// A region variable: the number 0 or 1 (a JSON string "0"/"1" is accepted too).
pub fn region(vars: &Vars, field: &str) -> Result<u8, StepError> {
    match optional_region(vars, field)? {
        Some(r) => Ok(r),
        None => Err(StepError::invalid(field, format!("variable `{field}` is required: set it to 0 or 1"))),
    }
}

/// An optional region variable; the rule is [`Region`]'s.
pub fn optional_region(vars: &Vars, field: &str) -> Result<Option<u8>, StepError> {
    let Some(v) = vars.get(field).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    Region::deserialize(v)
        .map(|r| Some(r.index()))
        .map_err(|e| StepError::invalid(field, format!("variable `{field}` {e}")))
}

pub fn string(vars: &Vars, field: &str) -> Result<String, StepError> {
    match vars.get(field) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        None | Some(Value::Null) => {
            Err(StepError::invalid(field, format!("variable `{field}` is required (a non-empty string)")))
        }
        Some(v) => {
            Err(StepError::invalid(field, format!("variable `{field}` must be a non-empty string, got {}", show(v))))
        }
    }
}

pub fn optional_string(vars: &Vars, field: &str, default: &str) -> Result<String, StepError> {
    match vars.get(field) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(v) => Err(StepError::invalid(field, format!("variable `{field}` must be a string, got {}", show(v)))),
    }
}

pub fn optional_bool(vars: &Vars, field: &str, default: bool) -> Result<bool, StepError> {
    match vars.get(field) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(v) => Err(StepError::invalid(field, format!("variable `{field}` must be true or false, got {}", show(v)))),
    }
}

pub fn int_in(vars: &Vars, field: &str, default: i64, min: i64, max: i64) -> Result<i64, StepError> {
    let v = match vars.get(field) {
        None | Some(Value::Null) => return Ok(default),
        Some(v) => v,
    };
    match v.as_i64() {
        Some(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(StepError::invalid(
            field,
            format!("variable `{field}` must be an integer {min}..{max}, got {}", show(v)),
        )),
    }
}

/// ISO-8601 durations as FEEL takes them: `PnDTnHnMnS` (seconds may be fractional), e.g. `PT5S`.
/// `lostRegionOverride`: a person accepts one exact answer of the lost region's management API
/// (e.g. an ingress default backend's 404) as "the region is gone".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LostRegionOverride {
    /// `HTTP <status>`, exactly as the split-brain check reports it.
    pub accept_answer: String,
    /// Who confirmed the loss and how (recorded in the journal and the report).
    pub reason: String,
}

/// The optional `lostRegionOverride` variable, validated.
pub fn lost_region_override(vars: &Vars) -> Result<Option<LostRegionOverride>, StepError> {
    const FIELD: &str = "lostRegionOverride";
    let Some(v) = vars.get(FIELD).filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let bad = |why: &str| {
        StepError::invalid(
            FIELD,
            format!(
                "lostRegionOverride {why}: give {{\"acceptAnswer\": \"HTTP 404\", \"reason\": \"who confirmed the region is gone and how\"}}"
            ),
        )
    };
    let Some(obj) = v.as_object() else { return Err(bad("must be an object")) };
    if let Some(k) = obj.keys().find(|k| *k != "acceptAnswer" && *k != "reason") {
        return Err(bad(&format!("has an unknown key {:?}", k.chars().take(40).collect::<String>())));
    }
    let answer = obj.get("acceptAnswer").and_then(Value::as_str).unwrap_or("");
    let ok_answer = answer.len() == 8
        && answer.starts_with("HTTP ")
        && answer[5..].chars().all(|c| c.is_ascii_digit())
        && matches!(answer.as_bytes()[5], b'1'..=b'4');
    if !ok_answer {
        return Err(bad("acceptAnswer must be an HTTP status below 500 as the check reports it, e.g. \"HTTP 404\""));
    }
    let reason = obj.get("reason").and_then(Value::as_str).unwrap_or("").trim();
    if reason.chars().count() < 3 || reason.chars().count() > 500 {
        return Err(bad("reason must be 3 to 500 characters"));
    }
    Ok(Some(LostRegionOverride { accept_answer: answer.to_string(), reason: reason.to_string() }))
}

pub fn is_iso_duration(s: &str) -> bool {
    let Some(rest) = s.strip_prefix('P') else {
        return false;
    };
    if rest.is_empty() {
        return false;
    }
    let (date, time) = match rest.split_once('T') {
        Some((d, t)) => {
            if t.is_empty() {
                return false;
            }
            (d, Some(t))
        }
        None => (rest, None),
    };
    fn parts(s: &str, units: &str) -> bool {
        let mut num = String::new();
        let mut last_unit = 0usize;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
            } else {
                let Some(pos) = units.find(c) else {
                    return false;
                };
                if num.is_empty() || num.parse::<f64>().is_err() || pos < last_unit {
                    return false;
                }
                if c != 'S' && num.contains('.') {
                    return false;
                }
                last_unit = pos + 1;
                num.clear();
            }
        }
        num.is_empty()
    }
    parts(date, "YMWD") && time.is_none_or(|t| parts(t, "HMS"))
}

pub fn duration(vars: &Vars, field: &str, default: &str) -> Result<String, StepError> {
    match vars.get(field) {
        None | Some(Value::Null) => Ok(default.to_string()),
        Some(Value::String(s)) if is_iso_duration(s) => Ok(s.clone()),
        Some(v) => Err(StepError::invalid(
            field,
            format!("variable `{field}` must be an ISO-8601 duration such as PT5S or PT15M, got {}", show(v)),
        )),
    }
}

/// `c8dr.validate-input` (header `process: failover|failback|drill`).
pub async fn validate_input(env: &StepEnv<'_>, Header(process): Header<ProcessKind>) -> StepResult {
    let v = &env.input.variables;
    let mut out = Map::new();
    out.insert("target".into(), json!(env.input.target_name));
    let surviving = match process {
        ProcessKind::Failover | ProcessKind::Drill => {
            let lost = region(v, "lostRegion")?;
            out.insert("lostRegion".into(), json!(lost));
            if process == ProcessKind::Failover {
                out.insert("reason".into(), json!(optional_string(v, "reason", "")?));
                if let Some(o) = lost_region_override(v)? {
                    out.insert(
                        "lostRegionOverride".into(),
                        json!({"acceptAnswer": o.accept_answer, "reason": o.reason}),
                    );
                }
            } else {
                out.insert("recreatedRegion".into(), json!(lost));
                out.insert("canaryCount".into(), json!(int_in(v, "canaryCount", 6, 1, 100)?));
                out.insert("canaryTimeout".into(), json!(duration(v, "canaryTimeout", "PT10M")?));
            }
            1 - lost
        }
        ProcessKind::Failback => {
            let recreated = region(v, "recreatedRegion")?;
            out.insert("recreatedRegion".into(), json!(recreated));
            out.insert(
                "snapshotName".into(),
                json!(format!("{}-{}", env.target.snapshot.name_prefix, env.input.process_instance_key)),
            );
            for (f, d) in [
                ("snapshotTimeout", "PT30M"),
                ("restoreTimeout", "PT60M"),
                ("brokersVisibleTimeout", "PT20M"),
                ("pausedWindowTimeout", "PT30M"),
            ] {
                out.insert(f.into(), json!(duration(v, f, d)?));
            }
            1 - recreated
        }
    };
    if let Some(s) = optional_region(v, "survivingRegion")?
        && s != surviving
    {
        return Err(StepError::invalid(
            "survivingRegion",
            format!(
                "variable `survivingRegion` = {s} contradicts the lost/recreated region: it must be {surviving} (or be left out)"
            ),
        ));
    }
    out.insert("survivingRegion".into(), json!(surviving));
    let auto = optional_bool(v, "autoApprove", false)?;
    if auto && !env.target.drill_allowed {
        return Err(StepError::invalid(
            "autoApprove",
            format!(
                "autoApprove is only allowed on targets with drill_allowed = true; target `{}` is not",
                env.input.target_name
            ),
        ));
    }
    out.insert("autoApprove".into(), json!(auto));
    out.insert("approverGroup".into(), json!(optional_string(v, "approverGroup", "dr-operators")?));
    for (f, d) in
        [("verifyInterval", "PT5S"), ("changeTimeout", "PT15M"), ("approvalDue", "PT1H"), ("reminderAfter", "PT15M")]
    {
        out.insert(f.into(), json!(duration(v, f, d)?));
    }
    let started = match v.get("startedAt") {
        Some(Value::String(s)) if chrono::DateTime::parse_from_rfc3339(s).is_ok() => s.clone(),
        _ => Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
    };
    out.insert("startedAt".into(), json!(started));
    out.insert("instanceStartedAt".into(), instance_started_at(v, env.input.process_instance_key));
    Ok(Done::done(out))
}

/// `instanceStartedAt`: when this process instance started (its validation), with the instance's
/// key. Unlike `startedAt`, which a called failover/failback inherits from the drill, the key
/// tells the instance's own start from an inherited one; the report measures the recovery time
/// from it whichever worker replica ran which step. A re-run of the validation keeps the value.
pub fn instance_started_at(v: &Map<String, Value>, process_instance_key: i64) -> Value {
    let at = super::report::instance_start(v, process_instance_key).map_or_else(
        || Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        |t| t.to_rfc3339_opts(SecondsFormat::Millis, true),
    );
    json!({"processInstanceKey": process_instance_key.to_string(), "at": at})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(v: Value) -> Vars {
        v.as_object().unwrap().clone()
    }

    fn field_of(o: StepError) -> (String, Option<String>) {
        match o {
            StepError::Refused { code, field, .. } => (code.to_string(), field),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn region_accepts_0_and_1_only() {
        assert_eq!(region(&vars(json!({"lostRegion": 1})), "lostRegion").unwrap(), 1);
        assert_eq!(region(&vars(json!({"lostRegion": "0"})), "lostRegion").unwrap(), 0);
        for bad in [
            json!({"lostRegion": 2}),
            json!({"lostRegion": -1}),
            json!({"lostRegion": "one"}),
            json!({}),
            json!({"lostRegion": 0.5}),
            // a long non-ASCII value: the message truncates it on a char boundary, no panic
            json!({"lostRegion": "é".repeat(40)}),
        ] {
            let (code, field) = field_of(region(&vars(bad), "lostRegion").unwrap_err());
            assert_eq!(code, "INVALID_INPUT");
            assert_eq!(field.as_deref(), Some("lostRegion"));
        }
    }

    #[test]
    fn durations() {
        for ok in ["PT5S", "PT15M", "PT1H", "P1D", "P1DT2H", "PT0.5S", "PT1H30M"] {
            assert!(is_iso_duration(ok), "{ok}");
        }
        for bad in ["5s", "PT", "P", "PT5", "PTS", "PT1S1M", "P1.5D", ""] {
            assert!(!is_iso_duration(bad), "{bad}");
        }
    }

    #[test]
    fn ints_in_a_range() {
        assert_eq!(int_in(&vars(json!({})), "n", 6, 1, 100).unwrap(), 6);
        assert!(int_in(&vars(json!({"n": 101})), "n", 6, 1, 100).is_err());
    }
}
