-- Lists page by (created, id) within an organization; these indexes let the
-- offset walk and the count run on the index alone, for each filter.
DROP INDEX webhooks_by_org;
CREATE INDEX webhooks_live ON webhooks (organization_id, deleted, created, id);
CREATE INDEX webhooks_live_topic ON webhooks (organization_id, topic, deleted, created, id);
CREATE INDEX webhooks_live_shop ON webhooks (organization_id, shop_id, deleted, created, id);
