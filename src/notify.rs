//! Notifications that reach people: `c8dr.notify` and the final outcome of `c8dr.report` posted
//! to the webhooks of `[notifications]` (generic JSON, Slack-compatible, PagerDuty Events API v2),
//! with bounded retries (exponential back-off with jitter).
//!
//! A webhook that keeps failing does NOT block the process unless it is marked `required`: a
//! broken Slack must not stall a failover. The step then completes with `notified: false` and the
//! failures (webhook name, attempts, error; never the URL or a secret) in `notifications`, and a
//! warning is logged. A `required` webhook that fails makes the job fail (the engine retries it,
//! then raises an incident). Secrets (URL secrets, header values, the routing key) are read at
//! send time and never written to logs, errors or variables; payloads carry no configured secret,
//! except PagerDuty's `routing_key`, which the Events API takes in the body.
use crate::config::{NotificationsConfig, Secret, SecretRef, WebhookConfig, WebhookKind};
use crate::procedure::{Done, StepError, StepInput, StepResult, vars};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value, json};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// PagerDuty Events API v2 endpoint (used when a `pagerduty` webhook sets no URL).
pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

/// How bad an event is (PagerDuty's four severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Info,
    Warning,
    Error,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
            Severity::Critical => "critical",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "info" => Some(Severity::Info),
            "warning" | "warn" => Some(Severity::Warning),
            "error" => Some(Severity::Error),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
    /// The default for an event name (a task header `severity` overrides it).
    pub fn for_event(event: &str) -> Self {
        match event {
            "step-failed" | "verification-timeout" | "paused-window-exceeded" => Severity::Error,
            "outcome" => Severity::Info,
            _ => Severity::Warning,
        }
    }
}

/// One notification.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// `approval-reminder`, `verification-timeout`, `step-failed`, `paused-window-exceeded`, `outcome`, ...
    pub event: String,
    pub target: String,
    pub process_instance_key: i64,
    pub element_id: String,
    pub element_name: Option<String>,
    pub severity: Severity,
    /// One line a person understands.
    pub message: String,
    pub time: DateTime<Utc>,
    /// Event-specific facts (outcome, recovery time, the failed step, ...).
    pub details: Map<String, Value>,
}

fn str_of<'a>(v: Option<&'a Value>, key: &str) -> Option<&'a str> {
    v.and_then(|v| v.get(key)).and_then(Value::as_str).filter(|s| !s.is_empty())
}

impl Event {
    /// The event of a `c8dr.notify` job: header `event` (default `notification`), optional headers
    /// `severity`, `message` and `name` (the element's readable name); `lastError` for failures.
    pub fn from_step(input: &StepInput) -> Self {
        let h = |k: &str| input.headers.get(k).map(|s| s.trim()).filter(|s| !s.is_empty());
        let event = h("event").unwrap_or("notification").to_string();
        let last_error = input.variables.get("lastError").filter(|v| v.is_object());
        let failed_step = str_of(last_error, "step");
        let error_msg = str_of(last_error, "message").map(crate::procedure::journal::scrub);
        let message = match h("message") {
            Some(m) => m.to_string(),
            None => {
                let mut m = match event.as_str() {
                    "approval-reminder" => format!("An approval is waiting for an answer ({})", input.element_id),
                    "verification-timeout" => {
                        format!("A verification did not succeed in time ({}); a person must decide", input.element_id)
                    }
                    "step-failed" => format!("Step {} failed; a person must decide", failed_step.unwrap_or("?")),
                    "paused-window" | "paused-window-exceeded" => {
                        "Exporting has been paused for longer than the paused window (pausedWindowTimeout): log \
                         compaction is blocked and disks fill; resume exporting or finish the failback"
                            .to_string()
                    }
                    other => format!("c8dr {other} ({})", input.element_id),
                };
                if let Some(e) = &error_msg {
                    m.push_str(": ");
                    m.push_str(e);
                }
                m
            }
        };
        let severity = h("severity").and_then(Severity::parse).unwrap_or_else(|| Severity::for_event(&event));
        let mut details = Map::new();
        if let Some(e) = last_error {
            let mut e = e.clone();
            if let Some(m) = e.get("message").and_then(Value::as_str) {
                e["message"] = json!(crate::procedure::journal::scrub(m));
            }
            details.insert("lastError".into(), e);
        }
        for k in ["process", "lostRegion", "survivingRegion"] {
            if let Some(v) = input.variables.get(k).filter(|v| !v.is_null()) {
                details.insert(k.into(), v.clone());
            }
        }
        Event {
            event,
            target: input.target_name.clone(),
            process_instance_key: input.process_instance_key,
            element_id: input.element_id.clone(),
            element_name: h("name").map(str::to_string),
            severity,
            message,
            time: Utc::now(),
            details,
        }
    }

