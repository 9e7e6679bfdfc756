//! Credentials for the gateway: none, Basic, or OAuth 2.0 client credentials.
//!
//! OAuth tokens are fetched with a form POST (`grant_type=client_credentials`), cached, refreshed
//! [`REFRESH_MARGIN`] before they expire, and refreshed once more when the gateway answers
//! UNAUTHENTICATED (see [`Credentials::invalidate`]). Secrets are read from their [`SecretRef`]
//! when needed and never logged.
//!
//! A failed token request is remembered: until its back-off ends (exponential with jitter,
//! [`TOKEN_BACKOFF_MIN`] to [`TOKEN_BACKOFF_MAX`]) every caller gets the same error without a new
//! request, so any number of callers (the worker's loops, the target clients) cannot hammer the
//! identity provider. The same provider serves the management connection and the targets'
//! `oauth` REST authentication.
use super::backoff::Backoff;
use super::error::ClientError;
use crate::config::{AuthConfig, SecretRef};
use base64::Engine as _;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;

/// A token is replaced this long before the identity provider says it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);
/// First pause after a failed token request.
pub const TOKEN_BACKOFF_MIN: Duration = Duration::from_secs(1);
/// Longest pause between two token requests while they keep failing.
pub const TOKEN_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// How the client authenticates each call.
#[derive(Debug)]
pub enum Credentials {
    None,
    Basic { username: String, password: SecretRef },
    OAuth(Box<OAuthProvider>),
}

impl Credentials {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ClientError> {
        Ok(match auth {
            AuthConfig::None => Self::None,
            AuthConfig::Basic { username, password } => {
                Self::Basic { username: username.clone(), password: password.clone() }
            }
            AuthConfig::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => {
                Self::OAuth(Box::new(OAuthProvider::new(OAuthSettings {
                    token_url: authorization_server_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    audience: audience.clone(),
                    scope: scope.clone(),
                })?))
            }
        })
    }

    /// The `authorization` metadata value for the next call, if any.
    pub async fn authorization(&self) -> Result<Option<String>, ClientError> {
        match self {
            Self::None => Ok(None),
            Self::Basic { username, password } => {
                let password = password.resolve()?;
                let raw = format!("{username}:{}", password.expose());
                Ok(Some(format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(raw))))
            }
            Self::OAuth(p) => Ok(Some(format!("Bearer {}", p.token().await?))),
        }
    }

    /// Drops a cached token (after UNAUTHENTICATED). Returns true when a retry can help.
    pub async fn invalidate(&self) -> bool {
        match self {
            Self::OAuth(p) => {
                p.invalidate().await;
                true
            }
            _ => false,
        }
    }
}

/// Settings of the OAuth client-credentials flow.
#[derive(Debug, Clone)]
pub struct OAuthSettings {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: SecretRef,
    pub audience: Option<String>,
    pub scope: Option<String>,
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

impl std::fmt::Debug for CachedToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachedToken").field("value", &"***").field("refresh_at", &self.refresh_at).finish()
    }
}

/// The last failed token request, replayed to callers until `retry_at`.
#[derive(Debug, Clone)]
enum Failure {
    Endpoint { reason: String },
    Rejected { status: u16, body: String },
}

#[derive(Debug)]
struct TokenState {
    token: Option<CachedToken>,
    failure: Option<(Failure, Instant)>,
    backoff: Backoff,
    requests: u64,
}

/// Fetches and caches OAuth access tokens.
#[derive(Debug)]
pub struct OAuthProvider {
    settings: OAuthSettings,
    http: reqwest::Client,
    cache: Mutex<TokenState>,
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

impl OAuthProvider {
    pub fn new(settings: OAuthSettings) -> Result<Self, ClientError> {
        url::Url::parse(&settings.token_url).map_err(|e| ClientError::TokenEndpoint {
            url: crate::config::redact_url(&settings.token_url),
            reason: format!("not a URL ({e})"),
        })?;
        if crate::config::url_has_credentials(&settings.token_url) {
            return Err(ClientError::TokenEndpoint {
                url: crate::config::redact_url(&settings.token_url),
                reason: "the URL contains credentials; put them in client_id / client_secret".into(),
            });
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::TokenEndpoint { url: settings.token_url.clone(), reason: e.to_string() })?;
        let state = TokenState {
            token: None,
            failure: None,
            backoff: Backoff::new(TOKEN_BACKOFF_MIN, TOKEN_BACKOFF_MAX),
            requests: 0,
        };
        Ok(Self { settings, http, cache: Mutex::new(state) })
    }

