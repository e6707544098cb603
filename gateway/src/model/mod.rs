//! Domain types: what the gateway stores and routes by, free of HTTP and SQL.

pub mod endpoint;
mod filter;
mod ids;
mod source;
mod target;

pub use filter::{Filter, FilterError, FilterInput};
pub use ids::OrgId;
pub use source::{Scheme, Source};
pub use target::Target;

use std::collections::BTreeMap;
use std::fmt;

/// Milliseconds since the Unix epoch.
pub type EpochMs = i64;

/// The current time in epoch milliseconds.
pub fn now_ms() -> EpochMs {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new id with a readable prefix, time-ordered: `org_0193…`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

/// At most `max` bytes of `s`, cut at a character boundary.
pub fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// `s` as one line of at most `max` bytes (before escaping), control
/// characters escaped: text from plugins and receivers cannot forge log
/// lines or terminal output.
pub fn one_line(s: &str, max: usize) -> String {
    let mut out = String::with_capacity(s.len().min(max));
    for c in truncate(s, max).chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// A secret value: never printed by `Debug` or `Display`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret string.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself; call only where it is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// A tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Organization {
    /// `org_…`
    pub id: OrgId,
    /// Display name.
    pub name: String,
    /// Creation time.
    pub created: EpochMs,
}

/// One API key of an organization; only its hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `key_…`: the public part of the key.
    pub id: String,
    /// Owner.
    pub organization_id: OrgId,
    /// sha256 of the secret part, hex.
    pub secret_hash: String,
    /// Creation time.
    pub created: EpochMs,
    /// When it was revoked, if it was.
    pub revoked: Option<EpochMs>,
}

/// HTTP methods a hook may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// POST (default).
    Post,
    /// PUT.
    Put,
    /// PATCH.
    Patch,
}

impl Method {
    /// The method's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Put => "PUT",
            Self::Patch => "PATCH",
        }
    }

    /// Parses `POST`, `PUT` or `PATCH` (any case).
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_uppercase().as_str() {
            "POST" => Some(Self::Post),
            "PUT" => Some(Self::Put),
            "PATCH" => Some(Self::Patch),
            _ => None,
        }
    }
}

/// How deliveries to one destination (a subscription URL, an integration
/// hook) are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    /// As they come: in parallel, each retried on its own.
    #[default]
    None,
    /// One at a time, in the order their events were accepted; a head that
    /// is being retried holds the rest until it is delivered or ends.
    Fifo,
}

impl Ordering {
    /// `none` or `fifo`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Fifo => "fifo",
        }
    }

    /// Parses `none` or `fifo`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "none" => Some(Self::None),
            "fifo" => Some(Self::Fifo),
            _ => None,
        }
    }
}

/// One hook of an integration: events of `hook_type` go to `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The event type.
    pub hook_type: String,
    /// HTTP method.
    pub method: Method,
    /// Absolute http(s) URL.
    pub endpoint: String,
}

/// OAuth2 `client_credentials` settings of an integration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// Token endpoint.
    pub token_endpoint: String,
    /// Client id.
    pub client_id: String,
    /// The client's credential, stored encrypted: its secret, or, with
    /// `private_key_jwt`, its PEM private key.
    pub client_secret: Secret,
    /// Optional space-separated scopes.
    pub scope: Option<String>,
    /// Header name to set, e.g. `Authorization`.
    pub header_format: String,
    /// Header value template containing `%ACCESS_TOKEN%`.
    pub header_value_format: String,
    /// How the token request is made, beyond the credentials.
    pub options: TokenOptions,
    /// A client certificate for mutual TLS, to the token endpoint and the
    /// hooks' endpoints.
    pub tls_client_certificate: Option<TlsIdentity>,
}

/// A client certificate and its private key (PEM), for mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsIdentity {
    /// The certificate chain, leaf first.
    pub certificate: String,
    /// The private key (stored encrypted).
    pub private_key: Secret,
}

/// How a token request is made, beyond the client credentials (stored
/// with the integration as given; every field optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct TokenOptions {
    /// How the client authenticates; `None` tries HTTP Basic, then the
    /// form when the endpoint answers `invalid_client`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<ClientAuth>,
    /// `audience` sent with the request (Auth0, Okta and others want it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// More form parameters sent with the request.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_params: BTreeMap<String, String>,
    /// The field of the token response holding the token (default
    /// `access_token`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_field: Option<String>,
    /// `kid` of the client assertion's header (`private_key_jwt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// How a client authenticates at the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A JWT signed with the client's private key (RFC 7523).
    PrivateKeyJwt,
}

