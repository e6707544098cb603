//! The host-side values a transform takes and gives, free of wasmtime types.

use std::collections::BTreeMap;
use std::sync::Arc;

/// One event as a plugin sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginEvent {
    /// Hookgate's event id.
    pub id: String,
    /// The hook type.
    pub hook_type: String,
    /// Id of the integration or subscription the job delivers to.
    pub integration: String,
    /// When the event was accepted, epoch milliseconds.
    pub occurred_at_ms: u64,
    /// Media type of the body.
    pub content_type: String,
    /// The payload as posted.
    pub body: Vec<u8>,
}

/// The configuration map of one integration, shared cheaply between jobs.
pub type PluginConfig = Arc<BTreeMap<String, String>>;

/// One request a plugin asked the gateway to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingRequest {
    /// The bytes to send.
    pub body: Vec<u8>,
    /// Sent as `content-type`.
    pub content_type: String,
    /// Extra headers, already checked against the reserved names.
    pub headers: Vec<(String, String)>,
}

/// What a plugin decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Send these requests.
    Deliver(Vec<OutgoingRequest>),
    /// Send nothing, for this reason.
    Drop(String),
}
