//! What a delivery goes to: an integration's hook or a subscription's URL,
//! loaded for one attempt.

use super::{Authentication, EpochMs, Integration, OrgId, PluginRef, Secret, Webhook};
use std::collections::BTreeMap;

/// The integration or subscription a delivery belongs to.
#[derive(Debug, Clone)]
pub enum Target {
    /// An integration.
    Integration(Box<Integration>),
    /// A webhook subscription.
    Webhook(Box<Webhook>),
}

impl Target {
    /// The id.
    pub fn id(&self) -> &str {
        match self {
            Self::Integration(i) => &i.id,
            Self::Webhook(w) => &w.id,
        }
    }

    /// How many endpoints it sends to: an integration's hooks, a
    /// subscription's URLs.
    pub fn endpoint_count(&self) -> usize {
        match self {
            Self::Integration(i) => i.hooks.len(),
            Self::Webhook(w) => w.urls.len(),
        }
    }

    /// Deliveries per second allowed to each of its endpoints, if limited.
    pub fn rate_limit(&self) -> Option<u32> {
        match self {
            Self::Integration(i) => i.rate_limit,
            Self::Webhook(w) => w.rate_limit,
        }
    }

    /// The owning organization.
    pub fn organization_id(&self) -> &OrgId {
        match self {
            Self::Integration(i) => &i.organization_id,
            Self::Webhook(w) => &w.organization_id,
        }
    }

    /// The plugin that reshapes its events, if any.
    pub fn plugin(&self) -> Option<&PluginRef> {
        match self {
            Self::Integration(i) => i.plugin.as_ref(),
            Self::Webhook(w) => w.plugin.as_ref(),
        }
    }

    /// The plugin's configuration.
    pub fn config(&self) -> &BTreeMap<String, String> {
        match self {
            Self::Integration(i) => &i.config,
            Self::Webhook(w) => &w.config,
        }
    }

    /// The OAuth2 settings, when the receiver wants a token.
    pub fn authentication(&self) -> Option<&Authentication> {
        match self {
            Self::Integration(i) => i.authentication.as_ref(),
            Self::Webhook(_) => None,
        }
    }

    /// The secrets that sign now: the current one, plus a rotated-out one
    /// still inside its overlap.
    pub fn signing_secrets(&self, now_ms: i64) -> Vec<&str> {
        match self {
            Self::Integration(i) => signing(&i.signing_secret, &i.previous_signing_secret, now_ms),
            Self::Webhook(w) => signing(&w.secret, &w.previous_secret, now_ms),
        }
    }

    /// Why this target takes no deliveries now, if it does not.
    pub fn inactive_reason(&self) -> Option<String> {
        match self {
            Self::Integration(i) if !i.enabled => Some(
                i.disabled_reason
                    .clone()
                    .unwrap_or_else(|| "integration disabled".into()),
            ),
            Self::Webhook(w) if w.deleted => Some("webhook deleted".into()),
            Self::Webhook(w) => w.disabled_reason.clone(),
            Self::Integration(_) => None,
        }
    }
}

/// The current secret, and the previous one while it has not expired.
fn signing<'a>(
    current: &'a Secret,
    previous: &'a Option<(Secret, EpochMs)>,
    now_ms: EpochMs,
) -> Vec<&'a str> {
    let mut secrets = vec![current.expose()];
    if let Some((previous, expires)) = previous
        && *expires > now_ms
    {
        secrets.push(previous.expose());
    }
    secrets
}