impl ClientAuth {
    /// Every method, in the order the API lists them.
    pub const ALL: [Self; 3] = [
        Self::ClientSecretBasic,
        Self::ClientSecretPost,
        Self::PrivateKeyJwt,
    ];

    /// The method the API calls `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }

    /// Whether the credential is a private key rather than a secret.
    pub fn uses_key(auth: Option<Self>) -> bool {
        auth == Some(Self::PrivateKeyJwt)
    }

    /// The name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::PrivateKeyJwt => "private_key_jwt",
        }
    }
}

/// A plugin reference: a name and, optionally, a pinned version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginRef {
    /// Plugin name.
    pub name: String,
    /// Pinned version (sha256 or a prefix of it); the active one when absent.
    pub version: Option<String>,
}

/// An integration (seed 003): hooks plus optional OAuth2 and plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Integration {
    /// `int_…`
    pub id: String,
    /// Owner.
    pub organization_id: OrgId,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Hooks, in the order given.
    pub hooks: Vec<Hook>,
    /// OAuth2 settings, if the receiver wants a token.
    pub authentication: Option<Authentication>,
    /// Plugin that reshapes events, if any.
    pub plugin: Option<PluginRef>,
    /// Values the plugin reads with `config(key)`.
    pub config: BTreeMap<String, String>,
    /// Only events that match create deliveries (to each of its hooks).
    pub filter: Option<Filter>,
    /// At most this many deliveries per second to each hook's endpoint.
    pub rate_limit: Option<u32>,
    /// How deliveries to each hook's endpoint are ordered.
    pub ordering: Ordering,
    /// Whether events are routed to it.
    pub enabled: bool,
    /// Why the gateway disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Standard Webhooks signing secret, `whsec_…` (stored encrypted).
    pub signing_secret: Secret,
    /// The rotated-out secret, still signing until its expiry.
    pub previous_signing_secret: Option<(Secret, EpochMs)>,
    /// Creation time.
    pub created: EpochMs,
    /// Last change.
    pub modified: EpochMs,
}

/// A webhook subscription (seeds 000, 001, 002).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// `wh_…`
    pub id: String,
    /// Owner.
    pub organization_id: OrgId,
    /// Event type (topic, `webHookType`).
    pub topic: String,
    /// Callback URLs; each receives every event.
    pub urls: Vec<String>,
    /// Name.
    pub name: Option<String>,
    /// Only events of this shop, when set.
    pub shop_id: Option<String>,
    /// HTTP method.
    pub method: Method,
    /// Plugin that reshapes events, if any.
    pub plugin: Option<PluginRef>,
    /// Plugin configuration.
    pub config: BTreeMap<String, String>,
    /// Only events that match create deliveries.
    pub filter: Option<Filter>,
    /// At most this many deliveries per second to each URL.
    pub rate_limit: Option<u32>,
    /// How deliveries to each URL are ordered.
    pub ordering: Ordering,
    /// Signing secret, `whsec_…` (stored encrypted).
    pub secret: Secret,
    /// The previous secret, still signing until `previous_secret_expires`.
    pub previous_secret: Option<(Secret, EpochMs)>,
    /// Soft-deleted: receives nothing, listed only on request.
    pub deleted: bool,
    /// Why the gateway disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Creation time.
    pub created: EpochMs,
    /// Last change.
    pub modified: EpochMs,
}

/// An event type an organization declares, with the JSON Schema (draft
/// 2020-12) its payloads must satisfy, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventType {
    /// Owner.
    pub organization_id: OrgId,
    /// The type, as events name it.
    pub name: String,
    /// What it means.
    pub description: Option<String>,
    /// The schema, as written.
    pub schema: Option<serde_json::Value>,
    /// Created.
    pub created: EpochMs,
    /// Last change.
    pub modified: EpochMs,
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// How many match in all, or at least, when `total_capped`.
    pub total: i64,
    /// Whether counting stopped at `total` (more match).
    pub total_capped: bool,
}

impl<T> Page<T> {
    /// The same page with each item made by `f`, or `f`'s first error.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Page<U>, E> {
        Ok(Page {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            total: self.total,
            total_capped: self.total_capped,
        })
    }
}

/// Filters for listing webhooks.
#[derive(Debug, Clone, Default)]
pub struct WebhookFilter {
    /// Only this topic.
    pub topic: Option<String>,
    /// Only this shop.
    pub shop_id: Option<String>,
    /// Include soft-deleted ones.
    pub include_deleted: bool,
}

