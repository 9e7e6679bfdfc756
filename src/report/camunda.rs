//! Reads a process instance tree from the management Camunda's Orchestration Cluster REST API
//! (v2 searches: process instances, element instances, variables, user tasks, incidents).
use super::{Observed, key};
use crate::config::ManagementConfig;
use crate::zeebe::auth::Credentials;
use serde_json::{Value, json};
use std::time::Duration;

/// Items one search page asks for; searches page on until a short page.
const PAGE: usize = 100;
/// Pages one search reads at most (a DR process has a few thousand element instances at most).
const MAX_PAGES: usize = 100;
/// Called-process depth followed (dr-drill calls dr-failover and dr-failback).
const MAX_DEPTH: usize = 4;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("cannot reach the management Camunda's REST API at {at}: {message}; check management.rest_address")]
    Unreachable { at: String, message: String },
    #[error(
        "the management Camunda's REST API refused {what} (HTTP {status}): check management.auth (user or client credentials allowed to read process instances)"
    )]
    Unauthorized { what: String, status: u16 },
    #[error("process instance {0} not found on the management Camunda: check --instance (the key Operate shows)")]
    NotFound(i64),
    #[error("{what}: HTTP {status}: {message}")]
    Status { what: String, status: u16, message: String },
    #[error("management.auth: {0}")]
    Auth(String),
    #[error("{what}: the answer is not the JSON expected: {message}")]
    Decode { what: String, message: String },
}

/// A REST v2 reader of the management Camunda.
pub struct CamundaReader {
    http: reqwest::Client,
    base: String,
    credentials: Credentials,
}