    /// The final outcome of a process, from the report `c8dr.report` computed.
    pub fn outcome(input: &StepInput, report: &Value) -> Self {
        let process = report.get("process").and_then(Value::as_str).unwrap_or("process");
        let outcome = report.get("outcome").and_then(Value::as_str).unwrap_or("completed");
        let rto = report.get("recoveryTimeSeconds").and_then(Value::as_f64);
        let mut message = format!("{process} on target {}: {outcome}", input.target_name);
        if let Some(s) = rto {
            message.push_str(&format!(" (recovery time {s:.1} s)"));
        }
        let reason = report.get("outcomeReason").filter(|v| !v.is_null());
        let reason = reason.map(|r| r.as_str().map(str::to_string).unwrap_or_else(|| r.to_string()));
        if let Some(r) = reason.filter(|r| !r.trim().is_empty()) {
            message.push_str(&format!("; reason: {}", crate::procedure::journal::scrub(&r)));
        }
        let mut details = Map::new();
        for k in [
            "process",
            "outcome",
            "outcomeReason",
            "recoveryTimeSeconds",
            "fullRecoveryTimeSeconds",
            "durationSeconds",
            "mutations",
            "startedAt",
            "completedAt",
        ] {
            if let Some(v) = report.get(k).filter(|v| !v.is_null()) {
                details.insert(k.into(), v.clone());
            }
        }
        Event {
            event: "outcome".into(),
            target: input.target_name.clone(),
            process_instance_key: input.process_instance_key,
            element_id: input.element_id.clone(),
            element_name: None,
            severity: if outcome == "completed" { Severity::Info } else { Severity::Error },
            message,
            time: Utc::now(),
            details,
        }
    }

    fn time_str(&self) -> String {
        self.time.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    fn title(&self) -> String {
        format!("c8dr {}: {} [{}]", self.event, self.target, self.severity.as_str())
    }
}

/// The generic JSON payload.
pub fn generic_payload(e: &Event) -> Value {
    json!({
        "source": "c8dr",
        "event": e.event,
        "target": e.target,
        "processInstanceKey": e.process_instance_key.to_string(),
        "elementId": e.element_id,
        "elementName": e.element_name,
        "severity": e.severity.as_str(),
        "message": e.message,
        "time": e.time_str(),
        "details": e.details,
    })
}

/// A Slack incoming-webhook payload: `text` (notification fallback) and Block Kit blocks.
pub fn slack_payload(e: &Event) -> Value {
    let element = e.element_name.as_deref().unwrap_or(&e.element_id);
    json!({
        "text": format!("{}: {}", e.title(), e.message),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": truncate(&e.title(), 150)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": truncate(&e.message, 3000)}},
            {"type": "context", "elements": [{"type": "mrkdwn", "text": format!(
                "target *{}* · process instance `{}` · element `{}` · {}",
                e.target, e.process_instance_key, element, e.time_str()
            )}]},
        ],
    })
}

/// A PagerDuty Events API v2 `trigger`; the `dedup_key` is per process instance and event, so a
/// retried job or a repeated reminder updates one incident instead of opening another.
pub fn pagerduty_payload(e: &Event, routing_key: &Secret) -> Value {
    json!({
        "routing_key": routing_key.expose(),
        "event_action": "trigger",
        "dedup_key": format!("c8dr-{}-{}", e.process_instance_key, e.event),
        "payload": {
            "summary": truncate(&format!("{}: {}", e.title(), e.message), 1024),
            "source": format!("c8dr/{}", e.target),
            "severity": e.severity.as_str(),
            "timestamp": e.time_str(),
            "component": e.element_id,
            "group": e.target,
            "class": e.event,
            "custom_details": {
                "processInstanceKey": e.process_instance_key.to_string(),
                "elementName": e.element_name,
                "message": e.message,
                "details": e.details,
            },
        },
    })
}

fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// What happened to one webhook. `error` never holds the URL or a secret.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    pub webhook: String,
    pub delivered: bool,
    pub attempts: u32,
    pub required: bool,
    pub error: Option<String>,
}

impl Delivery {
    fn to_json(&self) -> Value {
        json!({"webhook": self.webhook, "delivered": self.delivered, "attempts": self.attempts, "error": self.error})
    }
}

/// Posts events to the configured webhooks.
#[derive(Debug, Clone)]
pub struct Notifier {
    config: NotificationsConfig,
    client: reqwest::Client,
}

/// One try's failure: retry it or not.
enum TryError {
    Retry(String),
    Fatal(String),
}

