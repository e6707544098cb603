-- Each attempt keeps the headers it sent (the auth header's value
-- redacted), so an operator sees what the receiver got: a JSON array of
-- [name, value] pairs; NULL when the attempt ended before a request was built.
ALTER TABLE attempts ADD COLUMN request_headers TEXT;
