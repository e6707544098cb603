-- Claims leave out organizations at their limit of deliveries in flight:
-- with the organization in the due index, the rows of a held organization
-- are stepped over in the index, without reading them.
DROP INDEX deliveries_due;
CREATE INDEX deliveries_due ON deliveries (next_attempt_at, organization_id) WHERE status = 'pending';
