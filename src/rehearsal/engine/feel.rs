//! FEEL expressions for the rehearsal engine, on top of the dsntk crates.
//!
//! Zeebe conventions: an expression starts with `=`, anything else is a static string value;
//! a missing variable evaluates to `null`; durations and date-times are stored in variables as
//! ISO-8601 strings. Extension around dsntk: `now()` is replaced (outside string literals) by the
//! simulated time of the engine's clock, because dsntk's `now()` reads the wall clock.
use chrono::{DateTime, SecondsFormat, Utc};
use dsntk_feel::context::FeelContext;
use dsntk_feel::values::Value;
use dsntk_feel::{FeelNumber, FeelScope, Name};
use dsntk_feel_parser::AstNode;
use serde_json::{Map, Value as Json};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct FeelError(pub String);

/// True when `text` is a FEEL expression (starts with `=`).
pub fn is_expression(text: &str) -> bool {
    text.trim_start().starts_with('=')
}

/// Evaluates `text`: a FEEL expression (`=...`) against `vars`, or a static string value.
pub fn evaluate(text: &str, vars: &Map<String, Json>, now: DateTime<Utc>) -> Result<Json, FeelError> {
    let trimmed = text.trim_start();
    let Some(expr) = trimmed.strip_prefix('=') else {
        return Ok(Json::String(text.to_string()));
    };
    evaluate_expression(expr, vars, now)
}

/// Evaluates a FEEL expression (without the leading `=`).
pub fn evaluate_expression(expr: &str, vars: &Map<String, Json>, now: DateTime<Utc>) -> Result<Json, FeelError> {
    let expr = replace_now(expr.trim(), now);
    if expr.is_empty() {
        return Err(FeelError("empty FEEL expression".into()));
    }
    let mut ctx = FeelContext::default();
    for (k, v) in vars {
        ctx.set_entry(&Name::from(k.as_str()), to_feel(v));
    }
    let scope = FeelScope::new();
    scope.push(ctx);
    let node = dsntk_feel_parser::parse_expression(&scope, &expr, false)
        .map_err(|e| FeelError(format!("failed to parse FEEL expression '{expr}': {e}")))?;
    let node = null_safe_equality(node);
    let value = dsntk_feel_evaluator::evaluate(&scope, &node);
    from_feel(&value).map_err(|e| FeelError(format!("FEEL expression '{expr}': {e}")))
}

/// dsntk answers `null = true` with null; FEEL (and Zeebe's feel-scala) answer false: a
/// comparison with null is false unless both sides are null. Rewrites `a = b` into
/// `if a = null then b = null else a = b` (and `!=` likewise) through the operators, `if`,
/// lists, contexts and function arguments (other nodes keep dsntk's behaviour).
fn null_safe_equality(node: AstNode) -> AstNode {
    use AstNode as N;
    let b = |n: AstNode| Box::new(null_safe_equality(n));
    let is_null = |n: &AstNode| N::Eq(Box::new(n.clone()), Box::new(N::Null));
    match node {
        N::Eq(l, r) => {
            let (l, r) = (null_safe_equality(*l), null_safe_equality(*r));
            N::If(Box::new(is_null(&l)), Box::new(is_null(&r)), Box::new(N::Eq(Box::new(l), Box::new(r))))
        }
        N::Nq(l, r) => {
            let (l, r) = (null_safe_equality(*l), null_safe_equality(*r));
            let r_not_null = N::If(Box::new(is_null(&r)), Box::new(N::Boolean(false)), Box::new(N::Boolean(true)));
            N::If(Box::new(is_null(&l)), Box::new(r_not_null), Box::new(N::Nq(Box::new(l), Box::new(r))))
        }
        N::And(l, r) => N::And(b(*l), b(*r)),
        N::Or(l, r) => N::Or(b(*l), b(*r)),
        N::Add(l, r) => N::Add(b(*l), b(*r)),
        N::Sub(l, r) => N::Sub(b(*l), b(*r)),
        N::Mul(l, r) => N::Mul(b(*l), b(*r)),
        N::Div(l, r) => N::Div(b(*l), b(*r)),
        N::If(c, t, e) => N::If(b(*c), b(*t), b(*e)),
        N::List(items) => N::List(items.into_iter().map(null_safe_equality).collect()),
        N::Context(items) => N::Context(items.into_iter().map(null_safe_equality).collect()),
        N::ContextEntry(k, v) => N::ContextEntry(k, b(*v)),
        N::FunctionInvocation(f, args) => N::FunctionInvocation(f, b(*args)),
        N::PositionalParameters(items) => N::PositionalParameters(items.into_iter().map(null_safe_equality).collect()),
        N::NamedParameters(items) => N::NamedParameters(items.into_iter().map(null_safe_equality).collect()),
        N::NamedParameter(n, v) => N::NamedParameter(n, b(*v)),
        other => other,
    }
}

