-- A claim walks the pending deliveries in due order. Only pending rows are
-- in this index (a delivered one leaves it for good), and a claimed row's
-- next_attempt_at moves to its lease's end, so in-flight rows are not in
-- the way of the next claim.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- No query reads deliveries by route.
DROP INDEX deliveries_by_target;
