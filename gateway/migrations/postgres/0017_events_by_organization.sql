-- The dashboard's event counts per time bucket read one organization's
-- recent events: an index from the organization and the time.
CREATE INDEX events_by_organization ON events (organization_id, created);
