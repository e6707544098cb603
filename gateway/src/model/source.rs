//! Sources: platforms that post their own webhooks to Hookgate
//! (`POST /v1/ingest/{sourceId}`), each verified at the door by its
//! provider's signature scheme before it becomes an event.

use super::{EpochMs, OrgId, Secret};

/// How a source's requests are signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`,
    /// `webhook-signature` (`v1,<base64>`), secret `whsec_<base64>`.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body.
    Github,
    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>` over `<ts>.<body>`.
    Stripe,
    /// Shopify: `X-Shopify-Hmac-Sha256: <base64>` over the body.
    Shopify,
    /// HMAC-SHA256 of the body, hex (optionally `sha256=`-prefixed), in a
    /// header the source names.
    HmacSha256,
}

impl Scheme {
    /// Every scheme, by its API name.
    pub const ALL: [(&'static str, Scheme); 5] = [
        ("standard-webhooks", Scheme::StandardWebhooks),
        ("github", Scheme::Github),
        ("stripe", Scheme::Stripe),
        ("shopify", Scheme::Shopify),
        ("hmac-sha256", Scheme::HmacSha256),
    ];

    /// The scheme called `name` in the API.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, s)| *s)
    }

    /// Its API name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, s)| *s == self)
            .map(|(n, _)| *n)
            .unwrap_or("hmac-sha256")
    }
}

/// A source of an organization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `src_…`
    pub id: String,
    /// Owner: the events it makes are this organization's.
    pub organization_id: OrgId,
    /// Name: events without a provider type are `source.<name>`.
    pub name: String,
    /// How its requests are signed.
    pub scheme: Scheme,
    /// The signature header (`hmac-sha256` only).
    pub header: Option<String>,
    /// The signing secret (stored encrypted).
    pub secret: Secret,
    /// Created, epoch ms.
    pub created: EpochMs,
}
