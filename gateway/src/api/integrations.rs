//! `/v1/integrations`: the seed 003 document, accepted exactly as written,
//! plus `plugin`, `config` and `enabled`.

use super::error::ApiError;
use super::extract::{JsonBody, OrgAuth, Pagination, Path, Query};
use super::validate::Problems;
use super::{AppState, Envelope, ListOut, PluginRefIn, PluginRefOut, created, ok};
use crate::model::{
    Authentication, ClientAuth, Filter, Hook, Integration, Method, Ordering, PluginRef, Secret,
    TlsIdentity, TokenOptions, endpoint, new_id, now_ms,
};
use crate::pipeline::client_assertion::ClientKey;
use crate::pipeline::clients::{check_certificate, check_identity};
use crate::pipeline::request::{is_gateway_owned, is_header_name};
use crate::secrets;
use crate::store::SecretOwner;
use axum::extract::State;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// Shown instead of a stored client secret.
pub const REDACTED: &str = "[redacted]";

/// An integration as sent to `POST` and `PUT`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct IntegrationIn {
    /// Name.
    pub name: Option<String>,
    /// Description.
    pub description: Option<String>,
    /// Must be the caller's own organization when given.
    pub organization_id: Option<String>,
    /// Where each event type goes.
    pub hooks: Option<Vec<HookIn>>,
    /// OAuth2 `client_credentials` for the receiver.
    pub authentication: Option<AuthenticationIn>,
    /// A plugin that reshapes events.
    pub plugin: Option<PluginRefIn>,
    /// String values the plugin reads with `config(key)`.
    pub config: Option<BTreeMap<String, String>>,
    /// Only events that match create deliveries (to each hook): dotted
    /// paths into `{type, shopId, payload}` with values or operator objects
    /// (`$eq $ne $gt $gte $lt $lte $in $nin $exists`), combined with `$and
    /// $or $not`.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// At most this many deliveries per second to each endpoint (1 to
    /// 10000; absent or null: no limit). Deliveries over it wait; none is
    /// dropped.
    #[schema(minimum = 1, maximum = 10000)]
    pub rate_limit: Option<u32>,
    /// `none` (default) or `fifo`: deliveries to each endpoint one at a
    /// time, in acceptance order; a head being retried holds the rest.
    pub ordering: Option<String>,
    /// Whether events are routed to it (default true).
    pub enabled: Option<bool>,
    /// Read-only; accepted (and ignored) so a fetched integration can be sent back.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub id: Option<String>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub created: Option<i64>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub modified: Option<i64>,
    /// Read-only; ignored.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a fetched object can be sent back; ignored
    pub disabled_reason: Option<String>,
    /// Read-only (shown once, on create); ignored. Rotate it instead.
    #[schema(read_only)]
    #[allow(dead_code)] // accepted so a created object can be sent back; ignored
    pub signing_secret: Option<String>,
}

/// One hook.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HookIn {
    /// Event type, e.g. `order_created`.
    #[serde(rename = "type")]
    pub hook_type: Option<String>,
    /// `POST` (default), `PUT` or `PATCH`.
    pub method: Option<String>,
    /// Absolute http(s) URL.
    pub endpoint: Option<String>,
}

/// OAuth2 settings, in the seed's snake_case.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthenticationIn {
    /// Only `client_credentials`.
    pub grant_type: Option<String>,
    /// The token endpoint.
    pub endpoint: Option<String>,
    /// Client credentials.
    pub credentials: Option<CredentialsIn>,
    /// Header to set (default `Authorization`).
    pub header_format: Option<String>,
    /// Header value; must contain `%ACCESS_TOKEN%` (default `Bearer %ACCESS_TOKEN%`).
    pub header_value_format: Option<String>,
    /// Space-separated scopes to ask for.
    pub scope: Option<String>,
    /// `client_secret_basic` (HTTP Basic) or `client_secret_post` (in the
    /// form). Left out: Basic, then the form if the endpoint answers
    /// `invalid_client`.
    pub client_auth: Option<String>,
    /// `audience` sent with the token request.
    pub audience: Option<String>,
    /// More form parameters sent with the token request.
    pub extra_params: Option<BTreeMap<String, String>>,
    /// The token response's field holding the token (default `access_token`).
    pub token_field: Option<String>,
    /// A client certificate for mutual TLS to the token endpoint and the
    /// hooks' endpoints.
    pub tls_client_certificate: Option<TlsCertificateIn>,
}

