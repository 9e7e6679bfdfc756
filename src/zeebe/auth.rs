//! Credentials for the gateway: none, Basic, or OAuth 2.0 client credentials.
//!
//! OAuth tokens are fetched with a form POST (`grant_type=client_credentials`), cached, refreshed
//! [`REFRESH_MARGIN`] before they expire, and refreshed once more when the gateway answers
//! UNAUTHENTICATED (see [`Credentials::invalidate`]). Secrets are read from their [`SecretRef`]
//! when needed and never logged.
use super::error::ClientError;
use crate::config::{AuthConfig, SecretRef};
use base64::Engine as _;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

/// A token is replaced this long before the identity provider says it expires.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(30);

/// How the client authenticates each call.
#[derive(Debug)]
pub enum Credentials {
    None,
    Basic { username: String, password: SecretRef },
    OAuth(OAuthProvider),
}

impl Credentials {
    pub fn from_config(auth: &AuthConfig) -> Result<Self, ClientError> {
        Ok(match auth {
            AuthConfig::None => Self::None,
            AuthConfig::Basic { username, password } => {
                Self::Basic { username: username.clone(), password: password.clone() }
            }
            AuthConfig::Oauth { client_id, client_secret, authorization_server_url, audience, scope } => {
                Self::OAuth(OAuthProvider::new(OAuthSettings {
                    token_url: authorization_server_url.clone(),
                    client_id: client_id.clone(),
                    client_secret: client_secret.clone(),
                    audience: audience.clone(),
                    scope: scope.clone(),
                })?)
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

/// Fetches and caches OAuth access tokens.
#[derive(Debug)]
pub struct OAuthProvider {
    settings: OAuthSettings,
    http: reqwest::Client,
    cache: Mutex<Option<CachedToken>>,
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
            url: settings.token_url.clone(),
            reason: format!("not a URL ({e})"),
        })?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .map_err(|e| ClientError::TokenEndpoint { url: settings.token_url.clone(), reason: e.to_string() })?;
        Ok(Self { settings, http, cache: Mutex::new(None) })
    }

    /// A valid access token: the cached one, or a fresh one when it is about to expire.
    pub async fn token(&self) -> Result<String, ClientError> {
        let mut cache = self.cache.lock().await;
        if let Some(t) = cache.as_ref()
            && Instant::now() < t.refresh_at
        {
            return Ok(t.value.clone());
        }
        let fresh = self.fetch().await?;
        let value = fresh.value.clone();
        *cache = Some(fresh);
        Ok(value)
    }

    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    async fn fetch(&self) -> Result<CachedToken, ClientError> {
        let s = &self.settings;
        let secret = s.client_secret.resolve()?;
        let mut form: Vec<(&str, &str)> =
            vec![("grant_type", "client_credentials"), ("client_id", &s.client_id), ("client_secret", secret.expose())];
        if let Some(a) = &s.audience {
            form.push(("audience", a));
        }
        if let Some(sc) = &s.scope {
            form.push(("scope", sc));
        }
        let url = s.token_url.clone();
        let resp = self
            .http
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| ClientError::TokenEndpoint { url: url.clone(), reason: e.to_string() })?;
        let status = resp.status();
        if !status.is_success() {
            let mut body = resp.text().await.unwrap_or_default();
            body.truncate(300);
            if status.is_server_error() {
                return Err(ClientError::TokenEndpoint { url, reason: format!("HTTP {status}: {body}") });
            }
            return Err(ClientError::TokenRejected { url, status: status.as_u16(), body });
        }
        let token: TokenResponse = resp.json().await.map_err(|e| ClientError::TokenEndpoint {
            url: url.clone(),
            reason: format!("the answer is not a token response with access_token ({e})"),
        })?;
        let lifetime = Duration::from_secs(token.expires_in.unwrap_or(300));
        let refresh_at = Instant::now() + lifetime.saturating_sub(REFRESH_MARGIN);
        tracing::debug!(token_url = %url, expires_in_s = lifetime.as_secs(), "fetched an OAuth token");
        Ok(CachedToken { value: token.access_token, refresh_at })
    }
}
