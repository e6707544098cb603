-- Events and their delivery jobs: the durable queue.
CREATE TABLE events (
    organization_id TEXT NOT NULL,
    id              TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    payload         TEXT NOT NULL,
    shop_id         TEXT,
    created         BIGINT NOT NULL,
    PRIMARY KEY (organization_id, id)
);

-- One row per HTTP request to send. A plugin's fan-out adds rows.
CREATE TABLE deliveries (
    id              TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL,
    event_id        TEXT NOT NULL,
    event_type      TEXT NOT NULL,
    target_kind     TEXT NOT NULL,
    target_id       TEXT NOT NULL,
    endpoint        TEXT NOT NULL,
    method          TEXT NOT NULL,
    status          TEXT NOT NULL,
    transformed     BOOLEAN NOT NULL DEFAULT FALSE,
    body            BYTEA,
    content_type    TEXT,
    headers         TEXT,
    attempts        BIGINT NOT NULL DEFAULT 0,
    attempt_base    BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_expires   BIGINT,
    last_error      TEXT,
    last_status     BIGINT,
    created         BIGINT NOT NULL,
    modified        BIGINT NOT NULL,
    completed       BIGINT
);
CREATE INDEX deliveries_due ON deliveries (status, next_attempt_at);
CREATE INDEX deliveries_by_event ON deliveries (organization_id, event_id);
CREATE INDEX deliveries_by_org ON deliveries (organization_id, status, created);
CREATE INDEX deliveries_by_target ON deliveries (target_id, status);

CREATE TABLE attempts (
    delivery_id      TEXT NOT NULL,
    attempt          BIGINT NOT NULL,
    started          BIGINT NOT NULL,
    duration_ms      BIGINT NOT NULL,
    status_code      BIGINT,
    error            TEXT,
    response_excerpt TEXT,
    PRIMARY KEY (delivery_id, attempt)
);

-- When each route started failing without a success since.
CREATE TABLE target_health (
    target_id     TEXT PRIMARY KEY,
    failing_since BIGINT NOT NULL
);
