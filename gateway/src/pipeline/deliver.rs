//! The deliver stage: one HTTP request with pooled connections, timeouts,
//! no redirects, a capped response capture, and the SSRF guard on the
//! resolved address. It reports what the receiver answered (or why nothing
//! was answered); the record stage decides what that means.

use super::request::{Outgoing, USER_AGENT};
use crate::model::{Method, Target, endpoint};
use crate::ssrf::is_private;
use governor::clock::Clock as _;
use governor::{DefaultDirectRateLimiter, Quota};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

/// Longest response excerpt kept.
pub const EXCERPT_BYTES: usize = 4096;

/// How the HTTP client behaves.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// Connect and total timeout of one request.
    pub timeout: Duration,
    /// Whether private destinations are allowed.
    pub allow_private: bool,
    /// CA certificates (PEM) trusted besides the public roots, for
    /// receivers and token endpoints with a private CA.
    pub extra_roots: Vec<reqwest::Certificate>,
}

/// Builds a client for deliveries and token fetches, presenting
/// `identity` (mutual TLS) when given. See [`super::clients`].
pub fn client(
    settings: &HttpSettings,
    identity: Option<&crate::model::TlsIdentity>,
) -> Result<reqwest::Client, super::clients::IdentityError> {
    let mut builder = reqwest::Client::builder().use_rustls_tls();
    for root in &settings.extra_roots {
        builder = builder.add_root_certificate(root.clone());
    }
    if let Some(identity) = identity {
        let pem = format!(
            "{}\n{}",
            identity.certificate.trim_end(),
            identity.private_key.expose()
        );
        let identity = reqwest::Identity::from_pem(pem.as_bytes())
            .map_err(|e| super::clients::IdentityError::Unusable(e.to_string()))?;
        builder = builder.identity(identity);
    }
    builder
        .redirect(reqwest::redirect::Policy::none())
        // Never through a proxy from the environment: a proxy would resolve
        // names itself, past the SSRF guard below.
        .no_proxy()
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(USER_AGENT)
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .build()
        .map_err(|e| super::clients::IdentityError::Unusable(e.to_string()))
}

/// A destination refused because it is (or resolves only to) a private
/// address.
#[derive(Debug, thiserror::Error)]
#[error(
    "{0} is a private address (or resolves only to private addresses), which this gateway does not deliver to"
)]
pub struct PrivateDestination(String);

impl PrivateDestination {
    /// `host` (a name or an address) is private.
    pub fn new(host: impl Into<String>) -> Self {
        Self(host.into())
    }
}

/// Resolves names and, unless allowed, refuses private answers: the check
/// is on the address actually connected to, so DNS cannot smuggle one in.
#[derive(Debug)]
struct GuardedResolver {
    allow_private: bool,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let allowed: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| allow_private || !is_private(a.ip()))
                .collect();
            if allowed.is_empty() {
                let error: Box<dyn std::error::Error + Send + Sync> = if addrs.is_empty() {
                    format!("{host} did not resolve").into()
                } else {
                    Box::new(PrivateDestination(host))
                };
                return Err(error);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// Deliveries in flight at once to one destination (see
/// [`destination_key`]), so one slow receiver cannot take every worker,
/// nor many subdomains of one escape the limit.
#[derive(Debug)]
pub struct HostLimits {
    per_host: usize,
    hosts: std::sync::Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
}

/// A destination already has its limit of requests in flight.
#[derive(Debug, thiserror::Error)]
#[error("destination {0} has its limit of deliveries in flight")]
pub struct DestinationBusy(String);

impl HostLimits {
    /// At most `per_host` requests at once to each destination.
    pub fn new(per_host: usize) -> Self {
        Self {
            per_host,
            hosts: Default::default(),
        }
    }

    /// A slot for `url`'s destination, if one is free now (never waits:
    /// the caller defers the delivery instead of holding a worker).
    pub fn try_permit(
        &self,
        url: &str,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, DestinationBusy> {
        let key = endpoint::destination_key(url);
        let mut hosts = self.hosts.lock().unwrap_or_else(|e| e.into_inner());
        // Forget destinations with nothing in flight, so the map stays as
        // small as the set of busy destinations.
        if hosts.len() > 1024 {
            let per_host = self.per_host;
            hosts.retain(|_, s| s.available_permits() < per_host);
        }
        let semaphore = hosts
            .entry(key.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(self.per_host)))
            .clone();
        drop(hosts);
        semaphore
            .try_acquire_owned()
            .map_err(|_| DestinationBusy(key))
    }
}

/// Per-destination delivery rates (a route's `rateLimit`, per endpoint): a
/// generic cell rate per (route, endpoint) from `governor`. The limit is
/// split evenly between the replicas the operator declares (`--replicas`):
/// a shared counter in the database would cost a write per delivery, and
/// replicas claim a destination's backlog about evenly.
#[derive(Debug)]
pub struct DestinationRates {
    replicas: u32,
    /// Per (route, endpoint): its limit and the limiter made for it.
    limiters: std::sync::Mutex<HashMap<(String, String), (u32, DefaultDirectRateLimiter)>>,
}

/// A destination is over its rate: the delivery waits this long.
#[derive(Debug, thiserror::Error)]
#[error("destination over its rate limit of {limit}/s")]
pub struct OverRate {
    /// The route's limit.
    pub limit: u32,
    /// Until the next delivery may go.
    pub wait: Duration,
}

impl DestinationRates {
    /// Limits split between `replicas` replicas.
    pub fn new(replicas: u32) -> Self {
        Self {
            replicas: replicas.max(1),
            limiters: Default::default(),
        }
    }

    /// Counts one delivery to `url` of `target`, or says how long to wait.
    pub fn check(&self, target: &Target, url: &str) -> Result<(), OverRate> {
        let Some(limit) = target.rate_limit().filter(|n| *n > 0) else {
            return Ok(());
        };
        let mut limiters = self.limiters.lock().unwrap_or_else(|e| e.into_inner());
        if limiters.len() > 10_000 {
            limiters.clear();
        }
        let (made_for, limiter) = limiters
            .entry((target.id().to_owned(), url.to_owned()))
            .or_insert_with(|| (limit, self.limiter(limit)));
        if *made_for != limit {
            (*made_for, *limiter) = (limit, self.limiter(limit));
        }
        limiter.check().map_err(|not_until| OverRate {
            limit,
            wait: not_until.wait_time_from(limiter.clock().now()),
        })
    }

    /// `limit` per second over all replicas: this replica's share, with a
    /// burst of one second's worth of it.
    fn limiter(&self, limit: u32) -> DefaultDirectRateLimiter {
        let period = Duration::from_secs_f64(f64::from(self.replicas) / f64::from(limit));
        let burst = NonZeroU32::new((limit / self.replicas).max(1)).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst);
        DefaultDirectRateLimiter::direct(quota)
    }
}