/// An event as accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Owner.
    pub organization_id: OrgId,
    /// The caller's id, or one Hookgate made (`evt_…`).
    pub id: String,
    /// Hook type.
    pub event_type: String,
    /// Payload, as JSON text.
    pub payload: String,
    /// Shop, for subscription filters.
    pub shop_id: Option<String>,
    /// Accepted at.
    pub created: EpochMs,
    /// The W3C `traceparent` of its trace, when it has one.
    pub trace_context: Option<String>,
}

/// What a delivery goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// An integration's hook.
    Integration,
    /// A webhook subscription's URL.
    Webhook,
}

impl TargetKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Integration => "integration",
            Self::Webhook => "webhook",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "integration" => Some(Self::Integration),
            "webhook" => Some(Self::Webhook),
            _ => None,
        }
    }
}

/// One destination an event is routed to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Integration or subscription.
    pub target_kind: TargetKind,
    /// Its id.
    pub target_id: String,
    /// The URL.
    pub endpoint: String,
    /// The method.
    pub method: Method,
    /// Only events that match go this way.
    pub filter: Option<std::sync::Arc<Filter>>,
    /// How deliveries this way are ordered.
    pub ordering: Ordering,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryStatus {
    /// Waiting for its next attempt (or in flight under a lease).
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Failed for good without exhausting retries (4xx, plugin error).
    Failed,
    /// Every attempt failed.
    Dead,
    /// The plugin dropped the event.
    Dropped,
    /// The route went away before delivery.
    Cancelled,
}

impl DeliveryStatus {
    /// Every status.
    pub const ALL: [Self; 6] = [
        Self::Pending,
        Self::Delivered,
        Self::Failed,
        Self::Dead,
        Self::Dropped,
        Self::Cancelled,
    ];

    /// Stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
            Self::Dead => "dead",
            Self::Dropped => "dropped",
            Self::Cancelled => "cancelled",
        }
    }

    /// From the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// One HTTP request to send, with its state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// `dlv_…`; also the `webhook-id` the receiver sees.
    pub id: String,
    /// Owner.
    pub organization_id: OrgId,
    /// The event.
    pub event_id: String,
    /// The event's type.
    pub event_type: String,
    /// Integration or subscription.
    pub target_kind: TargetKind,
    /// Its id.
    pub target_id: String,
    /// URL.
    pub endpoint: String,
    /// Method.
    pub method: Method,
    /// State.
    pub status: DeliveryStatus,
    /// Whether the body below is the final one (transform done).
    pub transformed: bool,
    /// The body to send.
    pub body: Option<Vec<u8>>,
    /// Its content type.
    pub content_type: Option<String>,
    /// Extra headers from the plugin.
    pub headers: Vec<(String, String)>,
    /// For a FIFO destination, its queue: deliveries with the same key go
    /// one at a time, in acceptance order.
    pub fifo_key: Option<String>,
    /// Attempts made.
    pub attempts: i64,
    /// Attempts made before the last replay.
    pub attempt_base: i64,
    /// When the next attempt is due.
    pub next_attempt_at: EpochMs,
    /// Last error.
    pub last_error: Option<String>,
    /// Last HTTP status.
    pub last_status: Option<i64>,
    /// Created.
    pub created: EpochMs,
    /// Last change.
    pub modified: EpochMs,
    /// When it reached a final status.
    pub completed: Option<EpochMs>,
    /// Its event's W3C `traceparent`, when the event has a trace.
    pub trace_context: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    /// The delivery.
    pub delivery_id: String,
    /// 1, 2, …
    pub attempt: i64,
    /// When it started.
    pub started: EpochMs,
    /// How long it took.
    pub duration_ms: i64,
    /// The receiver's status code, if it answered.
    pub status_code: Option<i64>,
    /// What went wrong, if anything.
    pub error: Option<String>,
    /// The start of the response body (≤ 4 KiB).
    pub response_excerpt: Option<String>,
    /// The headers sent, in order, the auth header's value redacted; empty
    /// when the attempt ended before a request was built.
    pub request_headers: Vec<(String, String)>,
}

/// One request ready to sign and send, as the transform stage made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedRequest {
    /// The bytes to send.
    pub body: Vec<u8>,
    /// Sent as `content-type`.
    pub content_type: String,
    /// Extra headers from the plugin (never one the gateway owns).
    pub headers: Vec<(String, String)>,
}