/// A client certificate and its key, PEM.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsCertificateIn {
    /// The certificate chain, leaf first.
    pub certificate: Option<String>,
    /// Its private key. Kept like a secret: leave it out (or send
    /// `[redacted]`) to keep the stored one.
    pub private_key: Option<String>,
}

/// A client certificate as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct TlsCertificateOut {
    /// The certificate chain.
    pub certificate: String,
    /// Always `[redacted]`.
    pub private_key: String,
}

/// Client credentials.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CredentialsIn {
    /// Client id.
    pub client_id: Option<String>,
    /// Client secret. On update, leave it out (or send `[redacted]`) to keep the stored one.
    pub client_secret: Option<String>,
    /// With `client_auth: "private_key_jwt"`, instead of a secret: the PEM
    /// private key (RSA for RS256, P-256 PKCS#8 for ES256) that signs the
    /// client assertions. Kept like a secret: leave it out to keep it.
    pub private_key: Option<String>,
    /// The assertion header's `kid` (`private_key_jwt`).
    pub key_id: Option<String>,
}

/// An integration as returned.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationOut {
    /// `int_…`
    pub id: String,
    /// Owner.
    pub organization_id: String,
    /// Name.
    pub name: String,
    /// Description.
    pub description: Option<String>,
    /// Hooks.
    pub hooks: Vec<HookOut>,
    /// OAuth2 settings; the client secret is redacted.
    pub authentication: Option<AuthenticationOut>,
    /// Plugin.
    pub plugin: Option<PluginRefOut>,
    /// Plugin configuration.
    pub config: BTreeMap<String, String>,
    /// The filter, as written.
    #[schema(value_type = Option<Object>)]
    pub filter: Option<serde_json::Value>,
    /// Deliveries per second allowed to each endpoint, if limited.
    pub rate_limit: Option<u32>,
    /// `none` or `fifo`.
    pub ordering: String,
    /// Whether events are routed to it.
    pub enabled: bool,
    /// Why the gateway disabled it, if it did.
    pub disabled_reason: Option<String>,
    /// Created, epoch ms.
    pub created: i64,
    /// Modified, epoch ms.
    pub modified: i64,
    /// The Standard Webhooks signing secret: present only in the answer to create.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
}

/// One hook as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct HookOut {
    /// Event type.
    #[serde(rename = "type")]
    pub hook_type: String,
    /// Method.
    pub method: String,
    /// Endpoint.
    pub endpoint: String,
}

/// OAuth2 settings as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthenticationOut {
    /// `client_credentials`.
    pub grant_type: String,
    /// Token endpoint.
    pub endpoint: String,
    /// Client id and a redacted secret.
    pub credentials: CredentialsOut,
    /// Header name.
    pub header_format: String,
    /// Header value template.
    pub header_value_format: String,
    /// Scopes.
    pub scope: Option<String>,
    /// How the client authenticates, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_auth: Option<String>,
    /// Audience, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,
    /// More form parameters of the token request.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub extra_params: BTreeMap<String, String>,
    /// The token response's field holding the token, when not `access_token`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_field: Option<String>,
    /// The client certificate for mutual TLS, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate: Option<TlsCertificateOut>,
}

