-- The last attempt's duration on the delivery itself, written with its
-- outcome, so a destination's latency reads its recent deliveries alone
-- (not one attempt lookup per delivery). NULL for deliveries finished
-- before this column: readers fall back to their attempts.
ALTER TABLE deliveries ADD COLUMN last_duration_ms BIGINT;
