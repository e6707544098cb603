-- A claim walks the pending deliveries in due order. Only pending rows are
-- in this index (a delivered one leaves it for good), and a claimed row's
-- next_attempt_at moves to its lease's end, so in-flight rows are not in
-- the way of the next claim.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at) WHERE status = 'pending';
-- No query reads deliveries by route.
DROP INDEX deliveries_by_target;
-- Room on each page for new row versions, so updates that change no
-- indexed column (claims, transform results) stay on their page (HOT) and
-- add no index entries.
ALTER TABLE deliveries SET (fillfactor = 75);
-- A queue table: vacuum it often, so the due index does not fill with
-- entries of rows that are no longer pending, which every claim would step
-- over.
ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
                            autovacuum_analyze_scale_factor = 0.02);
