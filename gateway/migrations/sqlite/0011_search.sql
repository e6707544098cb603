-- Delivery search: a page walks one of these backwards in (created, id)
-- order within an organization and stops once the page is full; the other
-- filters of the search are checked on the rows it meets. One index per
-- filter a search starts from: none (newest first), status, event type,
-- destination. The time window is a range on `created` in each.
DROP INDEX deliveries_by_org;
CREATE INDEX deliveries_by_org ON deliveries (organization_id, created, id);
CREATE INDEX deliveries_by_status ON deliveries (organization_id, status, created, id);
CREATE INDEX deliveries_by_type ON deliveries (organization_id, event_type, created, id);
CREATE INDEX deliveries_by_destination ON deliveries (organization_id, target_id, created, id);