/// Credentials as returned.
#[derive(Debug, Serialize, ToSchema)]
pub struct CredentialsOut {
    /// Client id.
    pub client_id: String,
    /// `[redacted]`, when the client has a secret.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<String>,
    /// `[redacted]`, when the client signs assertions with a key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub private_key: Option<String>,
    /// The assertions' `kid`, when set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

impl From<&Integration> for IntegrationOut {
    fn from(i: &Integration) -> Self {
        Self {
            id: i.id.clone(),
            organization_id: i.organization_id.to_string(),
            name: i.name.clone(),
            description: i.description.clone(),
            hooks: i
                .hooks
                .iter()
                .map(|h| HookOut {
                    hook_type: h.hook_type.clone(),
                    method: h.method.as_str().to_owned(),
                    endpoint: h.endpoint.clone(),
                })
                .collect(),
            authentication: i.authentication.as_ref().map(|a| AuthenticationOut {
                grant_type: "client_credentials".into(),
                endpoint: a.token_endpoint.clone(),
                credentials: {
                    let uses_key = ClientAuth::uses_key(a.options.client_auth);
                    CredentialsOut {
                        client_id: a.client_id.clone(),
                        client_secret: (!uses_key).then(|| REDACTED.into()),
                        private_key: uses_key.then(|| REDACTED.into()),
                        key_id: a.options.key_id.clone(),
                    }
                },
                header_format: a.header_format.clone(),
                header_value_format: a.header_value_format.clone(),
                scope: a.scope.clone(),
                client_auth: a.options.client_auth.map(|c| c.as_str().to_owned()),
                audience: a.options.audience.clone(),
                extra_params: a.options.extra_params.clone(),
                token_field: a.options.token_field.clone(),
                tls_client_certificate: a.tls_client_certificate.as_ref().map(|t| {
                    TlsCertificateOut {
                        certificate: t.certificate.clone(),
                        private_key: REDACTED.into(),
                    }
                }),
            }),
            plugin: i.plugin.as_ref().map(PluginRefOut::from),
            config: i.config.clone(),
            filter: i.filter.as_ref().map(|f| f.source().clone()),
            rate_limit: i.rate_limit,
            ordering: i.ordering.as_str().to_owned(),
            enabled: i.enabled,
            disabled_reason: i.disabled_reason.clone(),
            created: i.created,
            modified: i.modified,
            signing_secret: None,
        }
    }
}

/// The validated parts of an [`IntegrationIn`].
struct Validated {
    name: String,
    description: Option<String>,
    hooks: Vec<Hook>,
    authentication: Option<AuthenticationDraft>,
    plugin: Option<PluginRef>,
    config: BTreeMap<String, String>,
    filter: Option<Filter>,
    rate_limit: Option<u32>,
    ordering: Ordering,
    enabled: bool,
}

struct AuthenticationDraft {
    token_endpoint: String,
    client_id: String,
    /// The secret, or the private key with `private_key_jwt`; `None`:
    /// keep the stored one.
    credential: Option<String>,
    scope: Option<String>,
    header_format: String,
    header_value_format: String,
    options: TokenOptions,
    tls: Option<TlsDraft>,
}

struct TlsDraft {
    certificate: String,
    /// `None`: keep the stored key.
    private_key: Option<String>,
}

impl IntegrationIn {
    fn validate(self, auth: &OrgAuth, allow_private: bool) -> Result<Validated, ApiError> {
        let mut p = Problems::default();
        if let Some(org) = &self.organization_id
            && auth.organization_id != org.as_str()
        {
            p.add("organizationId", "must be the organization of the API key");
        }
        let name = p.required("name", self.name);
        if let Some(name) = &name {
            p.text("name", name, 200);
        }
        if let Some(d) = &self.description
            && d.chars().count() > 2000
        {
            p.add("description", "must be at most 2000 characters");
        }
        let hooks_in = p.required("hooks", self.hooks).unwrap_or_default();
        if hooks_in.is_empty() && !p.0.iter().any(|e| e.field == "hooks") {
            p.add("hooks", "must name at least one hook");
        }
        if hooks_in.len() > 100 {
            p.add("hooks", "must have at most 100 hooks");
        }
        let mut hooks = Vec::new();
        for (i, h) in hooks_in.into_iter().enumerate() {
            let hook_type = p.required(&format!("hooks[{i}].type"), h.hook_type);
            if let Some(t) = &hook_type {
                p.event_type(&format!("hooks[{i}].type"), t);
            }
            let method = match h.method.as_deref() {
                None => Some(Method::Post),
                Some(m) => {
                    let parsed = Method::parse(m);
                    if parsed.is_none() {
                        p.add(format!("hooks[{i}].method"), "must be POST, PUT or PATCH");
                    }
                    parsed
                }
            };
            let endpoint = p.required(&format!("hooks[{i}].endpoint"), h.endpoint);
            if let Some(e) = &endpoint {
                p.url(&format!("hooks[{i}].endpoint"), e, allow_private);
            }
            if let (Some(hook_type), Some(method), Some(endpoint)) = (hook_type, method, endpoint) {
                hooks.push(Hook {
                    hook_type,
                    method,
                    endpoint,
                });
            }
        }
        let authentication = self
            .authentication
            .and_then(|a| validate_auth(a, &mut p, allow_private));
        let plugin = self.plugin.and_then(|r| r.validate("plugin", &mut p));
        let config = self.config.unwrap_or_default();
        super::validate_config(&config, &mut p);
        let filter = p.filter(self.filter);
        p.rate_limit(self.rate_limit);
        let ordering = p.ordering(self.ordering.as_deref());
        p.finish()?;
        Ok(Validated {
            name: name.unwrap_or_default(),
            description: self.description,
            hooks,
            authentication,
            plugin,
            config,
            filter,
            rate_limit: self.rate_limit,
            ordering,
            enabled: self.enabled.unwrap_or(true),
        })
    }
}

fn validate_auth(
    a: AuthenticationIn,
    p: &mut Problems,
    allow_private: bool,
) -> Option<AuthenticationDraft> {
    match a.grant_type.as_deref() {
        None => p.add("authentication.grant_type", "is required"),
        Some("client_credentials") => {}
        Some(other) => p.add(
            "authentication.grant_type",
            format!("`{other}` is not supported; use `client_credentials`"),
        ),
    }
    let endpoint = p.required("authentication.endpoint", a.endpoint);
    if let Some(e) = &endpoint {
        p.url("authentication.endpoint", e, allow_private);
    }
    let client_auth = client_auth(a.client_auth.as_deref(), p);
    let credentials = p.required("authentication.credentials", a.credentials);
    let (client_id, credential, key_id) = match credentials {
        Some(c) => {
            let id = p.required("authentication.credentials.client_id", c.client_id);
            if let Some(id) = &id {
                p.text("authentication.credentials.client_id", id, 512);
            }
            let credential = validate_credential(client_auth, c.client_secret, c.private_key, p);
            if let Some(key_id) = &c.key_id {
                p.text("authentication.credentials.key_id", key_id, 256);
            }
            (id, credential, c.key_id)
        }
        None => (None, None, None),
    };
    let header_format = a.header_format.unwrap_or_else(|| "Authorization".into());
    let valid_name = header_format.len() <= 128 && is_header_name(&header_format);
    if !valid_name {
        p.add(
            "authentication.header_format",
            "must be an HTTP header name",
        );
    } else if is_gateway_owned(&header_format) {
        p.add(
            "authentication.header_format",
            "names a header the gateway sets itself",
        );
    }
    let header_value_format = a
        .header_value_format
        .unwrap_or_else(|| "Bearer %ACCESS_TOKEN%".into());
    if !header_value_format.contains("%ACCESS_TOKEN%") {
        p.add(
            "authentication.header_value_format",
            "must contain %ACCESS_TOKEN%",
        );
    } else if header_value_format.len() > 1024
        || header_value_format.bytes().any(|b| b < 0x20 || b == 0x7f)
    {
        p.add(
            "authentication.header_value_format",
            "must be at most 1024 visible characters",
        );
    }
    if let Some(scope) = &a.scope
        && scope.len() > 1024
    {
        p.add("authentication.scope", "must be at most 1024 characters");
    }
    let options = validate_token_options(
        TokenOptions {
            client_auth,
            audience: a.audience,
            extra_params: a.extra_params.unwrap_or_default(),
            token_field: a.token_field,
            key_id,
        },
        p,
    );
    let tls = a.tls_client_certificate.and_then(|t| validate_tls(t, p));
    Some(AuthenticationDraft {
        tls,
        token_endpoint: endpoint?,
        client_id: client_id?,
        credential,
        scope: a.scope,
        header_format,
        header_value_format,
        options,
    })
}

fn client_auth(name: Option<&str>, p: &mut Problems) -> Option<ClientAuth> {
    let name = name?;
    let parsed = ClientAuth::parse(name);
    if parsed.is_none() {
        let names: Vec<&str> = ClientAuth::ALL.iter().map(|a| a.as_str()).collect();
        p.add(
            "authentication.client_auth",
            format!("`{name}` is not one of {}", names.join(", ")),
        );
    }
    parsed
}

/// The credential the client authenticates with: a private key with
/// `private_key_jwt` (read and tried here, so a bad PEM is a 400), a
/// secret otherwise. `None` keeps the stored one.
fn validate_credential(
    client_auth: Option<ClientAuth>,
    secret: Option<String>,
    key: Option<String>,
    p: &mut Problems,
) -> Option<String> {
    let secret = secret.filter(|s| s != REDACTED);
    let key = key.filter(|k| k != REDACTED);
    if ClientAuth::uses_key(client_auth) {
        if secret.is_some() {
            p.add(
                "authentication.credentials.client_secret",
                "is not used with private_key_jwt; give private_key",
            );
        }
        if let Some(pem) = &key
            && let Err(e) = ClientKey::check(pem)
        {
            p.add("authentication.credentials.private_key", e.to_string());
        }
        return key;
    }
    if key.is_some() {
        p.add(
            "authentication.credentials.private_key",
            "is only used with client_auth private_key_jwt",
        );
    }
    if let Some(s) = &secret
        && (s.is_empty() || s.len() > 4096)
    {
        p.add(
            "authentication.credentials.client_secret",
            "must be 1 to 4096 characters",
        );
    }
    secret
}

const TLS_FIELD: &str = "authentication.tls_client_certificate";

/// A client certificate: both parts read, and, when the key is given, the
/// key is the certificate's.
fn validate_tls(t: TlsCertificateIn, p: &mut Problems) -> Option<TlsDraft> {
    let certificate = p.required(&format!("{TLS_FIELD}.certificate"), t.certificate)?;
    let private_key = t.private_key.filter(|k| k != REDACTED);
    // Without a key (the stored one is kept), only the certificate can be
    // checked here; `resolve_tls` checks it with the stored key.
    let checked = match &private_key {
        Some(key) => check_identity(&TlsIdentity {
            certificate: certificate.clone(),
            private_key: Secret::new(key.clone()),
        }),
        None => check_certificate(&certificate).map(drop),
    };
    if let Err(e) = checked {
        p.add(format!("{TLS_FIELD}.{}", e.field()), e.to_string());
    }
    Some(TlsDraft {
        certificate,
        private_key,
    })
}

/// The client certificate to store: the key given, or the stored one while
/// the token endpoint stays at its origin (like the client secret).
fn resolve_tls(
    draft: Option<TlsDraft>,
    token_endpoint: &str,
    existing: Option<&Authentication>,
) -> Result<Option<TlsIdentity>, ApiError> {
    let Some(draft) = draft else { return Ok(None) };
    let field = format!("{TLS_FIELD}.private_key");
    let stored = existing.and_then(|e| {
        e.tls_client_certificate
            .as_ref()
            .map(|t| (e.token_endpoint.as_str(), t))
    });
    let private_key = match (draft.private_key, stored) {
        // Checked with the certificate in `validate_tls`.
        (Some(key), _) => Secret::new(key),
        (None, Some((endpoint, t)))
            if endpoint::origin(endpoint) == endpoint::origin(token_endpoint) =>
        {
            let identity = TlsIdentity {
                certificate: draft.certificate.clone(),
                private_key: t.private_key.clone(),
            };
            check_identity(&identity).map_err(|e| {
                ApiError::field(&format!("{TLS_FIELD}.{}", e.field()), e.to_string())
            })?;
            identity.private_key
        }
        (None, Some(_)) => {
            return Err(ApiError::field(
                &field,
                "is required when the token endpoint moves to another origin",
            ));
        }
        (None, None) => return Err(ApiError::field(&field, "is required")),
    };
    Ok(Some(TlsIdentity {
        certificate: draft.certificate,
        private_key,
    }))
}

/// Form parameters the gateway sets itself; `extra_params` may not.
const RESERVED_TOKEN_PARAMS: [&str; 7] = [
    "grant_type",
    "client_id",
    "client_secret",
    "scope",
    "audience",
    "client_assertion",
    "client_assertion_type",
];

fn validate_token_options(options: TokenOptions, p: &mut Problems) -> TokenOptions {
    if let Some(audience) = &options.audience {
        p.text("authentication.audience", audience, 1024);
    }
    if options.extra_params.len() > 32 {
        p.add(
            "authentication.extra_params",
            "must have at most 32 entries",
        );
    }
    for (name, value) in &options.extra_params {
        let field = format!("authentication.extra_params.{name}");
        if name.is_empty() || name.len() > 128 {
            p.add(&field, "names must be 1 to 128 characters");
        } else if RESERVED_TOKEN_PARAMS.contains(&name.as_str()) {
            p.add(&field, "is set by the gateway; use the field of its own");
        }
        if value.len() > 1024 {
            p.add(&field, "must be at most 1024 characters");
        }
    }
    if let Some(token_field) = &options.token_field {
        p.text("authentication.token_field", token_field, 128);
    }
    options
}

/// The stored credential stays bound to the token endpoint's origin and to
/// its kind: moving the endpoint elsewhere, or switching between a secret
/// and a key, needs the credential again; otherwise anyone with an API key
/// could have it sent to a server of theirs.
fn resolve_auth(
    draft: Option<AuthenticationDraft>,
    existing: Option<&Authentication>,
) -> Result<Option<Authentication>, ApiError> {
    let Some(d) = draft else { return Ok(None) };
    let uses_key = ClientAuth::uses_key(d.options.client_auth);
    let field = if uses_key {
        "authentication.credentials.private_key"
    } else {
        "authentication.credentials.client_secret"
    };
    let client_secret = match (d.credential, existing) {
        (Some(s), _) => Secret::new(s),
        (None, Some(e))
            if endpoint::origin(&e.token_endpoint) != endpoint::origin(&d.token_endpoint) =>
        {
            return Err(ApiError::field(
                field,
                "is required when the token endpoint moves to another origin",
            ));
        }
        (None, Some(e)) if ClientAuth::uses_key(e.options.client_auth) != uses_key => {
            return Err(ApiError::field(
                field,
                "is required when switching between a secret and a private key",
            ));
        }
        (None, Some(e)) => e.client_secret.clone(),
        (None, None) => return Err(ApiError::field(field, "is required")),
    };
    let tls_client_certificate = resolve_tls(d.tls, &d.token_endpoint, existing)?;
    Ok(Some(Authentication {
        tls_client_certificate,
        token_endpoint: d.token_endpoint,
        client_id: d.client_id,
        client_secret,
        scope: d.scope,
        header_format: d.header_format,
        header_value_format: d.header_value_format,
        options: d.options,
    }))
}

/// Create an integration (seed 003 document).
#[utoipa::path(post, path = "/v1/integrations", tag = "integrations", request_body = IntegrationIn,
    responses((status = 201, body = Envelope<IntegrationOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create(
    State(state): State<AppState>,
    auth: OrgAuth,
    JsonBody(body): JsonBody<IntegrationIn>,
) -> Result<Response, ApiError> {
    let v = body.validate(&auth, state.allow_private)?;
    let now = now_ms();
    let integration = Integration {
        id: new_id("int"),
        organization_id: auth.organization_id,
        name: v.name,
        description: v.description,
        hooks: v.hooks,
        authentication: resolve_auth(v.authentication, None)?,
        plugin: v.plugin,
        config: v.config,
        filter: v.filter,
        rate_limit: v.rate_limit,
        ordering: v.ordering,
        enabled: v.enabled,
        disabled_reason: None,
        signing_secret: Secret::new(secrets::new_signing_secret()),
        previous_signing_secret: None,
        created: now,
        modified: now,
    };
    state.store.insert_integration(&integration).await?;
    tracing::info!(integration_id = %integration.id, organization_id = %integration.organization_id, "integration created");
    let mut out = IntegrationOut::from(&integration);
    out.signing_secret = Some(integration.signing_secret.expose().to_owned());
    Ok(created("integration created", out))
}

/// List the organization's integrations.
#[utoipa::path(get, path = "/v1/integrations", tag = "integrations", params(Pagination),
    responses((status = 200, body = Envelope<ListOut<IntegrationOut>>), (status = 400, body = super::error::ErrorEnvelope), (status = 401, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(state): State<AppState>,
    auth: OrgAuth,
    Query(page): Query<Pagination>,
) -> Result<Response, ApiError> {
    let page = page.validate()?;
    let found = state
        .store
        .list_integrations(&auth.organization_id, page.start, page.limit)
        .await?;
    Ok(ok(
        "integrations",
        ListOut::of(&found, page, IntegrationOut::from),
    ))
}

/// Get one integration.
#[utoipa::path(get, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<IntegrationOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let integration = state
        .store
        .get_integration(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("integration"))?;
    Ok(ok("integration", IntegrationOut::from(&integration)))
}

/// Replace an integration. The client secret is kept when left out.
#[utoipa::path(put, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path)), request_body = IntegrationIn,
    responses((status = 200, body = Envelope<IntegrationOut>), (status = 400, body = super::error::ErrorEnvelope),
              (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope), (status = 413, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn update(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
    JsonBody(body): JsonBody<IntegrationIn>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_integration(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("integration"))?;
    let v = body.validate(&auth, state.allow_private)?;
    let integration = Integration {
        name: v.name,
        description: v.description,
        hooks: v.hooks,
        authentication: resolve_auth(v.authentication, existing.authentication.as_ref())?,
        plugin: v.plugin,
        config: v.config,
        filter: v.filter,
        rate_limit: v.rate_limit,
        ordering: v.ordering,
        // Re-enabling clears the reason the gateway disabled it for.
        disabled_reason: if v.enabled {
            None
        } else {
            existing.disabled_reason.clone()
        },
        enabled: v.enabled,
        modified: now_ms().max(existing.modified),
        ..existing
    };
    state.store.update_integration(&integration).await?;
    state.pipeline.forget_target(&integration.id);
    Ok(ok(
        "integration updated",
        IntegrationOut::from(&integration),
    ))
}

/// Delete an integration; its pending deliveries are cancelled.
#[utoipa::path(delete, path = "/v1/integrations/{id}", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<IntegrationOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_integration(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("integration"))?;
    state
        .store
        .delete_integration(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("integration"))?;
    state.pipeline.forget_target(&id);
    Ok(ok("integration deleted", IntegrationOut::from(&existing)))
}

/// Rotate the integration's signing secret. The old one keeps signing
/// alongside the new one for the overlap (default 24 h), so the receiver
/// can switch over; the new one is in the answer, once.
#[utoipa::path(post, path = "/v1/integrations/{id}/secret/rotate", tag = "integrations", params(("id" = String, Path)),
    responses((status = 200, body = Envelope<IntegrationOut>), (status = 401, body = super::error::ErrorEnvelope), (status = 404, body = super::error::ErrorEnvelope)),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    auth: OrgAuth,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let existing = state
        .store
        .get_integration(&auth.organization_id, &id)
        .await
        .map_err(ApiError::not_found("integration"))?;
    let r = super::rotate_signing_secret(&state, SecretOwner::Integration, &auth, &id).await?;
    let integration = Integration {
        previous_signing_secret: Some((existing.signing_secret.clone(), r.previous_expires)),
        signing_secret: r.secret,
        modified: r.now.max(existing.modified + 1),
        ..existing
    };
    state.pipeline.forget_target(&integration.id);
    tracing::info!(integration_id = %integration.id, "integration signing secret rotated");
    let mut out = IntegrationOut::from(&integration);
    out.signing_secret = Some(integration.signing_secret.expose().to_owned());
    Ok(ok("integration signing secret rotated", out))
}
