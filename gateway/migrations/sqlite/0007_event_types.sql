-- Event types an organization declares, with an optional JSON Schema
-- (draft 2020-12) that payloads of that type must satisfy.
CREATE TABLE event_types (
    organization_id TEXT NOT NULL,
    name            TEXT NOT NULL,
    description     TEXT,
    schema          TEXT,
    created         BIGINT NOT NULL,
    modified        BIGINT NOT NULL,
    PRIMARY KEY (organization_id, name)
);