impl CamundaReader {
    pub fn new(cfg: &ManagementConfig) -> Result<Self, FetchError> {
        let mut builder = reqwest::Client::builder().timeout(Duration::from_millis(cfg.request_timeout_ms.max(1)));
        if let Some(path) = &cfg.ca_certificate_path {
            let pem = std::fs::read(path).map_err(|e| FetchError::Unreachable {
                at: crate::procedure::journal::scrub(&cfg.rest_address),
                message: format!("cannot read management.ca_certificate_path {}: {e}", path.display()),
            })?;
            let cert = reqwest::Certificate::from_pem(&pem).map_err(|e| FetchError::Unreachable {
                at: crate::procedure::journal::scrub(&cfg.rest_address),
                message: format!("management.ca_certificate_path {} is not a PEM certificate: {e}", path.display()),
            })?;
            builder = builder.add_root_certificate(cert);
        }
        let http = builder.build().map_err(|e| FetchError::Unreachable {
            at: crate::procedure::journal::scrub(&cfg.rest_address),
            message: e.to_string(),
        })?;
        let credentials = Credentials::from_config(&cfg.auth).map_err(|e| FetchError::Auth(e.to_string()))?;
        Ok(Self { http, base: cfg.rest_address.trim_end_matches('/').to_string(), credentials })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, FetchError> {
        let at = crate::procedure::journal::scrub(&self.base);
        let mut req = self.http.request(method.clone(), format!("{}{path}", self.base));
        if let Some(auth) = self.credentials.authorization().await.map_err(|e| FetchError::Auth(e.to_string()))? {
            req = req.header(reqwest::header::AUTHORIZATION, auth);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let what = format!("{method} {path}");
        let resp = req
            .send()
            .await
            .map_err(|e| FetchError::Unreachable { at, message: crate::procedure::journal::scrub(&e.to_string()) })?;
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        match status {
            200..=299 => serde_json::from_str(&text).map_err(|e| FetchError::Decode { what, message: e.to_string() }),
            401 | 403 => Err(FetchError::Unauthorized { what, status }),
            _ => Err(FetchError::Status {
                what,
                status,
                message: crate::procedure::journal::scrub(&text.chars().take(300).collect::<String>()),
            }),
        }
    }

    /// Every item of a search (`POST path` with `filter`), page by page. The second value is
    /// true when the last page allowed was full (items may be missing).
    async fn search(&self, path: &str, filter: Value) -> Result<(Vec<Value>, bool), FetchError> {
        let mut items = Vec::new();
        for page in 0..MAX_PAGES {
            let body = json!({"filter": filter, "page": {"from": page * PAGE, "limit": PAGE}});
            let answer = self.call(reqwest::Method::POST, path, Some(body)).await?;
            let got = answer.get("items").and_then(Value::as_array).cloned().unwrap_or_default();
            let n = got.len();
            items.extend(got);
            if n < PAGE {
                return Ok((items, false));
            }
        }
        Ok((items, true))
    }

    /// Searches cut long variable values (`isTruncated`): each is read whole with
    /// `GET /v2/variables/{variableKey}`; one that cannot be is named in `notes`.
    async fn untruncate(&self, items: &mut [Value], notes: &mut Vec<String>) {
        for item in items.iter_mut().filter(|i| i.get("isTruncated").and_then(Value::as_bool) == Some(true)) {
            let name = item.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
            let whole = match item.get("variableKey").and_then(key) {
                Some(k) => self.call(reqwest::Method::GET, &format!("/v2/variables/{k}"), None).await.ok(),
                None => None,
            };
            match whole.as_ref().and_then(|w| w.get("value")).filter(|v| v.is_string()) {
                Some(v) => {
                    item["value"] = v.clone();
                    item["isTruncated"] = Value::Bool(false);
                }
                None => {
                    notes.push(format!("variable {name}: its value was cut by the search and could not be read whole"))
                }
            }
        }
    }

    /// The instance `root`, every process it called (recursively) and what they did.
    pub async fn observe(&self, root: i64, observed: &mut Observed) -> Result<(), FetchError> {
        let pi = match self.call(reqwest::Method::GET, &format!("/v2/process-instances/{root}"), None).await {
            Err(FetchError::Status { status: 404, .. }) => return Err(FetchError::NotFound(root)),
            other => other?,
        };
        let mut frontier = vec![(pi, 0usize)];
        while let Some((pi, depth)) = frontier.pop() {
            let Some(k) = pi.get("processInstanceKey").and_then(key) else {
                continue;
            };
            if observed.instances.iter().any(|i| i.get("processInstanceKey").and_then(key) == Some(k)) {
                continue;
            }
            observed.instances.push(pi);
            let filter = json!({"processInstanceKey": k.to_string()});
            for (path, into) in [
                ("/v2/element-instances/search", &mut observed.elements),
                ("/v2/variables/search", &mut observed.variables),
                ("/v2/user-tasks/search", &mut observed.user_tasks),
                ("/v2/incidents/search", &mut observed.incidents),
            ] {
                let (mut items, truncated) = self.search(path, filter.clone()).await?;
                if path == "/v2/variables/search" {
                    self.untruncate(&mut items, &mut observed.truncated).await;
                }
                // the filter is checked here too: a server that ignored it must not mix instances
                into.extend(items.into_iter().filter(|i| i.get("processInstanceKey").and_then(key) == Some(k)));
                if truncated {
                    observed.truncated.push(format!(
                        "{path} for instance {k}: more items than one search returns; the report may miss some"
                    ));
                }
            }
            if depth < MAX_DEPTH {
                let (children, _) = self
                    .search("/v2/process-instances/search", json!({"parentProcessInstanceKey": k.to_string()}))
                    .await?;
                for c in children.into_iter().rev() {
                    if c.get("parentProcessInstanceKey").and_then(key) == Some(k) {
                        frontier.push((c, depth + 1));
                    }
                }
            }
        }
        Ok(())
    }
}

/// The observations of `roots` (in order) and the journal's lines for every instance found.
pub async fn observe(
    cfg: &ManagementConfig,
    roots: &[i64],
    journal: &[crate::procedure::journal::JournalEntry],
) -> Result<Observed, FetchError> {
    let reader = CamundaReader::new(cfg)?;
    let mut observed = Observed::default();
    for &r in roots {
        reader.observe(r, &mut observed).await?;
    }
    let keys: Vec<i64> = observed.instances.iter().filter_map(|i| i.get("processInstanceKey").and_then(key)).collect();
    observed.journal = journal.iter().filter(|j| keys.contains(&j.process_instance_key)).cloned().collect();
    Ok(observed)
}
