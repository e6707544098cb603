//! The plain Rust types a plugin works with, and their conversions to and
//! from the generated WIT types.

use crate::__bindings::hookgate::plugin::types as wit;
use serde::Serialize;
use std::fmt;

/// One event posted to Hookgate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Hookgate's event id; stable across retries, so receivers can dedupe.
    pub id: String,
    /// The hook type, e.g. `order_created` or `customer.updated`.
    pub hook_type: String,
    /// Id of the integration or subscription this delivery goes to.
    pub integration: String,
    /// When Hookgate accepted the event, in epoch milliseconds.
    pub occurred_at_ms: u64,
    /// Media type of [`Event::body`].
    pub content_type: String,
    /// The payload exactly as posted.
    pub body: Vec<u8>,
}

impl Event {
    /// An `application/json` event with `payload` as its body, for tests and
    /// tools. The id is `evt_test`, the integration `int_test`.
    pub fn from_json(hook_type: &str, payload: &serde_json::Value) -> Self {
        Self {
            id: "evt_test".to_owned(),
            hook_type: hook_type.to_owned(),
            integration: "int_test".to_owned(),
            occurred_at_ms: 1_700_000_000_000,
            content_type: "application/json".to_owned(),
            body: serde_json::to_vec(payload).unwrap_or_default(),
        }
    }

    /// The body as raw bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body parsed as JSON; [`Error::InvalidEvent`] when it is not JSON.
    pub fn json(&self) -> Result<serde_json::Value, Error> {
        self.parse()
    }

    /// The body parsed into your own type; [`Error::InvalidEvent`] naming
    /// the problem when it does not fit.
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Result<T, Error> {
        serde_json::from_slice(&self.body)
            .map_err(|e| Error::InvalidEvent(format!("event body is not the expected JSON: {e}")))
    }
}

/// One HTTP header on an outgoing request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Header name.
    pub name: String,
    /// Header value.
    pub value: String,
}

/// One request for the gateway to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The bytes to send.
    pub body: Vec<u8>,
    /// Media type of the body.
    pub content_type: String,
    /// Extra headers; the gateway refuses reserved ones (`authorization`,
    /// `content-type`, `content-length`, `host`, `transfer-encoding`,
    /// `user-agent`, `webhook-*`).
    pub headers: Vec<Header>,
}

impl Request {
    /// A request with `body` and `content_type` and no extra headers.
    pub fn new(body: impl Into<Vec<u8>>, content_type: impl Into<String>) -> Self {
        Self {
            body: body.into(),
            content_type: content_type.into(),
            headers: Vec::new(),
        }
    }

    /// An `application/json` request with `value` serialized as its body.
    pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<Self, Error> {
        let body = serde_json::to_vec(value)
            .map_err(|e| Error::Failed(format!("could not serialize the request body: {e}")))?;
        Ok(Self::new(body, "application/json"))
    }

    /// Adds an extra header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push(Header {
            name: name.into(),
            value: value.into(),
        });
        self
    }

    /// The body parsed as JSON (handy in tests).
    pub fn body_json(&self) -> Option<serde_json::Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The value of the first header named `name` (case-insensitive).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value.as_str())
    }
}

/// What to do with an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send these requests, in order.
    Deliver(Vec<Request>),
    /// Send nothing; the reason is recorded on the delivery.
    Drop(String),
}

impl Outcome {
    /// Deliver exactly one request.
    pub fn deliver(request: Request) -> Self {
        Self::Deliver(vec![request])
    }

    /// Drop the event with `reason`.
    pub fn drop(reason: impl Into<String>) -> Self {
        Self::Drop(reason.into())
    }

    /// The requests to deliver; empty for a drop.
    pub fn requests(&self) -> &[Request] {
        match self {
            Self::Deliver(requests) => requests,
            Self::Drop(_) => &[],
        }
    }
}

/// Why a plugin could not transform an event. Never retried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The event is not what the plugin expects.
    InvalidEvent(String),
    /// Anything else: bad configuration, a bug.
    Failed(String),
}

impl Error {
    /// A [`Error::Failed`] with `message`.
    pub fn failed(message: impl Into<String>) -> Self {
        Self::Failed(message.into())
    }

    /// An [`Error::InvalidEvent`] with `message`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::InvalidEvent(message.into())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidEvent(m) => write!(f, "invalid event: {m}"),
            Self::Failed(m) => write!(f, "failed: {m}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<wit::Event> for Event {
    fn from(e: wit::Event) -> Self {
        Self {
            id: e.id,
            hook_type: e.hook_type,
            integration: e.integration,
            occurred_at_ms: e.occurred_at_ms,
            content_type: e.content_type,
            body: e.body,
        }
    }
}

impl From<Outcome> for wit::Outcome {
    fn from(o: Outcome) -> Self {
        match o {
            Outcome::Deliver(requests) => {
                wit::Outcome::Deliver(requests.into_iter().map(Into::into).collect())
            }
            Outcome::Drop(reason) => wit::Outcome::Drop(reason),
        }
    }
}

impl From<Request> for wit::Request {
    fn from(r: Request) -> Self {
        Self {
            body: r.body,
            content_type: r.content_type,
            headers: r
                .headers
                .into_iter()
                .map(|h| wit::Header {
                    name: h.name,
                    value: h.value,
                })
                .collect(),
        }
    }
}

impl From<Error> for wit::PluginError {
    fn from(e: Error) -> Self {
        match e {
            Error::InvalidEvent(m) => Self::InvalidEvent(m),
            Error::Failed(m) => Self::Failed(m),
        }
    }
}
