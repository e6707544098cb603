//! The authorize stage: OAuth2 `client_credentials` tokens, fetched with the
//! `oauth2` crate through a client that reads at most 64 KiB of the token
//! endpoint's answer, cached per (integration, token endpoint, client id,
//! secret, scope and every token option) until shortly before they expire,
//! and rendered into the integration's header template. Tokens never reach
//! plugins or logs.
//!
//! A token endpoint belongs to one tenant and must not hold up anyone
//! else: one fetch at a time per key, and while it runs other deliveries
//! needing that token are deferred at once (they hold no worker slot
//! waiting); a failed fetch is remembered with a growing backoff, during
//! which deliveries fail fast with the remembered reason.

use super::client_assertion::{ASSERTION_TYPE, ClientKey};
use crate::model::{Authentication, ClientAuth};
use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AccessToken, AuthType, ClientId, ClientSecret, EndpointNotSet, EndpointSet, RefreshToken,
    Scope, StandardRevocableToken, TokenResponse, TokenUrl,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Lifetime assumed when the token endpoint gives none.
const DEFAULT_LIFETIME: Duration = Duration::from_secs(3600);
/// The range a token endpoint's `expires_in` is clamped to.
const LIFETIME_RANGE: (Duration, Duration) = (Duration::from_secs(60), Duration::from_secs(86_400));
/// Refresh this long before a token expires (at most half its lifetime).
const EARLY: Duration = Duration::from_secs(60);
/// The most of a token endpoint's answer that is read.
pub const MAX_TOKEN_RESPONSE_BYTES: usize = 64 << 10;
/// Backoff after a failed fetch: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(300));

/// Why no token could be had (never carrying the secret or a token).
#[derive(Debug, Clone, thiserror::Error)]
#[error("token endpoint {endpoint}: {problem}")]
pub struct AuthorizeError {
    /// The token endpoint.
    pub endpoint: String,
    /// What went wrong.
    pub problem: TokenProblem,
}

/// What went wrong fetching a token.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TokenProblem {
    /// The endpoint is not a usable URL.
    #[error("not a usable URL: {0}")]
    Url(String),
    /// The request failed: network, timeout, TLS, an oversized answer.
    #[error("request failed: {0}")]
    Request(String),
    /// The endpoint answered with an OAuth2 error (RFC 6749 §5.2).
    #[error("refused: {0}")]
    Refused(String),
    /// The answer was not a token response.
    #[error("unreadable response: {0}")]
    Unreadable(String),
    /// The client assertion could not be signed (`private_key_jwt`).
    #[error("could not sign the client assertion: {0}")]
    Assertion(String),
    /// The token cannot go in a header (control characters): asking again
    /// gets the same token.
    #[error("the token is not a valid header value")]
    Unusable,
    /// Another delivery is fetching this token right now.
    #[error("a token fetch is in progress")]
    Busy,
    /// The last fetch failed (this way) and the backoff has not passed.
    #[error("{problem} (remembered; next fetch in {}s)", .retry_in.as_secs().max(1))]
    Remembered {
        /// The failure.
        problem: Box<TokenProblem>,
        /// Until the next fetch is allowed.
        retry_in: Duration,
    },
}

impl AuthorizeError {
    /// Whether a later attempt may get a token: yes, unless the endpoint
    /// hands out tokens that cannot be sent. Endpoints come back and
    /// credentials get fixed; the retry schedule bounds the cost.
    pub fn retryable(&self) -> bool {
        !matches!(self.problem, TokenProblem::Unusable)
    }

    /// When the attempt should simply wait its turn (no attempt counted):
    /// another delivery is fetching the token.
    pub fn deferred(&self) -> bool {
        matches!(self.problem, TokenProblem::Busy)
    }
}

/// A rendered auth header, with the token in it, so that what a receiver
/// echoes back can be kept out of what is recorded.
#[derive(Clone)]
pub struct AuthHeader {
    /// Header name.
    pub name: String,
    /// Header value (the template with the token in it).
    pub value: String,
    /// The token.
    pub token: String,
}

impl std::fmt::Debug for AuthHeader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthHeader")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl AuthHeader {
    /// `text` with the token (and the whole header value) replaced by
    /// `[redacted]`: receivers that answer 401 often echo what they got.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(&self.value, "[redacted]");
        if self.token.len() >= 4 {
            out = out.replace(&self.token, "[redacted]");
        }
        out
    }
}

#[derive(Clone)]
struct CachedToken {
    token: String,
    refresh_at: Instant,
}

/// A remembered failure.
struct Failed {
    problem: TokenProblem,
    until: Instant,
    count: u32,
}