    /// Replaces the back-off bounds after failed token requests (tests use short ones).
    pub fn with_failure_backoff(mut self, min: Duration, max: Duration) -> Self {
        self.cache.get_mut().backoff = Backoff::new(min, max);
        self
    }

    /// The token endpoint.
    pub fn token_url(&self) -> &str {
        &self.settings.token_url
    }

    /// Token requests sent so far (successful or not).
    pub async fn requests_sent(&self) -> u64 {
        self.cache.lock().await.requests
    }

    /// A valid access token: the cached one, or a fresh one when it is about to expire. While
    /// a failed request's back-off runs, its error is returned without asking again.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut state = self.cache.lock().await;
        let now = Instant::now();
        if let Some(t) = state.token.as_ref()
            && now < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        if let Some((failure, retry_at)) = &state.failure
            && now < *retry_at
        {
            return Err(self.error(failure.clone()));
        }
        state.requests += 1;
        match self.fetch().await {
            Ok(fresh) => {
                let value = fresh.value.clone();
                state.token = Some(fresh);
                state.failure = None;
                state.backoff.reset();
                Ok(value)
            }
            Err(Ok(failure)) => {
                let delay = state.backoff.next_delay();
                tracing::debug!(backoff_ms = delay.as_millis() as u64, "token request failed; backing off");
                state.failure = Some((failure.clone(), Instant::now() + delay));
                Err(self.error(failure))
            }
            Err(Err(other)) => Err(other),
        }
    }

    /// Drops a cached token (after the server answered 401 / UNAUTHENTICATED). A running
    /// failure back-off is kept.
    pub async fn invalidate(&self) {
        self.cache.lock().await.token = None;
    }

    fn error(&self, failure: Failure) -> ClientError {
        let url = self.settings.token_url.clone();
        match failure {
            Failure::Endpoint { reason } => ClientError::TokenEndpoint { url, reason },
            Failure::Rejected { status, body } => ClientError::TokenRejected { url, status, body },
        }
    }

    /// One token request. `Err(Ok(_))` is a failure of the endpoint (backed off), `Err(Err(_))`
    /// a local problem (the secret cannot be read).
    async fn fetch(&self) -> Result<CachedToken, Result<Failure, ClientError>> {
        let s = &self.settings;
        let secret = s.client_secret.resolve().map_err(|e| Err(ClientError::Secret(e)))?;
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "client_credentials"), ("client_id", &s.client_id), ("client_secret", secret.expose())];
        if let Some(a) = &s.audience {
            form.push(("audience", a));
        }
        if let Some(sc) = &s.scope {
            form.push(("scope", sc));
        }
        let endpoint = |reason: String| Ok(Failure::Endpoint { reason });
        let resp = self.http.post(&s.token_url).form(&form).send().await.map_err(|e| endpoint(e.to_string()))?;
        let status = resp.status();
        if !status.is_success() {
            let mut body = resp.text().await.unwrap_or_default();
            // The body is the identity provider's; never echo the secret should it be repeated.
            if !secret.expose().is_empty() {
                body = body.replace(secret.expose(), "***");
            }
            body = body.chars().take(300).collect();
            if status.is_server_error() {
                return Err(endpoint(format!("HTTP {status}: {body}")));
            }
            return Err(Ok(Failure::Rejected { status: status.as_u16(), body }));
        }
        let token: TokenResponse = resp
            .json()
            .await
            .map_err(|e| endpoint(format!("the answer is not a token response with access_token ({e})")))?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300));
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        tracing::debug!(token_url = %s.token_url, expires_in_s = lifetime.as_secs(), "fetched an OAuth token");
        Ok(CachedToken { value: token.access_token, refresh_at })
    }
}