/// Replaces `now()` outside string literals by a `date and time("...")` literal of `now`.
fn replace_now(expr: &str, now: DateTime<Utc>) -> String {
    let literal = format!("date and time(\"{}\")", now.to_rfc3339_opts(SecondsFormat::Millis, true));
    let mut out = String::with_capacity(expr.len() + 32);
    let mut in_string = false;
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c == '"' {
            in_string = !in_string;
        } else if c == '\\' && in_string {
            let mut it = rest.chars();
            out.push(c);
            it.next();
            if let Some(n) = it.next() {
                out.push(n);
            }
            rest = it.as_str();
            continue;
        }
        if !in_string && rest.starts_with("now()") {
            let prev_is_ident = out.chars().last().is_some_and(|p| p.is_alphanumeric() || p == '_');
            if !prev_is_ident {
                out.push_str(&literal);
                rest = &rest[5..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

fn to_feel(v: &Json) -> Value {
    match v {
        Json::Null => Value::Null(None),
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => match FeelNumber::from_str(&n.to_string()) {
            Ok(n) => Value::Number(n),
            Err(_) => Value::Null(Some(format!("number {n} out of range"))),
        },
        Json::String(s) => Value::String(s.clone()),
        Json::Array(a) => Value::List(a.iter().map(to_feel).collect()),
        Json::Object(o) => {
            let mut ctx = FeelContext::default();
            for (k, v) in o {
                ctx.set_entry(&Name::from(k.as_str()), to_feel(v));
            }
            Value::Context(ctx)
        }
    }
}

fn from_feel(v: &Value) -> Result<Json, String> {
    Ok(match v {
        Value::Null(_) => Json::Null,
        Value::Boolean(b) => Json::Bool(*b),
        Value::Number(n) => {
            let s = n.to_string();
            if let Ok(i) = s.parse::<i64>() {
                Json::from(i)
            } else {
                s.parse::<f64>().ok().and_then(serde_json::Number::from_f64).map(Json::Number).unwrap_or(Json::Null)
            }
        }
        Value::String(s) => Json::String(s.clone()),
        Value::List(items) => Json::Array(items.iter().map(from_feel).collect::<Result<_, _>>()?),
        Value::Context(ctx) => {
            let mut m = Map::new();
            for (k, v) in ctx.iter() {
                m.insert(String::from(k), from_feel(v)?);
            }
            Json::Object(m)
        }
        // RFC 3339 in UTC when dsntk's rendering parses (`...Z`, `...+01:00`, `...@UTC`)
        Value::DateTime(dt) => {
            let text = dt.to_string();
            Json::String(parse_date_time(&text).map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true)).unwrap_or(text))
        }
        Value::Date(d) => Json::String(d.to_string()),
        Value::Time(t) => Json::String(t.to_string()),
        Value::DaysAndTimeDuration(d) => Json::String(d.to_string()),
        Value::YearsAndMonthsDuration(d) => Json::String(d.to_string()),
        other => return Err(format!("unsupported result type: {}", other.type_of())),
    })
}

/// Parses an ISO-8601 duration (`PT5S`, `P1DT2H`, `-PT1M` is rejected). Years count 365 days and
/// months 30 days (only used for timers).
pub fn parse_iso_duration(text: &str) -> Result<Duration, FeelError> {
    let err = || FeelError(format!("'{text}' is not an ISO-8601 duration (e.g. PT5S, PT15M, P1DT2H)"));
    let s = text.trim();
    let body = s.strip_prefix('P').ok_or_else(err)?;
    if body.is_empty() {
        return Err(err());
    }
    let mut secs = 0f64;
    let mut in_time = false;
    let mut num = String::new();
    let mut any = false;
    for c in body.chars() {
        match c {
            'T' if !in_time && num.is_empty() => in_time = true,
            '0'..='9' | '.' | ',' => num.push(if c == ',' { '.' } else { c }),
            unit => {
                let n: f64 = num.parse().map_err(|_| err())?;
                num.clear();
                any = true;
                let factor = match (in_time, unit) {
                    (false, 'Y') => 365.0 * 86400.0,
                    (false, 'M') => 30.0 * 86400.0,
                    (false, 'W') => 7.0 * 86400.0,
                    (false, 'D') => 86400.0,
                    (true, 'H') => 3600.0,
                    (true, 'M') => 60.0,
                    (true, 'S') => 1.0,
                    _ => return Err(err()),
                };
                secs += n * factor;
            }
        }
    }
    if !num.is_empty() || !any {
        return Err(err());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses an ISO-8601 date-time (RFC 3339; also FEEL's `2026-01-01T10:00:00@UTC` style zone ids
/// for UTC).
pub fn parse_date_time(text: &str) -> Result<DateTime<Utc>, FeelError> {
    let s = text.trim();
    let s = s.strip_suffix("@UTC").or_else(|| s.strip_suffix("@Etc/UTC")).map(|b| format!("{b}Z"));
    let s = s.as_deref().unwrap_or(text.trim());
    DateTime::parse_from_rfc3339(s)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| FeelError(format!("'{text}' is not an ISO-8601 date-time: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn eval(expr: &str, vars: Json) -> Json {
        let m = vars.as_object().cloned().unwrap_or_default();
        evaluate(expr, &m, DateTime::parse_from_rfc3339("2026-01-02T03:04:05Z").unwrap().with_timezone(&Utc)).unwrap()
    }

    #[test]
    fn static_values_are_strings() {
        assert_eq!(eval("c8dr.remove-brokers", json!({})), json!("c8dr.remove-brokers"));
    }

    #[test]
    fn paths_comparisons_and_logic() {
        let v = json!({"plan": {"brokersToRemove": [1, 3, 5]}, "verified": true, "n": 2, "s": "a"});
        assert_eq!(eval("=plan.brokersToRemove", v.clone()), json!([1, 3, 5]));
        assert_eq!(eval("=count(plan.brokersToRemove)", v.clone()), json!(3));
        assert_eq!(eval("=verified and n > 1", v.clone()), json!(true));
        assert_eq!(eval("=not(verified) or n = 3", v.clone()), json!(false));
        assert_eq!(eval("=if n >= 2 then \"big\" else \"small\"", v.clone()), json!("big"));
        assert_eq!(eval("=s + \"-\" + string(n)", v.clone()), json!("a-2"));
        assert_eq!(eval("={a: 1, b: [true, null]}", v.clone()), json!({"a": 1, "b": [true, null]}));
        assert_eq!(eval("=1.5 * 2", v.clone()), json!(3));
        assert_eq!(eval("=0.5", v), json!(0.5));
    }

    #[test]
    fn missing_variables_are_null() {
        assert_eq!(eval("=missing", json!({})), Json::Null);
        assert_eq!(eval("=missing = null", json!({})), json!(true));
        // comparisons with null are false (feel-scala), not null (dsntk)
        assert_eq!(eval("=missing = true", json!({})), json!(false));
        assert_eq!(eval("=true = missing", json!({})), json!(false));
        assert_eq!(eval("=report.outcome = \"completed\"", json!({})), json!(false));
        assert_eq!(eval("=missing != true", json!({})), json!(true));
        assert_eq!(eval("=missing != null", json!({})), json!(false));
        assert_eq!(eval("=x = \"a\" or missing = true", json!({"x": "a"})), json!(true));
        assert_eq!(eval("=if missing = \"retry\" then 1 else 2", json!({})), json!(2));
        assert_eq!(eval("=not(missing = true)", json!({})), json!(true));
        assert_eq!(eval("=x = 3", json!({"x": 3})), json!(true));
    }

    #[test]
    fn gate_conditions_are_false_for_anything_but_an_explicit_yes() {
        // the BPMN gates: `if <test> then true else false`, so a wrong type is no, not an incident
        let gate = |v: Json| eval("=if trafficRerouted = true then true else false", v);
        assert_eq!(gate(json!({"trafficRerouted": true})), json!(true));
        for no in [
            json!({"trafficRerouted": false}),
            json!({}),
            json!({"trafficRerouted": null}),
            json!({"trafficRerouted": "yes"}),
            json!({"trafficRerouted": 1}),
        ] {
            assert_eq!(gate(no.clone()), json!(false), "{no}");
        }
        let approve = |v: Json| eval("=if decision = \"approve\" then true else false", v);
        assert_eq!(approve(json!({"decision": "approve"})), json!(true));
        assert_eq!(approve(json!({"decision": 1})), json!(false));
        assert_eq!(approve(json!({"decision": ["approve"]})), json!(false));
        let shown = "=(if d = null then \"missing\" else string(d))";
        assert_eq!(eval(shown, json!({})), json!("missing"));
        assert_eq!(eval(shown, json!({"d": 1})), json!("1"));
        assert_eq!(eval(shown, json!({"d": "yes"})), json!("yes"));
    }

    #[test]
    fn temporal_values_become_iso_strings() {
        assert_eq!(eval("=duration(\"PT5S\")", json!({})), json!("PT5S"));
        let due = eval("=now() + duration(d)", json!({"d": "PT1H"}));
        assert_eq!(due, json!("2026-01-02T04:04:05.000Z"));
        let due = parse_date_time(due.as_str().unwrap()).unwrap();
        assert_eq!(due.to_rfc3339(), "2026-01-02T04:04:05+00:00");
        let dt = eval("=date and time(\"2026-03-01T10:00:00Z\")", json!({}));
        assert_eq!(parse_date_time(dt.as_str().unwrap()).unwrap().to_rfc3339(), "2026-03-01T10:00:00+00:00");
        assert_eq!(eval("=\"now()\"", json!({})), json!("now()"));
    }

    #[test]
    fn iso_durations() {
        assert_eq!(parse_iso_duration("PT5S").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_iso_duration("P1DT1H30M").unwrap(), Duration::from_secs(86400 + 5400));
        assert_eq!(parse_iso_duration("PT0.5S").unwrap(), Duration::from_millis(500));
        assert!(parse_iso_duration("5S").is_err());
        assert!(parse_iso_duration("PT").is_err());
    }

    #[test]
    fn parse_errors_are_reported() {
        assert!(evaluate("=1 +", &Map::new(), Utc::now()).is_err());
    }
}