#[derive(Default)]
struct SlotState {
    token: Option<CachedToken>,
    failed: Option<Failed>,
    /// Whether the endpoint wanted the credentials in the form body.
    form_auth: bool,
}

/// One token's cache entry: its state, and the right to fetch it.
#[derive(Default)]
struct Slot {
    state: Mutex<SlotState>,
    fetching: tokio::sync::Mutex<()>,
}

/// Cached tokens, per replica.
#[derive(Default)]
pub struct TokenCache {
    slots: Mutex<HashMap<String, Arc<Slot>>>,
    fetches: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenCache").finish_non_exhaustive()
    }
}

impl TokenCache {
    /// The header for `auth`, fetching a token when none is cached or
    /// `force_refresh` (after a 401).
    pub async fn header(
        &self,
        http: &reqwest::Client,
        integration_id: &str,
        auth: &Authentication,
        force_refresh: bool,
    ) -> Result<AuthHeader, AuthorizeError> {
        let token = self
            .token(http, integration_id, auth, force_refresh)
            .await
            .map_err(|problem| AuthorizeError {
                endpoint: crate::model::endpoint::loggable(&auth.token_endpoint),
                problem,
            })?;
        Ok(AuthHeader {
            name: auth.header_format.clone(),
            value: auth.header_value_format.replace("%ACCESS_TOKEN%", &token),
            token,
        })
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
    ) -> Result<String, TokenProblem> {
        let slot = self.slot(integration_id, auth);
        if !force_refresh && let Some(token) = slot.usable(Instant::now())? {
            return Ok(token);
        }
        // One fetch at a time; the others wait their turn without holding
        // a worker slot.
        let Ok(_fetching) = slot.fetching.try_lock() else {
            return Err(TokenProblem::Busy);
        };
        let form_auth = match auth.options.client_auth {
            Some(ClientAuth::ClientSecretPost | ClientAuth::PrivateKeyJwt) => true,
            Some(ClientAuth::ClientSecretBasic) => false,
            None => slot.lock().form_auth,
        };
        let span = tracing::info_span!(
            "token_fetch",
            otel.kind = "client",
            url.full = %crate::model::endpoint::loggable(&auth.token_endpoint),
            otel.status_code = tracing::field::Empty,
        );
        let result = async {
            match fetch(http, auth, form_auth).await {
                Err(e) if e.invalid_client && auth.options.client_auth.is_none() => {
                    // The endpoint may want the other way of sending credentials.
                    let retry = fetch(http, auth, !form_auth).await;
                    if retry.is_ok() {
                        slot.lock().form_auth = !form_auth;
                    }
                    retry
                }
                other => other,
            }
        }
        .instrument(span.clone())
        .await;
        if result.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        self.fetches
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::counter!("hookgate_token_fetches_total", "outcome" => if result.is_ok() { "ok" } else { "error" }).increment(1);
        slot.settle(result.map_err(|e| e.problem), Instant::now())
    }

    fn slot(&self, integration_id: &str, auth: &Authentication) -> Arc<Slot> {
        let mut hasher = Sha256::new();
        for part in [
            integration_id,
            &auth.token_endpoint,
            &auth.client_id,
            auth.client_secret.expose(),
            auth.scope.as_deref().unwrap_or(""),
            &serde_json::to_string(&auth.options).unwrap_or_default(),
        ] {
            hasher.update(part.as_bytes());
            hasher.update([0]);
        }
        let key = hex::encode(hasher.finalize());
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots.entry(key).or_default().clone()
    }
}

impl Slot {
    fn lock(&self) -> std::sync::MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached token if still fresh; the remembered failure while its
    /// backoff runs; `None` when a fetch is due.
    fn usable(&self, now: Instant) -> Result<Option<String>, TokenProblem> {
        let state = self.lock();
        if let Some(cached) = &state.token
            && now < cached.refresh_at
        {
            return Ok(Some(cached.token.clone()));
        }
        match &state.failed {
            Some(failed) if now < failed.until => Err(TokenProblem::Remembered {
                problem: Box::new(failed.problem.clone()),
                retry_in: failed.until - now,
            }),
            _ => Ok(None),
        }
    }