fn resolve(s: &SecretRef, what: &str) -> Result<Secret, String> {
    s.resolve().map_err(|e| format!("{what}: {e}"))
}

impl Notifier {
    pub fn new(config: NotificationsConfig) -> Self {
        // Redirects are not followed: a receiver must not bounce the payload (and its headers)
        // elsewhere.
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self { config, client }
    }

    pub fn is_empty(&self) -> bool {
        self.config.webhooks.is_empty()
    }

    fn wants(w: &WebhookConfig, e: &Event) -> bool {
        (w.events.is_empty() || w.events.iter().any(|x| x == &e.event))
            && (w.targets.is_empty() || w.targets.iter().any(|t| t == &e.target))
    }

    /// Sends `event` to every webhook that wants it (concurrently); one [`Delivery`] per webhook.
    pub async fn send(&self, event: &Event) -> Vec<Delivery> {
        let sends = self.config.webhooks.iter().filter(|w| Self::wants(w, event)).map(|w| self.send_one(w, event));
        futures::future::join_all(sends).await
    }

    async fn send_one(&self, w: &WebhookConfig, e: &Event) -> Delivery {
        let mut d =
            Delivery { webhook: w.name.clone(), delivered: false, attempts: 0, required: w.required, error: None };
        let prepared = self.prepare(w, e);
        let (url, headers, body) = match prepared {
            Ok(p) => p,
            Err(msg) => {
                d.error = Some(msg);
                return d;
            }
        };
        let max = self.config.max_attempts.max(1);
        loop {
            d.attempts += 1;
            match self.post(w, &url, &headers, &body).await {
                Ok(()) => {
                    d.delivered = true;
                    d.error = None;
                    return d;
                }
                Err(TryError::Fatal(m)) => {
                    d.error = Some(m);
                    return d;
                }
                Err(TryError::Retry(m)) => {
                    d.error = Some(m);
                    if d.attempts >= max {
                        return d;
                    }
                    let wait = backoff(&self.config, d.attempts);
                    tracing::debug!(webhook = %w.name, attempt = d.attempts, wait_ms = wait.as_millis() as u64, "notification failed, retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
    }

    #[allow(clippy::type_complexity)]
    fn prepare(&self, w: &WebhookConfig, e: &Event) -> Result<(Secret, Vec<(String, Secret)>, Value), String> {
        let url = match (&w.url_secret, &w.url) {
            (Some(s), _) => resolve(s, "url_secret")?,
            (None, Some(u)) => Secret::new(u.clone()),
            (None, None) if w.kind == WebhookKind::Pagerduty => Secret::new(PAGERDUTY_EVENTS_URL),
            (None, None) => return Err("no url configured".into()),
        };
        let mut headers = Vec::new();
        for (name, s) in &w.headers {
            headers.push((name.clone(), resolve(s, &format!("header {name}"))?));
        }
        let body = match w.kind {
            WebhookKind::Generic => generic_payload(e),
            WebhookKind::Slack => slack_payload(e),
            WebhookKind::Pagerduty => {
                let key = w.routing_key.as_ref().ok_or("routing_key is not configured")?;
                pagerduty_payload(e, &resolve(key, "routing_key")?)
            }
        };
        Ok((url, headers, body))
    }

    async fn post(
        &self,
        w: &WebhookConfig,
        url: &Secret,
        headers: &[(String, Secret)],
        body: &Value,
    ) -> Result<(), TryError> {
        let mut req = self.client.post(url.expose()).timeout(Duration::from_millis(w.timeout_ms.max(1))).json(body);
        for (name, value) in headers {
            let mut v = http::HeaderValue::from_str(value.expose())
                .map_err(|_| TryError::Fatal(format!("header {name}: the secret is not a valid header value")))?;
            v.set_sensitive(true);
            req = req.header(name.as_str(), v);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status();
                if status.is_success() {
                    Ok(())
                } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
                    Err(TryError::Retry(format!("HTTP {status}")))
                } else {
                    Err(TryError::Fatal(format!("HTTP {status} (not retried: fix the webhook configuration)")))
                }
            }
            // without_url: the URL may be a credential (Slack)
            Err(e) => Err(TryError::Retry(format!("{}", e.without_url()))),
        }
    }
}

/// Back-off before try `attempt + 1`: `initial * 2^(attempt-1)` capped at the maximum, of which
/// a random half is waited ("equal jitter").
pub fn backoff(c: &NotificationsConfig, attempt: u32) -> Duration {
    let exp = c.backoff_initial_ms.saturating_mul(1u64 << attempt.saturating_sub(1).min(20));
    let d = exp.min(c.backoff_max_ms).max(1);
    let half = d / 2;
    Duration::from_millis(half + rand::random_range(0..=d - half))
}

/// A generic webhook with the defaults (all events, all targets, not required).
pub fn generic_webhook(name: &str, url: &str) -> WebhookConfig {
    WebhookConfig {
        name: name.into(),
        kind: WebhookKind::Generic,
        url: Some(url.into()),
        url_secret: None,
        headers: Default::default(),
        routing_key: None,
        events: Vec::new(),
        targets: Vec::new(),
        timeout_ms: crate::config::defaults::webhook_timeout_ms(),
        required: false,
    }
}

static INSTALLED: RwLock<Option<Arc<Notifier>>> = RwLock::new(None);

/// Makes `config` the notifications of this process (`c8dr worker`, `c8dr rehearse`). A worker
/// process has one configuration; steps read it at send time.
pub fn install(config: NotificationsConfig) {
    let n = (!config.webhooks.is_empty()).then(|| Arc::new(Notifier::new(config)));
    *INSTALLED.write().unwrap_or_else(|p| p.into_inner()) = n;
}

/// The installed notifier, if any webhook is configured.
pub fn installed() -> Option<Arc<Notifier>> {
    INSTALLED.read().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Sends `event` and describes the result as step variables: `notified` (true when at least one
/// webhook got it, false when none is configured or all failed) and `notifications` (one entry
/// per webhook). Fails (`Err`, a job retry) only when a `required` webhook failed.
pub async fn deliver(notifier: Option<&Notifier>, event: &Event) -> Result<Map<String, Value>, StepError> {
    // the log line is as loud as the event: an outcome that completed is not a warning
    macro_rules! log_event {
        ($level:ident) => {
            tracing::$level!(
                event = %event.event,
                target = %event.target,
                process_instance_key = event.process_instance_key,
                element_id = %event.element_id,
                severity = event.severity.as_str(),
                message = %event.message,
                "c8dr notification"
            )
        };
    }
    match event.severity {
        Severity::Info => log_event!(info),
        Severity::Warning | Severity::Error | Severity::Critical => log_event!(warn),
    }
    let deliveries = match notifier {
        Some(n) => n.send(event).await,
        None => Vec::new(),
    };
    for d in deliveries.iter().filter(|d| !d.delivered) {
        tracing::warn!(
            webhook = %d.webhook,
            attempts = d.attempts,
            error = d.error.as_deref().unwrap_or(""),
            event = %event.event,
            "notification not delivered"
        );
    }
    if let Some(d) = deliveries.iter().find(|d| d.required && !d.delivered) {
        return Err(StepError::retry(format!(
            "required webhook {} did not take the {} notification after {} attempt(s): {}",
            d.webhook,
            event.event,
            d.attempts,
            d.error.as_deref().unwrap_or("unknown error")
        )));
    }
    let notified = deliveries.iter().any(|d| d.delivered);
    Ok(vars([
        ("notified", json!(notified)),
        ("notifications", Value::Array(deliveries.iter().map(Delivery::to_json).collect())),
    ]))
}

/// `c8dr.notify` with an explicit notifier (the step uses [`installed`]).
pub async fn notify_step(notifier: Option<&Notifier>, input: &StepInput) -> StepResult {
    let event = Event::from_step(input);
    deliver(notifier, &event).await.map(Done::done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_jittered_within_bounds() {
        let c = NotificationsConfig { backoff_initial_ms: 100, backoff_max_ms: 1000, ..Default::default() };
        for _ in 0..50 {
            let b1 = backoff(&c, 1).as_millis();
            assert!((50..=100).contains(&b1), "{b1}");
            let b3 = backoff(&c, 3).as_millis();
            assert!((200..=400).contains(&b3), "{b3}");
            let b9 = backoff(&c, 9).as_millis();
            assert!((500..=1000).contains(&b9), "{b9}");
        }
    }

    #[test]
    fn a_step_failure_names_the_step_and_scrubs_the_error() {
        let mut input = StepInput {
            target_name: "prod".into(),
            element_id: "Notify_Step_Remove".into(),
            process_instance_key: 42,
            ..Default::default()
        };
        input.headers.insert("event".into(), "step-failed".into());
        input.variables.insert(
            "lastError".into(),
            json!({"code": "X", "step": "RemoveBrokers", "message": "failed: Authorization: Bearer abc.def"}),
        );
        let e = Event::from_step(&input);
        assert_eq!(e.severity, Severity::Error);
        assert!(e.message.contains("RemoveBrokers"), "{}", e.message);
        assert!(!e.message.contains("abc.def"), "{}", e.message);
        assert!(!Value::Object(e.details.clone()).to_string().contains("abc.def"));
    }
}
