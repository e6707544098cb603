-- Plugins in the database, content-addressed, so every replica runs the
-- same version: the active one per name.
CREATE TABLE plugin_versions (
    name      TEXT NOT NULL,
    version   TEXT NOT NULL,
    component BLOB NOT NULL,
    created   BIGINT NOT NULL,
    PRIMARY KEY (name, version)
);

CREATE TABLE plugin_active (
    name     TEXT PRIMARY KEY,
    version  TEXT NOT NULL,
    modified BIGINT NOT NULL
);
