//! The HTTP core shared by the three clients: URL building, auth, timeouts and the mapping of
//! transport failures and error bodies to [`TargetError`].
use super::error::{Api, ErrorKind, TargetError};
use crate::config::{HttpAuth, Secret, SecretError};
use crate::platform::k8s::forward::{ForwardError, Forwarder};
use crate::zeebe::ClientError;
use crate::zeebe::auth::{OAuthProvider, OAuthSettings};
use bytes::Bytes;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// Credentials for one API, resolved from [`HttpAuth`] secret references.
#[derive(Debug, Clone, Default)]
pub enum HttpAuthResolved {
    #[default]
    None,
    Basic {
        username: String,
        password: Secret,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: ApiKey <key>` (Elasticsearch API keys, base64 `id:key`).
    ApiKey(Secret),
    /// `Authorization: Bearer <token>` from OAuth client credentials (the provider the
    /// management connection uses too): cached, refreshed before expiry and once on HTTP 401.
    OAuth(Arc<OAuthProvider>),
}

impl PartialEq for HttpAuthResolved {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::None, Self::None) => true,
            (Self::Basic { username: a, password: p }, Self::Basic { username: b, password: q }) => a == b && p == q,
            (Self::Bearer(a), Self::Bearer(b)) | (Self::ApiKey(a), Self::ApiKey(b)) => a == b,
            (Self::OAuth(a), Self::OAuth(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for HttpAuthResolved {}

impl HttpAuthResolved {
    /// Reads the secrets a config entry points at (an OAuth client secret is checked here and
    /// read again at each token request).
    pub fn resolve(auth: &HttpAuth) -> Result<Self, SecretError> {
        Ok(match auth {
            HttpAuth::None => HttpAuthResolved::None,
            HttpAuth::Basic { username, password } => {
                HttpAuthResolved::Basic { username: username.clone(), password: password.resolve()? }
            }
            HttpAuth::Bearer { token } => HttpAuthResolved::Bearer(token.resolve()?),
            HttpAuth::ApiKey { key } => HttpAuthResolved::ApiKey(key.resolve()?),
            HttpAuth::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => {
                client_secret.resolve()?;
                let provider = OAuthProvider::new(OAuthSettings {
                    token_url: authorization_server_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    audience: audience.clone(),
                    scope: scope.clone(),
                })
                .map_err(|e| SecretError::Unusable(e.to_string()))?;
                HttpAuthResolved::OAuth(Arc::new(provider))
            }
        })
    }

    /// OAuth credentials whose token can be refreshed after a 401.
    fn refreshable(&self) -> Option<&OAuthProvider> {
        match self {
            HttpAuthResolved::OAuth(p) => Some(p),
            _ => None,
        }
    }

    async fn apply(&self, api: Api, request: RequestBuilder) -> Result<RequestBuilder, TargetError> {
        Ok(match self {
            HttpAuthResolved::None => request,
            HttpAuthResolved::Basic { username, password } => request.basic_auth(username, Some(password.expose())),
            HttpAuthResolved::Bearer(token) => request.bearer_auth(token.expose()),
            HttpAuthResolved::ApiKey(key) => {
                request.header(reqwest::header::AUTHORIZATION, format!("ApiKey {}", key.expose()))
            }
            HttpAuthResolved::OAuth(provider) => {
                let token = provider.token().await.map_err(|e| token_error(api, &e))?;
                request.bearer_auth(token)
            }
        })
    }
}

/// The config key holding the credentials of `api` in a region.
pub(crate) fn auth_key(api: Api) -> &'static str {
    match api {
        Api::Rest => "rest_auth",
        Api::Elasticsearch => "elasticsearch_auth",
        Api::Management => "management_url (the management API takes no credentials)",
    }
}

/// A failed token request for a target API, naming the config key to fix.
fn token_error(api: Api, e: &ClientError) -> TargetError {
    let kind = match e {
        ClientError::TokenRejected { .. } | ClientError::Secret(_) => ErrorKind::Unauthorized,
        _ => ErrorKind::Unreachable,
    };
    // ClientError's text names management.auth; say which key of the target it is instead.
    let detail = match e {
        ClientError::TokenRejected { url, status, body } => {
            format!("the identity provider at {url} rejected the client credentials (HTTP {status}): {body}")
        }
        ClientError::TokenEndpoint { url, reason } => format!("cannot fetch an OAuth token from {url}: {reason}"),
        ClientError::Secret(s) => format!("cannot read the client secret: {s}"),
        other => other.to_string(),
    };
    TargetError::new(
        api,
        kind,
        format!(
            "{detail}; check the region's {} (client_id, client_secret, authorization_server_url, audience, scope)",
            auth_key(api)
        ),
    )
}

/// Request body variants.
pub(crate) enum Body {
    None,
    Json(serde_json::Value),
    Multipart(reqwest::multipart::Form),
}

/// A raw response: status and body bytes.
pub(crate) struct Raw {
    pub status: StatusCode,
    pub body: Bytes,
}

#[derive(Debug, Clone)]
pub(crate) struct HttpCore {
    api: Api,
    base: Url,
    client: reqwest::Client,
    auth: HttpAuthResolved,
    timeout: Duration,
    /// `access = "port-forward"`: every request goes through its own tunnel.
    forward: Option<PortForward>,
}

/// Where the requests of a port-forwarded client go: port `port` of Service `service`.
#[derive(Debug, Clone)]
struct PortForward {
    forwarder: Arc<Forwarder>,
    /// The URL's host: the Service name is its first label.
    host: String,
    service: String,
    port: u16,
}

fn client_builder(timeout: Duration) -> reqwest::ClientBuilder {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .user_agent(concat!("c8dr/", env!("CARGO_PKG_VERSION")))
}

impl HttpCore {
    pub(crate) fn new(
        api: Api,
        base_url: &str,
        auth: HttpAuthResolved,
        timeout: Duration,
    ) -> Result<Self, TargetError> {
        let mut base = Url::parse(base_url).map_err(|e| {
            TargetError::new(
                api,
                ErrorKind::InvalidRequest,
                format!(
                    "invalid base URL {:?}: {e} (expected e.g. http://host:port)",
                    crate::config::redact_url(base_url)
                ),
            )
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(TargetError::new(
                api,
                ErrorKind::InvalidRequest,
                format!("invalid base URL {:?}: scheme must be http or https", crate::config::redact_url(base_url)),
            ));
        }
        // Credentials belong in the auth config, not in the URL (they would be printed wherever
        // the URL is): refuse them, without showing them.
        if !base.username().is_empty() || base.password().is_some() {
            return Err(TargetError::new(
                api,
                ErrorKind::InvalidRequest,
                format!(
                    "the URL {} contains credentials; remove them and configure the region's {} with a secret \
                     reference instead",
                    crate::config::redact_url(base_url),
                    auth_key(api)
                ),
            ));
        }
        base.set_query(None);
        base.set_fragment(None);
        let client = client_builder(timeout)
            .build()
            .map_err(|e| TargetError::new(api, ErrorKind::InvalidRequest, format!("cannot build HTTP client: {e}")))?;
        Ok(Self { api, base, client, auth, timeout, forward: None })
    }

    /// Sends every request through a short-lived port-forward of `forwarder`'s region: the base
    /// URL's host names the Service (`http://camunda-zeebe-gateway:9600`; its first label when it
    /// is a DNS name like `camunda-zeebe-gateway.ns.svc`), its port the service port.
    pub(crate) fn with_port_forward(mut self, forwarder: Arc<Forwarder>) -> Result<Self, TargetError> {
        let invalid = |why: String| {
            TargetError::new(
                self.api,
                ErrorKind::InvalidRequest,
                format!(
                    "{why}: with access = \"port-forward\" the URL names a Service and its port, e.g. \
                     http://camunda-zeebe-gateway:9600"
                ),
            )
        };
        let host = match self.base.host() {
            Some(url::Host::Domain(d)) => d.to_string(),
            Some(other) => return Err(invalid(format!("the URL {} has the address {other} as host", self.base))),
            None => return Err(invalid(format!("the URL {} has no host", self.base))),
        };
        let service = host.split('.').next().unwrap_or_default().to_string();
        let port = self.base.port_or_known_default().unwrap_or(80);
        self.forward = Some(PortForward { forwarder, host, service, port });
        Ok(self)
    }

    /// One request and its whole answer. Port-forwarded: opens a tunnel for this request alone,
    /// sends it to the tunnel's local port (Host header and TLS name stay the Service's), reads
    /// the answer and closes the tunnel.
    async fn round_trip(
        &self,
        method: &Method,
        url: &Url,
        prepare: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<(StatusCode, Bytes), TargetError> {
        let Some(forward) = &self.forward else {
            return self.exchange(&self.client, method, url, url, prepare).await;
        };
        let tunnel = forward
            .forwarder
            .open(&forward.service, forward.port)
            .await
            .map_err(|e| self.forward_error(method, url, &e))?;
        let local = tunnel.local_addr();
        let result = async {
            // A client of its own: nothing pooled outlives the tunnel, and the Service's host
            // name resolves to the tunnel (the URL carries the tunnel's port).
            let client = client_builder(self.timeout)
                .pool_max_idle_per_host(0)
                .resolve(&forward.host, std::net::SocketAddr::new(local.ip(), 0))
                .build()
                .map_err(|e| {
                    TargetError::new(self.api, ErrorKind::InvalidRequest, format!("cannot build HTTP client: {e}"))
                })?;
            let mut local_url = url.clone();
            local_url.set_port(Some(local.port())).map_err(|()| {
                self.error_for(method, url, ErrorKind::InvalidRequest, "the URL cannot take a port".into())
            })?;
            let authority = match url.port() {
                Some(port) => format!("{}:{port}", forward.host),
                None => forward.host.clone(),
            };
            self.exchange(&client, method, url, &local_url, |r| prepare(r).header(reqwest::header::HOST, authority))
                .await
        }
        .await;
        let result = match result {
            // The pod's own account of why the connection ended beats "connection closed".
            Err(e) if matches!(e.kind, ErrorKind::Unreachable | ErrorKind::Timeout) => match tunnel.failure() {
                Some(failure) => Err(self.forward_error(method, url, &failure)),
                None => Err(e),
            },
            other => other,
        };
        tunnel.close().await;
        result
    }

    /// Sends to `to` (`url` in errors) with `client` and reads the whole answer.
    async fn exchange(
        &self,
        client: &reqwest::Client,
        method: &Method,
        url: &Url,
        to: &Url,
        prepare: impl FnOnce(RequestBuilder) -> RequestBuilder,
    ) -> Result<(StatusCode, Bytes), TargetError> {
        let request = prepare(self.auth.apply(self.api, client.request(method.clone(), to.clone())).await?);
        let response = request.send().await.map_err(|e| self.transport_error(method, url, &e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| self.transport_error(method, url, &e))?;
        Ok((status, body))
    }

    fn error_for(&self, method: &Method, url: &Url, kind: ErrorKind, message: String) -> TargetError {
        TargetError::new(self.api, kind, message).with_request(method.as_str(), url.as_str())
    }

    /// A failed port-forward: transient (`Unreachable`) unless the configuration is at fault.
    fn forward_error(&self, method: &Method, url: &Url, e: &ForwardError) -> TargetError {
        let kind = if e.is_transient() { ErrorKind::Unreachable } else { ErrorKind::InvalidRequest };
        self.error_for(method, url, kind, e.to_string())
    }

    /// The base URL (without credentials).
    pub(crate) fn base_url(&self) -> &Url {
        &self.base
    }

    /// `base` + percent-encoded path segments.
    pub(crate) fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        {
            let mut path = url.path_segments_mut().expect("base URL checked in new()");
            path.pop_if_empty();
            path.extend(segments);
        }
        url
    }

    /// Sends a request and returns the raw response whatever its status. Transport failures are
    /// mapped to `Unreachable` / `Timeout`.
    pub(crate) async fn send_raw(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<Raw, TargetError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        // A multipart body cannot be sent twice: no token refresh retry for it.
        let (body, mut multipart) = match body {
            Body::Multipart(form) => (None, Some(form)),
            other => (Some(other), None),
        };
        let mut refreshed = false;
        let (status, body) = loop {
            let form = multipart.take();
            tracing::debug!(api = %self.api, %method, url = %url, "target request");
            let (status, answer) = self
                .round_trip(&method, &url, |request| match (form, &body) {
                    (Some(form), _) => request.multipart(form),
                    (None, Some(Body::Json(value))) => request.json(value),
                    _ => request,
                })
                .await?;
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && body.is_some()
                && let Some(provider) = self.auth.refreshable()
            {
                tracing::info!(api = %self.api, "HTTP 401: refreshing the OAuth token once");
                provider.invalidate().await;
                refreshed = true;
                continue;
            }
            break (status, answer);
        };
        tracing::debug!(api = %self.api, %method, url = %url, status = status.as_u16(), "target response");
        if !status.is_success() {
            return Err(self.status_error(&method, &url, status.as_u16(), &body));
        }
        Ok(Raw { status, body })
    }

    /// Like [`send_raw`](Self::send_raw) but a non-2xx status is returned instead of mapped,
    /// and the request may take `server_wait` longer than the client timeout (for calls that
    /// wait server-side, like `_cluster/health?timeout=`).
    pub(crate) async fn send_any_status(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        server_wait: Duration,
    ) -> Result<Raw, TargetError> {
        let mut url = self.url(segments);
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut refreshed = false;
        let (status, body) = loop {
            let timeout = self.timeout.saturating_add(server_wait);
            let (status, body) = self.round_trip(&method, &url, |request| request.timeout(timeout)).await?;
            if status == StatusCode::UNAUTHORIZED
                && !refreshed
                && let Some(provider) = self.auth.refreshable()
            {
                provider.invalidate().await;
                refreshed = true;
                continue;
            }
            break (status, body);
        };
        Ok(Raw { status, body })
    }

    /// Sends and parses a 2xx JSON body into `T`.
    pub(crate) async fn send_json<T: DeserializeOwned>(
        &self,
        method: Method,
        segments: &[&str],
        query: &[(&str, String)],
        body: Body,
    ) -> Result<T, TargetError> {
        let raw = self.send_raw(method.clone(), segments, query, body).await?;
        self.parse(&method, segments, &raw.body)
    }

    /// Parses a body; failures are `Malformed` naming the request.
    pub(crate) fn parse<T: DeserializeOwned>(
        &self,
        method: &Method,
        segments: &[&str],
        body: &[u8],
    ) -> Result<T, TargetError> {
        serde_json::from_slice(body).map_err(|e| {
            TargetError::new(
                self.api,
                ErrorKind::Malformed,
                format!("cannot parse response: {e}; body starts with {:?}", snippet(body)),
            )
            .with_request(method.as_str(), self.url(segments).as_str())
        })
    }

    /// An error for a request, without HTTP status (e.g. a semantic check of a 2xx answer).
    pub(crate) fn error(
        &self,
        method: &Method,
        segments: &[&str],
        kind: ErrorKind,
        message: impl Into<String>,
    ) -> TargetError {
        TargetError::new(self.api, kind, message).with_request(method.as_str(), self.url(segments).as_str())
    }

    fn transport_error(&self, method: &Method, url: &Url, e: &reqwest::Error) -> TargetError {
        if e.is_builder() {
            // e.g. a token with characters not allowed in a header; the value is never shown.
            return TargetError::new(
                self.api,
                ErrorKind::InvalidRequest,
                format!(
                    "cannot build the request ({}); check the configured credentials for invalid characters",
                    error_chain(e)
                ),
            )
            .with_request(method.as_str(), url.as_str());
        }
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else if e.is_connect() || e.is_request() || e.is_body() {
            ErrorKind::Unreachable
        } else if e.is_decode() {
            ErrorKind::Malformed
        } else {
            ErrorKind::Unreachable
        };
        // reqwest's Display includes the URL, which has no credentials (removed in new()).
        let message = error_chain(e);
        TargetError::new(self.api, kind, message).with_request(method.as_str(), url.as_str())
    }

    pub(crate) fn status_error(&self, method: &Method, url: &Url, status: u16, body: &[u8]) -> TargetError {
        let (message, es_type) = error_message(body, status);
        let mut kind = ErrorKind::from_status(status);
        // ES reports some "missing" conditions with other statuses on older versions.
        if let Some(ty) = &es_type
            && (ty == "snapshot_missing_exception"
                || ty == "repository_missing_exception"
                || ty == "index_not_found_exception")
        {
            kind = ErrorKind::NotFound;
        }
        let message = if kind == ErrorKind::Unauthorized {
            let verb = if status == 401 { "rejected the credentials" } else { "denied the request" };
            format!(
                "{message}; the {} {verb}: check the region's {} in the target configuration (method, user \
                 name / secret reference, and that the secret is current{})",
                self.api,
                auth_key(self.api),
                if status == 403 { ", and the user's permissions" } else { "" }
            )
        } else {
            message
        };
        TargetError { es_type, ..TargetError::new(self.api, kind, message) }
            .with_request(method.as_str(), url.as_str())
            .with_status(status)
    }
}

/// Extracts the server's message from an error body: ES `{"error":{"type","reason"}}`,
/// management `{"message"}`, REST problem detail `{"title","detail"}`, else the text itself.
pub(crate) fn error_message(body: &[u8], status: u16) -> (String, Option<String>) {
    let reason_phrase =
        || StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()).unwrap_or("no message").to_string();
    if body.iter().all(u8::is_ascii_whitespace) {
        return (reason_phrase(), None);
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(body) else {
        return (snippet(body), None);
    };
    let str_field = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    if let Some(error) = value.get("error") {
        if let Some(reason) = error.as_str() {
            return (reason.to_string(), None);
        }
        if error.is_object() {
            let ty = str_field(error, "type");
            let reason = str_field(error, "reason")
                .or_else(|| error.get("root_cause").and_then(|r| r.get(0)).and_then(|r| str_field(r, "reason")))
                .unwrap_or_else(reason_phrase);
            return (reason, ty);
        }
    }
    if let Some(message) = str_field(&value, "message") {
        return (message, None);
    }
    // Pause/resume wrapper: {"body":{"message":..},"status":500}
    if let Some(message) = value.get("body").and_then(|b| str_field(b, "message")) {
        return (message, None);
    }
    match (str_field(&value, "title"), str_field(&value, "detail")) {
        (Some(t), Some(d)) => (format!("{t}: {d}"), None),
        (Some(t), None) => (t, None),
        (None, Some(d)) => (d, None),
        (None, None) => (snippet(body), None),
    }
}

/// The first 300 characters of a body, for error messages.
pub(crate) fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut s: String = text.chars().take(300).collect();
    if text.chars().count() > 300 {
        s.push('…');
    }
    s
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        let text = inner.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = inner.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies() {
        let es = br#"{"error":{"root_cause":[{"type":"snapshot_missing_exception","reason":"[r:s] is missing"}],"type":"snapshot_missing_exception","reason":"[r:s] is missing"},"status":404}"#;
        assert_eq!(
            error_message(es, 404),
            ("[r:s] is missing".to_string(), Some("snapshot_missing_exception".to_string()))
        );
        assert_eq!(error_message(br#"{"message":"busy"}"#, 409).0, "busy");
        assert_eq!(error_message(br#"{"title":"Bad","detail":"no"}"#, 400).0, "Bad: no");
        assert_eq!(error_message(b"", 502).0, "Bad Gateway");
        assert_eq!(error_message(b"<html>oops</html>", 500).0, "<html>oops</html>");
        assert_eq!(
            error_message(br#"{"body":{"message":"Expected 3 members"},"status":500,"contentType":null}"#, 500).0,
            "Expected 3 members"
        );
    }

    #[test]
    fn urls_drop_credentials_and_encode_segments() {
        let err = HttpCore::new(
            Api::Elasticsearch,
            "http://elastic:changeme@es:9200/prefix/",
            HttpAuthResolved::None,
            Duration::from_secs(1),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("changeme"), "{err}");
        assert!(err.to_string().contains("elasticsearch_auth"), "{err}");
        let core =
            HttpCore::new(Api::Elasticsearch, "http://es:9200/prefix/", HttpAuthResolved::None, Duration::from_secs(1))
                .unwrap();
        assert_eq!(core.url(&["_snapshot", "a b", "c/d"]).as_str(), "http://es:9200/prefix/_snapshot/a%20b/c%2Fd");
        let err = HttpCore::new(Api::Rest, "ftp://x", HttpAuthResolved::None, Duration::from_secs(1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::InvalidRequest);
        let err = HttpCore::new(Api::Rest, "http://u:secretpw@[bad", HttpAuthResolved::None, Duration::from_secs(1))
            .unwrap_err();
        assert!(!err.to_string().contains("secretpw"), "{err}");
    }
}
