-- Organizations, API keys, integrations and webhook subscriptions.
CREATE TABLE organizations (
    id      TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    created BIGINT NOT NULL
);

CREATE TABLE api_keys (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    secret_hash     TEXT NOT NULL,
    created         BIGINT NOT NULL,
    revoked         BIGINT
);
CREATE INDEX api_keys_by_org ON api_keys (organization_id);

CREATE TABLE integrations (
    id                      TEXT PRIMARY KEY,
    organization_id         TEXT NOT NULL REFERENCES organizations (id),
    name                    TEXT NOT NULL,
    description             TEXT,
    hooks                   TEXT NOT NULL,
    authentication          TEXT,
    client_secret           BYTEA,
    signing_secret          BYTEA NOT NULL,
    plugin_name             TEXT,
    plugin_version          TEXT,
    config                  TEXT NOT NULL,
    enabled                 BOOLEAN NOT NULL,
    disabled_reason         TEXT,
    created                 BIGINT NOT NULL,
    modified                BIGINT NOT NULL
);
CREATE INDEX integrations_by_org ON integrations (organization_id, created, id);

-- One row per hook: the routing table of integrations.
CREATE TABLE integration_hooks (
    integration_id  TEXT NOT NULL REFERENCES integrations (id) ON DELETE CASCADE,
    organization_id TEXT NOT NULL,
    position        BIGINT NOT NULL,
    hook_type       TEXT NOT NULL,
    method          TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    PRIMARY KEY (integration_id, position)
);
CREATE INDEX integration_hooks_route ON integration_hooks (organization_id, hook_type);

CREATE TABLE webhooks (
    id                      TEXT PRIMARY KEY,
    organization_id         TEXT NOT NULL REFERENCES organizations (id),
    topic                   TEXT NOT NULL,
    urls                    TEXT NOT NULL,
    name                    TEXT,
    shop_id                 TEXT,
    method                  TEXT NOT NULL,
    plugin_name             TEXT,
    plugin_version          TEXT,
    config                  TEXT NOT NULL,
    secret                  BYTEA NOT NULL,
    previous_secret         BYTEA,
    previous_secret_expires BIGINT,
    deleted                 BOOLEAN NOT NULL DEFAULT FALSE,
    disabled_reason         TEXT,
    created                 BIGINT NOT NULL,
    modified                BIGINT NOT NULL
);
CREATE INDEX webhooks_by_org ON webhooks (organization_id, created, id);
CREATE INDEX webhooks_route ON webhooks (organization_id, topic);
