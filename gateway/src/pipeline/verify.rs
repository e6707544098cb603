//! The verify stage, at the door of `POST /v1/ingest/{sourceId}`: checks a
//! provider's webhook signature over the raw bytes (in constant time),
//! refuses replays outside the timestamp tolerance, and reads the
//! provider's event type and delivery id, before anything is stored.

use super::sign;
use crate::model::{Scheme, Source};
use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signed timestamp may be from now (Standard Webhooks and
/// Stripe both recommend five minutes).
pub const TOLERANCE_SECS: i64 = 300;

/// What a verified request says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Verified {
    /// The provider's event type (`X-GitHub-Event`, `X-Shopify-Topic`,
    /// the body's `type` for Stripe and Standard Webhooks), if any.
    pub event_type: Option<String>,
    /// The provider's id of this delivery, the same on its retries
    /// (`webhook-id`, `X-GitHub-Delivery`, the Stripe event id,
    /// `X-Shopify-Webhook-Id`), if any.
    pub delivery_id: Option<String>,
}

/// Why a request was refused. The answer is a 401 either way; the reason
/// is for the log and the caller's debugging, never the expected value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A header the scheme needs is missing or not text.
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    /// A header is there but not in the scheme's format.
    #[error("the `{0}` header is malformed")]
    Malformed(&'static str),
    /// The signature does not match the body.
    #[error("the signature does not match")]
    Mismatch,
    /// The signed timestamp is outside the tolerance: a replay, or a
    /// clock far off.
    #[error("the signed timestamp is {0} s from now, more than {TOLERANCE_SECS} s")]
    Stale(i64),
}

/// Verifies a request to `source` at `now` (epoch seconds).
pub fn verify(
    source: &Source,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, VerifyError> {
    let secret = source.secret.expose().as_bytes();
    match source.scheme {
        Scheme::StandardWebhooks => standard_webhooks(source, headers, body, now),
        Scheme::Github => {
            let signature = header(headers, "x-hub-signature-256")?;
            let hex_mac = signature
                .strip_prefix("sha256=")
                .ok_or(VerifyError::Malformed("x-hub-signature-256"))?;
            check_mac(
                secret,
                &[body],
                &hex_decode(hex_mac, "x-hub-signature-256")?,
            )?;
            Ok(Verified {
                event_type: optional(headers, "x-github-event"),
                delivery_id: optional(headers, "x-github-delivery"),
            })
        }
        Scheme::Stripe => {
            let (timestamp, signatures) = stripe_header(header(headers, "stripe-signature")?)?;
            fresh(timestamp, now)?;
            let signed = [timestamp.to_string().as_bytes(), b".", body].concat();
            if !signatures
                .iter()
                .any(|s| check_mac(secret, &[&signed], s).is_ok())
            {
                return Err(VerifyError::Mismatch);
            }
            let fields = body_fields(body);
            Ok(Verified {
                event_type: fields.0,
                delivery_id: fields.1,
            })
        }
        Scheme::Shopify => {
            let signature = header(headers, "x-shopify-hmac-sha256")?;
            let mac = B64
                .decode(signature)
                .map_err(|_| VerifyError::Malformed("x-shopify-hmac-sha256"))?;
            check_mac(secret, &[body], &mac)?;
            Ok(Verified {
                event_type: optional(headers, "x-shopify-topic"),
                delivery_id: optional(headers, "x-shopify-webhook-id")
                    .or_else(|| optional(headers, "x-shopify-event-id")),
            })
        }
        Scheme::HmacSha256 => {
            let name = source.header.as_deref().unwrap_or("x-signature");
            let value = headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or(VerifyError::Missing("signature"))?;
            let hex_mac = value.strip_prefix("sha256=").unwrap_or(value);
            check_mac(secret, &[body], &hex_decode(hex_mac, "signature")?)?;
            Ok(Verified::default())
        }
    }
}

fn standard_webhooks(
    source: &Source,
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Verified, VerifyError> {
    let id = header(headers, "webhook-id")?;
    let timestamp: i64 = header(headers, "webhook-timestamp")?
        .parse()
        .map_err(|_| VerifyError::Malformed("webhook-timestamp"))?;
    fresh(timestamp, now)?;
    let given = header(headers, "webhook-signature")?;
    let expected = sign::sign(id, timestamp, body, &[source.secret.expose()])
        .map_err(|_| VerifyError::Mismatch)?
        .signature;
    let matches = given
        .split(' ')
        .any(|candidate| bool::from(candidate.as_bytes().ct_eq(expected.as_bytes())));
    if !matches {
        return Err(VerifyError::Mismatch);
    }
    Ok(Verified {
        event_type: body_fields(body).0,
        delivery_id: Some(id.to_owned()),
    })
}

/// HMAC-SHA256 of `parts` with `secret`, compared with `mac` in constant time.
fn check_mac(secret: &[u8], parts: &[&[u8]], mac: &[u8]) -> Result<(), VerifyError> {
    let mut hmac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| VerifyError::Mismatch)?;
    for part in parts {
        hmac.update(part);
    }
    hmac.verify_slice(mac).map_err(|_| VerifyError::Mismatch)
}

fn fresh(timestamp: i64, now: i64) -> Result<(), VerifyError> {
    let skew = now.saturating_sub(timestamp);
    if skew.abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale(skew));
    }
    Ok(())
}

