-- Retention walks events oldest first.
CREATE INDEX events_by_created ON events (created);
