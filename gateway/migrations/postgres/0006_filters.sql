-- Filters on subscriptions and integrations (JSON, as written): only events
-- that match create deliveries; evaluated at ingest.
ALTER TABLE webhooks ADD COLUMN filter TEXT;
ALTER TABLE integrations ADD COLUMN filter TEXT;