    /// Stores a fetch's result: the token and when to refresh it, or the
    /// failure and how long to remember it.
    fn settle(
        &self,
        result: Result<(String, Duration), TokenProblem>,
        now: Instant,
    ) -> Result<String, TokenProblem> {
        let mut state = self.lock();
        match result.and_then(|(token, lifetime)| usable_token(token).map(|t| (t, lifetime))) {
            Ok((token, lifetime)) => {
                state.failed = None;
                state.token = Some(CachedToken {
                    token: token.clone(),
                    refresh_at: now + refresh_after(lifetime),
                });
                Ok(token)
            }
            Err(problem) => {
                let count = state.failed.as_ref().map_or(0, |f| f.count) + 1;
                state.token = None;
                state.failed = Some(Failed {
                    problem: problem.clone(),
                    until: now + backoff(count),
                    count,
                });
                Err(problem)
            }
        }
    }
}

/// How long a token is used: its lifetime clamped to a minute..a day (an
/// endpoint's `expires_in` may be anything, 0 or 2^64−1), less a margin.
fn refresh_after(lifetime: Duration) -> Duration {
    let lifetime = lifetime.clamp(LIFETIME_RANGE.0, LIFETIME_RANGE.1);
    lifetime - EARLY.min(lifetime / 2)
}

/// How long the `count`-th failure in a row is remembered.
fn backoff(count: u32) -> Duration {
    BACKOFF
        .0
        .saturating_mul(1 << count.saturating_sub(1).min(16))
        .min(BACKOFF.1)
}

/// A token that can go into a header value: visible ASCII only (RFC 6750's
/// b64token and then some); anything else would be refused by the HTTP
/// client on every attempt.
fn usable_token(token: String) -> Result<String, TokenProblem> {
    if !token.is_empty() && token.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(token)
    } else {
        Err(TokenProblem::Unusable)
    }
}

struct FetchError {
    problem: TokenProblem,
    invalid_client: bool,
}

/// The `oauth2` client with [`AnyTokenResponse`].
type TokenClient = oauth2::Client<
    BasicErrorResponse,
    AnyTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

