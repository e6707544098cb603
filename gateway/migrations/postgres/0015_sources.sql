-- Sources: platforms that post their own signed webhooks to
-- POST /v1/ingest/{id}; each request is verified with the source's scheme
-- and secret (encrypted like every secret) before it becomes an event of
-- the source's organization.
CREATE TABLE sources (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations (id),
    name            TEXT NOT NULL,
    scheme          TEXT NOT NULL,
    header          TEXT,
    secret          BYTEA NOT NULL,
    created         BIGINT NOT NULL,
    UNIQUE (organization_id, name)
);
