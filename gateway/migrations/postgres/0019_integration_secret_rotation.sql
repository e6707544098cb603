-- An integration's signing secret can be rotated like a subscription's:
-- the rotated-out secret keeps signing beside the new one until it expires.
ALTER TABLE integrations ADD COLUMN previous_signing_secret BYTEA;
ALTER TABLE integrations ADD COLUMN previous_signing_secret_expires BIGINT;
