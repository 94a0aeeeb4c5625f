-- Retention (issue 13): the reaper deletes finished connect flows past
-- FINCHGATE_FLOW_RETENTION_DAYS, oldest first; this index keeps that a range scan.
CREATE INDEX connect_flows_finished_idx ON connect_flows (finished_at) WHERE finished_at IS NOT NULL;
