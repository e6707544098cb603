-- Per-destination delivery rate limits (deliveries per second; NULL: none).
ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER;
ALTER TABLE integrations ADD COLUMN rate_limit INTEGER;
