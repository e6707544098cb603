-- FIFO destinations: a route's ordering, and each delivery's queue (NULL
-- unless its destination is FIFO). A FIFO delivery is claimable only while
-- no earlier pending delivery of its queue exists.
ALTER TABLE webhooks ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE integrations ADD COLUMN ordering TEXT NOT NULL DEFAULT 'none';
ALTER TABLE deliveries ADD COLUMN fifo_key TEXT;
CREATE INDEX deliveries_fifo ON deliveries (fifo_key, created, id)
    WHERE status = 'pending' AND fifo_key IS NOT NULL;
