-- Each plugin version's own sandbox settings (memory cap, deadline,
-- instance reuse), JSON as the upload's query or the folder's NAME.toml
-- gave them: `{}` takes the gateway's defaults.
ALTER TABLE plugin_versions ADD COLUMN settings TEXT NOT NULL DEFAULT '{}';
