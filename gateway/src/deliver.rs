//! The deliver stage: one HTTP request with pooled connections, timeouts,
//! no redirects, a capped response capture, and the SSRF guard on the
//! resolved address. Classifies the answer for the record stage.

use crate::model::Method;
use crate::ssrf::is_private;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use std::net::{IpAddr, SocketAddr};
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
}

/// Builds the client every delivery and token fetch uses.
pub fn client(settings: &HttpSettings) -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(settings.timeout)
        .timeout(settings.timeout)
        .pool_max_idle_per_host(1024)
        .pool_idle_timeout(Duration::from_secs(90))
        .user_agent(concat!("hookgate/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: settings.allow_private,
        }))
        .build()
        .expect("the HTTP client settings are valid")
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
                    format!("{host} resolves only to private addresses, which this gateway does not deliver to").into()
                };
                return Err(error);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

/// One request to send.
#[derive(Debug)]
pub struct Outgoing<'a> {
    /// Method.
    pub method: Method,
    /// URL.
    pub url: &'a str,
    /// Headers (content type, signature, auth, plugin extras).
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

/// What the receiver (or the network) said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// 2xx.
    Success {
        /// Status code.
        status: u16,
        /// Start of the body.
        excerpt: String,
    },
    /// Try again later: network error, timeout, 408, 429, 5xx.
    Retry {
        /// Status code, if it answered.
        status: Option<u16>,
        /// `Retry-After`, if given.
        retry_after: Option<Duration>,
        /// What happened.
        error: String,
        /// Start of the body.
        excerpt: Option<String>,
    },
    /// 401: refresh the token once and try again.
    Unauthorized {
        /// Start of the body.
        excerpt: String,
    },
    /// 410: the receiver asks us to stop; disable the route.
    Gone {
        /// Start of the body.
        excerpt: String,
    },
    /// Any other 4xx (or a refused destination): fail without retry.
    Fail {
        /// Status code, if it answered.
        status: Option<u16>,
        /// What happened.
        error: String,
        /// Start of the body.
        excerpt: Option<String>,
    },
}

/// Sends one request and classifies the answer.
pub async fn send(http: &reqwest::Client, request: Outgoing<'_>, allow_private: bool) -> Answer {
    if let Some(refusal) = refuse_literal(request.url, allow_private) {
        return Answer::Fail {
            status: None,
            error: refusal,
            excerpt: None,
        };
    }
    let method = match request.method {
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
    };
    let mut builder = http.request(method, request.url).body(request.body);
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let response = match builder.send().await {
        Ok(response) => response,
        Err(error) => {
            let text = describe(&error);
            // A refused destination will be refused again: do not retry it.
            if text.contains("private addresses") {
                return Answer::Fail {
                    status: None,
                    error: text,
                    excerpt: None,
                };
            }
            return Answer::Retry {
                status: None,
                retry_after: None,
                error: text,
                excerpt: None,
            };
        }
    };
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let excerpt = excerpt(response).await;
    match status {
        200..=299 => Answer::Success { status, excerpt },
        401 => Answer::Unauthorized { excerpt },
        410 => Answer::Gone { excerpt },
        408 | 429 | 500..=599 => Answer::Retry {
            status: Some(status),
            retry_after,
            error: format!("receiver answered {status}"),
            excerpt: Some(excerpt),
        },
        _ => Answer::Fail {
            status: Some(status),
            error: format!("receiver answered {status}"),
            excerpt: Some(excerpt),
        },
    }
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

fn refuse_literal(url: &str, allow_private: bool) -> Option<String> {
    if allow_private {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    let ip: IpAddr = match parsed.host()? {
        url::Host::Ipv4(ip) => ip.into(),
        url::Host::Ipv6(ip) => ip.into(),
        url::Host::Domain(_) => return None,
    };
    is_private(ip)
        .then(|| format!("{ip} is a private address, which this gateway does not deliver to"))
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

fn describe(error: &reqwest::Error) -> String {
    use std::error::Error as _;
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "request failed"
    };
    let mut text = kind.to_owned();
    let mut source = error.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
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
        assert!(refuse_literal("http://127.0.0.1:8080/x", false).is_some());
        assert!(refuse_literal("http://[::1]/x", false).is_some());
        assert!(refuse_literal("http://127.0.0.1:8080/x", true).is_none());
        assert!(refuse_literal("http://example.com/x", false).is_none());
    }
}
