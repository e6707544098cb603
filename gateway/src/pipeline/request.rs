//! What a receiver gets, built in one place: [`build`] assembles the
//! method, URL, body and every header of a delivery; beside it, the one
//! list of headers the gateway owns, which the API (auth header names),
//! the plugin runtime (plugin headers) and [`build`] all go by.

use super::authorize::AuthHeader;
use super::sign::Signature;
use crate::model::{Delivery, Method, PreparedRequest};

/// Header names the gateway sets on every delivery (besides every
/// `webhook-*` name): neither a plugin nor an auth header may set them.
const GATEWAY_HEADERS: [&str; 7] = [
    "content-length",
    "content-type",
    "host",
    "transfer-encoding",
    "user-agent",
    "connection",
    crate::telemetry::TRACEPARENT,
];

/// The gateway's `user-agent`.
pub const USER_AGENT: &str = concat!("hookgate/", env!("CARGO_PKG_VERSION"));

/// Whether `name` is a valid HTTP header name (an RFC 9110 token).
pub fn is_header_name(name: &str) -> bool {
    reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_ok()
}

/// Whether the gateway owns the header `name` (any case).
pub fn is_gateway_owned(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    lower.starts_with("webhook-") || GATEWAY_HEADERS.contains(&lower.as_str())
}

/// Whether a plugin may set the header `name`: not one the gateway owns,
/// and not `authorization`, which carries credentials plugins never see.
pub fn plugin_may_set(name: &str) -> bool {
    !is_gateway_owned(name) && !name.eq_ignore_ascii_case("authorization")
}

/// One request to send.
#[derive(Debug, Clone)]
pub struct Outgoing {
    /// Method.
    pub method: Method,
    /// URL.
    pub url: String,
    /// Every header, in the order sent.
    pub headers: Vec<(String, String)>,
    /// Body.
    pub body: Vec<u8>,
}

impl Outgoing {
    /// The headers as an attempt records them: in the order sent, the
    /// auth header's value (and any `authorization`) redacted, and the
    /// token wherever else it appears.
    pub fn recorded_headers(&self, auth: Option<&AuthHeader>) -> Vec<(String, String)> {
        let secret = |name: &str| {
            name.eq_ignore_ascii_case("authorization")
                || auth.is_some_and(|a| a.name.eq_ignore_ascii_case(name))
        };
        self.headers
            .iter()
            .map(|(name, value)| {
                let shown = match auth {
                    _ if secret(name) => "[redacted]".to_owned(),
                    Some(auth) => auth.redact(value),
                    None => value.clone(),
                };
                (name.clone(), shown)
            })
            .collect()
    }
}

/// The request for `delivery`: the transform's body and content type, the
/// Standard Webhooks headers, the rendered auth header where the route
/// has one, the user agent, then the plugin's own headers.
pub fn build(
    delivery: &Delivery,
    request: &PreparedRequest,
    signature: Signature,
    auth: Option<&AuthHeader>,
    traceparent: Option<String>,
) -> Outgoing {
    let mut headers = Vec::with_capacity(7 + request.headers.len());
    headers.push(("content-type".to_owned(), request.content_type.clone()));
    headers.push(("webhook-id".to_owned(), signature.id));
    headers.push(("webhook-timestamp".to_owned(), signature.timestamp));
    headers.push(("webhook-signature".to_owned(), signature.signature));
    headers.push(("user-agent".to_owned(), USER_AGENT.to_owned()));
    headers.extend(traceparent.map(|t| (crate::telemetry::TRACEPARENT.to_owned(), t)));
    headers.extend(auth.map(|a| (a.name.clone(), a.value.clone())));
    headers.extend(request.headers.iter().cloned());
    Outgoing {
        method: delivery.method,
        url: delivery.endpoint.clone(),
        headers,
        body: request.body.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gateway_owns_its_headers_in_any_case() {
        for owned in [
            "Webhook-Signature",
            "webhook-id",
            "Content-Type",
            "HOST",
            "user-agent",
        ] {
            assert!(is_gateway_owned(owned), "{owned}");
            assert!(!plugin_may_set(owned), "{owned}");
        }
        assert!(!is_gateway_owned("Authorization"));
        assert!(!plugin_may_set("Authorization"));
        assert!(plugin_may_set("X-Partner-Trace"));
    }

    #[test]
    fn recorded_headers_never_hold_the_token() {
        let outgoing = Outgoing {
            method: Method::Post,
            url: "https://example.com/hook".into(),
            headers: vec![
                ("webhook-id".into(), "dlv_1".into()),
                ("X-Api-Key".into(), "Token tok-secret".into()),
                ("x-echo".into(), "carries tok-secret along".into()),
            ],
            body: Vec::new(),
        };
        let auth = AuthHeader {
            name: "x-api-key".into(),
            value: "Token tok-secret".into(),
            token: "tok-secret".into(),
        };
        let pairs = |v: &[(&str, &str)]| -> Vec<(String, String)> {
            v.iter().map(|(n, v)| ((*n).into(), (*v).into())).collect()
        };
        assert_eq!(
            outgoing.recorded_headers(Some(&auth)),
            pairs(&[
                ("webhook-id", "dlv_1"),
                ("X-Api-Key", "[redacted]"),
                ("x-echo", "carries [redacted] along"),
            ])
        );
        assert_eq!(outgoing.recorded_headers(None), outgoing.headers);
    }
}
