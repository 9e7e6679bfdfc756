//! Errors of the target clients: which API, what kind of failure, the server's own message.
//!
//! The kind is what step handlers branch on ([`TargetError::is_transient`] decides between a job
//! retry and a BPMN error); the message is the server's text (management `message`, Elasticsearch
//! `error.reason`, REST problem `title`/`detail`) so operators see what the target said.
//! Nothing here ever holds a credential: URLs are stored without user info and auth headers are
//! never copied into errors.
use std::fmt;

/// The three HTTP APIs of a region.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Api {
    /// Zeebe management API (gateway port 9600, `/actuator/...`).
    Management,
    /// Orchestration Cluster REST API (port 8080, `/v2/...`).
    Rest,
    /// Elasticsearch (port 9200).
    Elasticsearch,
}

impl fmt::Display for Api {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Api::Management => "management API",
            Api::Rest => "REST API",
            Api::Elasticsearch => "Elasticsearch",
        })
    }
}

/// What went wrong, independent of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// HTTP 409: e.g. another topology change is in progress.
    Conflict,
    /// HTTP 400 (and other 4xx without a better kind): the request was rejected as invalid.
    InvalidRequest,
    /// HTTP 404: no such repository / snapshot / exporter / resource.
    NotFound,
    /// HTTP 401 / 403: credentials missing, wrong or not allowed.
    Unauthorized,
    /// Connection refused or reset, DNS failure: the API could not be reached.
    Unreachable,
    /// The request did not finish within the configured timeout (also HTTP 408).
    Timeout,
    /// HTTP 5xx (including 502/504 from the gateway), HTTP 429, and a pause/resume body status
    /// >= 500.
    Server,
    /// The response body could not be understood.
    Malformed,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Conflict => "conflict",
            ErrorKind::InvalidRequest => "invalid request",
            ErrorKind::NotFound => "not found",
            ErrorKind::Unauthorized => "unauthorized",
            ErrorKind::Unreachable => "unreachable",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Server => "server error",
            ErrorKind::Malformed => "malformed response",
        })
    }
}

impl ErrorKind {
    /// The kind for a non-success HTTP status.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400 | 405 | 406 | 411..=418 | 422 => ErrorKind::InvalidRequest,
            401 | 403 => ErrorKind::Unauthorized,
            404 | 410 => ErrorKind::NotFound,
            408 => ErrorKind::Timeout,
            409 => ErrorKind::Conflict,
            429 => ErrorKind::Server,
            s if s >= 500 => ErrorKind::Server,
            _ => ErrorKind::InvalidRequest,
        }
    }
}

/// A failed call to one of the target's APIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetError {
    pub api: Api,
    pub kind: ErrorKind,
    /// HTTP status, when a response arrived. For pause/resume this is the status in the body.
    pub status: Option<u16>,
    /// The server's message (or a description of the transport failure).
    pub message: String,
    /// Elasticsearch `error.type`, e.g. `snapshot_missing_exception`.
    pub es_type: Option<String>,
    /// HTTP method of the request (`GET`, `PATCH`, ...).
    pub method: String,
    /// Request URL without user info.
    pub url: String,
}

impl TargetError {
    pub fn new(api: Api, kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            api,
            kind,
            status: None,
            message: message.into(),
            es_type: None,
            method: String::new(),
            url: String::new(),
        }
    }

    pub(crate) fn with_request(mut self, method: &str, url: &str) -> Self {
        self.method = method.to_string();
        self.url = url.to_string();
        self
    }

    pub(crate) fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Worth retrying later (job retry with back-off) rather than a decision for a human:
    /// `Unreachable`, `Timeout`, `Server`, `Malformed`, and `Conflict` **on the management API**
    /// (409 = another topology change is in progress; it ends by itself, so wait and retry).
    /// A 409 from Elasticsearch or the REST API is a real conflict and not transient.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Unreachable | ErrorKind::Timeout | ErrorKind::Server | ErrorKind::Malformed => true,
            ErrorKind::Conflict => self.api == Api::Management,
            ErrorKind::InvalidRequest | ErrorKind::NotFound | ErrorKind::Unauthorized => false,
        }
    }

    /// True when the server answered 404 (or Elasticsearch said `*_missing_exception`).
    pub fn is_not_found(&self) -> bool {
        self.kind == ErrorKind::NotFound
    }

    /// The Elasticsearch error type equals `ty`.
    pub fn is_es_type(&self, ty: &str) -> bool {
        self.es_type.as_deref() == Some(ty)
    }
}

impl fmt::Display for TargetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.api)?;
        if !self.method.is_empty() {
            write!(f, " {} {}", self.method, self.url)?;
        }
        write!(f, ": {}", self.kind)?;
        if let Some(status) = self.status {
            write!(f, " (HTTP {status})")?;
        }
        if let Some(ty) = &self.es_type {
            write!(f, " [{ty}]")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl std::error::Error for TargetError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_mapping() {
        assert_eq!(ErrorKind::from_status(400), ErrorKind::InvalidRequest);
        assert_eq!(ErrorKind::from_status(401), ErrorKind::Unauthorized);
        assert_eq!(ErrorKind::from_status(403), ErrorKind::Unauthorized);
        assert_eq!(ErrorKind::from_status(404), ErrorKind::NotFound);
        assert_eq!(ErrorKind::from_status(408), ErrorKind::Timeout);
        assert_eq!(ErrorKind::from_status(409), ErrorKind::Conflict);
        assert_eq!(ErrorKind::from_status(429), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(500), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(502), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(504), ErrorKind::Server);
        assert_eq!(ErrorKind::from_status(501), ErrorKind::Server);
    }

    #[test]
    fn transient_kinds() {
        let e = |api, kind| TargetError::new(api, kind, "x");
        assert!(e(Api::Management, ErrorKind::Conflict).is_transient());
        assert!(!e(Api::Elasticsearch, ErrorKind::Conflict).is_transient());
        assert!(e(Api::Rest, ErrorKind::Unreachable).is_transient());
        assert!(e(Api::Rest, ErrorKind::Timeout).is_transient());
        assert!(e(Api::Rest, ErrorKind::Server).is_transient());
        assert!(e(Api::Rest, ErrorKind::Malformed).is_transient());
        assert!(!e(Api::Management, ErrorKind::InvalidRequest).is_transient());
        assert!(!e(Api::Management, ErrorKind::NotFound).is_transient());
        assert!(!e(Api::Management, ErrorKind::Unauthorized).is_transient());
    }

    #[test]
    fn display_names_api_request_and_message() {
        let err = TargetError::new(Api::Elasticsearch, ErrorKind::NotFound, "[r:s] is missing")
            .with_request("GET", "http://es:9200/_snapshot/r/s")
            .with_status(404);
        let err = TargetError { es_type: Some("snapshot_missing_exception".into()), ..err };
        assert_eq!(
            err.to_string(),
            "Elasticsearch GET http://es:9200/_snapshot/r/s: not found (HTTP 404) \
             [snapshot_missing_exception]: [r:s] is missing"
        );
    }
}