/// What the receiver answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// `Retry-After`, if given (capped at a day).
    pub retry_after: Option<Duration>,
    /// The start of the body (at most [`EXCERPT_BYTES`]).
    pub excerpt: String,
}

/// Why no answer came.
#[derive(Debug, thiserror::Error)]
pub enum DeliverError {
    /// The destination is private and private destinations are not allowed.
    #[error(transparent)]
    Private(#[from] PrivateDestination),
    /// No answer within the timeout.
    #[error("timed out: {0}")]
    Timeout(String),
    /// No connection (refused, unreachable, name not found, TLS).
    #[error("could not connect: {0}")]
    Connect(String),
    /// The request failed on the way.
    #[error("request failed: {0}")]
    Request(String),
}

impl DeliverError {
    /// Whether sending again later may work: a refused destination is
    /// refused again; the network may come back.
    pub fn retryable(&self) -> bool {
        !matches!(self, Self::Private(_))
    }
}

/// Sends one request.
pub async fn send(
    http: &reqwest::Client,
    request: Outgoing,
    allow_private: bool,
) -> Result<Response, DeliverError> {
    refuse_literal(&request.url, allow_private)?;
    let method = match request.method {
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
    };
    let mut builder = http.request(method, &request.url).body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = builder.send().await.map_err(classify)?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    Ok(Response {
        status,
        retry_after,
        excerpt: excerpt(response).await,
    })
}

/// Reads at most [`EXCERPT_BYTES`] of the body, and no more.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < EXCERPT_BYTES {
        match tokio::time::timeout(Duration::from_secs(5), response.chunk()).await {
            Ok(Ok(Some(chunk))) => {
                bytes.extend_from_slice(&chunk[..chunk.len().min(EXCERPT_BYTES - bytes.len())])
            }
            _ => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Refuses a private address written in the URL itself (no lookup made).
fn refuse_literal(url: &str, allow_private: bool) -> Result<(), PrivateDestination> {
    let Ok(parsed) = url::Url::parse(url) else {
        return Ok(());
    };
    let ip: IpAddr = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.into(),
        Some(url::Host::Ipv6(ip)) => ip.into(),
        Some(url::Host::Domain(_)) | None => return Ok(()),
    };
    if !allow_private && is_private(ip) {
        return Err(PrivateDestination(ip.to_string()));
    }
    Ok(())
}

/// `Retry-After` in seconds or as an HTTP date, capped at a day.
fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds.min(86_400)));
    }
    httpdate_seconds(value)
}

fn httpdate_seconds(value: &str) -> Option<Duration> {
    let when = httpdate::parse_http_date(value).ok()?;
    let wait = when
        .duration_since(std::time::SystemTime::now())
        .unwrap_or_default();
    Some(wait.min(Duration::from_secs(86_400)))
}

/// Classifies a failed request by its error types (never its text): a
/// refused private destination anywhere in the chain, a timeout, a connect
/// failure, anything else.
fn classify(error: reqwest::Error) -> DeliverError {
    use std::error::Error as _;
    let mut chain = Vec::new();
    let mut source = error.source();
    while let Some(s) = source {
        if let Some(private) = s.downcast_ref::<PrivateDestination>() {
            return DeliverError::Private(PrivateDestination(private.0.clone()));
        }
        chain.push(s.to_string());
        source = s.source();
    }
    let detail = chain.join(": ");
    if error.is_timeout() {
        DeliverError::Timeout(detail)
    } else if error.is_connect() {
        DeliverError::Connect(detail)
    } else {
        DeliverError::Request(detail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("999999999"),
            Some(Duration::from_secs(86_400))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn literal_private_addresses_are_refused() {
        assert!(refuse_literal("http://127.0.0.1:8080/x", false).is_err());
        assert!(refuse_literal("http://[::1]/x", false).is_err());
        assert!(refuse_literal("http://127.0.0.1:8080/x", true).is_ok());
        assert!(refuse_literal("http://example.com/x", false).is_ok());
    }

    #[tokio::test]
    async fn a_name_resolving_to_a_private_address_is_refused_by_type() {
        let http = client(
            &HttpSettings {
                timeout: Duration::from_secs(5),
                allow_private: false,
                extra_roots: Vec::new(),
            },
            None,
        )
        .expect("client");
        let request = Outgoing {
            method: Method::Post,
            url: "http://localhost:9/x".into(),
            headers: Vec::new(),
            body: Vec::new(),
        };
        let error = send(&http, request, false).await.expect_err("refused");
        assert!(matches!(error, DeliverError::Private(_)), "{error:?}");
        assert!(!error.retryable());
    }
}
