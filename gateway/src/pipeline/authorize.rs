//! The authorize stage: OAuth2 `client_credentials` tokens, fetched with the
//! `oauth2` crate, cached per (integration, token endpoint, client id,
//! secret) until 60 s before they expire, one fetch at a time per key
//! (single-flight), and rendered into the integration's header template.
//! Tokens never reach plugins or logs.

use crate::model::Authentication;
use oauth2::basic::BasicClient;
use oauth2::{AuthType, ClientId, ClientSecret, Scope, TokenResponse, TokenUrl};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Refresh this long before a token expires.
const EARLY: Duration = Duration::from_secs(60);
/// Lifetime assumed when the token endpoint gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);

/// Why no token could be had (never carrying the secret or a token).
#[derive(Debug, thiserror::Error)]
#[error("token endpoint {endpoint}: {problem}")]
pub struct AuthorizeError {
    /// The token endpoint.
    pub endpoint: String,
    /// What went wrong.
    pub problem: TokenProblem,
}

/// What went wrong fetching a token.
#[derive(Debug, thiserror::Error)]
pub enum TokenProblem {
    /// The endpoint is not a usable URL.
    #[error("not a usable URL: {0}")]
    Url(String),
    /// The request failed: network, timeout, TLS.
    #[error("request failed: {0}")]
    Request(String),
    /// The endpoint answered with an OAuth2 error (RFC 6749 §5.2).
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was not a token response.
    #[error("unreadable response: {0}")]
    Unreadable(String),
}

impl AuthorizeError {
    /// Whether a later attempt may get a token. Always: endpoints come back
    /// and credentials get fixed, and the retry schedule bounds the cost.
    pub fn retryable(&self) -> bool {
        true
    }
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    refresh_at: Instant,
}

#[derive(Default)]
struct Slot {
    token: Option<CachedToken>,
    /// Whether the endpoint wanted the credentials in the form body.
    form_auth: bool,
}

/// Cached tokens, per replica.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Slot>>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The header (name, value) for `auth`, fetching a token when none is
    /// cached or `force_refresh` (after a 401).
    pub async fn header(
        &self,
        http: &reqwest::Client,
        integration_id: &str,
        auth: &Authentication,
        force_refresh: bool,
    ) -> Result<(String, String), AuthorizeError> {
        let token = self
            .token(http, integration_id, auth, force_refresh)
            .await?;
        Ok((
            auth.header_format.clone(),
            auth.header_value_format.replace("%ACCESS_TOKEN%", &token),
        ))
    }

    /// How many tokens were fetched (for metrics and tests).
    pub fn fetches(&self) -> u64 {
        self.fetches.load(std::sync::atomic::Ordering::Relaxed)
    }

    async fn token(
        &self,
        http: &reqwest::Client,
        integration_id: &str,
        auth: &Authentication,
        force_refresh: bool,
    ) -> Result<String, AuthorizeError> {
        let slot = self.slot(integration_id, auth);
        // Holding the slot's lock across the fetch makes concurrent callers
        // wait for one fetch instead of each making their own.
        let mut slot = slot.lock().await;
        if let Some(cached) = &slot.token
            && !force_refresh
            && Instant::now() < cached.refresh_at
        {
            return Ok(cached.token.clone());
        }
        let first = slot.form_auth;
        let result = match fetch(http, auth, first).await {
            Err(e) if e.invalid_client => {
                // The endpoint may want the other way of sending credentials.
                let retry = fetch(http, auth, !first).await;
                if retry.is_ok() {
                    slot.form_auth = !first;
                }
                retry
            }
            other => other,
        };
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("hookgate_token_fetches_total", "outcome" => if result.is_ok() { "ok" } else { "error" }).increment(1);
        let (token, lifetime) = result.map_err(|e| AuthorizeError {
            endpoint: auth.token_endpoint.clone(),
            problem: e.problem,
        })?;
        slot.token = Some(CachedToken {
            token: token.clone(),
            refresh_at: Instant::now() + lifetime.saturating_sub(EARLY),
        });
        Ok(token)
    }

    fn slot(&self, integration_id: &str, auth: &Authentication) -> Arc<tokio::sync::Mutex<Slot>> {
        let mut hasher = Sha256::new();
        for part in [
            integration_id,
            &auth.token_endpoint,
            &auth.client_id,
            auth.client_secret.expose(),
            auth.scope.as_deref().unwrap_or(""),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let key = hex::encode(hasher.finalize());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key).or_default().clone()
    }
}

struct FetchError {
    problem: TokenProblem,
    invalid_client: bool,
}

async fn fetch(
    http: &reqwest::Client,
    auth: &Authentication,
    form_auth: bool,
) -> Result<(String, Duration), FetchError> {
    let token_url = TokenUrl::new(auth.token_endpoint.clone()).map_err(|e| FetchError {
        problem: TokenProblem::Url(e.to_string()),
        invalid_client: false,
    })?;
    let client = BasicClient::new(ClientId::new(auth.client_id.clone()))
        .set_client_secret(ClientSecret::new(auth.client_secret.expose().to_owned()))
        .set_token_uri(token_url)
        .set_auth_type(if form_auth {
            AuthType::RequestBody
        } else {
            AuthType::BasicAuth
        });
    let mut request = client.exchange_client_credentials();
    if let Some(scope) = &auth.scope {
        for s in scope.split_whitespace() {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
    }
    match request.request_async(http).await {
        Ok(response) => Ok((
            response.access_token().secret().clone(),
            response.expires_in().unwrap_or(DEFAULT_LIFETIME),
        )),
        Err(error) => {
            let invalid_client = matches!(
                &error,
                oauth2::RequestTokenError::ServerResponse(r) if matches!(r.error(), oauth2::basic::BasicErrorResponseType::InvalidClient)
            ) || matches!(&error, oauth2::RequestTokenError::Parse(_, body) if body.is_empty());
            Err(FetchError {
                problem: describe(&error),
                invalid_client,
            })
        }
    }
}

fn describe<RE: std::error::Error + 'static>(
    error: &oauth2::RequestTokenError<RE, oauth2::basic::BasicErrorResponse>,
) -> TokenProblem {
    match error {
        oauth2::RequestTokenError::ServerResponse(r) => {
            TokenProblem::Refused(r.error().to_string())
        }
        oauth2::RequestTokenError::Request(e) => TokenProblem::Request(e.to_string()),
        oauth2::RequestTokenError::Parse(e, _) => TokenProblem::Unreadable(e.to_string()),
        oauth2::RequestTokenError::Other(m) => TokenProblem::Unreadable(m.clone()),
    }
}