/// `t=<seconds>,v1=<hex>[,v1=<hex>…]` (other schemes' entries ignored).
fn stripe_header(value: &str) -> Result<(i64, Vec<Vec<u8>>), VerifyError> {
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for item in value.split(',') {
        match item.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse().ok(),
            Some(("v1", hex_mac)) => signatures.push(hex_decode(hex_mac, "stripe-signature")?),
            _ => {}
        }
    }
    match timestamp {
        Some(t) if !signatures.is_empty() => Ok((t, signatures)),
        _ => Err(VerifyError::Malformed("stripe-signature")),
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &'static str) -> Result<&'h str, VerifyError> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .ok_or(VerifyError::Missing(name))
}

fn optional(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(str::to_owned)
}

fn hex_decode(text: &str, name: &'static str) -> Result<Vec<u8>, VerifyError> {
    hex::decode(text.trim()).map_err(|_| VerifyError::Malformed(name))
}

/// The body's top-level `type` and `id` strings, if it is a JSON object
/// with them.
fn body_fields(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Fields {
        #[serde(rename = "type")]
        event_type: Option<serde_json::Value>,
        id: Option<serde_json::Value>,
    }
    let Ok(fields) = serde_json::from_slice::<Fields>(body) else {
        return (None, None);
    };
    let text = |v: Option<serde_json::Value>| match v {
        Some(serde_json::Value::String(s)) => Some(s),
        _ => None,
    };
    (text(fields.event_type), text(fields.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{OrgId, Secret};

    fn source(scheme: Scheme, secret: &str) -> Source {
        Source {
            id: "src_1".into(),
            organization_id: OrgId::trusted("org_1".into()),
            name: "s".into(),
            scheme,
            header: None,
            secret: Secret::new(secret),
            created: 0,
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    axum::http::HeaderName::from_static(k),
                    v.parse().expect("value"),
                )
            })
            .collect()
    }

    /// GitHub's documented example: secret "It's a Secret to Everybody",
    /// payload "Hello, World!".
    #[test]
    fn github_example_verifies() {
        let src = source(Scheme::Github, "It's a Secret to Everybody");
        let good = headers(&[(
            "x-hub-signature-256",
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
        )]);
        assert!(verify(&src, &good, b"Hello, World!", 0).is_ok());
        assert_eq!(
            verify(&src, &good, b"Hello, World?", 0),
            Err(VerifyError::Mismatch)
        );
        assert_eq!(
            verify(&src, &HeaderMap::new(), b"Hello, World!", 0),
            Err(VerifyError::Missing("x-hub-signature-256"))
        );
    }

    #[test]
    fn standard_webhooks_refuses_stale_timestamps() {
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let src = source(Scheme::StandardWebhooks, secret);
        let body = br#"{"test": 2432232314}"#;
        let signed = headers(&[
            ("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek"),
            ("webhook-timestamp", "1614265330"),
            (
                "webhook-signature",
                "v1,bm9ldHUh v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
            ),
        ]);
        let ok = verify(&src, &signed, body, 1614265330 + 10).expect("verifies");
        assert_eq!(
            ok.delivery_id.as_deref(),
            Some("msg_p5jXN8AQM9LWM0D4loKWxJek")
        );
        assert_eq!(
            verify(&src, &signed, body, 1614265330 + 301),
            Err(VerifyError::Stale(301))
        );
    }
}