async fn fetch(
    http: &reqwest::Client,
    auth: &Authentication,
    form_auth: bool,
) -> Result<(String, Duration), FetchError> {
    let fail = |problem| FetchError {
        problem,
        invalid_client: false,
    };
    let token_url = TokenUrl::new(auth.token_endpoint.clone())
        .map_err(|e| fail(TokenProblem::Url(e.to_string())))?;
    let client: TokenClient =
        oauth2::Client::new(ClientId::new(auth.client_id.clone())).set_token_uri(token_url);
    let uses_key = ClientAuth::uses_key(auth.options.client_auth);
    let client = if uses_key {
        // The assertion is the credential; the client id goes in the form.
        client.set_auth_type(AuthType::RequestBody)
    } else {
        client
            .set_client_secret(ClientSecret::new(auth.client_secret.expose().to_owned()))
            .set_auth_type(if form_auth {
                AuthType::RequestBody
            } else {
                AuthType::BasicAuth
            })
    };
    let mut request = client.exchange_client_credentials();
    if uses_key {
        let assertion = ClientKey::from_pem(auth.client_secret.expose())
            .and_then(|key| {
                key.assertion(
                    &auth.client_id,
                    &auth.token_endpoint,
                    auth.options.key_id.as_deref(),
                )
            })
            .map_err(|e| fail(TokenProblem::Assertion(e.to_string())))?;
        request = request
            .add_extra_param("client_assertion_type", ASSERTION_TYPE)
            .add_extra_param("client_assertion", assertion);
    }
    if let Some(scope) = &auth.scope {
        for s in scope.split_whitespace() {
            request = request.add_scope(Scope::new(s.to_owned()));
        }
    }
    if let Some(audience) = &auth.options.audience {
        request = request.add_extra_param("audience", audience.clone());
    }
    for (name, value) in &auth.options.extra_params {
        request = request.add_extra_param(name.clone(), value.clone());
    }
    match request.request_async(&CappedClient(http)).await {
        Ok(response) => {
            let field = auth
                .options
                .token_field
                .as_deref()
                .unwrap_or("access_token");
            let token = response.field(field).ok_or_else(|| {
                fail(TokenProblem::Unreadable(format!(
                    "the answer has no string `{field}` field"
                )))
            })?;
            Ok((token, response.expires_in().unwrap_or(DEFAULT_LIFETIME)))
        }
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

/// A token response read whole, so the token can be taken from whichever
/// field the integration names (`token_field`); `token_type` may be left
/// out, as some endpoints do.
#[derive(Debug, Serialize, Deserialize)]
struct AnyTokenResponse {
    #[serde(flatten)]
    fields: serde_json::Map<String, serde_json::Value>,
    #[serde(skip, default = "no_token")]
    unused: AccessToken,
    #[serde(skip, default = "bearer")]
    token_type: BasicTokenType,
}

fn no_token() -> AccessToken {
    AccessToken::new(String::new())
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

impl AnyTokenResponse {
    /// The string in `field`, if there is one.
    fn field(&self, field: &str) -> Option<String> {
        self.fields.get(field)?.as_str().map(str::to_owned)
    }
}

impl TokenResponse for AnyTokenResponse {
    type TokenType = BasicTokenType;

    /// Not used: the token is read with [`AnyTokenResponse::field`].
    fn access_token(&self) -> &AccessToken {
        &self.unused
    }

    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }

    /// `expires_in`, a number of seconds (some endpoints send a string).
    fn expires_in(&self) -> Option<Duration> {
        match self.fields.get("expires_in")? {
            serde_json::Value::Number(n) => n.as_u64().map(Duration::from_secs),
            serde_json::Value::String(s) => s.parse().ok().map(Duration::from_secs),
            _ => None,
        }
    }

    fn refresh_token(&self) -> Option<&RefreshToken> {
        None
    }

    fn scopes(&self) -> Option<&Vec<Scope>> {
        None
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

/// The `oauth2` crate's HTTP client: the delivery client (timeouts, SSRF
/// guard, no redirects), reading at most [`MAX_TOKEN_RESPONSE_BYTES`] of
/// the answer, so a token endpoint cannot stream the gateway out of memory.
struct CappedClient<'a>(&'a reqwest::Client);

/// Why the token request got no complete answer.
#[derive(Debug, thiserror::Error)]
enum TokenHttpError {
    /// Network, timeout, TLS; the URL left out (it is in the message).
    #[error("{0}")]
    Request(reqwest::Error),
    /// The answer was longer than the cap.
    #[error("the answer is larger than {MAX_TOKEN_RESPONSE_BYTES} bytes")]
    TooLarge,
    /// The answer could not be rebuilt as an HTTP response.
    #[error("malformed answer: {0}")]
    Http(#[from] oauth2::http::Error),
}

impl From<reqwest::Error> for TokenHttpError {
    fn from(error: reqwest::Error) -> Self {
        Self::Request(error.without_url())
    }
}

impl<'c> oauth2::AsyncHttpClient<'c> for CappedClient<'_> {
    type Error = TokenHttpError;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<oauth2::HttpResponse, TokenHttpError>> + Send + 'c>,
    >;

    fn call(&'c self, request: oauth2::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let mut response = self.0.execute(request.try_into()?).await?;
            if response
                .content_length()
                .is_some_and(|n| n > MAX_TOKEN_RESPONSE_BYTES as u64)
            {
                return Err(TokenHttpError::TooLarge);
            }
            let mut answer = oauth2::http::Response::builder().status(response.status());
            for (name, value) in response.headers() {
                answer = answer.header(name, value);
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await? {
                if body.len() + chunk.len() > MAX_TOKEN_RESPONSE_BYTES {
                    return Err(TokenHttpError::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(answer.body(body)?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifetimes_are_clamped_and_refreshed_early() {
        assert_eq!(refresh_after(Duration::ZERO), Duration::from_secs(30));
        assert_eq!(
            refresh_after(Duration::from_secs(3600)),
            Duration::from_secs(3540)
        );
        assert_eq!(
            refresh_after(Duration::from_secs(u64::MAX)),
            Duration::from_secs(86_340)
        );
    }

    #[test]
    fn failures_back_off_up_to_five_minutes() {
        assert_eq!(backoff(1), Duration::from_secs(1));
        assert_eq!(backoff(4), Duration::from_secs(8));
        assert_eq!(backoff(40), Duration::from_secs(300));
    }

    #[test]
    fn tokens_with_control_characters_are_unusable() {
        assert!(usable_token("abc.DEF-123_~+/=".into()).is_ok());
        for bad in ["", "a b", "a\r\nX-Evil: 1", "tok\u{7f}"] {
            assert!(
                matches!(usable_token(bad.into()), Err(TokenProblem::Unusable)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_failure_is_remembered_until_its_backoff_passes() {
        let slot = Slot::default();
        let t0 = Instant::now();
        let failed = slot.settle(Err(TokenProblem::Refused("invalid_client".into())), t0);
        assert!(failed.is_err());
        assert!(matches!(
            slot.usable(t0 + Duration::from_millis(500)),
            Err(TokenProblem::Remembered { .. })
        ));
        assert!(matches!(slot.usable(t0 + Duration::from_secs(2)), Ok(None)));
        let token = slot.settle(Ok(("tok".into(), Duration::from_secs(600))), t0);
        assert_eq!(token.expect("stored"), "tok");
        assert_eq!(
            slot.usable(t0 + Duration::from_secs(10)).expect("fresh"),
            Some("tok".into())
        );
    }
}
